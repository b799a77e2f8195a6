package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/google/uuid"
)

// ConsumerKeys makes and hashes consumer keys. Keys are random UUID v4
// strings (as P21 issues them); only HMAC-SHA-256 of a key under a secret
// derived from the master key is stored, so a copy of the store alone does
// not let anyone test guesses.
type ConsumerKeys struct {
	secret []byte
	// macs are keyed HMAC states, reused: every token request hashes a key.
	macs sync.Pool
}

// NewConsumerKeys derives the hashing secret from the master key.
func NewConsumerKeys(mk *masterkey.Key) *ConsumerKeys {
	k := &ConsumerKeys{secret: mk.Derive("gatehouse consumer-key hmac v1", 32)}
	k.macs.New = func() any { return hmac.New(sha256.New, k.secret) }
	return k
}

// New returns a fresh consumer key.
func (k *ConsumerKeys) New() (string, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Hash returns the stored form of a consumer key.
func (k *ConsumerKeys) Hash(key string) []byte {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(key))
	sum := m.Sum(make([]byte, 0, sha256.Size))
	k.macs.Put(m)
	return sum
}

// EffectiveScope is a consumer's scope as tokens and responses carry it:
// the scope string as the administrator configured it (SPEC §5.1: "the
// consumer's scope string"), plus ";/p21sdk" when the consumer has SDK
// access and the scope does not name /p21sdk already.
func EffectiveScope(cons *gatehouse.Consumer) string {
	if !cons.SDKAccess {
		return cons.Scope
	}
	if sc, err := scope.Parse(cons.Scope); err == nil && len(scope.WithSDK(sc)) == len(sc) {
		return cons.Scope
	}
	if cons.Scope == "" {
		return scope.SDK
	}
	return cons.Scope + ";" + scope.SDK
}
