// Package server assembles gatehouse's HTTP surface: it routes requests to
// the protocol handlers and wraps them in the cross-cutting parts (panic
// recovery, request ids, a trace span per request, access logs, metrics,
// per-address rate limits, security headers, health, readiness and the
// OpenAPI document).
package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server/gateway"
	"github.com/gatehouse/gatehouse/server/oauth2"
	"github.com/gatehouse/gatehouse/server/openapi"
	"github.com/gatehouse/gatehouse/server/p21"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/wire"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Pinger reports whether the store can be read.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options are the parts a Server is built from.
type Options struct {
	P21 *p21.Handler
	// OAuth2 serves /oauth/… and /.well-known/….
	OAuth2 *oauth2.Handler
	// Store is pinged by /readyz.
	Store Pinger
	// Keys must hold a key ring for /readyz to answer ready.
	Keys *token.Ring
	// Format is the --token-format setting, used for errors of gatehouse's own routes.
	Format      render.Format
	RateLimiter *RateLimiter // nil: no limit
	// Limited audits a request the rate limit refused; may be nil.
	Limited    func(ctx context.Context, m issue.Meta)
	ClientAddr ClientAddr
	Metrics    *Metrics
	Log        *slog.Logger
	Clock      gatehouse.Clock
	// AccessLog logs every request at info level (else at debug level).
	AccessLog bool
	// Tracing starts a span per request on the global OpenTelemetry
	// provider, the parent of the spans the request's work starts; without
	// it there are none, at no cost.
	Tracing bool
	// HSTS sets Strict-Transport-Security (when serving TLS).
	HSTS bool
	// Published is served at wire.PathConfiguration for resource servers
	// that decide in-process (nil: not served).
	Published *policy.Configuration
	// Check serves the forward-auth endpoints (/auth/check, /auth/nginx,
	// /auth/traefik, /auth/caddy, /auth/envoy/…); Router the UI server
	// router (/api/ui/router/v1); Gateway takes every other path.
	Check, Router, Gateway http.Handler
	// Admin serves the admin console and REST API (/api/admin, /api/admin/…),
	// which gatehouse answers itself, never the gateway's api family.
	Admin http.Handler
}

// Server is gatehouse's root HTTP handler.
type Server struct {
	o Options
}

// New builds the root handler.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = gatehouse.SystemClock
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	return &Server{o: o}
}

// route names label metrics; the set is fixed so labels stay bounded.
func routeOf(lower string) string {
	switch {
	case lower == "/healthz":
		return "healthz"
	case lower == "/readyz":
		return "readyz"
	case lower == "/metrics":
		return "metrics"
	case strings.TrimSuffix(lower, "/") == openapi.Path:
		return "openapi"
	case strings.TrimSuffix(lower, "/") == p21.PathV2:
		return "p21_token_v2"
	case strings.TrimSuffix(lower, "/") == p21.PathV1:
		return "p21_token_v1"
	case strings.HasPrefix(lower, p21.PathPrefix):
		return "p21_other"
	case strings.TrimSuffix(lower, "/") == wire.PathConfiguration:
		return "configuration"
	case strings.TrimSuffix(lower, "/") == oauth2.PathToken:
		return "oauth_token"
	case strings.HasPrefix(lower, oauth2.PathPrefix):
		return "oauth_other"
	case strings.HasPrefix(lower, oauth2.WellKnown):
		return "well_known"
	case isForwardAuth(lower):
		return "auth_check"
	case gateway.IsRouterPath(lower):
		return "ui_router"
	case lower == "/api/admin" || strings.HasPrefix(lower, "/api/admin/"):
		return "admin"
	}
	return "gateway"
}

// tracer starts the span of every request; a no-op unless tracing is on
// (package tracing).
var tracer = otel.Tracer("github.com/gatehouse/gatehouse/server")

