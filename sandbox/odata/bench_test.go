package odata_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
	"github.com/gatehouse/gatehouse/sandbox/odata"
)

// BenchmarkHundredRows is the benchmark query of docs/benchmarks.md
// without the gateway: 100 rows of inv_mast, every column, with a filter.
func BenchmarkHundredRows(b *testing.B) {
	h := &odata.Handler{DB: sandboxtest.DB(b), BaseURL: sandboxtest.BaseURL}
	const path = "/odataservice/odata/table/inv_mast?$filter=list_price%20gt%201%20and%20delete_flag%20eq%20%27N%27&$top=100"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("X-Gatehouse-Family", "odata")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}
