package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
)

func issue(t *testing.T, e *apptest.Env, body string) string {
	t.Helper()
	resp, b := e.Post("/api/security/token/v2", "application/json", body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, b)
	}
	var r struct{ AccessToken string }
	json.Unmarshal(b, &r)
	return r.AccessToken
}

func wantStatus(t *testing.T, err error, status int, desc string) {
	t.Helper()
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Status != status || !strings.Contains(ge.Description, desc) {
		t.Fatalf("got %v, want %d mentioning %q", err, status, desc)
	}
}

func TestVerifier(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "your_password", true, "")
	_, key := e.AddConsumer(auth.NewConsumer{Name: "svc", Scope: "/api", SDK: true})
	v := e.App.Verifier
	ctx := context.Background()

	user := issue(t, e, `{"username":"api_user","password":"your_password"}`)
	id, err := v.Verify(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if id.Username() != "api_user" || id.IsConsumer() || id.Claims.Audience != "/api" || id.Session.ID != id.Claims.SessionID {
		t.Fatalf("user identity %+v", id.Claims)
	}
	cons := issue(t, e, `{"GrantType":"client_credentials","ClientSecret":"`+key+`","username":"someone"}`)
	id, err = v.Verify(ctx, cons)
	if err != nil {
		t.Fatal(err)
	}
	if id.Username() != "someone" || !id.IsConsumer() || id.ConsumerUID() != "1" || id.Claims.Audience != "/api;/p21sdk" {
		t.Fatalf("consumer identity %+v", id.Claims)
	}
	// Cached: a second check gives the same answer.
	if _, err := v.Verify(ctx, cons); err != nil {
		t.Fatal(err)
	}

	wantStatus(t, errOnly(v.Verify(ctx, "")), 401, "required")
	wantStatus(t, errOnly(v.Verify(ctx, "not.a.jwt")), 401, "malformed")
	parts := strings.Split(user, ".")
	wantStatus(t, errOnly(v.Verify(ctx, parts[0]+"."+parts[1]+".AAAA")), 401, "signature")

	// Ending the session elsewhere (another store handle, as the CLI does)
	// is honoured within a second.
	var ge *gatehouse.Error
	if _, err := v.Verify(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := e.App.Store.EndSession(ctx, id.Session.ID, gatehouse.EndAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		_, err := v.Verify(ctx, cons)
		if errors.As(err, &ge) && ge.Status == 401 && strings.Contains(ge.Description, "ended") {
			if ge.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate challenge")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ended session still accepted after 1s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The user token is unaffected.
	if _, err := v.Verify(ctx, user); err != nil {
		t.Fatal(err)
	}
}

func TestVerifierExpiry(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "your_password", true, "")
	tok := issue(t, e, `{"username":"api_user","password":"your_password"}`)
	id, err := e.App.Verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	now := id.Claims.IssuedAt
	clock := &fakeClock{t: now}
	v := auth.NewVerifier(e.App.Service.Config(), e.App.Keys.Ring(), e.App.Store, clock)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clock.t = now.Add(24*time.Hour + 31*time.Second)
	wantStatus(t, errOnly(v.Verify(context.Background(), tok)), 401, "expired")
	clock.t = now.Add(24*time.Hour + 10*time.Second) // within the leeway
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc", "Basic abc": "", "": "", "Bearer": "",
	} {
		if got := auth.BearerToken(h); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func errOnly(_ *auth.Identity, err error) error { return err }
