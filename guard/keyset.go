package guard

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/go-jose/go-jose/v4"
)

// publicKey is one key of the JWKS, pinned to the algorithm the set names
// for it.
type publicKey struct {
	alg string
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keyMap is one fetched JWKS.
type keyMap struct {
	byKID   map[string]publicKey
	fetched time.Time
}

// errUnknownKey means the token's kid is not in the set, even after a
// refetch (or while refetching is rate-limited).
var errUnknownKey = errors.New("token signed by a key the JWKS does not hold")

// keySet is the gatehouse server's JWKS, fetched on start, refetched in the
// background once it is older than maxAge, and refetched on demand when a
// token names an unknown kid. Fetches are single-flight and at most one per
// minInterval, however many goroutines ask and whatever kids they bring.
type keySet struct {
	url         string
	client      *http.Client
	clock       gatehouse.Clock
	maxAge      time.Duration
	minInterval time.Duration
	log         *slog.Logger

	keys    atomic.Pointer[keyMap]
	fetches atomic.Int64

	mu      sync.Mutex
	call    *fetchCall // the fetch in flight, nil when none
	tried   bool
	lastTry time.Time
	lastErr error // of the last finished fetch
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// maxJWKS bounds a JWKS body; gatehouse's holds a handful of keys.
const maxJWKS = 1 << 20

// fetchTimeout bounds a fetch that no single request owns.
const fetchTimeout = 10 * time.Second

// get returns the key named kid. An unknown kid triggers a refetch unless
// one started less than minInterval ago; it is errUnknownKey when the set
// still lacks it, or the fetch error when the set could not be read (the
// kid may be a new key: "cannot tell", not "invalid").
func (s *keySet) get(ctx context.Context, kid string) (publicKey, error) {
	m := s.keys.Load()
	if m != nil && s.clock.Now().Sub(m.fetched) >= s.maxAge {
		s.start() // periodic: the stale set keeps serving meanwhile
	}
	if m != nil {
		if k, ok := m.byKID[kid]; ok {
			return k, nil
		}
	}
	if err := s.refresh(ctx); err != nil {
		return publicKey{}, err
	}
	if k, ok := s.keys.Load().byKID[kid]; ok {
		return k, nil
	}
	return publicKey{}, errUnknownKey
}

// known reports whether kid is in the current set, without fetching.
func (s *keySet) known(kid string) bool {
	m := s.keys.Load()
	if m == nil {
		return false
	}
	_, ok := m.byKID[kid]
	return ok
}

// refresh waits for a fetch: the one in flight, or a new one if the rate
// limit allows; otherwise it returns the outcome of the last fetch at once.
func (s *keySet) refresh(ctx context.Context) error {
	c, lastErr := s.start()
	if c == nil {
		return lastErr
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start joins the fetch in flight or starts one; it returns nil and the
// last fetch's error when a fetch started less than minInterval ago. The
// fetch does not belong to any one request, so a caller that gives up does
// not cancel it for the others.
func (s *keySet) start() (*fetchCall, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.call != nil {
		return s.call, nil
	}
	now := s.clock.Now()
	if s.tried && now.Sub(s.lastTry) < s.minInterval {
		return nil, s.lastErr
	}
	c := &fetchCall{done: make(chan struct{})}
	s.call, s.tried, s.lastTry = c, true, now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		m, err := s.fetch(ctx)
		if err != nil {
			s.log.Warn("guard: JWKS fetch failed", "url", s.url, "err", err)
		} else {
			s.keys.Store(m)
		}
		s.mu.Lock()
		s.call, s.lastErr = nil, err
		s.mu.Unlock()
		c.err = err
		close(c.done)
	}()
	return c, nil
}

// fetch reads the JWKS. Keys that cannot verify a gatehouse token locally
// (no kid, no or another algorithm, a private or too weak key, not for
// signatures) are left out; an empty set is valid.
func (s *keySet) fetch(ctx context.Context) (*keyMap, error) {
	s.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET JWKS answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKS {
		return nil, errors.New("JWKS is larger than 1 MiB")
	}
	var set struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, errors.New("the JWKS response is not a JSON Web Key Set")
	}
	m := &keyMap{byKID: map[string]publicKey{}, fetched: s.clock.Now()}
	for _, raw := range *set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			s.log.Debug("guard: JWKS key skipped", "err", err)
			continue
		}
		k, err := usable(jwk)
		if err != nil {
			s.log.Debug("guard: JWKS key skipped", "kid", jwk.KeyID, "err", err)
			continue
		}
		m.byKID[jwk.KeyID] = k
	}
	return m, nil
}

// usable checks that a JWK can verify tokens of the algorithm it names,
// and that the algorithm is one of the asymmetric ones gatehouse signs with.
func usable(k jose.JSONWebKey) (publicKey, error) {
	if k.KeyID == "" {
		return publicKey{}, errors.New("no kid")
	}
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	ok := false
	switch k.Algorithm {
	case algRS256:
		pk, is := k.Key.(*rsa.PublicKey)
		ok = is && pk.N.BitLen() >= 2048
	case algES256:
		pk, is := k.Key.(*ecdsa.PublicKey)
		ok = is && pk.Curve == elliptic.P256()
	case algEdDSA:
		_, ok = k.Key.(ed25519.PublicKey)
	default:
		return publicKey{}, fmt.Errorf("algorithm %q is not RS256, ES256 or EdDSA", k.Algorithm)
	}
	if !ok {
		return publicKey{}, fmt.Errorf("not a public %s key", k.Algorithm)
	}
	return publicKey{alg: k.Algorithm, key: k.Key}, nil
}
