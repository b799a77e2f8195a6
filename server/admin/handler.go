// Package admin serves gatehouse's administration over HTTP: the admin
// REST API under /api/admin/v1/ (JSON, described by the OpenAPI document
// at /api/admin/v1/openapi.json) and the web console at /api/admin (the
// "SOA Admin" page), both over the administration service auth/admin, so
// that they, the command line and `gatehouse apply` share its rules and
// its audit trail. It holds no business rules of its own: it checks who
// asks, translates, and renders.
package admin

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/store"
)

// Prefix is the path of the console; the API is under APIPrefix.
const Prefix = "/api/admin"

// Options are the parts a Handler is built from.
type Options struct {
	Admin    *admin.Admin
	Store    store.Store
	Verifier *verify.Verifier
	// Issuer checks console sign-ins, with the token endpoints' lockout.
	Issuer *issue.Service
	// Remote is the client address of a request (behind trusted proxies).
	Remote func(*http.Request) string
	// Allow applies the token endpoints' per-address rate limit to console
	// sign-ins; nil: no limit.
	Allow func(r *http.Request) (ok bool, wait time.Duration)
	// Limited audits a sign-in the rate limit refused; may be nil.
	Limited func(ctx context.Context, m issue.Meta)
	// TLS marks the console's cookies Secure.
	TLS bool
	// SessionIdle and SessionMax end a console session after this long
	// without a request, and this long after sign-in.
	SessionIdle, SessionMax time.Duration
	Clock                   gatehouse.Clock
	Log                     *slog.Logger
}

// Handler serves /api/admin and everything under it.
type Handler struct {
	o        Options
	routes   []route
	sessions *consoleSessions
	pages    *pages
}

// Console session defaults.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
)

// New builds the handler.
func New(o Options) *Handler {
	if o.Clock == nil {
		o.Clock = gatehouse.SystemClock
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Remote == nil {
		o.Remote = func(r *http.Request) string { return r.RemoteAddr }
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.SessionMax <= 0 {
		o.SessionMax = DefaultSessionMax
	}
	h := &Handler{o: o}
	h.routes = h.apiRoutes()
	h.sessions = newConsoleSessions(o.Clock, o.SessionIdle, o.SessionMax)
	h.pages = mustPages()
	return h
}

// IsPath reports whether a lower-cased request path is served here.
func IsPath(lower string) bool {
	return lower == Prefix || strings.HasPrefix(lower, Prefix+"/")
}

// ServeHTTP serves the API under APIPrefix and the console elsewhere under Prefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == APIPrefix || strings.HasPrefix(r.URL.Path, APIPrefix+"/") {
		h.serveAPI(w, r)
		return
	}
	h.serveConsole(w, r)
}

// cursorOf makes an opaque cursor of a sort key.
func cursorOf(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }
