package client_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/client"
)

// No error message, log line or formatted source ever holds a secret,
// whatever the server answers.
func TestSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	const (
		password = "Pw-7e1f0a9c-secret"
		key      = "62ccc18a-25e2-440c-bf6d-749c117fa9db"
		secret   = "cs:9%f+/=@$!-secret"
		refresh  = "rt-0123456789abcdef"
	)
	secrets := []string{password, key, secret, refresh, url.QueryEscape(secret),
		base64.StdEncoding.EncodeToString([]byte("client:" + url.QueryEscape(secret)))}

	// Servers that misbehave in every way, including echoing what they got.
	echo := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		all := string(b) + " " + fmt.Sprint(r.Header)
		writeJSON(w, 400, fmt.Sprintf(`{"error":"invalid_request","error_description":%q}`, all))
	})
	echo200 := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		writeJSON(w, 200, fmt.Sprintf(`{"error":"bad","error_description":%q}`, string(b)+r.Header.Get("password")+r.Header.Get("appkey")))
	})
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(503)
		io.WriteString(w, string(b)+r.Header.Get("password"))
	})
	garbage := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		writeJSON(w, 200, "not json "+string(b))
	})
	dead := newServer(t, func(http.ResponseWriter, *http.Request) {})
	deadURL := dead.URL
	dead.Close()
	real := newP21Server(t)

	var logs logBuffer
	opts := []client.Option{client.WithLogger(logs.logger()), client.WithRetries(2, time.Millisecond, time.Millisecond)}
	var sources []client.TokenSource
	for _, base := range []string{echo.URL, echo200.URL, plain.URL, garbage.URL, deadURL, real.URL,
		"https://user:" + password + "@127.0.0.1:1", "http://[::1" + password} {
		for _, v1 := range []bool{false, true} {
			o := opts
			if v1 {
				o = append(o[:len(o):len(o)], client.WithV1())
			}
			sources = append(sources,
				client.NewP21UserSource(base, testUser, password, o...),
				client.NewP21ConsumerSource(base, key, testUser, o...))
		}
		sources = append(sources,
			client.NewAPXSource(base, "client", secret, testUser, password, opts...),
			client.NewClientCredentialsSource(base, "client", secret, opts...))
	}
	for _, src := range sources {
		_, err := src.TokenContext(context.Background())
		if err == nil {
			t.Fatalf("%v: no error", src)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%v: the error holds a secret: %v", src, err)
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
				if out := fmt.Sprintf(verb, src); strings.Contains(out, s) {
					t.Errorf("%s of a source shows a secret: %s", verb, out)
				}
			}
		}
		// Renewal with a refresh token takes the same care.
		if r, ok := src.(client.Renewer); ok {
			old := tokenOf("access")
			old.RefreshToken = refresh
			_, err := r.Renew(context.Background(), old)
			if err != nil {
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("%v: the renewal error holds a secret: %v", src, err)
					}
				}
			}
		}
	}
	// The refresh path with the refresh token itself.
	src := client.NewP21UserSource(echo.URL, testUser, password, opts...)
	tok := tokenOf("access")
	tok.RefreshToken = refresh
	if _, err := src.Renew(context.Background(), tok); err == nil || strings.Contains(err.Error(), refresh) {
		t.Errorf("refresh error: %v", err)
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the debug log holds a secret:\n%s", logs.String())
		}
	}
	cfg := client.Config{Flow: client.FlowAPX, Password: password, ClientSecret: secret, ConsumerKey: key}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, cfg); strings.Contains(out, password) || strings.Contains(out, secret) || strings.Contains(out, key) {
			t.Errorf("%s of a Config shows a secret: %s", verb, out)
		}
	}
}
