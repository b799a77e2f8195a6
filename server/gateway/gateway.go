// Package gateway enforces gatehouse's authorization decision in front of
// real APIs: as a reverse proxy (Gateway), as forward-auth checks for
// nginx, Traefik, Caddy and Envoy (Check), and it serves the P21 UI server
// router (Router), whose answer is itself bearer-protected.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/wire"
)

// Authorizer is the decision the enforcement points apply.
type Authorizer interface {
	Authorize(ctx context.Context, req policy.Request) (*verify.Authorization, error)
}

// RequestOf is what the decision is asked about an incoming request: its
// path and query exactly as the client sent them on the request line, and
// every Authorization header.
func RequestOf(r *http.Request) policy.Request {
	path, query := r.URL.EscapedPath(), r.URL.RawQuery
	if t := r.RequestURI; strings.HasPrefix(t, "/") {
		// The origin form, as sent (absolute forms and "*" keep the
		// URL's own reading).
		path, query, _ = strings.Cut(t, "?")
	}
	return policy.Request{Path: path, Query: query, Authorization: r.Header.Values("Authorization")}
}

// ParseUpstreams reads FAMILY=URL settings (--upstream). Families must
// exist in known; URLs must be absolute http(s) URLs without query or
// fragment.
func ParseUpstreams(specs []string, known func(string) bool) (map[string]*url.URL, error) {
	out := map[string]*url.URL{}
	for _, s := range specs {
		fam, raw, ok := strings.Cut(s, "=")
		fam = strings.ToLower(strings.TrimSpace(fam))
		raw = strings.TrimSpace(raw)
		if !ok || fam == "" || raw == "" {
			return nil, fmt.Errorf("upstream %q is not FAMILY=URL", s)
		}
		if !known(fam) {
			return nil, fmt.Errorf("upstream %q: there is no API family %q", s, fam)
		}
		if _, dup := out[fam]; dup {
			return nil, fmt.Errorf("upstream for family %q given twice", fam)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("upstream %q: %q is not an http(s) URL without query", s, raw)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		out[fam] = u
	}
	return out, nil
}

// Gateway reverse-proxies allowed requests to the upstream of their family,
// with the path and query exactly as the client sent them (the path is
// canonical, or the request was refused), the identity headers added, and
// every client header that could pass for one, or that some servers route
// by, removed.
type Gateway struct {
	auth      Authorizer
	proxies   map[string]*httputil.ReverseProxy
	log       *slog.Logger
	observe   func(family, outcome string)
	upstreams map[string]*url.URL
	format    render.Format
	maxBody   int64
}

// Options configure a Gateway.
type Options struct {
	// Upstreams maps family names to upstream base URLs.
	Upstreams map[string]*url.URL
	// Handlers maps family names to upstreams served in-process (the
	// sandbox): the same proxy, rewrite and identity headers as a URL
	// upstream, with the round trip calling the handler instead of a
	// connection. A family must not be in both maps (the caller's
	// configuration error; see Conflicts).
	Handlers map[string]http.Handler
	// Timeout bounds the wait for an upstream's response headers (504 after).
	Timeout time.Duration
	// MaxBody caps request bodies sent upstream (413 above it); 0 for no cap.
	MaxBody int64
	Log     *slog.Logger
	// Observe counts decisions by family and outcome; may be nil.
	Observe func(family, outcome string)
	// Format of error bodies: JSON, XML, or chosen by Accept (Negotiate).
	Format render.Format
}

type ctxKey struct{}

// proxied is what the proxy's hooks need of an allowed request.
type proxied struct {
	a    *verify.Authorization
	body *bodyReader // nil without a body
}

// NewGateway builds the proxy.
func NewGateway(a Authorizer, o Options) *Gateway {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	ups := make(map[string]*url.URL, len(o.Upstreams)+len(o.Handlers))
	for fam, up := range o.Upstreams {
		ups[fam] = up
	}
	for fam := range o.Handlers {
		ups[fam] = inProcessURL
	}
	g := &Gateway{auth: a, proxies: map[string]*httputil.ReverseProxy{}, log: o.Log, observe: o.Observe,
		upstreams: ups, format: o.Format, maxBody: o.MaxBody}
	tr := &http.Transport{
		Proxy:                 nil, // never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	for fam, up := range ups {
		up, upEscaped := up, strings.TrimSuffix(up.EscapedPath(), "/")
		var rt http.RoundTripper = tr
		if h := o.Handlers[fam]; h != nil {
			rt = handlerTransport{h}
		}
		g.proxies[fam] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				a := pr.In.Context().Value(ctxKey{}).(*proxied).a
				pr.Out.URL.Scheme, pr.Out.URL.Host = up.Scheme, up.Host
				// The path judged, spelled as the client spelled it.
				pr.Out.URL.Path, pr.Out.URL.RawPath = up.Path+a.Path, upEscaped+a.EscapedPath
				// The query as sent: ReverseProxy drops parameters it cannot
				// parse (a ";" separator, say) from Out; the upstream gets it
				// whole, as the decision read it.
				pr.Out.URL.RawQuery = pr.In.URL.RawQuery
				pr.Out.Host = up.Host
				pr.SetXForwarded()
				stripRouting(pr.Out.Header)
				setIdentity(pr.Out.Header, a)
				if id := gatehouse.RequestID(pr.In.Context()); id != "" {
					pr.Out.Header.Set(gatehouse.HeaderRequestID, id)
				}
			},
			Transport:    tracedTransport{rt: rt, family: fam},
			ErrorHandler: g.upstreamError,
			ErrorLog:     slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
		}
	}
	return g
}

