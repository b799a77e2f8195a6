package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"golang.org/x/crypto/bcrypt"
)

// cli runs one gatehouse command line in-process and returns its exit code
// and output.
func cli(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

func mustCLI(t *testing.T, stdin string, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, stdin, env, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func waitReady(t *testing.T, base string, d time.Duration) {
	t.Helper()
	testtime.Eventually(t, d, func() error {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return fmt.Errorf("server at %s not ready: %w", base, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("server at %s not ready: /readyz answers %d", base, resp.StatusCode)
		}
		return nil
	})
}

// served is a `gatehouse serve` run in the test's own process.
type served struct {
	base      string
	out, errb syncBuf
	cancel    context.CancelFunc // begins the shutdown, as SIGTERM does
	done      chan int
	stopOnce  sync.Once
	code      int
}

// serveInProcess runs `gatehouse serve` with args and --addr on a free
// loopback port, the environment read from env, until stop or the end of
// the test, and waits until it is ready.
func serveInProcess(t *testing.T, env map[string]string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	s := &served{base: "http://" + addr, cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, append(append([]string{"serve"}, args...), "--addr", addr),
			strings.NewReader(""), &s.out, &s.errb, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() { s.stop() })
	waitReady(t, s.base, 10*time.Second)
	return s
}

// stop ends the server and returns its exit code.
func (s *served) stop() int {
	s.stopOnce.Do(func() {
		s.cancel()
		s.code = <-s.done
	})
	return s.code
}

// TestServeWithAdminFromAnotherProcess starts `serve --dev`, then manages
// users, consumers and sessions through the CLI on the same data dir while
// the server runs, as an operator in another shell does.
func TestServeWithAdminFromAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuf
	cfgDone := make(chan int, 1)
	addr := freeAddr(t)
	go func() {
		cfgDone <- run(ctx, []string{"serve", "--dev", "--data", dir, "--addr", addr, "--feed-interval", "100ms"},
			strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	}()
	base := "http://" + addr
	waitReady(t, base, 10*time.Second)
	if !strings.Contains(out.String(), "demo / ") || !strings.Contains(out.String(), "curl -s "+base+"/api/security/token/v2") {
		t.Fatalf("--dev did not print demo credentials and curl commands:\n%s", out.String())
	}

	mustCLI(t, "your_password\n", env, "--data", dir, "user", "add", "api_user", "--allow-odata", "--password-stdin")
	addOut := mustCLI(t, "", env, "--data", dir, "consumer", "add", "MY_SERVICE_APP", "--scope", "/api", "--sdk", "--json")
	var c struct {
		UID         string `json:"uid"`
		ConsumerKey string `json:"consumer_key"`
	}
	if err := json.Unmarshal([]byte(addOut), &c); err != nil || c.ConsumerKey == "" {
		t.Fatalf("consumer add --json: %v\n%s", err, addOut)
	}

	st, u := postJSON(t, base+"/api/security/token/v2", `{"username":"api_user","password":"your_password"}`)
	if st != 200 || u["ExpiresInSeconds"] != 86400.0 {
		t.Fatalf("user token: %d %v", st, u)
	}
	st, cr := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+c.ConsumerKey+`","username":"api_user"}`)
	if st != 200 || cr["ConsumerUid"] != c.UID || cr["Scope"] != "/api;/p21sdk" || cr["UserName"] != "api_user" {
		t.Fatalf("consumer token: %d %v", st, cr)
	}

	// Listings see the sessions.
	var sessions []struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	listOut := mustCLI(t, "", env, "--data", dir, "session", "list", "--user", "api_user", "--json")
	if err := json.Unmarshal([]byte(listOut), &sessions); err != nil || len(sessions) != 2 {
		t.Fatalf("session list: %v\n%s", err, listOut)
	}

	// End the user's session from "another shell": its refresh token is
	// refused within a second.
	_, tokClaims := decodeJWT(t, u["AccessToken"].(string))
	sid := tokClaims["P21.SessionId"].(string)
	mustCLI(t, "", env, "--data", dir, "session", "end", sid)
	testtime.Eventually(t, time.Second, func() error {
		st, _ := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"refresh_token","RefreshToken":"`+u["RefreshToken"].(string)+`"}`)
		if st != 400 {
			return fmt.Errorf("refresh of an ended session still answers %d", st)
		}
		return nil
	})

	// A disabled consumer is refused within a second.
	mustCLI(t, "", env, "--data", dir, "consumer", "disable", "MY_SERVICE_APP")
	testtime.Eventually(t, time.Second, func() error {
		st, body := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+c.ConsumerKey+`"}`)
		if st != 401 || body["error"] != "invalid_client" {
			return fmt.Errorf("disabled consumer still answers %d", st)
		}
		return nil
	})

	// A deleted user gets the same answer as a wrong password.
	mustCLI(t, "", env, "--data", dir, "user", "delete", "api_user")
	_, wrong := postJSON(t, base+"/api/security/token/v2", `{"username":"api_user","password":"nope"}`)
	_, deleted := postJSON(t, base+"/api/security/token/v2", `{"username":"api_user","password":"your_password"}`)
	if fmt.Sprint(wrong) != fmt.Sprint(deleted) || wrong["error"] != "invalid_grant" {
		t.Fatalf("deleted user %v vs wrong password %v", deleted, wrong)
	}

	// The audit trail holds it all, as JSON lines.
	auditOut := mustCLI(t, "", env, "--data", dir, "audit", "--json")
	for _, want := range []string{`"token.issue"`, `"token.refuse"`, `"user.add"`, `"consumer.add"`, `"session.end"`, `"user.delete"`} {
		if !strings.Contains(auditOut, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	if strings.Contains(auditOut, "your_password") || strings.Contains(auditOut, c.ConsumerKey) {
		t.Error("audit trail holds a secret")
	}

	cancel()
	select {
	case code := <-cfgDone:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(errb.String(), "stopped") {
		t.Errorf("no graceful shutdown in log:\n%s", errb.String())
	}
}

func TestAdminErrors(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	for _, tc := range []struct {
		args    []string
		stdin   string
		code    int
		message string
	}{
		{[]string{"user", "add", "bad name!", "--password-stdin"}, "pw\n", 2, `user name "bad name!" is not valid`},
		{[]string{"user", "show", "nobody"}, "", 2, `user "nobody" does not exist`},
		{[]string{"consumer", "add", "x", "--scope", "/odata"}, "", 2, "OData scope must list tables"},
		{[]string{"consumer", "add", "x", "--scope", "/api;/a b"}, "", 2, `"/a b"`},
		{[]string{"consumer", "add", "x", "--scope", "/api ;\n/p21sdk"}, "", 2, "control character"},
		{[]string{"consumer", "add", "x", "--scope", "/api", "--expires", "soon"}, "", 2, "soon"},
		{[]string{"consumer", "add", "x", "--scope", "/api", "--grant", "implicit"}, "", 2, "implicit"},
		{[]string{"user", "add", "u", "--password-stdin"}, "", 2, "empty"},
		{[]string{"session", "end"}, "", 2, "give either a session ID or --user U"},
		{[]string{"role", "allow", "norole", "supplier"}, "", 2, `role "norole" does not exist`},
	} {
		code, out, errs := cli(t, tc.stdin, env, append([]string{"--data", dir}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.message) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q); want exit %d mentioning %q", tc.args, code, errs, out, tc.code, tc.message)
		}
	}
	// A data dir that does not exist is named.
	code, _, errs := cli(t, "", env, "--data", filepath.Join(dir, "missing"), "user", "list")
	if code == 0 || !strings.Contains(errs, "missing") {
		t.Errorf("missing data dir: %d %q", code, errs)
	}
}

// TestKill9KeepsAcknowledgedWrites kills the server with SIGKILL right
// after it answered a token request, restarts it, and finds the user, the
// consumer and the session behind the token.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	addr := freeAddr(t)
	base := "http://" + addr
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), "GATEHOUSE_HELPER_PROCESS=1", "GATEHOUSE_MASTER_KEY="+apptest.TestMasterKey,
			"GATEHOUSE_HELPER_ARGS="+strings.Join([]string{"serve", "--dev", "--data", dir, "--addr", addr}, "\x1f"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitReady(t, base, 15*time.Second)
		return cmd
	}
	srv := start()
	mustCLI(t, "your_password\n", env, "--data", dir, "user", "add", "api_user", "--password-stdin")
	out := mustCLI(t, "", env, "--data", dir, "consumer", "add", "svc", "--scope", "/api", "--json")
	var c struct {
		ConsumerKey string `json:"consumer_key"`
	}
	json.Unmarshal([]byte(out), &c)
	st, tok := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+c.ConsumerKey+`"}`)
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()

	srv = start()
	defer func() { srv.Process.Signal(syscall.SIGKILL); srv.Wait() }()
	mustCLI(t, "", env, "--data", dir, "user", "show", "api_user")
	mustCLI(t, "", env, "--data", dir, "consumer", "show", "svc")
	sessions := mustCLI(t, "", env, "--data", dir, "session", "list", "--consumer", "svc", "--json")
	if !strings.Contains(sessions, tok["SessionId"].(string)) {
		t.Fatalf("session %s lost after kill -9: %s", tok["SessionId"], sessions)
	}
	// And the restarted server still issues for the consumer.
	if st, body := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+c.ConsumerKey+`"}`); st != 200 {
		t.Fatalf("after restart: %d %v", st, body)
	}
}

