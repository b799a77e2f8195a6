package oauth2_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	formCT   = "application/x-www-form-urlencoded"
	apxUser  = "apx_user"
	apxPass  = "Apx-Pa55word!"
	richName = "rich_client"
)

// fixture is a server with an APX-style deployment: apx_user, the client
// apx_client (scope access, password grant), rich_client (password and
// refresh_token grants) and svc (client_credentials only).
type fixture struct {
	*apptest.Env
	apx, rich, svc          gatehouse.Consumer
	apxKey, richKey, svcKey string
}

func newFixture(t *testing.T, mutate ...func(*app.Config)) *fixture {
	t.Helper()
	e := apptest.New(t, mutate...)
	e.AddUser(apxUser, apxPass, true, "")
	f := &fixture{Env: e}
	f.apx, f.apxKey = e.AddConsumer(admin.NewConsumer{Name: "apx_client", Scope: "access", Lifetime: time.Hour,
		Grants: []string{gatehouse.GrantPassword}})
	f.rich, f.richKey = e.AddConsumer(admin.NewConsumer{Name: richName, Scope: "access", Lifetime: time.Hour,
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken}})
	f.svc, f.svcKey = e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api", SDK: true})
	return f
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func (f *fixture) form(path, body string, headers ...string) (*http.Response, []byte) {
	f.T.Helper()
	return f.Post(path, formCT, body, headers...)
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func wantNoStore(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
		t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache", resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
	}
}

func wantError(t *testing.T, resp *http.Response, b []byte, status int, code string) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, b)
	}
	m := decode(t, b)
	if m["error"] != code {
		t.Fatalf("error %v, want %s: %s", m["error"], code, b)
	}
	if d, _ := m["error_description"].(string); d == "" {
		t.Fatalf("no error_description: %s", b)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	wantNoStore(t, resp)
	return m
}

// TestAPXDocumentRequest sends the request of the APX protocol document
// exactly: Basic client:secret, Username, Password and grant_type=password.
func TestAPXDocumentRequest(t *testing.T) {
	f := newFixture(t)
	body := url.Values{"Username": {apxUser}, "Password": {apxPass}, "grant_type": {"password"}}.Encode()
	resp, b := f.form("/oauth/token", body, "Authorization", basic("apx_client", f.apxKey))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	wantNoStore(t, resp)
	m := decode(t, b)
	if got := keys(m); !slices.Equal(got, []string{"access_token", "expires_in", "scope", "token_type"}) {
		t.Fatalf("fields %v, want access_token, token_type, expires_in, scope: %s", got, b)
	}
	if m["token_type"] != "bearer" || m["scope"] != "access" || m["expires_in"] != float64(3600) {
		t.Fatalf("response %s", b)
	}
	id, err := f.App.Verifier.Verify(context.Background(), m["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if id.Username() != apxUser || id.ConsumerUID() != f.apx.UIDString() || id.Claims.Audience != "access" ||
		id.Session.Flow != gatehouse.FlowOAuthPassword || id.Claims.Algorithm != "ES256" || id.Claims.Issuer != f.URL {
		t.Fatalf("identity %+v / %+v", id.Claims, id.Session)
	}

	// Wrong password: 401, as APX documents.
	body = url.Values{"Username": {apxUser}, "Password": {"wrong"}, "grant_type": {"password"}}.Encode()
	resp, b = f.form("/oauth/token", body, "Authorization", basic("apx_client", f.apxKey))
	m = wantError(t, resp, b, 401, "invalid_grant")
	if m["error_description"] != gatehouse.DescBadCredentials {
		t.Fatalf("description %v", m["error_description"])
	}
	// Unknown user: the same bytes.
	body = url.Values{"Username": {"nobody"}, "Password": {"wrong"}, "grant_type": {"password"}}.Encode()
	_, b2 := f.form("/oauth/token", body, "Authorization", basic("apx_client", f.apxKey))
	if !bytes.Equal(b, b2) {
		t.Fatalf("unknown user answered differently:\n%s\n%s", b, b2)
	}
}

func (f *fixture) config(id, secret string, style oauth2.AuthStyle) *oauth2.Config {
	return &oauth2.Config{ClientID: id, ClientSecret: secret,
		Endpoint: oauth2.Endpoint{TokenURL: f.URL + "/oauth/token", AuthStyle: style}}
}

func (f *fixture) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, f.Server.Client())
}

