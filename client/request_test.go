package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/client"
)

// sentRequest is what a server saw of one request.
type sentRequest struct {
	method, path, body string
	header             http.Header
}

// TestNewTokenRequestIsWhatTokenContextSends sends the request that
// NewTokenRequest builds and compares it with the one TokenContext sends,
// for every flow.
func TestNewTokenRequestIsWhatTokenContextSends(t *testing.T) {
	var mu sync.Mutex
	var seen []sentRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		for _, k := range []string{"Accept-Encoding", "Content-Length"} {
			h.Del(k)
		}
		mu.Lock()
		seen = append(seen, sentRequest{r.Method, r.URL.Path, string(b), h})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"AccessToken":"t","access_token":"t","token_type":"Bearer","ExpiresInSeconds":60}`)
	}))
	defer srv.Close()
	opts := []client.Option{client.WithUserAgent("load-test/1")}
	sources := map[string]client.TokenSource{
		"p21 user v2":      client.NewP21UserSource(srv.URL, "api_user", "pa ss\"word", opts...),
		"p21 user v1":      client.NewP21UserSource(srv.URL, "api_user", "pa ss", append(opts, client.WithV1())...),
		"p21 consumer v2":  client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", "", opts...),
		"p21 consumer+usr": client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", "api_user", opts...),
		"p21 consumer v1":  client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", "api_user", append(opts, client.WithV1())...),
		"apx":              client.NewAPXSource(srv.URL+"/oauth/token", "app:1", "s&cret", "jo", "pw", opts...),
		"client creds":     client.NewClientCredentialsSource(srv.URL+"/oauth/token", "app", "secret", opts...),
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			if _, err := src.TokenContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			req, err := src.(client.TokenRequester).NewTokenRequest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("server saw %d requests, want 2", len(seen))
			}
			a, b := seen[0], seen[1]
			if a.method != b.method || a.path != b.path || a.body != b.body {
				t.Errorf("TokenContext sent %s %s %q; NewTokenRequest %s %s %q", a.method, a.path, a.body, b.method, b.path, b.body)
			}
			if fmt.Sprint(a.header) != fmt.Sprint(b.header) {
				t.Errorf("headers differ:\nTokenContext    %v\nNewTokenRequest %v", a.header, b.header)
			}
			if b.header.Get("User-Agent") != "load-test/1" {
				t.Errorf("User-Agent %q, want the source's", b.header.Get("User-Agent"))
			}
		})
	}
}

func TestNewTokenRequestBadURL(t *testing.T) {
	src := client.NewP21ConsumerSource("http://user:secret@bad host", "62ccc18a-25e2-440c-bf6d-749c117fa9db", "")
	_, err := src.NewTokenRequest(context.Background())
	if err == nil {
		t.Fatal("no error for a URL with a space in its host")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, "62ccc18a") {
		t.Errorf("error reveals a secret: %v", err)
	}
}
