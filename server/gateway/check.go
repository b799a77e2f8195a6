package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/wire"
)

// Mode is how a forward-auth endpoint learns the original request.
type Mode int

// The forward-auth modes.
const (
	ModeCheck     Mode = iota // X-Original-* or X-Forwarded-*, never two different ones
	ModeNginx                 // X-Original-* only
	ModeForwarded             // X-Forwarded-* only (Traefik, Caddy)
	ModeEnvoy                 // the check request's own method and path
)

// ModeOf returns the forward-auth mode of a lower-cased request path, and
// whether it is a forward-auth endpoint at all.
func ModeOf(lower string) (Mode, bool) {
	switch strings.TrimSuffix(lower, "/") {
	case wire.PathCheck:
		return ModeCheck, true
	case wire.PathNginx:
		return ModeNginx, true
	case wire.PathTraefik, wire.PathCaddy:
		return ModeForwarded, true
	case wire.PathEnvoy:
		return ModeEnvoy, true
	}
	if strings.HasPrefix(lower, wire.PathEnvoy+"/") {
		return ModeEnvoy, true
	}
	return 0, false
}

// Check is the forward-auth endpoint for reverse proxies. It learns the
// original request as its Mode says, applies the same decision as the
// gateway, and answers only:
//
//   - 200 with the identity headers (every one, also when empty), when
//     the request may proceed;
//   - 401 when the token is missing, invalid or its session has ended
//     (checked first, before anything about the path);
//   - 403 for every other refusal: scope and permissions, a path that is
//     not canonical, a path no API family claims, a malformed or
//     ambiguous report of the original request, a client-sent identity or
//     path-override header;
//   - 503 only when the store cannot answer.
//
// Proxies turn anything else into a 500 (nginx auth_request) or pass it on
// as if it were the API's answer.
type Check struct {
	Auth    Authorizer
	Observe func(family, outcome string)
	// Format of error bodies.
	Format render.Format
	// Mode is used for wire.PathCheck; the other paths fix their own (see
	// ModeOf).
	Mode Mode
}

func (c *Check) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode, ok := ModeOf(strings.ToLower(r.URL.Path))
	if !ok {
		mode = c.Mode
	}
	f := c.Format.Choose(r.Header.Get("Accept"))
	req, reqErr := original(r, mode)
	req.Authorization = r.Header.Values("Authorization")
	if reqErr != nil {
		// Still ask about the token first: its refusal comes before any
		// about the request.
		req.Path, req.Query = "", ""
	}
	a, err := c.Auth.Authorize(r.Context(), req)
	if err != nil {
		ge := refusal(err)
		if reqErr != nil && ge.Status != http.StatusUnauthorized && ge.Status != http.StatusServiceUnavailable {
			ge = reqErr
		}
		c.refuse(w, f, ge)
		return
	}
	if reqErr != nil {
		c.refuse(w, f, reqErr)
		return
	}
	if h := smuggled(r.Header); h != "" {
		c.refuse(w, f, forbidden("The request carries the header %s, which only gatehouse or the proxy may set.", gatehouse.Clip(h, 200)))
		return
	}
	if c.Observe != nil {
		c.Observe(a.Match.Family.Name, "allowed")
	}
	setIdentity(w.Header(), a)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (c *Check) refuse(w http.ResponseWriter, f render.Format, ge *gatehouse.Error) {
	switch ge.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusServiceUnavailable:
	default:
		// 400 (cannot be judged), 404 (no family): a proxy only passes on
		// 401 and 403.
		cp := *ge
		cp.Status = http.StatusForbidden
		ge = &cp
	}
	if c.Observe != nil {
		c.Observe("", outcomeOf(ge))
	}
	render.Error(w, f, ge)
}

func forbidden(format string, args ...any) *gatehouse.Error {
	e := gatehouse.ErrInvalidRequest(format, args...)
	e.Status = http.StatusForbidden
	return e
}

// Headers that name the original request: what proxies set, and what some
// servers route by (IIS, Symfony: X-Original-URL, X-Rewrite-URL).
var (
	uriHeaders    = []string{"X-Original-Uri", "X-Forwarded-Uri"}
	methodHeaders = []string{"X-Original-Method", "X-Forwarded-Method"}
)

