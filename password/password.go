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
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"go.opentelemetry.io/otel/trace"
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
//
// Checks take turns (see [Check]): at most GOMAXPROCS hash computations run
// at once, at most one per user name, and user names are served in turn, so
// that a flood of checks for one name does not delay the others. A
// refusal, padded (Pad), is answered no sooner than the refusal of a check
// that computed argon2id with the hasher's parameters, measured as they
// happen, so that its time does not tell an unknown user, a cheap imported
// hash, a locked account and a wrong password apart.
type Hasher struct {
	p     Params
	turns *turns
	floor floor

	dummyOnce sync.Once
	dummy     string

	// The memory of finished hashes goes back to the system once the
	// hasher has been idle for idleRelease (see NewHasher).
	idleTimer *time.Timer
	release   func()
	// collect reclaims a finished computation's memory while its slot is
	// still held (see NewHasher).
	collect func()

	slots   int
	held    atomic.Int64 // bytes of argon2id memory of the computations in progress
	largest atomic.Int64 // bytes of the largest computation asked for, at least p's
	// onMemory is called after each collection and release, and before a
	// computation larger than any before (see OnMemory).
	onMemory atomic.Pointer[func()]
}

// idleRelease is how long the hasher waits, idle, before handing the memory
// of its last hashes back to the system: long enough that a steady stream of
// sign-ins reuses it, short enough that a burst (or the demo user of --dev)
// does not keep p.Memory per slot resident for good.
const idleRelease = 2 * time.Second

// NewHasher returns a hasher that creates hashes with p and runs at most
// GOMAXPROCS hash computations at once (each holds p.Memory KiB). argon2id
// is memory-bound: more at once than there are CPUs only makes each slower
// (measured: 74 hashes/s with 2 at once on 2 CPUs, 64/s with 4).
//
// Each computation allocates p.Memory KiB afresh (golang.org/x/crypto/argon2
// takes no buffer of the caller's). A slot collects that garbage before it
// is handed on (runtime.GC), so the next computation reuses the same memory:
// the process holds one computation's memory per slot, where the
// collector's own pacing let two or three per slot pile up, and under the
// soft memory limit handed pages back only to fault them in again. When no
// check has run for two seconds the hasher returns the memory to the system
// (debug.FreeOSMemory), so that an idle server holds none of it.
func NewHasher(p Params) *Hasher {
	n := runtime.GOMAXPROCS(0)
	h := &Hasher{p: p, slots: n, turns: newTurns(n), release: debug.FreeOSMemory, collect: runtime.GC}
	h.largest.Store(int64(p.Memory) << 10)
	h.idleTimer = time.AfterFunc(time.Hour, func() {
		if h.turns.idleNow() {
			h.release()
			h.memoryChanged()
		}
	})
	h.idleTimer.Stop()
	h.turns.idle = func() { h.idleTimer.Reset(idleRelease) }
	return h
}

// Held is the memory, in bytes, that the argon2id computations in progress
// hold.
func (h *Hasher) Held() int64 { return h.held.Load() }

// Reserve is the most memory, in bytes, the hasher's computations can hold
// at once: its slots times the largest computation it has been asked for
// (its own parameters' at least; a stored hash may name more memory).
func (h *Hasher) Reserve() int64 { return int64(h.slots) * h.largest.Load() }

// OnMemory has f called after each collection the hasher runs and after it
// hands memory back, when Held has just changed and the collector's figures
// are fresh, and before a computation larger than any before, when Reserve
// has just grown. f runs on the goroutine of the check (or of the idle
// timer), from several at once when checks end together, so it must be
// quick and safe for concurrent use. nil stops the calls.
func (h *Hasher) OnMemory(f func()) {
	if f == nil {
		h.onMemory.Store(nil)
		return
	}
	h.onMemory.Store(&f)
}

func (h *Hasher) memoryChanged() {
	if f := h.onMemory.Load(); f != nil {
		(*f)()
	}
}

// idKey computes argon2id, counting its memory in Held while it runs.
func (h *Hasher) idKey(pw, salt []byte, p Params, keyLen uint32) []byte {
	m := int64(p.Memory) << 10
	for {
		l := h.largest.Load()
		if m <= l {
			break
		}
		if h.largest.CompareAndSwap(l, m) {
			h.memoryChanged()
			break
		}
	}
	h.held.Add(m)
	defer h.held.Add(-m)
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, keyLen)
}

