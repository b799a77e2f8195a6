package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// parallel runs fn(i) for i in [0, n) on n goroutines started together and
// collects the errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

var concurrencyTests = []test{
	{"SessionCap", func(t *testing.T, s store.Store) {
		const n, max = 50, 5
		var mu sync.Mutex
		ended := map[string]int{}
		errs := parallel(n, func(i int) error {
			x := session(fmt.Sprintf("s%02d", i), 7, []string{"bob", "Bob", "BOB"}[i%3], time.Duration(i)*time.Millisecond)
			got, err := s.CreateSession(ctx, store.NewSession{Session: x, MaxSessions: max})
			mu.Lock()
			for _, id := range got {
				ended[id]++
			}
			mu.Unlock()
			return err
		})
		for _, err := range errs {
			must(t, err)
		}
		active, err := s.ListSessions(ctx, store.SessionFilter{ConsumerUID: 7, Username: "bob", ActiveAt: at(time.Minute)})
		must(t, err)
		if len(active) != max {
			t.Fatalf("%d active sessions after %d concurrent creates with a cap of %d: %v", len(active), n, max, ids(active))
		}
		if len(ended) != n-max {
			t.Fatalf("creates reported %d distinct ended sessions, want %d", len(ended), n-max)
		}
		for id, k := range ended {
			if k != 1 {
				t.Fatalf("session %s reported ended %d times", id, k)
			}
		}
		if c, err := s.CountActiveSessions(ctx, at(time.Minute)); err != nil || c != max {
			t.Fatalf("CountActiveSessions = %d, %v", c, err)
		}
	}},
	// Creates at once for capped and uncapped principals, some with refresh
	// tokens and audit events, and one that must fail (its refresh token is
	// taken): every other is stored whole, each cap holds, and the failure
	// is the failing create's alone.
	{"SessionCreatesTogether", func(t *testing.T, s store.Store) {
		const n, max = 120, 3
		createSession(t, s, session("taken", 9, "", 0), "taken-refresh", 0)
		var mu sync.Mutex
		ended := map[string]int{}
		errs := parallel(n, func(i int) error {
			x := session(fmt.Sprintf("t%03d", i), int64(1+i%4), "", time.Duration(i)*time.Millisecond)
			ns := store.NewSession{Session: x, Audit: []gatehouse.AuditEvent{{At: at(0), Actor: "consumer:x", Action: "token.issue",
				Target: "session:" + x.ID, Outcome: gatehouse.OutcomeSuccess, RequestID: "req-" + x.ID}}}
			if i%4 < 2 {
				ns.MaxSessions = max // principals 1 and 2 are capped
			}
			if i%5 == 0 {
				ns.RefreshHash = hash(fmt.Sprintf("refresh-%03d", i))
			}
			if i == 7 {
				ns.RefreshHash = hash("taken-refresh")
			}
			got, err := s.CreateSession(ctx, ns)
			mu.Lock()
			for _, id := range got {
				ended[id]++
			}
			mu.Unlock()
			return err
		})
		for i, err := range errs {
			if i == 7 {
				if !errors.Is(err, gatehouse.ErrConflict) {
					t.Fatalf("create with a taken refresh token: %v, want ErrConflict", err)
				}
				continue
			}
			must(t, err)
		}
		for uid := int64(1); uid <= 4; uid++ {
			active, err := s.ListSessions(ctx, store.SessionFilter{ConsumerUID: uid, ActiveAt: at(time.Minute)})
			must(t, err)
			want := n / 4
			if uid <= 2 {
				want = max
			}
			if uid == 4 {
				want-- // t007 failed
			}
			if len(active) != want {
				t.Fatalf("consumer %d: %d active sessions, want %d", uid, len(active), want)
			}
		}
		if len(ended) != 2*(n/4-max) {
			t.Fatalf("creates reported %d distinct ended sessions, want %d", len(ended), 2*(n/4-max))
		}
		for id, k := range ended {
			if k != 1 {
				t.Fatalf("session %s reported ended %d times", id, k)
			}
		}
		for i := 0; i < n; i += 5 {
			if i == 7 {
				continue
			}
			if x, err := s.FindSessionByRefresh(ctx, hash(fmt.Sprintf("refresh-%03d", i))); err != nil || x.ID != fmt.Sprintf("t%03d", i) {
				t.Fatalf("refresh token of t%03d: %v, %v", i, x.ID, err)
			}
		}
		evs, err := s.ListAudit(ctx, store.AuditFilter{Action: "token.issue"})
		must(t, err)
		if len(evs) != n-1 {
			t.Fatalf("%d token.issue events, want %d", len(evs), n-1)
		}
		for _, e := range evs {
			if e.RequestID != "req-"+strings.TrimPrefix(e.Target, "session:") {
				t.Fatalf("event %+v: request id %q", e, e.RequestID)
			}
		}
	}},
	{"RefreshRace", func(t *testing.T, s store.Store) {
		for round := range 10 {
			id := fmt.Sprintf("s%d", round)
			old := fmt.Sprintf("r%d", round)
			createSession(t, s, session(id, 7, "bob", 0), old, 0)
			errs := parallel(2, func(i int) error {
				_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash(old), NewHash: hash(fmt.Sprintf("%s-%d", old, i)),
					Now: at(time.Minute), ExpiresAt: at(2 * time.Hour)})
				return err
			})
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, gatehouse.ErrRefreshReused):
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d of two concurrent refreshes succeeded: %v", round, ok, errs)
			}
			// The loser presented a spent token: the session is ended.
			if x := getSession(t, s, id); x.EndReason != gatehouse.EndRefreshReuse {
				t.Fatalf("round %d: session after the race: %+v", round, x)
			}
		}
	}},
	{"RotateRace", func(t *testing.T, s store.Store) {
		must(t, s.InitKeys(ctx, key("k0", "RS256", gatehouse.KeyActive, at(0)), key("k1", "RS256", gatehouse.KeyNext, at(0))))
		active := "k0"
		for round := range 5 {
			errs := parallel(3, func(i int) error {
				kid := fmt.Sprintf("n%d-%d", round, i)
				return s.RotateKeys(ctx, active, key(kid, "RS256", gatehouse.KeyNext, at(time.Duration(round+1)*time.Hour)),
					at(time.Duration(round+1)*time.Hour), at(100*time.Hour))
			})
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, gatehouse.ErrConflict):
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d of three concurrent rotations won", round, ok)
			}
			ks := listKeys(t, s)
			checkOneActive(t, ks)
			next := 0
			for _, k := range ks {
				if k.State == gatehouse.KeyActive {
					active = k.KID
				}
				if k.State == gatehouse.KeyNext {
					next++
				}
			}
			if next != 1 || len(ks) != round+3 {
				t.Fatalf("round %d: %d next keys, %d keys: %+v", round, next, len(ks), ks)
			}
		}
	}},
	{"InitRace", func(t *testing.T, s store.Store) {
		errs := parallel(4, func(i int) error {
			return s.InitKeys(ctx, key(fmt.Sprintf("a%d", i), "ES256", gatehouse.KeyActive, at(0)),
				key(fmt.Sprintf("n%d", i), "ES256", gatehouse.KeyNext, at(0)))
		})
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, gatehouse.ErrConflict) {
				t.Fatal(err)
			}
		}
		if ks := listKeys(t, s); ok != 1 || len(ks) != 2 {
			t.Fatalf("%d of 4 concurrent InitKeys won, %d keys stored", ok, len(ks))
		}
	}},
	{"UpdateUserNoLostUpdates", func(t *testing.T, s store.Store) {
		must(t, s.CreateUser(ctx, gatehouse.User{Name: "counter"}))
		const n = 30
		errs := parallel(n, func(i int) error {
			_, err := s.UpdateUser(ctx, "counter", func(u *gatehouse.User) error {
				u.PasswordHash += "x"
				return nil
			})
			return err
		})
		for _, err := range errs {
			must(t, err)
		}
		u, err := s.GetUser(ctx, "counter")
		must(t, err)
		if u.PasswordHash != strings.Repeat("x", n) {
			t.Fatalf("%d concurrent updates left %q", n, u.PasswordHash)
		}
	}},
	{"ConsumerUIDs", func(t *testing.T, s store.Store) {
		const n = 20
		uids := make([]int64, n)
		errs := parallel(n, func(i int) error {
			c, err := s.CreateConsumer(ctx, consumer(fmt.Sprintf("c%d", i), byte(i+1)))
			uids[i] = c.UID
			return err
		})
		seen := map[int64]bool{}
		for i, err := range errs {
			must(t, err)
			if uids[i] < 1 || uids[i] > n || seen[uids[i]] {
				t.Fatalf("uids of concurrent creates: %v", uids)
			}
			seen[uids[i]] = true
		}
	}},
}

