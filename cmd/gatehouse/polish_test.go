package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app/apptest"
)

// TestUsageErrors: argument and flag mistakes exit 2 with the usage line.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args  []string
		usage string
	}{
		{[]string{"user", "add"}, "Usage: gatehouse user add NAME [flags]"},
		{[]string{"consumer", "show", "a", "b"}, "Usage: gatehouse consumer show NAME|UID [flags]"},
		{[]string{"user", "list", "--nosuch"}, "Usage: gatehouse user list [flags]"},
		{[]string{"nosuch"}, "Usage: gatehouse [flags]"},
		{[]string{"consumer", "add", "x"}, "Usage: gatehouse consumer add NAME --scope SCOPE [flags]"},
	} {
		code, _, errs := cli(t, "", nil, c.args...)
		if code != 2 || !strings.Contains(errs, c.usage) {
			t.Errorf("%v: exit %d %q, want 2 and %q", c.args, code, errs, c.usage)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out := mustCLI(t, "", nil, args...)
		if !regexp.MustCompile(`^gatehouse \S+, revision .+, go1\.`).MatchString(out) {
			t.Errorf("%v: %q", args, out)
		}
	}
}

// TestCLIParity: consumer update keeps the key, consumer add takes a known
// key, user add wants a password source or --no-password, user show tells
// the lockout state.
func TestCLIParity(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey, "KNOWN": "0f8fad5b-d9cb-469f-a165-70867728950e"}
	mustCLI(t, "", env, "--data", dir, "migrate")

	code, _, errs := cli(t, "", env, "--data", dir, "user", "add", "nopw")
	if code != 2 || !strings.Contains(errs, "--no-password") {
		t.Errorf("user add without a password source: %d %q", code, errs)
	}
	mustCLI(t, "", env, "--data", dir, "user", "add", "nopw", "--no-password")
	mustCLI(t, "", env, "--data", dir, "user", "add", "pw", "--password-env", "KNOWN")

	out := mustCLI(t, "0f8fad5b-d9cb-469f-a165-70867728950e\n", env, "--data", dir, "consumer", "add", "app", "--scope", "/api", "--key-stdin")
	if strings.Contains(out, "0f8fad5b") || !strings.Contains(out, "registered with the given key") {
		t.Errorf("consumer add --key-stdin: %s", out)
	}
	st := openStore(t, dir)
	before, err := st.GetConsumerByName(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	out = mustCLI(t, "", env, "--data", dir, "consumer", "update", "app", "--scope", "/odata:supplier", "--expires", "30d", "--type", "web", "--grant", "password")
	if !strings.Contains(out, "key kept") || !strings.Contains(out, "/odata:supplier") || !strings.Contains(out, "30d") {
		t.Errorf("consumer update: %s", out)
	}
	after, _ := st.GetConsumerByName(context.Background(), "app")
	if string(after.KeyHash) != string(before.KeyHash) || after.Type != "web" || len(after.Grants) != 1 {
		t.Errorf("after update: %+v", after)
	}
	if code, _, _ := cli(t, "", env, "--data", dir, "consumer", "update", "app"); code != 2 {
		t.Errorf("consumer update without changes: exit %d", code)
	}

	// Lockout state: three failures with a threshold of three lock.
	for range 3 {
		st.RecordAuthFailure(context.Background(), "pw", time.Now(), 15*time.Minute)
	}
	out = mustCLI(t, "", env, "--data", dir, "user", "show", "pw", "--lockout-threshold", "3")
	if !strings.Contains(out, "locked_out") || !strings.Contains(out, "yes (gatehouse user unlock pw ends it)") {
		t.Errorf("user show: %s", out)
	}
	var j struct {
		Lockout struct {
			Locked   bool
			Failures int
		}
	}
	json.Unmarshal([]byte(mustCLI(t, "", env, "--data", dir, "user", "show", "pw", "--json")), &j)
	if j.Lockout.Failures != 3 || j.Lockout.Locked {
		t.Errorf("user show --json with the default threshold: %+v", j)
	}
}

