package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testtime"
)

// echo is an upstream that answers with what it received.
func echo(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := map[string]string{}
		for k := range r.Header {
			h[k] = r.Header.Get(k)
		}
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "query": r.URL.RawQuery, "method": r.Method, "headers": h, "body": string(b)})
	}))
	t.Cleanup(s.Close)
	return s
}

type fixture struct {
	*apptest.Env
	up *httptest.Server
}

func newFixture(t *testing.T, mutate ...func(*app.Config)) *fixture {
	up := echo(t)
	m := append([]func(*app.Config){func(c *app.Config) {
		for _, f := range []string{"odata", "api", "interactive", "transaction", "inventory", "configuration", "sdk"} {
			c.Upstreams = append(c.Upstreams, f+"="+up.URL)
		}
	}}, mutate...)
	return &fixture{Env: apptest.New(t, m...), up: up}
}

func (f *fixture) consumerToken(t *testing.T, scope, username string) string {
	t.Helper()
	_, key := f.AddConsumer(admin.NewConsumer{Name: fmt.Sprintf("c%d", time.Now().UnixNano()), Scope: scope})
	body := `{"GrantType":"client_credentials","ClientSecret":"` + key + `"`
	if username != "" {
		body += `,"username":"` + username + `"`
	}
	return f.Token(body + "}")
}

