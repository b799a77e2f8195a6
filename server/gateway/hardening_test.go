package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server/gateway"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/token"
)

// TestGatewayStripsSmuggledHeaders: no client header reaches the upstream
// as an identity header, in any spelling a CGI-style server folds together,
// and no header some servers route by reaches it at all.
func TestGatewayStripsSmuggledHeaders(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/api", "")
	st, body, _ := f.get(t, "/api/entity/x", tok,
		"X_Gatehouse_User", "admin", "X-Gatehouse_Scope", "/api", "x_gatehouse-family", "odata", "X-GATEHOUSE-USER", "admin",
		"X-Gatehouse-Extra", "1", "X-Original-URL", "/api/admin", "X_Rewrite_URL", "/api/admin", "X-Original-URI", "/x",
		"X-Forwarded-Uri", "/x", "X-Forwarded-Path", "/x", "X-Original-Method", "DELETE")
	if st != 200 {
		t.Fatalf("%d %v", st, body)
	}
	h := body["headers"].(map[string]any)
	for k, v := range h {
		f := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		switch {
		case strings.HasPrefix(f, "x-gatehouse-"):
			switch k {
			case "X-Gatehouse-User", "X-Gatehouse-Consumer-Uid", "X-Gatehouse-Session-Id", "X-Gatehouse-Scope", "X-Gatehouse-Family":
			default:
				t.Errorf("smuggled identity header reached the upstream: %s: %v", k, v)
			}
		case f == "x-original-url" || f == "x-rewrite-url" || f == "x-original-uri" || f == "x-forwarded-uri" ||
			f == "x-forwarded-path" || f == "x-original-method":
			t.Errorf("routing header reached the upstream: %s: %v", k, v)
		}
	}
	if h["X-Gatehouse-User"] != "" || h["X-Gatehouse-Family"] != "api" || h["X-Gatehouse-Scope"] != "/api" {
		t.Errorf("identity headers: %v", h)
	}
}

// TestGatewayRefusals: two Authorization headers, and the token before the
// path.
func TestGatewayRefusals(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/api", "")
	resp, b := raw(t, f.URL, "GET /api/entity/x HTTP/1.1", "Authorization", "Bearer "+tok, "Authorization", "Bearer other")
	if resp.StatusCode != 400 || !strings.Contains(string(b), "more than one Authorization") {
		t.Errorf("two Authorization headers: %d %s", resp.StatusCode, b)
	}
	for _, p := range []string{"/nowhere", "/api/a/../b", "/api/a;b"} {
		if st, body, _ := f.get(t, p, ""); st != 401 {
			t.Errorf("%s without a token: %d %v, want 401 first", p, st, body)
		}
	}
}

// TestTransactionFamilyEndpoints: every Transaction API endpoint reaches
// the transaction upstream, under both prefixes.
func TestTransactionFamilyEndpoints(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/uiserver0", "")
	for _, p := range []string{"/api/v2/services", "/api/v2/definition/Order", "/api/v2/defaults/Order", "/api/v2/transaction",
		"/api/v2/transaction/get", "/api/v2/transaction/async", "/api/v2/transaction/async?id=42", "/api/v2/transaction/async/callback"} {
		for _, pre := range []string{"", "/uiserver0"} {
			st, body, _ := f.get(t, pre+p, tok)
			if st != 200 || body["headers"].(map[string]any)["X-Gatehouse-Family"] != "transaction" || body["headers"].(map[string]any)["X-Gatehouse-User"] != "admin" {
				t.Errorf("%s: %d %v", pre+p, st, body)
			}
		}
	}
}

// allowAll judges requests like gatehouse but allows every one.
type allowAll struct{ table *policy.Table }

func (a allowAll) Authorize(_ context.Context, req policy.Request) (*verify.Authorization, error) {
	m, err := a.table.Resolve(req.Path, req.Query)
	if err != nil {
		return nil, policy.ErrCannotJudge(err)
	}
	return &verify.Authorization{Identity: &verify.Identity{Claims: &token.Claims{}}, Match: m, Path: m.Path, EscapedPath: req.Path}, nil
}

// logBuffer collects log records.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestClientBodyFaults: a body the client breaks is the client's fault
// (4xx, logged at debug level as such), never a 502 blamed on the upstream.
func TestClientBodyFaults(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		json.NewEncoder(w).Encode(map[string]int64{"read": n})
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	table, _ := policy.NewTable(policy.DefaultFamilies())
	logs := &logBuffer{}
	outcomes := map[string]int{}
	var mu sync.Mutex
	g := gateway.NewGateway(allowAll{table}, gateway.Options{Upstreams: map[string]*url.URL{"api": u}, MaxBody: 1000,
		Format: render.JSON, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observe: func(_, o string) { mu.Lock(); outcomes[o]++; mu.Unlock() }})
	srv := httptest.NewServer(g)
	defer srv.Close()

	for _, tc := range []struct {
		name   string
		send   string
		status int
	}{
		{"bare LF chunk", "POST /api/entity/x HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\nhello\n0\n\n", 400},
		{"bad chunk size", "POST /api/entity/x HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"declared length over the cap", "POST /api/entity/x HTTP/1.1\r\nHost: g\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" + strings.Repeat("a", 5000), 413},
		{"chunked body over the cap", "POST /api/entity/x HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7d0\r\n" + strings.Repeat("a", 2000) + "\r\n0\r\n\r\n", 413},
		{"body under the cap", "POST /api/entity/x HTTP/1.1\r\nHost: g\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 200},
	} {
		resp, body := rawBytes(t, srv.URL, tc.send)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}
	// A client that goes away in the middle of its body.
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "POST /api/entity/x HTTP/1.1\r\nHost: g\r\nContent-Length: 900\r\n\r\nonly part of it")
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c) // whatever comes back, until the server closes
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if outcomes["upstream_error"] != 0 || strings.Contains(logs.String(), "upstream unreachable") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("client faults were blamed on the upstream: %v\n%s", outcomes, logs)
	}
	if outcomes["bad_client_body"]+outcomes["client_gone"] < 3 || outcomes["body_too_large"] < 2 {
		t.Errorf("outcomes %v", outcomes)
	}
}
