package openapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
)

var jsonUnmarshal = json.Unmarshal

const (
	jsonCT = "application/json"
	formCT = "application/x-www-form-urlencoded"
)

// call is one request of the replayed suite.
type call struct {
	name    string
	method  string // default: POST with a body, else GET
	path    string
	ct      string
	body    string
	headers []string // name, value pairs; a name may repeat
	// invalid marks a request the suite sends malformed on purpose: only
	// its answer is judged against the document.
	invalid bool
	status  int // the status the suite expects (0: any)
}

// send makes the request of c to e and validates the exchange.
func send(t *testing.T, e *apptest.Env, c call) exchange {
	t.Helper()
	m := c.method
	if m == "" {
		m = http.MethodGet
		if c.body != "" || c.ct != "" {
			m = http.MethodPost
		}
	}
	req, err := http.NewRequest(m, e.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if c.ct != "" {
		req.Header.Set("Content-Type", c.ct)
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header[c.headers[i]] = append(req.Header[c.headers[i]], c.headers[i+1])
	}
	sent := req.Clone(req.Context())
	resp, body := e.Do(req)
	if c.status != 0 && resp.StatusCode != c.status {
		t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, body)
	}
	x := exchange{req: sent, reqBody: []byte(c.body), status: resp.StatusCode, header: resp.Header, respBody: body}
	validate(t, c.name, x, !c.invalid)
	return x
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// p21Fixture is the P21 tests' cast (server/p21): api_user with its
// password, and MY_SERVICE_APP, consumer uid 8, scope /api;/p21sdk.
func p21Fixture(t *testing.T, mutate ...func(*app.Config)) (*apptest.Env, string) {
	t.Helper()
	e := apptest.New(t, mutate...)
	e.AddRole("clerk")
	e.AddUser("api_user", "your_password", true, "clerk")
	for i := 1; i <= 7; i++ {
		e.AddConsumer(admin.NewConsumer{Name: fmt.Sprintf("earlier_%d", i), Scope: "/api"})
	}
	c, key := e.AddConsumer(admin.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	if c.UID != 8 {
		t.Fatalf("consumer uid %d, want 8", c.UID)
	}
	return e, key
}

var (
	jwtRE  = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)
	rtRE   = regexp.MustCompile(`"RefreshToken":"([^"]+)"|<RefreshToken>([^<]+)</RefreshToken>`)
)

// normalize replaces what differs on every run, as the P21 golden tests do.
func normalize(b []byte) []byte {
	s := string(b)
	if m := rtRE.FindStringSubmatch(s); m != nil {
		s = strings.ReplaceAll(s, m[1]+m[2], "<refresh-token>")
	}
	s = jwtRE.ReplaceAllString(s, "<jwt>")
	return []byte(uuidRE.ReplaceAllString(s, "<session-id>"))
}

// TestReplayP21Golden replays the request behind every golden file of the
// P21 wire formats (server/p21/testdata): the answer must still be the
// golden one, and request and answer must match the document. A golden
// file without its request here fails, so the two cannot drift apart.
func TestReplayP21Golden(t *testing.T) {
	e, key := p21Fixture(t)
	xml := []string{"Accept", "application/xml"}
	json := []string{"Accept", jsonCT}
	user := `{"username": "api_user", "password": "your_password"}`
	calls := map[string]call{
		"user_v2_json":               {path: "/api/security/token/v2", ct: jsonCT, body: user, headers: json, status: 200},
		"user_v1_json":               {path: "/api/security/token", method: "POST", headers: append([]string{"username", "api_user", "password", "your_password", "Content-Type", jsonCT}, json...), status: 200},
		"consumer_v2_json":           {path: "/api/security/token/v2", ct: jsonCT, body: `{"ClientSecret": "` + key + `", "GrantType": "client_credentials"}`, headers: json, status: 200},
		"consumer_username_v2_json":  {path: "/api/security/token/v2", ct: jsonCT, body: `{"ClientSecret": "` + key + `", "GrantType": "client_credentials", "username": "api_user"}`, headers: json, status: 200},
		"consumer_v1_json":           {path: "/api/security/token", method: "POST", headers: append([]string{"appkey", key}, json...), status: 200},
		"consumer_username_v1_json":  {path: "/api/security/token", method: "POST", headers: append([]string{"appkey", key, "username", "api_user"}, json...), status: 200},
		"user_v2_xml":                {path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"api_user","password":"your_password"}`, headers: xml, status: 200},
		"consumer_v2_xml":            {path: "/api/security/token/v2", ct: jsonCT, body: `{"ClientSecret":"` + key + `","GrantType":"client_credentials","username":"api_user"}`, headers: xml, status: 200},
		"error_bad_credentials_json": {path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"api_user","password":"wrong"}`, status: 401},
		"error_bad_credentials_xml":  {path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"api_user","password":"wrong"}`, headers: xml, status: 401},
		"error_bad_client_json":      {path: "/api/security/token/v2", ct: jsonCT, body: `{"ClientSecret":"00000000-0000-4000-8000-000000000000","GrantType":"client_credentials"}`, status: 401},
		"error_invalid_request_json": {path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"api_user"}`, status: 400},
		"error_not_found_json":       {path: "/api/security/token/v3", ct: jsonCT, body: `{}`, invalid: true, status: 404},
		"error_refresh_json":         {path: "/api/security/token/v2", ct: jsonCT, body: `{"GrantType":"refresh_token","RefreshToken":"nope"}`, status: 400},
	}
	dir := filepath.Join("..", "p21", "testdata")
	goldens, err := filepath.Glob(filepath.Join(dir, "*.golden"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no golden files in %s: %v", dir, err)
	}
	for _, g := range goldens {
		name := strings.TrimSuffix(filepath.Base(g), ".golden")
		c, ok := calls[name]
		if !ok {
			t.Errorf("golden file %s has no request in TestReplayP21Golden: add it", g)
			continue
		}
		delete(calls, name)
		t.Run(name, func(t *testing.T) {
			c.name = name
			x := send(t, e, c)
			want, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			if got := normalize(x.respBody); !bytes.Equal(got, want) {
				t.Errorf("answer differs from %s:\n got: %s\nwant: %s", g, got, want)
			}
		})
	}
	for name := range calls {
		t.Errorf("request %s has no golden file in %s", name, dir)
	}
}

