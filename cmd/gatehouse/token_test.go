package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
)

const (
	tokUser     = "api_user"
	tokPassword = "Pw-for-cli-9f3c!"
)

// tokenEnv is a real server behind a handler that counts token requests,
// answers the UI router and echoes /echo/… requests, plus the environment
// the CLI sees.
type tokenEnv struct {
	*apptest.Env
	URL      string
	key      string
	uid      string
	requests atomic.Int64
	env      map[string]string
	mu       sync.Mutex
}

func newTokenEnv(t *testing.T, mutate ...func(*app.Config)) *tokenEnv {
	t.Helper()
	e := apptest.New(t, mutate...)
	e.AddUser(tokUser, tokPassword, true, "")
	c, key := e.AddConsumer(admin.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	te := &tokenEnv{Env: e, key: key, uid: strconv.FormatInt(c.UID, 10)}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(strings.ToLower(r.URL.Path), "/api/security/token"):
			te.requests.Add(1)
		case r.URL.Path == "/api/ui/router/v1":
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
				w.WriteHeader(401)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"Url":%q}`, srv.URL+"/uiserver0")
			return
		case strings.HasPrefix(r.URL.Path, "/echo/") || strings.HasPrefix(r.URL.Path, "/uiserver0/echo/"):
			b, _ := io.ReadAll(r.Body)
			status, _ := strconv.Atoi(r.URL.Query().Get("status"))
			if status == 0 {
				status = 200
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{
				"method": r.Method, "path": r.URL.Path, "auth": r.Header.Get("Authorization"),
				"content_type": r.Header.Get("Content-Type"), "x": r.Header.Get("X-Test"), "body": string(b),
			})
			return
		}
		e.App.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	te.URL = srv.URL
	te.env = map[string]string{"XDG_CACHE_HOME": t.TempDir(), "P21_BASE_URL": srv.URL}
	return te
}

func (te *tokenEnv) set(kv ...string) *tokenEnv {
	te.mu.Lock()
	defer te.mu.Unlock()
	for i := 0; i+1 < len(kv); i += 2 {
		te.env[kv[i]] = kv[i+1]
	}
	return te
}

func (te *tokenEnv) getenv(k string) string {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.env[k]
}

// run runs one command line in-process.
func (te *tokenEnv) run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb, te.getenv)
	return code, out.String(), errb.String()
}

func (te *tokenEnv) must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := te.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (te *tokenEnv) sessions(t *testing.T, f store.SessionFilter) int {
	t.Helper()
	ss, err := te.App.Store.ListSessions(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

func (te *tokenEnv) cacheFiles(t *testing.T) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(te.env["XDG_CACHE_HOME"], "gatehouse", "*.json"))
	return m
}

func TestTokenCachedAcrossRuns(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	first := te.must(t, "", "token")
	if !strings.HasPrefix(first, "ey") || strings.Count(first, ".") != 2 || !strings.HasSuffix(first, "\n") {
		t.Fatalf("token output %q is not a JWT line", first)
	}
	for range 19 {
		if got := te.must(t, "", "token"); got != first {
			t.Fatalf("a later run printed another token")
		}
	}
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("20 runs made %d token requests, want 1", n)
	}
	if n := te.sessions(t, store.SessionFilter{Username: tokUser}); n != 1 {
		t.Fatalf("20 runs made %d sessions, want 1", n)
	}

	// --no-cache gets a new token and saves it.
	fresh := te.must(t, "", "token", "--no-cache")
	if fresh == first || te.requests.Load() != 2 {
		t.Fatalf("--no-cache: same token or %d requests", te.requests.Load())
	}
	if got := te.must(t, "", "token"); got != fresh {
		t.Fatalf("the token from --no-cache was not cached")
	}
	if n := te.requests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}

	// One file, 0600, in a 0700 directory; no password in it.
	files := te.cacheFiles(t)
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	di, _ := os.Stat(filepath.Dir(files[0]))
	if runtime.GOOS != "windows" && (fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700) {
		t.Fatalf("cache file mode %v, dir %v; want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
	b, _ := os.ReadFile(files[0])
	if bytes.Contains(b, []byte(tokPassword)) {
		t.Fatal("the cache file holds the password")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(files[0]), "*")); len(leftovers) != 2 {
		t.Fatalf("the cache dir holds more than the token and the cache secret: %v", leftovers)
	}
	if ki, err := os.Stat(filepath.Join(filepath.Dir(files[0]), cacheSecretFile)); err != nil ||
		runtime.GOOS != "windows" && ki.Mode().Perm() != 0o600 {
		t.Fatalf("cache secret: %v %v", ki, err)
	}
}

// TestTokenCacheIsPerIdentity: the cache file is named by the identity
// (server, flow, user, client; the key itself for the P21 consumer flow)
// under the cache's random secret — never by anything derived from the
// password. Another password for the same user finds that user's entry;
// another user or consumer key never does; --no-cache checks the password.
func TestTokenCacheIsPerIdentity(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	first := te.must(t, "", "token")
	files := te.cacheFiles(t)
	if len(files) != 1 || !regexp.MustCompile(`^t-[0-9a-f]{32}\.json$`).MatchString(filepath.Base(files[0])) {
		t.Fatalf("cache files %v", files)
	}
	// Another password, same identity: the same entry, no request.
	te.set("P21_PASSWORD", "not-the-password")
	if got := te.must(t, "", "token"); got != first || te.requests.Load() != 1 {
		t.Fatalf("another password for the same user: new token or %d requests", te.requests.Load())
	}
	if got := te.cacheFiles(t); len(got) != 1 || got[0] != files[0] {
		t.Fatalf("cache files after another password: %v", got)
	}
	// --no-cache signs in: the wrong password is refused, and the saved
	// token stays.
	code, out, errs := te.run(t, "", "token", "--no-cache")
	if code == 0 || out != "" || !strings.Contains(errs, "HTTP 401") || !strings.Contains(errs, "invalid_grant") ||
		strings.Contains(errs, "not-the-password") {
		t.Fatalf("--no-cache with a wrong password: exit %d %q %q", code, out, errs)
	}
	te.set("P21_PASSWORD", tokPassword)
	if got := te.must(t, tokPassword+"\n", "token", "--password-stdin"); got != first {
		t.Fatal("--password-stdin did not find the saved token")
	}

	// Another user, and two consumer keys: separate entries.
	te.AddUser("other_user", "other-pw-1", true, "")
	te.set("P21_USERNAME", "other_user", "P21_PASSWORD", "other-pw-1")
	if te.must(t, "", "token") == first || len(te.cacheFiles(t)) != 2 {
		t.Fatalf("another user: same token or %d files", len(te.cacheFiles(t)))
	}
	_, key2 := te.AddConsumer(admin.NewConsumer{Name: "OTHER_APP", Scope: "/api"})
	te.set("P21_USERNAME", "", "P21_PASSWORD", "", "P21_CONSUMER_KEY", te.key)
	one := te.must(t, "", "token")
	te.set("P21_CONSUMER_KEY", key2)
	two := te.must(t, "", "token")
	if one == two || len(te.cacheFiles(t)) != 4 {
		t.Fatalf("two consumer keys: same token or %d files", len(te.cacheFiles(t)))
	}
	for _, f := range te.cacheFiles(t) {
		b, _ := os.ReadFile(f)
		if strings.Contains(f, te.key) || strings.Contains(f, key2) || bytes.Contains(b, []byte(te.key)) || bytes.Contains(b, []byte(key2)) {
			t.Fatalf("%s holds a consumer key", f)
		}
	}
}

// TestTokenCacheRemovesLegacyFiles: files of the old format, whose names
// held a hash of the password, are removed on first use.
func TestTokenCacheRemovesLegacyFiles(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	dir := filepath.Join(te.env["XDG_CACHE_HOME"], "gatehouse")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(dir, "0123456789abcdef0123456789abcdef.json")
	if err := os.WriteFile(legacy, []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	te.must(t, "", "token")
	if _, err := os.Stat(legacy); err == nil {
		t.Fatal("the legacy cache file is still there")
	}
}

func TestTokenConcurrentRuns(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	var wg sync.WaitGroup
	outs := make([]string, 8)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"token"}, strings.NewReader(""), &out, &errb, te.getenv); code != 0 {
				t.Errorf("exit %d: %s", code, errb.String())
			}
			outs[i] = out.String()
		}()
	}
	wg.Wait()
	for _, o := range outs[1:] {
		if o != outs[0] {
			t.Fatal("parallel runs printed different tokens")
		}
	}
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("8 parallel runs made %d token requests, want 1", n)
	}
}

func TestTokenJSONConsumer(t *testing.T) {
	for _, format := range []string{"negotiate", "xml"} {
		t.Run(format, func(t *testing.T) {
			te := newTokenEnv(t, func(c *app.Config) { c.TokenFormat = format })
			te.set("P21_CONSUMER_KEY", te.key, "P21_USERNAME", tokUser)
			for range 2 { // the second run prints the cached response
				out := te.must(t, "", "token", "--json")
				var m map[string]any
				if err := json.Unmarshal([]byte(out), &m); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out)
				}
				if m["ConsumerUid"] != te.uid || m["Scope"] != "/api;/p21sdk" || m["UserName"] != tokUser || m["SessionId"] == "" || m["SessionId"] == nil {
					t.Fatalf("--json = %s", out)
				}
				if !strings.Contains(out, "630720000") {
					t.Fatalf("ExpiresIn is not 630720000: %s", out)
				}
			}
			if n := te.requests.Load(); n != 1 {
				t.Fatalf("%d token requests, want 1", n)
			}
		})
	}
}

func TestTokenFlows(t *testing.T) {
	te := newTokenEnv(t)
	// Consumer key from stdin, without a user context, over V1.
	out := te.must(t, te.key+"\n", "token", "--consumer-key-stdin", "--v1", "--json")
	if !strings.Contains(out, `"ConsumerUid": "`+te.uid+`"`) || !strings.Contains(out, `"UserName": ""`) {
		t.Fatalf("consumer V1: %s", out)
	}
	// User flow with --username and the password on stdin, V1.
	te.must(t, tokPassword+"\n", "token", "--username", tokUser, "--password-stdin", "--v1")
	if n := te.sessions(t, store.SessionFilter{Username: tokUser}); n != 1 {
		t.Fatalf("%d user sessions, want 1", n)
	}
}

func TestTokenConfigErrors(t *testing.T) {
	te := newTokenEnv(t)
	delete(te.env, "P21_BASE_URL")
	for _, tt := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"token"}, "", "P21_BASE_URL is not set"},
		{[]string{"token", "--base-url", te.URL}, "", "P21_USERNAME is not set (needed for the p21-user flow); set P21_USERNAME or use --username"},
		{[]string{"token", "--base-url", te.URL, "--username", "u"}, "", "P21_PASSWORD is not set (needed for the p21-user flow); set P21_PASSWORD or use --password-stdin"},
		{[]string{"token", "--password-stdin", "--consumer-key-stdin"}, "x\n", "cannot both read stdin"},
		{[]string{"token", "--uat"}, "", "--uat needs --apx"},
		{[]string{"token", "--apx"}, "", "APX_CLIENT_ID is not set (needed for the apx flow); set APX_CLIENT_ID or use --client-id"},
		{[]string{"token", "--password"}, "", "unknown flag: --password"},
	} {
		code, out, errs := te.run(t, tt.stdin, tt.args...)
		if code == 0 || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tt.args, code, out, errs, tt.want)
		}
	}
}

func TestTokenAPX(t *testing.T) {
	const secret = `cs:9%f+/=@$!`
	var hits atomic.Int64
	apx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
		id, sec, _ := strings.Cut(string(raw), ":")
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if id != "my-client" || sec != secret || r.PostForm.Get("Username") != "svc" || r.PostForm.Get("Password") != "apx-pw" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid Login ID or Password"}`)
			return
		}
		io.WriteString(w, `{"access_token":"apx-token","token_type":"bearer","expires_in":3600,"scope":"access"}`)
	}))
	defer apx.Close()
	te := &tokenEnv{env: map[string]string{"XDG_CACHE_HOME": t.TempDir(), "APX_TOKEN_URL": apx.URL + "/oauth/token",
		"APX_CLIENT_SECRET": secret, "APX_USERNAME": "svc", "APX_PASSWORD": "apx-pw"}}
	for range 3 {
		if out := te.must(t, "", "token", "--apx", "--client-id", "my-client"); out != "apx-token\n" {
			t.Fatalf("out = %q", out)
		}
	}
	out := te.must(t, "", "token", "--apx", "--client-id", "my-client", "--json")
	if !strings.Contains(out, `"scope": "access"`) || hits.Load() != 1 {
		t.Fatalf("--json = %s after %d requests", out, hits.Load())
	}
}

