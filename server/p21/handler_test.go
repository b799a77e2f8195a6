package p21_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/token"
)

var update = flag.Bool("update", false, "rewrite golden files")

const jsonCT = "application/json"

// fixture is a server with the seed's cast: api_user (a real user with a
// password) and MY_SERVICE_APP, consumer uid 8 with scope /api;/p21sdk.
type fixture struct {
	*apptest.Env
	consumer gatehouse.Consumer
	key      string
}

const userPassword = "your_password"

func newFixture(t *testing.T, mutate ...func(*app.Config)) *fixture {
	t.Helper()
	return newFixtureWithClock(t, nil, mutate...)
}

// newFixtureWithClock is newFixture with a server that reads the time from
// clock (the system clock if nil).
func newFixtureWithClock(t *testing.T, clock gatehouse.Clock, mutate ...func(*app.Config)) *fixture {
	t.Helper()
	cfg := apptest.Config(t)
	for _, m := range mutate {
		m(&cfg)
	}
	e := apptest.StartWithClock(t, cfg, clock)
	e.AddRole("clerk")
	e.AddUser("api_user", userPassword, true, "clerk")
	// Seven earlier consumers so that ours gets uid 8, as in the seed.
	for i := 1; i <= 7; i++ {
		e.AddConsumer(auth.NewConsumer{Name: fmt.Sprintf("earlier_%d", i), Scope: "/api"})
	}
	c, key := e.AddConsumer(auth.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	if c.UID != 8 {
		t.Fatalf("consumer uid = %d, want 8", c.UID)
	}
	return &fixture{Env: e, consumer: c, key: key}
}

func (f *fixture) userV2() (*http.Response, []byte) {
	return f.Post("/api/security/token/v2", jsonCT, `{"username": "api_user", "password": "your_password"}`, "Accept", jsonCT)
}

func (f *fixture) consumerV2(username string) (*http.Response, []byte) {
	body := `{"ClientSecret": "` + f.key + `", "GrantType": "client_credentials"`
	if username != "" {
		body += `, "username": "` + username + `"`
	}
	return f.Post("/api/security/token/v2", jsonCT, body+"}", "Accept", jsonCT)
}

// field is one member of a JSON object, in order.
type field struct {
	Name string
	Kind string // string, number, null, bool, object, array
	Raw  string
}

func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []field
	for dec.More() {
		k, _ := dec.Token()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		kind := "number"
		switch raw[0] {
		case '"':
			kind = "string"
		case 'n':
			kind = "null"
		case 't', 'f':
			kind = "bool"
		case '{':
			kind = "object"
		case '[':
			kind = "array"
		}
		out = append(out, field{Name: k.(string), Kind: kind, Raw: string(raw)})
	}
	return out
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSeedExamplesAreVerbatim checks that the examples responses are
// compared with (testdata/seed_*) are the seed's own: each appears in
// testdata/seed_000_excerpts.txt, passages copied verbatim from the seed
// document it names. Where that document lies beside the repository
// (../shared/seeds), the excerpts are checked against it too.
func TestSeedExamplesAreVerbatim(t *testing.T) {
	source, excerpts := seedExcerpts(t)
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, name := range []string{"seed_user_v2.json", "seed_consumer.json", "seed_consumer_username.json", "seed_xml.xml"} {
		example := squash(string(readTestdata(t, name)))
		found := false
		for _, ex := range excerpts {
			found = found || strings.Contains(squash(ex.text), example)
		}
		if !found {
			t.Errorf("testdata/%s is not verbatim in the excerpts of %s", name, source)
		}
	}

	seed, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "seeds", source))
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("%s is not beside the repository; checked the examples against its excerpts only", source)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(seed), "\n")
	for _, ex := range excerpts {
		if ex.from < 1 || ex.to > len(lines) || ex.from > ex.to {
			t.Errorf("excerpt lines %d-%d: %s has %d lines", ex.from, ex.to, source, len(lines))
			continue
		}
		if want := strings.Join(lines[ex.from-1:ex.to], "\n"); ex.text != want {
			t.Errorf("excerpt lines %d-%d differs from %s:\n%s\nwant:\n%s", ex.from, ex.to, source, ex.text, want)
		}
	}
}

