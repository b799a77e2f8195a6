// Package verify checks bearer tokens and makes the authorization
// decision: a token's signature, issuer, times and session (Verifier), the
// user, role and catalog state the decision needs, kept current by the
// change feed (Directory), and the decision itself on a request as sent
// (Authorizer), all answered from memory in the common case.
package verify

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// Verifier checks bearer tokens: signature with the algorithm pinned to the
// token's kid, issuer, expiry with a small leeway, and that the token's
// session is still active. Everything is answered from memory in the common
// case: verified tokens and session states are cached, and the change feed
// drops what changed, so an ended session is refused within one feed poll.
type Verifier struct {
	keys   *token.Ring
	store  store.Sessions
	clock  gatehouse.Clock
	cfg    auth.Config // issuers per kind of token (auth.Config.Signing)
	leeway time.Duration

	sessions *lazyCache[gatehouse.Session]
	// healthy reports whether the change feed is being read; while it is
	// not, cached session states may be stale, so checks answer 503.
	healthy func() bool

	mu       sync.RWMutex
	ring     *token.Keyring // the ring the verified-token cache belongs to
	verified map[[32]byte]*token.Claims
}

// Identity is a verified bearer token and the session behind it.
type Identity struct {
	Claims  *token.Claims
	Session gatehouse.Session
}

// Username is the token's user context ("" for none).
func (id *Identity) Username() string { return id.Claims.Subject }

// ConsumerUID is the consumer behind the token ("" for user tokens).
func (id *Identity) ConsumerUID() string { return id.Claims.ConsumerUID }

// IsConsumer reports whether the token was issued through a consumer key
// (or an OAuth client), which bypasses user permissions.
func (id *Identity) IsConsumer() bool { return id.Claims.ConsumerUID != "" }

// maxVerified bounds the verified-token cache; maxSessions the session cache.
const (
	maxVerified = 100_000
	maxSessions = 200_000
)

// NewVerifier builds a verifier; its Listener must be subscribed to the
// store's change feed.
func NewVerifier(cfg auth.Config, keys *token.Ring, st store.Sessions, clock gatehouse.Clock) *Verifier {
	cfg = cfg.Defaults()
	if clock == nil {
		clock = gatehouse.SystemClock
	}
	v := &Verifier{keys: keys, store: st, clock: clock, cfg: cfg, leeway: cfg.Leeway,
		verified: map[[32]byte]*token.Claims{}}
	v.sessions = newLazyCache(maxSessions, func(ctx context.Context, id string) (gatehouse.Session, error) {
		return st.GetSession(ctx, id)
	})
	return v
}

// FollowHealth makes the verifier refuse with 503 while healthy reports
// false (the store's change feed cannot be read): an ended session might
// not be known, and a wrong "yes" is worse than "try again".
func (v *Verifier) FollowHealth(healthy func() bool) { v.healthy = healthy }

// Verify checks a raw bearer token. Errors are *gatehouse.Error values:
// 401 invalid_token, or 503 when the store cannot be read.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if raw == "" {
		return nil, policy.ErrNoToken()
	}
	if len(raw) > 8192 {
		return nil, policy.ErrInvalidToken("The access token is malformed.")
	}
	c, err := v.Claims(raw)
	if err != nil {
		return nil, err
	}
	now := v.clock.Now()
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return nil, policy.ErrInvalidToken("The access token has expired.")
	}
	if now.Add(v.leeway).Before(c.NotBefore) {
		return nil, policy.ErrInvalidToken("The access token is not valid yet.")
	}
	if v.healthy != nil && !v.healthy() {
		return nil, gatehouse.ErrStoreDown(errors.New("change feed unreadable"))
	}
	s, found, err := v.sessions.get(ctx, c.SessionID)
	if err != nil {
		return nil, gatehouse.ErrStoreDown(err)
	}
	if !found || !s.Active(now) {
		return nil, policy.ErrInvalidToken("The session of this access token has ended.")
	}
	// The token must belong to the session it names: same consumer and
	// user, and the issuer of the session's kind (P21 or OAuth2).
	_, iss := v.cfg.Signing(s.Flow)
	if strconv.FormatInt(s.ConsumerUID, 10) != orZero(c.ConsumerUID) || s.Username != c.Subject || c.Issuer != iss {
		return nil, policy.ErrInvalidToken("The access token does not match its session.")
	}
	return &Identity{Claims: c, Session: s}, nil
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// Claims verifies the signature and issuer of raw, from cache when this
// exact token was verified before with the current key ring, without
// looking at its times or its session (revocation uses it: an expired or
// ended token is still the caller's to revoke). Errors are 401 or 503
// *gatehouse.Error values.
func (v *Verifier) Claims(raw string) (*token.Claims, error) {
	kr := v.keys.Load()
	if kr == nil {
		return nil, gatehouse.ErrStoreDown(errors.New("signing keys not loaded"))
	}
	h := digest(raw)
	v.mu.RLock()
	c, ok := v.verified[h]
	same := v.ring == kr
	v.mu.RUnlock()
	if ok && same {
		return c, nil
	}
	c, err := kr.Verify(raw, token.VerifyOptions{SkipTimes: true})
	if err != nil {
		return nil, policy.ErrInvalidToken(describe(err))
	}
	// Either issuer here; Verify checks the one of the session's kind.
	if _, oauthIss := v.cfg.Signing(gatehouse.FlowOAuthClient); c.Issuer != v.cfg.Issuer && c.Issuer != oauthIss {
		return nil, policy.ErrInvalidToken(describe(token.ErrIssuer))
	}
	v.mu.Lock()
	if v.ring != kr {
		v.ring, v.verified = kr, map[[32]byte]*token.Claims{}
	}
	if len(v.verified) >= maxVerified {
		v.verified = map[[32]byte]*token.Claims{}
	}
	v.verified[h] = c
	v.mu.Unlock()
	return c, nil
}

// DescKeyRevoked is the 401 description of a token signed by a key that
// `gatehouse keys retire` withdrew: the holder needs a new token.
const DescKeyRevoked = "The access token was signed with a key that has been withdrawn; request a new token."

func describe(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "The access token has expired."
	case errors.Is(err, token.ErrIssuer):
		return "The access token was issued by someone else."
	case errors.Is(err, token.ErrKeyRevoked):
		return DescKeyRevoked
	case errors.Is(err, token.ErrUnknownKey), errors.Is(err, token.ErrSignature), errors.Is(err, token.ErrAlgorithm):
		return "The access token signature is invalid."
	}
	return "The access token is malformed."
}

// Listener keeps the verifier's session cache current.
func (v *Verifier) Listener() store.Listener { return verifierListener{v} }

type verifierListener struct{ v *Verifier }

func (l verifierListener) Changes(changes []gatehouse.Change) {
	var ids []string
	for _, ch := range changes {
		if ch.Kind == gatehouse.ChangeSession && ch.Op != gatehouse.OpCreate {
			ids = append(ids, ch.Key)
		}
	}
	if len(ids) > 0 {
		l.v.sessions.invalidate(ids...)
	}
}

func (l verifierListener) Reset() { l.v.sessions.reset() }

// SessionEnded drops a session from the cache at once (used after this
// process ended it, so that it need not wait for the feed).
func (v *Verifier) SessionEnded(ids ...string) { v.sessions.invalidate(ids...) }

// digest is the SHA-256 of a token, the key of the verified-token cache. It
// hashes the string's bytes in place: []byte(raw) would copy every token
// checked (500 bytes and more) to the heap. sha256 neither keeps nor
// changes its input.
func digest(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}
