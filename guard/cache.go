package guard

import (
	"sync"
	"time"
)

// ttlCache keeps answers under a SHA-256 key until they expire, at most
// max of them: when it is full, the expired ones go, and if none has, all.
type ttlCache[V any] struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v   V
	exp time.Time
}

func newTTLCache[V any](max int) *ttlCache[V] {
	return &ttlCache[V]{max: max, entries: map[[32]byte]ttlEntry[V]{}}
}

// get returns key's answer if it has not expired at now.
func (c *ttlCache[V]) get(key [32]byte, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put keeps v under key until exp.
func (c *ttlCache[V]) put(key [32]byte, v V, exp, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			c.entries = map[[32]byte]ttlEntry[V]{}
		}
	}
	c.entries[key] = ttlEntry[V]{v: v, exp: exp}
}