// excerpt is a passage of a seed document, lines from to to (from 1).
type excerpt struct {
	from, to int
	text     string
}

// seedExcerpts reads testdata/seed_000_excerpts.txt: a header, then
// excerpts, each after a line "== <seed file> lines FROM-TO" and followed by
// one empty line. It returns the seed file's name and the excerpts.
func seedExcerpts(t *testing.T) (string, []excerpt) {
	t.Helper()
	parts := strings.Split(string(readTestdata(t, "seed_000_excerpts.txt")), "\n== ")
	var source string
	var out []excerpt
	for _, p := range parts[1:] {
		head, text, _ := strings.Cut(p, "\n")
		var name string
		var ex excerpt
		if _, err := fmt.Sscanf(head, "%s lines %d-%d", &name, &ex.from, &ex.to); err != nil {
			t.Fatalf("excerpt heading %q: %v", head, err)
		}
		if source != "" && name != source {
			t.Fatalf("excerpts of two documents: %s and %s", source, name)
		}
		source = name
		// The end of the last line, then the empty line before the next excerpt.
		ex.text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\n")
		out = append(out, ex)
	}
	if len(out) == 0 {
		t.Fatal("no excerpts in testdata/seed_000_excerpts.txt")
	}
	return source, out
}

// checkAgainstSeed compares a response field by field with a seed example:
// same names, same order, same JSON types; values equal where the seed's
// value is not a placeholder (tokens, session ids).
func checkAgainstSeed(t *testing.T, got []byte, seedFile string, dynamic ...string) {
	t.Helper()
	want := fields(t, readTestdata(t, seedFile))
	have := fields(t, got)
	if len(have) != len(want) {
		t.Fatalf("%s: got fields %v, want %v", seedFile, have, want)
	}
	isDynamic := map[string]bool{}
	for _, d := range dynamic {
		isDynamic[d] = true
	}
	for i := range want {
		if have[i].Name != want[i].Name || have[i].Kind != want[i].Kind {
			t.Errorf("%s field %d: got %s (%s), want %s (%s)", seedFile, i, have[i].Name, have[i].Kind, want[i].Name, want[i].Kind)
			continue
		}
		if !isDynamic[want[i].Name] && have[i].Raw != want[i].Raw {
			t.Errorf("%s field %s: got %s, want %s", seedFile, want[i].Name, have[i].Raw, want[i].Raw)
		}
	}
}

var (
	jwtRE  = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)
)