// TestReplayP21 replays the P21 tests' other requests: refresh, form
// bodies, wrong methods, oversized bodies, the V1 endpoint turned off and
// --token-format xml.
func TestReplayP21(t *testing.T) {
	e, key := p21Fixture(t)
	x := send(t, e, call{name: "user", path: "/api/security/token/v2", ct: jsonCT, body: `{"UserName":"api_user","Password":"your_password"}`, status: 200})
	var tok struct{ RefreshToken string }
	if err := json.Unmarshal(x.respBody, &tok); err != nil {
		t.Fatal(err)
	}
	refresh := `{"GrantType":"refresh_token","RefreshToken":"` + tok.RefreshToken + `"}`
	for _, c := range []call{
		{name: "refresh", path: "/api/security/token/v2", ct: jsonCT, body: refresh, status: 200},
		{name: "refresh reuse", path: "/api/security/token/v2", ct: jsonCT, body: refresh, status: 400},
		{name: "form body", path: "/api/security/token/v2/", ct: formCT, body: "username=api_user&password=your_password", status: 200},
		{name: "form consumer", path: "/API/Security/Token/V2", ct: formCT, body: "ClientSecret=" + key + "&GrantType=client_credentials", status: 200},
		{name: "consumer, password grant type", path: "/api/security/token/v2", ct: jsonCT, body: `{"ClientSecret":"` + key + `","GrantType":"password"}`, status: 200},
		{name: "unsupported grant", path: "/api/security/token/v2", ct: jsonCT, body: `{"GrantType":"magic"}`, status: 400},
		{name: "duplicate field", path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"a","UserName":"b","password":"x"}`, invalid: true, status: 400},
		{name: "wrong JSON type", path: "/api/security/token/v2", ct: jsonCT, body: `{"username":1,"password":"x"}`, invalid: true, status: 400},
		{name: "trailing data", path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"a","password":"x"} x`, invalid: true, status: 400},
		{name: "wrong content type", path: "/api/security/token/v2", ct: "text/plain", body: "username=a", invalid: true, status: 400},
		{name: "too large", path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"` + strings.Repeat("a", 70<<10) + `"}`, invalid: true, status: 413},
		{name: "GET on V2", path: "/api/security/token/v2", invalid: true, status: 405},
		{name: "GET on V1", path: "/api/security/token", invalid: true, status: 405},
		{name: "V1 wrong password", path: "/api/security/token", method: "POST", headers: []string{"username", "api_user", "password", "wrong"}, status: 401},
		{name: "V1 wrong key", path: "/api/security/token", method: "POST", headers: []string{"appkey", "00000000-0000-4000-8000-000000000000"}, status: 401},
		{name: "V1 no credentials", path: "/api/security/token", method: "POST", status: 400},
	} {
		send(t, e, c)
	}

	t.Run("v1 off", func(t *testing.T) {
		e, _ := p21Fixture(t, func(c *app.Config) { c.V1 = false })
		send(t, e, call{name: "V1 off", path: "/api/security/token", method: "POST", headers: []string{"username", "api_user", "password", "your_password"}, status: 410})
		send(t, e, call{name: "V1 off, XML", path: "/api/security/token", method: "POST", headers: []string{"appkey", key, "Accept", "application/xml"}, status: 410})
	})
	t.Run("token-format xml", func(t *testing.T) {
		e, key := p21Fixture(t, func(c *app.Config) { c.TokenFormat = "xml" })
		for _, c := range []call{
			{name: "xml user", path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"api_user","password":"your_password"}`, headers: []string{"Accept", jsonCT}, status: 200},
			{name: "xml consumer", path: "/api/security/token/v2", ct: jsonCT, body: `{"ClientSecret":"` + key + `","GrantType":"client_credentials"}`, status: 200},
			{name: "xml V1 consumer", path: "/api/security/token", method: "POST", headers: []string{"appkey", key}, status: 200},
			{name: "xml error", path: "/api/security/token/v2", ct: jsonCT, body: `{"username":"api_user","password":"nope"}`, status: 401},
			{name: "xml 405", path: "/api/security/token/v2", method: "PUT", invalid: true, status: 405},
		} {
			x := send(t, e, c)
			if !bytes.HasPrefix(x.respBody, []byte("<?xml")) {
				t.Errorf("%s: not XML: %s", c.name, x.respBody)
			}
		}
	})
}

