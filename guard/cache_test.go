package guard

import (
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	c := newTTLCache[int](2)
	now := time.Unix(1000, 0)
	k := func(b byte) [32]byte { return [32]byte{b} }
	c.put(k(1), 1, now.Add(time.Second), now)
	if v, ok := c.get(k(1), now); !ok || v != 1 {
		t.Fatalf("fresh entry: %d %t", v, ok)
	}
	if _, ok := c.get(k(1), now.Add(time.Second)); ok {
		t.Fatal("an entry is served at its expiry")
	}
	c.put(k(2), 2, now.Add(time.Minute), now)
	// Full: the expired entry 1 goes, 2 stays.
	c.put(k(3), 3, now.Add(time.Minute), now.Add(2*time.Second))
	if _, ok := c.get(k(2), now.Add(2*time.Second)); !ok || len(c.entries) != 2 {
		t.Fatalf("eviction dropped a live entry: %d entries", len(c.entries))
	}
	// Full with nothing expired: start over, bounded.
	c.put(k(4), 4, now.Add(time.Minute), now.Add(2*time.Second))
	if len(c.entries) != 1 {
		t.Fatalf("%d entries after a full reset, want 1", len(c.entries))
	}
}