// normalize replaces the values that differ on every run.
func normalize(b []byte, refresh string) []byte {
	s := jwtRE.ReplaceAllString(string(b), "<jwt>")
	if refresh != "" {
		s = strings.ReplaceAll(s, refresh, "<refresh-token>")
	}
	return []byte(uuidRE.ReplaceAllString(s, "<session-id>"))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func TestResponseShapes(t *testing.T) {
	f := newFixture(t)
	xmlAccept := []string{"Accept", "application/xml"}

	type shape struct {
		name    string
		send    func() (*http.Response, []byte)
		seed    string
		dynamic []string
		xml     bool
	}
	shapes := []shape{
		{name: "user_v2_json", send: f.userV2, seed: "seed_user_v2.json", dynamic: []string{"AccessToken", "RefreshToken"}},
		{name: "user_v1_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token", jsonCT, "", "username", "api_user", "password", userPassword, "Accept", jsonCT)
		}, seed: "seed_user_v2.json", dynamic: []string{"AccessToken", "RefreshToken"}},
		{name: "consumer_v2_json", send: func() (*http.Response, []byte) { return f.consumerV2("") },
			seed: "seed_consumer.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "consumer_username_v2_json", send: func() (*http.Response, []byte) { return f.consumerV2("api_user") },
			seed: "seed_consumer_username.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "consumer_v1_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token", jsonCT, "", "appkey", f.key, "Accept", jsonCT)
		}, seed: "seed_consumer.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "consumer_username_v1_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token", jsonCT, "", "appkey", f.key, "username", "api_user", "Accept", jsonCT)
		}, seed: "seed_consumer_username.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "user_v2_xml", xml: true, send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`, xmlAccept...)
		}},
		{name: "consumer_v2_xml", xml: true, send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials","username":"api_user"}`, xmlAccept...)
		}},
		{name: "error_bad_credentials_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`)
		}},
		{name: "error_bad_credentials_xml", xml: true, send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`, xmlAccept...)
		}},
		{name: "error_bad_client_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"00000000-0000-4000-8000-000000000000","GrantType":"client_credentials"}`)
		}},
		{name: "error_invalid_request_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user"}`)
		}},
		{name: "error_not_found_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v3", jsonCT, `{}`)
		}},
		{name: "error_refresh_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"nope"}`)
		}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			resp, body := s.send()
			ct := resp.Header.Get("Content-Type")
			if s.xml != strings.HasPrefix(ct, "application/xml") {
				t.Fatalf("Content-Type %q", ct)
			}
			if s.seed != "" {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				checkAgainstSeed(t, body, s.seed, s.dynamic...)
			}
			refresh := ""
			if m := regexp.MustCompile(`"RefreshToken":"([^"]+)"|<RefreshToken>([^<]+)</RefreshToken>`).FindSubmatch(body); m != nil {
				refresh = string(m[1]) + string(m[2])
			}
			golden(t, s.name, normalize(body, refresh))
		})
	}
}

func TestXMLMatchesSeedElements(t *testing.T) {
	f := newFixture(t)
	_, body := f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`, "Accept", "application/xml")
	// The seed's parser: a regex per field. It must find every field, and
	// ExpiresIn rather than ExpiresInSeconds.
	for _, fld := range []string{"AccessToken", "TokenType", "ExpiresIn", "RefreshToken"} {
		m := regexp.MustCompile(`<` + fld + `>([^<]*)</` + fld + `>`).FindSubmatch(body)
		if m == nil || len(m[1]) == 0 {
			t.Errorf("XML lacks %s: %s", fld, body)
		}
	}
	if bytes.Contains(body, []byte("ExpiresInSeconds")) {
		t.Errorf("XML must use ExpiresIn: %s", body)
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="utf-8"?>`)) {
		t.Errorf("XML declaration missing: %s", body)
	}
	if !strings.Contains(string(body), "<ExpiresIn>86400</ExpiresIn>") {
		t.Errorf("ExpiresIn: %s", body)
	}
}

