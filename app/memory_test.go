package app

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/gatehouse/gatehouse/password"
)

func TestDefaultMemoryLimit(t *testing.T) {
	p := password.DefaultParams()
	for _, tc := range []struct {
		slots int
		want  int64
	}{
		{1, 18<<20 + 19<<20},
		{2, 56 << 20},
		{8, 18<<20 + 8*19<<20},
	} {
		if got := DefaultMemoryLimit(p, tc.slots); got != tc.want {
			t.Errorf("%d slots: %d MiB, want %d MiB", tc.slots, got>>20, tc.want>>20)
		}
	}
}

func TestLimitMemory(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	for _, tc := range []struct {
		env        string // GOMEMLIMIT; "" unset
		startLimit int64  // what the runtime read from it at start
		want       int64
	}{
		{"", math.MaxInt64, DefaultMemoryLimit(password.DefaultParams(), runtime.GOMAXPROCS(0))},
		{"set-empty", math.MaxInt64, DefaultMemoryLimit(password.DefaultParams(), runtime.GOMAXPROCS(0))},
		{"200MiB", 200 << 20, 200 << 20},
		{"off", math.MaxInt64, math.MaxInt64},
	} {
		t.Run("GOMEMLIMIT="+tc.env, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env) // restored at the end
			switch tc.env {
			case "":
				os.Unsetenv("GOMEMLIMIT")
			case "set-empty":
				os.Setenv("GOMEMLIMIT", "")
			}
			debug.SetMemoryLimit(tc.startLimit)
			if got := LimitMemory(); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMemoryLimitFormula(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		reserve, rest, nonHeap, want int64
	}{
		{38 * mib, 3 * mib, 6 * mib, 56 * mib},   // a small heap: BaseMemory
		{38 * mib, 40 * mib, 8 * mib, 166 * mib}, // a large one: three times the rest, plus stacks and metadata
		{38 * mib, -5 * mib, 6 * mib, 56 * mib},  // Held counted memory not yet in the live heap
	} {
		if got := memoryLimit(tc.reserve, tc.rest, tc.nonHeap); got != tc.want {
			t.Errorf("memoryLimit(%d, %d, %d MiB) = %d MiB, want %d", tc.reserve/mib, tc.rest/mib, tc.nonHeap/mib, got/mib, tc.want/mib)
		}
	}
}

// TestGovernMemory: the limit follows the hasher's reserve and the rest of
// the heap: a live heap larger than BaseMemory raises it (no collector
// thrash for a server whose own heap grows), and the hasher updates it
// after each hash. GOMEMLIMIT turns governing off.
func TestGovernMemory(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	t.Setenv("GOMEMLIMIT", "") // restored at the end
	os.Unsetenv("GOMEMLIMIT")

	p := password.Params{Memory: 1 << 10, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := password.NewHasher(p)
	runtime.GC() // the live heap of earlier tests is gone
	stop := GovernMemory(h)
	defer stop()
	base := debug.SetMemoryLimit(-1)
	if min := h.Reserve() + BaseMemory; base < min {
		t.Fatalf("limit %d MiB, want at least the reserve and BaseMemory, %d MiB", base>>20, min>>20)
	}

	// 64 MiB more of live heap, then a hash: the hasher updates the limit
	// after its collection, which counts it.
	ballast := make([]byte, 64<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	grown := debug.SetMemoryLimit(-1)
	if want := h.Reserve() + 3*64<<20; grown < want {
		t.Errorf("limit %d MiB with 64 MiB more live heap, want at least the reserve and three times that, %d MiB", grown>>20, want>>20)
	}
	runtime.KeepAlive(ballast)

	stop()
	debug.SetMemoryLimit(12345 << 20)
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 12345<<20 {
		t.Errorf("limit changed to %d after stop", got)
	}
}

func TestGovernMemorySetsGOGC(t *testing.T) {
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit) })
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	h := password.NewHasher(password.Params{Memory: 1 << 10, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})

	before := debug.SetGCPercent(77)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	stop := GovernMemory(h)
	if got := debug.SetGCPercent(-1); got != GovernedGCPercent {
		t.Errorf("GOGC %d while governing, want %d", got, GovernedGCPercent)
	}
	debug.SetGCPercent(GovernedGCPercent)
	stop()
	if got := debug.SetGCPercent(77); got != 77 {
		t.Errorf("GOGC %d after stop, want the 77 it found", got)
	}

	// GOGC set: left as it is.
	t.Setenv("GOGC", "77")
	stop = GovernMemory(h)
	if got := debug.SetGCPercent(77); got != 77 {
		t.Errorf("GOGC %d while governing under GOGC=77", got)
	}
	stop()
	if got := debug.SetGCPercent(77); got != 77 {
		t.Errorf("GOGC %d after stop under GOGC=77", got)
	}

	// GOMEMLIMIT set: nothing governed, GOGC untouched.
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "200MiB")
	stop = GovernMemory(h)
	if got := debug.SetGCPercent(77); got != 77 {
		t.Errorf("GOGC %d under GOMEMLIMIT", got)
	}
	stop()
}

func TestGovernMemoryRespectsGOMEMLIMIT(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	t.Setenv("GOMEMLIMIT", "200MiB")
	debug.SetMemoryLimit(200 << 20)
	h := password.NewHasher(password.Params{Memory: 1 << 10, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	defer GovernMemory(h)()
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Errorf("limit %d MiB under GOMEMLIMIT=200MiB", got>>20)
	}
}