// TestServeTLSMissing: a missing TLS file fails before anything is served
// or said to be.
func TestServeTLSMissing(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := cli(t, "", nil, "serve", "--dev", "--data", filepath.Join(dir, "d"), "--addr", "127.0.0.1:0",
		"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", filepath.Join(dir, "nope.key"))
	if code != 2 || !strings.Contains(errs, "nope.pem does not exist") || strings.Contains(out+errs, "serving") {
		t.Errorf("exit %d, %q %q", code, out, errs)
	}
}

// TestServeDevConsole: a fresh serve --dev prints the console URL and an
// administrator's login that signs in; on an existing store it says how to
// see or reset the demo credentials.
func TestServeDevConsole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	start := func() (string, *syncBuf, func()) {
		srv := serveInProcess(t, nil, "--dev", "--data", dir)
		return srv.base, &srv.out, func() { srv.stop() }
	}
	base, out, stop := start()
	m := regexp.MustCompile(`user +demo / (\S+)`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), base+"/api/admin — sign in as demo") {
		t.Fatalf("serve --dev output:\n%s", out.String())
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/api/admin/signin")
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	buf := make([]byte, 8192)
	for {
		n, err := resp.Body.Read(buf)
		page.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.String())
	resp, err = c.PostForm(base+"/api/admin/signin", url.Values{"csrf": {csrf[1]}, "username": {"demo"}, "password": {m[1]}})
	if err != nil || resp.StatusCode != 200 || resp.Request.URL.Path != "/api/admin" {
		t.Fatalf("console sign-in with the printed login: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	stop()

	_, out, stop = start()
	defer stop()
	if !strings.Contains(out.String(), "user set-password demo") || !strings.Contains(out.String(), "consumer rotate-key demo-service") {
		t.Errorf("serve --dev on an existing store:\n%s", out.String())
	}
}

// TestCompletion: names from the store and enum values.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	mustCLI(t, "", env, "--data", dir, "user", "add", "api_user", "--no-password")
	mustCLI(t, "", env, "--data", dir, "role", "add", "clerk")
	mustCLI(t, "", env, "--data", dir, "consumer", "add", "MY_APP", "--scope", "/api")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"user", "show", ""}, []string{"api_user"}},
		{[]string{"user", "update", "api_user", "--role", ""}, []string{"clerk"}},
		{[]string{"role", "allow", "cl"}, []string{"clerk"}},
		{[]string{"consumer", "rotate-key", ""}, []string{"MY_APP"}},
		{[]string{"consumer", "add", "x", "--type", ""}, []string{"desktop", "mobile", "web", "service"}},
		{[]string{"user", "add", "x", "--identity", ""}, []string{"windows", "aad", "sql"}},
		{[]string{"serve", "--token-format", ""}, []string{"negotiate", "json", "xml"}},
	} {
		out := mustCLI(t, "", env, append([]string{"__complete", "--data", dir}, c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("%v: %q lacks %q", c.args, out, w)
			}
		}
	}
	if out := mustCLI(t, "", nil, "completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Error("no bash completion script")
	}
}

// TestTokenClientCredentials: gatehouse token --client-credentials gets an
// OAuth2 token for a consumer (client id = its name, secret = its key).
func TestTokenClientCredentials(t *testing.T) {
	te := newTokenEnv(t)
	out := te.must(t, te.key+"\n", "token", "--client-credentials", "--client-id", "MY_SERVICE_APP", "--consumer-key-stdin", "--json")
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || !strings.HasPrefix(r.AccessToken, "ey") {
		t.Fatalf("token --client-credentials --json: %v %s", err, out)
	}
	code, _, errs := te.run(t, "", "token", "--client-credentials", "--client-id", "MY_SERVICE_APP")
	if code != 2 || !strings.Contains(errs, "APX_CLIENT_SECRET is not set") || !strings.Contains(errs, "--consumer-key-stdin") {
		t.Errorf("without a secret: %d %q", code, errs)
	}
}
