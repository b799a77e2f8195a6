package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Listener is told about changes. Reset is called instead of Changes when
// the follower may have missed some (a feed gap, or the first successful
// read after the store was unreachable): the listener must drop whatever it
// cached.
type Listener interface {
	Changes(changes []gatehouse.Change)
	Reset()
}

// Follower polls a store's change feed and hands new entries to its
// listeners, so that a change made by another process (the admin CLI, another
// replica) takes effect here within one poll interval.
type Follower struct {
	feed     Feed
	interval time.Duration
	log      *slog.Logger

	mu        sync.Mutex
	listeners []Listener
	rev       int64
	healthy   bool
	wake      chan struct{}
}

// DefaultFeedInterval is how often a Follower polls by default
// (--feed-interval).
const DefaultFeedInterval = 250 * time.Millisecond

// NewFollower follows feed, polling every interval (DefaultFeedInterval
// if zero).
func NewFollower(feed Feed, interval time.Duration, log *slog.Logger) *Follower {
	if interval <= 0 {
		interval = DefaultFeedInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Follower{feed: feed, interval: interval, log: log, wake: make(chan struct{}, 1)}
}

// Subscribe adds a listener. Call before Start.
func (f *Follower) Subscribe(l Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(f.listeners, l)
}

// Start reads the current revision, so that only later changes are
// reported. Listeners are expected to load current state themselves.
func (f *Follower) Start(ctx context.Context) error {
	rev, err := f.feed.LastRevision(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.rev, f.healthy = rev, true
	f.mu.Unlock()
	return nil
}

// Revision is the last revision handed to listeners.
func (f *Follower) Revision() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev
}

// Notifier is a Feed that can tell when it may have new entries
// (PostgreSQL's LISTEN/NOTIFY). A Follower of one polls when told, and at
// its interval all the same, in case a notification is lost.
type Notifier interface {
	// Notify calls wake (which returns at once) whenever the feed may have
	// new entries, until ctx ends.
	Notify(ctx context.Context, wake func())
}

// minNotifiedGap spaces the polls that notifications ask for: under a
// stream of changes (one principal's sessions ended by its cap, a token
// at a time) one poll reads many, and the feed is not read hundreds of
// times a second by every replica.
const minNotifiedGap = 20 * time.Millisecond

// Poke makes the follower poll now rather than at the next tick (used after
// a local write whose effect listeners should see at once).
func (f *Follower) Poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends: at the interval, when poked, and when the
// feed says it has new entries (Notifier).
func (f *Follower) Run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	if n, ok := f.feed.(Notifier); ok {
		go n.Notify(ctx, f.Poke)
	}
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
			if d := minNotifiedGap - time.Since(last); d > 0 {
				gap := time.NewTimer(d)
				select {
				case <-ctx.Done():
					gap.Stop()
					return
				case <-gap.C:
				}
			}
		}
		last = time.Now()
		f.Poll(ctx)
	}
}

// Poll reads and dispatches everything new since the last poll.
func (f *Follower) Poll(ctx context.Context) {
	const page = 1000
	for {
		f.mu.Lock()
		after, wasHealthy := f.rev, f.healthy
		f.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		changes, err := f.feed.Changes(pctx, after, page)
		cancel()
		if errors.Is(err, gatehouse.ErrFeedGap) {
			f.resetTo(ctx)
			return
		}
		if err != nil {
			if ctx.Err() == nil && wasHealthy {
				f.log.Warn("change feed unreadable", "err", err)
			}
			f.mu.Lock()
			f.healthy = false
			f.mu.Unlock()
			return
		}
		if !wasHealthy {
			// Changes made while we could not read may include ones already
			// pruned; start from a clean slate.
			f.log.Info("change feed readable again")
			f.resetTo(ctx)
			return
		}
		f.mu.Lock()
		if len(changes) > 0 {
			f.rev = changes[len(changes)-1].Rev
		}
		ls := append([]Listener(nil), f.listeners...)
		f.mu.Unlock()
		if len(changes) > 0 {
			for _, l := range ls {
				l.Changes(changes)
			}
		}
		if len(changes) < page {
			return
		}
	}
}

func (f *Follower) resetTo(ctx context.Context) {
	rev, err := f.feed.LastRevision(ctx)
	if err != nil {
		f.mu.Lock()
		f.healthy = false
		f.mu.Unlock()
		return
	}
	f.mu.Lock()
	f.rev, f.healthy = rev, true
	ls := append([]Listener(nil), f.listeners...)
	f.mu.Unlock()
	for _, l := range ls {
		l.Reset()
	}
}

// Healthy reports whether the last poll could read the feed.
func (f *Follower) Healthy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.healthy
}