func TestNegotiation(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		accept string
		xml    bool
	}{
		{"", false}, {"application/json", false}, {"*/*", false}, {"application/xml", true}, {"text/xml", true},
		{"application/json, application/xml", false}, {"application/xml, application/json", true},
		{"application/json;q=0.5, application/xml", true}, {"application/xml;q=0.1, */*", false},
		{"text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8", true},
	}
	for _, c := range cases {
		resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials"}`, "Accept", c.accept)
		isXML := bytes.HasPrefix(body, []byte("<?xml"))
		if resp.StatusCode != 200 || isXML != c.xml {
			t.Errorf("Accept %q: status %d, xml=%v, want xml=%v", c.accept, resp.StatusCode, isXML, c.xml)
		}
	}

	for _, mode := range []string{"xml", "json"} {
		t.Run("token-format="+mode, func(t *testing.T) {
			g := newFixture(t, func(c *app.Config) { c.TokenFormat = mode })
			for _, accept := range []string{"application/json", "application/xml", ""} {
				_, body := g.userV2Accept(accept)
				if bytes.HasPrefix(body, []byte("<?xml")) != (mode == "xml") {
					t.Errorf("mode %s Accept %q: %s", mode, accept, body)
				}
				_, body = g.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"bad"}`, "Accept", accept)
				if bytes.HasPrefix(body, []byte("<?xml")) != (mode == "xml") {
					t.Errorf("mode %s Accept %q error: %s", mode, accept, body)
				}
			}
		})
	}
}

func (f *fixture) userV2Accept(accept string) (*http.Response, []byte) {
	return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`, "Accept", accept)
}

// claims decodes a JWT's header and payload without verifying it.
func claims(t *testing.T, jwt string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func TestClaims(t *testing.T) {
	f := newFixture(t)
	_, body := f.userV2()
	var u struct{ AccessToken string }
	json.Unmarshal(body, &u)
	h, c := claims(t, u.AccessToken)
	if h["alg"] != "RS256" || h["kid"] == "" || h["kid"] == nil {
		t.Errorf("user token header %v", h)
	}
	if c["iss"] != "P21.Soa" || c["sub"] != "api_user" || c["aud"] != "/api" {
		t.Errorf("user token claims %v", c)
	}
	for _, k := range []string{"exp", "iat", "nbf", "jti", "P21.SessionId"} {
		if _, ok := c[k]; !ok {
			t.Errorf("user token lacks %s: %v", k, c)
		}
	}
	if _, ok := c["P21.ConsumerUid"]; ok {
		t.Errorf("user token has P21.ConsumerUid: %v", c)
	}
	exp, _ := c["exp"].(json.Number).Int64()
	iat, _ := c["iat"].(json.Number).Int64()
	if exp-iat != 86400 {
		t.Errorf("user token lives %d s, want 86400", exp-iat)
	}

	_, body = f.consumerV2("api_user")
	var cr struct{ AccessToken, SessionID string }
	json.Unmarshal(body, &cr)
	h, c = claims(t, cr.AccessToken)
	if h["alg"] != "HS256" || h["kid"] == nil {
		t.Errorf("consumer token header %v", h)
	}
	if c["sub"] != "api_user" || c["aud"] != "/api;/p21sdk" || c["P21.ConsumerUid"] != "8" || c["P21.SessionId"] != cr.SessionID || c["iss"] != "P21.Soa" {
		t.Errorf("consumer token claims %v", c)
	}
	if exp := c["exp"].(json.Number).String(); exp != "2147483647" {
		t.Errorf("never-expiring consumer exp = %s, want 2147483647", exp)
	}

	_, body = f.consumerV2("")
	json.Unmarshal(body, &cr)
	_, c = claims(t, cr.AccessToken)
	if sub, ok := c["sub"]; !ok || sub != "" {
		t.Errorf(`consumer token without username: sub = %v, want ""`, sub)
	}

	// Every token verifies with the server's key ring, pinned to its algorithm.
	kr := f.App.Keys.Ring().Load()
	for _, tok := range []string{u.AccessToken, cr.AccessToken} {
		if _, err := kr.Verify(tok, token.VerifyOptions{Issuer: "P21.Soa", Now: time.Now()}); err != nil {
			t.Errorf("verify: %v", err)
		}
	}
}

func TestFiniteConsumerLifetime(t *testing.T) {
	f := newFixture(t)
	_, key := f.AddConsumer(auth.NewConsumer{Name: "short", Scope: "/api", Lifetime: 2 * time.Hour})
	resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+key+`","GrantType":"client_credentials"}`)
	var r struct {
		ExpiresIn   int64
		AccessToken string
	}
	json.Unmarshal(body, &r)
	if resp.StatusCode != 200 || r.ExpiresIn != 7200 {
		t.Fatalf("status %d ExpiresIn %d: %s", resp.StatusCode, r.ExpiresIn, body)
	}
	_, c := claims(t, r.AccessToken)
	exp, _ := c["exp"].(json.Number).Int64()
	iat, _ := c["iat"].(json.Number).Int64()
	if exp-iat != 7200 {
		t.Fatalf("exp-iat = %d", exp-iat)
	}
}

func TestScopeInRequestIsIgnored(t *testing.T) {
	f := newFixture(t)
	_, plain := f.consumerV2("")
	resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials","Scope":"/odata:supplier"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var a, b struct{ Scope, AccessToken string }
	json.Unmarshal(plain, &a)
	json.Unmarshal(body, &b)
	_, c := claims(t, b.AccessToken)
	if a.Scope != "/api;/p21sdk" || b.Scope != a.Scope || c["aud"] != a.Scope {
		t.Fatalf("scope changed: %q vs %q (aud %v)", a.Scope, b.Scope, c["aud"])
	}
	// The user flow too.
	resp, body = f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password","scope":"/p21sdk"}`)
	var u struct{ AccessToken string }
	json.Unmarshal(body, &u)
	_, c = claims(t, u.AccessToken)
	if resp.StatusCode != 200 || c["aud"] != "/api" {
		t.Fatalf("user scope changed: %v", c["aud"])
	}
}

func TestV1Headers(t *testing.T) {
	f := newFixture(t)
	resp, body := f.Post("/api/security/token", jsonCT, "", "username", "api_user", "password", userPassword)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Deprecation") == "" {
		t.Error("no Deprecation header")
	}
	if got := resp.Header.Get("Link"); got != `</api/security/token/v2>; rel="successor-version"` {
		t.Errorf("Link = %q", got)
	}
	// Errors on V1 carry the headers too.
	resp, _ = f.Post("/api/security/token", jsonCT, "")
	if resp.StatusCode != 400 || resp.Header.Get("Deprecation") == "" {
		t.Errorf("V1 error: %d, Deprecation %q", resp.StatusCode, resp.Header.Get("Deprecation"))
	}

	g := newFixture(t, func(c *app.Config) { c.V1 = false })
	resp, body = g.Post("/api/security/token", jsonCT, "", "username", "api_user", "password", userPassword)
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "/api/security/token/v2") {
		t.Fatalf("--v1=false: %d %s", resp.StatusCode, body)
	}
	var e struct{ Error string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Fatalf("--v1=false body is not a JSON error: %s", body)
	}
}

