package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/client"
	"golang.org/x/oauth2"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name                        string
		body                        string
		access, refresh, typ, scope string
		user, session, consumer     string
		expiresIn                   int64
	}{
		{name: "p21 user json", body: `{"AccessToken":"a1","RefreshToken":"r1","ExpiresInSeconds":86400,"TokenType":"Bearer"}`,
			access: "a1", refresh: "r1", typ: "Bearer", expiresIn: 86400},
		{name: "p21 consumer json", body: `{"AccessToken":"a2","TokenType":"Bearer","UserName":"api_user","ExpiresIn":630720000,
			"RefreshToken":"","Scope":"/api;/p21sdk","SessionId":"s-1","ConsumerUid":"8","AppKey":null}`,
			access: "a2", typ: "Bearer", user: "api_user", scope: "/api;/p21sdk", session: "s-1", consumer: "8", expiresIn: 630720000},
		{name: "oauth2 json", body: `{"access_token":"a3","token_type":"bearer","expires_in":3600,"scope":"access"}`,
			access: "a3", typ: "bearer", scope: "access", expiresIn: 3600},
		{name: "string number", body: `{"AccessToken":"a4","ExpiresIn":"7200"}`, access: "a4", expiresIn: 7200},
		{name: "string with spaces", body: `{"AccessToken":"a4","ExpiresInSeconds":" 60 "}`, access: "a4", expiresIn: 60},
		{name: "float", body: `{"access_token":"a5","expires_in":3600.0}`, access: "a5", expiresIn: 3600},
		{name: "missing expiry", body: `{"AccessToken":"a6","TokenType":"Bearer"}`, access: "a6", typ: "Bearer"},
		{name: "unreadable expiry", body: `{"AccessToken":"a6","ExpiresIn":"soon"}`, access: "a6"},
		{name: "negative expiry", body: `{"AccessToken":"a6","ExpiresIn":-5}`, access: "a6"},
		{name: "seconds win over in", body: `{"AccessToken":"a7","ExpiresIn":10,"ExpiresInSeconds":20}`, access: "a7", expiresIn: 20},
		{name: "same value twice", body: `{"AccessToken":"a8","access_token":"a8"}`, access: "a8"},
		{name: "bom and space", body: "\ufeff \n {\"AccessToken\":\"a9\"} \n", access: "a9"},
		{name: "seed xml", body: `<?xml version="1.0" encoding="utf-8"?>
<TokenResponse>
    <AccessToken>x1</AccessToken>
    <TokenType>Bearer</TokenType>
    <ExpiresIn>86400</ExpiresIn>
    <RefreshToken>xr</RefreshToken>
</TokenResponse>`, access: "x1", typ: "Bearer", refresh: "xr", expiresIn: 86400},
		{name: "xml any order", body: `<TokenResponse><ExpiresIn> 60 </ExpiresIn><RefreshToken/><TokenType>Bearer</TokenType><AccessToken>x2</AccessToken></TokenResponse>`,
			access: "x2", typ: "Bearer", expiresIn: 60},
		{name: "xml consumer", body: `<TokenResponse><AccessToken>x3</AccessToken><TokenType>Bearer</TokenType><ExpiresIn>630720000</ExpiresIn><RefreshToken></RefreshToken><UserName>u</UserName><Scope>/api</Scope><SessionId>s</SessionId><ConsumerUid>8</ConsumerUid><AppKey></AppKey></TokenResponse>`,
			access: "x3", typ: "Bearer", user: "u", scope: "/api", session: "s", consumer: "8", expiresIn: 630720000},
		{name: "xml namespace and nil", body: `<TokenResponse xmlns="http://schemas.datacontract.org/2004/07/P21" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><AccessToken>x4</AccessToken><AppKey i:nil="true"/><ExpiresIn>5</ExpiresIn></TokenResponse>`,
			access: "x4", expiresIn: 5},
		{name: "xml nested ignored", body: `<TokenResponse><Extra><AccessToken>no</AccessToken></Extra><AccessToken>x5</AccessToken></TokenResponse>`, access: "x5"},
		{name: "xml wrapping json", body: `<string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">{"AccessToken":"x6","ExpiresIn":9}</string>`,
			access: "x6", expiresIn: 9},
		{name: "xml missing expiry", body: `<TokenResponse><AccessToken>x7</AccessToken></TokenResponse>`, access: "x7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := client.ParseResponse([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			got := []string{r.AccessToken, r.RefreshToken, r.TokenType, r.Scope, r.UserName, r.SessionID, r.ConsumerUID}
			want := []string{tt.access, tt.refresh, tt.typ, tt.scope, tt.user, tt.session, tt.consumer}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d = %q, want %q", i, got[i], want[i])
				}
			}
			if r.ExpiresIn != tt.expiresIn {
				t.Errorf("ExpiresIn = %d, want %d", r.ExpiresIn, tt.expiresIn)
			}
		})
	}
}