// ErrTooLong is returned for passwords over MaxLen bytes.
var ErrTooLong = fmt.Errorf("password is longer than %d bytes", MaxLen)

// ErrEmpty is returned when hashing an empty password.
var ErrEmpty = errors.New("password is empty")

// Hash returns the PHC-format argon2id hash of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if pw == "" {
		return "", ErrEmpty
	}
	if len(pw) > MaxLen {
		return "", ErrTooLong
	}
	t, err := h.turns.acquire(ctx, "")
	if err != nil {
		return "", err
	}
	defer h.turns.release(t)
	s := h.hash([]byte(pw))
	h.collect() // before the slot is released (deferred above)
	h.memoryChanged()
	return s, nil
}

func (h *Hasher) hash(pw []byte) string {
	salt := make([]byte, h.p.SaltLen)
	_, _ = rand.Read(salt)
	key := h.idKey(pw, salt, h.p, h.p.KeyLen)
	return Encode(h.p, salt, key)
}

// Encode writes argon2id parameters, salt and key in PHC string format.
func Encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Check is one password check.
type Check struct {
	// Key is what the check queues under: at most one check per key runs
	// at a time, and keys take turns. Use the lower-cased user name; ""
	// queues the check on its own.
	Key string
	// Hash is the stored hash; "" checks against a dummy hash that matches
	// nothing (an unknown user, or a user without a password).
	Hash     string
	Password string
	// Skip, when set, is asked once the check's turn has come; when it
	// says true no hash is computed (a locked account) and the check fails,
	// in the time a failed check takes.
	Skip func() bool
}

// Result is the outcome of a Check.
type Result struct {
	OK bool
	// Rehash: the password is right and the hash should be replaced by a
	// new one with the current parameters (bcrypt, or other argon2id
	// parameters).
	Rehash bool
	// Skipped: Skip said so, and nothing was hashed.
	Skipped bool

	start   time.Time // when the check's turn came
	measure bool      // it computed argon2id with the hasher's parameters
}

// Check runs c when its turn comes. A refusal (wrong password, dummy hash,
// skipped, unreadable hash, or a right password the caller refuses all the
// same) is to be answered after Pad, so that every refusal takes as long as
// one that computed argon2id.
// An unreadable hash is an error; so is ctx ending while the check waits.
func (h *Hasher) Check(ctx context.Context, c Check) (Result, error) {
	h.calibrate()
	// The span covers the wait for a turn and the hash.
	if trace.SpanFromContext(ctx).IsRecording() {
		var span trace.Span
		ctx, span = tracer.Start(ctx, "password.check")
		defer span.End()
	}
	t, err := h.turns.acquire(ctx, c.Key)
	if err != nil {
		return Result{}, err
	}
	r := Result{start: time.Now(), measure: true}
	switch {
	case c.Skip != nil && c.Skip():
		r.Skipped, r.measure = true, false
	case len(c.Password) > MaxLen:
		// Do the work of a real check anyway, so length does not show in timing.
		h.verifyDummy("")
	case c.Hash == "":
		h.verifyDummy(c.Password)
	default:
		r.OK, r.Rehash, r.measure, err = h.verify(c.Hash, c.Password)
	}
	if !r.Skipped {
		// Every computation, success or refusal, so that it costs them
		// the same time.
		h.collect()
		h.memoryChanged()
	}
	h.turns.release(t)
	return r, err
}