// TestXOAuth2Password drives the password grant with golang.org/x/oauth2,
// client credentials in the header and in the body.
func TestXOAuth2Password(t *testing.T) {
	f := newFixture(t)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		tok, err := f.config("apx_client", f.apxKey, style).PasswordCredentialsToken(f.ctx(), apxUser, apxPass)
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") || tok.Extra("scope") != "access" ||
			tok.RefreshToken != "" || time.Until(tok.Expiry) < 59*time.Minute {
			t.Fatalf("style %d: token %+v", style, tok)
		}
		// By uid too, and the name in any case.
		if _, err := f.config(f.apx.UIDString(), f.apxKey, style).PasswordCredentialsToken(f.ctx(), apxUser, apxPass); err != nil {
			t.Fatalf("style %d, client_id uid: %v", style, err)
		}
		if _, err := f.config("APX_Client", f.apxKey, style).PasswordCredentialsToken(f.ctx(), apxUser, apxPass); err != nil {
			t.Fatalf("style %d, client_id in another case: %v", style, err)
		}
		_, err = f.config("apx_client", f.apxKey, style).PasswordCredentialsToken(f.ctx(), apxUser, "wrong")
		var re *oauth2.RetrieveError
		if !asRetrieve(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_grant" {
			t.Fatalf("style %d, wrong password: %v", style, err)
		}
		_, err = f.config("apx_client", f.apxKey+"x", style).PasswordCredentialsToken(f.ctx(), apxUser, apxPass)
		if !asRetrieve(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_client" ||
			re.Response.Header.Get("WWW-Authenticate") != `Basic realm="gatehouse"` {
			t.Fatalf("style %d, wrong secret: %v", style, err)
		}
	}

	// A client allowed to refresh gets a refresh token, and x/oauth2 uses it.
	cfg := f.config(richName, f.richKey, oauth2.AuthStyleInHeader)
	tok, err := cfg.PasswordCredentialsToken(f.ctx(), apxUser, apxPass)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for a client allowed the refresh_token grant")
	}
	old := *tok
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(f.ctx(), tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == old.AccessToken || fresh.RefreshToken == old.RefreshToken || fresh.RefreshToken == "" ||
		fresh.Extra("scope") != "access" {
		t.Fatalf("refreshed token %+v", fresh)
	}
	id, err := f.App.Verifier.Verify(context.Background(), fresh.AccessToken)
	if err != nil || id.Username() != apxUser || id.Session.Flow != gatehouse.FlowOAuthPassword || id.Claims.Algorithm != "ES256" ||
		id.Claims.Issuer != f.URL {
		t.Fatalf("refreshed identity %+v, %v", id, err)
	}
}

func asRetrieve(err error, re **oauth2.RetrieveError) bool {
	r, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = r
	}
	return ok
}

// TestXOAuth2ClientCredentials drives the client_credentials grant with
// golang.org/x/oauth2/clientcredentials.
func TestXOAuth2ClientCredentials(t *testing.T) {
	f := newFixture(t)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := &clientcredentials.Config{ClientID: "svc", ClientSecret: f.svcKey, TokenURL: f.URL + "/oauth/token", AuthStyle: style}
		tok, err := cc.Token(f.ctx())
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if tok.Extra("scope") != "/api;/p21sdk" || tok.RefreshToken != "" {
			t.Fatalf("style %d: %+v", style, tok)
		}
		// A never-expiring consumer reports P21's 20 years.
		if time.Until(tok.Expiry) < 19*365*24*time.Hour {
			t.Fatalf("style %d: expiry %v", style, tok.Expiry)
		}
		id, err := f.App.Verifier.Verify(context.Background(), tok.AccessToken)
		if err != nil || id.Username() != "" || id.ConsumerUID() != f.svc.UIDString() || id.Session.Flow != gatehouse.FlowOAuthClient ||
			id.Claims.Algorithm != "ES256" || id.Claims.Issuer != f.URL {
			t.Fatalf("style %d: identity %+v, %v", style, id, err)
		}
	}
	// With the refresh_token grant allowed, client_credentials returns one.
	cc := &clientcredentials.Config{ClientID: richName, ClientSecret: f.richKey, TokenURL: f.URL + "/oauth/token"}
	tok, err := cc.Token(f.ctx())
	if err != nil || tok.RefreshToken == "" || tok.Extra("scope") != "access" {
		t.Fatalf("rich client: %+v, %v", tok, err)
	}
	resp, b := f.form("/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(tok.RefreshToken),
		"Authorization", basic(richName, f.richKey))
	if resp.StatusCode != 200 {
		t.Fatalf("refresh of a client_credentials session: %d %s", resp.StatusCode, b)
	}
	if m := decode(t, b); m["refresh_token"] == "" || m["scope"] != "access" {
		t.Fatalf("refresh response %s", b)
	}
}

