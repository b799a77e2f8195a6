package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/golang-jwt/jwt/v5"
)

// newKID returns a random key id that does not start with "-" or "_", so
// that it can be given on a command line (`gatehouse keys retire KID`)
// without being read as a flag.
func newKID() string {
	for {
		if k := RandomToken(12); k[0] != '-' && k[0] != '_' {
			return k
		}
	}
}

// NewSigningKey makes a new key for alg, its private part sealed under mk.
// The caller sets its state before storing it.
func NewSigningKey(alg string, mk *masterkey.Key, now time.Time) (gatehouse.SigningKey, error) {
	k := gatehouse.SigningKey{KID: newKID(), Algorithm: alg, CreatedAt: now}
	var priv []byte
	var pub crypto.PublicKey
	switch alg {
	case RS256:
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return k, err
		}
		pub = key.Public()
		if priv, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return k, err
		}
	case ES256:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return k, err
		}
		pub = key.Public()
		if priv, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return k, err
		}
	case EdDSA:
		p, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return k, err
		}
		pub = p
		if priv, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
			return k, err
		}
	case HS256:
		priv = make([]byte, 32)
		_, _ = rand.Read(priv)
	default:
		return k, fmt.Errorf("algorithm %q is not one of %s", alg, strings.Join(Algorithms, ", "))
	}
	if pub != nil {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return k, err
		}
		k.Public = der
	}
	k.Private = mk.Seal(priv, sealAD(k.KID, alg))
	return k, nil
}

// sealAD binds a sealed private key to its kid and algorithm, so that
// swapping sealed blobs between rows of the store is detected.
func sealAD(kid, alg string) []byte { return []byte("gatehouse signing key\x00" + kid + "\x00" + alg) }

// key is one usable key of a ring.
type key struct {
	gatehouse.SigningKey
	method  jwt.SigningMethod
	signer  any // private key, or the HMAC secret; nil when not loaded
	verify  any // public key, or the HMAC secret
	public  crypto.PublicKey
	retired bool
	// revoked: withdrawn at once; kept only to say why its tokens are
	// refused. It has no key material.
	revoked bool
}

// Keyring is an immutable set of keys: the active key of each algorithm
// signs; every key (next, active, retired) verifies its own algorithm.
type Keyring struct {
	byKID  map[string]*key
	active map[string]*key // by algorithm
	keys   []*key          // in store order (oldest first)
}

// NewKeyring opens the stored keys with mk.
func NewKeyring(keys []gatehouse.SigningKey, mk *masterkey.Key) (*Keyring, error) {
	kr := &Keyring{byKID: map[string]*key{}, active: map[string]*key{}}
	for _, sk := range keys {
		k, err := loadKey(sk, mk)
		if err != nil {
			return nil, fmt.Errorf("signing key %s (%s): %w", sk.KID, sk.Algorithm, err)
		}
		kr.byKID[sk.KID] = k
		kr.keys = append(kr.keys, k)
		if sk.State == gatehouse.KeyActive && !k.revoked {
			kr.active[sk.Algorithm] = k
		}
	}
	return kr, nil
}

func loadKey(sk gatehouse.SigningKey, mk *masterkey.Key) (*key, error) {
	k := &key{SigningKey: sk, retired: sk.State == gatehouse.KeyRetired}
	if sk.State == gatehouse.KeyRevoked {
		k.revoked = true
		return k, nil
	}
	switch sk.Algorithm {
	case RS256:
		k.method = jwt.SigningMethodRS256
	case ES256:
		k.method = jwt.SigningMethodES256
	case EdDSA:
		k.method = jwt.SigningMethodEdDSA
	case HS256:
		k.method = jwt.SigningMethodHS256
	default:
		return nil, fmt.Errorf("unknown algorithm %q", sk.Algorithm)
	}
	priv, err := mk.Open(sk.Private, sealAD(sk.KID, sk.Algorithm))
	if err != nil {
		return nil, err
	}
	if sk.Algorithm == HS256 {
		if len(priv) < 32 {
			return nil, errors.New("HMAC secret too short")
		}
		k.signer, k.verify = priv, priv
		return k, nil
	}
	pk, err := x509.ParsePKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(sk.Public)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	switch sk.Algorithm {
	case RS256:
		p, ok1 := pk.(*rsa.PrivateKey)
		_, ok2 := pub.(*rsa.PublicKey)
		if !ok1 || !ok2 {
			return nil, errors.New("not an RSA key")
		}
		k.signer = p
	case ES256:
		p, ok1 := pk.(*ecdsa.PrivateKey)
		_, ok2 := pub.(*ecdsa.PublicKey)
		if !ok1 || !ok2 || p.Curve != elliptic.P256() {
			return nil, errors.New("not a P-256 key")
		}
		k.signer = p
	case EdDSA:
		p, ok1 := pk.(ed25519.PrivateKey)
		_, ok2 := pub.(ed25519.PublicKey)
		if !ok1 || !ok2 {
			return nil, errors.New("not an Ed25519 key")
		}
		k.signer = p
	}
	k.verify, k.public = pub, pub
	return k, nil
}

