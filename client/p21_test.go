package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"golang.org/x/oauth2"
)

const (
	testUser     = "api_user"
	testPassword = "s3cret-Pa55word!"
)

// p21Server is a real gatehouse with a user and a consumer (scope /api,
// SDK access, never expiring).
type p21Server struct {
	*apptest.Env
	key string
	uid string
}

func newP21Server(t *testing.T, mutate ...func(*app.Config)) *p21Server {
	t.Helper()
	e := apptest.New(t, mutate...)
	e.AddUser(testUser, testPassword, true, "")
	c, key := e.AddConsumer(admin.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	return &p21Server{Env: e, key: key, uid: strconv.FormatInt(c.UID, 10)}
}

func (s *p21Server) sessions(t *testing.T, f store.SessionFilter) int {
	t.Helper()
	ss, err := s.App.Store.ListSessions(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

// claims decodes a JWT's payload (no verification: the server is trusted here).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestP21UserFlows(t *testing.T) {
	for _, format := range []string{"negotiate", "xml"} {
		srv := newP21Server(t, func(c *app.Config) { c.TokenFormat = format })
		for _, v1 := range []bool{false, true} {
			name := format + "/v2"
			var opts []client.Option
			if v1 {
				name = format + "/v1"
				opts = append(opts, client.WithV1())
			}
			t.Run(name, func(t *testing.T) {
				before := srv.sessions(t, store.SessionFilter{Username: testUser})
				start := time.Now()
				tok, err := client.NewP21UserSource(srv.URL, testUser, testPassword, opts...).TokenContext(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
					t.Fatalf("token = %+v", tok)
				}
				if d := tok.Expiry.Sub(start); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
					t.Errorf("expiry in %v, want 24h (ExpiresInSeconds or ExpiresIn 86400)", d)
				}
				if got := claims(t, tok.AccessToken)["sub"]; got != testUser {
					t.Errorf("sub = %v", got)
				}
				if got := srv.sessions(t, store.SessionFilter{Username: testUser}); got != before+1 {
					t.Errorf("sessions %d → %d, want one more", before, got)
				}
			})
		}
	}
}

func TestP21ConsumerFlows(t *testing.T) {
	for _, format := range []string{"negotiate", "xml"} {
		srv := newP21Server(t, func(c *app.Config) { c.TokenFormat = format })
		for _, v1 := range []bool{false, true} {
			for _, user := range []string{"", testUser} {
				name := format + "/v2"
				var opts []client.Option
				if v1 {
					name = format + "/v1"
					opts = append(opts, client.WithV1())
				}
				if user != "" {
					name += "/with-username"
				}
				t.Run(name, func(t *testing.T) {
					tok, err := client.NewP21ConsumerSource(srv.URL, srv.key, user, opts...).Token()
					if err != nil {
						t.Fatal(err)
					}
					r := client.ResponseOf(tok)
					if r == nil {
						t.Fatal("no response fields on the token")
					}
					if r.ConsumerUID != srv.uid || r.Scope != "/api;/p21sdk" || r.UserName != user || r.SessionID == "" {
						t.Errorf("response = %+v", r)
					}
					if r.ExpiresIn != 630720000 {
						t.Errorf("ExpiresIn = %d, want 630720000", r.ExpiresIn)
					}
					if tok.Extra("SessionId") != r.SessionID {
						t.Errorf("Extra(SessionId) = %v", tok.Extra("SessionId"))
					}
					c := claims(t, tok.AccessToken)
					if c["P21.SessionId"] != r.SessionID || c["P21.ConsumerUid"] != srv.uid || c["sub"] != user {
						t.Errorf("claims = %v", c)
					}
				})
			}
		}
	}
}

func TestP21Refusals(t *testing.T) {
	srv := newP21Server(t)
	tests := []struct {
		name   string
		src    client.TokenSource
		status int
		code   string
		desc   string
	}{
		{"wrong password v2", client.NewP21UserSource(srv.URL, testUser, "wrong-password"), 401, "invalid_grant", "The user name or password is incorrect."},
		{"wrong password v1", client.NewP21UserSource(srv.URL, testUser, "wrong-password", client.WithV1()), 401, "invalid_grant", "The user name or password is incorrect."},
		{"unknown user", client.NewP21UserSource(srv.URL, "nobody", "wrong-password"), 401, "invalid_grant", "The user name or password is incorrect."},
		{"wrong key", client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", ""), 401, "invalid_client", "Client authentication failed."},
		{"wrong key v1", client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", "", client.WithV1()), 401, "invalid_client", "Client authentication failed."},
		{"missing password", client.NewP21UserSource(srv.URL, testUser, ""), 400, "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.src.TokenContext(context.Background())
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %T %v, want *client.Error", err, err)
			}
			if e.Status != tt.status || e.Code != tt.code || (tt.desc != "" && e.Description != tt.desc) {
				t.Errorf("Error = %d %q %q", e.Status, e.Code, e.Description)
			}
			if !strings.Contains(e.Error(), "/api/security/token") {
				t.Errorf("message %q does not name the endpoint", e.Error())
			}
		})
	}
}

func TestP21V1TurnedOff(t *testing.T) {
	srv := newP21Server(t, func(c *app.Config) { c.V1 = false })
	_, err := client.NewP21UserSource(srv.URL, testUser, testPassword, client.WithV1()).Token()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 410 || e.Code != "gone" || !strings.Contains(e.Description, "/api/security/token/v2") {
		t.Fatalf("err = %v", err)
	}
}

// The cached user source renews through the refresh flow (same session)
// and signs in again when the refresh token is refused.
func TestP21RefreshAgainstServer(t *testing.T) {
	srv := newP21Server(t)
	clk := testtime.NewClock(time.Now())
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, testUser, testPassword, client.WithClock(clk.Now)), client.WithClock(clk.Now))
	first, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(24*time.Hour - 4*time.Minute)
	second, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatal("the token was not renewed")
	}
	sid := func(tok *oauth2.Token) any { return claims(t, tok.AccessToken)["P21.SessionId"] }
	if sid(first) != sid(second) {
		t.Errorf("the renewal started a new session: the refresh token was not used")
	}
	if n := srv.sessions(t, store.SessionFilter{Username: testUser}); n != 1 {
		t.Errorf("%d sessions after a refresh, want 1", n)
	}

	// A spent refresh token is refused (and ends that session); the source
	// signs in with the password instead.
	stale := client.NewCachedSource(client.NewP21UserSource(srv.URL, testUser, testPassword),
		client.WithSeed(&oauth2.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken, Expiry: time.Now().Add(time.Minute)}))
	third, err := stale.Token()
	if err != nil {
		t.Fatal(err)
	}
	if sid(third) == sid(first) {
		t.Error("the fallback reused the old session")
	}
	if n := srv.sessions(t, store.SessionFilter{Username: testUser}); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}