func TestCall(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	tok := strings.TrimSpace(te.must(t, "", "token"))
	echo := func(out string) map[string]string {
		t.Helper()
		var m map[string]string
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		return m
	}

	m := echo(te.must(t, "", "call", "get", "/echo/x?a=1", "-H", "X-Test: yes"))
	if m["method"] != "GET" || m["path"] != "/echo/x" || m["auth"] != "Bearer "+tok || m["x"] != "yes" || m["body"] != "" {
		t.Fatalf("GET: %v", m)
	}
	// --data from stdin, from a file, and as text.
	m = echo(te.must(t, `{"from":"stdin"}`, "call", "POST", "/echo/y", "--data", "-"))
	if m["body"] != `{"from":"stdin"}` || m["content_type"] != "application/json" {
		t.Fatalf("--data -: %v", m)
	}
	file := filepath.Join(t.TempDir(), "body.xml")
	os.WriteFile(file, []byte("<a/>"), 0o600)
	m = echo(te.must(t, "", "call", "PUT", "/echo/z", "--data", "@"+file, "-H", "Content-Type: application/xml"))
	if m["body"] != "<a/>" || m["content_type"] != "application/xml" || m["method"] != "PUT" {
		t.Fatalf("--data @file: %v", m)
	}
	// --ui resolves against the router's UI server URL.
	m = echo(te.must(t, "", "call", "POST", "/echo/session", "--ui", "--data", "{}"))
	if m["path"] != "/uiserver0/echo/session" || m["auth"] != "Bearer "+tok {
		t.Fatalf("--ui: %v", m)
	}
	// Outside 2xx: the body on stdout, the status on stderr, exit 1.
	code, out, errs := te.run(t, "", "call", "DELETE", "/echo/gone?status=404")
	if code != 1 || echo(out)["method"] != "DELETE" || !strings.Contains(errs, "404 Not Found") {
		t.Fatalf("404: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	// A path the server itself answers (the token endpoint allows only
	// POST): its status comes through.
	code, _, errs = te.run(t, "", "call", "GET", "/api/security/token/v2")
	if code != 1 || !strings.Contains(errs, "405") {
		t.Fatalf("GET token endpoint: exit %d, stderr %q", code, errs)
	}
}

// After the server ends the session, call gets a new token, retries once
// and caches the new token.
func TestCallRenewsAfter401(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	first := strings.TrimSpace(te.must(t, "", "token"))
	var mu sync.Mutex
	seen := []string{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b))
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer "+first {
			w.WriteHeader(401)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer api.Close()
	out := te.must(t, "", "call", "POST", api.URL+"/x", "--data", "payload")
	if out != "ok" || len(seen) != 2 || seen[1] != "payload" {
		t.Fatalf("out %q, requests %q", out, seen)
	}
	if second := strings.TrimSpace(te.must(t, "", "token")); second == first {
		t.Fatal("the renewed token was not cached")
	}
	if n := te.requests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

// The root's --data (store directory) set in the environment does not
// become call's request body.
func TestCallIgnoresDataFromEnvironment(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword, "GATEHOUSE_DATA", "/var/lib/gatehouse")
	var m map[string]string
	json.Unmarshal([]byte(te.must(t, "", "call", "POST", "/echo/x")), &m)
	if m["body"] != "" {
		t.Fatalf("body = %q", m["body"])
	}
}

// TestCallThroughRealRouter runs `gatehouse call` against gatehouse's own UI
// router and gateway: the router's answer is printed, and --ui sends a
// relative Interactive API path to the UI server URL it names, where the
// gateway admits the user and passes the request upstream.
func TestCallThroughRealRouter(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "user": r.Header.Get("X-Gatehouse-User"), "family": r.Header.Get("X-Gatehouse-Family")})
	}))
	defer upstream.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	e := apptest.New(t, func(c *app.Config) {
		c.UIServerURL = base + "/uiserver0"
		c.Upstreams = []string{"interactive=" + upstream.URL}
	})
	e.AddUser(tokUser, tokPassword, true, "")
	srv := &http.Server{Handler: e.App.Handler}
	go srv.Serve(ln)
	defer srv.Close()
	env := map[string]string{"XDG_CACHE_HOME": t.TempDir(), "P21_BASE_URL": base, "P21_USERNAME": tokUser, "P21_PASSWORD": tokPassword}
	runCLI := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
		return code, out.String(), errb.String()
	}
	code, out, errs := runCLI("call", "GET", "/api/ui/router/v1?urlType=external")
	if code != 0 || strings.TrimSpace(out) != `{"Url":"`+base+`/uiserver0"}` {
		t.Fatalf("router: exit %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI("call", "POST", "/api/ui/interactive/sessions", "--ui", "--data", "{}")
	var got map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["path"] != "/uiserver0/api/ui/interactive/sessions" ||
		got["user"] != tokUser || got["family"] != "interactive" {
		t.Fatalf("--ui: exit %d %q %q", code, out, errs)
	}
}

// TestTokenAPXAgainstGatehouse: the APX preset, pointed at gatehouse's own
// /oauth/token with APX_TOKEN_URL, gets a token for a consumer allowed the
// password grant.
func TestTokenAPXAgainstGatehouse(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("svc", "apx-pw-1", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "apx-client", Scope: "access", Grants: []string{"password"}})
	env := map[string]string{"XDG_CACHE_HOME": t.TempDir(), "APX_TOKEN_URL": e.URL + "/oauth/token",
		"APX_CLIENT_SECRET": key, "APX_USERNAME": "svc", "APX_PASSWORD": "apx-pw-1"}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"token", "--apx", "--client-id", "apx-client", "--json"}, strings.NewReader(""), &out, &errb,
		func(k string) string { return env[k] })
	if code != 0 || !strings.Contains(out.String(), `"scope": "access"`) || !strings.Contains(out.String(), `"access_token"`) {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String()+errb.String(), key) {
		t.Fatal("client secret printed")
	}
}