// original reads the original request the proxy reports, as mode says.
// Each header read must appear at most once; in every mode, the
// X-Original-* and X-Forwarded-* pairs, when both present, must agree.
func original(r *http.Request, mode Mode) (policy.Request, *gatehouse.Error) {
	var uri, method string
	switch mode {
	case ModeEnvoy:
		target := r.RequestURI
		if len(target) < len(wire.PathEnvoy) || !strings.EqualFold(target[:len(wire.PathEnvoy)], wire.PathEnvoy) {
			return policy.Request{}, forbidden("The check request is not under %s.", wire.PathEnvoy)
		}
		uri, method = target[len(wire.PathEnvoy):], r.Method
		if uri == "" || uri[0] != '/' {
			return policy.Request{}, forbidden("The check request names no original path after %s.", wire.PathEnvoy)
		}
	case ModeNginx, ModeForwarded, ModeCheck:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return policy.Request{}, forbidden("The check is asked with GET; %s is not allowed.", gatehouse.Clip(r.Method, 200))
		}
	}
	got := map[string]string{}
	for _, h := range append(uriHeaders, methodHeaders...) {
		vs := r.Header.Values(h)
		if len(vs) > 1 {
			return policy.Request{}, forbidden("The check request carries %s more than once.", h)
		}
		if len(vs) == 1 {
			got[h] = vs[0]
		}
	}
	for _, pair := range [][]string{uriHeaders, methodHeaders} {
		a, aok := got[pair[0]]
		b, bok := got[pair[1]]
		if aok && bok && a != b {
			return policy.Request{}, forbidden("The check request carries %s and %s with different values.", pair[0], pair[1])
		}
	}
	switch mode {
	case ModeNginx:
		uri, method = got["X-Original-Uri"], got["X-Original-Method"]
		if uri == "" {
			return policy.Request{}, forbidden("X-Original-URI is missing: the proxy must send the original request URI (nginx: proxy_set_header X-Original-URI $request_uri).")
		}
	case ModeForwarded:
		uri, method = got["X-Forwarded-Uri"], got["X-Forwarded-Method"]
		if uri == "" {
			return policy.Request{}, forbidden("X-Forwarded-Uri is missing: the proxy must send the original request URI.")
		}
	case ModeCheck:
		uri, method = got["X-Original-Uri"], got["X-Original-Method"]
		if uri == "" {
			uri, method = got["X-Forwarded-Uri"], got["X-Forwarded-Method"]
		}
		if method == "" {
			method = got["X-Forwarded-Method"]
		}
		if uri == "" {
			return policy.Request{}, forbidden("The original request URI is missing: send X-Original-URI (nginx) or X-Forwarded-Uri (Traefik, Caddy).")
		}
	case ModeEnvoy:
		for _, h := range uriHeaders {
			if v, ok := got[h]; ok && v != uri {
				return policy.Request{}, forbidden("The check request carries %s, which differs from the request path.", h)
			}
		}
	}
	if method != "" && !validMethod(method) {
		return policy.Request{}, forbidden("The original request method %q is not an HTTP method.", gatehouse.Clip(method, 200))
	}
	path, query, _ := strings.Cut(uri, "?")
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		// An absolute URI: judge its path as sent.
		u, err := url.Parse(path)
		if err != nil {
			return policy.Request{}, forbidden("The original request URI %q cannot be read.", gatehouse.Clip(uri, 200))
		}
		path = u.EscapedPath()
	}
	return policy.Request{Path: path, Query: query}, nil
}

// smuggled returns the name of a client header that must never reach an
// upstream through a proxy: one that folds to an identity header, or one
// that some servers route by instead of the request line. Forward-auth
// cannot remove headers from the proxied request, so it refuses.
func smuggled(h http.Header) string {
	for k := range h {
		if wire.IsIdentityHeader(k) || isPathOverride(k) {
			return k
		}
	}
	return ""
}

// pathOverrides are headers that servers read as the request's path
// (IIS URL Rewrite, Symfony, Zend: X-Original-URL, X-Rewrite-URL), compared
// with "_" folded to "-" and case ignored.
var pathOverrides = []string{"x-original-url", "x-rewrite-url"}

func isPathOverride(name string) bool {
	f := foldName(name)
	for _, p := range pathOverrides {
		if f == p {
			return true
		}
	}
	return false
}

// foldName lower-cases a header name and folds "_" to "-", as CGI-style
// servers read names.
func foldName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for _, c := range m {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
