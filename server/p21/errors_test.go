package p21_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

func TestWrongMethodAndPaths(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/api/security/token/v2", nil)
	resp, body := f.Do(req)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(body), "invalid_request") {
		t.Fatalf("GET: %d %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	resp, body = f.Post("/api/security/tokens", jsonCT, `{}`)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "use /api/security/token/v2") || !strings.Contains(string(body), `"not_found"`) {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, body)
	}
	// Case and trailing slashes do not matter, as with the P21 middleware.
	resp, body = f.Post("/API/Security/Token/V2/", jsonCT, `{"username":"api_user","password":"your_password"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("mixed case path: %d %s", resp.StatusCode, body)
	}
	resp, _ = f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"`+strings.Repeat("x", 70<<10)+`"}`)
	if resp.StatusCode != 413 {
		t.Fatalf("large body: %d", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 2, nil
	})
	var limited *http.Response
	var body []byte
	for range 5 {
		resp, b := f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`)
		if resp.StatusCode == 429 {
			limited, body = resp, b
			break
		}
	}
	if limited == nil {
		t.Fatal("never rate limited")
	}
	if limited.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"slow_down"`) {
		t.Fatalf("429 without Retry-After or slow_down: %v %s", limited.Header, body)
	}
}