// TestHelperProcess is the server process of TestKill9KeepsAcknowledgedWrites.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("GATEHOUSE_HELPER_PROCESS") != "1" {
		t.Skip("only runs as a child process of another test")
	}
	args := strings.Split(os.Getenv("GATEHOUSE_HELPER_ARGS"), "\x1f")
	os.Exit(run(context.Background(), args, os.Stdin, io.Discard, io.Discard, os.Getenv))
}

func decodeJWT(t *testing.T, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	dec := func(s string) map[string]any {
		var m map[string]any
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// syncBuf is a buffer safe for the server goroutine and the test to share.
type syncBuf struct{ apptest.SyncBuffer }

// TestGracefulShutdown: a request in flight when the server is told to stop
// (SIGTERM cancels the command's context) is finished while new connections
// are refused, then serve returns.
func TestGracefulShutdown(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseUpstream := func() { releaseOnce.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		w.Write([]byte(`{"ok":true}`))
	}))
	defer slow.Close()
	defer releaseUpstream()
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	srv := serveInProcess(t, env, "--dev", "--data", dir, "--upstream", "api="+slow.URL)
	base := srv.base
	out := mustCLI(t, "", env, "--data", dir, "consumer", "add", "svc", "--scope", "/api", "--json")
	var c struct {
		ConsumerKey string `json:"consumer_key"`
	}
	json.Unmarshal([]byte(out), &c)
	_, tok := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+c.ConsumerKey+`"}`)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/entity/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok["AccessToken"].(string))
	got := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-arrived // the request is in flight, held by the upstream
	srv.cancel()
	testtime.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return errors.New("still accepting connections after shutdown began")
		}
		return nil
	})
	releaseUpstream()
	if st := <-got; st != 200 {
		t.Fatalf("in-flight request got %d during shutdown", st)
	}
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d: %s", code, srv.errb.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

