package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/render"
)

// PathCheck is the forward-auth endpoint.
const PathCheck = "/auth/check"

// Check is the forward-auth endpoint for reverse proxies: it reads the
// original request from X-Forwarded-Method and X-Forwarded-Uri (Traefik
// ForwardAuth) or X-Original-Method and X-Original-URI (nginx
// auth_request), applies the same decision as the gateway, and answers 200
// with the identity headers, or the 401/403 refusal.
type Check struct {
	Auth    Authorizer
	Observe func(family, outcome string)
	// Format of error bodies.
	Format render.Format
}

func (c *Check) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !getOnly(w, r, c.Format) {
		return
	}
	uri := r.Header.Get("X-Forwarded-Uri")
	if uri == "" {
		uri = r.Header.Get("X-Original-URI")
	}
	if uri == "" {
		render.Error(w, c.Format.Choose(r.Header.Get("Accept")), gatehouse.ErrInvalidRequest(
			"the original request URI is missing: send X-Forwarded-Uri (Traefik) or X-Original-URI (nginx)"))
		return
	}
	if m := originalMethod(r); m != "" && !validMethod(m) {
		render.Error(w, c.Format.Choose(r.Header.Get("Accept")), gatehouse.ErrInvalidRequest("the original request method %q is not an HTTP method", clip(m)))
		return
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || !strings.HasPrefix(u.Path, "/") {
		render.Error(w, c.Format.Choose(r.Header.Get("Accept")), gatehouse.ErrInvalidRequest("the original request URI %q is not an absolute path", clip(uri)))
		return
	}
	a, err := c.Auth.Authorize(r.Context(), u.EscapedPath(), r.Header.Get("Authorization"))
	if err != nil {
		ge := refusal(err)
		if c.Observe != nil {
			c.Observe("", outcomeOf(ge))
		}
		render.Error(w, c.Format.Choose(r.Header.Get("Accept")), ge)
		return
	}
	if c.Observe != nil {
		c.Observe(a.Match.Family.Name, "allowed")
	}
	a.SetHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// originalMethod is the method the proxy names ("" when none). The
// decision does not depend on it, but a malformed one means the proxy is
// misconfigured, which deserves a clear answer rather than a guess.
func originalMethod(r *http.Request) string {
	if m := r.Header.Get("X-Forwarded-Method"); m != "" {
		return m
	}
	return r.Header.Get("X-Original-Method")
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

func clip(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