// Pad waits until the floor (see Floor) has passed since r's turn came, or
// ctx ends. Call it for a refusal, when the answer is ready to be sent,
// after whatever the caller does for a refusal (counting it, auditing it):
// a refusal whose check computed argon2id with the hasher's parameters is
// measured there, from its turn on, so the floor covers that work too, and
// whatever else its memory-hard hashing costs the process (a garbage
// collection) meanwhile. A success needs no padding: it tells the caller
// nothing the caller does not know.
func (h *Hasher) Pad(ctx context.Context, r Result) {
	if r.start.IsZero() {
		return
	}
	if r.measure {
		h.floor.add(time.Since(r.start))
	}
	d := h.floor.get() - time.Since(r.start)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Verify reports whether pw matches hash (a Check of its own, padded when
// it fails). rehash is true when the hash should be replaced by a new one
// with the current parameters (bcrypt, or older argon2id parameters). An
// unreadable hash is an error.
func (h *Hasher) Verify(ctx context.Context, hash, pw string) (ok, rehash bool, err error) {
	if hash == "" {
		// A user without a password cannot sign in; spend the same time.
		h.VerifyDummy(ctx, pw)
		return false, false, nil
	}
	r, err := h.Check(ctx, Check{Hash: hash, Password: pw})
	if !r.OK {
		h.Pad(ctx, r)
	}
	return r.OK, r.Rehash, err
}

// VerifyDummy spends the time of a failed verification against a hash
// that matches nothing, for unknown users.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) {
	r, _ := h.Check(ctx, Check{Password: pw})
	h.Pad(ctx, r)
}

// verify checks pw against a stored hash; the caller holds a turn. current
// reports an argon2id computation with the hasher's parameters.
func (h *Hasher) verify(hash, pw string) (ok, rehash, current bool, err error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := Decode(hash)
		if err != nil {
			return false, false, false, err
		}
		got := h.idKey([]byte(pw), salt, p, uint32(len(key)))
		current := p.Memory == h.p.Memory && p.Time == h.p.Time && p.Threads == h.p.Threads && uint32(len(key)) == h.p.KeyLen
		ok := subtle.ConstantTimeCompare(got, key) == 1
		return ok, ok && !current, current, nil
	case isBcrypt(hash):
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost > maxStoredBcryptCost {
			// Refused without hashing: a cost-31 hash would hold a slot for a day.
			return false, false, false, fmt.Errorf("bcrypt hash cost is over %d", maxStoredBcryptCost)
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
		switch {
		case err == nil:
			return true, true, false, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, false, nil
		default:
			return false, false, false, fmt.Errorf("bcrypt hash: %w", err)
		}
	}
	return false, false, false, errors.New("unknown password hash format (want argon2id PHC or bcrypt)")
}

// calibrate makes the dummy hash on first use, measuring the argon2id cost
// on the way, so that the floor is known before the first check is padded.
// A server that never checks a password never spends the memory.
func (h *Hasher) calibrate() {
	h.dummyOnce.Do(func() {
		start := time.Now()
		h.dummy = h.hash([]byte(rand.Text()))
		h.floor.add(time.Since(start))
		// One more: the first computation also pays for faulting its memory in.
		start = time.Now()
		h.verifyDummy("")
		h.floor.add(time.Since(start))
		h.collect()
		h.memoryChanged()
	})
}

// verifyDummy checks pw against the dummy hash; the caller holds a turn
// (or is calibrating).
func (h *Hasher) verifyDummy(pw string) {
	p, salt, key, err := Decode(h.dummy)
	if err != nil {
		return
	}
	got := h.idKey([]byte(pw), salt, p, uint32(len(key)))
	subtle.ConstantTimeCompare(got, key)
}

// Floor is the time a refusal takes at least, from its check's turn on:
// the 75th percentile of the last 31 refusals that computed argon2id with
// the hasher's parameters, measured at Pad (0 before the first; at first
// use, two argon2id computations stand in).
func (h *Hasher) Floor() time.Duration { return h.floor.get() }

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}

// MaxBcryptCost bounds the cost of an imported bcrypt hash: each step
// doubles the work, and cost 12 already takes about a quarter of a second,
// ten times an argon2id check.
const MaxBcryptCost = 12

// maxStoredBcryptCost bounds the cost of a stored bcrypt hash this package
// verifies: hashes of cost 13 and 14 imported before MaxBcryptCost was 12
// still verify (and are replaced by argon2id at the first success); above,
// a check is refused without hashing.
const maxStoredBcryptCost = 14

// Limits on imported argon2id hashes: as costly as the second recommended
// option of RFC 9106 (64 MiB, 3 passes) at most, about ten times the
// default, as MaxBcryptCost is for bcrypt.
const (
	maxImportMemory     = 64 * 1024 // KiB
	maxImportMemoryTime = 3 * maxImportMemory
	maxImportThreads    = 8
)

// IsHash reports whether s is a hash this package can verify and will
// accept for import (users moved from another system with their hashes): a
// bcrypt hash of cost 4 to MaxBcryptCost whose salt and digest are
// bcrypt's base64, or an argon2id PHC string of at most 64 MiB, 3 passes
// over 64 MiB in all, and 8 lanes.
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
	p, _, _, err := Decode(s)
	return err == nil && p.Memory <= maxImportMemory && uint64(p.Memory)*uint64(p.Time) <= maxImportMemoryTime &&
		p.Threads <= maxImportThreads
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
