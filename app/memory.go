package app

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/password"
)

// BaseMemory is the least share of the soft memory limit that is not the
// password hasher's: the heap of everything else with its headroom,
// goroutine stacks and the runtime's own metadata. The rest of the server
// gets three times its live heap plus those, when that is more (see
// GovernMemory).
const BaseMemory = 18 << 20

// DefaultMemoryLimit is the soft memory limit `gatehouse serve` starts with
// when GOMEMLIMIT is not set: BaseMemory plus one argon2id computation's
// memory (p.Memory KiB) for each of slots hash slots.
func DefaultMemoryLimit(p password.Params, slots int) int64 {
	return BaseMemory + int64(slots)*int64(p.Memory)<<10
}

// LimitMemory sets DefaultMemoryLimit for the default password parameters
// and GOMAXPROCS slots as the process's soft memory limit unless GOMEMLIMIT
// says otherwise, and reports the limit in force.
func LimitMemory() int64 {
	if !limitFromEnv() {
		debug.SetMemoryLimit(DefaultMemoryLimit(password.DefaultParams(), runtime.GOMAXPROCS(0)))
	}
	return debug.SetMemoryLimit(-1)
}

// limitFromEnv reports whether GOMEMLIMIT sets the limit (an empty value,
// like an unset one, leaves it to gatehouse).
func limitFromEnv() bool { return os.Getenv("GOMEMLIMIT") != "" }

// memoryLimit is the limit for a hasher that can hold reserve bytes, a
// rest of the heap with rest bytes live, and nonHeap bytes of stacks and
// runtime metadata.
func memoryLimit(reserve, rest, nonHeap int64) int64 {
	return reserve + max(BaseMemory, 3*max(rest, 0)+max(nonHeap, 0))
}

// GovernedGCPercent is the GOGC GovernMemory sets while it governs, when
// the GOGC variable is not set: the collector's goal is then three times
// the live heap, what the governed limit gives the heap that is not the
// hasher's.
const GovernedGCPercent = 200

// governInterval is how often the limit follows the rest of the heap while
// no password is being hashed (the hasher updates it after each hash).
const governInterval = time.Second

// GovernMemory keeps the process's soft memory limit, unless GOMEMLIMIT
// sets it, at what the server needs: the most memory h's computations can
// hold at once (password.Hasher.Reserve: 38 MiB with the defaults on 2 CPUs)
// plus, for everything else, three times its live heap and its stacks and
// metadata, and never less than BaseMemory. It follows the heap after every
// hash and every governInterval, so a server whose own heap grows (more
// connections, larger caches) gets a limit that grows with it and does not
// spend its CPU collecting against a limit it has outgrown. (Twice the live
// heap, the collector's default goal, cost a busy server with 512
// connections and sign-ins at once about a fifth of its sign-in rate;
// docs/benchmarks.md.)
//
// Why a limit at all: argon2id allocates its memory afresh for every
// computation (golang.org/x/crypto/argon2 takes no buffer of the caller's),
// and when a hash cannot reuse the memory of the last one the runtime maps
// new memory while keeping the old up to the collector's goal, which is
// sized for the whole heap. Under a limit that knows the hasher's share,
// the runtime hands the old memory back as it maps the new. The limit
// counts only the Go runtime's memory; the resident set adds the touched
// pages of the executable (about 24 MiB) and SQLite's page caches.
//
// While it governs, the collector's own goal is set to match (GOGC=200,
// GovernedGCPercent, unless GOGC says otherwise): three times the live
// heap, the share the limit gives the rest. At the default GOGC=100 the
// goal, twice a live heap that holds one slot's argon2id memory, was
// reached as soon as the other slot allocated its own, and that collection
// freed nothing (docs/benchmarks.md).
//
// It returns a func that stops governing (leaving the last limit, and
// giving back the GOGC it found); calling it again does nothing.
func GovernMemory(h *password.Hasher) (stop func()) {
	if limitFromEnv() {
		return func() {}
	}
	restoreGC := func() {}
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(GovernedGCPercent)
		restoreGC = func() { debug.SetGCPercent(old) }
	}
	g := &governor{h: h, samples: make([]metrics.Sample, len(governedMetrics))}
	for i, name := range governedMetrics {
		g.samples[i].Name = name
	}
	g.update()
	h.OnMemory(g.update)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(governInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// While hashes run, the hasher updates the limit after
				// each one, when Held matches the collector's figures.
				if h.Held() == 0 {
					g.update()
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			h.OnMemory(nil)
			close(done)
			wg.Wait()
			restoreGC()
		})
	}
}

var governedMetrics = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

type governor struct {
	h       *password.Hasher
	mu      sync.Mutex
	samples []metrics.Sample
}

func (g *governor) update() {
	g.mu.Lock()
	defer g.mu.Unlock()
	metrics.Read(g.samples)
	v := make([]int64, len(g.samples))
	for i, s := range g.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = int64(s.Value.Uint64())
		}
	}
	// The live heap counts the memory of the computations in progress;
	// the rest of the heap is what remains.
	rest := v[0] - g.h.Held()
	nonHeap := v[1] - v[2] - v[3] - v[4] - v[5]
	debug.SetMemoryLimit(memoryLimit(g.h.Reserve(), rest, nonHeap))
}
