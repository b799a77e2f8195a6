package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// inspectEnv is a server with a user (api_user, OData allowed, role clerk
// allowing only supplier), a user without OData access, a consumer scoped
// to two tables and the configuration API, and an OAuth2 client.
type inspectEnv struct {
	*apptest.Env
	consumerKey, oauthKey string
}

func newInspectEnv(t *testing.T) *inspectEnv {
	t.Helper()
	e := apptest.New(t)
	e.AddRole("clerk")
	if _, err := e.App.Admin.SetRoleEntries(context.Background(), "test", "clerk", true, []string{"supplier"}); err != nil {
		t.Fatal(err)
	}
	e.AddUser("api_user", "pw-one-two", true, "clerk")
	e.AddUser("no_odata", "pw-one-two", false, "")
	_, ck := e.AddConsumer(admin.NewConsumer{Name: "reports", Scope: "/odata:supplier,customer;/api/.configuration"})
	_, ok := e.AddConsumer(admin.NewConsumer{Name: "apx", Scope: "access", Lifetime: time.Hour, Grants: []string{gatehouse.GrantPassword}})
	return &inspectEnv{Env: e, consumerKey: ck, oauthKey: ok}
}

// inspectJSON runs token inspect --json with the token in $T.
func inspectJSON(t *testing.T, tok string, env map[string]string, args ...string) (int, Inspection, string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["T"] = tok
	code, out, errs := cli(t, "", env, append([]string{"token", "inspect", "--token-env", "T", "--json"}, args...)...)
	var r Inspection
	if code != 2 {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("exit %d, not JSON: %v\n%s%s", code, err, out, errs)
		}
	}
	if strings.Contains(out+errs, tok) || strings.Contains(out+errs, tok[strings.LastIndex(tok, ".")+1:]) {
		t.Errorf("the report shows the token or its signature:\n%s%s", out, errs)
	}
	return code, r, errs
}

func reachOf(r Inspection) map[string]FamilyReach {
	m := map[string]FamilyReach{}
	for _, f := range r.Reach {
		m[f.Family] = f
	}
	return m
}

func TestTokenInspectServer(t *testing.T) {
	e := newInspectEnv(t)
	consumer := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + e.consumerKey + `","username":"someone"}`)
	code, r, errs := inspectJSON(t, consumer, nil, "--server", e.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s %+v", code, errs, r.Verification)
	}
	if r.Kind != "p21-consumer" || r.Claims["P21.ConsumerUid"] != "1" || r.Claims["sub"] != "someone" {
		t.Errorf("kind %s, claims %v", r.Kind, r.Claims)
	}
	// HS256: not in the JWKS, but the server's check accepts it.
	if r.Verification.Signature != "not checked" || r.Verification.Accepted == nil || !*r.Verification.Accepted || r.Session.State != "active" {
		t.Errorf("verification %+v, session %+v", r.Verification, r.Session)
	}
	reach := reachOf(r)
	if o := reach["odata"]; o.All || strings.Join(o.Objects, ",") != "customer,supplier" {
		t.Errorf("odata reach %+v", o)
	}
	if c := reach["configuration"]; !c.All {
		t.Errorf("configuration reach %+v", c)
	}
	if _, ok := reach["api"]; ok || len(reach) != 2 {
		t.Errorf("reach %v", r.Reach)
	}
	if r.Lifetime == nil || !r.Lifetime.Never || r.Lifetime.Expired {
		t.Errorf("lifetime %+v", r.Lifetime)
	}

	// An RS256 user token: the JWKS verifies the signature.
	user := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	code, r, _ = inspectJSON(t, user, nil, "--server", e.URL)
	if code != 0 || r.Kind != "p21-user" || r.Verification.Signature != "valid" || r.Lifetime.Seconds < 86000 {
		t.Fatalf("user token: exit %d %+v %+v", code, r.Verification, r.Lifetime)
	}
	// An OAuth2 token (ES256, the server's URL as issuer).
	resp, body := e.Post("/oauth/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"password"}, "client_id": {"apx"},
		"client_secret": {e.oauthKey}, "username": {"api_user"}, "password": {"pw-one-two"}}.Encode())
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tok); resp.StatusCode != 200 {
		t.Fatalf("oauth token: %d %s", resp.StatusCode, body)
	}
	code, r, _ = inspectJSON(t, tok.AccessToken, nil, "--server", e.URL)
	if code != 0 || r.Kind != "oauth2-user" || r.Verification.Signature != "valid" || r.Scope.Raw != "access" {
		t.Errorf("oauth token: exit %d %+v %+v", code, r.Kind, r.Verification)
	}

	// The session ends: the server refuses the token, and inspect says so.
	if err := e.App.Admin.EndSession(context.Background(), "test", r.Session.ID); err != nil {
		t.Fatal(err)
	}
	code, r, _ = inspectJSON(t, tok.AccessToken, nil, "--server", e.URL)
	if code != 1 || r.Verification.Accepted == nil || *r.Verification.Accepted || r.Session.State != "ended" {
		t.Errorf("ended session: exit %d %+v %+v", code, r.Verification, r.Session)
	}

	// Text output: the same facts, no token.
	code, out, _ := cli(t, user+"\n", nil, "token", "inspect", "--server", e.URL)
	for _, want := range []string{"JWT p21-user", "signature valid, against " + e.URL + "/.well-known/jwks.json", "accepted by",
		"odata          all (/odataservice/odata/table/, /odataservice/odata/view/)", "session", ": active", "lifetime"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || strings.Contains(out, user) {
		t.Errorf("text report: exit %d\n%s", code, out)
	}
}