func TestParseResponseRefused(t *testing.T) {
	tests := []struct {
		name, body, code, desc string
	}{
		{"error json with 200", `{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`,
			"invalid_grant", "The user name or password is incorrect."},
		{"error xml with 200", `<ErrorResponse><error>invalid_client</error><error_description>Client authentication failed.</error_description></ErrorResponse>`,
			"invalid_client", "Client authentication failed."},
		{"empty token", `{"AccessToken":"","ExpiresIn":5}`, "", "the response holds no access token"},
		{"asp.net message", `{"Message":"An error has occurred."}`, "", "An error has occurred."},
		{"json array", `[{"AccessToken":"a"}]`, "", ""},
		{"json null", `null`, "", ""},
		{"trailing garbage", `{"AccessToken":"a"} x`, "", ""},
		{"conflicting spellings", `{"AccessToken":"a","access_token":"b"}`, "", ""},
		{"bad xml", `<TokenResponse><AccessToken>a</TokenResponse>`, "", ""},
		{"xml twice", `<TokenResponse><AccessToken>a</AccessToken><AccessToken>b</AccessToken></TokenResponse>`, "", ""},
		{"html", `<html><body>Service Unavailable</body></html>`, "", "the response holds no access token"},
		{"empty", ``, "", ""},
		{"text", `OK`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := client.ParseResponse([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseResponse = %+v, want an error", r)
			}
			var e *client.Error
			if tt.code != "" || tt.desc != "" {
				if !errors.As(err, &e) {
					t.Fatalf("error %T %v is not a *client.Error", err, err)
				}
				if e.Code != tt.code || e.Description != tt.desc {
					t.Errorf("Error = %q/%q, want %q/%q", e.Code, e.Description, tt.code, tt.desc)
				}
			}
		})
	}
}

func TestResponseTokenDefaultsExpiry(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := client.ParseResponse([]byte(`{"AccessToken":"a","SessionId":"s1","ConsumerUid":"8"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok := r.Token(now)
	if !tok.Expiry.Equal(now.Add(time.Hour)) {
		t.Errorf("Expiry = %v, want now+1h", tok.Expiry)
	}
	if tok.Extra("SessionId") != "s1" || tok.Extra("ConsumerUid") != "8" {
		t.Errorf("Extra lost the response fields: %v %v", tok.Extra("SessionId"), tok.Extra("ConsumerUid"))
	}
	if got := client.ResponseOf(tok); got != r {
		t.Errorf("ResponseOf = %p, want %p", got, r)
	}
	// A token restored from storage gets its fields back.
	restored := client.WithFields(&oauth2.Token{AccessToken: "a"}, client.Fields(tok))
	if client.ResponseOf(restored).ConsumerUID != "8" {
		t.Errorf("WithFields did not restore the response")
	}
}

// The fallback to 3600 s is said in a debug log, through a source.
func TestMissingExpiryIsLogged(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, `{"AccessToken":"abc"}`) })
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Now()
	tok, err := client.NewP21UserSource(srv.URL, "u", "p", client.WithLogger(log), client.WithClock(func() time.Time { return now })).Token()
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expiry.Equal(now.Add(3600 * time.Second)) {
		t.Errorf("Expiry = %v, want now + 3600s", tok.Expiry)
	}
	if !strings.Contains(logs.String(), "no usable lifetime") || !strings.Contains(logs.String(), "assumed_seconds=3600") {
		t.Errorf("no debug log about the assumed lifetime: %s", logs.String())
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"AccessToken":"a","RefreshToken":"r","ExpiresInSeconds":86400,"TokenType":"Bearer"}`,
		`{"AccessToken":"a","TokenType":"Bearer","UserName":"","ExpiresIn":630720000,"RefreshToken":"","Scope":"/api","SessionId":"s","ConsumerUid":"8","AppKey":null}`,
		`{"access_token":"a","expires_in":"3600"}`,
		`{"error":"invalid_grant","error_description":"x"}`,
		`{"AccessToken":"a","ExpiresIn":1e400}`,
		`{"AccessToken":"a","ExpiresIn":"-1"}`,
		`{"AccessToken":"a","access_token":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkParse(t, body)
		// A well-formed answer built from the fuzz input round-trips.
		tok := string(body)
		if !utf8.ValidString(tok) {
			return // JSON cannot carry it unchanged
		}
		b, _ := json.Marshal(map[string]any{"AccessToken": tok, "ExpiresIn": len(body)})
		r, err := client.ParseResponse(b)
		if tok == "" {
			if err == nil {
				t.Fatal("an empty access token was accepted")
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseResponse(%s): %v", b, err)
		}
		if r.AccessToken != tok || r.ExpiresIn != int64(len(body)) {
			t.Fatalf("round trip: got %q/%d", r.AccessToken, r.ExpiresIn)
		}
	})
}

func FuzzParseXML(f *testing.F) {
	for _, s := range []string{
		`<?xml version="1.0" encoding="utf-8"?><TokenResponse><AccessToken>a</AccessToken><TokenType>Bearer</TokenType><ExpiresIn>86400</ExpiresIn><RefreshToken>r</RefreshToken></TokenResponse>`,
		"<TokenResponse>\n  <ExpiresIn> 5 </ExpiresIn>\n  <AccessToken>a</AccessToken>\n</TokenResponse>",
		`<ErrorResponse><error>invalid_grant</error><error_description>x</error_description></ErrorResponse>`,
		`<string>{"AccessToken":"a"}</string>`,
		`<a xmlns:i="x"><AccessToken i:nil="true"/><b><c/></b></a>`,
		`<?xml version="1.0" encoding="utf-16"?><TokenResponse><AccessToken>a</AccessToken></TokenResponse>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkParse(t, body)
	})
}