// TestYAMLFamiliesAndUpstreams: an APX-style deployment configured in the
// YAML file — a family granted by the plain scope "access", with an upstream.
func TestYAMLFamiliesAndUpstreams(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("X-Gatehouse-Family") + " " + r.URL.Path))
	}))
	defer up.Close()
	dir := filepath.Join(t.TempDir(), "data")
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	os.WriteFile(cfgFile, []byte(`
families:
  - name: apx
    paths: [/v1]
    granted_by: [access]
    users: none
gateway:
  upstreams:
    apx: `+up.URL+`
rate-limit: 0
`), 0o600)
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	base := serveInProcess(t, env, "--dev", "--config", cfgFile, "--data", dir).base
	out := mustCLI(t, "", env, "--data", dir, "consumer", "add", "apx-client", "--scope", "access", "--json")
	var c struct {
		ConsumerKey string `json:"consumer_key"`
	}
	json.Unmarshal([]byte(out), &c)
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("apx-client", c.ConsumerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.Scope != "access" || tok.AccessToken == "" {
		t.Fatalf("oauth token: %d %+v", resp.StatusCode, tok)
	}
	get := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/v1/orders", tok.AccessToken); st != 200 || body != "apx /v1/orders" {
		t.Fatalf("apx route: %d %s", st, body)
	}
	if st, body := get("/api/entity/x", tok.AccessToken); st != 403 || !strings.Contains(body, "insufficient_scope") {
		t.Fatalf("P21 route with access scope: %d %s", st, body)
	}
}

