package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxResponse bounds what is read of any answer; token responses are small.
const maxResponse = 1 << 20

// httpClient is the client for a request: an [oauth2.HTTPClient] in the
// context wins, as in golang.org/x/oauth2.
func (o *options) httpClientFor(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		return c
	}
	return o.httpClient
}

// tokenRequest describes one token endpoint call; build makes a fresh
// request per attempt, so that retries resend the body.
type tokenRequest struct {
	endpoint string // for messages and logs, already redacted
	build    func(ctx context.Context) (*http.Request, error)
	// secrets are scrubbed from what the server says in an error, in case
	// it echoes them.
	secrets []string
}

// fetchToken performs a token request, retrying transport failures and
// 5xx answers with backoff (never 4xx: a wrong password stays wrong, and
// repeating it would count toward a lockout).
func (o *options) fetchToken(ctx context.Context, tr tokenRequest) (*oauth2.Token, error) {
	var last error
	for attempt := 1; ; attempt++ {
		tok, retry, err := o.tryToken(ctx, tr)
		if err == nil {
			return tok, nil
		}
		last = err
		if !retry || attempt >= o.attempts || ctx.Err() != nil {
			return nil, last
		}
		wait := jitter(backoffDelay(o.retryBase, o.retryMax, attempt))
		var e *Error
		if errors.As(err, &e) && e.RetryAfter > wait {
			wait = min(e.RetryAfter, o.retryMax)
		}
		o.logger.Debug("token request failed; retrying", "endpoint", tr.endpoint, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, last
		case <-t.C:
		}
	}
}

// newTokenRequest builds tr's request with the headers every attempt
// carries.
func (o *options) newTokenRequest(ctx context.Context, tr tokenRequest) (*http.Request, error) {
	req, err := tr.build(ctx)
	if err != nil {
		return nil, fmt.Errorf("token request to %s: %w", tr.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	if o.userAgent != "" {
		req.Header.Set("User-Agent", o.userAgent)
	}
	return req, nil
}

// tryToken makes one attempt; retry says whether another may succeed.
func (o *options) tryToken(ctx context.Context, tr tokenRequest) (tok *oauth2.Token, retry bool, err error) {
	req, err := o.newTokenRequest(ctx, tr)
	if err != nil {
		return nil, false, err
	}
	// Redirects are not followed: they would carry the credentials (body,
	// or V1 headers, which net/http forwards even to another host).
	hc := *o.httpClientFor(ctx)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return nil, true, fmt.Errorf("token request to %s: %w", tr.endpoint, err)
	}
	defer resp.Body.Close()
	o.logger.Debug("token response", "endpoint", tr.endpoint, "status", resp.StatusCode)
	body, err := readBody(resp)
	if err != nil {
		return nil, true, fmt.Errorf("token request to %s: reading the response: %w", tr.endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := errorFromResponse("token request", tr.endpoint, resp, body, o.now(), tr.secrets)
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 && e.Description == "" {
			e.Description = "the token endpoint redirects to " + redactURL(resolveRef(req.URL, loc)) + "; configure that URL instead"
		}
		return nil, resp.StatusCode >= 500, e
	}
	r, err := parseResponse(body, tr.secrets)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Description: err.Error()} // our own words: no server text
		}
		e.Op, e.Endpoint, e.Status = "token request", tr.endpoint, resp.StatusCode
		return nil, false, e
	}
	return r.token(o.now(), o.logger, tr.endpoint), false, nil
}

// scrub replaces every secret (as sent, and form- or path-escaped) in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < 3 {
			continue // too short to tell from ordinary text
		}
		for _, v := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec)} {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// resolveRef resolves a Location header against the request URL.
func resolveRef(base *url.URL, ref string) string {
	u, err := base.Parse(ref)
	if err != nil {
		return ""
	}
	return u.String()
}

// readBody reads at most maxResponse bytes of an answer.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponse {
		return nil, errors.New("the response is larger than 1 MiB")
	}
	return b, nil
}

// errorFromResponse builds the Error for a non-2xx answer from its JSON or
// XML error fields, or from a short plain-text body.
func errorFromResponse(op, endpoint string, resp *http.Response, body []byte, now time.Time, secrets []string) *Error {
	e := &Error{Op: op, Endpoint: endpoint, Status: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	if fields, err := parseFields(body); err == nil {
		e.Code, e.Description = errorFields(fields, secrets)
		return e
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/plain" {
		line, _, _ := strings.Cut(string(body), "\n")
		e.Description = clean(scrub(line, secrets), 200)
	}
	return e
}

// backoffDelay is base·2^(n-1), capped at max.
func backoffDelay(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// jitter spreads d over [d/2, d], so that many clients that failed
// together do not retry together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
