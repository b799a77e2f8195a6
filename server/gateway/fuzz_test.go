package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server/gateway"
	"github.com/gatehouse/gatehouse/server/render"
)

// FuzzForwardAuth feeds arbitrary reports of the original request to every
// forward-auth mode: the answer is only ever 200 or 403 (the stand-in
// authorizer allows every token), never a panic, and an allowed request is
// one whose reported URI gatehouse judges canonical.
func FuzzForwardAuth(f *testing.F) {
	table, err := policy.NewTable(policy.DefaultFamilies())
	if err != nil {
		f.Fatal(err)
	}
	c := &gateway.Check{Auth: allowAll{table}, Format: render.JSON}
	for _, s := range [][3]string{
		{"/auth/nginx", "/odataservice/odata/table/supplier?$top=1", ""},
		{"/auth/check", "/api/x", "/api/y"},
		{"/auth/caddy", "/odataservice/odata/table/$batch", "/a"},
		{"/auth/envoy/api/x", "", ""},
		{"/auth/traefik", "http://h/api/x", "/api/x"},
	} {
		f.Add(s[0], s[1], s[2], "GET")
	}
	f.Fuzz(func(t *testing.T, endpoint, original, forwarded, method string) {
		req, err := http.NewRequest(http.MethodGet, "http://gatehouse"+endpoint, nil)
		if err != nil || req.URL.Path == "" {
			return
		}
		req.RequestURI = endpoint
		for h, v := range map[string]string{"X-Original-Uri": original, "X-Forwarded-Uri": forwarded, "X-Original-Method": method} {
			if v != "" {
				req.Header[h] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 403 {
			t.Fatalf("%s %q %q: %d %s", endpoint, original, forwarded, rec.Code, rec.Body)
		}
	})
}