func TestUniformCredentialFailures(t *testing.T) {
	f := newFixture(t, func(c *app.Config) { c.Auth.LockoutThreshold = 3 })
	ctx := context.Background()
	f.AddUser("gone", "pw-of-gone", true, "")
	if _, err := f.App.Admin.DeleteUser(ctx, "test", "gone"); err != nil {
		t.Fatal(err)
	}
	f.AddUser("locked", "pw-of-locked", true, "")

	send := func(user, pw string) (int, string, http.Header) {
		b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
		resp, body := f.Post("/api/security/token/v2", jsonCT, string(b))
		return resp.StatusCode, string(body), resp.Header
	}
	// Lock "locked" out with three wrong passwords.
	for range 3 {
		send("locked", "wrong")
	}
	wrongStatus, wrongBody, _ := send("api_user", "wrong")
	cases := map[string][2]string{
		"unknown user":                 {"nobody", "whatever"},
		"deleted user":                 {"gone", "pw-of-gone"},
		"locked user":                  {"locked", "pw-of-locked"},
		"username no user can have":    {strings.Repeat("u", 300), "whatever"},
		"username with a control char": {"api\u0001user", "whatever"},
	}
	if wrongStatus != 401 || wrongBody != `{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`+"\n" {
		t.Fatalf("wrong password: %d %q", wrongStatus, wrongBody)
	}
	for name, c := range cases {
		st, body, _ := send(c[0], c[1])
		if st != wrongStatus || body != wrongBody {
			t.Errorf("%s: %d %q, want %d %q", name, st, body, wrongStatus, wrongBody)
		}
	}
	// V1 answers the same.
	resp, body := f.Post("/api/security/token", "", "", "username", "nobody", "password", "x")
	if resp.StatusCode != 401 || string(body) != wrongBody {
		t.Errorf("V1 unknown user: %d %s", resp.StatusCode, body)
	}

	// The lockout is audited, and unlocking lets the right password in again.
	evs, err := f.App.Store.ListAudit(ctx, storeFilter("lockout."))
	if err != nil || len(evs) == 0 {
		t.Fatalf("no lockout audit events: %v", err)
	}
	if err := f.App.Admin.UnlockUser(ctx, "test", "locked"); err != nil {
		t.Fatal(err)
	}
	if st, body, _ := send("locked", "pw-of-locked"); st != 200 {
		t.Fatalf("after unlock: %d %s", st, body)
	}
}

