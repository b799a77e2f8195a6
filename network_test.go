package gatehouse

import "testing"

func TestClientNetwork(t *testing.T) {
	cases := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"}, // IPv4-mapped: the IPv4 client
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"}, // same /64
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},                  // the next /64 is another client
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"", ""},
		{"not-an-address", "not-an-address"},
	}
	for _, c := range cases {
		if got := ClientNetwork(c.in); got != c.want {
			t.Errorf("ClientNetwork(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