// noSpan is the span of a request when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.o.Clock.Now()
	lower := strings.ToLower(r.URL.Path)
	route := routeOf(lower)
	sw := &statusWriter{ResponseWriter: w}
	h := sw.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if s.o.HSTS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	// The request's id: the client's when well-formed, else a new one. It
	// is in every answer, every log line and audit row of the request, and
	// in what the gateway sends upstream.
	id := r.Header.Get(gatehouse.HeaderRequestID)
	if !gatehouse.ValidRequestID(id) {
		id = gatehouse.NewRequestID()
	}
	h.Set(gatehouse.HeaderRequestID, id)
	ctx := gatehouse.WithRequestID(r.Context(), id)
	span := noSpan
	if s.o.Tracing {
		// A W3C traceparent from the client is the parent of the request's span.
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
	}
	r = r.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				span.End()
				panic(p)
			}
			// The stack names code locations only; request data is not in it.
			s.o.Log.ErrorContext(ctx, "panic while serving", "route", route, "panic", p, "stack", string(debug.Stack()))
			if !sw.wrote {
				render.Error(sw, render.JSON, &gatehouse.Error{Status: http.StatusInternalServerError,
					Code: gatehouse.CodeServerError, Description: "internal error"})
			}
		}
		d := s.o.Clock.Now().Sub(start)
		s.o.Metrics.observe(route, r.Method, sw.status(), d)
		lvl := slog.LevelDebug
		if s.o.AccessLog {
			lvl = slog.LevelInfo
		}
		// Never the query string or headers: they may carry credentials.
		if s.o.Log.Enabled(ctx, lvl) {
			s.o.Log.Log(ctx, lvl, "request", "method", r.Method, "path", gatehouse.Clip(r.URL.Path, 200),
				"status", sw.status(), "bytes", sw.n, "duration", d, "remote", s.o.ClientAddr.Of(r))
		}
		if span.IsRecording() {
			span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route),
				attribute.String("url.path", gatehouse.Clip(r.URL.Path, 200)), attribute.Int("http.response.status_code", sw.status()),
				attribute.String("gatehouse.request_id", id))
			if sw.status() >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status()))
			}
		}
		span.End()
	}()
	s.route(sw, r, lower, route)
}

