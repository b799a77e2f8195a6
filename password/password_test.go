package password

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fast parameters keep tests quick; the format and logic are the same.
func fast() Params { return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32} }

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(fast())
	hash, err := h.Hash(ctx, "s3cret: %+=/@$!")
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("Hash: %q %v", hash, err)
	}
	if ok, rehash, err := h.Verify(ctx, hash, "s3cret: %+=/@$!"); !ok || rehash || err != nil {
		t.Fatalf("Verify right password: %v %v %v", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, hash, "wrong"); ok || err != nil {
		t.Fatalf("Verify wrong password: %v %v", ok, err)
	}
	other, _ := h.Hash(ctx, "s3cret: %+=/@$!")
	if other == hash {
		t.Fatal("same salt twice")
	}
	// Parameters changed: still verifies, asks for an upgrade.
	h2 := NewHasher(Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if ok, rehash, _ := h2.Verify(ctx, hash, "s3cret: %+=/@$!"); !ok || !rehash {
		t.Fatalf("old params: ok=%v rehash=%v", ok, rehash)
	}
	if _, err := h.Hash(ctx, ""); err == nil {
		t.Fatal("empty password hashed")
	}
	if _, err := h.Hash(ctx, strings.Repeat("x", MaxLen+1)); err == nil {
		t.Fatal("overlong password hashed")
	}
	if ok, _, _ := h.Verify(ctx, hash, strings.Repeat("x", MaxLen+1)); ok {
		t.Fatal("overlong password verified")
	}
	if ok, _, _ := h.Verify(ctx, "", "anything"); ok {
		t.Fatal("empty hash verified")
	}
}

func TestBcrypt(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(fast())
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if !IsHash(string(b)) {
		t.Fatal("bcrypt hash not recognised")
	}
	if ok, rehash, err := h.Verify(ctx, string(b), "pw"); !ok || !rehash || err != nil {
		t.Fatalf("bcrypt right: %v %v %v", ok, rehash, err)
	}
	if ok, rehash, err := h.Verify(ctx, string(b), "nope"); ok || rehash || err != nil {
		t.Fatalf("bcrypt wrong: %v %v %v", ok, rehash, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5",
	} {
		if _, _, _, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) accepted", s)
		}
	}
	h := NewHasher(fast())
	if _, _, err := h.Verify(context.Background(), "$argon2id$garbage", "pw"); err == nil {
		t.Fatal("garbage hash verified without error")
	}
}

