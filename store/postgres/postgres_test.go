package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
	"github.com/gatehouse/gatehouse/store/sqlite"
	"github.com/gatehouse/gatehouse/store/storetest"
)

var bg = context.Background()

func open(t testing.TB, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(bg, dsn, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	pgtest.BaseDSN(t)
	storetest.RunTests(t, func(t *testing.T) store.Store {
		dsn, _ := pgtest.Schema(t)
		return open(t, dsn, postgres.Options{})
	})
}

// TestSchemaOption: Options.Schema creates the schema and keeps the store in it.
func TestSchemaOption(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	sub := schema + "_sub"
	t.Cleanup(func() { pgtest.Exec(t, dsn, "DROP SCHEMA IF EXISTS "+pgx.Identifier{sub}.Sanitize()+" CASCADE") })
	s := open(t, dsn, postgres.Options{Schema: sub})
	if err := s.CreateUser(bg, gatehouse.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	other := open(t, dsn, postgres.Options{})
	if _, err := other.GetUser(bg, "alice"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Fatalf("the user is visible outside the store's schema: %v", err)
	}
}

func TestSchemaTooNew(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, postgres.Options{})
	v, err := s.SchemaVersion(bg)
	if err != nil || v != postgres.CurrentVersion() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, postgres.CurrentVersion())
	}
	if from, to := s.Migrated(); from != 0 || to != v {
		t.Fatalf("Migrated() = %d, %d", from, to)
	}
	again := open(t, dsn, postgres.Options{})
	if from, _ := again.Migrated(); from != v {
		t.Fatalf("second open migrated from %d", from)
	}
	pgtest.Exec(t, dsn, fmt.Sprintf("UPDATE gatehouse_schema SET version = %d", v+1))
	_, err = postgres.Open(bg, dsn, postgres.Options{})
	if !errors.Is(err, gatehouse.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestConcurrentOpen: replicas starting at once on an empty schema migrate it once.
func TestConcurrentOpen(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	froms := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(bg, dsn, postgres.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			froms[i], _ = s.Migrated()
			s.Close()
		}()
	}
	wg.Wait()
	migrated := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if froms[i] == 0 {
			migrated++
		}
	}
	if migrated != 1 {
		t.Fatalf("%d of %d concurrent opens found an empty schema (migrations: %v)", migrated, n, froms)
	}
}