// isForwardAuth reports whether a lower-cased path is a forward-auth
// endpoint (/auth/check, /auth/nginx, …).
func isForwardAuth(lower string) bool {
	_, ok := gateway.ModeOf(lower)
	return ok
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, lower, route string) {
	// The gateway and forward-auth judge the path themselves (after the
	// token, and answering as their proxies need); gatehouse's own routes
	// need no encoded separator.
	if route != "gateway" && route != "auth_check" && encodedSeparator(r) {
		// An encoded / or \ would let the decoded path differ from what a
		// proxy in front of us matched on; no route of ours needs one.
		render.Error(w, s.o.Format.Choose(r.Header.Get("Accept")), gatehouse.ErrInvalidRequest(
			"the request path contains an encoded slash or backslash (%%2F, %%5C)"))
		return
	}
	switch route {
	case "healthz":
		render.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	case "readyz":
		s.ready(w, r)
		return
	case "metrics":
		s.o.Metrics.Handler().ServeHTTP(w, r)
		return
	case "openapi":
		openapi.Serve(w, r, s.o.Format.Choose(r.Header.Get("Accept")))
		return
	case "p21_token_v2", "p21_token_v1", "p21_other":
		if s.o.P21 == nil {
			break
		}
		if route == "p21_token_v1" && s.o.P21.V1 {
			p21.MarkDeprecated(w.Header()) // on a 429 too
		}
		if route != "p21_other" && !s.allow(w, r) {
			return
		}
		s.o.P21.ServeHTTP(w, r)
		return
	case "oauth_token", "oauth_other", "well_known":
		if s.o.OAuth2 == nil {
			break
		}
		// OAuth2 errors are always JSON (RFC 6749 §5.2). Every endpoint
		// that checks a client secret shares the token endpoints' limit.
		if checksClientSecret(lower) && !s.allowAs(w, r, render.JSON) {
			return
		}
		s.o.OAuth2.ServeHTTP(w, r)
		return
	case "configuration":
		if s.o.Published == nil {
			break
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e := gatehouse.ErrInvalidRequest("method %s is not allowed; use GET", gatehouse.Clip(r.Method, 200))
			e.Status = http.StatusMethodNotAllowed
			render.Error(w, render.JSON, e.WithHeader("Allow", "GET, HEAD"))
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		render.WriteJSON(w, http.StatusOK, s.o.Published)
		return
	case "auth_check":
		if s.o.Check != nil {
			s.o.Check.ServeHTTP(w, r)
			return
		}
	case "ui_router":
		if s.o.Router != nil {
			s.o.Router.ServeHTTP(w, r)
			return
		}
	case "admin":
		if s.o.Admin != nil {
			s.o.Admin.ServeHTTP(w, r)
			return
		}
	case "gateway":
		if s.o.Gateway != nil {
			s.o.Gateway.ServeHTTP(w, r)
			return
		}
	}
	render.Error(w, s.o.Format.Choose(r.Header.Get("Accept")), &gatehouse.Error{Status: http.StatusNotFound,
		Code: gatehouse.CodeNotFound, Description: "There is no endpoint " + gatehouse.Clip(r.URL.Path, 200) + " on this server"})
}

// checksClientSecret reports whether an /oauth/… path is one of the
// endpoints that authenticate the client.
func checksClientSecret(lower string) bool {
	switch strings.TrimSuffix(lower, "/") {
	case oauth2.PathToken, oauth2.PathIntrospect, oauth2.PathRevoke:
		return true
	}
	return false
}

// allow applies the per-address rate limit of token endpoints.
func (s *Server) allow(w http.ResponseWriter, r *http.Request) bool {
	return s.allowAs(w, r, s.o.Format.Choose(r.Header.Get("Accept")))
}

// allowAs is allow answering a refusal in format f.
func (s *Server) allowAs(w http.ResponseWriter, r *http.Request, f render.Format) bool {
	remote := s.o.ClientAddr.Of(r)
	ok, wait := s.o.RateLimiter.Allow(remote, s.o.Clock.Now())
	if ok {
		return true
	}
	// The metrics flow label, and the endpoint the audit trail names.
	flow, via := oauth2.FlowUnknown, "oauth.token"
	switch p := strings.TrimSuffix(strings.ToLower(r.URL.Path), "/"); {
	case p == p21.PathV2:
		flow, via = p21.FlowUnknownV2, "p21.v2"
	case p == p21.PathV1:
		flow, via = p21.FlowUnknownV1, "p21.v1"
	case p == oauth2.PathIntrospect:
		flow, via = "oauth.introspect", "oauth.introspect"
	case p == oauth2.PathRevoke:
		flow, via = "oauth.revoke", "oauth.revoke"
	}
	if s.o.Metrics != nil {
		s.o.Metrics.Token(flow, "limited")
	}
	if s.o.Limited != nil {
		s.o.Limited(r.Context(), issue.Meta{Remote: remote, Via: via})
	}
	render.Error(w, f, &gatehouse.Error{
		Status: http.StatusTooManyRequests, Code: gatehouse.CodeSlowDown,
		Description: "Too many requests from this client address; retry later.", RetryAfter: max(wait, time.Second)})
	return false
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{"store": "ok", "keys": "ok"}
	ok := true
	if s.o.Store != nil {
		if err := s.o.Store.Ping(ctx); err != nil {
			status["store"], ok = "unreachable", false
		}
	}
	if s.o.Keys == nil || s.o.Keys.Load() == nil {
		status["keys"], ok = "not loaded", false
	}
	if !ok {
		w.Header().Set("Retry-After", "2")
		render.WriteJSON(w, http.StatusServiceUnavailable, status)
		return
	}
	render.WriteJSON(w, http.StatusOK, status)
}

// encodedSeparator reports whether the raw request path holds %2F or %5C.
func encodedSeparator(r *http.Request) bool {
	raw := r.URL.RawPath
	if raw == "" {
		return false
	}
	raw = strings.ToLower(raw)
	return strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c")
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	code  int
	n     int64
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// deadlines) through this wrapper.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through, for streamed responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
