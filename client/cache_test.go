package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/client"
	"golang.org/x/oauth2"
)

// numbered answers each token request with a new token "t<n>".
func numbered(expiresIn int) func(w http.ResponseWriter, r *http.Request, n int64) {
	return func(w http.ResponseWriter, _ *http.Request, n int64) {
		writeJSON(w, 200, fmt.Sprintf(`{"AccessToken":"t%d","TokenType":"Bearer","ExpiresInSeconds":%d}`, n, expiresIn))
	}
}

// countingServer numbers its requests and hands each to h.
func countingServer(t testing.TB, h func(w http.ResponseWriter, r *http.Request, n int64)) *server {
	var n atomic.Int64
	return newServer(t, func(w http.ResponseWriter, r *http.Request) { h(w, r, n.Add(1)) })
}

func TestCachedSourceOneRequestForManyGoroutines(t *testing.T) {
	srv := countingServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		time.Sleep(50 * time.Millisecond) // a slow token endpoint: the flight stays open while the goroutines pile up
		numbered(3600)(w, r, n)
	})
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p"))
	const N = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, N)
	for range N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := src.TokenContext(context.Background())
			if err == nil && tok.AccessToken != "t1" {
				err = fmt.Errorf("got token %q, want t1", tok.AccessToken)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d token requests, want exactly 1", got)
	}
}

func TestCachedSourceCallerCancellation(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := countingServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		arrived <- struct{}{}
		<-release
		numbered(3600)(w, r, n)
	})
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p"))

	// The first caller starts the fetch, then gives up.
	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := src.TokenContext(ctx)
		firstErr <- err
	}()
	<-arrived
	others := make(chan string, 5)
	for range 5 {
		go func() {
			tok, err := src.TokenContext(context.Background())
			if err != nil {
				others <- "error: " + err.Error()
				return
			}
			others <- tok.AccessToken
		}()
	}
	cancel()
	select {
	case err := <-firstErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled caller did not return")
	}
	close(release)
	for range 5 {
		if got := <-others; got != "t1" {
			t.Fatalf("another caller got %q, want t1", got)
		}
	}
	if tok, err := src.Token(); err != nil || tok.AccessToken != "t1" {
		t.Fatalf("after the fetch: %v, %v", tok, err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d token requests, want 1", got)
	}
}

func TestCachedSourceFailureGoesToEveryWaiterThenBacksOff(t *testing.T) {
	srv := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		time.Sleep(30 * time.Millisecond) // a slow token endpoint: the callers join one flight
		writeJSON(w, 401, `{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`)
	})
	clk := newClock()
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p"),
		client.WithClock(clk.Now), client.WithBackoff(time.Second, 4*time.Second))
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := src.Token()
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_grant" {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d callers did not get the 401 error", bad.Load())
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d token requests, want 1 (4xx is not retried)", got)
	}

	// During the backoff the last error comes back, without a request.
	_, err := src.Token()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 {
		t.Fatalf("during backoff: %v", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d token requests during backoff, want 1", got)
	}

	// After the backoff, a new attempt.
	clk.Advance(time.Second + time.Millisecond)
	src.Token()
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("%d token requests after the backoff, want 2", got)
	}
	// The next backoff is longer (doubling, with jitter in [d/2, d]).
	clk.Advance(999 * time.Millisecond)
	src.Token()
	clk.Advance(2 * time.Second)
	src.Token()
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("%d token requests, want 3", got)
	}
}

func TestFetchRetriesServerErrors(t *testing.T) {
	srv := countingServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n < 3 {
			writeJSON(w, 503, `{"error":"temporarily_unavailable","error_description":"store down"}`)
			return
		}
		numbered(3600)(w, r, n)
	})
	tok, err := client.NewP21UserSource(srv.URL, "u", "p", client.WithRetries(3, time.Millisecond, 5*time.Millisecond)).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "t3" || srv.hits.Load() != 3 {
		t.Fatalf("token %q after %d requests, want t3 after 3", tok.AccessToken, srv.hits.Load())
	}
}