// TestFeedCommitOrder: a change whose transaction commits after a later one
// has been read is still delivered, after it, to a follower that has read
// past the other.
func TestFeedCommitOrder(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, postgres.Options{})
	conn, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	// A slow writer: its change row is inserted first (and would have the
	// lower number from a sequence), but commits last.
	slow, err := conn.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Exec(bg, "INSERT INTO changes (kind, key, op) VALUES ('user', 'slow', 'create')"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(bg, gatehouse.User{Name: "fast"}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Changes(bg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Key != "fast" {
		t.Fatalf("changes before the slow commit: %+v", first)
	}
	if err := slow.Commit(bg); err != nil {
		t.Fatal(err)
	}
	next, err := s.Changes(bg, first[0].Rev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next[0].Key != "slow" || next[0].Rev <= first[0].Rev {
		t.Fatalf("changes after the slow commit, from rev %d: %+v", first[0].Rev, next)
	}
}

// TestFeedConcurrentWriters: many writers on two stores, a follower
// reading all along: it sees every change exactly once, in growing order.
func TestFeedConcurrentWriters(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a, b := open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})
	const writers, each = 8, 40
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	seen := map[string]int{}
	readErr := make(chan error, 1)
	var after int64
	read := func() error {
		cs, err := a.Changes(bg, after, 50)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Rev <= after {
				return fmt.Errorf("revision %d after %d", c.Rev, after)
			}
			after = c.Rev
			seen[c.Key]++
		}
		return nil
	}
	go func() {
		for ctx.Err() == nil {
			if err := read(); err != nil {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if w%2 == 1 {
				st = b
			}
			for i := range each {
				// Users: a session's creation has no feed entry.
				if err := st.CreateUser(bg, gatehouse.User{Name: fmt.Sprintf("w%d-%d", w, i), Identity: gatehouse.IdentitySQL}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	for read(); ; {
		n := len(seen)
		if err := read(); err != nil {
			t.Fatal(err)
		}
		if len(seen) == n {
			break
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("the follower saw %d distinct changes, want %d", len(seen), writers*each)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("change %s seen %d times", k, n)
		}
	}
}

// TestCapAcrossStores: two stores (replicas) creating sessions for one
// principal at once never leave more than the cap active.
func TestCapAcrossStores(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	stores := []*postgres.Store{open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})}
	const n, max = 40, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	ended := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			x := gatehouse.Session{ID: fmt.Sprintf("s%02d", i), Username: "Bob", ConsumerUID: 7, Flow: gatehouse.FlowConsumer,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			got, err := stores[i%2].CreateSession(bg, store.NewSession{Session: x, MaxSessions: max})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			ended += len(got)
			mu.Unlock()
		}()
	}
	wg.Wait()
	active, err := stores[0].ListSessions(bg, store.SessionFilter{ConsumerUID: 7, Username: "bob", ActiveAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != max || ended != n-max {
		t.Fatalf("%d active sessions (cap %d), %d ended, after %d creates on two stores", len(active), max, ended, n)
	}
}

// TestRotateAcrossStores: of rotations on two stores at once, one wins.
func TestRotateAcrossStores(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a, b := open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})
	now := time.Now()
	key := func(kid string) gatehouse.SigningKey {
		return gatehouse.SigningKey{KID: kid, Algorithm: "HS256", Private: []byte(kid), CreatedAt: now}
	}
	// InitKeys racing on both stores: one pair is stored.
	var wg sync.WaitGroup
	initErrs := make([]error, 4)
	for i := range initErrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []*postgres.Store{a, b}[i%2]
			initErrs[i] = st.InitKeys(bg, key(fmt.Sprintf("a%d", i)), key(fmt.Sprintf("n%d", i)))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range initErrs {
		if err == nil {
			wins++
		} else if !errors.Is(err, gatehouse.ErrConflict) {
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent InitKeys won: %v", wins, initErrs)
	}
	for round := range 5 {
		ks, err := a.ListKeys(bg)
		if err != nil {
			t.Fatal(err)
		}
		active := ""
		for _, k := range ks {
			if k.State == gatehouse.KeyActive {
				active = k.KID
			}
		}
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := []*postgres.Store{a, b}[i%2]
				errs[i] = st.RotateKeys(bg, active, key(fmt.Sprintf("r%d-%d", round, i)), now, now.Add(time.Hour))
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, gatehouse.ErrConflict) {
				t.Fatal(err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d of 4 rotations on two stores won: %v", round, wins, errs)
		}
	}
}

// TestUnavailable: a database that cannot be reached gives ErrUnavailable,
// and the store recovers by itself when it is back.
func TestUnavailable(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	proxy := pgtest.NewProxy(t, dsn)
	s := open(t, pgtest.ViaProxy(t, dsn, proxy.Addr()), postgres.Options{QueryTimeout: 2 * time.Second, ConnectTimeout: time.Second})
	if err := s.CreateUser(bg, gatehouse.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	checks := map[string]func() error{
		"Ping":         func() error { return s.Ping(bg) },
		"GetUser":      func() error { _, err := s.GetUser(bg, "alice"); return err },
		"Changes":      func() error { _, err := s.Changes(bg, 0, 10); return err },
		"CreateUser":   func() error { return s.CreateUser(bg, gatehouse.User{Name: "bob"}) },
		"CountFailure": func() error { _, err := s.CountAuthFailures(bg, "alice", time.Now(), time.Minute); return err },
		"CreateSession": func() error {
			_, err := s.CreateSession(bg, store.NewSession{Session: gatehouse.Session{ID: "x", CreatedAt: time.Now(),
				ExpiresAt: time.Now().Add(time.Hour)}, MaxSessions: 3})
			return err
		},
	}
	for name, fn := range checks {
		start := time.Now()
		if err := fn(); !errors.Is(err, gatehouse.ErrUnavailable) {
			t.Fatalf("%s with the database cut: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s took %v to fail", name, d)
		}
	}
	proxy.Restore()
	testtime.Eventually(t, 10*time.Second, func() error {
		_, err := s.GetUser(bg, "alice")
		if err != nil {
			return fmt.Errorf("the store did not recover: %w", err)
		}
		return nil
	})

	// A server that is not there at all.
	_, err := postgres.Open(bg, pgtest.ViaProxy(t, dsn, "127.0.0.1:1"), postgres.Options{ConnectTimeout: time.Second})
	if !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ErrUnavailable", err)
	}
}

// TestErrorsHideThePassword: a DSN's password never appears in an error.
func TestErrorsHideThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://gh:s3cret-pw@127.0.0.1:1/test?connect_timeout=1",
		"postgres://gh:s3cret-pw@127.0.0.1:1/test?sslmode=bogus",
		"host=127.0.0.1 port=1 user=gh password=s3cret-pw connect_timeout=1",
	} {
		_, err := postgres.Open(bg, dsn, postgres.Options{ConnectTimeout: time.Second})
		if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("Open(%q) error shows the password: %v", strings.ReplaceAll(dsn, "s3cret-pw", "***"), err)
		}
	}
}