// TestTokenLogLevel: --log-level debug reaches the client package, which
// says when it assumes the default lifetime; the token never reaches the log.
func TestTokenLogLevel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"AccessToken":"tok-without-expiry-123","TokenType":"Bearer"}`)
	}))
	defer srv.Close()
	env := map[string]string{"XDG_CACHE_HOME": t.TempDir(), "P21_BASE_URL": srv.URL, "P21_CONSUMER_KEY": "62ccc18a-25e2-440c-bf6d-749c117fa9db"}
	runCLI := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
		return code, out.String(), errb.String()
	}
	code, out, errs := runCLI("token", "--log-level", "debug", "--no-cache")
	if code != 0 || strings.TrimSpace(out) != "tok-without-expiry-123" {
		t.Fatalf("exit %d %q %q", code, out, errs)
	}
	if !strings.Contains(errs, "assuming the default") || !strings.Contains(errs, "level=DEBUG") {
		t.Errorf("no debug line about the default lifetime:\n%s", errs)
	}
	if strings.Contains(errs, "tok-without-expiry-123") || strings.Contains(errs, "62ccc18a") {
		t.Errorf("the log shows a secret:\n%s", errs)
	}
	if code, _, errs = runCLI("token", "--no-cache"); code != 0 || strings.Contains(errs, "DEBUG") {
		t.Errorf("default level logs debug lines: exit %d\n%s", code, errs)
	}
	if code, _, errs = runCLI("token", "--log-level", "loud"); code != 2 || !strings.Contains(errs, `--log-level "loud"`) {
		t.Errorf("bad --log-level: exit %d %q", code, errs)
	}
}
