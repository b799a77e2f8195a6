package app

import (
	"os"
	"runtime/debug"
)

// DefaultMemoryLimit is the soft memory limit of `gatehouse serve` when
// GOMEMLIMIT is not set. The password hasher holds 19 MiB per argon2id
// computation, at most GOMAXPROCS at once, and collects each computation's
// memory before its slot is reused (password.NewHasher); the limit bounds
// what the rest of the server lets pile up between collections. A tighter
// limit (64 MiB) made the runtime hand memory back between hashes and fault
// it in again, which cost a fifth of the password-grant rate. The limit is
// soft: a server that needs more still gets it.
const DefaultMemoryLimit = 96 << 20

// LimitMemory sets DefaultMemoryLimit as the process's soft memory limit
// unless GOMEMLIMIT says otherwise, and reports the limit in force.
func LimitMemory() int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
	return debug.SetMemoryLimit(-1)
}