// checkParse holds for any input: no panic; a success has an access token
// and a sane lifetime, and converts to a token.
func checkParse(t *testing.T, body []byte) {
	t.Helper()
	r, err := client.ParseResponse(body)
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	if r.AccessToken == "" {
		t.Fatal("success without an access token")
	}
	if r.ExpiresIn < 0 {
		t.Fatalf("negative lifetime %d", r.ExpiresIn)
	}
	now := time.Now()
	if tok := r.Token(now); !tok.Expiry.After(now) {
		t.Fatalf("expiry %v not after now", tok.Expiry)
	}
}

// Token endpoints answering in odd shapes, over HTTP.
func TestOddTokenEndpoints(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		access    string
		expiresIn time.Duration
		status    int // of the *Error, when one is expected
		code      string
	}{
		{"xml despite accept json", func(w http.ResponseWriter, r *http.Request) {
			writeXML(w, 200, "<?xml version=\"1.0\"?>\n<TokenResponse>\n  <RefreshToken>r</RefreshToken>\n  <ExpiresIn>86400</ExpiresIn>\n  <AccessToken>x</AccessToken>\n</TokenResponse>\n")
		}, "x", 86400 * time.Second, 0, ""},
		{"xml labelled json", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `<TokenResponse><AccessToken>y</AccessToken><ExpiresIn>"60"</ExpiresIn></TokenResponse>`)
		}, "y", time.Hour, 0, ""},
		{"string number", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"AccessToken":"z","ExpiresInSeconds":"7200"}`)
		}, "z", 2 * time.Hour, 0, ""},
		{"missing expiry", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"access_token":"m","token_type":"bearer"}`)
		}, "m", time.Hour, 0, ""},
		{"error body with 200", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`)
		}, "", 0, 200, "invalid_grant"},
		{"xml error body with 200", func(w http.ResponseWriter, r *http.Request) {
			writeXML(w, 200, `<ErrorResponse><error>invalid_client</error><error_description>Client authentication failed.</error_description></ErrorResponse>`)
		}, "", 0, 200, "invalid_client"},
		{"xml error 401", func(w http.ResponseWriter, r *http.Request) {
			writeXML(w, 401, `<ErrorResponse><error>invalid_grant</error><error_description>The user name or password is incorrect.</error_description></ErrorResponse>`)
		}, "", 0, 401, "invalid_grant"},
		{"empty 200", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }, "", 0, 200, ""},
		{"html 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Login</body></html>")
		}, "", 0, 200, ""},
		{"huge body", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"AccessToken":"`+strings.Repeat("a", 2<<20)+`"}`)
		}, "", 0, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			now := time.Now()
			tok, err := client.NewP21UserSource(srv.URL, "u", "p", client.WithClock(func() time.Time { return now }),
				client.WithRetries(1, 0, 0)).Token()
			switch {
			case tt.status > 0:
				var e *client.Error
				if !errors.As(err, &e) || e.Status != tt.status || e.Code != tt.code {
					t.Fatalf("err = %v, want status %d code %q", err, tt.status, tt.code)
				}
			case tt.status < 0:
				if err == nil {
					t.Fatal("no error")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if tok.AccessToken != tt.access || !tok.Expiry.Equal(now.Add(tt.expiresIn)) {
					t.Fatalf("token %q expiring in %v", tok.AccessToken, tok.Expiry.Sub(now))
				}
			}
		})
	}
}