// oauthFixture is the OAuth2 tests' cast (server/oauth2): apx_user, the
// clients apx_client (password grant), rich_client (password and
// refresh_token) and svc (client_credentials only).
type oauthFixture struct {
	*apptest.Env
	apx, rich, svc string // Basic headers
	svcKey         string
}

func newOAuthFixture(t *testing.T, mutate ...func(*app.Config)) *oauthFixture {
	t.Helper()
	e := apptest.New(t, mutate...)
	e.AddUser("apx_user", "Apx-Pa55word!", true, "")
	_, apxKey := e.AddConsumer(admin.NewConsumer{Name: "apx_client", Scope: "access", Lifetime: time.Hour, Grants: []string{gatehouse.GrantPassword}})
	_, richKey := e.AddConsumer(admin.NewConsumer{Name: "rich_client", Scope: "access", Lifetime: time.Hour,
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken}})
	_, svcKey := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api", SDK: true})
	return &oauthFixture{Env: e, apx: basic("apx_client", apxKey), rich: basic("rich_client", richKey), svc: basic("svc", svcKey), svcKey: svcKey}
}

// TestReplayOAuth2 replays the OAuth2 tests' requests: the APX document's
// request, every grant, the token endpoint's error table, introspection,
// revocation, metadata, JWKS, --oauth-strict and a store that is down.
func TestReplayOAuth2(t *testing.T) {
	f := newOAuthFixture(t)
	pw := "Username=apx_user&Password=" + url.QueryEscape("Apx-Pa55word!")
	tokenCalls := []call{
		{name: "APX document request", body: pw + "&grant_type=password", headers: []string{"Authorization", f.apx}, status: 200},
		{name: "RFC 6749 spelling", body: "username=apx_user&password=" + url.QueryEscape("Apx-Pa55word!") + "&grant_type=password", headers: []string{"Authorization", f.apx}, status: 200},
		{name: "client credentials", body: "grant_type=client_credentials", headers: []string{"Authorization", f.svc}, status: 200},
		{name: "client_secret_post", body: "grant_type=client_credentials&client_id=svc&client_secret=" + f.svcKey, status: 200},
		{name: "no grant_type", body: pw, headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "unknown grant", body: "grant_type=authorization_code&code=x", headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "duplicate grant_type", body: pw + "&grant_type=password&grant_type=password", headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "both spellings differ", body: pw + "&username=other&grant_type=password", headers: []string{"Authorization", f.apx}, status: 400},
		{name: "missing password", body: "Username=apx_user&grant_type=password", headers: []string{"Authorization", f.apx}, status: 400},
		{name: "wrong password", body: "Username=apx_user&Password=nope&grant_type=password", headers: []string{"Authorization", f.apx}, status: 401},
		{name: "no client auth", body: pw + "&grant_type=password", status: 401},
		{name: "wrong secret", body: pw + "&grant_type=password", headers: []string{"Authorization", basic("apx_client", "x")}, status: 401},
		{name: "malformed Basic", body: pw + "&grant_type=password", headers: []string{"Authorization", "Basic %%%"}, invalid: true, status: 401},
		{name: "both auth methods", body: pw + "&grant_type=password&client_id=apx_client&client_secret=x", headers: []string{"Authorization", f.apx}, status: 400},
		{name: "password grant not allowed", body: pw + "&grant_type=password", headers: []string{"Authorization", f.svc}, status: 400},
		{name: "refresh grant not allowed", body: "grant_type=refresh_token&refresh_token=abc", headers: []string{"Authorization", f.apx}, status: 400},
		{name: "unknown refresh token", body: "grant_type=refresh_token&refresh_token=abc", headers: []string{"Authorization", f.rich}, status: 400},
		{name: "JSON body", ct: jsonCT, body: `{"grant_type":"password"}`, headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "latin-1 charset", ct: formCT + "; charset=iso-8859-1", body: pw + "&grant_type=password", headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "bad escape", body: pw + "&grant_type=password&x=%zz", headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "semicolons", body: pw + ";grant_type=password", headers: []string{"Authorization", f.apx}, invalid: true, status: 400},
		{name: "two Authorization headers", body: pw + "&grant_type=password", headers: []string{"Authorization", f.apx, "Authorization", f.apx}, invalid: true, status: 400},
		{name: "too large", body: "grant_type=password&x=" + strings.Repeat("a", 70<<10), headers: []string{"Authorization", f.apx}, invalid: true, status: 413},
		{name: "GET", method: "GET", invalid: true, status: 405},
	}
	for _, c := range tokenCalls {
		c.path = "/oauth/token"
		if c.ct == "" && c.method == "" {
			c.ct = formCT
		}
		send(t, f.Env, c)
	}

	x := send(t, f.Env, call{name: "password grant with refresh", path: "/oauth/token", ct: formCT, body: pw + "&grant_type=password", headers: []string{"Authorization", f.rich}, status: 200})
	var tok struct{ AccessToken, RefreshToken string }
	var raw map[string]any
	json.Unmarshal(x.respBody, &raw)
	tok.AccessToken, _ = raw["access_token"].(string)
	tok.RefreshToken, _ = raw["refresh_token"].(string)
	x = send(t, f.Env, call{name: "refresh grant", path: "/oauth/token/", ct: formCT, body: "grant_type=refresh_token&refresh_token=" + url.QueryEscape(tok.RefreshToken),
		headers: []string{"Authorization", f.rich}, status: 200})
	json.Unmarshal(x.respBody, &raw)
	at, rt := raw["access_token"].(string), raw["refresh_token"].(string)
	for _, c := range []call{
		{name: "introspect active", path: "/oauth/introspect", body: "token=" + url.QueryEscape(at), headers: []string{"Authorization", f.svc}, status: 200},
		{name: "introspect refresh token", path: "/oauth/introspect", body: "token=" + url.QueryEscape(rt) + "&token_type_hint=refresh_token", headers: []string{"Authorization", f.rich}, status: 200},
		{name: "introspect garbage", path: "/oauth/introspect", body: "token=garbage", headers: []string{"Authorization", f.svc}, status: 200},
		{name: "introspect post auth", path: "/oauth/introspect", body: "token=x&client_id=svc&client_secret=" + f.svcKey, status: 200},
		{name: "introspect no token", path: "/oauth/introspect", body: "", headers: []string{"Authorization", f.svc}, invalid: true, status: 400},
		{name: "introspect bad client", path: "/oauth/introspect", body: "token=x", headers: []string{"Authorization", basic("svc", "x")}, status: 401},
		{name: "revoke foreign", path: "/oauth/revoke", body: "token=" + url.QueryEscape(at), headers: []string{"Authorization", f.svc}, status: 400},
		{name: "revoke unknown", path: "/oauth/revoke", body: "token=unknown&token_type_hint=id_token", headers: []string{"Authorization", f.rich}, status: 200},
		{name: "revoke", path: "/oauth/revoke", body: "token=" + url.QueryEscape(at), headers: []string{"Authorization", f.rich}, status: 200},
		{name: "introspect revoked", path: "/oauth/introspect", body: "token=" + url.QueryEscape(at), headers: []string{"Authorization", f.svc}, status: 200},
		{name: "revoke GET", path: "/oauth/revoke", method: "GET", invalid: true, status: 405},
		{name: "unknown /oauth path", path: "/oauth/authorize", invalid: true, status: 404},
		{name: "metadata", path: "/.well-known/oauth-authorization-server", status: 200},
		{name: "metadata POST", path: "/.well-known/oauth-authorization-server", method: "POST", invalid: true, status: 405},
		{name: "jwks", path: "/.well-known/jwks.json", status: 200},
		{name: "jwks, trailing slash", path: "/.well-known/JWKS.json/", status: 200},
		{name: "jwks DELETE", path: "/.well-known/jwks.json", method: "DELETE", invalid: true, status: 405},
		{name: "unknown well-known", path: "/.well-known/openid-configuration", invalid: true, status: 404},
	} {
		if c.method == "" {
			if strings.HasPrefix(c.path, "/oauth/") {
				c.ct = formCT
				c.method = "POST"
			}
		}
		send(t, f.Env, c)
	}

	t.Run("oauth-strict", func(t *testing.T) {
		f := newOAuthFixture(t, func(c *app.Config) { c.OAuthStrict = true })
		send(t, f.Env, call{name: "strict wrong password", path: "/oauth/token", ct: formCT, body: "Username=apx_user&Password=nope&grant_type=password",
			headers: []string{"Authorization", f.apx}, status: 400})
	})
	t.Run("store down", func(t *testing.T) {
		f := newOAuthFixture(t)
		send(t, f.Env, call{name: "warm up", path: "/oauth/introspect", ct: formCT, body: "token=x", headers: []string{"Authorization", f.svc}, status: 200})
		if err := f.App.Store.Close(); err != nil {
			t.Fatal(err)
		}
		send(t, f.Env, call{name: "token, store down", path: "/oauth/token", ct: formCT, body: "grant_type=client_credentials", headers: []string{"Authorization", f.svc}, status: 503})
		send(t, f.Env, call{name: "readyz, store down", path: "/readyz", status: 503})
	})
}

