package sqlite

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/storetest"
)

var bg = context.Background()

func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(bg, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestConformanceSyncNormal(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.RunTests(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t, Options{Synchronous: "normal"})
		return s
	})
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(bg, filepath.Join(dir, "a.db"), Options{Synchronous: "off"}); err == nil {
		t.Fatal("synchronous=off accepted")
	}
	s, err := Open(bg, filepath.Join(dir, "b.db"), Options{Synchronous: "NORMAL", BusyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode string
	if err := s.queryRow(bg, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q, %v", mode, err)
	}
	// A path with characters that mean something in a URI.
	odd := filepath.Join(dir, "we?ird #name%20.db")
	s2, err := Open(bg, odd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := os.Stat(odd); err != nil {
		t.Fatalf("file not created under its own name: %v", err)
	}
}

func TestSchemaTooNew(t *testing.T) {
	s, path := openTemp(t, Options{})
	if v, err := s.SchemaVersion(bg); err != nil || v != currentVersion {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", currentVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(bg, path, Options{})
	if !errors.Is(err, gatehouse.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	stores := make([]*Store, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(bg, path, Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	if err := stores[0].CreateUser(bg, gatehouse.User{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[5].GetUser(bg, "x"); err != nil {
		t.Fatal(err)
	}
}

// TestTwoHandles writes through one handle and reads, feed included, through
// another on the same file, as the admin CLI and the server do.
func TestTwoHandles(t *testing.T) {
	a, path := openTemp(t, Options{})
	b, err := Open(bg, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rev, err := b.LastRevision(bg)
	if err != nil {
		t.Fatal(err)
	}
	follower := store.NewFollower(b, time.Hour, nil)
	rec := &recorder{}
	follower.Subscribe(rec)
	if err := follower.Start(bg); err != nil {
		t.Fatal(err)
	}

	if err := a.CreateUser(bg, gatehouse.User{Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	c, err := a.CreateConsumer(bg, gatehouse.Consumer{Name: "app", KeyHash: []byte("h")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := a.CreateSession(bg, store.NewSession{Session: gatehouse.Session{ID: "s1", ConsumerUID: c.UID, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour)}, RefreshHash: []byte("r1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetUser(bg, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetConsumerByKeyHash(bg, []byte("h")); err != nil || got.UID != c.UID {
		t.Fatalf("consumer through the other handle: %+v, %v", got, err)
	}
	// A write through b is seen by a.
	if err := b.EndSession(bg, "s1", gatehouse.EndAdmin, now); err != nil {
		t.Fatal(err)
	}
	if x, err := a.GetSession(bg, "s1"); err != nil || x.EndReason != gatehouse.EndAdmin {
		t.Fatalf("session through the first handle: %+v, %v", x, err)
	}
	_, err = a.RefreshSession(bg, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r2"), Now: now, ExpiresAt: now.Add(time.Hour)})
	if !errors.Is(err, gatehouse.ErrSessionEnded) {
		t.Fatalf("refresh of a session ended through the other handle: %v", err)
	}

	follower.Poll(bg)
	want := []string{"user/alice/create", "consumer/1/create", "session/s1/end"}
	if got := rec.get(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("follower on the other handle saw %v, want %v", got, want)
	}
	if follower.Revision() <= rev {
		t.Fatalf("follower revision %d", follower.Revision())
	}
}

type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Changes(cs []gatehouse.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		r.got = append(r.got, fmt.Sprintf("%s/%s/%s", c.Kind, c.Key, c.Op))
	}
}

func (r *recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, "reset")
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestCrossProcessWrites has a child process write to the file while this
// process writes too; both sets of writes must land.
func TestCrossProcessWrites(t *testing.T) {
	if os.Getenv("GATEHOUSE_SQLITE_CHILD") != "" {
		t.Skip("child")
	}
	s, path := openTemp(t, Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildWriter$", "-test.v")
	cmd.Env = append(os.Environ(), "GATEHOUSE_SQLITE_CHILD=writer", "GATEHOUSE_SQLITE_PATH="+path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := s.AppendAudit(bg, gatehouse.AuditEvent{Action: "parent", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	evs, err := s.ListAudit(bg, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range evs {
		n[e.Action]++
	}
	if n["parent"] != 200 || n["child"] != 200 {
		t.Fatalf("events: %v\n%s", n, out.String())
	}
	changes, err := s.Changes(bg, 0, 0)
	if err != nil || len(changes) != 200 {
		t.Fatalf("feed entries written by the child: %d, %v", len(changes), err)
	}
}

func TestChildWriter(t *testing.T) {
	if os.Getenv("GATEHOUSE_SQLITE_CHILD") != "writer" {
		t.Skip("runs as a child of TestCrossProcessWrites")
	}
	s, err := Open(bg, os.Getenv("GATEHOUSE_SQLITE_PATH"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 200 {
		if err := s.AppendAudit(bg, gatehouse.AuditEvent{Action: "child", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateUser(bg, gatehouse.User{Name: fmt.Sprintf("child%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashDurability kills a child process with SIGKILL right after it
// reports its writes acknowledged; they must all be in the file.
func TestCrashDurability(t *testing.T) {
	if os.Getenv("GATEHOUSE_SQLITE_CHILD") != "" {
		t.Skip("child")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "GATEHOUSE_SQLITE_CHILD=crash", "GATEHOUSE_SQLITE_PATH="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints "ok N" after each acknowledged batch of writes; kill it
	// mid-stream, right after an acknowledgement.
	sc := bufio.NewScanner(stdout)
	acked := -1
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "ok %d", &n); err == nil {
			acked = n
			if n >= 20 {
				break
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if acked < 0 {
		t.Fatal("child acknowledged nothing")
	}

	s, err := Open(bg, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i <= acked; i++ {
		if _, err := s.GetUser(bg, fmt.Sprintf("user%d", i)); err != nil {
			t.Fatalf("user %d of %d acknowledged: %v", i, acked, err)
		}
		if _, err := s.GetConsumerByName(bg, fmt.Sprintf("consumer%d", i)); err != nil {
			t.Fatalf("consumer %d of %d acknowledged: %v", i, acked, err)
		}
		if _, err := s.GetSession(bg, fmt.Sprintf("session%d", i)); err != nil {
			t.Fatalf("session %d of %d acknowledged: %v", i, acked, err)
		}
	}
	if err := s.Ping(bg); err != nil {
		t.Fatal(err)
	}
}

func TestCrashChild(t *testing.T) {
	if os.Getenv("GATEHOUSE_SQLITE_CHILD") != "crash" {
		t.Skip("runs as a child of TestCrashDurability")
	}
	s, err := Open(bg, os.Getenv("GATEHOUSE_SQLITE_PATH"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := 0; ; i++ {
		if err := s.CreateUser(bg, gatehouse.User{Name: fmt.Sprintf("user%d", i)}); err != nil {
			t.Fatal(err)
		}
		c, err := s.CreateConsumer(bg, gatehouse.Consumer{Name: fmt.Sprintf("consumer%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateSession(bg, store.NewSession{Session: gatehouse.Session{ID: fmt.Sprintf("session%d", i),
			ConsumerUID: c.UID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, MaxSessions: 20}); err != nil {
			t.Fatal(err)
		}
		// Only now are all three acknowledged.
		fmt.Printf("ok %d\n", i)
	}
}

func TestClosed(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{
		"Ping":       s.Ping(bg),
		"CreateUser": s.CreateUser(bg, gatehouse.User{Name: "x"}),
	}
	_, checks["GetUser"] = s.GetUser(bg, "x")
	_, checks["Changes"] = s.Changes(bg, 0, 10)
	_, checks["CreateSession"] = s.CreateSession(bg, store.NewSession{Session: gatehouse.Session{ID: "s"}})
	for name, err := range checks {
		if !errors.Is(err, gatehouse.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v", name, err)
		}
	}
}

func TestPingFileGone(t *testing.T) {
	s, path := openTemp(t, Options{})
	if err := s.Ping(bg); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	if err := s.Ping(bg); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("Ping after the file was removed: %v", err)
	}
}

// TestCloseWhileWriting closes the store under a stream of writes: every
// call returns (nothing hangs) and every error is ErrUnavailable.
func TestCloseWhileWriting(t *testing.T) {
	s, _ := openTemp(t, Options{Synchronous: "normal"})
	var wg sync.WaitGroup
	var bad atomic.Value
	var written atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := s.AppendAudit(bg, gatehouse.AuditEvent{Action: "x", Detail: fmt.Sprint(g, i)})
				if err != nil {
					if !errors.Is(err, gatehouse.ErrUnavailable) {
						bad.Store(err)
					}
					return
				}
				written.Add(1)
			}
		}()
	}
	// Close once the writes are flowing.
	testtime.Eventually(t, 10*time.Second, func() error {
		if n := written.Load(); n < 100 {
			return fmt.Errorf("%d writes so far", n)
		}
		return nil
	})
	s.Close()
	wg.Wait()
	if err := bad.Load(); err != nil {
		t.Fatal(err)
	}
}

// TestCancelWhileQueued checks that a caller whose context ends while its
// write waits gets its context error, and that the write then did not happen.
func TestCancelWhileQueued(t *testing.T) {
	s, _ := openTemp(t, Options{})
	block := make(chan struct{})
	started := make(chan struct{})
	if err := s.CreateUser(bg, gatehouse.User{Name: "blocker"}); err != nil {
		t.Fatal(err)
	}
	go s.UpdateUser(bg, "blocker", func(*gatehouse.User) error {
		close(started)
		<-block
		return nil
	})
	<-started
	cctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	err := s.CreateUser(cctx, gatehouse.User{Name: "late"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateUser with an expired context: %v", err)
	}
	close(block)
	// Let the writer take the next batch.
	if err := s.CreateUser(bg, gatehouse.User{Name: "after"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(bg, "late"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Fatalf("a withdrawn write happened: %v", err)
	}
}

// TestPanicInFn: a panic in an update function reaches the caller and leaves
// the store working.
func TestPanicInFn(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := s.CreateUser(bg, gatehouse.User{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Fatalf("recovered %v", v)
			}
		}()
		s.UpdateUser(bg, "a", func(u *gatehouse.User) error { u.Admin = true; panic("boom") })
	}()
	u, err := s.GetUser(bg, "a")
	if err != nil || u.Admin {
		t.Fatalf("user after a panicking update: %+v, %v", u, err)
	}
	if err := s.CreateUser(bg, gatehouse.User{Name: "b"}); err != nil {
		t.Fatal(err)
	}
}

// TestFeedAhead: a revision beyond the newest means the file is not the one
// the caller followed (restored from an older copy): that is a gap too.
func TestFeedAhead(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := s.CreateUser(bg, gatehouse.User{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastRevision(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Changes(bg, last+1, 10); !errors.Is(err, gatehouse.ErrFeedGap) {
		t.Fatalf("Changes beyond the newest revision: %v", err)
	}
}

// TestCapCache checks that the writer's cache of principals at their cap
// never decides differently from the file, whoever changes the sessions.
func TestCapCache(t *testing.T) {
	a, path := openTemp(t, Options{})
	b, err := Open(bg, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	create := func(id string, created, life time.Duration, refresh string, max int, want ...string) {
		t.Helper()
		n := store.NewSession{Session: gatehouse.Session{ID: id, Username: "bob", ConsumerUID: 1,
			CreatedAt: at(created), ExpiresAt: at(created + life)}, MaxSessions: max}
		if refresh != "" {
			n.RefreshHash = []byte(refresh)
		}
		ended, err := a.CreateSession(bg, n)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ended, ",") != strings.Join(want, ",") {
			t.Fatalf("creating %s ended %v, want %v", id, ended, want)
		}
	}
	create("s1", 0, time.Hour, "r1", 3)
	create("s2", time.Second, time.Hour, "", 3)
	create("s3", 2*time.Second, time.Hour, "", 3)
	// Another connection ends s2: s4 fits without ending anything.
	if err := b.EndSession(bg, "s2", gatehouse.EndAdmin, at(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	create("s4", 4*time.Second, time.Hour, "", 3)
	// Ended through this handle.
	if err := a.EndSession(bg, "s3", gatehouse.EndAdmin, at(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	create("s5", 6*time.Second, time.Hour, "", 3)
	// A refresh moves s1's expiry past s4's and s5's: at t0+2h only s1 is
	// active, and a cap of 1 ends it.
	if _, err := a.RefreshSession(bg, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r1b"), Now: at(time.Minute),
		ExpiresAt: at(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	create("s6", 2*time.Hour, time.Hour, "", 1, "s1")
	// Uncapped creates still count once a cap applies again.
	create("s7", 2*time.Hour+time.Second, time.Hour, "", 0)
	create("s8", 2*time.Hour+2*time.Second, time.Hour, "", 2, "s6")
	// EndSessions and DeleteConsumer through the other handle.
	if _, err := b.EndSessions(bg, store.SessionFilter{Username: "BOB"}, gatehouse.EndAdmin, at(2*time.Hour+3*time.Second)); err != nil {
		t.Fatal(err)
	}
	create("s9", 2*time.Hour+4*time.Second, time.Hour, "", 1)
}

// TestReplay makes an op fail after it has written: its writes go, the
// other ops of its batch are committed (or, for those that ran a caller's
// function, refused so that the function does not run twice).
func TestReplay(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := s.CreateUser(bg, gatehouse.User{Name: "u", Role: "old"}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	blocked := make(chan struct{})
	go s.write(bg, func(*wtx) error {
		close(blocked)
		<-release
		return nil
	})
	<-blocked
	boom := errors.New("boom")
	results := make([]chan error, 4)
	calls := 0
	ops := []func() error{
		func() error { return s.CreateUser(bg, gatehouse.User{Name: "a"}) },
		func() error {
			_, err := s.UpdateUser(bg, "u", func(u *gatehouse.User) error { calls++; u.Role = "new"; return nil })
			return err
		},
		func() error {
			return s.write(bg, func(tx *wtx) error {
				if _, err := tx.exec("INSERT INTO users (name_key, name, identity, role, allow_odata, admin, deleted, password_hash) " +
					"VALUES ('bad', 'bad', '', '', 0, 0, 0, '')"); err != nil {
					return err
				}
				return boom
			})
		},
		func() error { return s.CreateUser(bg, gatehouse.User{Name: "b"}) },
	}
	for i, op := range ops {
		results[i] = make(chan error, 1)
		go func() { results[i] <- op() }()
		// Queue them in order.
		testtime.Eventually(t, 10*time.Second, func() error {
			if n := len(s.w.ops); n < i+1 {
				return fmt.Errorf("%d writes queued, want %d", n, i+1)
			}
			return nil
		})
	}
	close(release)
	errs := make([]error, len(ops))
	for i := range ops {
		errs[i] = <-results[i]
	}
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("ops around the failing one: %v, %v", errs[0], errs[3])
	}
	if !errors.Is(errs[1], gatehouse.ErrUnavailable) || calls != 1 {
		t.Fatalf("update with a caller's function: %v after %d calls", errs[1], calls)
	}
	if !errors.Is(errs[2], boom) {
		t.Fatalf("failing op: %v", errs[2])
	}
	for name, want := range map[string]bool{"a": true, "b": true, "bad": false} {
		if _, err := s.GetUser(bg, name); (err == nil) != want {
			t.Fatalf("user %s: %v", name, err)
		}
	}
	if u, _ := s.GetUser(bg, "u"); u.Role != "old" {
		t.Fatalf("refused update was written: %+v", u)
	}
	// The feed holds the entries of the committed ops only.
	cs, err := s.Changes(bg, 1, 0)
	if err != nil || len(cs) != 2 || cs[0].Key != "a" || cs[1].Key != "b" {
		t.Fatalf("feed after the replay: %+v, %v", cs, err)
	}
}

// uuid is a random UUID v4, as session ids are.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// BenchmarkCreateSessionParallel issues consumer tokens as the server does:
// one CreateSession with one audit event and a cap of 20, synchronous=full.
func BenchmarkCreateSessionParallel(b *testing.B) {
	s, _ := openTemp(b, Options{})
	c, err := s.CreateConsumer(bg, gatehouse.Consumer{Name: "bench", KeyHash: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	// Many requests in flight, as on a busy server: group commit needs
	// concurrent writers to batch.
	b.SetParallelism(64)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			now := time.Now()
			id := uuid()
			user := fmt.Sprintf("user%d", i%100)
			_, err := s.CreateSession(bg, store.NewSession{
				Session: gatehouse.Session{ID: id, Username: user, ConsumerUID: c.UID, Flow: gatehouse.FlowConsumer,
					Scope: "/api", CreatedAt: now, ExpiresAt: now.Add(time.Hour), RemoteAddr: "192.0.2.1"},
				MaxSessions: 20,
				Audit: []gatehouse.AuditEvent{{At: now, Actor: "consumer:1", Action: "token.issue", Target: "session:" + id,
					Outcome: gatehouse.OutcomeSuccess, Remote: "192.0.2.1", Detail: "consumer username=" + user}},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := s.w.batches.Load(); n > 0 {
		b.ReportMetric(float64(s.w.batched.Load())/float64(n), "ops/commit")
	}
	// Process CPU per op (all goroutines): unlike ns/op, it hardly moves when
	// other processes compete for the machine.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