// TestCopyFromSQLite: a SQLite store copied into PostgreSQL holds the same
// users, roles, catalog, consumers (uids and key hashes), active sessions with
// their refresh tokens, keys and audit; a non-empty target is refused.
func TestCopyFromSQLite(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	src, err := sqlite.Open(bg, filepath.Join(t.TempDir(), "gatehouse.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(src.CreateRole(bg, gatehouse.Role{Name: "Sales", AllowAllViews: true,
		Entries: []gatehouse.RoleEntry{{Object: "Orders", Kind: gatehouse.KindTable, Allow: true}}}))
	must(src.CreateUser(bg, gatehouse.User{Name: "Alice", Identity: gatehouse.IdentitySQL, Role: "Sales", PasswordHash: "$argon2id$x", CreatedAt: now}))
	must(src.ImportCatalog(bg, []gatehouse.CatalogEntry{{Name: "Orders", Kind: gatehouse.KindTable}}))
	for i, name := range []string{"a", "b", "c"} {
		_, err := src.CreateConsumer(bg, gatehouse.Consumer{Name: name, Type: gatehouse.ConsumerService, Scope: "/api",
			KeyHash: []byte{byte(i + 1), 2, 3}, CreatedAt: now})
		must(err)
	}
	must(src.DeleteConsumer(bg, 3)) // uids 1 and 2 remain; 3 was handed out
	must(src.InitKeys(bg, gatehouse.SigningKey{KID: "k1", Algorithm: "HS256", Private: []byte("sealed1"), CreatedAt: now},
		gatehouse.SigningKey{KID: "k2", Algorithm: "HS256", Private: []byte("sealed2"), CreatedAt: now}))
	must(src.RotateKeys(bg, "k1", gatehouse.SigningKey{KID: "k3", Algorithm: "HS256", Private: []byte("sealed3"), CreatedAt: now},
		now, now.Add(time.Hour)))
	live := gatehouse.Session{ID: "live", Username: "alice", Flow: gatehouse.FlowUser, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	_, err = src.CreateSession(bg, store.NewSession{Session: live, RefreshHash: []byte("r1")})
	must(err)
	_, err = src.RefreshSession(bg, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r2"), Now: now, ExpiresAt: now.Add(time.Hour)})
	must(err)
	gone := gatehouse.Session{ID: "gone", Username: "alice", Flow: gatehouse.FlowUser, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	_, err = src.CreateSession(bg, store.NewSession{Session: gone})
	must(err)
	must(src.AppendAudit(bg, gatehouse.AuditEvent{At: now, Actor: "cli:x", Action: "user.add", Target: "user:alice", Outcome: "success"}))

	dst := open(t, dsn, postgres.Options{})
	rep, err := store.Copy(bg, dst, src, now)
	must(err)
	want := store.CopyReport{Users: 1, Roles: 1, Catalog: 1, Consumers: 2, Sessions: 1, RefreshTokens: 2, Keys: 3, Audit: 1}
	if rep != want {
		t.Fatalf("copy report %+v, want %+v", rep, want)
	}
	u, err := dst.GetUser(bg, "alice")
	must(err)
	if u.Role != "Sales" || u.PasswordHash != "$argon2id$x" {
		t.Fatalf("copied user %+v", u)
	}
	c, err := dst.GetConsumerByKeyHash(bg, []byte{2, 2, 3})
	must(err)
	if c.UID != 2 || c.Name != "b" {
		t.Fatalf("copied consumer %+v", c)
	}
	// The uid counter moved past every uid the source handed out.
	c4, err := dst.CreateConsumer(bg, gatehouse.Consumer{Name: "d", Type: gatehouse.ConsumerService, Scope: "/api"})
	must(err)
	if c4.UID != 4 {
		t.Fatalf("uid after the copy = %d, want 4", c4.UID)
	}
	x, spent, err := dst.FindRefreshToken(bg, []byte("r1"))
	must(err)
	if x.ID != "live" || !spent {
		t.Fatalf("copied spent refresh token: %+v %v", x, spent)
	}
	// When r1 was spent is copied too: within a reuse grace, its retry is one still.
	if res, err := dst.RefreshSession(bg, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r2"), Now: now.Add(time.Second),
		ExpiresAt: now.Add(time.Hour), Grace: time.Minute}); err != nil || !res.Retry || !res.At.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("retry after the copy: %+v, %v", res, err)
	}
	if _, err := dst.RefreshSession(bg, store.Refresh{OldHash: []byte("r2"), NewHash: []byte("r3"), Now: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatalf("refresh with the copied live token: %v", err)
	}
	if _, err := dst.GetSession(bg, "gone"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Fatalf("expired session copied: %v", err)
	}
	ks, err := dst.ListKeys(bg)
	must(err)
	if len(ks) != 3 || ks[0].State != gatehouse.KeyRetired || string(ks[0].Private) != "sealed1" {
		t.Fatalf("copied keys %+v", ks)
	}
	evs, err := dst.ListAudit(bg, store.AuditFilter{})
	must(err)
	if len(evs) != 1 || evs[0].Action != "user.add" {
		t.Fatalf("copied audit %+v", evs)
	}

	_, err = store.Copy(bg, dst, src, now)
	if !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty store: %v", err)
	}
}