func TestFetchGivesUpOnPersistentServerErrors(t *testing.T) {
	srv := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(502)
		io.WriteString(w, "upstream connect error\nmore")
	})
	_, err := client.NewP21UserSource(srv.URL, "u", "p", client.WithRetries(4, time.Millisecond, 2*time.Millisecond)).Token()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Description != "upstream connect error" || !e.Temporary() {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "HTTP 502 Bad Gateway") {
		t.Errorf("message %q does not name the status", err)
	}
	if got := srv.hits.Load(); got != 4 {
		t.Fatalf("%d requests, want 4", got)
	}
}

func TestFetchDoesNotRetryClientErrors(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 429} {
		srv := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
			writeJSON(w, status, `{"error":"invalid_request","error_description":"no"}`)
		})
		_, err := client.NewP21UserSource(srv.URL, "u", "p", client.WithRetries(5, time.Millisecond, time.Millisecond)).Token()
		var e *client.Error
		if !errors.As(err, &e) || e.Status != status {
			t.Fatalf("%d: err = %v", status, err)
		}
		if got := srv.hits.Load(); got != 1 {
			t.Fatalf("%d: %d requests, want 1", status, got)
		}
	}
}

func TestFetchRetriesTransportErrors(t *testing.T) {
	srv := countingServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		numbered(3600)(w, r, n)
	})
	tok, err := client.NewP21UserSource(srv.URL, "u", "p", client.WithRetries(2, time.Millisecond, time.Millisecond)).Token()
	if err != nil || tok.AccessToken != "t2" {
		t.Fatalf("got %v, %v; want t2", tok, err)
	}
}

func TestSlowTokenEndpoint(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := countingServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// A caller's own deadline ends its wait.
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p"), client.WithFetchTimeout(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	// The fetch's own timeout ends the fetch, and its error reaches the waiters.
	start := time.Now()
	_, err := src.TokenContext(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the fetch timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("fetch took %v", d)
	}
}

func TestCachedSourceRefreshBuffer(t *testing.T) {
	srv := countingServer(t, numbered(3600))
	clk := newClock()
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p", client.WithClock(clk.Now)), client.WithClock(clk.Now))
	get := func() string {
		t.Helper()
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	if get() != "t1" {
		t.Fatal("first token")
	}
	clk.Advance(3600*time.Second - 5*time.Minute - time.Second)
	if got := get(); got != "t1" {
		t.Fatalf("before the buffer: %s, want t1", got)
	}
	clk.Advance(2 * time.Second)
	if got := get(); got != "t2" {
		t.Fatalf("within the 5-minute buffer: %s, want t2", got)
	}

	// A custom buffer.
	srv2 := countingServer(t, numbered(3600))
	src2 := client.NewCachedSource(client.NewP21UserSource(srv2.URL, "u", "p", client.WithClock(clk.Now)),
		client.WithClock(clk.Now), client.WithRefreshBefore(20*time.Minute))
	src2.Token()
	clk.Advance(41 * time.Minute)
	src2.Token()
	if got := srv2.hits.Load(); got != 2 {
		t.Fatalf("%d requests with a 20-minute buffer after 41 minutes, want 2", got)
	}
}

func TestCachedSourceShortLivedToken(t *testing.T) {
	srv := countingServer(t, numbered(60))
	clk := newClock()
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p", client.WithClock(clk.Now)), client.WithClock(clk.Now))
	src.Token()
	clk.Advance(29 * time.Second)
	src.Token()
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("a 60 s token was replaced after 29 s (%d requests)", got)
	}
	clk.Advance(2 * time.Second)
	src.Token()
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("a 60 s token was not replaced after 31 s (%d requests)", got)
	}
}

