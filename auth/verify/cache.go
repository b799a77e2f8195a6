package verify

import (
	"context"
	"errors"
	"sync"

	"github.com/gatehouse/gatehouse"
)

// lazyCache answers lookups from memory, asking load only on a miss. The
// change feed invalidates entries; a load that raced with an invalidation
// is answered but not kept, so a stale value never sticks. Misses
// (ErrNotFound) are cached too, so a flood of requests naming something that
// does not exist does not turn into a flood of store queries.
type lazyCache[V any] struct {
	mu   sync.RWMutex
	m    map[string]cached[V]
	gen  uint64
	max  int
	load func(ctx context.Context, key string) (V, error)
}

type cached[V any] struct {
	v       V
	missing bool
}

func newLazyCache[V any](max int, load func(ctx context.Context, key string) (V, error)) *lazyCache[V] {
	return &lazyCache[V]{m: map[string]cached[V]{}, max: max, load: load}
}

// get returns the value for key; found is false when the store has none.
// err is a store failure only.
func (c *lazyCache[V]) get(ctx context.Context, key string) (v V, found bool, err error) {
	c.mu.RLock()
	e, ok := c.m[key]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return e.v, !e.missing, nil
	}
	v, err = c.load(ctx, key)
	missing := false
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		missing, err = true, nil
	case err != nil:
		return v, false, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.m) >= c.max {
			// Bounded memory: drop an arbitrary tenth; they reload on demand.
			n := c.max / 10
			for k := range c.m {
				if n--; n < 0 {
					break
				}
				delete(c.m, k)
			}
		}
		c.m[key] = cached[V]{v: v, missing: missing}
	}
	c.mu.Unlock()
	return v, !missing, nil
}

// invalidate forgets keys.
func (c *lazyCache[V]) invalidate(keys ...string) {
	c.mu.Lock()
	c.gen++
	for _, k := range keys {
		delete(c.m, k)
	}
	c.mu.Unlock()
}

// reset forgets everything.
func (c *lazyCache[V]) reset() {
	c.mu.Lock()
	c.gen++
	c.m = map[string]cached[V]{}
	c.mu.Unlock()
}
