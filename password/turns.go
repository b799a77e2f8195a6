package password

import (
	"container/list"
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// turns hands out the hash slots: at most n computations at once, at most
// one per key, and keys served in turn. A key that waits joins the back of
// the line of keys; a key whose check ends goes to the back again if it has
// more waiting. So a flood of checks for one user name holds one slot at
// most, and any other name waits for at most one check of it.
type turns struct {
	mu   sync.Mutex
	n    int // slots in all
	free int
	// idle, when set, is called (without the lock held) each time the last
	// running check ends with none waiting.
	idle  func()
	busy  map[string]bool      // keys with a check running
	queue map[string]*keyQueue // keys with checks waiting
	ready list.List            // of *keyQueue: keys with checks waiting and none running, in turn order
	seq   uint64               // makes "" keys unique
}

type keyQueue struct {
	key     string
	waiters list.List     // of *waiter, first come first served
	elem    *list.Element // in ready; nil while the key has a check running
}

type waiter struct {
	ch      chan struct{} // closed when the turn is granted
	granted bool
	elem    *list.Element
}

func newTurns(n int) *turns {
	n = max(n, 1)
	return &turns{n: n, free: n, busy: map[string]bool{}, queue: map[string]*keyQueue{}}
}

// acquire waits for key's turn and returns the key to release (a unique one
// for ""), or ctx's error.
func (t *turns) acquire(ctx context.Context, key string) (string, error) {
	t.mu.Lock()
	if key == "" {
		t.seq++
		key = "\x00" + strconv.FormatUint(t.seq, 10)
	}
	q := t.queue[key]
	if t.free > 0 && !t.busy[key] && q == nil {
		t.free--
		t.busy[key] = true
		t.mu.Unlock()
		return key, nil
	}
	if q == nil {
		q = &keyQueue{key: key}
		t.queue[key] = q
		if !t.busy[key] {
			q.elem = t.ready.PushBack(q)
		}
	}
	w := &waiter{ch: make(chan struct{})}
	w.elem = q.waiters.PushBack(w)
	t.mu.Unlock()
	select {
	case <-w.ch:
		return key, nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	if w.granted {
		t.mu.Unlock()
		t.release(key)
		return "", ctx.Err()
	}
	q.waiters.Remove(w.elem)
	if q.waiters.Len() == 0 {
		delete(t.queue, key)
		if q.elem != nil {
			t.ready.Remove(q.elem)
		}
	}
	t.mu.Unlock()
	return "", ctx.Err()
}

// release ends the check of key and hands its slot to the next key in turn.
func (t *turns) release(key string) {
	t.mu.Lock()
	t.releaseLocked(key)
	idle := t.free == t.n && t.idle != nil
	t.mu.Unlock()
	if idle {
		t.idle()
	}
}

// idleNow reports whether no check runs or waits.
func (t *turns) idleNow() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.free == t.n
}

func (t *turns) releaseLocked(key string) {
	delete(t.busy, key)
	t.free++
	if q := t.queue[key]; q != nil && q.elem == nil {
		q.elem = t.ready.PushBack(q)
	}
	for t.free > 0 && t.ready.Len() > 0 {
		q := t.ready.Remove(t.ready.Front()).(*keyQueue)
		q.elem = nil
		w := q.waiters.Remove(q.waiters.Front()).(*waiter)
		if q.waiters.Len() == 0 {
			delete(t.queue, q.key)
		}
		w.granted = true
		close(w.ch)
		t.busy[q.key] = true
		t.free--
	}
}

// floor keeps the 75th percentile of the recent argon2id check times: what
// a failed check is padded to. Not the median: a failed argon2id check
// answers after the longer of its own time and the floor, a padded one at
// the floor; with the median as the floor (itself estimated, so moving) the
// first answers later than the second more often than not. With the 75th
// percentile both answer at the floor three times in four, at the cost of
// a few milliseconds more for a refusal (never for a success).
type floor struct {
	mu      sync.Mutex
	samples [31]time.Duration
	n, next int
	value   atomic.Int64
}

func (f *floor) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples[f.next] = d
	f.next = (f.next + 1) % len(f.samples)
	f.n = min(f.n+1, len(f.samples))
	s := slices.Clone(f.samples[:f.n])
	slices.Sort(s)
	f.value.Store(int64(s[len(s)*3/4]))
}

func (f *floor) get() time.Duration { return time.Duration(f.value.Load()) }