func (f *fixture) get(t *testing.T, path, tok string, headers ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, b := f.Do(req)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

func TestScopeThroughGateway(t *testing.T) {
	f := newFixture(t)
	odata := f.consumerToken(t, "/odata:supplier,price_page", "")
	api := f.consumerToken(t, "/api", "")
	for _, tc := range []struct {
		path  string
		tok   string
		want  int
		error string
	}{
		{"/odataservice/odata/table/supplier?$top=5", odata, 200, ""},
		{"/odataservice/odata/table/customer", odata, 403, "insufficient_scope"},
		{"/api/entity/customers/", odata, 403, "insufficient_scope"},
		{"/odataservice/odata/table/supplier?$top=5", api, 200, ""},
		{"/odataservice/odata/table/customer", api, 200, ""},
		{"/api/entity/customers/", api, 200, ""},
	} {
		st, body, h := f.get(t, tc.path, tc.tok)
		if st != tc.want || (tc.error != "" && body["error"] != tc.error) {
			t.Errorf("%s: %d %v", tc.path, st, body)
		}
		if st == 403 && (body["error_description"] != "Consumer key does not have access to this API." || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope")) {
			t.Errorf("%s: refusal %v %v", tc.path, body, h)
		}
		if st == 200 && tc.path == "/odataservice/odata/table/supplier?$top=5" {
			if body["path"] != "/odataservice/odata/table/supplier" || body["query"] != "$top=5" {
				t.Errorf("forwarded %v", body)
			}
		}
	}
}

func TestUserPermissionsThroughGateway(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.AddRole("clerk")
	f.AddUser("no_odata", "pw-one-two", false, "clerk")
	f.AddUser("api_user", "pw-one-two", true, "clerk")
	plain := f.Token(`{"username":"no_odata","password":"pw-one-two"}`)
	tok := f.Token(`{"username":"api_user","password":"pw-one-two"}`)

	st, body, _ := f.get(t, "/odataservice/odata/table/supplier", plain)
	if st != 403 || body["error_description"] != "You are not authorized to access API" {
		t.Fatalf("user without allow_odata: %d %v", st, body)
	}
	// The role has no permissions yet: refused, naming the table.
	if _, err := f.App.Admin.SetRoleEntries(ctx, "test", "clerk", false, []string{"supplier"}); err != nil {
		t.Fatal(err)
	}
	st, body, _ = f.get(t, "/odataservice/odata/table/supplier", tok)
	if st != 403 || body["error"] != "access_denied" || !strings.Contains(body["error_description"].(string), "supplier") {
		t.Fatalf("role denies supplier: %d %v", st, body)
	}
	// --all-tables does not override an explicit deny…
	all := true
	if _, err := f.App.Admin.SetRoleFlags(ctx, "test", "clerk", admin.RoleFlags{AllowAllTables: &all}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f, "/odataservice/odata/table/customer", tok, 200)
	st, _, _ = f.get(t, "/odataservice/odata/table/supplier", tok)
	if st != 403 {
		t.Fatalf("explicit deny lost to all-tables: %d", st)
	}
	// …and an explicit allow does.
	if _, err := f.App.Admin.SetRoleEntries(ctx, "test", "clerk", true, []string{"supplier"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f, "/odataservice/odata/table/supplier", tok, 200)

	// Taking allow_odata away is seen within a second.
	no := false
	if _, err := f.App.Admin.UpdateUser(ctx, "test", "api_user", admin.UserChange{AllowOData: &no}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f, "/odataservice/odata/table/supplier", tok, 403)
}

func waitStatus(t *testing.T, f *fixture, path, tok string, want int, headers ...string) {
	t.Helper()
	testtime.Eventually(t, time.Second, func() error {
		if st, body, _ := f.get(t, path, tok, headers...); st != want {
			return fmt.Errorf("%s: still %d %v, want %d", path, st, body, want)
		}
		return nil
	})
}

func TestInteractiveNeedsRealUser(t *testing.T) {
	f := newFixture(t)
	f.AddUser("api_user", "pw-one-two", false, "")
	noUser := f.consumerToken(t, "/api", "")
	ghost := f.consumerToken(t, "/api", "ghost")
	real := f.consumerToken(t, "/api", "API_USER")
	for _, tok := range []string{noUser, ghost} {
		st, body, _ := f.get(t, "/uiserver0/api/ui/interactive/sessions", tok)
		if st != 403 || body["error"] != "invalid_user" || body["error_description"] != "Error retrieving/validating user" {
			t.Fatalf("interactive without a real user: %d %v", st, body)
		}
	}
	st, body, _ := f.get(t, "/uiserver0/api/ui/interactive/sessions", real, "X-Gatehouse-User", "admin", "x-gatehouse-family", "spoof")
	if st != 200 {
		t.Fatalf("interactive with a real user: %d %v", st, body)
	}
	h := body["headers"].(map[string]any)
	if h["X-Gatehouse-User"] != "api_user" || h["X-Gatehouse-Family"] != "interactive" || h["X-Gatehouse-Consumer-Uid"] == "" ||
		h["X-Gatehouse-Session-Id"] == "" || h["X-Gatehouse-Scope"] != "/api" {
		t.Fatalf("identity headers upstream: %v", h)
	}
	// Transaction without a user acts as the install user.
	st, body, _ = f.get(t, "/uiserver0/api/v2/transaction/get", noUser, "X-Gatehouse-User", "spoofed")
	if st != 200 || body["headers"].(map[string]any)["X-Gatehouse-User"] != "admin" {
		t.Fatalf("transaction: %d %v", st, body)
	}
}

func TestRouter(t *testing.T) {
	f := newFixture(t, func(c *app.Config) { c.UIServerURL = "https://play.p21server.com/uiserver0" })
	tok := f.consumerToken(t, "/api", "")
	for _, p := range []string{"/api/ui/router/v1?urlType=external", "/api/ui/router/v1/?urlType=external", "/api/ui/router/v1"} {
		st, body, _ := f.get(t, p, tok)
		if st != 200 || body["Url"] != "https://play.p21server.com/uiserver0" {
			t.Fatalf("%s: %d %v", p, st, body)
		}
	}
	st, body, _ := f.get(t, "/api/ui/router/v1?urlType=internal", tok)
	if st != 200 || !strings.HasSuffix(body["Url"].(string), "/uiserver0") {
		t.Fatalf("internal: %d %v", st, body)
	}
	st, body, _ = f.get(t, "/api/ui/router/v1?urlType=sideways", tok)
	if st != 400 || !strings.Contains(body["error_description"].(string), "sideways") {
		t.Fatalf("bad urlType: %d %v", st, body)
	}
	st, body, h := f.get(t, "/api/ui/router/v1?urlType=external", "")
	if st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || body["error"] != "invalid_token" {
		t.Fatalf("no token: %d %v %v", st, body, h)
	}
	// /odata-only consumers may not ask.
	odata := f.consumerToken(t, "/odata:supplier", "")
	if st, _, _ := f.get(t, "/api/ui/router/v1", odata); st != 403 {
		t.Fatalf("odata consumer: %d", st)
	}
}

func TestForwardAuth(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/odata:supplier", "someone")
	for _, hdrs := range [][]string{
		{"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/odataservice/odata/table/supplier?$top=5"},
		{"X-Original-Method", "GET", "X-Original-URI", "/odataservice/odata/table/supplier?$top=5"},
	} {
		st, _, h := f.get(t, "/auth/check", tok, hdrs...)
		if st != 200 || h.Get("X-Gatehouse-User") != "someone" || h.Get("X-Gatehouse-Family") != "odata" || h.Get("X-Gatehouse-Scope") != "/odata:supplier" {
			t.Fatalf("%v: %d %v", hdrs, st, h)
		}
		hdrs[3] = "/odataservice/odata/table/customer"
		st, body, _ := f.get(t, "/auth/check", tok, hdrs...)
		if st != 403 || body["error"] != "insufficient_scope" {
			t.Fatalf("%v: %d %v", hdrs, st, body)
		}
		// Spellings some server resolves to another path: refused, 403.
		for _, p := range []string{"/odataservice/odata/table/supplier/../customer", "/odataservice/odata/table/%2e%2e/customer",
			"/odataservice/odata/table/supplier%2f..%2fcustomer", "/odataservice/odata/table/customer;x"} {
			hdrs[3] = p
			if st, body, _ := f.get(t, "/auth/check", tok, hdrs...); st != 403 || body["error"] != "invalid_request" {
				t.Fatalf("%s: %d %v", p, st, body)
			}
		}
	}
	st, body, h := f.get(t, "/auth/check", "", "X-Forwarded-Uri", "/api/x")
	if st != 401 || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %v", st, body)
	}
	st, body, _ = f.get(t, "/auth/check", tok)
	if st != 403 || !strings.Contains(body["error_description"].(string), "X-Forwarded-Uri") {
		t.Fatalf("no uri: %d %v", st, body)
	}
	st, body, _ = f.get(t, "/auth/check", tok, "X-Forwarded-Uri", "/nothing/here")
	if st != 403 || body["error"] != "not_found" {
		t.Fatalf("unclassified: %d %v", st, body)
	}
}

func TestSessionEndRefusedEverywhere(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/api", "")
	st, _, _ := f.get(t, "/api/entity/x", tok)
	if st != 200 {
		t.Fatal(st)
	}
	id, err := f.App.Verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.App.Store.EndSession(context.Background(), id.Session.ID, gatehouse.EndAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f, "/api/entity/x", tok, 401)
	waitStatus(t, f, "/auth/check", tok, 401, "X-Forwarded-Uri", "/api/entity/x")
}

func TestUpstreamFailures(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	f := newFixture(t, func(c *app.Config) {
		c.Upstreams = []string{"api=" + slow.URL, "inventory=" + deadURL}
		c.UpstreamTimeout = 200 * time.Millisecond
	})
	tok := f.consumerToken(t, "/api", "")
	if st, body, _ := f.get(t, "/api/entity/x", tok); st != 504 || body["error"] == nil {
		t.Fatalf("slow upstream: %d %v", st, body)
	}
	if st, body, _ := f.get(t, "/api/inventory/x", tok); st != 502 || body["error"] == nil {
		t.Fatalf("dead upstream: %d %v", st, body)
	}
	st, body, _ := f.get(t, "/odataservice/odata/table/supplier", tok)
	if st != 404 || !strings.Contains(body["error_description"].(string), "odata") {
		t.Fatalf("no upstream: %d %v", st, body)
	}
	if st, _, _ := f.get(t, "/elsewhere", tok); st != 404 {
		t.Fatalf("no family: %d", st)
	}
}

func TestStreaming(t *testing.T) {
	// The upstream sends lines as it reads them; the client sees the first
	// answer before it has finished sending.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			fmt.Fprintf(w, "got %s\n", sc.Text())
			w.(http.Flusher).Flush()
		}
	}))
	defer up.Close()
	f := newFixture(t, func(c *app.Config) { c.Upstreams = []string{"api=" + up.URL} })
	tok := f.consumerToken(t, "/api", "")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/api/stream", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	fmt.Fprintln(pw, "one")
	var resp *http.Response
	select {
	case resp = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no response headers while the request body is still open")
	}
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "got one\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	fmt.Fprintln(pw, "two")
	line, _ = rd.ReadString('\n')
	pw.Close()
	if line != "got two\n" {
		t.Fatalf("second line %q", line)
	}
}
