package server

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse"
)

// ClientAddr finds a request's client address: the peer address, or, when
// the peer is a trusted proxy, the right-most address in X-Forwarded-For
// that is not itself a trusted proxy.
type ClientAddr struct {
	Trusted []netip.Prefix
}

// Of returns the client address of r (without port).
func (c ClientAddr) Of(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if len(c.Trusted) == 0 || !c.trusted(peer) {
		return addrString(peer, r.RemoteAddr)
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addrString(peer, r.RemoteAddr)
			}
			a = a.Unmap()
			if !c.trusted(a) {
				return a.String()
			}
		}
	}
	return addrString(peer, r.RemoteAddr)
}

func (c ClientAddr) trusted(a netip.Addr) bool {
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, err := netip.ParseAddr(remote)
		if err != nil {
			return netip.Addr{}
		}
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

func addrString(a netip.Addr, fallback string) string {
	if a.IsValid() {
		return a.String()
	}
	return fallback
}

// RateLimiter limits requests per client network (an IPv4 address, or an
// IPv6 /64: see gatehouse.ClientNetwork) with a token bucket each.
// Addresses in Exempt are not limited.
type RateLimiter struct {
	rate   rate.Limit
	burst  int
	exempt []netip.Prefix

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewRateLimiter allows perSecond requests per address with bursts of
// burst. perSecond <= 0 turns limiting off (returns nil, which allows all).
func NewRateLimiter(perSecond float64, burst int, exempt []netip.Prefix) *RateLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(perSecond*2))
	}
	return &RateLimiter{rate: rate.Limit(perSecond), burst: burst, exempt: exempt, buckets: map[string]*bucket{}}
}

// Allow reports whether a request from addr may go ahead now, and if not,
// how long until it may. Every address of one client network shares one
// bucket.
func (l *RateLimiter) Allow(addr string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		for _, p := range l.exempt {
			if p.Contains(a.Unmap().WithZone("")) {
				return true, 0
			}
		}
	}
	key := gatehouse.ClientNetwork(addr)
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	l.mu.Unlock()
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets addresses idle long enough for their bucket to be full again.
func (l *RateLimiter) sweep(now time.Time) {
	l.swept = now
	idle := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Minute
	for k, b := range l.buckets {
		if now.Sub(b.seen) > idle {
			delete(l.buckets, k)
		}
	}
}
