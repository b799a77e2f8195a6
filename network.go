package gatehouse

import "net/netip"

// IPv6ClientBits is the prefix length of the IPv6 network counted as one
// client: providers hand every subscriber at least a /64, so counting per
// /128 would give one client 2^64 separate budgets.
const IPv6ClientBits = 64

// ClientNetwork names the unit that rate limits and refusal counts apply
// to: an IPv4 address as it is (an IPv4-mapped IPv6 address is its IPv4
// address), an IPv6 address as its /64 ("2001:db8:1:2::/64", zone
// dropped). A string that is not an IP address is returned unchanged.
func ClientNetwork(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(IPv6ClientBits)
	if err != nil {
		return addr
	}
	return p.String()
}
