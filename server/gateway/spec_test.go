package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

// seen is what an upstream received.
type seen struct {
	RequestURI, EscapedPath, RawPath, Query string
}

// recorder is an upstream that reports the request line it received.
func recorder(t *testing.T) (*httptest.Server, <-chan seen) {
	got := make(chan seen, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.RequestURI, r.URL.EscapedPath(), r.URL.RawPath, r.URL.RawQuery}
	}))
	t.Cleanup(s.Close)
	return s, got
}

func TestForwardedPath(t *testing.T) {
	for _, base := range []string{"", "/p21"} {
		up, got := recorder(t)
		f := newFixture(t, func(c *app.Config) { c.Upstreams = []string{"api=" + up.URL + base} })
		tok := f.consumerToken(t, "/api", "")
		for _, tc := range []struct {
			name, sent string
			want       string // request URI the upstream sees, without base; "" for none
			status     int
		}{
			{"encoded plus", "/api/entity/a%2Bb", "/api/entity/a%2Bb", 200},
			{"literal plus", "/api/entity/a+b", "/api/entity/a+b", 200},
			{"utf-8", "/api/entity/%C3%A9t%C3%A9", "/api/entity/%C3%A9t%C3%A9", 200},
			{"lower-case hex", "/api/entity/%c3%a9", "/api/entity/%c3%a9", 200},
			{"needless escape", "/api/entity/%41b", "/api/entity/%41b", 200},
			{"case and trailing slash", "/API/Entity/X/", "/API/Entity/X/", 200},
			{"sub-delims", "/api/entity/x('a,b')*!$&=:@", "/api/entity/x('a,b')*!$&=:@", 200},
			{"query", "/api/entity/x?$filter=a%20eq%201", "/api/entity/x?$filter=a%20eq%201", 200},
			{"query with semicolons", "/api/entity/x?x=1;y=2&z=%zz&$top=3", "/api/entity/x?x=1;y=2&z=%zz&$top=3", 200},
			{"empty query", "/api/entity/x?", "/api/entity/x?", 200},
			// Not canonical: refused, never forwarded.
			{"repeated slash", "/API/Entity//X/", "", 400},
			{"dot segments", "/api/entity/a%2Bb/../c%2Bd/./x?$top=1", "", 400},
			{"encoded dot segment", "/api/entity/%2e%2E/%C3%A9", "", 400},
			{"path parameter", "/api/entity/x;jsessionid=1", "", 400},
			{"dot-dot-semicolon", "/api/.configuration/..;/entity/customers", "", 400},
			{"double-encoded dots", "/api/entity/%252e%252e/x", "", 400},
			{"trailing dot", "/api/entity/customers.", "", 400},
			{"trailing space", "/api/entity/customers%20", "", 400},
			{"encoded slash", "/api/entity/a%2Fb", "", 400},
			{"encoded backslash", "/api/entity/a%5cb", "", 400},
		} {
			req, _ := http.NewRequest(http.MethodGet, f.URL+tc.sent, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, body := f.Do(req)
			if resp.StatusCode != tc.status {
				t.Errorf("base %q, %s: %s → %d %s", base, tc.name, tc.sent, resp.StatusCode, body)
				continue
			}
			if tc.status == 400 && !strings.Contains(string(body), "cannot be judged: the path") {
				t.Errorf("base %q, %s: %s", base, tc.name, body)
			}
			if tc.want == "" {
				select {
				case s := <-got:
					t.Errorf("base %q, %s: refused, yet the upstream saw %+v", base, tc.name, s)
				default:
				}
				continue
			}
			s := <-got
			want := base + tc.want
			path, query, _ := strings.Cut(want, "?")
			if s.RequestURI != want || s.EscapedPath != path || s.Query != query {
				t.Errorf("base %q, %s: sent %s, upstream saw %+v, want %s", base, tc.name, tc.sent, s, want)
			}
			if s.RawPath != "" && s.RawPath != path {
				t.Errorf("base %q, %s: upstream RawPath %q, want %q", base, tc.name, s.RawPath, path)
			}
		}
	}
}

func TestUnauthenticatedChallenge(t *testing.T) {
	f := newFixture(t)
	endpoints := []struct {
		name, path string
		headers    []string
	}{
		{"gateway", "/api/entity/x", nil},
		{"forward-auth", "/auth/check", []string{"X-Forwarded-Uri", "/api/entity/x"}},
		{"forward-auth nginx", "/auth/check", []string{"X-Original-URI", "/odataservice/odata/table/supplier"}},
		{"router", "/api/ui/router/v1", nil},
		{"router slash", "/api/ui/router/v1/?urlType=internal", nil},
	}
	for _, ep := range endpoints {
		for _, authz := range []string{"", "Basic dXNlcjpwdw==", "Bearer", "Bearer not-a-token", "Negotiate abc"} {
			req, _ := http.NewRequest(http.MethodGet, f.URL+ep.path, nil)
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			for i := 0; i+1 < len(ep.headers); i += 2 {
				req.Header.Set(ep.headers[i], ep.headers[i+1])
			}
			resp, b := f.Do(req)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.Unmarshal(b, &body)
			want := `Bearer error="invalid_token", error_description="` + body.Description + `"`
			if resp.StatusCode != 401 || body.Error != "invalid_token" || body.Description == "" ||
				resp.Header.Values("WWW-Authenticate")[0] != want || len(resp.Header.Values("WWW-Authenticate")) != 1 {
				t.Errorf("%s, Authorization %q: %d %v %s", ep.name, authz, resp.StatusCode, resp.Header["Www-Authenticate"], b)
			}
		}
	}
}

func TestWrongMethod(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/api", "")
	// Forward-auth answers only 200, 401 or 403: a proxy turns anything
	// else into a 500.
	for _, path := range []string{"/auth/check", "/auth/check/", "/auth/nginx", "/auth/traefik", "/auth/caddy"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			req, _ := http.NewRequest(m, f.URL+path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Forwarded-Uri", "/api/entity/x")
			req.Header.Set("X-Original-URI", "/api/entity/x")
			resp, b := f.Do(req)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), m+" is not allowed") {
				t.Errorf("%s %s: %d %s, want 403 naming the method", m, path, resp.StatusCode, b)
			}
		}
	}
	for _, path := range []string{"/api/ui/router/v1", "/api/ui/router/v1/?urlType=external"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			// The token endpoints' answer to the same wrong method on a GET
			// endpoint is the model.
			model, _ := http.NewRequest(m, f.URL+"/.well-known/jwks.json", nil)
			mresp, mbody := f.Do(model)
			if mresp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("model %s /.well-known/jwks.json: %d %s", m, mresp.StatusCode, mbody)
			}
			req, _ := http.NewRequest(m, f.URL+path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Forwarded-Uri", "/api/entity/x")
			resp, b := f.Do(req)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" ||
				string(b) != string(mbody) || resp.Header.Get("Content-Type") != mresp.Header.Get("Content-Type") {
				t.Errorf("%s %s: %d Allow %q %s, want 405 %s", m, path, resp.StatusCode, resp.Header.Get("Allow"), b, mbody)
			}
		}
		// GET and HEAD still pass.
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequest(m, f.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Forwarded-Uri", "/api/entity/x")
			if resp, b := f.Do(req); resp.StatusCode != 200 {
				t.Errorf("%s %s: %d %s", m, path, resp.StatusCode, b)
			}
		}
	}
}