func TestTokenInspectStore(t *testing.T) {
	e := newInspectEnv(t)
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	data := []string{"--data", e.Cfg.DataDir}

	consumer := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + e.consumerKey + `"}`)
	code, r, errs := inspectJSON(t, consumer, env, data...)
	if code != 0 || r.Verification.Signature != "valid" || r.Session.State != "active" || r.Verification.Against != e.Cfg.DataDir {
		t.Fatalf("consumer token: exit %d %s %+v %+v", code, errs, r.Verification, r.Session)
	}

	// A user token: the store's user and role decide each family.
	user := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	code, r, _ = inspectJSON(t, user, env, data...)
	reach := reachOf(r)
	if code != 0 || r.User == nil || !r.User.AllowOData || r.User.Role != "clerk" {
		t.Fatalf("user token: exit %d %+v", code, r.User)
	}
	if o := reach["odata"]; !o.All || o.Denied != "" {
		t.Errorf("odata for a role allowing one table: %+v", o)
	}
	noOData := e.Token(`{"username":"no_odata","password":"pw-one-two"}`)
	_, r, _ = inspectJSON(t, noOData, env, data...)
	if d := reachOf(r)["api"].Denied; !strings.Contains(d, "Allow OData API Service") {
		t.Errorf("user without OData access: %+v", r.Reach)
	}

	// Ended in the store.
	if err := e.App.Admin.EndSession(context.Background(), "test", r.Session.ID); err != nil {
		t.Fatal(err)
	}
	code, r, _ = inspectJSON(t, noOData, env, data...)
	if code != 1 || r.Session.State != "ended" || r.Session.EndReason == "" {
		t.Errorf("ended session: exit %d %+v", code, r.Session)
	}

	// Another server's token: no such key here.
	other := apptest.New(t)
	otherTok := other.Token(`{"GrantType":"client_credentials","ClientSecret":"` + func() string {
		_, k := other.AddConsumer(admin.NewConsumer{Name: "x", Scope: "/api"})
		return k
	}() + `"}`)
	code, r, _ = inspectJSON(t, otherTok, env, data...)
	if code != 1 || !strings.Contains(r.Verification.Error, "no key") {
		t.Errorf("foreign token: exit %d %+v", code, r.Verification)
	}
	// A forged signature.
	forged := consumer[:strings.LastIndex(consumer, ".")+1] + "AAAA" + consumer[strings.LastIndex(consumer, ".")+5:]
	code, r, _ = inspectJSON(t, forged, env, data...)
	if code != 1 || r.Verification.Signature != "invalid" {
		t.Errorf("forged token: exit %d %+v", code, r.Verification)
	}
	// Decoded only: no store, no server.
	code, r, _ = inspectJSON(t, consumer, nil, "--data", t.TempDir()+"/none")
	if code != 2 {
		t.Errorf("a --data without a store: exit %d", code)
	}
}

func TestTokenInspectInput(t *testing.T) {
	tok := "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiIiLCJhdWQiOiIvYXBpIiwiZXhwIjoxfQ.c2ln"
	cases := []struct {
		name  string
		stdin string
		env   map[string]string
		args  []string
		code  int
		want  string
	}{
		{"token on argv", "", nil, []string{tok}, 2, "stdin (-) or with --token-env"},
		{"empty stdin", "", nil, nil, 2, "no token"},
		{"both", tok, map[string]string{"T": tok}, []string{"-", "--token-env", "T"}, 2, "not both"},
		{"unset variable", "", nil, []string{"--token-env", "NOPE"}, 2, "NOPE is empty"},
		{"not a JWT", "a.b.c\n", nil, nil, 2, "not base64url"},
		{"two parts", "a.b\n", nil, nil, 2, "2 parts"},
		{"space inside", "eyJ a.b.c\n", nil, nil, 2, "spaces"},
		{"plain http elsewhere", tok + "\n", nil, []string{"--server", "http://p21.example.com"}, 2, "in clear"},
		{"server with user info", tok + "\n", nil, []string{"--server", "https://u:p@h"}, 2, "user info"},
		{"opaque", "Xq2abcdefghijklmnop\n", nil, []string{"--data", t.TempDir() + "/none"}, 1, "opaque"},
		{"expired, decoded only", "Bearer " + tok + "\n", map[string]string{"GATEHOUSE_DATA": ""}, []string{"-", "--data", "./no-store-here"}, 2, "no gatehouse store"},
	}
	for _, c := range cases {
		code, out, errs := cli(t, c.stdin, c.env, append([]string{"token", "inspect"}, c.args...)...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s%s", c.name, code, c.code, c.want, out, errs)
		}
		if strings.Contains(out+errs, "c2ln") {
			t.Errorf("%s: the signature is shown:\n%s%s", c.name, out, errs)
		}
	}
	// Without a store or server the token is decoded: expired long ago.
	dir := t.TempDir()
	code, out, _ := cli(t, tok+"\n", map[string]string{}, "token", "inspect", "--data", dir+"/x", "--json")
	if code != 2 {
		t.Fatalf("explicit --data without a store: exit %d %s", code, out)
	}
}

// FuzzSplitJWT: no input makes the decoder panic, and what it accepts has
// a header and claims.
func FuzzSplitJWT(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIifQ.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("e30.e30.e30")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := splitJWT(s)
		if err == nil && (d.header == nil || d.claims == nil || d.sigLen == 0) {
			t.Fatalf("%q accepted without parts: %+v", s, d)
		}
	})
}
