package client

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Transport is an [http.RoundTripper] that sends every request with
// "Authorization: Bearer <token>" from Source.
//
// When the server answers 401 and Source can invalidate a token (as
// [CachedSource] can), Transport drops the token, gets a fresh one and
// sends the request once more — only if the body can be sent again (no
// body, or req.GetBody set, as http.NewRequest does for in-memory bodies).
// When no different token can be had, the 401 response is returned as is.
//
// A redirect to another host is sent without the token.
type Transport struct {
	// Source provides the tokens; use a [CachedSource] so that tokens are reused.
	Source TokenSource
	// Base sends the requests; nil means [http.DefaultTransport].
	Base http.RoundTripper
}

// invalidator is what Transport needs to retry after a 401.
type invalidator interface {
	InvalidateToken(*oauth2.Token)
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if r := req.Response; r != nil && r.Request != nil && !sameHost(req.URL.Host, r.Request.URL.Host) {
		return t.base().RoundTrip(req)
	}
	tok, err := t.Source.TokenContext(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base().RoundTrip(withToken(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	inv, ok := t.Source.(invalidator)
	if !ok || !replayable(req) {
		return resp, nil
	}
	inv.InvalidateToken(tok)
	fresh, err := t.Source.TokenContext(req.Context())
	if err != nil || fresh.AccessToken == tok.AccessToken {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	// The first answer is dropped; reading a little of it lets the
	// connection be reused.
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	return t.base().RoundTrip(withToken(req, fresh, body))
}

// withToken copies req (a RoundTripper must not change it) with the token set.
func withToken(req *http.Request, tok *oauth2.Token, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func sameHost(a, b string) bool { return strings.EqualFold(a, b) }

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// NewHTTPClient returns a client that sends requests through a [Transport]
// with src. It copies base (timeout, redirect policy, cookie jar) and sends
// through base's transport; base may be nil.
func NewHTTPClient(src TokenSource, base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.Transport = &Transport{Source: src, Base: c.Transport}
	return c
}

// errNoURL is returned when a path cannot be resolved because no base URL
// is known.
var errNoURL = errors.New("no base URL is configured")
