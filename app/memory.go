package app

import (
	"math"
	"os"
	"runtime/debug"
)

// DefaultMemoryLimit is the soft memory limit of `gatehouse serve` when
// GOMEMLIMIT is not set. The password hasher holds 19 MiB per argon2id
// computation, at most GOMAXPROCS at once, and each computation allocates
// its memory afresh: without a limit the collector lets the garbage of
// earlier hashes double the heap. A tighter limit (64 or 80 MiB) makes the
// runtime hand memory back between hashes and fault it in again, which
// cost the password grant a seventh of its rate on a 2-core machine
// (docs/benchmarks.md). The limit is soft: a server that needs more still
// gets it.
const DefaultMemoryLimit = 96 << 20

// LimitMemory sets DefaultMemoryLimit as the process's soft memory limit
// unless GOMEMLIMIT says otherwise, and reports the limit in force.
//
// With a limit in force and GOGC not set, the collector runs only as the
// heap nears the limit (GOGC=off), not each time the heap doubles: a
// token costs less collection, and the memory of finished hashes stays
// mapped for the next ones instead of being handed back and faulted in
// again. The process then holds up to the limit under load; when no
// password has been checked for two seconds the hasher hands the memory
// back (see password.NewHasher). GOGC=100 restores the usual pacing.
func LimitMemory() int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	limit := debug.SetMemoryLimit(-1)
	if _, set := os.LookupEnv("GOGC"); !set && limit < math.MaxInt64 {
		debug.SetGCPercent(-1)
	}
	return limit
}
