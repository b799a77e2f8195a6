package p21_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

func TestV1Headers(t *testing.T) {
	f := newFixture(t)
	resp, body := f.Post("/api/security/token", jsonCT, "", "username", "api_user", "password", userPassword)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Deprecation") == "" {
		t.Error("no Deprecation header")
	}
	if got := resp.Header.Get("Link"); got != `</api/security/token/v2>; rel="successor-version"` {
		t.Errorf("Link = %q", got)
	}
	// Errors on V1 carry the headers too.
	resp, _ = f.Post("/api/security/token", jsonCT, "")
	if resp.StatusCode != 400 || resp.Header.Get("Deprecation") == "" {
		t.Errorf("V1 error: %d, Deprecation %q", resp.StatusCode, resp.Header.Get("Deprecation"))
	}

	g := newFixture(t, func(c *app.Config) { c.V1 = false })
	resp, body = g.Post("/api/security/token", jsonCT, "", "username", "api_user", "password", userPassword)
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "/api/security/token/v2") {
		t.Fatalf("--v1=false: %d %s", resp.StatusCode, body)
	}
	var e struct{ Error string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("--v1=false body is not a JSON error: %s", body)
	}
}

// TestV1RateLimitedIsDeprecated: a 429 on V1 carries the deprecation
// headers like every other V1 answer.
func TestV1RateLimitedIsDeprecated(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 1, nil
	})
	var limited *http.Response
	for range 5 {
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/api/security/token", nil)
		req.Header["username"] = []string{"api_user"}
		req.Header["password"] = []string{"wrong"}
		resp, _ := f.Do(req)
		if resp.Header.Get("Deprecation") == "" || resp.Header.Get("Link") == "" {
			t.Fatalf("V1 answer %d without Deprecation/Link: %v", resp.StatusCode, resp.Header)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
	}
	if limited == nil {
		t.Fatal("never rate limited")
	}
}
