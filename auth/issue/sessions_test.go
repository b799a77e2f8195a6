package issue_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/store"
	"golang.org/x/crypto/bcrypt"
)

// newApp builds a server on a fresh data dir with clk, without running its
// background loops: the change feed is never read, so whatever the
// verifier learns of ended sessions it learns from this process at once.
func newApp(t *testing.T, clk gatehouse.Clock, mutate func(*app.Config)) *app.App {
	t.Helper()
	cfg := apptest.Config(t)
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := app.New(context.Background(), cfg, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func auditOf(t *testing.T, st store.Store, action string) []gatehouse.AuditEvent {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestRefreshReuse: a reused refresh token ends its session on the process
// that saw it at once, and both audit records name the session.
func TestRefreshReuse(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, nil, nil)
	m := issue.Meta{Remote: "192.0.2.8", Via: "p21.v2"}
	if _, err := a.Admin.AddUser(ctx, "test", admin.NewUser{Name: "ruth", Password: "ruth-password-1"}); err != nil {
		t.Fatal(err)
	}
	c, key, err := a.Admin.AddConsumer(ctx, "test", admin.NewConsumer{Name: "app", Scope: "access",
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	o := issue.NewOAuth(a.Service, a.Verifier)
	cl, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "app", Secret: key}, m)
	if err != nil {
		t.Fatal(err)
	}
	flows := []struct {
		name    string
		signIn  func() (*issue.Issued, error)
		refresh func(tok string) (*issue.Issued, error)
		actor   string
	}{
		{"p21", func() (*issue.Issued, error) { return a.Service.PasswordToken(ctx, "ruth", "ruth-password-1", m) },
			func(tok string) (*issue.Issued, error) { return a.Service.RefreshToken(ctx, tok, m) }, "user:ruth"},
		{"oauth", func() (*issue.Issued, error) { return o.PasswordGrant(ctx, cl, "ruth", "ruth-password-1", m) },
			func(tok string) (*issue.Issued, error) { return o.RefreshGrant(ctx, cl, tok, m) }, "consumer:" + c.UIDString()},
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) {
			first, err := f.signIn()
			if err != nil {
				t.Fatal(err)
			}
			next, err := f.refresh(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			// The verifier has the session in memory.
			if _, err := a.Verifier.Verify(ctx, next.AccessToken); err != nil {
				t.Fatal(err)
			}
			_, err = f.refresh(first.RefreshToken)
			wantCode(t, err, 400, gatehouse.CodeInvalidGrant)
			// No feed is read here: only the process itself can have told it.
			wantStatus(t, errOnly(a.Verifier.Verify(ctx, next.AccessToken)), 401, "ended")
			sid := "session:" + first.Session.ID
			var refused, ended []gatehouse.AuditEvent
			for _, ev := range auditOf(t, a.Store, "") {
				switch {
				case ev.Action == "token.refuse" && strings.Contains(ev.Detail, "reused") && ev.Target == sid:
					refused = append(refused, ev)
				case ev.Action == "session.end" && ev.Target == sid:
					ended = append(ended, ev)
				}
			}
			if len(refused) != 1 {
				t.Fatalf("refusal of the reuse: %+v, want one naming %s", refused, sid)
			}
			if len(ended) != 1 || ended[0].Detail != "reason=refresh_reuse" || ended[0].Actor != f.actor || ended[0].Remote != m.Remote {
				t.Fatalf("end of the session: %+v", ended)
			}
			if s, err := a.Store.GetSession(ctx, first.Session.ID); err != nil || s.EndReason != gatehouse.EndRefreshReuse {
				t.Fatalf("session %+v, %v", s, err)
			}
		})
	}
}

// TestRefreshReuseGrace: within --refresh-reuse-grace a retry of the token
// just spent gets the same pair again; after it, or once the new token has
// been used, it is a reuse.
func TestRefreshReuseGrace(t *testing.T) {
	ctx := context.Background()
	clk := testtime.NewClock(time.Now())
	a := newApp(t, clk, func(c *app.Config) { c.Auth.RefreshReuseGrace = 10 * time.Second })
	if _, err := a.Admin.AddUser(ctx, "test", admin.NewUser{Name: "gail", Password: "gail-password-1"}); err != nil {
		t.Fatal(err)
	}
	_, key, err := a.Admin.AddConsumer(ctx, "test", admin.NewConsumer{Name: "app", Scope: "access",
		Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	o := issue.NewOAuth(a.Service, a.Verifier)
	m := issue.Meta{Remote: "192.0.2.8"}
	cl, err := o.AuthenticateClient(ctx, issue.ClientAuth{ID: "app", Secret: key}, m)
	if err != nil {
		t.Fatal(err)
	}
	flows := map[string]struct {
		signIn  func() (*issue.Issued, error)
		refresh func(tok string) (*issue.Issued, error)
	}{
		"p21": {func() (*issue.Issued, error) { return a.Service.PasswordToken(ctx, "gail", "gail-password-1", m) },
			func(tok string) (*issue.Issued, error) { return a.Service.RefreshToken(ctx, tok, m) }},
		"oauth": {func() (*issue.Issued, error) { return o.PasswordGrant(ctx, cl, "gail", "gail-password-1", m) },
			func(tok string) (*issue.Issued, error) { return o.RefreshGrant(ctx, cl, tok, m) }},
	}
	for name, f := range flows {
		t.Run(name, func(t *testing.T) {
			first, err := f.signIn()
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Minute)
			pair, err := f.refresh(first.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			// The answer was lost; the client retries a few seconds later.
			clk.Advance(3 * time.Second)
			again, err := f.refresh(first.RefreshToken)
			if err != nil {
				t.Fatalf("retry within the grace: %v", err)
			}
			// The same refresh token, and an access token with the same header
			// and claims (an ES256 signature differs each time it is made).
			signed := func(jwt string) string { return jwt[:strings.LastIndexByte(jwt, '.')] }
			if again.RefreshToken != pair.RefreshToken || signed(again.AccessToken) != signed(pair.AccessToken) || again.ExpiresIn != pair.ExpiresIn-3 {
				t.Fatalf("retry within the grace got another pair (expires in %d, first %d)", again.ExpiresIn, pair.ExpiresIn)
			}
			if _, err := a.Verifier.Verify(ctx, again.AccessToken); err != nil {
				t.Fatalf("the repeated access token: %v", err)
			}
			// The new refresh token goes on working; after that, the old one is a reuse.
			clk.Advance(time.Second)
			third, err := f.refresh(again.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.refresh(first.RefreshToken)
			wantCode(t, err, 400, gatehouse.CodeInvalidGrant)
			wantStatus(t, errOnly(a.Verifier.Verify(ctx, third.AccessToken)), 401, "ended")

			// After the grace, a retry is a reuse.
			late, err := f.signIn()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.refresh(late.RefreshToken); err != nil {
				t.Fatal(err)
			}
			clk.Advance(10 * time.Second)
			_, err = f.refresh(late.RefreshToken)
			wantCode(t, err, 400, gatehouse.CodeInvalidGrant)
			if s, err := a.Store.GetSession(ctx, late.Session.ID); err != nil || s.EndReason != gatehouse.EndRefreshReuse {
				t.Fatalf("session after a late retry: %+v, %v", s, err)
			}
		})
	}
	var retries int
	for _, ev := range auditOf(t, a.Store, "token.refresh") {
		if strings.Contains(ev.Detail, "retry within the reuse grace") {
			retries++
		}
	}
	if retries != 2 {
		t.Fatalf("%d retries audited, want 2", retries)
	}
}

// TestRefreshWithoutGrace: by default the retry of a spent token is a
// reuse, however soon it comes.
func TestRefreshWithoutGrace(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, nil, nil)
	if _, err := a.Admin.AddUser(ctx, "test", admin.NewUser{Name: "hal", Password: "hal-password-1"}); err != nil {
		t.Fatal(err)
	}
	iss, err := a.Service.PasswordToken(ctx, "hal", "hal-password-1", issue.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service.RefreshToken(ctx, iss.RefreshToken, issue.Meta{}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Service.RefreshToken(ctx, iss.RefreshToken, issue.Meta{})
	wantCode(t, err, 400, gatehouse.CodeInvalidGrant)
}

func TestRefreshReuseGraceBounds(t *testing.T) {
	for _, g := range []time.Duration{-time.Second, auth.MaxRefreshReuseGrace + time.Second} {
		cfg := apptest.Config(t)
		cfg.Auth.RefreshReuseGrace = g
		if a, err := app.New(context.Background(), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "--refresh-reuse-grace") {
			if a != nil {
				a.Close()
			}
			t.Fatalf("grace %v: %v", g, err)
		}
	}
}

// TestPasswordChangeEndsSessions: a new password or an imported hash ends
// every session acting as the user, at once on this process, unless the
// sessions are kept explicitly.
func TestPasswordChangeEndsSessions(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, nil, nil)
	if _, err := a.Admin.AddUser(ctx, "test", admin.NewUser{Name: "ivy", Password: "ivy-password-1"}); err != nil {
		t.Fatal(err)
	}
	_, key, err := a.Admin.AddConsumer(ctx, "test", admin.NewConsumer{Name: "app", Scope: "access"})
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(pw string) []*issue.Issued {
		t.Helper()
		user, err := a.Service.PasswordToken(ctx, "ivy", pw, issue.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		cons, err := a.Service.ConsumerToken(ctx, key, "IVY", issue.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		for _, iss := range []*issue.Issued{user, cons} {
			if _, err := a.Verifier.Verify(ctx, iss.AccessToken); err != nil {
				t.Fatal(err)
			}
		}
		return []*issue.Issued{user, cons}
	}
	wantEnded := func(what string, issued []*issue.Issued) {
		t.Helper()
		for _, iss := range issued {
			wantStatus(t, errOnly(a.Verifier.Verify(ctx, iss.AccessToken)), 401, "ended")
			if s, err := a.Store.GetSession(ctx, iss.Session.ID); err != nil || s.EndReason != gatehouse.EndPasswordChanged {
				t.Fatalf("%s: session %+v, %v", what, s, err)
			}
		}
		_, err := a.Service.RefreshToken(ctx, issued[0].RefreshToken, issue.Meta{})
		wantCode(t, err, 400, gatehouse.CodeInvalidGrant)
	}

	old := signIn("ivy-password-1")
	if err := a.Admin.SetPassword(ctx, "test", "ivy", "ivy-password-2"); err != nil {
		t.Fatal(err)
	}
	wantEnded("SetPassword", old)
	// The change and the sessions it ends are audited each with its write.
	evs := auditOf(t, a.Store, "user.set-password")
	ends := auditOf(t, a.Store, "session.end")
	if len(evs) != 1 || evs[0].Detail != "" || len(ends) != 1 || ends[0].Target != "user:ivy" ||
		ends[0].Detail != "2 sessions ended: password changed" {
		t.Fatalf("audit: %+v %+v", evs, ends)
	}

	kept := signIn("ivy-password-2")
	ended, err := a.Admin.ChangePassword(ctx, "test", "ivy", admin.PasswordChange{Password: "ivy-password-3", KeepSessions: true})
	if err != nil || len(ended) != 0 {
		t.Fatalf("keep sessions: %v %v", ended, err)
	}
	for _, iss := range kept {
		if _, err := a.Verifier.Verify(ctx, iss.AccessToken); err != nil {
			t.Fatalf("a kept session: %v", err)
		}
	}

	h, _ := bcrypt.GenerateFromPassword([]byte("ivy-password-4"), bcrypt.MinCost)
	if err := a.Admin.SetPasswordHash(ctx, "test", "ivy", string(h)); err != nil {
		t.Fatal(err)
	}
	wantEnded("SetPasswordHash", kept)
	evs = auditOf(t, a.Store, "user.set-password")
	ends = auditOf(t, a.Store, "session.end")
	if len(evs) != 3 || evs[1].Detail != "sessions kept" || evs[2].Detail != "imported hash" ||
		len(ends) != 2 || ends[1].Detail != "2 sessions ended: password changed" {
		t.Fatalf("audit: %+v %+v", evs, ends)
	}
	if _, err := a.Service.PasswordToken(ctx, "ivy", "ivy-password-4", issue.Meta{}); err != nil {
		t.Fatalf("the imported hash: %v", err)
	}
	if _, err := a.Admin.ChangePassword(ctx, "test", "ivy", admin.PasswordChange{Password: "x", Hash: string(h)}); err == nil {
		t.Fatal("a password and a hash at once were taken")
	}
}

// racingStore is the real store, with a change made by an administrator
// injected at one point of a sign-in: after the user is read, before the
// password is checked.
type racingStore struct {
	store.Store
	armed atomic.Bool
	act   func()
}

func (r *racingStore) CountAuthFailures(ctx context.Context, key string, t time.Time, window time.Duration) (int, error) {
	if r.armed.CompareAndSwap(true, false) {
		r.act()
	}
	return r.Store.CountAuthFailures(ctx, key, t, window)
}

// TestSignInRacingCredentialChange: a sign-in whose password check races
// with a new password (or a delete) gets no session that survives the
// change, and its upgrade of an imported hash does not undo the change.
func TestSignInRacingCredentialChange(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, nil, func(c *app.Config) { c.Auth.LockoutThreshold = 5 })
	rs := &racingStore{Store: a.Store}
	s := issue.NewService(a.Cfg.Auth, issue.Deps{Store: rs, Keys: a.Keys.Ring(), Passwords: password.NewHasher(password.DefaultParams()),
		ConsumerKeys: auth.NewConsumerKeys(a.MasterKey), RefreshTokens: issue.NewRefreshTokens(a.MasterKey)})
	var told []string
	s.OnSessionsEnded(func(ids ...string) { told = append(told, ids...) })
	h, _ := bcrypt.GenerateFromPassword([]byte("old-password-1"), bcrypt.MinCost)
	if _, err := a.Admin.AddUser(ctx, "test", admin.NewUser{Name: "jan", PasswordHash: string(h)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func() error
		reason string
	}{
		{"new password", func() error { return a.Admin.SetPassword(ctx, "test", "jan", "new-password-1") }, gatehouse.EndPasswordChanged},
		{"deleted", func() error { _, err := a.Admin.DeleteUser(ctx, "test", "jan"); return err }, gatehouse.EndUserDeleted},
	} {
		before, _ := a.Store.GetUser(ctx, "jan")
		rs.act = func() {
			if err := tc.change(); err != nil {
				t.Error(err)
			}
		}
		rs.armed.Store(true)
		told = nil
		_, err := s.PasswordToken(ctx, "jan", "old-password-1", issue.Meta{})
		wantCode(t, err, 401, gatehouse.CodeInvalidGrant)
		active, err := a.Store.ListSessions(ctx, store.SessionFilter{Username: "jan", ActiveAt: time.Now()})
		if err != nil || len(active) != 0 {
			t.Fatalf("%s: active sessions after the race: %+v, %v", tc.name, active, err)
		}
		all, _ := a.Store.ListSessions(ctx, store.SessionFilter{Username: "jan", Limit: 1})
		if len(all) != 1 || all[0].EndReason != tc.reason || len(told) != 1 || told[0] != all[0].ID {
			t.Fatalf("%s: session %+v (told %v)", tc.name, all, told)
		}
		after, _ := a.Store.GetUser(ctx, "jan")
		if after.PasswordHash == before.PasswordHash || strings.HasPrefix(before.PasswordHash, "$argon2id$") {
			t.Fatalf("%s: the change did not land as the test means it to", tc.name)
		}
		if tc.name == "new password" {
			// The upgrade of the old bcrypt hash did not overwrite the new password.
			if _, err := a.Service.PasswordToken(ctx, "jan", "new-password-1", issue.Meta{}); err != nil {
				t.Fatalf("the new password after the race: %v", err)
			}
			h, _ := bcrypt.GenerateFromPassword([]byte("old-password-1"), bcrypt.MinCost)
			if err := a.Admin.SetPasswordHash(ctx, "test", "jan", string(h)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLockedAccountNotHashed: once a name is locked, its checks compute no
// hash, and answer as a wrong password does.
func TestLockedAccountNotHashed(t *testing.T) {
	ctx := context.Background()
	e := apptest.New(t, func(c *app.Config) { c.Auth.LockoutThreshold = 2 })
	e.AddUser("kim", "kim-password-1", true, "")
	// A hash that logs a warning whenever it is read shows every check that hashes.
	if _, err := e.App.Store.UpdateUser(ctx, "kim", func(u *gatehouse.User) error {
		u.PasswordHash = "$argon2id$unreadable"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reads := func() int { return strings.Count(e.Log.String(), "stored password hash unreadable") }
	var first error
	for i := range 2 {
		_, err := e.App.Service.PasswordToken(ctx, "kim", "kim-password-1", issue.Meta{})
		wantCode(t, err, 401, gatehouse.CodeInvalidGrant)
		first = err
		if reads() != i+1 {
			t.Fatalf("attempt %d: %d hash reads", i, reads())
		}
	}
	for range 3 {
		_, err := e.App.Service.PasswordToken(ctx, "kim", "kim-password-1", issue.Meta{})
		if err.Error() != first.Error() {
			t.Fatalf("locked answer %v, wrong-password answer %v", err, first)
		}
	}
	if reads() != 2 {
		t.Fatalf("%d hash reads, want 2: a locked name was hashed", reads())
	}
	if err := e.App.Service.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, ev := range auditOf(t, e.App.Store, "token.refuse") {
		counts[ev.Detail] += ev.Count
	}
	if counts["user: wrong_password"] != 2 || counts["user: locked_out"] != 3 {
		t.Fatalf("refusals: %v", counts)
	}
}

// TestStaleConsumerCache: a consumer disabled, re-keyed or deleted by
// another process lets its old key in here until the feed reports the
// change; the sessions created meanwhile end when it does.
func TestStaleConsumerCache(t *testing.T) {
	ctx := context.Background()
	a := newApp(t, nil, nil)
	for _, tc := range []struct {
		name   string
		change func(name string) (newKey string, err error)
		reason string
	}{
		{"disabled", func(n string) (string, error) {
			_, _, err := a.Admin.SetConsumerDisabled(ctx, "test", n, true)
			return "", err
		}, gatehouse.EndConsumerDisabled},
		{"re-keyed", func(n string) (string, error) {
			_, key, err := a.Admin.RotateConsumerKey(ctx, "test", n)
			return key, err
		}, gatehouse.EndKeyRotated},
		{"deleted", func(n string) (string, error) {
			_, err := a.Admin.DeleteConsumer(ctx, "test", n)
			return "", err
		}, gatehouse.EndConsumerDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, key, err := a.Admin.AddConsumer(ctx, "test", admin.NewConsumer{Name: "c-" + strings.ReplaceAll(tc.name, "-", ""), Scope: "/api"})
			if err != nil {
				t.Fatal(err)
			}
			before, err := a.Service.ConsumerToken(ctx, key, "", issue.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			newKey, err := tc.change("c-" + strings.ReplaceAll(tc.name, "-", ""))
			if err != nil {
				t.Fatal(err)
			}
			// The feed has not been read: the cache still lets the old key in.
			stale, err := a.Service.ConsumerToken(ctx, key, "", issue.Meta{})
			if err != nil {
				t.Fatalf("the window this test is about is gone: %v", err)
			}
			var fresh *issue.Issued
			if newKey != "" {
				if fresh, err = a.Service.ConsumerToken(ctx, newKey, "", issue.Meta{}); err != nil {
					t.Fatal(err)
				}
			}
			a.Follower.Poll(ctx)
			for _, iss := range []*issue.Issued{before, stale} {
				wantStatus(t, errOnly(a.Verifier.Verify(ctx, iss.AccessToken)), 401, "ended")
			}
			if s, err := a.Store.GetSession(ctx, stale.Session.ID); err != nil || s.EndReason != tc.reason {
				t.Fatalf("session let in by the stale cache: %+v, %v", s, err)
			}
			if fresh != nil {
				if _, err := a.Verifier.Verify(ctx, fresh.AccessToken); err != nil {
					t.Fatalf("a session of the new key: %v", err)
				}
			}
			if _, err := a.Service.ConsumerToken(ctx, key, "", issue.Meta{}); err == nil {
				t.Fatal("the old key still works after the feed was read")
			}
		})
	}
}

func wantStatus(t *testing.T, err error, status int, desc string) {
	t.Helper()
	var ge *gatehouse.Error
	if !errors.As(err, &ge) || ge.Status != status || !strings.Contains(ge.Description, desc) {
		t.Fatalf("got %v, want %d mentioning %q", err, status, desc)
	}
}

func errOnly(_ *verify.Identity, err error) error { return err }
