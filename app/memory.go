package app

import (
	"os"
	"runtime/debug"
)

// DefaultMemoryLimit is the soft memory limit of `gatehouse serve` when
// GOMEMLIMIT is not set: room for the two argon2id computations that run at
// once on two cores (19 MiB each) and everything else the server holds,
// without letting the garbage of earlier hashes double the heap. Go's
// collector works harder near the limit; it is soft, so a server that needs
// more still gets it.
const DefaultMemoryLimit = 64 << 20

// LimitMemory sets DefaultMemoryLimit as the process's soft memory limit
// unless GOMEMLIMIT says otherwise, and reports the limit in force.
func LimitMemory() int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	return debug.SetMemoryLimit(-1)
}