func TestBadConsumerKey(t *testing.T) {
	f := newFixture(t)
	want := `{"error":"invalid_client","error_description":"Client authentication failed."}` + "\n"
	for _, key := range []string{"00000000-0000-4000-8000-000000000000", "not-a-uuid", f.key + "x", strings.ToUpper(f.key)} {
		resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+key+`","GrantType":"client_credentials"}`)
		if resp.StatusCode != 401 || string(body) != want {
			t.Errorf("key %q: %d %s", key, resp.StatusCode, body)
		}
	}
	resp, body := f.Post("/api/security/token", "", "", "appkey", "00000000-0000-4000-8000-000000000000")
	if resp.StatusCode != 401 || string(body) != want {
		t.Errorf("V1 bad appkey: %d %s", resp.StatusCode, body)
	}
	// Disabled consumers get the same answer, within the feed interval.
	if _, _, err := f.App.Admin.SetConsumerDisabled(context.Background(), "test", "MY_SERVICE_APP", true); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, time.Second, func() error {
		resp, body := f.consumerV2("")
		if resp.StatusCode != 401 || string(body) != want {
			return fmt.Errorf("a disabled consumer still gets %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	f := newFixture(t)
	_, body := f.userV2()
	var first struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &first)
	_, c := claims(t, first.AccessToken)
	sessionID := c["P21.SessionId"].(string)

	refresh := func(rt string) (*http.Response, []byte) {
		return f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+rt+`"}`)
	}
	resp, body := refresh(first.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	checkAgainstSeed(t, body, "seed_user_v2.json", "AccessToken", "RefreshToken")
	var second struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	_, c2 := claims(t, second.AccessToken)
	if c2["P21.SessionId"] != sessionID {
		t.Fatalf("refresh changed the session: %v", c2["P21.SessionId"])
	}
	// Reuse of the spent token: refused, and the whole session ends.
	resp, body = refresh(first.RefreshToken)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"invalid_grant"`) {
		t.Fatalf("reuse: %d %s", resp.StatusCode, body)
	}
	s, err := f.App.Store.GetSession(context.Background(), sessionID)
	if err != nil || s.EndedAt.IsZero() || s.EndReason != gatehouse.EndRefreshReuse {
		t.Fatalf("session after reuse: %+v %v", s, err)
	}
	resp, _ = refresh(second.RefreshToken)
	if resp.StatusCode != 400 {
		t.Fatalf("the current refresh token of an ended session still works: %d", resp.StatusCode)
	}
	// Form bodies refresh too.
	_, body = f.userV2()
	var third struct{ RefreshToken string }
	json.Unmarshal(body, &third)
	resp, body = f.Post("/api/security/token/v2", "application/x-www-form-urlencoded", "granttype=refresh_token&REFRESHTOKEN="+third.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("form refresh: %d %s", resp.StatusCode, body)
	}
}

func TestMaxSessionsEndsOldest(t *testing.T) {
	clock := testtime.NewClock(time.Now())
	f := newFixtureWithClock(t, clock, func(c *app.Config) { c.Auth.MaxSessions = 2 })
	var rts []string
	var ids []string
	for range 3 {
		_, body := f.userV2()
		var r struct{ AccessToken, RefreshToken string }
		json.Unmarshal(body, &r)
		_, c := claims(t, r.AccessToken)
		rts = append(rts, r.RefreshToken)
		ids = append(ids, c["P21.SessionId"].(string))
		clock.Advance(time.Second) // the next session is the younger
	}
	s, err := f.App.Store.GetSession(context.Background(), ids[0])
	if err != nil || s.EndReason != gatehouse.EndCap {
		t.Fatalf("oldest session: %+v %v", s, err)
	}
	resp, _ := f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+rts[0]+`"}`)
	if resp.StatusCode != 400 {
		t.Fatalf("refresh of capped session: %d", resp.StatusCode)
	}
	for i := 1; i < 3; i++ {
		s, err := f.App.Store.GetSession(context.Background(), ids[i])
		if err != nil || !s.EndedAt.IsZero() {
			t.Fatalf("session %d: %+v %v", i, s, err)
		}
	}
}

// TestSessionEndedElsewhere ends a session through a second handle on the
// same store file, as `gatehouse session end` from another shell does.
func TestSessionEndedElsewhere(t *testing.T) {
	f := newFixture(t)
	_, body := f.userV2()
	var r struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &r)
	_, c := claims(t, r.AccessToken)

	other, err := sqlite.Open(context.Background(), filepath.Join(f.Cfg.DataDir, "gatehouse.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.EndSession(context.Background(), c["P21.SessionId"].(string), gatehouse.EndAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, time.Second, func() error {
		resp, _ := f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+r.RefreshToken+`"}`)
		if resp.StatusCode != 400 {
			return fmt.Errorf("the refresh token of the ended session still gets %d", resp.StatusCode)
		}
		return nil
	})
}

