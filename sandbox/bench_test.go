package sandbox_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/auth/admin"
)

// BenchmarkGatewayHundredRows is the query of docs/benchmarks.md through
// the whole server's handler (decision, proxy, sandbox), without the
// network.
func BenchmarkGatewayHundredRows(b *testing.B) {
	e := start(b)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "/api"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	const path = "/odataservice/odata/table/inv_mast?$filter=list_price%20gt%201%20and%20delete_flag%20eq%20%27N%27&$top=100"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			e.App.Handler.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