// ActiveKID is the kid of the algorithm's active key, "" if none.
func (kr *Keyring) ActiveKID(alg string) string {
	if k := kr.active[alg]; k != nil {
		return k.KID
	}
	return ""
}

// Sign signs c with the active key of alg. golang-jwt assembles and signs
// the token; the claims are written without reflection (their
// MarshalJSON), since this runs for every token issued.
func (kr *Keyring) Sign(alg string, c Claims) (string, error) {
	k := kr.active[alg]
	if k == nil {
		return "", fmt.Errorf("no active %s signing key", alg)
	}
	t := jwt.NewWithClaims(k.method, c.wire())
	t.Header["kid"] = k.KID
	return t.SignedString(k.signer)
}

// VerifyOptions say what a valid token is.
type VerifyOptions struct {
	// Issuer is the required iss.
	Issuer string
	// Now is the time to check exp and nbf against.
	Now time.Time
	// Leeway tolerates clock skew on exp and nbf.
	Leeway time.Duration
	// SkipTimes leaves exp and nbf to the caller (which caches verified
	// tokens and checks their times on every use).
	SkipTimes bool
}

// Verify checks a token's signature with the key named by its kid, using
// only that key's algorithm, then its issuer and times. It returns the
// claims with KeyID and Algorithm set.
// A token of a revoked key fails with ErrKeyRevoked.
func (kr *Keyring) Verify(tok string, o VerifyOptions) (*Claims, error) {
	revoked := false
	c, err := VerifyWith(tok, o, func(kid string) (PublicKey, bool) {
		k := kr.byKID[kid]
		if k == nil || k.revoked {
			revoked = k != nil
			return PublicKey{}, false
		}
		return PublicKey{KID: k.KID, Algorithm: k.Algorithm, Key: k.verify}, true
	})
	if revoked && errors.Is(err, ErrUnknownKey) {
		return nil, ErrKeyRevoked
	}
	return c, err
}

// PublicKey is a key that verifies tokens: its kid, its one algorithm, and
// the key itself (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey, or
// the HMAC secret as []byte).
type PublicKey struct {
	KID, Algorithm string
	Key            any
}

// VerifyWith checks a token as Keyring.Verify does, with the key that
// lookup gives for the token's kid: for a verifier that holds only the
// server's published keys (a JWKS). The algorithm is the key's, never the
// token header's.
func VerifyWith(tok string, o VerifyOptions, lookup func(kid string) (PublicKey, bool)) (*Claims, error) {
	var wc wireClaims
	var used *PublicKey
	p := jwt.NewParser(
		jwt.WithValidMethods(Algorithms),
		jwt.WithoutClaimsValidation(),
		jwt.WithJSONNumber(),
	)
	_, err := p.ParseWithClaims(tok, &wc, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := lookup(kid)
		if !ok {
			return nil, ErrUnknownKey
		}
		if t.Method.Alg() != k.Algorithm {
			return nil, ErrAlgorithm
		}
		used = &k
		return k.Key, nil
	})
	if err != nil {
		switch {
		case errors.Is(err, ErrUnknownKey):
			return nil, ErrUnknownKey
		case errors.Is(err, ErrAlgorithm), errors.Is(err, jwt.ErrTokenSignatureInvalid) && used == nil:
			return nil, ErrAlgorithm
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			return nil, ErrSignature
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c := wc.claims()
	c.KeyID, c.Algorithm = used.KID, used.Algorithm
	if wc.Exp == 0 || wc.Jti == "" || wc.SessionID == "" {
		return nil, ErrMissingClaim
	}
	if o.Issuer != "" && wc.Iss != o.Issuer {
		return nil, ErrIssuer
	}
	if o.SkipTimes {
		return c, nil
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(c.ExpiresAt.Add(o.Leeway)) {
		return nil, ErrExpired
	}
	if wc.Nbf != 0 && now.Add(o.Leeway).Before(c.NotBefore) {
		return nil, ErrNotYetValid
	}
	return c, nil
}

// Ring holds the current key ring; the key manager swaps in a new one when
// keys change, and readers never block.
type Ring struct{ p atomic.Pointer[Keyring] }

// Load returns the current key ring, nil before the first Store.
func (r *Ring) Load() *Keyring { return r.p.Load() }

// Store replaces the key ring.
func (r *Ring) Store(kr *Keyring) { r.p.Store(kr) }
