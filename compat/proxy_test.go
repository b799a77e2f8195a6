package compat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/policy"
)

// The real-proxy tests take the forward-auth snippets of docs/gateway.md as
// printed, run each proxy in front of gatehouse and an upstream that
// records what it receives, and put every snippet through a table of
// attack requests. For each request, either the proxy refuses it, or the
// upstream receives exactly the path and identity that gatehouse judged —
// never a path naming another table, a system resource or another family,
// and never a client-sent identity header.

// snippet returns the first fenced block of the given language in
// docs/gateway.md whose text starts with start ("" for any).
func snippet(t *testing.T, lang, start string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllSubmatch(doc, -1) {
		if strings.HasPrefix(string(m[1]), start) {
			return string(m[1])
		}
	}
	t.Fatalf("docs/gateway.md has no %s snippet starting %q", lang, start)
	return ""
}

// binary finds a proxy's executable; in CI a missing one fails the test.
func binary(t *testing.T, name, pkg string, paths ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Skip(t, name, fmt.Sprintf("apt-get install %s to run it", pkg))
	return ""
}

// freePort returns a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProxy runs cmd until the test ends, waits until port accepts
// connections, and stops it gracefully (stop, then wait) at the end,
// checking that the process is gone.
func startProxy(t *testing.T, cmd *exec.Cmd, port int, stop os.Signal, logs ...string) {
	t.Helper()
	out, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("%s did not stop within 10 s of %v", cmd.Path, stop)
		}
		// Nothing of its process group may outlive the test.
		if err := syscall.Kill(-cmd.Process.Pid, 0); err == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("%s left processes running", cmd.Path)
		}
	})
	testtime.Eventually(t, 15*time.Second, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(out.Name())
			var more []byte
			for _, l := range logs {
				x, _ := os.ReadFile(l)
				more = append(more, x...)
			}
			t.Fatalf("%s exited at start: %s %s", cmd.Path, b, more)
		default:
		}
		return fmt.Errorf("%s does not listen on %d", cmd.Path, port)
	})
}

// received is one request as the upstream saw it.
type received struct {
	RequestURI string
	Header     http.Header
}