var miscTests = []test{
	{"PingAndSchema", func(t *testing.T, s store.Store) {
		must(t, s.Ping(ctx))
		v, err := s.SchemaVersion(ctx)
		must(t, err)
		if v <= 0 {
			t.Fatalf("SchemaVersion = %d", v)
		}
	}},
	{"CancelledContext", func(t *testing.T, s store.Store) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.CreateUser(cctx, user("Alice")); err == nil {
			t.Fatal("CreateUser with a cancelled context succeeded")
		}
		if _, err := s.CreateSession(cctx, store.NewSession{Session: session("s1", 0, "bob", 0)}); err == nil {
			t.Fatal("CreateSession with a cancelled context succeeded")
		}
		if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, gatehouse.ErrNotFound) {
			t.Fatalf("user written despite the cancelled context: %v", err)
		}
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, gatehouse.ErrNotFound) {
			t.Fatalf("session written despite the cancelled context: %v", err)
		}
	}},
	{"OddInput", func(t *testing.T, s store.Store) {
		// Quotes, SQL fragments and non-ASCII are data like any other.
		names := []string{"o'brien", `"; DROP TABLE users; --`, "Ünïcödé", "%_*", `back\slash`}
		for _, name := range names {
			must(t, s.CreateUser(ctx, gatehouse.User{Name: name}))
			u, err := s.GetUser(ctx, name)
			must(t, err)
			if u.Name != name {
				t.Fatalf("GetUser(%q) = %q", name, u.Name)
			}
		}
		if _, err := s.GetUser(ctx, "%"); !errors.Is(err, gatehouse.ErrNotFound) {
			t.Fatalf("a wildcard matched: %v", err)
		}
		if _, err := s.GetUser(ctx, "üNÏCÖDÉ"); err != nil {
			t.Fatalf("non-ASCII names are not matched case-insensitively: %v", err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != len(names) {
			t.Fatalf("CountUsers = %d, %v", n, err)
		}
	}},
}
