package verify_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/wire"
)

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
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api", SDK: true})
	v := e.App.Verifier
	ctx := context.Background()

	user := e.Token(`{"username":"api_user","password":"your_password"}`)
	id, err := v.Verify(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if id.Username() != "api_user" || id.IsConsumer() || id.Claims.Audience != "/api" || id.Session.ID != id.Claims.SessionID {
		t.Fatalf("user identity %+v", id.Claims)
	}
	cons := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `","username":"someone"}`)
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
	testtime.Eventually(t, time.Second, func() error {
		_, err := v.Verify(ctx, cons)
		if !errors.As(err, &ge) || ge.Status != 401 || !strings.Contains(ge.Description, "ended") {
			return fmt.Errorf("ended session still accepted: %v", err)
		}
		return nil
	})
	if ge.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("no WWW-Authenticate challenge")
	}
	// The user token is unaffected.
	if _, err := v.Verify(ctx, user); err != nil {
		t.Fatal(err)
	}
}

func TestVerifierExpiry(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "your_password", true, "")
	tok := e.Token(`{"username":"api_user","password":"your_password"}`)
	id, err := e.App.Verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	now := id.Claims.IssuedAt
	clock := &fakeClock{t: now}
	v := verify.NewVerifier(e.App.Service.Config(), e.App.Keys.Ring(), e.App.Store, clock)
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
		if got := wire.BearerToken(h); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func errOnly(_ *verify.Identity, err error) error { return err }

// countingStore counts the reads a bearer check makes.
type countingStore struct {
	store.Store
	sessions, users, roles atomic.Int64
}

func (c *countingStore) GetSession(ctx context.Context, id string) (gatehouse.Session, error) {
	c.sessions.Add(1)
	return c.Store.GetSession(ctx, id)
}

func (c *countingStore) GetUser(ctx context.Context, name string) (gatehouse.User, error) {
	c.users.Add(1)
	return c.Store.GetUser(ctx, name)
}

func (c *countingStore) GetRole(ctx context.Context, name string) (gatehouse.Role, error) {
	c.roles.Add(1)
	return c.Store.GetRole(ctx, name)
}

// TestBearerChecksAnsweredFromMemory: after the first check of a token, the
// same and later checks make no store query, until the feed reports a change.
func TestBearerChecksAnsweredFromMemory(t *testing.T) {
	e := apptest.New(t)
	e.AddRole("clerk")
	e.AddUser("api_user", "your_password", true, "clerk")
	if _, err := e.App.Admin.SetRoleEntries(context.Background(), "test", "clerk", true, []string{"supplier"}); err != nil {
		t.Fatal(err)
	}
	tok := e.Token(`{"username":"api_user","password":"your_password"}`)
	cs := &countingStore{Store: e.App.Store}
	v := verify.NewVerifier(e.App.Service.Config(), e.App.Keys.Ring(), cs, nil)
	dir := verify.NewDirectory(cs)
	table, _ := policy.NewTable(policy.DefaultFamilies())
	a := &verify.Authorizer{Verifier: v, Directory: dir, Table: table, InstallUser: "admin"}
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := a.Authorize(ctx, policy.Request{Path: "/odataservice/odata/table/supplier", Authorization: []string{"Bearer " + tok}}); err != nil {
			t.Fatal(err)
		}
	}
	if cs.sessions.Load() != 1 || cs.users.Load() != 1 || cs.roles.Load() != 1 {
		t.Fatalf("100 checks made %d session, %d user, %d role reads; want 1 each", cs.sessions.Load(), cs.users.Load(), cs.roles.Load())
	}
	// A change to the user drops it from memory: the next check reads it again.
	dir.Listener().Changes([]gatehouse.Change{{Kind: gatehouse.ChangeUser, Key: "api_user", Op: gatehouse.OpUpdate}})
	if _, err := a.Authorize(ctx, policy.Request{Path: "/odataservice/odata/table/supplier", Authorization: []string{"Bearer " + tok}}); err != nil {
		t.Fatal(err)
	}
	if cs.users.Load() != 2 || cs.sessions.Load() != 1 {
		t.Fatalf("after a user change: %d user, %d session reads", cs.users.Load(), cs.sessions.Load())
	}
}