// specialSecret holds every character RFC 6749 §2.3.1 escaping changes.
const specialSecret = "p:w%41+x=y/z@$!"

// addSpecialClient stores a consumer whose key has characters that need
// escaping; keys are normally UUIDs, so it goes through the store.
func addSpecialClient(t *testing.T, e *apptest.Env, name, secret string, grants ...string) gatehouse.Consumer {
	t.Helper()
	ck := auth.NewConsumerKeys(e.App.MasterKey)
	now := time.Now()
	c, err := e.App.Store.CreateConsumer(context.Background(), gatehouse.Consumer{Name: name, Type: gatehouse.ConsumerService,
		Scope: "access", Lifetime: time.Hour, Grants: grants, KeyHash: ck.Hash(secret), CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSpecialCharacterSecret(t *testing.T) {
	f := newFixture(t)
	addSpecialClient(t, f.Env, "special", specialSecret, gatehouse.GrantPassword)
	body := url.Values{"Username": {apxUser}, "Password": {apxPass}, "grant_type": {"password"}}.Encode()
	for _, tc := range []struct{ name, auth string }{
		{"escaped", basic(url.QueryEscape("special"), url.QueryEscape(specialSecret))},
		{"as sent", basic("special", specialSecret)},
	} {
		resp, b := f.form("/oauth/token", body, "Authorization", tc.auth)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
	}
	// golang.org/x/oauth2 escapes in the header; in the body it is plain form encoding.
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		if _, err := f.config("special", specialSecret, style).PasswordCredentialsToken(f.ctx(), apxUser, apxPass); err != nil {
			t.Fatalf("x/oauth2 style %d: %v", style, err)
		}
	}
	// A secret whose unescaped form is valid but different is tried as sent too.
	addSpecialClient(t, f.Env, "plus", "a+b%21c", gatehouse.GrantPassword)
	if resp, b := f.form("/oauth/token", body, "Authorization", basic("plus", "a+b%21c")); resp.StatusCode != 200 {
		t.Fatalf("plus as sent: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.form("/oauth/token", body, "Authorization", basic("plus", url.QueryEscape("a+b%21c"))); resp.StatusCode != 200 {
		t.Fatalf("plus escaped: %d %s", resp.StatusCode, b)
	}
	// Only those two readings: a near miss fails.
	resp, b := f.form("/oauth/token", body, "Authorization", basic("plus", "a b!c"))
	wantError(t, resp, b, 401, "invalid_client")
}

// TestTokenErrors covers every refusal of the token endpoint with raw requests.
func TestTokenErrors(t *testing.T) {
	f := newFixture(t)
	apx := basic("apx_client", f.apxKey)
	pw := "Username=" + apxUser + "&Password=" + url.QueryEscape(apxPass)
	f.AddUser("gone", "gone-Pa55word", true, "")
	if _, err := f.App.Admin.DeleteUser(context.Background(), "test", "gone"); err != nil {
		t.Fatal(err)
	}
	disabled, disabledKey := f.AddConsumer(admin.NewConsumer{Name: "off", Scope: "access", Grants: []string{gatehouse.GrantPassword}})
	if _, _, err := f.App.Admin.SetConsumerDisabled(context.Background(), "test", disabled.Name, true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		ct      string
		body    string
		headers []string
		status  int
		code    string
		desc    string // a part of the description, if checked
	}{
		{"no grant_type", formCT, pw, []string{"Authorization", apx}, 400, "invalid_request", "grant_type"},
		{"empty grant_type", formCT, pw + "&grant_type=", []string{"Authorization", apx}, 400, "invalid_request", "grant_type"},
		{"unknown grant", formCT, "grant_type=authorization_code&code=x", []string{"Authorization", apx}, 400, "unsupported_grant_type", "client_credentials"},
		{"unknown grant, URN", formCT, "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer"), []string{"Authorization", apx}, 400, "unsupported_grant_type", ""},
		{"duplicate grant_type", formCT, pw + "&grant_type=password&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "grant_type is given 2 times"},
		{"duplicate Password", formCT, pw + "&Password=x&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "Password is given 2 times"},
		{"duplicate unknown param", formCT, pw + "&grant_type=password&x=1&x=2", []string{"Authorization", apx}, 400, "invalid_request", "a parameter is given"},
		{"both spellings differ", formCT, pw + "&username=other&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "username and Username"},
		{"missing password", formCT, "Username=" + apxUser + "&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "password"},
		{"missing username", formCT, "password=x&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "username"},
		{"wrong password", formCT, "Username=" + apxUser + "&Password=nope&grant_type=password", []string{"Authorization", apx}, 401, "invalid_grant", gatehouse.DescBadCredentials},
		{"deleted user", formCT, "Username=gone&Password=gone-Pa55word&grant_type=password", []string{"Authorization", apx}, 401, "invalid_grant", gatehouse.DescBadCredentials},
		{"no client auth", formCT, pw + "&grant_type=password", nil, 401, "invalid_client", gatehouse.DescBadClient},
		{"client_id only", formCT, pw + "&grant_type=password&client_id=apx_client", nil, 401, "invalid_client", gatehouse.DescBadClient},
		{"unknown client", formCT, pw + "&grant_type=password", []string{"Authorization", basic("nobody", f.apxKey+"0")}, 401, "invalid_client", gatehouse.DescBadClient},
		{"wrong secret", formCT, pw + "&grant_type=password", []string{"Authorization", basic("apx_client", f.apxKey[:35]+"x")}, 401, "invalid_client", gatehouse.DescBadClient},
		{"key of another client", formCT, pw + "&grant_type=password", []string{"Authorization", basic("apx_client", f.richKey)}, 401, "invalid_client", gatehouse.DescBadClient},
		{"disabled client", formCT, pw + "&grant_type=password", []string{"Authorization", basic("off", disabledKey)}, 401, "invalid_client", gatehouse.DescBadClient},
		{"malformed Basic", formCT, pw + "&grant_type=password", []string{"Authorization", "Basic %%%"}, 401, "invalid_client", "Basic"},
		{"Basic without colon", formCT, pw + "&grant_type=password", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("apx_client"))}, 401, "invalid_client", "Basic"},
		{"Bearer is not client auth", formCT, pw + "&grant_type=password", []string{"Authorization", "Bearer x"}, 401, "invalid_client", ""},
		{"both auth methods", formCT, pw + "&grant_type=password&client_id=apx_client&client_secret=" + f.apxKey, []string{"Authorization", apx}, 400, "invalid_request", "twice"},
		{"client_id differs from Basic", formCT, pw + "&grant_type=password&client_id=rich_client", []string{"Authorization", apx}, 400, "invalid_request", "client_id"},
		{"password grant not allowed", formCT, pw + "&grant_type=password", []string{"Authorization", basic("svc", f.svcKey)}, 400, "unauthorized_client", "password"},
		{"refresh grant not allowed", formCT, "grant_type=refresh_token&refresh_token=abc", []string{"Authorization", apx}, 400, "unauthorized_client", "refresh_token"},
		{"missing refresh_token", formCT, "grant_type=refresh_token", []string{"Authorization", basic(richName, f.richKey)}, 400, "invalid_request", "refresh_token"},
		{"unknown refresh token", formCT, "grant_type=refresh_token&refresh_token=abc", []string{"Authorization", basic(richName, f.richKey)}, 400, "invalid_grant", ""},
		{"JSON body", "application/json", `{"grant_type":"password"}`, []string{"Authorization", apx}, 400, "invalid_request", "Content-Type"},
		{"no content type", "", pw + "&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "Content-Type"},
		{"latin-1 charset", formCT + "; charset=iso-8859-1", pw + "&grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "charset"},
		{"bad escape", formCT, pw + "&grant_type=password&x=%zz", []string{"Authorization", apx}, 400, "invalid_request", "escape"},
		{"semicolons", formCT, pw + ";grant_type=password", []string{"Authorization", apx}, 400, "invalid_request", "semicolon"},
		{"invalid UTF-8", formCT, pw + "&grant_type=password&scope=%ff", []string{"Authorization", apx}, 400, "invalid_request", "UTF-8"},
		{"long value", formCT, pw + "&grant_type=password&scope=" + strings.Repeat("a", 5000), []string{"Authorization", apx}, 400, "invalid_request", "longer"},
		{"two Authorization headers", formCT, pw + "&grant_type=password", nil, 400, "invalid_request", "Authorization"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.URL+"/oauth/token", strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			if tc.name == "two Authorization headers" {
				req.Header.Add("Authorization", apx)
				req.Header.Add("Authorization", apx)
			}
			resp, b := f.Do(req)
			m := wantError(t, resp, b, tc.status, tc.code)
			if tc.desc != "" && !strings.Contains(m["error_description"].(string), tc.desc) {
				t.Errorf("description %q does not mention %q", m["error_description"], tc.desc)
			}
			if tc.code == "invalid_client" && resp.Header.Get("WWW-Authenticate") != `Basic realm="gatehouse"` {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Client refusals are audited, without the secret.
	evs, err := f.App.Store.ListAudit(context.Background(), store.AuditFilter{Action: "token.refuse"})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, ev := range evs {
		reasons = append(reasons, ev.Actor+" "+ev.Detail)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"unknown_key", "client_id_mismatch", "consumer:" + disabled.UIDString() + " oauth.token/client_auth: disabled",
		"no_credentials", "grant_not_allowed", "wrong_password"} {
		if !strings.Contains(all, want) {
			t.Errorf("no audit event for %s in:\n%s", want, all)
		}
	}
}

func TestStrictStatus(t *testing.T) {
	f := newFixture(t, func(c *app.Config) { c.OAuthStrict = true })
	body := url.Values{"Username": {apxUser}, "Password": {"wrong"}, "grant_type": {"password"}}.Encode()
	resp, b := f.form("/oauth/token", body, "Authorization", basic("apx_client", f.apxKey))
	wantError(t, resp, b, 400, "invalid_grant")
	// Client errors keep their 401.
	resp, b = f.form("/oauth/token", body, "Authorization", basic("apx_client", f.apxKey+"x"))
	wantError(t, resp, b, 401, "invalid_client")
}

func TestLockoutAndRateLimit(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.Auth.LockoutThreshold = 2
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 8, nil
	})
	apx := basic("apx_client", f.apxKey)
	wrong := url.Values{"Username": {apxUser}, "Password": {"wrong"}, "grant_type": {"password"}}.Encode()
	right := url.Values{"Username": {apxUser}, "Password": {apxPass}, "grant_type": {"password"}}.Encode()
	_, first := f.form("/oauth/token", wrong, "Authorization", apx)
	f.form("/oauth/token", wrong, "Authorization", apx)
	// Locked: the right password answers exactly like a wrong one.
	resp, b := f.form("/oauth/token", right, "Authorization", apx)
	if resp.StatusCode != 401 || !bytes.Equal(b, first) {
		t.Fatalf("locked account: %d %s (want %s)", resp.StatusCode, b, first)
	}
	// The token endpoint is rate limited like the P21 ones, in JSON.
	var limited *http.Response
	for range 20 {
		resp, b = f.form("/oauth/token", "grant_type=client_credentials", "Authorization", basic("svc", f.svcKey), "Accept", "application/xml")
		if resp.StatusCode == 429 {
			limited = resp
			break
		}
	}
	if limited == nil {
		t.Fatal("no 429 after 20 quick requests")
	}
	wantError(t, limited, b, 429, "slow_down")
	if limited.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

func (f *fixture) introspect(client, secret, tok string, extra ...string) map[string]any {
	f.T.Helper()
	body := "token=" + url.QueryEscape(tok) + strings.Join(extra, "")
	resp, b := f.form("/oauth/introspect", body, "Authorization", basic(client, secret))
	if resp.StatusCode != 200 {
		f.T.Fatalf("introspect: %d %s", resp.StatusCode, b)
	}
	wantNoStore(f.T.(*testing.T), resp)
	return decode(f.T.(*testing.T), b)
}

func (f *fixture) revoke(client, secret, tok string, extra ...string) {
	f.T.Helper()
	body := "token=" + url.QueryEscape(tok) + strings.Join(extra, "")
	resp, b := f.form("/oauth/revoke", body, "Authorization", basic(client, secret))
	if resp.StatusCode != 200 {
		f.T.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
}

func (f *fixture) passwordToken(client, secret string) map[string]any {
	f.T.Helper()
	body := url.Values{"username": {apxUser}, "password": {apxPass}, "grant_type": {"password"}}.Encode()
	resp, b := f.form("/oauth/token", body, "Authorization", basic(client, secret))
	if resp.StatusCode != 200 {
		f.T.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	return decode(f.T.(*testing.T), b)
}

func wantInactive(t *testing.T, m map[string]any) {
	t.Helper()
	if len(m) != 1 || m["active"] != false {
		t.Fatalf("introspection %v, want exactly {\"active\":false}", m)
	}
}

func TestIntrospectionAndRevocation(t *testing.T) {
	f := newFixture(t)
	tok := f.passwordToken(richName, f.richKey)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)

	// Any authenticated client (a resource server) may introspect an access token.
	in := f.introspect("svc", f.svcKey, at)
	id, err := f.App.Verifier.Verify(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"active": true, "sub": apxUser, "username": apxUser, "client_id": f.rich.UIDString(),
		"scope": "access", "token_type": "Bearer", "iss": f.URL, "jti": id.Claims.ID, "sid": id.Session.ID,
		"exp": float64(id.Claims.ExpiresAt.Unix()), "iat": float64(id.Claims.IssuedAt.Unix()), "nbf": float64(id.Claims.NotBefore.Unix())}
	if got, _ := json.Marshal(in); string(got) != string(mustJSON(want)) {
		t.Fatalf("introspection\n got %s\nwant %s", got, mustJSON(want))
	}
	// A refresh token is reported to its own client only.
	in = f.introspect(richName, f.richKey, rt, "&token_type_hint=refresh_token")
	if in["active"] != true || in["sid"] != id.Session.ID || in["client_id"] != f.rich.UIDString() || in["username"] != apxUser {
		t.Fatalf("refresh introspection %v", in)
	}
	wantInactive(t, f.introspect("svc", f.svcKey, rt))
	// Garbage, unknown hints and tokens signed by someone else are inactive.
	wantInactive(t, f.introspect("svc", f.svcKey, "garbage"))
	wantInactive(t, f.introspect("svc", f.svcKey, at[:len(at)-4]+"AAAA"))
	wantInactive(t, f.introspect("svc", f.svcKey, "a.b.c", "&token_type_hint=nonsense"))

	// Revocation by another client is refused (RFC 7009 §2.1) and changes nothing.
	for _, tok := range []string{at, rt} {
		resp, b := f.form("/oauth/revoke", "token="+url.QueryEscape(tok), "Authorization", basic("svc", f.svcKey))
		wantError(t, resp, b, 400, "unauthorized_client")
	}
	if f.introspect("svc", f.svcKey, at)["active"] != true {
		t.Fatal("a foreign client's revocation took effect")
	}
	// Unknown tokens and unknown hints: 200.
	f.revoke(richName, f.richKey, "unknown-token", "&token_type_hint=id_token")
	// Revoking the access token ends its session at once: both tokens inactive.
	f.revoke(richName, f.richKey, at, "&token_type_hint=access_token")
	wantInactive(t, f.introspect("svc", f.svcKey, at))
	wantInactive(t, f.introspect(richName, f.richKey, rt))
	resp, b := f.form("/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt), "Authorization", basic(richName, f.richKey))
	wantError(t, resp, b, 400, "invalid_grant")

	// Revoking by refresh token.
	tok = f.passwordToken(richName, f.richKey)
	f.revoke(richName, f.richKey, tok["refresh_token"].(string))
	wantInactive(t, f.introspect("svc", f.svcKey, tok["access_token"].(string)))

	// A session ended elsewhere (the admin CLI, another replica) is inactive within a second.
	tok = f.passwordToken("apx_client", f.apxKey)
	at = tok["access_token"].(string)
	in = f.introspect("svc", f.svcKey, at)
	if in["active"] != true {
		t.Fatalf("fresh token inactive: %v", in)
	}
	if err := f.App.Store.EndSession(context.Background(), in["sid"].(string), gatehouse.EndAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, time.Second, func() error {
		if f.introspect("svc", f.svcKey, at)["active"] != false {
			return errors.New("a session ended in the store is still active")
		}
		return nil
	})

	// Introspection and revocation authenticate the caller.
	for _, p := range []string{"/oauth/introspect", "/oauth/revoke"} {
		resp, b := f.form(p, "token="+url.QueryEscape(at), "Authorization", basic("svc", f.svcKey+"x"))
		wantError(t, resp, b, 401, "invalid_client")
		resp, b = f.form(p, "token="+url.QueryEscape(at))
		wantError(t, resp, b, 401, "invalid_client")
		resp, b = f.form(p, "", "Authorization", basic("svc", f.svcKey))
		wantError(t, resp, b, 400, "invalid_request")
		// client_secret_post works too.
		resp, b = f.form(p, "token=x&client_id=svc&client_secret="+f.svcKey)
		if resp.StatusCode != 200 {
			t.Fatalf("%s with client_secret_post: %d %s", p, resp.StatusCode, b)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestRefreshReuse: a spent refresh token presented again is refused and
// ends its session, so the access token of that session turns inactive.
func TestRefreshReuse(t *testing.T) {
	f := newFixture(t)
	tok := f.passwordToken(richName, f.richKey)
	rt := tok["refresh_token"].(string)
	refresh := func(client, secret, rt string) (*http.Response, []byte) {
		return f.form("/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt), "Authorization", basic(client, secret))
	}
	// Another client's attempt is refused and spends nothing.
	other := addSpecialClient(t, f.Env, "other", "other-secret", gatehouse.GrantRefreshToken)
	resp, b := refresh(other.Name, "other-secret", rt)
	wantError(t, resp, b, 400, "invalid_grant")

	resp, b = refresh(richName, f.richKey, rt)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, b)
	}
	wantNoStore(t, resp)
	next := decode(t, b)
	at2, rt2 := next["access_token"].(string), next["refresh_token"].(string)
	if rt2 == "" || rt2 == rt || next["scope"] != "access" || next["token_type"] != "bearer" {
		t.Fatalf("refresh response %s", b)
	}
	// The spent token is inactive at introspection; the new one active.
	wantInactive(t, f.introspect(richName, f.richKey, rt))
	if f.introspect(richName, f.richKey, rt2)["active"] != true || f.introspect("svc", f.svcKey, at2)["active"] != true {
		t.Fatal("rotated tokens are not active")
	}
	// Reuse: refused, and the whole session ends at once.
	resp, b = refresh(richName, f.richKey, rt)
	wantError(t, resp, b, 400, "invalid_grant")
	wantInactive(t, f.introspect("svc", f.svcKey, at2))
	wantInactive(t, f.introspect(richName, f.richKey, rt2))
	resp, b = refresh(richName, f.richKey, rt2)
	wantError(t, resp, b, 400, "invalid_grant")
	s, err := f.App.Store.GetSession(context.Background(), f.introspectSID(t, tok))
	if err != nil || s.EndReason != gatehouse.EndRefreshReuse {
		t.Fatalf("session %+v, %v", s, err)
	}
}

// introspectSID finds the session id of a token response from its JWT.
func (f *fixture) introspectSID(t *testing.T, tok map[string]any) string {
	t.Helper()
	parts := strings.Split(tok["access_token"].(string), ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(b, &c)
	return c["P21.SessionId"].(string)
}

// TestSessionCap: --max-sessions applies to OAuth sessions too.
func TestSessionCap(t *testing.T) {
	f := newFixture(t, func(c *app.Config) { c.Auth.MaxSessions = 2 })
	var ats []string
	for range 3 {
		ats = append(ats, f.passwordToken("apx_client", f.apxKey)["access_token"].(string))
	}
	testtime.Eventually(t, time.Second, func() error {
		if f.introspect("svc", f.svcKey, ats[0])["active"] != false {
			return errors.New("the oldest session over the cap is still active")
		}
		return nil
	})
	for _, at := range ats[1:] {
		if f.introspect("svc", f.svcKey, at)["active"] != true {
			t.Fatal("a session within the cap is inactive")
		}
	}
}

// TestStoreDown: when the store cannot be read, introspection answers 503
// with Retry-After, never a false "inactive".
func TestStoreDown(t *testing.T) {
	f := newFixture(t)
	tok := f.passwordToken(richName, f.richKey)
	// Warm the client cache, not the session cache.
	f.introspect("svc", f.svcKey, "warm-up")
	f.introspect(richName, f.richKey, "warm-up")
	if err := f.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ client, secret, tok string }{
		{"svc", f.svcKey, tok["access_token"].(string)},
		{richName, f.richKey, tok["refresh_token"].(string)},
	} {
		resp, b := f.form("/oauth/introspect", "token="+url.QueryEscape(c.tok), "Authorization", basic(c.client, c.secret))
		wantError(t, resp, b, 503, "temporarily_unavailable")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		// Revocation by the owner needs the store too.
		resp, b = f.form("/oauth/revoke", "token="+url.QueryEscape(c.tok), "Authorization", basic(richName, f.richKey))
		wantError(t, resp, b, 503, "temporarily_unavailable")
	}
	resp, b := f.form("/oauth/token", "grant_type=client_credentials", "Authorization", basic("svc", f.svcKey))
	wantError(t, resp, b, 503, "temporarily_unavailable")
}

func TestMetadata(t *testing.T) {
	f := newFixture(t)
	resp, b := f.Do(mustGet(t, f.URL+"/.well-known/oauth-authorization-server"))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var md map[string]any
	json.Unmarshal(b, &md)
	want := map[string]any{
		"issuer":                                f.URL,
		"token_endpoint":                        f.URL + "/oauth/token",
		"introspection_endpoint":                f.URL + "/oauth/introspect",
		"revocation_endpoint":                   f.URL + "/oauth/revoke",
		"jwks_uri":                              f.URL + "/.well-known/jwks.json",
		"grant_types_supported":                 []any{"password", "client_credentials", "refresh_token"},
		"response_types_supported":              []any{"none"},
		"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []any{"client_secret_basic", "client_secret_post"},
	}
	if string(mustJSON(md)) != string(mustJSON(want)) {
		t.Fatalf("metadata\n got %s\nwant %s", mustJSON(md), mustJSON(want))
	}
	// With --public-url, that is the issuer.
	g := newFixture(t, func(c *app.Config) { c.PublicURL = "https://auth.example.com/" })
	_, b = g.Do(mustGet(t, g.URL+"/.well-known/oauth-authorization-server"))
	json.Unmarshal(b, &md)
	if md["issuer"] != "https://auth.example.com" || md["token_endpoint"] != "https://auth.example.com/oauth/token" {
		t.Fatalf("metadata with public URL: %s", b)
	}
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestJWKSVerifiesUserToken checks an ES256 user token from the password
// grant with go-jose and nothing but the published key set.
func TestJWKSVerifiesUserToken(t *testing.T) {
	f := newFixture(t)
	resp, b := f.Do(mustGet(t, f.URL+"/.well-known/jwks.json"))
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=300") {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), b)
	}
	for _, secret := range []string{`"d"`, `"p"`, `"q"`, `"k"`, "HS256"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("JWKS holds %s: %s", secret, b)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.KeyID == "" || k.Algorithm == "" || k.Use != "sig" || !k.IsPublic() {
			t.Fatalf("key %+v", k)
		}
	}
	at := f.passwordToken("apx_client", f.apxKey)["access_token"].(string)
	jws, err := jose.ParseSignedCompact(at, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := jws.Signatures[0].Header.KeyID
	ks := set.Key(kid)
	if len(ks) != 1 || ks[0].Algorithm != "ES256" {
		t.Fatalf("kid %s: %+v", kid, ks)
	}
	payload, err := jws.Verify(ks[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["sub"] != apxUser || claims["aud"] != "access" || claims["iss"] != f.URL {
		t.Fatalf("claims %v", claims)
	}
	// Keys published as next (before they sign) and retired ones stay in the set.
	if _, err := f.App.Admin.RotateKeys(context.Background(), "test", []string{"ES256"}); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, 2*time.Second, func() error {
		_, b = f.Do(mustGet(t, f.URL+"/.well-known/jwks.json"))
		var after jose.JSONWebKeySet
		json.Unmarshal(b, &after)
		if len(after.Keys) != len(set.Keys)+1 || len(after.Key(kid)) != 1 {
			return fmt.Errorf("after rotation: %d keys (was %d), old kid present %t", len(after.Keys), len(set.Keys), len(after.Key(kid)) == 1)
		}
		return nil
	})
}
