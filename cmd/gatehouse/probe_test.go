package main

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// probeTarget is gatehouse in some mode, behind a proxy that records every
// request, with a user, a P21 consumer and an APX-style client whose
// credentials are in env.
type probeTarget struct {
	*apptest.Env
	url string
	env map[string]string

	mu   sync.Mutex
	seen map[[32]byte]int
	body map[[32]byte]string
	sent []string
}

func newProbeTarget(t *testing.T, mutate ...func(*app.Config)) *probeTarget {
	t.Helper()
	e := apptest.New(t, mutate...)
	e.AddUser("api_user", "pw-one-two", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api", SDK: true})
	_, secret := e.AddConsumer(admin.NewConsumer{Name: "apx_client", Scope: "access", Lifetime: time.Hour,
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken}})
	pt := &probeTarget{Env: e, seen: map[[32]byte]int{}, body: map[[32]byte]string{}, env: map[string]string{
		"P21_USERNAME": "api_user", "P21_PASSWORD": "pw-one-two", "P21_CONSUMER_KEY": key,
		"APX_CLIENT_ID": "apx_client", "APX_CLIENT_SECRET": secret, "APX_USERNAME": "api_user", "APX_PASSWORD": "pw-one-two",
	}}
	target, _ := url.Parse(e.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := sha256.New()
		io.WriteString(h, r.Method+" "+r.URL.String()+"\n")
		for _, k := range []string{"Authorization", "Accept", "Username", "Password", "Appkey"} {
			io.WriteString(h, k+": "+r.Header.Get(k)+"\n")
		}
		h.Write(b)
		pt.mu.Lock()
		sum := [32]byte(h.Sum(nil))
		pt.seen[sum]++
		pt.body[sum] = string(b)
		pt.sent = append(pt.sent, r.Method+" "+r.URL.Path)
		pt.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	pt.url = front.URL
	return pt
}

// probe runs gatehouse probe --json against the target.
func (pt *probeTarget) probe(t *testing.T) ProbeReport {
	t.Helper()
	code, out, errs := cli(t, "", pt.env, "probe", "--json", pt.url)
	if code != 0 {
		t.Fatalf("probe: exit %d: %s%s", code, out, errs)
	}
	for k, v := range pt.env {
		if strings.HasSuffix(k, "PASSWORD") || strings.HasSuffix(k, "KEY") || strings.HasSuffix(k, "SECRET") {
			if strings.Contains(out+errs, v) {
				t.Errorf("the report holds %s", k)
			}
		}
	}
	var r ProbeReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	// Every request once; the refresh request twice, on purpose (a spent
	// refresh token presented again).
	for sum, n := range pt.seen {
		if n != 1 && (n != 2 || !strings.Contains(pt.body[sum], `"GrantType":"refresh_token"`)) {
			t.Errorf("a request was made %d times: %s %v", n, pt.body[sum], pt.sent)
		}
	}
	if len(pt.sent) != r.Requests || r.Requests > probeRequests {
		t.Errorf("the server saw %d requests, the report says %d (at most %d)", len(pt.sent), r.Requests, probeRequests)
	}
	return r
}

func flowNamed(r ProbeReport, name, accept string) ProbeFlow {
	for _, f := range r.Flows {
		if f.Name == name && f.Accept == accept {
			return f
		}
	}
	return ProbeFlow{}
}

// TestProbeDefaultMode: gatehouse as it starts by default answers every
// flow, JSON or XML as asked, V1 deprecated but on, refresh with rotation
// and reuse refused, APX's 401 for bad user credentials.
func TestProbeDefaultMode(t *testing.T) {
	pt := newProbeTarget(t)
	r := pt.probe(t)
	for _, name := range []string{"V2 user", "V2 consumer", "V2 consumer with user name", "V1 user", "V1 consumer", "V1 consumer with user name",
		"V2 refresh", "OAuth2 client_credentials", "OAuth2 password", "OAuth2 refresh_token"} {
		found := false
		for _, f := range r.Flows {
			if f.Name == name {
				found = true
				if !f.Token || f.Status != 200 {
					t.Errorf("%s: %+v", name, f)
				}
			}
		}
		if !found {
			t.Errorf("flow %s was not probed: %+v", name, r.Flows)
		}
	}
	if r.Formats["application/json"] != "json" || r.Formats["application/xml"] != "xml" {
		t.Errorf("formats %v", r.Formats)
	}
	if r.ExpiryFields["V2 user"] != "ExpiresInSeconds" || r.ExpiryFields["V2 user, XML"] != "ExpiresIn" ||
		r.ExpiryFields["V2 consumer"] != "ExpiresIn" || r.ExpiryFields["OAuth2"] != "expires_in" {
		t.Errorf("expiry fields %v", r.ExpiryFields)
	}
	if u := flowNamed(r, "V2 user", "application/json"); strings.Join(u.Fields, ",") != "AccessToken,RefreshToken,ExpiresInSeconds,TokenType" || u.ExpiresIn != 86400 {
		t.Errorf("V2 user fields %v %d", u.Fields, u.ExpiresIn)
	}
	if f := r.Refresh; f == nil || !f.NewAccessToken || !f.NewRefreshToken || !f.ReuseRefused || f.ReuseError != "invalid_grant" {
		t.Errorf("refresh %+v", r.Refresh)
	}
	if e := r.Errors["wrong_password"]; e.Status != 401 || e.Error != "invalid_grant" || e.Format != "json" || e.Description != gatehouse.DescBadCredentials {
		t.Errorf("wrong password %+v", e)
	}
	if e := r.Errors["wrong_key"]; e.Status != 401 || e.Error != "invalid_client" {
		t.Errorf("wrong key %+v", e)
	}
	if !r.V1.Enabled || r.V1.Deprecation == "" || !strings.Contains(r.V1.Link, "successor-version") {
		t.Errorf("V1 %+v", r.V1)
	}
	if rt := r.Router; rt == nil || rt.External != pt.Cfg.PublicURL+"/uiserver0" || rt.Internal == "" {
		t.Errorf("router %+v", r.Router)
	}
	if o := r.OAuth; o == nil || !o.Metadata || o.BadUserStatus != 401 || o.BadUserStyle != "APX (401)" {
		t.Errorf("oauth %+v", r.OAuth)
	}
	if len(r.Skipped) != 0 {
		t.Errorf("skipped %v", r.Skipped)
	}

	// The text form says the same.
	_, out, _ := cli(t, "", pt.env, "probe", pt.url)
	for _, want := range []string{"Accept application/json → JSON; Accept application/xml → XML", "V2 user: ExpiresInSeconds",
		"V1                    enabled (200); deprecated: yes", "bad user credentials: APX (401)", "wrong password        401 json invalid_grant"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

// TestProbeXMLWithoutV1 is the acceptance test: serve --token-format xml
// --v1=false is reported as XML whatever the Accept header, ExpiresIn,
// and V1 disabled.
func TestProbeXMLWithoutV1(t *testing.T) {
	pt := newProbeTarget(t, func(c *app.Config) { c.TokenFormat = "xml"; c.V1 = false })
	r := pt.probe(t)
	if r.Formats["application/json"] != "xml" || r.Formats["application/xml"] != "xml" {
		t.Errorf("formats %v", r.Formats)
	}
	if r.ExpiryFields["V2 user"] != "ExpiresIn" || r.ExpiryFields["V2 consumer"] != "ExpiresIn" {
		t.Errorf("expiry fields %v", r.ExpiryFields)
	}
	if r.V1.Enabled || r.V1.Status != 410 || !r.V1.Tried {
		t.Errorf("V1 %+v", r.V1)
	}
	if e := r.Errors["wrong_password"]; e.Format != "xml" || e.Error != "invalid_grant" {
		t.Errorf("wrong password %+v", e)
	}
	if f := r.Refresh; f == nil || !f.NewRefreshToken || !f.ReuseRefused {
		t.Errorf("refresh %+v", r.Refresh)
	}
	_, out, _ := cli(t, "", pt.env, "probe", pt.url)
	for _, want := range []string{"Accept application/json → XML; Accept application/xml → XML", "V2 user: ExpiresIn;", "V1                    disabled (410)"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

// TestProbeOAuthStrict: --oauth-strict answers bad user credentials with
// RFC 6749's 400, and the report says so.
func TestProbeOAuthStrict(t *testing.T) {
	pt := newProbeTarget(t, func(c *app.Config) { c.OAuthStrict = true })
	r := pt.probe(t)
	if o := r.OAuth; o == nil || o.BadUserStatus != 400 || o.BadUserStyle != "RFC 6749 (400)" {
		t.Errorf("oauth %+v", r.OAuth)
	}
	if e := r.Errors["oauth_wrong_password"]; e.Error != "invalid_grant" {
		t.Errorf("oauth wrong password %+v", e)
	}
	// P21 answers stay as they are.
	if e := r.Errors["wrong_password"]; e.Status != 401 {
		t.Errorf("P21 wrong password %+v", e)
	}
}

// TestProbeNoSecretsInClear: over plain http to a host other than
// loopback, every step that needs a secret is skipped (nothing is sent
// that carries one); missing credentials skip their flows.
func TestProbeNoSecretsInClear(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("Authorization")+r.Header.Get("Password")+r.Header.Get("Appkey")+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	env := map[string]string{"P21_USERNAME": "u", "P21_PASSWORD": "s3cret-pw", "P21_CONSUMER_KEY": "s3cret-key"}
	// p21.example is not loopback; its requests reach the local server
	// (no name is looked up).
	local, _ := url.Parse(srv.URL)
	probeTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.URL.Host = local.Host
		return http.DefaultTransport.RoundTrip(r)
	})
	defer func() { probeTransport = nil }()
	code, out, errs := cli(t, "", env, "probe", "--json", "http://p21.example")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	var r ProbeReport
	json.Unmarshal([]byte(out), &r)
	if len(r.Skipped) < 3 || !strings.Contains(strings.Join(r.Skipped, "\n"), "plain http") {
		t.Errorf("skipped %v", r.Skipped)
	}
	for _, f := range r.Flows {
		t.Errorf("a token request was made over plain http: %+v", f)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, g := range got {
		if strings.Contains(g, "s3cret") {
			t.Errorf("a secret was sent: %q", g)
		}
	}

	// Bad URLs.
	for _, u := range []string{"ftp://x", "http://u:p@h", "http://h/?q=1", "nohost"} {
		if code, _, errs := cli(t, "", nil, "probe", u); code != 2 || errs == "" {
			t.Errorf("%s: exit %d %s", u, code, errs)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzProbeParse: no answer a server sends makes the probe's reader of
// token responses and errors panic, and every field it reports has a value.
func FuzzProbeParse(f *testing.F) {
	f.Add("application/json", `{"AccessToken":"x","ExpiresIn":1,"AppKey":null}`)
	f.Add("application/xml", `<?xml version="1.0"?><TokenResponse><AccessToken>x</AccessToken></TokenResponse>`)
	f.Add("text/html", `<html><body>oops</body></html>`)
	f.Add("", `{"a":{"b":[1,2]}}`)
	f.Fuzz(func(t *testing.T, ctype, body string) {
		r := parse(answer{status: 200, header: http.Header{"Content-Type": {ctype}}, body: []byte(body)})
		for _, k := range r.fields {
			if _, ok := r.values[k]; !ok {
				t.Fatalf("field %q without a value", k)
			}
		}
	})
}
