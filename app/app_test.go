package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

func header(t *testing.T, jwt string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.Unmarshal(b, &h)
	return h
}

// TestKeyRotation: the next key is published before it signs; after a
// rotation (from another process, through the store) new tokens use it,
// and tokens signed by the retired key still verify.
func TestKeyRotation(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	ctx := context.Background()
	before := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	oldKID := header(t, before)["kid"].(string)

	keys, err := e.App.Store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nextKID := ""
	for _, k := range keys {
		if k.Algorithm == token.RS256 && k.State == gatehouse.KeyNext {
			nextKID = k.KID
		}
	}
	if nextKID == "" {
		t.Fatal("no next RS256 key")
	}
	jwks := e.App.Keys.Ring().Load().JWKS()
	if len(jwks.Key(nextKID)) != 1 || len(jwks.Key(oldKID)) != 1 {
		t.Fatalf("JWKS must publish the active and the next key: %+v", jwks)
	}

	// Rotate through a separate admin service on the same store, as
	// `gatehouse keys rotate` does from another shell.
	mk, err := app.LoadMasterKey(e.Cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	km := auth.NewKeyManager(e.App.Store, mk, &token.Ring{}, nil, nil)
	adm := admin.New(e.App.Store, nil, nil, km, e.App.Service.Config(), nil)
	if _, err := adm.RotateKeys(ctx, "test", []string{token.RS256}); err != nil {
		t.Fatal(err)
	}
	var after string
	testtime.Eventually(t, time.Second, func() error {
		after = e.Token(`{"username":"api_user","password":"pw-one-two"}`)
		if kid := header(t, after)["kid"]; kid != nextKID {
			return fmt.Errorf("new tokens still signed by %v, want %s", kid, nextKID)
		}
		return nil
	})
	for _, tok := range []string{before, after} {
		if _, err := e.App.Verifier.Verify(ctx, tok); err != nil {
			t.Fatalf("verify after rotation: %v", err)
		}
	}
	keys, _ = e.App.Store.ListKeys(ctx)
	states := map[string]gatehouse.KeyState{}
	for _, k := range keys {
		if k.Algorithm == token.RS256 {
			states[k.KID] = k.State
			if k.KID == oldKID && k.NotAfter.Before(time.Now().Add(23*time.Hour)) {
				t.Fatalf("retired key verifies only until %s", k.NotAfter)
			}
		}
	}
	if states[oldKID] != gatehouse.KeyRetired || states[nextKID] != gatehouse.KeyActive || len(states) != 3 {
		t.Fatalf("key states after rotation: %v", states)
	}
}

// TestAlgorithms issues tokens with every supported algorithm.
func TestAlgorithms(t *testing.T) {
	for _, alg := range token.Algorithms {
		t.Run(alg, func(t *testing.T) {
			e := apptest.New(t, func(c *app.Config) { c.Auth.UserTokenAlg, c.Auth.ConsumerTokenAlg = alg, alg })
			e.AddUser("api_user", "pw-one-two", true, "")
			_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
			for _, body := range []string{`{"username":"api_user","password":"pw-one-two"}`, `{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`} {
				tok := e.Token(body)
				if h := header(t, tok); h["alg"] != alg || h["kid"] == "" {
					t.Fatalf("header %v", h)
				}
				if _, err := e.App.Verifier.Verify(context.Background(), tok); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if _, err := app.New(context.Background(), func() app.Config {
		c := apptest.Config(t)
		c.Auth.UserTokenAlg = "none"
		return c
	}(), nil, nil); err == nil || !strings.Contains(err.Error(), "none") {
		t.Fatalf("algorithm none accepted: %v", err)
	}
}

// TestGarbageCollection removes sessions that expired or ended longer ago
// than the retention.
func TestGarbageCollection(t *testing.T) {
	ctx := context.Background()
	clk := testtime.NewClock(time.Now())
	cfg := apptest.Config(t)
	a, err := app.New(ctx, cfg, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, short, err := a.Admin.AddConsumer(ctx, "test", admin.NewConsumer{Name: "short", Scope: "/api", Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, never, err := a.Admin.AddConsumer(ctx, "test", admin.NewConsumer{Name: "never", Scope: "/api"})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := a.Service.ConsumerToken(ctx, short, "", issue.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := a.Service.ConsumerToken(ctx, never, "", issue.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour + cfg.SessionRetention + time.Minute)
	a.GC(ctx)
	if _, err := a.Store.GetSession(ctx, s1.Session.ID); err == nil {
		t.Fatal("expired session not collected")
	}
	if _, err := a.Store.GetSession(ctx, s2.Session.ID); err != nil {
		t.Fatalf("live session collected: %v", err)
	}
	if n, _ := a.Store.CountActiveSessions(ctx, clk.Now()); n != 1 {
		t.Fatalf("active sessions %d", n)
	}
}

// TestLockoutEndAudited: a lockout's start and end are audited once each,
// the end at the time it ended, also by a process that did not see it start
// (another replica, or the same server after a restart).
func TestLockoutEndAudited(t *testing.T) {
	ctx := context.Background()
	clk := testtime.NewClock(time.Now())
	cfg := apptest.Config(t)
	cfg.Auth.LockoutThreshold, cfg.Auth.LockoutWindow = 3, time.Minute
	a, err := app.New(ctx, cfg, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admin.AddUser(ctx, "test", admin.NewUser{Name: "ylock", Password: "right-password-1"}); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	for i := range 4 {
		clk.Advance(time.Second)
		if _, err := a.Service.PasswordToken(ctx, "ylock", "wrong", issue.Meta{Remote: "192.0.2.9"}); err == nil {
			t.Fatalf("wrong password %d accepted", i)
		}
	}
	a.Close()

	// "Restart": a new App on the same data, after the window.
	clk.Advance(2 * time.Minute)
	b, err := app.New(ctx, cfg, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.GC(ctx)
	b.GC(ctx) // a second sweep finds nothing more
	evs, err := b.Store.ListAudit(ctx, store.AuditFilter{Action: "lockout."})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Action != "lockout.start" || evs[1].Action != "lockout.end" || evs[1].Target != "user:ylock" {
		t.Fatalf("lockout events: %+v", evs)
	}
	// Failures at start+1s..+4s; the threshold-th most recent (+2s) left the
	// one-minute window at start+62s.
	if want := start.Add(62 * time.Second).Truncate(time.Microsecond); !evs[1].At.Equal(want) {
		t.Errorf("lockout.end at %v, want %v", evs[1].At, want)
	}
	if want := start.Add(3 * time.Second).Truncate(time.Microsecond); !evs[0].At.Equal(want) {
		t.Errorf("lockout.start at %v, want %v", evs[0].At, want)
	}
	// The right password works again, and unlocking an unlocked user says so.
	if _, err := b.Service.PasswordToken(ctx, "ylock", "right-password-1", issue.Meta{}); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if err := b.Admin.UnlockUser(ctx, "test", "ylock"); err != nil {
		t.Fatal(err)
	}
	evs, _ = b.Store.ListAudit(ctx, store.AuditFilter{Action: "user.unlock"})
	if len(evs) != 1 {
		t.Errorf("unlock of an unlocked user: %+v", evs)
	}
}

// TestLockoutBegunBeforeRecording: a lockout whose start is audited but
// was never recorded (a server of the previous schema) is adopted at
// start: its start is not audited twice and its end is audited.
func TestLockoutBegunBeforeRecording(t *testing.T) {
	ctx := context.Background()
	clk := testtime.NewClock(time.Now())
	cfg := apptest.Config(t)
	cfg.Auth.LockoutThreshold, cfg.Auth.LockoutWindow = 3, time.Minute
	a, err := app.New(ctx, cfg, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// What the previous version left: three failures and a lockout.start.
	start := clk.Now()
	for i := range 3 {
		if _, err := a.Store.RecordAuthFailure(ctx, "old", start.Add(time.Duration(i)*time.Second), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Store.AppendAudit(ctx, gatehouse.AuditEvent{At: start.Add(2 * time.Second), Actor: "system", Action: "lockout.start",
		Target: "user:Old", Outcome: gatehouse.OutcomeSuccess, Detail: "3 failed sign-ins within 1m0s"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Second)
	if n, err := a.Service.AdoptLockouts(ctx); err != nil || n != 1 {
		t.Fatalf("AdoptLockouts = %d, %v; want 1", n, err)
	}
	if n, _ := a.Service.AdoptLockouts(ctx); n != 0 {
		t.Fatalf("adopted twice: %d", n)
	}
	// Another failure while locked: no second start.
	a.Service.PasswordToken(ctx, "old", "x", issue.Meta{})
	clk.Advance(2 * time.Minute)
	a.GC(ctx)
	evs, err := a.Store.ListAudit(ctx, store.AuditFilter{Action: "lockout."})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Action != "lockout.start" || evs[1].Action != "lockout.end" || evs[1].Target != "user:old" {
		t.Fatalf("lockout events: %+v", evs)
	}
}

// TestSeedDemoOnlyIntoAnEmptyStore: --dev creates the demo user and
// consumer once, and never into a store that has users.
func TestSeedDemoOnlyIntoAnEmptyStore(t *testing.T) {
	ctx := context.Background()
	a, err := app.New(ctx, apptest.Config(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, err := a.SeedDemo(ctx)
	if err != nil || d == nil || d.Password == "" || d.ConsumerKey == "" {
		t.Fatalf("first SeedDemo: %+v, %v", d, err)
	}
	if _, err := a.Service.ConsumerToken(ctx, d.ConsumerKey, "", issue.Meta{}); err != nil {
		t.Fatalf("demo consumer key: %v", err)
	}
	if d2, err := a.SeedDemo(ctx); err != nil || d2 != nil {
		t.Fatalf("second SeedDemo: %+v, %v; want nothing created", d2, err)
	}
	b, err := app.New(ctx, apptest.Config(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Admin.AddUser(ctx, "test", admin.NewUser{Name: "someone"}); err != nil {
		t.Fatal(err)
	}
	if d3, err := b.SeedDemo(ctx); err != nil || d3 != nil {
		t.Fatalf("SeedDemo into a store with users: %+v, %v", d3, err)
	}
}
