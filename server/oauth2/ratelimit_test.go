package oauth2_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/store"
)

// TestSecretCheckingEndpointsRateLimited: introspection and revocation
// check a client secret, so they share the token endpoints' per-address
// limit (429 slow_down, Retry-After, JSON), per client network (IPv6
// /64, IPv4-mapped as IPv4); another address is still served; and the
// refusals are counted into one audit row per address, kind and minute.
func TestSecretCheckingEndpointsRateLimited(t *testing.T) {
	const burst = 3
	f := newFixture(t, func(c *app.Config) {
		// One request per 1000 s: after the burst, every request is limited.
		c.RateLimit, c.RateBurst, c.RateExempt = 0.001, burst, nil
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
	})
	svc := basic("svc", f.svcKey)
	bad := basic("svc", "not-the-key")
	from := func(path, auth, addr string) (int, []byte) {
		t.Helper()
		resp, b := f.form(path, "token=x&grant_type=client_credentials", "Authorization", auth, "X-Forwarded-For", addr)
		if resp.StatusCode == 429 {
			wantError(t, resp, b, 429, "slow_down")
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
		return resp.StatusCode, b
	}
	cases := []struct {
		path       string
		first, bad string // the address spending the burst, and one of the same client
		network    string
	}{
		{"/oauth/introspect", "198.51.100.1", "::ffff:198.51.100.1", "198.51.100.1"},
		{"/oauth/revoke", "2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2::/64"},
		{"/oauth/token", "198.51.100.3", "198.51.100.3", "198.51.100.3"},
	}
	for _, tc := range cases {
		for i := range burst {
			if code, b := from(tc.path, bad, tc.first); code != 401 {
				t.Fatalf("%s: failed client auth %d from %s: %d %s", tc.path, i, tc.first, code, b)
			}
		}
		for range 5 {
			if code, b := from(tc.path, bad, tc.bad); code != 429 {
				t.Fatalf("%s: request over the limit from %s: %d %s", tc.path, tc.bad, code, b)
			}
		}
		// Even the right secret waits: the limit is per address.
		if code, _ := from(tc.path, svc, tc.first); code != 429 {
			t.Fatalf("%s: right secret over the limit: %d", tc.path, code)
		}
		// A legitimate client at another address is served.
		if code, b := from(tc.path, svc, "198.51.100.200"); code == 429 || code >= 500 {
			t.Fatalf("%s: another address: %d %s", tc.path, code, b)
		}
	}
	// The next /64 is another client.
	if code, _ := from("/oauth/introspect", svc, "2001:db8:1:3::1"); code != 200 {
		t.Fatalf("another /64: %d", code)
	}

	ctx := context.Background()
	if err := f.App.Service.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := f.App.Store.ListAudit(ctx, store.AuditFilter{Action: "token.refuse"})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ remote, detail string }
	got := map[row]int{}
	rows := map[row]int{}
	for _, ev := range evs {
		r := row{ev.Remote, ev.Detail}
		got[r] += ev.Count
		rows[r]++
	}
	for _, tc := range cases {
		via := "oauth." + strings.TrimPrefix(tc.path, "/oauth/")
		for r, n := range map[row]int{
			{tc.network, via + "/client_auth: unknown_key"}: burst,
			{tc.network, via + ": rate_limited"}:            6,
		} {
			if got[r] != n || rows[r] != 1 {
				t.Errorf("%+v: %d refusals in %d rows, want %d in one", r, got[r], rows[r], n)
			}
		}
	}
	if t.Failed() {
		t.Logf("refusal rows: %v", got)
	}
}

// TestRefusalFloodIsCounted: a flood of failed client authentications
// (no rate limit in the way) adds one audit row per endpoint, whose count
// is the number of refusals — not a row per request.
func TestRefusalFloodIsCounted(t *testing.T) {
	f := newFixture(t) // loopback is exempt from the rate limit
	bad := basic("svc", "not-the-key")
	const n = 300
	for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
		for range n {
			if resp, b := f.form(path, "token=x", "Authorization", bad); resp.StatusCode != 401 {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
			}
		}
	}
	ctx := context.Background()
	if err := f.App.Service.FlushRefusals(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := f.App.Store.ListAudit(ctx, store.AuditFilter{Action: "token.refuse"})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, ev := range evs {
		counts[ev.Detail] += ev.Count
	}
	// One minute may end during the flood: then a kind has two rows.
	if len(evs) < 2 || len(evs) > 4 || counts["oauth.introspect/client_auth: unknown_key"] != n ||
		counts["oauth.revoke/client_auth: unknown_key"] != n {
		t.Fatalf("%d rows for %d refusals: %v", len(evs), 2*n, counts)
	}
}
