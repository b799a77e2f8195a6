package server

import (
	"net/netip"
	"testing"
	"time"
)

// TestRateLimiterBucketsClientNetworks: one IPv4 address, or one IPv6 /64,
// is one client; an IPv4-mapped IPv6 address is its IPv4 address.
func TestRateLimiterBucketsClientNetworks(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	l := NewRateLimiter(0.001, 2, []netip.Prefix{netip.MustParsePrefix("2001:db8:ffff::/48")})
	allow := func(addr string, want bool) {
		t.Helper()
		if ok, wait := l.Allow(addr, now); ok != want || !ok && wait < time.Second {
			t.Fatalf("Allow(%s) = %t (wait %v), want %t", addr, ok, wait, want)
		}
	}
	allow("2001:db8:1:2::1", true)
	allow("2001:db8:1:2:aaaa:bbbb:cccc:dddd", true) // the same /64: its burst of 2 is spent
	allow("2001:db8:1:2::3", false)
	allow("2001:db8:1:3::1", true) // the next /64 is another client
	allow("192.0.2.1", true)
	allow("::ffff:192.0.2.1", true) // the same IPv4 client
	allow("192.0.2.1", false)
	allow("192.0.2.2", true)
	for range 5 {
		allow("2001:db8:ffff:1::1", true) // exempt
	}
	if ok, _ := l.Allow("2001:db8:1:2::1", now.Add(1000*time.Second)); !ok {
		t.Fatal("the bucket did not refill")
	}
}
