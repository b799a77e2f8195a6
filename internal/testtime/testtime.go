// Package testtime controls time in tests: Eventually waits for an effect
// that takes time by design, and Clock is a clock that moves only when the
// test moves it.
package testtime

import (
	"sync"
	"testing"
	"time"
)

// Interval is how often Eventually asks again.
const Interval = 10 * time.Millisecond

// Eventually calls cond until it returns nil, and fails the test with cond's
// last error if that has not happened within limit. It returns how long the
// wait took.
//
// Use it for effects that take time by design: a change-feed poll, another
// process, a server starting, a database coming back. Events that a channel
// or a Clock can order need no waiting.
func Eventually(t testing.TB, limit time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("not within %v: %v", limit, err)
		}
		time.Sleep(Interval)
	}
}

// Clock is a clock that tests move by hand. It is safe for concurrent use
// and satisfies gatehouse.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start until moved.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
