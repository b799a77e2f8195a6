package client_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/client"
)

// A secret with every character that form-encoding changes or that breaks
// naive Basic parsing.
const oddSecret = `a:b%c+d=e/f@g$h! i`

// apxServer checks an APX-style request: Basic client auth (decoded per
// RFC 6749 §2.3.1 unless raw), form body.
func apxServer(t *testing.T, wantID, wantSecret string, raw bool) *server {
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		fail := func(msg string) {
			t.Error(msg)
			writeJSON(w, 400, `{"error":"invalid_request","error_description":"test server: see test log"}`)
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			fail("method " + r.Method + ", content type " + r.Header.Get("Content-Type"))
			return
		}
		h := r.Header.Get("Authorization")
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if !strings.HasPrefix(h, "Basic ") || err != nil {
			fail("no Basic authorization")
			return
		}
		id, secret, _ := strings.Cut(string(b), ":")
		if !raw {
			if id, err = url.QueryUnescape(id); err != nil {
				fail("client id not form-encoded")
			}
			if secret, err = url.QueryUnescape(secret); err != nil {
				fail("secret not form-encoded")
			}
		}
		if id != wantID || secret != wantSecret {
			writeJSON(w, 401, `{"error":"invalid_client","error_description":"Client authentication failed."}`)
			return
		}
		if err := r.ParseForm(); err != nil {
			fail("form: " + err.Error())
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "password":
			if r.PostForm.Get("Username") != "svc_user" || r.PostForm.Get("Password") != oddSecret {
				writeJSON(w, 401, `{"error":"invalid_grant","error_description":"Invalid Login ID or Password"}`)
				return
			}
			writeJSON(w, 200, `{"access_token":"apx-token","token_type":"bearer","expires_in":3600,"scope":"access"}`)
		case "client_credentials":
			writeJSON(w, 200, `{"access_token":"cc-token","token_type":"bearer","expires_in":"1800"}`)
		default:
			writeJSON(w, 400, `{"error":"unsupported_grant_type"}`)
		}
	})
}

func TestAPXPasswordGrant(t *testing.T) {
	srv := apxServer(t, "my:client", oddSecret, false)
	start := time.Now()
	tok, err := client.NewAPXSource(srv.URL+"/oauth/token", "my:client", oddSecret, "svc_user", oddSecret).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "apx-token" || tok.Type() != "Bearer" || tok.Extra("scope") != "access" {
		t.Fatalf("token = %+v", tok)
	}
	if d := tok.Expiry.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expiry in %v, want 1h", d)
	}
}

func TestAPXRawBasicAuth(t *testing.T) {
	srv := apxServer(t, "client", oddSecret, true)
	if _, err := client.NewAPXSource(srv.URL, "client", oddSecret, "svc_user", oddSecret, client.WithRawBasicAuth()).Token(); err != nil {
		t.Fatalf("raw: %v", err)
	}
	// Escaped credentials do not match on a server that does not unescape.
	_, err := client.NewAPXSource(srv.URL, "client", oddSecret, "svc_user", oddSecret).Token()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_client" {
		t.Fatalf("escaped against a raw server: %v", err)
	}
}

func TestAPXBadLogin(t *testing.T) {
	srv := apxServer(t, "client", oddSecret, false)
	_, err := client.NewAPXSource(srv.URL, "client", oddSecret, "svc_user", "nope-wrong").Token()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_grant" || e.Description != "Invalid Login ID or Password" {
		t.Fatalf("err = %v", err)
	}
}

func TestClientCredentials(t *testing.T) {
	srv := apxServer(t, "client", oddSecret, false)
	tok, err := client.NewClientCredentialsSource(srv.URL, "client", oddSecret).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "cc-token" || client.ResponseOf(tok).ExpiresIn != 1800 {
		t.Fatalf("token = %+v", tok)
	}
}

func TestAPXPresets(t *testing.T) {
	if client.APXProduction != "https://apxjwtauthprod.apx.com/oauth/token" || client.APXUAT != "https://apxjwtauthuat.apx.com/oauth/token" {
		t.Fatal("APX presets changed")
	}
}

// The OAuth2 source renews with a refresh token when it has one.
func TestOAuth2RefreshGrant(t *testing.T) {
	var mu sync.Mutex
	var grants []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		g := r.PostForm.Get("grant_type")
		mu.Lock()
		grants = append(grants, g)
		mu.Unlock()
		switch {
		case g == "refresh_token" && r.PostForm.Get("refresh_token") == "rt1":
			writeJSON(w, 200, `{"access_token":"a2","token_type":"bearer","expires_in":3600,"refresh_token":"rt2"}`)
		case g == "refresh_token":
			writeJSON(w, 400, `{"error":"invalid_grant"}`)
		default:
			writeJSON(w, 200, `{"access_token":"a1","token_type":"bearer","expires_in":3600,"refresh_token":"rt1"}`)
		}
	})
	clk := newClock()
	src := client.NewCachedSource(client.NewAPXSource(srv.URL, "c", "s", "u", "p", client.WithClock(clk.Now)), client.WithClock(clk.Now))
	for _, want := range []string{"a1", "a2", "a1"} {
		tok, err := src.Token()
		if err != nil || tok.AccessToken != want {
			t.Fatalf("got %v, %v; want %s", tok, err, want)
		}
		clk.Advance(56 * time.Minute)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(grants, ","); got != "password,refresh_token,refresh_token,password" {
		t.Fatalf("grants = %s", got)
	}
}

// TestPasswordSourceRFCNames: the plain OAuth2 password grant spells its
// fields as RFC 6749 does.
func TestPasswordSourceRFCNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, _ := r.BasicAuth()
		f := r.PostForm
		if id != "app" || secret != "s3cret" || f.Get("grant_type") != "password" || f.Get("username") != "jo" || f.Get("password") != "p&w" ||
			f.Has("Username") || f.Has("Password") {
			writeJSON(w, 400, `{"error":"invalid_request","error_description":"unexpected form"}`)
			return
		}
		writeJSON(w, 200, `{"access_token":"rfc-token","token_type":"bearer","expires_in":60}`)
	}))
	defer srv.Close()
	tok, err := client.NewPasswordSource(srv.URL, "app", "s3cret", "jo", "p&w").Token()
	if err != nil || tok.AccessToken != "rfc-token" {
		t.Fatalf("token %+v, %v", tok, err)
	}
}