func TestWrongMethodAndPaths(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/api/security/token/v2", nil)
	resp, body := f.Do(req)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(body), "invalid_request") {
		t.Fatalf("GET: %d %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	resp, body = f.Post("/api/security/tokens", jsonCT, `{}`)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "use /api/security/token/v2") || !strings.Contains(string(body), `"not_found"`) {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, body)
	}
	// Case and trailing slashes do not matter, as with the P21 middleware.
	resp, body = f.Post("/API/Security/Token/V2/", jsonCT, `{"username":"api_user","password":"your_password"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("mixed case path: %d %s", resp.StatusCode, body)
	}
	resp, _ = f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"`+strings.Repeat("x", 70<<10)+`"}`)
	if resp.StatusCode != 413 {
		t.Fatalf("large body: %d", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 2, nil
	})
	var limited *http.Response
	var body []byte
	for range 5 {
		resp, b := f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`)
		if resp.StatusCode == 429 {
			limited, body = resp, b
			break
		}
	}
	if limited == nil {
		t.Fatal("never rate limited")
	}
	if limited.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"slow_down"`) {
		t.Fatalf("429 without Retry-After or slow_down: %v %s", limited.Header, body)
	}
}

func TestTokensIssuedAreAudited(t *testing.T) {
	f := newFixture(t)
	f.userV2()
	f.consumerV2("api_user")
	f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"nope"}`)
	evs, err := f.App.Store.ListAudit(context.Background(), storeFilter("token."))
	if err != nil {
		t.Fatal(err)
	}
	var issued, refused int
	for _, ev := range evs {
		switch ev.Action {
		case "token.issue":
			issued++
			if ev.Remote == "" || !strings.HasPrefix(ev.Target, "session:") {
				t.Errorf("issue event lacks remote or session: %+v", ev)
			}
		case "token.refuse":
			refused++
		}
	}
	if issued != 2 || refused != 1 {
		t.Fatalf("audit: %d issued, %d refused", issued, refused)
	}
}

func storeFilter(action string) store.AuditFilter { return store.AuditFilter{Action: action} }

// TestV1RateLimitedIsDeprecated: a 429 on V1 carries the deprecation
// headers like every other V1 answer.
func TestV1RateLimitedIsDeprecated(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 1, nil
	})
	var limited *http.Response
	for range 5 {
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/api/security/token", nil)
		req.Header["username"] = []string{"api_user"}
		req.Header["password"] = []string{"wrong"}
		resp, _ := f.Do(req)
		if resp.Header.Get("Deprecation") == "" || resp.Header.Get("Link") == "" {
			t.Fatalf("V1 answer %d without Deprecation/Link: %v", resp.StatusCode, resp.Header)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
	}
	if limited == nil {
		t.Fatal("never rate limited")
	}
}

// TestTokenMetricFlows: every outcome of one endpoint shares its flow
// label scheme, p21.<version>.<flow>.
func TestTokenMetricFlows(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 1, 3, nil
	})
	f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`) // refused
	f.Post("/api/security/token/v2", jsonCT, `{"username":`)                               // invalid
	for range 4 {
		f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`) // limited at last
	}
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/metrics", nil)
	resp, body := f.Do(req)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`gatehouse_tokens_total{flow="p21.v2.user",outcome="refused"}`,
		`gatehouse_tokens_total{flow="p21.v2.unknown",outcome="invalid"} 1`,
		`gatehouse_tokens_total{flow="p21.v2.unknown",outcome="limited"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "gatehouse_tokens_total{") && !strings.Contains(line, `flow="p21.v2.`) {
			t.Errorf("flow label outside the p21.v2 scheme: %s", line)
		}
	}
}