// TestReplayEnforcement replays the forward-auth and gateway tests'
// requests (server/gateway): each proxy's endpoint with what its proxy
// sends and with what an attacker adds, the UI router, the published
// configuration, and the gateway's own refusals.
func TestReplayEnforcement(t *testing.T) {
	e := apptest.New(t, func(c *app.Config) { c.UIServerURL = "https://play.p21server.com/uiserver0" })
	_, key := e.AddConsumer(admin.NewConsumer{Name: "fwd", Scope: "/odata:supplier"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `","username":"someone"}`)
	_, apiKey := e.AddConsumer(admin.NewConsumer{Name: "api", Scope: "/api"})
	apiTok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + apiKey + `"}`)
	bearer := []string{"Authorization", "Bearer " + tok}
	const sup, cus = "/odataservice/odata/table/supplier", "/odataservice/odata/table/customer"
	calls := []call{
		{name: "check, nginx pair", path: "/auth/check", headers: []string{"X-Original-URI", sup, "X-Original-Method", "GET"}, status: 200},
		{name: "check, forwarded pair", path: "/auth/check", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Method", "GET"}, status: 200},
		{name: "check, HEAD", method: "HEAD", path: "/auth/check/", headers: []string{"X-Forwarded-Uri", sup}, status: 200},
		{name: "nginx", path: "/auth/nginx", headers: []string{"X-Original-URI", sup + "?$top=5", "X-Original-Method", "POST"}, status: 200},
		{name: "traefik", path: "/auth/traefik", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https"}, status: 200},
		{name: "caddy", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Method", "DELETE"}, status: 200},
		{name: "envoy", path: "/auth/envoy" + sup + "?$top=5", status: 200},
		{name: "envoy, original method", method: "POST", path: "/auth/envoy" + sup, status: 200},
		{name: "envoy, other table", path: "/auth/envoy" + cus, status: 403},
		{name: "check, other table", path: "/auth/check", headers: []string{"X-Original-URI", cus}, status: 403},
		{name: "check, client X-Forwarded-Uri behind nginx", path: "/auth/check", headers: []string{"X-Original-URI", cus, "X-Forwarded-Uri", sup}, invalid: true, status: 403},
		{name: "traefik ignores the nginx pair", path: "/auth/traefik", headers: []string{"X-Original-URI", sup}, invalid: true, status: 403},
		{name: "two X-Original-URI", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Original-URI", cus}, invalid: true, status: 403},
		{name: "two Authorization", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "Authorization", "Bearer " + tok}, invalid: true, status: 403},
		{name: "identity header", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Gatehouse-User", "admin"}, invalid: true, status: 403},
		{name: "path override header", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Original-URL", cus}, invalid: true, status: 403},
		{name: "dot segment", path: "/auth/nginx", headers: []string{"X-Original-URI", sup + "/../customer"}, invalid: true, status: 403},
		{name: "no family", path: "/auth/nginx", headers: []string{"X-Original-URI", "/nowhere"}, invalid: true, status: 403},
		{name: "$batch", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", "/odataservice/odata/table/$batch"}, status: 403},
		{name: "XML refusal", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", cus, "Accept", "application/xml"}, status: 403},
		{name: "wrong method", method: "POST", path: "/auth/check", headers: []string{"X-Forwarded-Uri", sup}, invalid: true, status: 403},
	}
	for _, c := range calls {
		c.headers = append(append([]string(nil), bearer...), c.headers...)
		send(t, e, c)
	}
	for _, c := range []call{
		{name: "no token", path: "/auth/nginx", headers: []string{"X-Original-URI", sup}, invalid: true, status: 401},
		{name: "no token, envoy", path: "/auth/envoy/nowhere", invalid: true, status: 401},
		{name: "bad token", path: "/auth/check", headers: []string{"Authorization", "Bearer x.y.z", "X-Original-URI", sup}, status: 401},
		{name: "router", path: "/api/ui/router/v1?urlType=external", headers: []string{"Authorization", "Bearer " + apiTok}, status: 200},
		{name: "router, trailing slash", path: "/api/ui/router/v1/?urlType=internal", headers: []string{"Authorization", "Bearer " + apiTok}, status: 200},
		{name: "router, default", path: "/api/ui/router/v1", headers: []string{"Authorization", "Bearer " + apiTok}, status: 200},
		{name: "router, bad urlType", path: "/api/ui/router/v1?urlType=sideways", headers: []string{"Authorization", "Bearer " + apiTok}, invalid: true, status: 400},
		{name: "router, no token", path: "/api/ui/router/v1", invalid: true, status: 401},
		{name: "router, odata consumer", path: "/api/ui/router/v1", headers: bearer, status: 403},
		{name: "router, POST", method: "POST", path: "/api/ui/router/v1", headers: []string{"Authorization", "Bearer " + apiTok}, invalid: true, status: 405},
		{name: "configuration", path: "/.well-known/gatehouse-configuration", status: 200},
		{name: "configuration, PUT", method: "PUT", path: "/.well-known/gatehouse-configuration", invalid: true, status: 405},
		// The gateway: paths of the deployment's families, not listed.
		{name: "gateway, no token", path: "/api/entity/x", invalid: true, status: 401},
		{name: "gateway, scope", path: cus, headers: bearer, invalid: true, status: 403},
		{name: "gateway, no upstream", path: sup, headers: bearer, invalid: true, status: 404},
		{name: "gateway, dot segment", path: "/api/a;b", headers: []string{"Authorization", "Bearer " + apiTok}, invalid: true, status: 400},
	} {
		send(t, e, c)
	}
}

// TestReplayOperations: health, readiness, metrics and the document itself.
func TestReplayOperations(t *testing.T) {
	e := apptest.New(t)
	for _, c := range []call{
		{name: "healthz", path: "/healthz", status: 200},
		{name: "readyz", path: "/readyz", status: 200},
		{name: "metrics", path: "/metrics", status: 200},
		{name: "openapi", path: "/openapi.json", status: 200},
		{name: "openapi POST", method: "POST", path: "/openapi.json", invalid: true, status: 405},
	} {
		x := send(t, e, c)
		if c.name == "openapi" && !bytes.Equal(x.respBody, documentBytes(t)) {
			t.Error("/openapi.json is not the embedded document")
		}
	}
}

func documentBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMain checks, after a full run, that every operation of the
// document was reached by a replayed request, so that nothing in it goes
// untested. HEAD and the methods of Envoy's endpoint other than GET and
// POST share their GET's answers.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		d, err := loadDocument()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var missed []string
		for path, item := range d.Paths.Map() {
			for method := range item.Operations() {
				if method == http.MethodHead && path != "/auth/check" || path == "/auth/envoy/{path}" && method != http.MethodGet && method != http.MethodPost {
					continue
				}
				if !reached(method + " " + path) {
					missed = append(missed, method+" "+path)
				}
			}
		}
		if len(missed) > 0 {
			slices.Sort(missed)
			fmt.Fprintf(os.Stderr, "operations of the document no replayed request reached: %s\n", strings.Join(missed, ", "))
			code = 1
		}
	}
	os.Exit(code)
}
