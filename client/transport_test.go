package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/client"
)

// apiServer accepts only the bearer token "t<good>" and echoes the body.
func apiServer(t *testing.T, good *atomic.Int64) (*server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		mu.Lock()
		seen = append(seen, auth+" "+string(body))
		mu.Unlock()
		if auth != fmt.Sprintf("Bearer t%d", good.Load()) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeJSON(w, 401, `{"error":"invalid_token","error_description":"The token is not valid."}`)
			return
		}
		writeJSON(w, 200, `{"echo":"`+string(body)+`"}`)
	})
	return srv, &seen
}

func TestTransportRetriesOnceAfter401(t *testing.T) {
	tokens := countingServer(t, numbered(3600))
	var good atomic.Int64
	good.Store(2) // the first token is refused, as after a server-side session end
	api, seen := apiServer(t, &good)
	src := client.NewCachedSource(client.NewP21UserSource(tokens.URL, "u", "p"))
	hc := client.NewHTTPClient(src, nil)

	req, _ := http.NewRequest(http.MethodPost, api.URL+"/api/entity/customers", strings.NewReader(`{"a":1}`))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `{"a":1}`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	want := []string{`Bearer t1 {"a":1}`, `Bearer t2 {"a":1}`}
	if strings.Join(*seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(*seen, "\n"), strings.Join(want, "\n"))
	}
	// The new token is cached: the next request needs no token request.
	resp, err = hc.Get(api.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tokens.hits.Load() != 2 || resp.StatusCode != 200 {
		t.Fatalf("%d token requests, status %d", tokens.hits.Load(), resp.StatusCode)
	}
}

func TestTransportRetriesOnlyOnce(t *testing.T) {
	tokens := countingServer(t, numbered(3600))
	var good atomic.Int64
	good.Store(99) // nothing is accepted
	api, seen := apiServer(t, &good)
	hc := client.NewHTTPClient(client.NewCachedSource(client.NewP21UserSource(tokens.URL, "u", "p")), nil)
	resp, err := hc.Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(*seen) != 2 {
		t.Fatalf("status %d after %d requests, want 401 after 2", resp.StatusCode, len(*seen))
	}
}

func TestTransportDoesNotReplayUnrewindableBody(t *testing.T) {
	tokens := countingServer(t, numbered(3600))
	var good atomic.Int64
	good.Store(2)
	api, seen := apiServer(t, &good)
	hc := client.NewHTTPClient(client.NewCachedSource(client.NewP21UserSource(tokens.URL, "u", "p")), nil)
	// A body without GetBody cannot be sent twice.
	req, _ := http.NewRequest(http.MethodPost, api.URL, io.NopCloser(strings.NewReader("once")))
	req.GetBody = nil
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || len(*seen) != 1 {
		t.Fatalf("status %d after %d requests, want the 401 after 1", resp.StatusCode, len(*seen))
	}
	if tokens.hits.Load() != 1 {
		t.Fatalf("%d token requests, want 1", tokens.hits.Load())
	}
}

func TestTransportTokenError(t *testing.T) {
	tokens := countingServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		writeJSON(w, 401, `{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`)
	})
	closed := false
	body := &closeRecorder{Reader: bytes.NewReader([]byte("x")), closed: &closed}
	hc := client.NewHTTPClient(client.NewCachedSource(client.NewP21UserSource(tokens.URL, "u", "p")), nil)
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", body)
	_, err := hc.Do(req)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 {
		t.Fatalf("err = %v", err)
	}
	if !closed {
		t.Error("the request body was not closed")
	}
}

type closeRecorder struct {
	io.Reader
	closed *bool
}

func (c *closeRecorder) Close() error { *c.closed = true; return nil }

// A redirect to another host does not carry the token.
func TestTransportRedirectToOtherHost(t *testing.T) {
	var got atomic.Value
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		w.WriteHeader(204)
	})
	// Same IP, other port: another host for net/http, and for us.
	first := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	})
	hc := client.NewHTTPClient(staticCached("t1"), nil)
	resp, err := hc.Get(first.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v, _ := got.Load().(string); v != "" {
		t.Fatalf("the redirected request carried Authorization %q", v)
	}
}

func staticCached(tok string) *client.CachedSource {
	return client.NewCachedSource(staticSource{tokenOf(tok)})
}

func TestClientDoSetsBearer(t *testing.T) {
	var got atomic.Value
	api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization") + " " + r.URL.RequestURI())
		w.WriteHeader(204)
	})
	c := client.NewClient(api.URL+"/", staticCached("abc"))
	req, err := c.NewRequest(context.Background(), http.MethodGet, "odataservice/odata/table/supplier?$top=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := got.Load(); v != "Bearer abc /odataservice/odata/table/supplier?$top=1" {
		t.Fatalf("server saw %q", v)
	}
}
