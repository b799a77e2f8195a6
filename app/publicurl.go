package app

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// PublicURL is the one URL the server is known by: the issuer and endpoints
// of its RFC 8414 metadata, the iss of OAuth2 tokens (unless
// --oauth-issuer), the UI router's default answers, the start-up log and
// the --dev examples. It is explicit (--public-url), checked and without a
// trailing slash; or else made from bound, the address the listener is
// bound to, so that the port is the real one (--addr :0 included):
//
//   - an address bound on every interface (0.0.0.0, ::, or a bare ":port")
//     names no host a client could use; it becomes "localhost", which
//     reaches the server from this machine (and through a container's
//     published port) and is plainly wrong elsewhere, where --public-url
//     is needed anyway;
//   - a specific address is used as it is (IPv6 in brackets);
//   - the scheme's default port (80 for http, 443 for https) is left out, as
//     clients write the URL.
func PublicURL(explicit, bound string, tls bool) (string, error) {
	if explicit != "" {
		return checkPublicURL(explicit)
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", bound, err)
	}
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		host = "localhost"
	} else if err == nil {
		host = a.Unmap().WithZone("").String()
	}
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		if strings.Contains(host, ":") {
			return scheme + "://[" + host + "]", nil
		}
		return scheme + "://" + host, nil
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// checkPublicURL accepts an absolute http(s) URL with a host and without
// user info, query or fragment, which would make every URL built on it
// wrong; it returns it without a trailing slash.
func checkPublicURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("--public-url %q is not a URL: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("--public-url %q: the scheme must be http or https", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("--public-url %q has no host", s)
	case u.User != nil:
		return "", fmt.Errorf("--public-url must not hold user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("--public-url %q must not have a query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}
