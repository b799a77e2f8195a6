// Package gateway enforces gatehouse's authorization decision in front of
// real APIs: as a reverse proxy (Gateway), as a forward-auth check for
// nginx and Traefik (Check), and it serves the P21 UI server router
// (Router), whose answer is itself bearer-protected.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/server/render"
)

// Authorizer is the decision the enforcement points apply.
type Authorizer interface {
	Authorize(ctx context.Context, escapedPath, authorization string) (*auth.Authorization, error)
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
// with the path and query as the client sent them (see forwardPath), the
// identity headers added and any client-sent X-Gatehouse-*
// headers removed.
type Gateway struct {
	auth      Authorizer
	proxies   map[string]*httputil.ReverseProxy
	log       *slog.Logger
	observe   func(family, outcome string)
	upstreams map[string]*url.URL
	format    render.Format
}

// Options configure a Gateway.
type Options struct {
	// Upstreams maps family names to upstream base URLs.
	Upstreams map[string]*url.URL
	// Timeout bounds the wait for an upstream's response headers (504 after).
	Timeout time.Duration
	Log     *slog.Logger
	// Observe counts decisions by family and outcome; may be nil.
	Observe func(family, outcome string)
	// Format of error bodies: JSON, XML, or chosen by Accept (Negotiate).
	Format render.Format
}

type ctxKey struct{}

// NewGateway builds the proxy.
func NewGateway(a Authorizer, o Options) *Gateway {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	g := &Gateway{auth: a, proxies: map[string]*httputil.ReverseProxy{}, log: o.Log, observe: o.Observe, upstreams: o.Upstreams, format: o.Format}
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
	for fam, up := range o.Upstreams {
		up, upEscaped := up, strings.TrimSuffix(up.EscapedPath(), "/")
		g.proxies[fam] = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				a := pr.In.Context().Value(ctxKey{}).(*auth.Authorization)
				p, raw := forwardPath(pr.In.URL, a.Path)
				pr.Out.URL.Scheme, pr.Out.URL.Host = up.Scheme, up.Host
				pr.Out.URL.Path, pr.Out.URL.RawPath = up.Path+p, ""
				if raw != "" {
					pr.Out.URL.RawPath = upEscaped + raw
				}
				// The query as sent: ReverseProxy drops parameters it cannot
				// parse (a ";" separator, say) from Out; the decision never
				// reads the query, so the upstream gets it whole.
				pr.Out.URL.RawQuery = pr.In.URL.RawQuery
				pr.Out.Host = up.Host
				pr.SetXForwarded()
				a.SetHeaders(pr.Out.Header)
			},
			Transport:    tr,
			ErrorHandler: g.upstreamError,
			ErrorLog:     slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
		}
	}
	return g
}

// forwardPath is the path sent upstream for an allowed request u whose
// decision was made on clean, as a decoded path and its escaped form.
//
// Without dot segments it is u's escaped path, byte for byte as the client
// sent it (repeated slashes, case and percent-encoding kept: a%2Bb is not
// a+b to the upstream). With dot segments, which an upstream might resolve
// differently, it is the cleaned path the decision judged, each remaining
// segment keeping the client's escaping. Either way it decodes to a path
// that cleans to clean; when that cannot be shown it is clean, re-encoded.
func forwardPath(u *url.URL, clean string) (path, escaped string) {
	escaped = u.EscapedPath()
	segs := strings.Split(escaped, "/")
	if !hasDotSegment(segs) {
		if p, err := url.PathUnescape(escaped); err == nil && p == u.Path {
			return u.Path, escaped
		}
		return clean, ""
	}
	// path.Clean on escaped segments: drop empty and "." segments, let
	// ".." remove the one before (never above the root).
	out := make([]string, 0, len(segs))
	for _, s := range segs[1:] {
		switch d, _ := url.PathUnescape(s); d {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	escaped = "/" + strings.Join(out, "/")
	if len(out) > 0 && strings.HasSuffix(u.Path, "/") {
		escaped += "/"
	}
	if p, err := url.PathUnescape(escaped); err == nil && p == clean {
		return clean, escaped
	}
	return clean, ""
}

// hasDotSegment reports whether an escaped path, split at "/", has a "."
// or ".." segment, also percent-encoded (%2e).
func hasDotSegment(segs []string) bool {
	for _, s := range segs {
		if d, err := url.PathUnescape(s); err == nil && (d == "." || d == "..") {
			return true
		}
	}
	return false
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
	a, err := g.auth.Authorize(r.Context(), r.URL.EscapedPath(), r.Header.Get("Authorization"))
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
	g.count(a.Match.Family.Name, "allowed")
	// Let request and response bodies stream at the same time (HTTP/1.1
	// servers otherwise drain the request before the response starts).
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, a)))
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

// upstreamError answers 504 when the upstream did not answer in time and
// 502 when it could not be reached or broke the connection.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	fam := ""
	if a, ok := r.Context().Value(ctxKey{}).(*auth.Authorization); ok {
		fam = a.Match.Family.Name
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody is listening for an answer.
		g.count(fam, "client_gone")
		w.WriteHeader(499)
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		g.count(fam, "upstream_timeout")
		g.log.Warn("upstream timed out", "family", fam, "err", err)
		render.Error(w, g.format.Choose(r.Header.Get("Accept")), &gatehouse.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
			Description: fmt.Sprintf("The %s upstream did not answer in time.", fam)})
		return
	}
	g.count(fam, "upstream_error")
	g.log.Warn("upstream unreachable", "family", fam, "err", err)
	render.Error(w, g.format.Choose(r.Header.Get("Accept")), &gatehouse.Error{Status: http.StatusBadGateway, Code: "upstream_unavailable",
		Description: fmt.Sprintf("The %s upstream cannot be reached.", fam)})
}