// routingHeaders are client headers that some servers read as the
// request's path instead of the request line (IIS URL Rewrite, Symfony,
// Zend: X-Original-URL, X-Rewrite-URL), or that forward-auth proxies use to
// report it; the gateway never forwards them. Names compare with "_"
// folded to "-", case ignored.
var routingHeaders = map[string]bool{
	"x-original-url": true, "x-rewrite-url": true, "x-original-uri": true,
	"x-forwarded-uri": true, "x-forwarded-path": true, "x-original-method": true, "x-forwarded-method": true,
}

// setIdentity writes the identity headers of a into h, every one of them,
// also when empty (so that a proxy copying them always overwrites), after
// removing any header that wire.IsIdentityHeader.
func setIdentity(h http.Header, a *verify.Authorization) {
	wire.StripIdentityHeaders(h)
	h.Set(wire.HeaderUser, a.ActingUser)
	h.Set(wire.HeaderConsumerUID, a.Identity.ConsumerUID())
	h.Set(wire.HeaderSessionID, a.Identity.Claims.SessionID)
	h.Set(wire.HeaderScope, a.Identity.Claims.Audience)
	h.Set(wire.HeaderFamily, a.Match.Family.Name)
}

func stripRouting(h http.Header) {
	for k := range h {
		if routingHeaders[foldName(k)] {
			delete(h, k)
		}
	}
}

// Families lists the families with an upstream, sorted.
func (g *Gateway) Families() []string {
	out := make([]string, 0, len(g.upstreams))
	for f := range g.upstreams {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, err := g.auth.Authorize(r.Context(), RequestOf(r))
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	p := g.proxies[a.Match.Family.Name]
	if p == nil {
		g.count(a.Match.Family.Name, "no_upstream")
		render.Error(w, g.format.Choose(r.Header.Get("Accept")), &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
			Description: fmt.Sprintf("The %s API family has no upstream on this server.", a.Match.Family.Name)})
		return
	}
	if g.maxBody > 0 && r.ContentLength > g.maxBody {
		g.count(a.Match.Family.Name, "body_too_large")
		render.Error(w, g.format.Choose(r.Header.Get("Accept")), errBodyTooLarge(g.maxBody))
		return
	}
	px := &proxied{a: a}
	if r.Body != nil && r.Body != http.NoBody {
		body := r.Body
		if g.maxBody > 0 {
			body = http.MaxBytesReader(w, body, g.maxBody)
		}
		px.body = &bodyReader{rc: body}
		r.Body = px.body
	}
	g.count(a.Match.Family.Name, "allowed")
	// Let request and response bodies stream at the same time (HTTP/1.1
	// servers otherwise drain the request before the response starts).
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, px)))
}

func errBodyTooLarge(n int64) *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusRequestEntityTooLarge, Code: gatehouse.CodeInvalidRequest,
		Description: fmt.Sprintf("The request body is larger than %d bytes.", n)}
}

// bodyReader remembers the first error reading the client's body, so that
// a failed proxy round trip can be told apart: the client's fault (bad
// framing, a body over the cap, a disconnect) or the upstream's.
type bodyReader struct {
	rc  io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }

func (b *bodyReader) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (g *Gateway) count(family, outcome string) {
	if g.observe != nil {
		g.observe(family, outcome)
	}
}

func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, err error) {
	ge := refusal(err)
	g.count("", outcomeOf(ge))
	render.Error(w, g.format.Choose(r.Header.Get("Accept")), ge)
}

func outcomeOf(e *gatehouse.Error) string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "bad_request"
}

// upstreamError answers a failed round trip. The client's faults come
// first: a body over the cap is 413, a body that cannot be read (bad
// chunked framing, say) 400, a client that went away gets no answer; they
// are logged at debug level as the client's. Then 504 when the upstream did
// not answer in time, and 502 when it could not be reached or broke the
// connection.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	fam := ""
	px, _ := r.Context().Value(ctxKey{}).(*proxied)
	if px != nil {
		fam = px.a.Match.Family.Name
	}
	f := g.format.Choose(r.Header.Get("Accept"))
	if berr := px.failedBody(); berr != nil || r.Context().Err() != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(berr, &mbe):
			g.count(fam, "body_too_large")
			g.log.DebugContext(r.Context(), "client body over the cap", "family", fam, "limit", mbe.Limit)
			render.Error(w, f, errBodyTooLarge(mbe.Limit))
		case r.Context().Err() != nil:
			// The client went away; nobody is listening for an answer.
			g.count(fam, "client_gone")
			g.log.DebugContext(r.Context(), "client went away during the upstream call", "family", fam)
			w.WriteHeader(499)
		default:
			g.count(fam, "bad_client_body")
			g.log.DebugContext(r.Context(), "client body could not be read", "family", fam, "err", berr)
			render.Error(w, f, gatehouse.ErrInvalidRequest("The request body could not be read: %s.", gatehouse.Clip(berr.Error(), 200)))
		}
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		g.count(fam, "upstream_timeout")
		g.log.WarnContext(r.Context(), "upstream timed out", "family", fam, "err", err)
		render.Error(w, f, &gatehouse.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
			Description: fmt.Sprintf("The %s upstream did not answer in time.", fam)})
		return
	}
	g.count(fam, "upstream_error")
	g.log.WarnContext(r.Context(), "upstream unreachable", "family", fam, "err", err)
	render.Error(w, f, &gatehouse.Error{Status: http.StatusBadGateway, Code: "upstream_unavailable",
		Description: fmt.Sprintf("The %s upstream cannot be reached.", fam)})
}

func (px *proxied) failedBody() error {
	if px == nil {
		return nil
	}
	return px.body.failed()
}
