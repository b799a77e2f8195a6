package issue

import (
	"context"
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/store"
)

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
	cons = &cachedConsumer{Consumer: found, scope: auth.EffectiveScope(&found)}
	c.mu.Lock()
	if c.gen == gen {
		c.byKey[k] = cons
	}
	c.mu.Unlock()
	return cons, nil
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