func TestContextCancelled(t *testing.T) {
	h := NewHasher(fast())
	ctx, cancel := context.WithCancel(context.Background())
	// Fill every slot, then a cancelled caller must not wait forever.
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		if _, err := h.turns.acquire(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if _, err := h.Hash(ctx, "pw"); err == nil {
		t.Fatal("Hash did not honour cancellation")
	}
	if _, err := h.Check(ctx, Check{Key: "bob", Password: "pw"}); err == nil {
		t.Fatal("Check did not honour cancellation")
	}
}

// waiting returns how many checks of key wait for their turn.
func (t *turns) waiting(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if q := t.queue[key]; q != nil {
		return q.waiters.Len()
	}
	return 0
}

// waitFor yields until key has n checks waiting.
func waitFor(t *testing.T, tu *turns, key string, n int) {
	t.Helper()
	for tu.waiting(key) != n {
		runtime.Gosched()
	}
}

func TestOneCheckPerKey(t *testing.T) {
	tu := newTurns(2)
	k, err := tu.acquire(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	// A slot is free, but bob has a check running: a second one waits (and
	// so gives up on a context that has ended).
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tu.acquire(done, "bob"); err == nil {
		t.Fatal("a second check of one key ran beside the first")
	}
	// Another key takes the free slot at once.
	if _, err := tu.acquire(done, "carol"); err != nil {
		t.Fatalf("another key waited for a free slot: %v", err)
	}
	// Unkeyed checks never wait for each other while slots are free.
	tu2 := newTurns(2)
	for range 2 {
		if _, err := tu2.acquire(done, ""); err != nil {
			t.Fatalf("unkeyed check waited: %v", err)
		}
	}
	// Once bob's check ends, the next one runs.
	tu.release(k)
	if _, err := tu.acquire(done, "bob"); err != nil {
		t.Fatalf("bob waited after his check ended: %v", err)
	}
	// Both slots are taken now: any key waits.
	if _, err := tu.acquire(done, "dave"); err == nil {
		t.Fatal("dave took a slot although none is free")
	}
}

func TestKeysTakeTurns(t *testing.T) {
	tu := newTurns(1)
	ctx := context.Background()
	first, err := tu.acquire(ctx, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 8)
	var wg sync.WaitGroup
	start := func(key, name string, waiting int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := tu.acquire(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			order <- name
			tu.release(k)
		}()
		waitFor(t, tu, key, waiting)
	}
	// Three more checks of mallory queue up, then one each of alice and bob.
	start("mallory", "mallory2", 1)
	start("mallory", "mallory3", 2)
	start("mallory", "mallory4", 3)
	start("alice", "alice", 1)
	start("bob", "bob", 1)
	tu.release(first)
	wg.Wait()
	close(order)
	var got []string
	for n := range order {
		got = append(got, n)
	}
	// alice and bob came after mallory's queue, yet each waits for at most
	// one of mallory's checks.
	want := []string{"alice", "bob", "mallory2", "mallory3", "mallory4"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestFailuresArePadded(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(fast())
	h.calibrate()
	const floor = 60 * time.Millisecond
	for range len(h.floor.samples) {
		h.floor.add(floor)
	}
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for name, c := range map[string]Check{
		"bcrypt wrong":   {Key: "a", Hash: string(b), Password: "nope"},
		"unknown user":   {Key: "b", Password: "nope"},
		"locked account": {Key: "c", Hash: string(b), Password: "pw", Skip: func() bool { return true }},
		"unreadable":     {Key: "d", Hash: "$argon2id$garbage", Password: "pw"},
	} {
		start := time.Now()
		r, _ := h.Check(ctx, c)
		h.Pad(ctx, r)
		if took := time.Since(start); took < floor || r.OK {
			t.Errorf("%s: answered after %v (ok %t), before the floor of %v", name, took, r.OK, floor)
		}
	}
	// Verify and VerifyDummy pad on their own.
	start := time.Now()
	if ok, _, _ := h.Verify(ctx, string(b), "nope"); ok || time.Since(start) < floor {
		t.Errorf("Verify of a wrong password answered after %v, before the floor", time.Since(start))
	}
	start = time.Now()
	if h.VerifyDummy(ctx, "pw"); time.Since(start) < floor {
		t.Errorf("VerifyDummy answered after %v, before the floor", time.Since(start))
	}
	// A success is not padded: it is right whatever it took.
	if r, err := h.Check(ctx, Check{Key: "a", Hash: string(b), Password: "pw"}); !r.OK || !r.Rehash || err != nil {
		t.Fatalf("bcrypt right: %+v %v", r, err)
	}
}

func TestSkipHashesNothing(t *testing.T) {
	h := NewHasher(fast())
	asked := 0
	// An unreadable hash would be an error if it were read.
	r, err := h.Check(context.Background(), Check{Key: "bob", Hash: "$argon2id$garbage", Password: "pw",
		Skip: func() bool { asked++; return true }})
	if err != nil || r.OK || !r.Skipped || asked != 1 {
		t.Fatalf("skipped check: %+v %v (asked %d)", r, err, asked)
	}
	r, err = h.Check(context.Background(), Check{Key: "bob", Hash: "$argon2id$garbage", Password: "pw",
		Skip: func() bool { return false }})
	if err == nil || r.Skipped {
		t.Fatalf("not skipped: %+v %v", r, err)
	}
}

func TestFloorFollowsArgon2(t *testing.T) {
	h := NewHasher(fast())
	if h.Floor() != 0 {
		t.Fatal("a floor before any measurement")
	}
	h.VerifyDummy(context.Background(), "pw")
	if h.Floor() <= 0 {
		t.Fatal("no floor after the first check")
	}
	// Refusals that computed argon2id move it; others do not.
	for range 31 {
		h.floor.add(time.Hour)
	}
	r, _ := h.Check(context.Background(), Check{Password: "pw"})
	r.start = r.start.Add(-2 * time.Hour) // as if it had taken two hours
	for range 31 {
		h.Pad(context.Background(), r)
	}
	two := h.Floor()
	if two < 2*time.Hour || two > 2*time.Hour+time.Minute {
		t.Fatalf("floor %v after refusals of two hours", two)
	}
	r, _ = h.Check(context.Background(), Check{Password: "pw", Skip: func() bool { return true }})
	r.start = r.start.Add(-3 * time.Hour)
	for range 31 {
		h.Pad(context.Background(), r)
	}
	if h.Floor() != two {
		t.Fatalf("floor %v moved by skipped checks", h.Floor())
	}
}

func TestStoredBcryptCost(t *testing.T) {
	// Costs above the import cap that were imported before it still verify;
	// beyond maxStoredBcryptCost a check is refused without hashing.
	good, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	h := NewHasher(fast())
	if _, _, err := h.Verify(context.Background(), "$2b$15$"+string(good[7:]), "pw"); err == nil {
		t.Fatal("a cost-15 hash was checked")
	}
}

func FuzzDecode(f *testing.F) {
	h := NewHasher(fast())
	good, _ := h.Hash(context.Background(), "pw")
	f.Add(good)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$2a$10$abcdefghijklmnopqrstuv")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := Decode(s)
		if err != nil {
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || len(key) > maxKeyLen || len(salt) < 8 {
			t.Fatalf("accepted out-of-range hash %q: %+v", s, p)
		}
		if re := Encode(p, salt, key); re != s {
			// Decode accepts only the canonical form Encode writes.
			if _, _, _, err := Decode(re); err != nil {
				t.Fatalf("re-encoded hash %q does not decode: %v", re, err)
			}
		}
	})
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams())
	hash, _ := h.Hash(context.Background(), "correct horse")
	b.ResetTimer()
	for b.Loop() {
		h.Verify(context.Background(), hash, "correct horse")
	}
}

func TestIsHash(t *testing.T) {
	good, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(fast())
	argon, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	for s, want := range map[string]bool{
		g:                    true,
		"$2y$" + g[4:]:       true,
		argon:                true,
		"":                   false,
		"plain-password":     false,
		"$2b$99$" + g[7:]:    false, // cost out of range
		"$2b$03$" + g[7:]:    false,
		"$2b$15$" + g[7:]:    false,
		"$2b$14$" + g[7:]:    false, // over MaxBcryptCost
		"$2b$13$" + g[7:]:    false,
		"$2b$12$" + g[7:]:    true,
		"$2b$10x" + g[7:]:    false,
		g[:59] + "!":         false, // not bcrypt's base64
		"$2c$" + g[4:]:       false,
		"$argon2i$v=19$x":    false,
		"$argon2id$v=19$m=1": false,
		"$argon2id$v=19$m=65536,t=3,p=8$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":  true, // RFC 9106's second option
		"$argon2id$v=19$m=65537,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":  false,
		"$argon2id$v=19$m=65536,t=4,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":  false,
		"$argon2id$v=19$m=19456,t=10,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5": true,
		"$argon2id$v=19$m=19456,t=11,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5": false,
		"$argon2id$v=19$m=1024,t=1,p=9$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5":   false,
	} {
		if got := IsHash(s); got != want {
			t.Errorf("IsHash(%q) = %t, want %t", s, got, want)
		}
	}
}

// TestIdleReleasesMemory: once the last check ends, the hasher hands its
// memory back to the system (after idleRelease; here the timer is fired).
func TestIdleReleasesMemory(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	released := make(chan struct{}, 8)
	h.release = func() { released <- struct{}{} }
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	h.idleTimer.Reset(0)
	<-released
	// Busy: a check holds a slot, so the timer does not release.
	k, err := h.turns.acquire(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if h.turns.idleNow() {
		t.Fatal("idle while a check runs")
	}
	h.turns.release(k)
	if !h.turns.idleNow() {
		t.Fatal("not idle after the last check ended")
	}
}

// TestCollectHoldsTheSlot: every computation's memory is collected before
// its slot is handed on, so that the next computation in the slot reuses
// it; a skipped check computes nothing and collects nothing.
func TestCollectHoldsTheSlot(t *testing.T) {
	h := NewHasher(Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	ctx := context.Background()
	hash, err := h.Hash(ctx, "right")
	if err != nil {
		t.Fatal(err)
	}
	h.calibrate()
	var calls int
	h.collect = func() {
		calls++
		h.turns.mu.Lock()
		free := h.turns.free
		h.turns.mu.Unlock()
		if free != h.turns.n-1 {
			t.Errorf("collected with %d of %d slots free, want the check's slot still held", free, h.turns.n)
		}
	}
	for _, c := range []struct {
		name  string
		run   func() error
		calls int
	}{
		{"hash", func() error { _, err := h.Hash(ctx, "pw"); return err }, 1},
		{"right password", func() error {
			r, err := h.Check(ctx, Check{Hash: hash, Password: "right", Key: "a"})
			if err == nil && !r.OK {
				t.Error("right password refused")
			}
			return err
		}, 1},
		{"wrong password", func() error { _, err := h.Check(ctx, Check{Hash: hash, Password: "wrong", Key: "a"}); return err }, 1},
		{"unknown user", func() error { _, err := h.Check(ctx, Check{Password: "pw", Key: "b"}); return err }, 1},
		{"skipped", func() error {
			_, err := h.Check(ctx, Check{Hash: hash, Password: "right", Key: "a", Skip: func() bool { return true }})
			return err
		}, 0},
	} {
		calls = 0
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if calls != c.calls {
			t.Errorf("%s: collected %d times, want %d", c.name, calls, c.calls)
		}
	}
}

// TestHeldAndReserve: Held counts the memory of the computation in
// progress; Reserve is the slots times the largest computation asked for;
// OnMemory is told after each collection and before a computation larger
// than any before.
func TestHeldAndReserve(t *testing.T) {
	p := Params{Memory: 8 << 10, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := NewHasher(p)
	ctx := context.Background()
	slots := int64(runtime.GOMAXPROCS(0))
	if got, want := h.Reserve(), slots*8<<20; got != want {
		t.Fatalf("Reserve %d, want %d", got, want)
	}
	h.calibrate()     // the dummy hash, made on first Check
	var calls []int64 // Reserve at each call
	h.OnMemory(func() { calls = append(calls, h.Reserve()) })

	done := make(chan struct{})
	var seen atomic.Int64
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				if v := h.Held(); v > seen.Load() {
					seen.Store(v)
				}
				runtime.Gosched()
			}
		}
	}()
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	close(done)
	if got := seen.Load(); got != 8<<20 {
		t.Errorf("Held during a hash peaked at %d, want %d", got, 8<<20)
	}
	if h.Held() != 0 {
		t.Errorf("Held %d after the hash", h.Held())
	}
	if len(calls) != 1 {
		t.Fatalf("OnMemory called %d times for one hash, want 1 (after its collection)", len(calls))
	}

	// A stored hash that names more memory raises Reserve before it runs.
	big := p
	big.Memory = 16 << 10
	stored, err := NewHasher(big).Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	calls = nil
	r, err := h.Check(ctx, Check{Hash: stored, Password: "pw"})
	if err != nil || !r.OK || !r.Rehash {
		t.Fatalf("check: %+v, %v", r, err)
	}
	if want := []int64{slots * 16 << 20, slots * 16 << 20}; !slices.Equal(calls, want) {
		t.Errorf("OnMemory saw Reserve %v, want %v (before the larger computation, after its collection)", calls, want)
	}
	h.OnMemory(nil)
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Errorf("OnMemory called after OnMemory(nil)")
	}
}
