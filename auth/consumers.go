package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/store"
	"github.com/google/uuid"
)

// ConsumerKeys makes and hashes consumer keys. Keys are random UUID v4
// strings (as P21 issues them); only HMAC-SHA-256 of a key under a secret
// derived from the master key is stored, so a copy of the store alone does
// not let anyone test guesses.
type ConsumerKeys struct {
	secret []byte
}

// NewConsumerKeys derives the hashing secret from the master key.
func NewConsumerKeys(mk *masterkey.Key) *ConsumerKeys {
	return &ConsumerKeys{secret: mk.Derive("gatehouse consumer-key hmac v1", 32)}
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
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(key))
	return m.Sum(nil)
}

// consumerCache answers consumer-key lookups from memory. The store is
// asked only on a miss; the change feed drops entries of changed consumers.
type consumerCache struct {
	mu    sync.RWMutex
	byKey map[[32]byte]*cachedConsumer
	// gen grows with every invalidation, so a lookup that raced with a change
	// does not put the stale answer it read into the cache.
	gen uint64
}

// cachedConsumer is a consumer with its effective scope worked out once.
type cachedConsumer struct {
	gatehouse.Consumer
	scope string
}

func newConsumerCache() *consumerCache {
	return &consumerCache{byKey: map[[32]byte]*cachedConsumer{}}
}

func (c *consumerCache) byHash(ctx context.Context, st store.Consumers, h []byte) (*cachedConsumer, error) {
	var k [32]byte
	copy(k[:], h)
	c.mu.RLock()
	cons, ok := c.byKey[k]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return cons, nil
	}
	found, err := st.GetConsumerByKeyHash(ctx, h)
	if err != nil {
		return nil, err
	}
	cons = &cachedConsumer{Consumer: found, scope: EffectiveScope(&found)}
	c.mu.Lock()
	if c.gen == gen {
		c.byKey[k] = cons
	}
	c.mu.Unlock()
	return cons, nil
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

// Changes drops cached consumers that changed.
func (c *consumerCache) Changes(changes []gatehouse.Change) {
	var uids []int64
	for _, ch := range changes {
		if ch.Kind != gatehouse.ChangeConsumer {
			continue
		}
		if uid, err := strconv.ParseInt(ch.Key, 10, 64); err == nil {
			uids = append(uids, uid)
		}
	}
	if len(uids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, uid := range uids {
		for k, cons := range c.byKey {
			if cons.UID == uid {
				delete(c.byKey, k)
			}
		}
	}
}

// Reset drops everything.
func (c *consumerCache) Reset() {
	c.mu.Lock()
	c.gen++
	c.byKey = map[[32]byte]*cachedConsumer{}
	c.mu.Unlock()
}