// TestConsumerUsernameIsAnyString: the consumer flow takes any string as the
// user context (SPEC §2.1) and echoes it; the user is validated where used.
func TestConsumerUsernameIsAnyString(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"a\u0001b", strings.Repeat("u", 300), "tab\there", "Jürgen <x&y>"} {
		body, _ := json.Marshal(map[string]string{"GrantType": "client_credentials", "ClientSecret": f.key, "username": name})
		resp, out := f.Post("/api/security/token/v2", jsonCT, string(body))
		var got struct{ UserName string }
		if resp.StatusCode != 200 || json.Unmarshal(out, &got) != nil || got.UserName != name {
			t.Errorf("username %q: %d %s", name, resp.StatusCode, out)
		}
	}
	// What no store can keep is a malformed request.
	for name, u := range map[string]string{"NUL": "a\u0000b", "too long": strings.Repeat("u", 1025)} {
		body, _ := json.Marshal(map[string]string{"GrantType": "client_credentials", "ClientSecret": f.key, "username": u})
		resp, out := f.Post("/api/security/token/v2", jsonCT, string(body))
		if resp.StatusCode != 400 || !strings.Contains(string(out), "invalid_request") {
			t.Errorf("%s username: %d %s", name, resp.StatusCode, out)
		}
	}
	// Not text at all is a malformed request.
	resp, out := f.Post("/api/security/token/v2", "application/x-www-form-urlencoded", "GrantType=client_credentials&ClientSecret="+f.key+"&username=%FF")
	if resp.StatusCode != 400 || !strings.Contains(string(out), "UTF-8") {
		t.Errorf("invalid UTF-8 username: %d %s", resp.StatusCode, out)
	}
}

// TestScopeEchoedAsConfigured: Scope is the consumer's scope string as the
// administrator wrote it (plus /p21sdk for SDK access), and still matches
// case-insensitively.
func TestScopeEchoedAsConfigured(t *testing.T) {
	f := newFixture(t)
	for i, c := range []struct {
		scope string
		sdk   bool
		want  string
	}{
		{" /odata:Price_Page, supplier ,Product_Group ", false, "/odata:Price_Page, supplier ,Product_Group"},
		{"/API", true, "/API;/p21sdk"},
		{"/api;/P21SDK", true, "/api;/P21SDK"},
	} {
		_, key := f.AddConsumer(auth.NewConsumer{Name: "c" + strconv.Itoa(i), Scope: c.scope, SDK: c.sdk})
		resp, body := f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`)
		var got struct{ Scope, AccessToken string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Scope != c.want {
			t.Errorf("scope %q: %d %s; want Scope %q", c.scope, resp.StatusCode, body, c.want)
		}
	}
}
