package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// usableMargin is how long before its expiry a token stops being handed
// out at all, so that it does not expire in flight.
const usableMargin = 10 * time.Second

// CachedSource reuses a token from another source until it is within the
// refresh buffer of its expiry, then gets a new one. It is safe for
// concurrent use:
//
//   - Many goroutines asking at once cause one token request (one flight);
//     its result, token or error, goes to every caller waiting for it.
//   - The flight runs on its own context (with the caller's values, a
//     timeout of [WithFetchTimeout] and no cancellation), so a caller
//     that gives up never breaks the fetch for the others.
//   - After a failed flight it waits (exponential backoff with jitter,
//     [WithBackoff]) before the next; calls meanwhile get the last error
//     at once.
//   - While a token that is due for refresh has not yet expired, a failed
//     refresh is logged and the old token is still handed out.
//   - A source that implements [Renewer] is asked to renew the current
//     token (P21 and OAuth2 sources use its refresh token).
//
// The returned tokens are shared: do not modify them.
type CachedSource struct {
	src   TokenSource
	renew Renewer
	o     options

	// cur is read without a lock, so that a cached token costs an atomic
	// load and a clock read.
	cur atomic.Pointer[entry]

	mu       sync.Mutex
	flight   *flight
	lastErr  error
	retryAt  time.Time
	failures int
}

type entry struct {
	tok       *oauth2.Token
	refreshAt int64 // unix nanoseconds: get a new token from here on
	usableTil int64 // unix nanoseconds: do not hand the token out from here on
}

type flight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// NewCachedSource wraps src. It honours [WithRefreshBefore],
// [WithOnToken], [WithSeed], [WithFetchTimeout], [WithBackoff],
// [WithLogger] and [WithClock].
func NewCachedSource(src TokenSource, opts ...Option) *CachedSource {
	c := &CachedSource{src: src, o: buildOptions(opts)}
	c.renew, _ = src.(Renewer)
	if t := c.o.seed; t != nil && t.AccessToken != "" {
		c.cur.Store(c.newEntry(t, 0))
	}
	return c
}

// newEntry computes when tok is due. For a fresh token whose lifetime is
// known and shorter than twice the buffer, half the lifetime is used, so
// that a short-lived token is not refreshed on every call.
func (c *CachedSource) newEntry(tok *oauth2.Token, lifetime time.Duration) *entry {
	if tok.Expiry.IsZero() {
		return &entry{tok: tok, refreshAt: math.MaxInt64, usableTil: math.MaxInt64}
	}
	buf := c.o.refreshBefore
	if lifetime > 0 && buf > lifetime/2 {
		buf = lifetime / 2
	}
	exp := tok.Expiry.UnixNano()
	return &entry{tok: tok, refreshAt: exp - int64(buf), usableTil: exp - int64(min(usableMargin, buf))}
}

// Token returns a valid token, getting a new one when needed.
func (c *CachedSource) Token() (*oauth2.Token, error) { return c.TokenContext(context.Background()) }

// TokenContext returns a valid token, getting a new one when needed. ctx
// bounds only this caller's wait.
func (c *CachedSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if e := c.cur.Load(); e != nil && c.o.now().UnixNano() < e.refreshAt {
		return e.tok, nil
	}
	return c.slow(ctx)
}

func (c *CachedSource) slow(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	now := c.o.now()
	e := c.cur.Load()
	if e != nil && now.UnixNano() < e.refreshAt {
		c.mu.Unlock()
		return e.tok, nil
	}
	f := c.flight
	if f == nil {
		if c.lastErr != nil && now.Before(c.retryAt) {
			err := c.lastErr
			c.mu.Unlock()
			if e != nil && now.UnixNano() < e.usableTil {
				return e.tok, nil
			}
			return nil, err
		}
		f = &flight{done: make(chan struct{})}
		c.flight = f
		var old *oauth2.Token
		if e != nil {
			old = e.tok
		}
		go c.fetch(context.WithoutCancel(ctx), f, old)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a token: %w", ctx.Err())
	}
	if f.err != nil {
		if e != nil && c.o.now().UnixNano() < e.usableTil && c.cur.Load() == e {
			return e.tok, nil
		}
		return nil, f.err
	}
	return f.tok, nil
}

// fetch runs one flight and publishes its outcome.
func (c *CachedSource) fetch(ctx context.Context, f *flight, old *oauth2.Token) {
	ctx, cancel := context.WithTimeout(ctx, c.o.fetchTimeout)
	defer cancel()
	start := c.o.now()
	var (
		tok *oauth2.Token
		err error
	)
	if c.renew != nil && old != nil {
		tok, err = c.renew.Renew(ctx, old)
	} else {
		tok, err = c.src.TokenContext(ctx)
	}
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("the token source returned an empty token")
	}
	if err == nil {
		lifetime := time.Duration(0)
		if !tok.Expiry.IsZero() {
			lifetime = tok.Expiry.Sub(start)
		}
		c.cur.Store(c.newEntry(tok, lifetime))
		if c.o.onToken != nil {
			c.o.onToken(tok)
		}
	}
	c.mu.Lock()
	if err == nil {
		c.failures, c.lastErr = 0, nil
	} else {
		c.failures++
		c.lastErr = err
		wait := jitter(backoffDelay(c.o.backoffMin, c.o.backoffMax, c.failures))
		c.retryAt = c.o.now().Add(wait)
		c.o.logger.Debug("token fetch failed; backing off", "failures", c.failures, "wait", wait, "err", err)
	}
	c.flight = nil
	c.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// Invalidate drops the cached token: the next call gets a new one.
func (c *CachedSource) Invalidate() { c.cur.Store(nil) }

// InvalidateToken drops the cached token if it is still t (compared by
// access token), e.g. after a server refused t. A newer token that another
// goroutine already obtained is kept.
func (c *CachedSource) InvalidateToken(t *oauth2.Token) {
	if t == nil {
		return
	}
	for {
		e := c.cur.Load()
		if e == nil || e.tok.AccessToken != t.AccessToken {
			return
		}
		if c.cur.CompareAndSwap(e, nil) {
			return
		}
	}
}

// String describes the wrapped source (by its String method, else its type).
func (c *CachedSource) String() string {
	if s, ok := c.src.(fmt.Stringer); ok {
		return "cached " + s.String()
	}
	return fmt.Sprintf("cached %T", c.src)
}

// Format prints the source as String does, for every verb, so that no
// formatting of it can reveal a token.
func (c *CachedSource) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }
