// Package password hashes and verifies user passwords: argon2id in PHC
// string format for new hashes, bcrypt accepted for imported users (and
// flagged for upgrade). Hashing is memory-hard on purpose, so the number of
// hashes computed at once is bounded.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams follow the OWASP recommendation for argon2id
// (19 MiB, 2 iterations, 1 lane).
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// MaxLen bounds the password length: longer inputs are refused before any
// hashing work is done.
const MaxLen = 1024

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	p     Params
	slots chan struct{}

	dummyOnce sync.Once
	dummy     string
}

// NewHasher returns a hasher that creates hashes with p and runs at most
// GOMAXPROCS hash computations at once (each holds p.Memory KiB). argon2id
// is memory-bound: more at once than there are CPUs only makes each slower
// (measured: 74 hashes/s with 2 at once on 2 CPUs, 64/s with 4).
func NewHasher(p Params) *Hasher {
	return &Hasher{p: p, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// ErrTooLong is returned for passwords over MaxLen bytes.
var ErrTooLong = fmt.Errorf("password is longer than %d bytes", MaxLen)

// ErrEmpty is returned when hashing an empty password.
var ErrEmpty = errors.New("password is empty")

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC-format argon2id hash of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if pw == "" {
		return "", ErrEmpty
	}
	if len(pw) > MaxLen {
		return "", ErrTooLong
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash([]byte(pw)), nil
}

func (h *Hasher) hash(pw []byte) string {
	salt := make([]byte, h.p.SaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey(pw, salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return Encode(h.p, salt, key)
}

// Encode writes argon2id parameters, salt and key in PHC string format.
func Encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify reports whether pw matches hash. rehash is true when the hash
// should be replaced by a new one with the current parameters (bcrypt, or
// older argon2id parameters). An unreadable hash is an error.
func (h *Hasher) Verify(ctx context.Context, hash, pw string) (ok, rehash bool, err error) {
	if len(pw) > MaxLen {
		// Do the work of a real check anyway, so length does not show in timing.
		h.VerifyDummy(ctx, "")
		return false, false, nil
	}
	if hash == "" {
		// A user without a password cannot sign in; spend the same time.
		h.VerifyDummy(ctx, pw)
		return false, false, nil
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := Decode(hash)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
		ok := subtle.ConstantTimeCompare(got, key) == 1
		return ok, ok && (p.Memory != h.p.Memory || p.Time != h.p.Time || p.Threads != h.p.Threads || uint32(len(key)) != h.p.KeyLen), nil
	case isBcrypt(hash):
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost > MaxBcryptCost {
			// Refused without hashing: a cost-31 hash would hold a slot for a day.
			return false, false, fmt.Errorf("bcrypt hash cost is over %d", MaxBcryptCost)
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
		switch {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			return false, false, fmt.Errorf("bcrypt hash: %w", err)
		}
	}
	return false, false, errors.New("unknown password hash format (want argon2id PHC or bcrypt)")
}

// VerifyDummy spends the time of a real verification against a hash that
// matches nothing, for unknown users.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) {
	if err := h.acquire(ctx); err != nil {
		return
	}
	defer h.release()
	// A hash of a random password with the current parameters, so that
	// checking an unknown user costs the same as checking a real one. Made
	// on first use: a server that never sees an unknown user never spends
	// the memory.
	h.dummyOnce.Do(func() { h.dummy = h.hash([]byte(rand.Text())) })
	p, salt, key, err := Decode(h.dummy)
	if err != nil {
		return
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	subtle.ConstantTimeCompare(got, key)
}

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

// MaxBcryptCost bounds the cost of a bcrypt hash this package verifies:
// each step doubles the work, and cost 14 already takes about a second.
const MaxBcryptCost = 14

// IsHash reports whether s is a hash this package can verify (for
// importing users with existing hashes): a bcrypt hash of cost 4 to
// MaxBcryptCost whose salt and digest are bcrypt's base64, or an argon2id
// PHC string within this package's limits.
func IsHash(s string) bool {
	if isBcrypt(s) {
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil || cost < bcrypt.MinCost || cost > MaxBcryptCost || s[6] != '$' {
			return false
		}
		for _, c := range s[7:] {
			if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return false
			}
		}
		return true
	}
	_, _, _, err := Decode(s)
	return err == nil
}

// Limits on decoded parameters, so a hostile stored hash cannot make a
// check allocate gigabytes or run for minutes.
const (
	maxMemory = 1 << 20 // KiB (1 GiB)
	maxTime   = 64
	maxKeyLen = 128
)

// Decode parses a PHC-format argon2id hash.
func Decode(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("not an argon2id PHC hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("argon2id version %q not supported", parts[2])
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return p, nil, nil, fmt.Errorf("argon2id parameter %q malformed", kv)
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("argon2id parameter %q malformed", kv)
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, fmt.Errorf("argon2id parallelism %d too large", n)
			}
			p.Threads = uint8(n)
		default:
			return p, nil, nil, fmt.Errorf("argon2id parameter %q unknown", k)
		}
	}
	if !seen["m"] || !seen["t"] || !seen["p"] {
		return p, nil, nil, errors.New("argon2id parameters m, t and p are required")
	}
	if p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		return p, nil, nil, fmt.Errorf("argon2id parameters m=%d,t=%d,p=%d out of range", p.Memory, p.Time, p.Threads)
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errors.New("argon2id salt malformed")
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, errors.New("argon2id key malformed")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
