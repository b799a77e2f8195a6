package server_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
)

// TestRequestIDs: every answer carries X-Request-Id — the client's when
// well-formed, else a new one — and so do the access log line, the
// request's error log lines and forward-auth answers.
func TestRequestIDs(t *testing.T) {
	e := apptest.New(t, func(c *app.Config) { c.Upstreams = []string{"api=http://127.0.0.1:1"} }) // nothing listens there
	_, key := e.AddConsumer(admin.NewConsumer{Name: "c", Scope: "/api"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	cases := []struct {
		name, method, path, sent string
		headers                  []string
		status                   int
		keep                     bool
	}{
		{"health", "GET", "/healthz", "", nil, 200, false},
		{"health, client id", "GET", "/healthz", "abc-123", nil, 200, true},
		{"unknown path", "GET", "/nowhere", "trace:1/2", nil, 401, true},
		{"token refused", "POST", "/api/security/token/v2", "", []string{"Content-Type", "application/json"}, 400, false},
		{"forward-auth allowed", "GET", "/auth/check", "fa-1", []string{"Authorization", "Bearer " + tok, "X-Original-URI", "/api/entity/x"}, 200, true},
		{"forward-auth refused", "GET", "/auth/nginx", "fa-2", []string{"X-Original-URI", "/api/entity/x"}, 401, true},
		{"id with a space", "GET", "/healthz", "a b", nil, 200, false},
		{"id too long", "GET", "/healthz", strings.Repeat("a", 129), nil, 200, false},
		{"id with a quote", "GET", "/healthz", `a"b`, nil, 200, false},
		{"upstream down", "GET", "/api/entity/x", "up-1", []string{"Authorization", "Bearer " + tok}, 502, true},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, e.URL+c.path, nil)
		if c.sent != "" {
			req.Header.Set("X-Request-Id", c.sent)
		}
		for i := 0; i+1 < len(c.headers); i += 2 {
			req.Header.Set(c.headers[i], c.headers[i+1])
		}
		resp, _ := e.Do(req)
		id := resp.Header.Get("X-Request-Id")
		switch {
		case resp.StatusCode != c.status:
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
		case c.keep && id != c.sent:
			t.Errorf("%s: X-Request-Id %q, want the client's %q", c.name, id, c.sent)
		case !c.keep && !hexID.MatchString(id):
			t.Errorf("%s: X-Request-Id %q, want a new one", c.name, id)
		}
		if !strings.Contains(e.Log.String(), "msg=request method="+c.method+" path="+c.path) ||
			!strings.Contains(e.Log.String(), "request_id="+id) {
			t.Errorf("%s: no access log line with request_id=%s", c.name, id)
		}
	}
	// The audit row of a token request carries its id.
	resp, body := e.Post("/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`, "X-Request-Id", "tok-1")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	evs, err := e.App.Store.ListAudit(context.Background(), store.AuditFilter{Action: "token.issue", Newest: true, Limit: 1})
	if err != nil || len(evs) != 1 || evs[0].RequestID != "tok-1" {
		t.Errorf("audit row %+v %v, want request id tok-1", evs, err)
	}
	// The upstream failure's warning names the request.
	if !regexp.MustCompile(`level=WARN msg="upstream unreachable".*request_id=up-1`).MatchString(e.Log.String()) {
		t.Errorf("the error log line lacks the request id:\n%s", e.Log.String())
	}
}