// TestUserImportHash: a user imported with an existing bcrypt hash signs in
// with the old password, and the hash becomes argon2id on the way.
func TestUserImportHash(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	h, err := bcrypt.GenerateFromPassword([]byte("legacy-pw-1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli(t, string(h)+"\n", env, "--data", dir, "user", "add", "legacy", "--password-hash-stdin"); code != 0 {
		t.Fatalf("user add with a hash: %d %s %s", code, out, errs)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"not-a-hash-SECRETISH\n", []string{"user", "add", "x", "--password-hash-stdin"}, "not a bcrypt"},
		{"pw\n", []string{"user", "add", "y", "--password-stdin", "--password-hash-env", "H"}, "not both"},
		{"$2b$99$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", []string{"user", "set-password", "legacy", "--password-hash-stdin"}, "not a bcrypt"},
		// Imported bcrypt costs are capped at 12: each step doubles the work of every sign-in.
		{"$2b$13$" + string(h[7:]) + "\n", []string{"user", "set-password", "legacy", "--password-hash-stdin"}, "cost 4 to 12"},
		{"$argon2id$v=19$m=262144,t=3,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5\n", []string{"user", "set-password", "legacy", "--password-hash-stdin"}, "at most 64 MiB"},
		{"", []string{"user", "set-password", "legacy"}, "--password-hash-stdin"},
	} {
		code, _, errs := cli(t, tc.stdin, env, append([]string{"--data", dir}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Contains(errs, "SECRETISH") {
			t.Errorf("%v: exit %d %q; want 2 mentioning %q", tc.args, code, errs, tc.want)
		}
	}
	cfg := apptest.Config(t)
	cfg.DataDir = dir
	a, err := app.New(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Service.PasswordToken(context.Background(), "legacy", "legacy-pw-1", issue.Meta{}); err != nil {
		t.Fatalf("sign-in with the imported bcrypt password: %v", err)
	}
	u, err := a.Store.GetUser(context.Background(), "legacy")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("hash after sign-in: %q %v", u.PasswordHash, err)
	}
	evs, _ := a.Store.ListAudit(context.Background(), store.AuditFilter{Action: "user.add"})
	if len(evs) != 1 || !strings.Contains(evs[0].Detail, "password=imported-hash") || strings.Contains(evs[0].Detail, "$2") {
		t.Errorf("user.add audit: %+v", evs)
	}
}

// TestSetPasswordEndsSessions: `user set-password` ends the user's sessions,
// for a password and for an imported hash, unless --keep-sessions.
func TestSetPasswordEndsSessions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	mustCLI(t, "pw-one-1\n", env, "--data", dir, "user", "add", "lee", "--password-stdin")
	cfg := apptest.Config(t)
	cfg.DataDir = dir
	a, err := app.New(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	signIn := func(pw string) string {
		t.Helper()
		iss, err := a.Service.PasswordToken(ctx, "lee", pw, issue.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		return iss.Session.ID
	}
	reason := func(id string) string {
		t.Helper()
		s, err := a.Store.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return s.EndReason
	}
	id := signIn("pw-one-1")
	if out := mustCLI(t, "pw-two-2\n", env, "--data", dir, "user", "set-password", "lee", "--password-stdin"); !strings.Contains(out, "1 sessions ended") {
		t.Fatalf("set-password: %s", out)
	}
	if r := reason(id); r != "password_changed" {
		t.Fatalf("session after set-password: ended %q", r)
	}
	id = signIn("pw-two-2")
	if out := mustCLI(t, "pw-three-3\n", env, "--data", dir, "user", "set-password", "lee", "--password-stdin", "--keep-sessions"); !strings.Contains(out, "sessions kept") {
		t.Fatalf("set-password --keep-sessions: %s", out)
	}
	if r := reason(id); r != "" {
		t.Fatalf("session after set-password --keep-sessions: ended %q", r)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("pw-four-4"), bcrypt.MinCost)
	mustCLI(t, string(h)+"\n", env, "--data", dir, "user", "set-password", "lee", "--password-hash-stdin")
	if r := reason(id); r != "password_changed" {
		t.Fatalf("session after a hash import: ended %q", r)
	}
	signIn("pw-four-4")
}

// TestServeGovernsMemoryLimit: while serve runs it keeps the process's soft
// memory limit (GOMEMLIMIT unset), and gives the one before it back when it
// returns.
func TestServeGovernsMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // restored at the end
	os.Unsetenv("GOMEMLIMIT")
	const before = 12345 << 20
	old := debug.SetMemoryLimit(before)
	defer debug.SetMemoryLimit(old)

	srv := serveInProcess(t, nil, "--dev", "--data", filepath.Join(t.TempDir(), "data"))
	if got := debug.SetMemoryLimit(-1); got == before || got < app.BaseMemory {
		t.Errorf("limit while serving: %d MiB", got>>20)
	}
	srv.stop()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit after serve returned: %d MiB, want the one before, %d MiB", got>>20, before>>20)
	}
}