// BenchmarkCreateSessionParallel measures consumer-token session writes:
// one session with a cap of 20 and an audit event per token, from parallel
// goroutines (as concurrent token requests: 8 per GOMAXPROCS) with the
// default pool. Sessions of one principal take turns on its lock; those of
// many principals commit side by side.
func BenchmarkCreateSessionParallel(b *testing.B) {
	for _, principals := range []int{1, 64} {
		b.Run(fmt.Sprintf("principals=%d", principals), func(b *testing.B) {
			dsn, _ := pgtest.Schema(b)
			s := open(b, dsn, postgres.Options{})
			var mu sync.Mutex
			seq := 0
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				seq++
				g := seq
				mu.Unlock()
				i := 0
				for pb.Next() {
					i++
					now := time.Now()
					id := fmt.Sprintf("g%d-%d", g, i)
					x := gatehouse.Session{ID: id, ConsumerUID: int64((g*7919+i)%principals + 1), Flow: gatehouse.FlowConsumer,
						Scope: "/api", CreatedAt: now, ExpiresAt: now.Add(time.Hour), RemoteAddr: "127.0.0.1"}
					if _, err := s.CreateSession(bg, store.NewSession{Session: x, MaxSessions: 20,
						Audit: []gatehouse.AuditEvent{{At: now, Actor: "consumer:1", Action: "token.issue", Target: "session:" + id, Outcome: "success"}}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
