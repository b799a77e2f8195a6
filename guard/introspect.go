package guard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/wire"
	"golang.org/x/sync/singleflight"
)

// introspector asks gatehouse's RFC 7662 endpoint whether a token is active
// (its session not ended), authenticating as a client. Answers, active or
// not, are reused for ttl per token; concurrent questions about one token
// share one request. Failures are never cached.
type introspector struct {
	url          string
	clientID     string
	clientSecret string
	client       *http.Client
	clock        gatehouse.Clock
	ttl          time.Duration
	log          *slog.Logger
	flight       singleflight.Group // by the token's SHA-256
	cache        *ttlCache[introspection]
	mu           sync.Mutex // guards lastWarn
	requests     atomic.Int64
	lastWarn     time.Time
}

// introspection is what the server said about a token.
type introspection struct {
	active bool
	claims claims // as reported; set when active
}

// errIntrospection means the server could not say (503, network error,
// unexpected answer): the caller answers "unavailable", never "inactive".
type errIntrospection struct{ err error }

func (e *errIntrospection) Error() string { return "introspection: " + e.err.Error() }
func (e *errIntrospection) Unwrap() error { return e.err }

// lookup returns the server's answer about raw, from cache when fresh.
func (in *introspector) lookup(ctx context.Context, raw string) (introspection, error) {
	key := sha256.Sum256([]byte(raw))
	now := in.clock.Now()
	if in.ttl > 0 {
		if res, ok := in.cache.get(key, now); ok {
			return res, nil
		}
	}
	// Concurrent lookups of one token share one request, which runs on its
	// own context: a caller that gives up does not fail it for the others.
	ch := in.flight.DoChan(string(key[:]), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		res, err := in.ask(fctx, raw)
		if err != nil {
			in.warn(err)
		}
		if err == nil && in.ttl > 0 {
			now := in.clock.Now()
			in.cache.put(key, res, now.Add(in.ttl), now)
		}
		return res, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return introspection{}, r.Err
		}
		return r.Val.(introspection), nil
	case <-ctx.Done():
		return introspection{}, ctx.Err()
	}
}

// ask sends one introspection request.
func (in *introspector) ask(ctx context.Context, raw string) (introspection, error) {
	in.requests.Add(1)
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, strings.NewReader(form.Encode()))
	if err != nil {
		return introspection{}, &errIntrospection{err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.clientSecret))
	resp, err := in.client.Do(req)
	if err != nil {
		return introspection{}, &errIntrospection{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return introspection{}, &errIntrospection{fmt.Errorf("read answer: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return introspection{}, &errIntrospection{errors.New("the server refused the client credentials " +
			"(401 invalid_client): check JWKSConfig.ClientID and ClientSecret")}
	case resp.StatusCode != http.StatusOK:
		return introspection{}, &errIntrospection{fmt.Errorf("answered %d", resp.StatusCode)}
	}
	var r wire.Introspection
	if err := json.Unmarshal(body, &r); err != nil {
		return introspection{}, &errIntrospection{errors.New("the answer is not an RFC 7662 JSON object")}
	}
	if !r.Active {
		return introspection{}, nil
	}
	return introspection{active: true, claims: claims{
		Issuer: r.Iss, Subject: r.Sub, Scope: r.Scope, SessionID: r.Sid, ConsumerUID: r.ClientID, ID: r.Jti,
		ExpiresAt: unixTime(r.Exp), NotBefore: unixTime(r.Nbf),
	}}, nil
}

// warn logs a failure at most every 10 s: while the server is down every
// request fails the same way.
func (in *introspector) warn(err error) {
	in.mu.Lock()
	now := in.clock.Now()
	due := now.Sub(in.lastWarn) >= 10*time.Second
	if due {
		in.lastWarn = now
	}
	in.mu.Unlock()
	if due {
		in.log.Warn("guard: introspection failed; answering 503", "url", in.url, "client_id", in.clientID, "err", err)
	}
}

func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}
