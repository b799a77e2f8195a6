package p21_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/token"
)

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