func TestCachedSourceSeedHookInvalidate(t *testing.T) {
	srv := countingServer(t, numbered(3600))
	var seen []string
	var mu sync.Mutex
	hook := func(tok *oauth2.Token) {
		mu.Lock()
		seen = append(seen, tok.AccessToken)
		mu.Unlock()
	}
	seed := &oauth2.Token{AccessToken: "saved", Expiry: time.Now().Add(time.Hour)}
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p"), client.WithSeed(seed), client.WithOnToken(hook))
	if tok, _ := src.Token(); tok.AccessToken != "saved" || srv.hits.Load() != 0 {
		t.Fatalf("the seed was not used: %v, %d requests", tok, srv.hits.Load())
	}
	// A stale token's invalidation does not drop the current one.
	src.InvalidateToken(&oauth2.Token{AccessToken: "other"})
	if tok, _ := src.Token(); tok.AccessToken != "saved" {
		t.Fatalf("InvalidateToken(other) dropped the current token")
	}
	src.InvalidateToken(seed)
	if tok, _ := src.Token(); tok.AccessToken != "t1" {
		t.Fatalf("after InvalidateToken: %v", tok)
	}
	src.Invalidate()
	if tok, _ := src.Token(); tok.AccessToken != "t2" {
		t.Fatalf("after Invalidate: %v", tok)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "t1,t2" {
		t.Fatalf("OnToken saw %v, want t1,t2", seen)
	}
}

// While the old token has not expired, a failed early refresh still serves it.
func TestCachedSourceKeepsUsableTokenWhenRefreshFails(t *testing.T) {
	srv := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		writeJSON(w, 500, `{"error":"server_error","error_description":"boom"}`)
	})
	clk := newClock()
	seed := &oauth2.Token{AccessToken: "old", Expiry: clk.Now().Add(2 * time.Minute)}
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "p", client.WithRetries(1, 0, 0)),
		client.WithSeed(seed), client.WithClock(clk.Now))
	if tok, err := src.Token(); err != nil || tok.AccessToken != "old" {
		t.Fatalf("got %v, %v; want the old token", tok, err)
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("no refresh was attempted")
	}
	clk.Advance(2 * time.Minute)
	_, err := src.Token()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 500 {
		t.Fatalf("after expiry: %v, want the 500 error", err)
	}
}

// A source returning a token without an access token is an error.
func TestCachedSourceEmptyToken(t *testing.T) {
	src := client.NewCachedSource(staticSource{&oauth2.Token{}})
	if _, err := src.Token(); err == nil {
		t.Fatal("an empty token was accepted")
	}
}

type staticSource struct{ t *oauth2.Token }

func (s staticSource) Token() (*oauth2.Token, error)                       { return s.t, nil }
func (s staticSource) TokenContext(context.Context) (*oauth2.Token, error) { return s.t, nil }

func BenchmarkCachedToken(b *testing.B) {
	src := client.NewCachedSource(staticSource{&oauth2.Token{AccessToken: "x", Expiry: time.Now().Add(24 * time.Hour)}})
	ctx := context.Background()
	if _, err := src.TokenContext(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := src.TokenContext(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCachedTokenParallel(b *testing.B) {
	src := client.NewCachedSource(staticSource{&oauth2.Token{AccessToken: "x", Expiry: time.Now().Add(24 * time.Hour)}})
	ctx := context.Background()
	src.TokenContext(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := src.TokenContext(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// The P21 user source renews with its refresh token and falls back to the
// password when the refresh token is refused.
func TestRenewWithRefreshToken(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := countingServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		var m map[string]string
		json.NewDecoder(r.Body).Decode(&m)
		b, _ := json.Marshal(m)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch {
		case m["RefreshToken"] == "r1":
			writeJSON(w, 200, `{"AccessToken":"t2","RefreshToken":"r2","ExpiresInSeconds":3600,"TokenType":"Bearer"}`)
		case m["RefreshToken"] != "":
			writeJSON(w, 400, `{"error":"invalid_grant","error_description":"The refresh token is not valid."}`)
		default:
			writeJSON(w, 200, fmt.Sprintf(`{"AccessToken":"p%d","RefreshToken":"r%d","ExpiresInSeconds":3600,"TokenType":"Bearer"}`, n, n))
		}
	})
	clk := newClock()
	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "u", "pw", client.WithClock(clk.Now)), client.WithClock(clk.Now))
	want := []string{"p1", "t2", "p4"}
	for i, w := range want {
		tok, err := src.Token()
		if err != nil || tok.AccessToken != w {
			t.Fatalf("token %d: %v, %v; want %s", i, tok, err, w)
		}
		clk.Advance(56 * time.Minute)
	}
	mu.Lock()
	defer mu.Unlock()
	wantBodies := []string{
		`{"password":"pw","username":"u"}`,
		`{"GrantType":"refresh_token","RefreshToken":"r1"}`,
		`{"GrantType":"refresh_token","RefreshToken":"r2"}`,
		`{"password":"pw","username":"u"}`,
	}
	if strings.Join(bodies, "\n") != strings.Join(wantBodies, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(bodies, "\n"), strings.Join(wantBodies, "\n"))
	}
}
