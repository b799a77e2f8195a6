package gateway

import (
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
)

func TestForwardPathDotSegments(t *testing.T) {
	for _, tc := range []struct{ sent, want string }{
		{"/api/x/..", "/api"},
		{"/api/x/../", "/api/"},
		{"/api/x/.", "/api/x"},
		{"/api/./x/", "/api/x/"},
		{"/api/../../..", "/"},
		{"/api/%2E/a%20b//c%3Bd/%2e%2e/e", "/api/a%20b/e"},
		{"/api/a%2Bb/.%2e/c%2Bd", "/api/c%2Bd"},
	} {
		u, err := url.ParseRequestURI(tc.sent)
		if err != nil {
			t.Fatal(err)
		}
		clean, err := policy.CleanPath(u.EscapedPath())
		if err != nil {
			t.Fatal(err)
		}
		p, raw := forwardPath(u, clean)
		if raw != tc.want || p != clean {
			t.Errorf("%s: forwarded %q (%q), want %q (%q)", tc.sent, raw, p, tc.want, clean)
		}
	}
}

// FuzzForwardPath checks what forwarding promises: the path sent upstream
// is the one the decision judged, once cleaned; without dot segments it is
// the client's escaped path exactly.
func FuzzForwardPath(f *testing.F) {
	for _, s := range []string{"/api/entity/a%2Bb", "/API/Entity//X/", "/api/%2e%2e/x", "/a/./b/../c/", "/%c3%a9/..", "/a/%2E%2e%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.ParseRequestURI(s)
		if err != nil {
			return
		}
		clean, err := policy.CleanPath(u.EscapedPath())
		if err != nil {
			return
		}
		p, raw := forwardPath(u, clean)
		sent := raw
		if raw == "" {
			sent = (&url.URL{Path: p}).EscapedPath()
		} else if d, err := url.PathUnescape(raw); err != nil || d != p {
			t.Fatalf("%q: escaped %q does not decode to %q", s, raw, p)
		}
		if c, err := policy.CleanPath(sent); err != nil || c != clean {
			t.Fatalf("%q: forwarded %q cleans to %q (%v), the decision judged %q", s, sent, c, err, clean)
		}
		if !hasDotSegment(strings.Split(u.EscapedPath(), "/")) && raw != u.EscapedPath() {
			t.Fatalf("%q: no dot segments, yet forwarded %q", s, raw)
		}
	})
}