// recordingUpstream answers 200 and keeps every request, keyed by the
// X-Test-Case header the test sends.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string][]received
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{seen: map[string][]received{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		id := r.Header.Get("X-Test-Case")
		u.seen[id] = append(u.seen[id], received{r.RequestURI, r.Header.Clone()})
		u.mu.Unlock()
		w.Write([]byte("upstream"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) got(id string) []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[id]
}

// attack is one request sent through a proxy: a request line target and
// headers written by hand (names as given, repeats allowed).
type attack struct {
	name    string
	method  string
	target  string
	headers []string
	// reach: the request must reach the upstream (an allowed baseline), so
	// that the table cannot pass by refusing everything.
	reach bool
}

// attacks is the table every snippet goes through. tok is a consumer token
// scoped /odata:supplier with the user context api_user.
func attacks(tok string) []attack {
	b := "Bearer " + tok
	const sup = "/odataservice/odata/table/supplier"
	const cus = "/odataservice/odata/table/customer"
	a := []attack{
		{name: "baseline", target: sup + "?$top=5", headers: []string{"Authorization", b}, reach: true},
		{name: "baseline key", target: sup + "(12)", headers: []string{"Authorization", b}, reach: true},
		{name: "baseline post", method: "POST", target: sup, headers: []string{"Authorization", b, "Content-Length", "2"}, reach: true},
		{name: "other table", target: cus, headers: []string{"Authorization", b}},
		{name: "no token", target: sup, headers: nil},
		{name: "client X-Forwarded-Uri", target: cus, headers: []string{"Authorization", b, "X-Forwarded-Uri", sup, "X-Forwarded-Method", "GET"}},
		{name: "client X-Original-URI", target: cus, headers: []string{"Authorization", b, "X-Original-URI", sup}},
		{name: "client both pairs", target: cus, headers: []string{"Authorization", b, "X-Original-URI", sup, "X-Forwarded-Uri", sup}},
		{name: "client X-Original-URL", target: sup, headers: []string{"Authorization", b, "X-Original-URL", cus}},
		{name: "client X_Rewrite_URL", target: sup, headers: []string{"Authorization", b, "X_Rewrite_URL", cus}},
		{name: "identity header", target: sup, headers: []string{"Authorization", b, "X-Gatehouse-User", "admin"}},
		{name: "identity scope", target: sup, headers: []string{"Authorization", b, "X-Gatehouse-Scope", "/api"}},
		{name: "identity underscores", target: sup, headers: []string{"Authorization", b, "X_Gatehouse_User", "admin"}},
		{name: "identity mixed", target: sup, headers: []string{"Authorization", b, "X-Gatehouse_Scope", "/api"}},
		{name: "identity lower", target: sup, headers: []string{"Authorization", b, "x-gatehouse-family", "api"}},
		{name: "identity unknown", target: sup, headers: []string{"Authorization", b, "X-Gatehouse-Admin", "1"}},
		{name: "two identity", target: sup, headers: []string{"Authorization", b, "X-Gatehouse-User", "a", "X-Gatehouse-User", "b"}},
		{name: "two Authorization", target: sup, headers: []string{"Authorization", b, "Authorization", "Bearer junk"}},
		{name: "two Authorization reversed", target: sup, headers: []string{"Authorization", "Bearer junk", "Authorization", b}},
		{name: "two X-Forwarded-Uri", target: cus, headers: []string{"Authorization", b, "X-Forwarded-Uri", sup, "X-Forwarded-Uri", sup}},
		{name: "spoofed forwarded", target: sup, headers: []string{"Authorization", b, "X-Forwarded-For", "10.0.0.1", "X-Forwarded-Host", "evil", "X-Forwarded-Proto", "https", "X-Original-Method", "DELETE"}},
		{name: "absolute form", target: "http://evil" + cus, headers: []string{"Authorization", b}},
		{name: "absolute form same", target: "http://evil" + sup, headers: []string{"Authorization", b}},
	}
	for _, p := range []string{
		cus + ";x", sup + ";x", sup + "/..;/customer", "/api/.configuration/..;/entity/customers", sup + "/../customer",
		sup + "/%2e%2e/customer", sup + "/%2E%2e/customer", sup + "/.%2e/customer", sup + "/%252e%252e/customer",
		cus + "%20", cus + ".", cus + "%2e", "/odataservice//odata/table/customer", "/odataservice/odata//table/supplier",
		sup + "%2f..%2fcustomer", sup + "%5c..%5ccustomer", sup + "%00", sup + "%0d%0aX-Gatehouse-User:%20admin", "/odataservice/odata/table/cust%6fmer",
		"/odataservice/odata/table/CUSTOMER", "/ODATASERVICE/ODATA/TABLE/Customer", "/odataservice/odata/table/$batch",
		"/odataservice/odata/table/$metadata", "/odataservice/odata/table/$all", "/odataservice/odata/table/$crossjoin(customer,supplier)",
		"/odataservice/odata/table/$entity?$id=customer(1)", "/odataservice/odata/table/$root", "/odataservice/odata/table/%24batch",
		sup + "(1)/customer", sup + "?$expand=customer", sup + "?$expand=*", sup + "?%24expand=customer", sup + "?expand=customer",
		sup + "?$select=customer/name", sup + "?$filter=customer/name%20eq%20'x'", sup + "?$expand=customer($select=name)",
		sup + "?$apply=expand(customer)", sup + "?$expand=customer(", sup + "?$top=1;$expand=customer", "/odataservice/odata/view/customer",
		"/api/entity/customers", "/api/.configuration/x", "/uiserver0/api/v2/transaction", "/api/ui/interactive/sessions",
		"/p21sdk/x", "/odataservice/odata/table", "/odataservice/odata/table/", "/nowhere", "/odataservice/odata/customer",
		"/odataservice/odata/table/supplier%EF%BC%8E%EF%BC%8E/customer", "/odataservice/odata/table/%C0%AE%C0%AE/customer",
	} {
		a = append(a, attack{name: "path " + p, target: p, headers: []string{"Authorization", b}})
	}
	return a
}

// send writes an attack to the proxy on addr, with X-Test-Case set to id,
// and returns the status (0 when the proxy closed the connection).
func send(t *testing.T, addr, id string, a attack) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	m := a.method
	if m == "" {
		m = "GET"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: p21.example\r\nConnection: close\r\nX-Test-Case: %s\r\n", m, a.target, id)
	for i := 0; i+1 < len(a.headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", a.headers[i], a.headers[i+1])
	}
	b.WriteString("\r\n")
	if m == "POST" {
		b.WriteString("{}")
	}
	io.WriteString(c, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// runAttacks sends the table through the proxy and checks every request
// the upstream received against gatehouse's own judgement of it.
func runAttacks(t *testing.T, e *apptest.Env, up *recordingUpstream, proxy, tok string) {
	t.Helper()
	for i, a := range attacks(tok) {
		id := fmt.Sprintf("case-%d", i)
		st := send(t, proxy, id, a)
		got := up.got(id)
		if a.reach && (st != 200 || len(got) != 1) {
			t.Errorf("%s: %d, upstream saw %d requests; want it to reach the upstream", a.name, st, len(got))
		}
		for _, r := range got {
			checkReceived(t, e, a, r)
		}
		if len(got) == 0 && st == 200 {
			t.Errorf("%s: 200 without reaching the upstream", a.name)
		}
		if st >= 500 || st == 0 {
			// nginx answers 500 for any check status but 2xx, 401 and 403.
			t.Errorf("%s: the proxy answered %d", a.name, st)
		}
	}
}

// checkReceived checks one request the upstream received: gatehouse,
// asked about exactly that request line, allows it as the odata supplier
// object and nothing else, and the identity headers are the ones it set.
func checkReceived(t *testing.T, e *apptest.Env, a attack, r received) {
	t.Helper()
	path, query, _ := strings.Cut(r.RequestURI, "?")
	authz, _ := r.Header["Authorization"]
	az, err := e.App.Authorizer.Authorize(context.Background(), policy.Request{Path: path, Query: query, Authorization: authz})
	if err != nil {
		t.Errorf("%s: the upstream received %q, which gatehouse refuses: %v", a.name, r.RequestURI, err)
		return
	}
	if az.Match.Family.Name != "odata" || len(az.Match.Objects) != 1 || az.Match.Objects[0] != "supplier" || az.Match.All != "" {
		t.Errorf("%s: the upstream received %q: %s %v %q", a.name, r.RequestURI, az.Match.Family.Name, az.Match.Objects, az.Match.All)
	}
	want := map[string]string{
		"X-Gatehouse-User": az.ActingUser, "X-Gatehouse-Consumer-Uid": az.Identity.ConsumerUID(),
		"X-Gatehouse-Session-Id": az.Identity.Claims.SessionID, "X-Gatehouse-Scope": az.Identity.Claims.Audience,
		"X-Gatehouse-Family": "odata",
	}
	for k, vs := range r.Header {
		f := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		switch {
		case strings.HasPrefix(f, "x-gatehouse-"):
			w, ok := want[k]
			if !ok || len(vs) != 1 || vs[0] != w {
				t.Errorf("%s: the upstream received %s: %q (gatehouse set %q)", a.name, k, vs, w)
			}
		case f == "x-original-url" || f == "x-rewrite-url":
			t.Errorf("%s: the upstream received %s: %q", a.name, k, vs)
		}
	}
	for k, w := range want {
		if w != "" && r.Header.Get(k) != w {
			t.Errorf("%s: the upstream received %s %q, want %q", a.name, k, r.Header.Get(k), w)
		}
	}
}

// proxyEnv is gatehouse with a consumer scoped to one table.
func proxyEnv(t *testing.T) (*apptest.Env, string) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "reports", Scope: "/odata:supplier"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `","username":"api_user"}`)
	return e, tok
}

// TestNginxForwardAuth runs nginx with the auth_request snippet of
// docs/gateway.md.
func TestNginxForwardAuth(t *testing.T) {
	nginx := binary(t, "nginx", "nginx-light", "/usr/sbin/nginx")
	e, tok := proxyEnv(t)
	up := newRecordingUpstream(t)
	port := freePort(t)
	dir := t.TempDir()
	s := strings.ReplaceAll(snippet(t, "nginx", ""), "http://127.0.0.1:8080", e.URL)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s;
    proxy_temp_path %[1]s;
    upstream p21_backend { server %[2]s; }
    server {
        listen 127.0.0.1:%[3]d;
%[4]s
    }
}
`, dir, strings.TrimPrefix(up.URL, "http://"), port, s)
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(conf), 0o600)
	startProxy(t, exec.Command(nginx, "-c", confPath, "-p", dir), port, syscall.SIGQUIT, filepath.Join(dir, "error.log"))
	runAttacks(t, e, up, fmt.Sprintf("127.0.0.1:%d", port), tok)
}

// TestCaddyForwardAuth runs Caddy with the forward_auth snippet of
// docs/gateway.md.
func TestCaddyForwardAuth(t *testing.T) {
	caddy := binary(t, "caddy", "caddy", "/usr/bin/caddy")
	e, tok := proxyEnv(t)
	up := newRecordingUpstream(t)
	port := freePort(t)
	dir := t.TempDir()
	s := snippet(t, "caddy", "")
	s = strings.ReplaceAll(s, "127.0.0.1:8080", strings.TrimPrefix(e.URL, "http://"))
	s = strings.ReplaceAll(s, "p21_backend:8081", strings.TrimPrefix(up.URL, "http://"))
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n}\n\nhttp://:%d {\n\tbind 127.0.0.1\n%s}\n", port, s)
	confPath := filepath.Join(dir, "Caddyfile")
	os.WriteFile(confPath, []byte(conf), 0o600)
	cmd := exec.Command(caddy, "run", "--config", confPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	startProxy(t, cmd, port, syscall.SIGTERM)
	runAttacks(t, e, up, fmt.Sprintf("127.0.0.1:%d", port), tok)
}
