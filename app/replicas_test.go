package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
	"github.com/gatehouse/gatehouse/token"
)

// replicaConfig is a test server on the PostgreSQL database dsn, following
// the change feed at the production default interval.
func replicaConfig(t *testing.T, dsn string) app.Config {
	cfg := apptest.Config(t)
	cfg.DB = dsn
	cfg.FeedInterval = app.DefaultConfig().FeedInterval
	cfg.Auth.MaxSessions = 3
	cfg.Auth.LockoutThreshold = 3
	return cfg
}

// TestReplicasStartTogether: replicas starting at once on an empty database
// migrate it once and agree on one set of signing keys.
func TestReplicasStartTogether(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	const n = 3
	apps := make([]*app.App, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := replicaConfig(t, dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			apps[i], errs[i] = app.New(context.Background(), cfg, nil, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer apps[i].Close()
	}
	for _, alg := range []string{"RS256", "HS256", "ES256"} {
		kid := apps[0].Keys.Ring().Load().ActiveKID(alg)
		for i, a := range apps {
			if got := a.Keys.Ring().Load().ActiveKID(alg); got == "" || got != kid {
				t.Fatalf("replica %d signs %s with %q, replica 0 with %q", i, alg, got, kid)
			}
		}
	}
	ks, err := apps[0].Store.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 6 {
		t.Fatalf("%d signing keys after a concurrent start, want 6 (active and next for three algorithms)", len(ks))
	}
}

// replicas are two servers on one database, reached through a proxy that
// can cut it.
type replicas struct {
	a, b  *apptest.Env
	proxy *pgtest.Proxy
	store store.Store // the database, not through the proxy
}

func startReplicas(t *testing.T) *replicas {
	dsn, _ := pgtest.Schema(t)
	proxy := pgtest.NewProxy(t, dsn)
	via := pgtest.ViaProxy(t, dsn, proxy.Addr())
	r := &replicas{proxy: proxy}
	r.a = apptest.Start(t, replicaConfig(t, via))
	r.b = apptest.Start(t, replicaConfig(t, via))
	st, err := app.OpenStore(context.Background(), app.Config{DB: dsn}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.store = st
	return r
}

func (r *replicas) both() []*apptest.Env { return []*apptest.Env{r.a, r.b} }

// consumerToken asks e for a consumer token; it returns the status and the
// token (on 200) or the response.
func consumerToken(t *testing.T, e *apptest.Env, key string) (int, string, *http.Response) {
	t.Helper()
	resp, body := e.Post("/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`)
	var out struct{ AccessToken string }
	json.Unmarshal(body, &out)
	return resp.StatusCode, out.AccessToken, resp
}

func mustConsumerToken(t *testing.T, e *apptest.Env, key string) string {
	t.Helper()
	code, tok, _ := consumerToken(t, e, key)
	if code != 200 || tok == "" {
		t.Fatalf("consumer token from %s: %d", e.URL, code)
	}
	return tok
}

// check asks e's forward-auth endpoint about a bearer token for an Entity
// API path.
func check(t *testing.T, e *apptest.Env, tok string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+"/auth/check", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/api/entity/x")
	resp, _ := e.Do(req)
	return resp
}

// waitRefused polls both replicas until each refuses tok, and returns how
// long the slower one took.
func (r *replicas) waitRefused(t *testing.T, tok, what string) time.Duration {
	t.Helper()
	start := time.Now()
	var slowest time.Duration
	for _, e := range r.both() {
		testtime.Eventually(t, 3*time.Second-time.Since(start), func() error {
			code := check(t, e, tok).StatusCode
			if code == http.StatusOK {
				return fmt.Errorf("%s: %s still accepts the token", what, e.URL)
			}
			if code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Fatalf("%s: check answered %d", what, code)
			}
			return nil
		})
		slowest = max(slowest, time.Since(start))
	}
	if slowest >= time.Second {
		t.Fatalf("%s: honoured by every replica after %v, want within 1s", what, slowest)
	}
	t.Logf("%s: refused by both replicas after %v", what, slowest.Round(time.Millisecond))
	return slowest
}

func TestReplicas(t *testing.T) {
	r := startReplicas(t)
	ctx := context.Background()
	const actor = "test"

	t.Run("ConsumerAndTokensAcrossReplicas", func(t *testing.T) {
		_, key := r.a.AddConsumer(admin.NewConsumer{Name: "shared", Scope: "/api"})
		fromB := mustConsumerToken(t, r.b, key)
		fromA := mustConsumerToken(t, r.a, key)
		for _, e := range r.both() {
			for name, tok := range map[string]string{"A": fromA, "B": fromB} {
				if code := check(t, e, tok).StatusCode; code != 200 {
					t.Fatalf("token from %s checked at %s: %d", name, e.URL, code)
				}
				if _, err := e.App.Verifier.Verify(ctx, tok); err != nil {
					t.Fatalf("token from %s verified in-process at %s: %v", name, e.URL, err)
				}
			}
		}
	})

	t.Run("EndsHonouredWithinOneSecond", func(t *testing.T) {
		_, k1 := r.a.AddConsumer(admin.NewConsumer{Name: "ended", Scope: "/api"})
		_, k2 := r.a.AddConsumer(admin.NewConsumer{Name: "disabled", Scope: "/api"})
		_, k3 := r.a.AddConsumer(admin.NewConsumer{Name: "rekeyed", Scope: "/api"})
		r.a.AddUser("carol", "carol-password-1", true, "")
		cases := []struct {
			name  string
			token func() string
			act   func(tok string) error
		}{
			{"session ended on A", func() string { return mustConsumerToken(t, r.b, k1) }, func(tok string) error {
				id, err := r.a.App.Verifier.Verify(ctx, tok)
				if err != nil {
					return err
				}
				return r.a.App.Admin.EndSession(ctx, actor, id.Session.ID)
			}},
			{"session ended in the store", func() string { return mustConsumerToken(t, r.a, k1) }, func(tok string) error {
				id, err := r.a.App.Verifier.Verify(ctx, tok)
				if err != nil {
					return err
				}
				return r.store.EndSession(ctx, id.Session.ID, gatehouse.EndAdmin, time.Now())
			}},
			{"consumer disabled on B", func() string { return mustConsumerToken(t, r.a, k2) }, func(string) error {
				_, _, err := r.b.App.Admin.SetConsumerDisabled(ctx, actor, "disabled", true)
				return err
			}},
			{"consumer key rotated on A", func() string { return mustConsumerToken(t, r.b, k3) }, func(string) error {
				_, _, err := r.a.App.Admin.RotateConsumerKey(ctx, actor, "rekeyed")
				return err
			}},
			{"user deleted on B", func() string {
				return r.a.Token(`{"username":"carol","password":"carol-password-1"}`)
			}, func(string) error {
				_, err := r.b.App.Admin.DeleteUser(ctx, actor, "carol")
				return err
			}},
		}
		for _, tc := range cases {
			tok := tc.token()
			// Both replicas accept it, and have its session in memory.
			for _, e := range r.both() {
				if code := check(t, e, tok).StatusCode; code != 200 {
					t.Fatalf("%s: check before: %d", tc.name, code)
				}
			}
			if err := tc.act(tok); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			r.waitRefused(t, tok, tc.name)
		}
	})

	t.Run("ConcurrentKeyRotations", func(t *testing.T) {
		_, key := r.a.AddConsumer(admin.NewConsumer{Name: "rotation", Scope: "/api"})
		before := mustConsumerToken(t, r.a, key)
		old := r.a.App.Keys.Ring().Load().ActiveKID("HS256")
		for round := range 3 {
			// Both replicas see the same active key and race to replace it,
			// each with a next key of its own: the store's compare-and-swap
			// lets exactly one win. (Through Admin.RotateKeys the second could
			// also start after the first finished and rightly win a rotation
			// of its own.)
			ks, err := r.store.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			expect := ""
			for _, k := range ks {
				if k.Algorithm == "HS256" && k.State == gatehouse.KeyActive {
					expect = k.KID
				}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, 2)
			for i, e := range r.both() {
				now := time.Now()
				next, err := token.NewSigningKey("HS256", e.App.MasterKey, now)
				if err != nil {
					t.Fatal(err)
				}
				next.State = gatehouse.KeyNext
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = e.App.Store.RotateKeys(ctx, expect, next, now, now.Add(24*time.Hour))
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, gatehouse.ErrConflict):
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d of two concurrent rotations won: %v", round, wins, errs)
			}
			ks, err = r.store.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			active := ""
			for _, k := range ks {
				if k.Algorithm == "HS256" && k.State == gatehouse.KeyActive {
					if active != "" {
						t.Fatalf("round %d: two active HS256 keys: %s and %s", round, active, k.KID)
					}
					active = k.KID
				}
			}
			// Both replicas sign with the new key within a feed poll.
			rotated := time.Now()
			for _, e := range r.both() {
				testtime.Eventually(t, time.Second-time.Since(rotated), func() error {
					if kid := e.App.Keys.Ring().Load().ActiveKID("HS256"); kid != active {
						return fmt.Errorf("round %d: %s still signs with %s, not %s", round, e.URL, kid, active)
					}
					return nil
				})
			}
		}
		if now := r.b.App.Keys.Ring().Load().ActiveKID("HS256"); now == old {
			t.Fatal("no rotation took effect")
		}
		fromA, fromB := mustConsumerToken(t, r.a, key), mustConsumerToken(t, r.b, key)
		for _, e := range r.both() {
			for name, tok := range map[string]string{"A": fromA, "B": fromB, "before the rotations": before} {
				if code := check(t, e, tok).StatusCode; code != 200 {
					t.Fatalf("token from %s checked at %s after rotations: %d", name, e.URL, code)
				}
			}
		}
	})

	t.Run("SessionCapRace", func(t *testing.T) {
		c, key := r.a.AddConsumer(admin.NewConsumer{Name: "capped", Scope: "/api"})
		const n = 24
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := r.both()[i%2]
				resp, err := e.Server.Client().Post(e.URL+"/api/security/token/v2", "application/json",
					strings.NewReader(`{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		for i, code := range codes {
			if code != 200 {
				t.Fatalf("request %d: %d", i, code)
			}
		}
		active, err := r.store.ListSessions(ctx, store.SessionFilter{ConsumerUID: c.UID, ActiveAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if len(active) != 3 {
			t.Fatalf("%d active sessions after %d concurrent token requests on two replicas with --max-sessions 3", len(active), n)
		}
	})

	t.Run("PasswordSetEndsSessionsEverywhere", func(t *testing.T) {
		r.a.AddUser("pat", "pat-password-1", true, "")
		var toks []struct{ AccessToken, RefreshToken string }
		for _, e := range r.both() {
			resp, body := e.Post("/api/security/token/v2", "application/json", `{"username":"pat","password":"pat-password-1"}`)
			var tok struct{ AccessToken, RefreshToken string }
			if resp.StatusCode != 200 || json.Unmarshal(body, &tok) != nil {
				t.Fatalf("sign-in at %s: %d %s", e.URL, resp.StatusCode, body)
			}
			toks = append(toks, tok)
			for _, e := range r.both() {
				if code := check(t, e, tok.AccessToken).StatusCode; code != 200 {
					t.Fatalf("check before: %d", code)
				}
			}
		}
		if err := r.a.App.Admin.SetPassword(ctx, actor, "pat", "pat-password-2"); err != nil {
			t.Fatal(err)
		}
		changed := time.Now()
		for i, tok := range toks {
			r.waitRefused(t, tok.AccessToken, fmt.Sprintf("access token %d after set-password", i))
			for _, e := range r.both() {
				resp, body := e.Post("/api/security/token/v2", "application/json", `{"GrantType":"refresh_token","RefreshToken":"`+tok.RefreshToken+`"}`)
				if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid_grant") {
					t.Fatalf("refresh token %d at %s after set-password: %d %s", i, e.URL, resp.StatusCode, body)
				}
			}
		}
		if d := time.Since(changed); d >= time.Second {
			t.Fatalf("old tokens refused everywhere only after %v", d)
		}
		if tok := r.b.Token(`{"username":"pat","password":"pat-password-2"}`); check(t, r.a, tok).StatusCode != 200 {
			t.Fatal("the new password's token is refused")
		}
	})

	t.Run("RefreshReuseEndsAtOnce", func(t *testing.T) {
		r.a.AddUser("quin", "quin-password-1", true, "")
		refresh := func(e *apptest.Env, rt string) (int, struct{ AccessToken, RefreshToken string }) {
			resp, body := e.Post("/api/security/token/v2", "application/json", `{"GrantType":"refresh_token","RefreshToken":"`+rt+`"}`)
			var tok struct{ AccessToken, RefreshToken string }
			json.Unmarshal(body, &tok)
			return resp.StatusCode, tok
		}
		resp, body := r.a.Post("/api/security/token/v2", "application/json", `{"username":"quin","password":"quin-password-1"}`)
		var first struct{ RefreshToken string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &first) != nil {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
		}
		code, next := refresh(r.a, first.RefreshToken)
		if code != 200 {
			t.Fatalf("refresh: %d", code)
		}
		for _, e := range r.both() {
			if code := check(t, e, next.AccessToken).StatusCode; code != 200 {
				t.Fatalf("check before: %d", code)
			}
		}
		// B sees the reuse: B refuses the session's token at once, A within a second.
		if code, _ := refresh(r.b, first.RefreshToken); code != 400 {
			t.Fatalf("reuse at B: %d", code)
		}
		if code := check(t, r.b, next.AccessToken).StatusCode; code != 401 {
			t.Fatalf("B's first check after the reuse it saw: %d, want 401", code)
		}
		r.waitRefused(t, next.AccessToken, "refresh reuse")
	})

	t.Run("LockoutAcrossReplicas", func(t *testing.T) {
		r.a.AddUser("dave", "dave-password-1", true, "")
		body := func(pw string) string { return `{"username":"dave","password":"` + pw + `"}` }
		for i, e := range []*apptest.Env{r.a, r.b, r.a} {
			resp, _ := e.Post("/api/security/token/v2", "application/json", body(fmt.Sprintf("wrong-%d", i)))
			if resp.StatusCode != 401 {
				t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
			}
		}
		// Three failures across the replicas reach the threshold on both.
		for _, e := range r.both() {
			resp, _ := e.Post("/api/security/token/v2", "application/json", body("dave-password-1"))
			if resp.StatusCode != 401 {
				t.Fatalf("right password after 3 failures on two replicas, at %s: %d, want 401 (locked)", e.URL, resp.StatusCode)
			}
		}
		// The two refused while locked count too: no hash tells a right
		// password from a wrong one then, and the work (and time) of the
		// answer is a wrong password's.
		n, err := r.store.CountAuthFailures(ctx, "dave", time.Now(), time.Hour)
		if err != nil || n != 5 {
			t.Fatalf("failures recorded: %d, %v", n, err)
		}
	})

	t.Run("DatabaseOutage", func(t *testing.T) {
		_, key := r.a.AddConsumer(admin.NewConsumer{Name: "outage", Scope: "/api"})
		r.a.AddUser("erin", "erin-password-1", true, "")
		tok := mustConsumerToken(t, r.a, key)
		for _, e := range r.both() {
			if code := check(t, e, tok).StatusCode; code != 200 {
				t.Fatalf("check before the outage: %d", code)
			}
			// The consumer is in each replica's memory: introspection's client
			// authentication does not need the database.
			if code := introspect(t, e, key, tok).StatusCode; code != 200 {
				t.Fatalf("introspection before the outage: %d", code)
			}
		}

		r.proxy.Cut()
		cut := time.Now()
		want503 := func(what string, resp *http.Response) {
			t.Helper()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s with the database down: %d (Retry-After %q), want 503 with Retry-After",
					what, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
		// Bearer checks answer from memory until the feed poll fails, then 503;
		// never 401.
		for _, e := range r.both() {
			testtime.Eventually(t, 3*time.Second-time.Since(cut), func() error {
				resp := check(t, e, tok)
				if resp.StatusCode == 200 {
					return errors.New("bearer checks still answer 200 into the outage")
				}
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("bearer check during the outage: %d", resp.StatusCode)
				}
				want503("bearer check", resp)
				return nil
			})
		}
		t.Logf("bearer checks answer 503 %v after the database went away", time.Since(cut).Round(time.Millisecond))
		for _, e := range r.both() {
			_, _, resp := consumerToken(t, e, key)
			want503("consumer token", resp)
			resp, _ = e.Post("/api/security/token/v2", "application/json", `{"username":"erin","password":"erin-password-1"}`)
			want503("user token", resp)
			resp, _ = e.Post("/api/security/token/v2", "application/json", `{"username":"erin","password":"wrong"}`)
			want503("wrong password", resp)
			resp, _ = e.Post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=outage&client_secret="+url.QueryEscape(key))
			want503("OAuth token", resp)
			want503("introspection", introspect(t, e, key, tok))
			want503("bearer check", check(t, e, tok))
			resp, _ = e.Do(mustRequest(t, http.MethodGet, e.URL+"/readyz"))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/readyz with the database down: %d", resp.StatusCode)
			}
		}

		r.proxy.Restore()
		restored := time.Now()
		// Bearer checks and introspection come back first (no new session, so
		// the cap of 3 keeps tok's session); then each replica issues a token.
		for _, e := range r.both() {
			for _, step := range []struct {
				what string
				try  func() int
			}{
				{"bearer check", func() int { return check(t, e, tok).StatusCode }},
				{"introspection", func() int { return introspect(t, e, key, tok).StatusCode }},
				{"consumer token", func() int { code, _, _ := consumerToken(t, e, key); return code }},
			} {
				testtime.Eventually(t, 15*time.Second-time.Since(restored), func() error {
					code := step.try()
					if code == http.StatusServiceUnavailable {
						return fmt.Errorf("%s at %s has not recovered since the database returned", step.what, e.URL)
					}
					if code != 200 {
						t.Fatalf("%s after the database returned: %d", step.what, code)
					}
					return nil
				})
			}
		}
		t.Logf("both replicas serve again %v after the database returned", time.Since(restored).Round(time.Millisecond))
	})
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// introspect asks e about tok, authenticating as the consumer named
// "outage" with key.
func introspect(t *testing.T, e *apptest.Env, key, tok string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+"/oauth/introspect", strings.NewReader("token="+url.QueryEscape(tok)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("outage", key)
	resp, body := e.Do(req)
	if resp.StatusCode == 200 {
		var out struct {
			Active bool `json:"active"`
		}
		json.Unmarshal(body, &out)
		if !out.Active {
			t.Fatalf("introspection at %s answered active:false: %s", e.URL, body)
		}
	}
	return resp
}
