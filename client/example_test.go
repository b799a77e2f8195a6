package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/client"
	"golang.org/x/oauth2"
)

// exampleServer stands in for a P21 server: the V2 token endpoint (user
// api_user/your_password, consumer key 62ccc18a-…), the UI router, and one
// protected API path. It counts token requests.
func exampleServer() (*httptest.Server, *atomic.Int64) {
	var issued atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/security/token/v2":
			var body map[string]string
			json.NewDecoder(r.Body).Decode(&body)
			switch {
			case body["username"] == "api_user" && body["password"] == "your_password":
				n := issued.Add(1)
				fmt.Fprintf(w, `{"AccessToken":"user-token-%d","RefreshToken":"refresh-%d","ExpiresInSeconds":86400,"TokenType":"Bearer"}`, n, n)
			case body["GrantType"] == "client_credentials" && body["ClientSecret"] == "62ccc18a-25e2-440c-bf6d-749c117fa9db":
				n := issued.Add(1)
				fmt.Fprintf(w, `{"AccessToken":"consumer-token-%d","TokenType":"Bearer","UserName":%q,"ExpiresIn":630720000,"RefreshToken":"","Scope":"/api;/p21sdk","SessionId":"a1b2c3d4","ConsumerUid":"8","AppKey":null}`, n, body["username"])
			default:
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`)
			}
		case "/api/ui/router/v1":
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, `{"Url":%q}`, srv.URL+"/uiserver0")
		case "/odataservice/odata/table/supplier":
			fmt.Fprintf(w, `{"value":[{"supplier_id":10,"authorized_as":%q}]}`, r.Header.Get("Authorization"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	return srv, &issued
}

func ExampleNewP21UserSource() {
	srv, _ := exampleServer()
	defer srv.Close()

	src := client.NewP21UserSource(srv.URL, "api_user", "your_password")
	tok, err := src.TokenContext(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.RefreshToken)
	fmt.Println("valid for about", time.Until(tok.Expiry).Round(time.Hour))

	_, err = client.NewP21UserSource(srv.URL, "api_user", "wrong").Token()
	fmt.Println(strings.ReplaceAll(err.Error(), srv.URL, "https://p21"))
	// Output:
	// user-token-1 refresh-1
	// valid for about 24h0m0s
	// token request to https://p21/api/security/token/v2 failed: HTTP 401 Unauthorized: invalid_grant: The user name or password is incorrect.
}

func ExampleNewP21ConsumerSource() {
	srv, _ := exampleServer()
	defer srv.Close()

	// The username is optional; it gives the token a user context.
	src := client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", "api_user")
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	r := client.ResponseOf(tok)
	fmt.Println(r.AccessToken, r.UserName, r.Scope, r.SessionID, r.ConsumerUID, r.ExpiresIn)
	fmt.Println(tok.Extra("ConsumerUid"))
	// Output:
	// consumer-token-1 api_user /api;/p21sdk a1b2c3d4 8 630720000
	// 8
}

func ExampleNewAPXSource() {
	// An APX-style endpoint: Basic client authentication, form body.
	apx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		if id != "my-client" || secret != "s%2Fcr%3At" || r.PostForm.Get("grant_type") != "password" ||
			r.PostForm.Get("Username") != "svc_user" || r.PostForm.Get("Password") != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid Login ID or Password"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"apx-token","token_type":"bearer","expires_in":3600,"scope":"access"}`)
	}))
	defer apx.Close()

	// In production the URL is client.APXProduction (or client.APXUAT).
	// The secret "s/cr:t" is sent form-encoded in the Basic header (RFC 6749
	// §2.3.1); client.WithRawBasicAuth() sends it as is.
	src := client.NewAPXSource(apx.URL, "my-client", "s/cr:t", "svc_user", "pw")
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.Type(), tok.Extra("scope"))
	// Output:
	// apx-token Bearer access
}

func ExampleNewClientCredentialsSource() {
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if id, _, _ := r.BasicAuth(); id != "reporting" || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"cc-token","token_type":"bearer","expires_in":"600"}`)
	}))
	defer as.Close()

	tok, err := client.NewClientCredentialsSource(as.URL, "reporting", "secret").Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, client.ResponseOf(tok).ExpiresIn)
	// Output:
	// cc-token 600
}

func ExampleNewCachedSource() {
	srv, issued := exampleServer()
	defer srv.Close()

	src := client.NewCachedSource(
		client.NewP21UserSource(srv.URL, "api_user", "your_password"),
		client.WithRefreshBefore(5*time.Minute), // the default
		client.WithOnToken(func(t *oauth2.Token) { fmt.Println("new token:", t.AccessToken) }),
	)
	for range 3 {
		tok, err := src.Token()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("using", tok.AccessToken)
	}
	fmt.Println("token requests:", issued.Load())
	// Output:
	// new token: user-token-1
	// using user-token-1
	// using user-token-1
	// using user-token-1
	// token requests: 1
}

func ExampleNewHTTPClient() {
	srv, _ := exampleServer()
	defer srv.Close()

	src := client.NewCachedSource(client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", ""))
	hc := client.NewHTTPClient(src, nil) // every request carries the token; a 401 is retried once
	resp, err := hc.Get(srv.URL + "/odataservice/odata/table/supplier")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 {"value":[{"supplier_id":10,"authorized_as":"Bearer consumer-token-1"}]}
}

func ExampleClient_UIServerURL() {
	srv, _ := exampleServer()
	defer srv.Close()

	c := client.NewClient(srv.URL, client.NewP21UserSource(srv.URL, "api_user", "your_password"))
	ui, err := c.UIServerURL(context.Background(), client.External)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Replace(ui, srv.URL, "https://p21", 1))

	// Interactive API paths resolve against it (the router is asked once per Client).
	u, err := c.UIURL(context.Background(), "/api/ui/interactive/sessions/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Replace(u, srv.URL, "https://p21", 1))
	// Output:
	// https://p21/uiserver0
	// https://p21/uiserver0/api/ui/interactive/sessions/
}

func ExampleFromEnv() {
	srv, _ := exampleServer()
	defer srv.Close()

	// os.Getenv in a program; a map here.
	env := map[string]string{
		"P21_BASE_URL":     srv.URL,
		"P21_CONSUMER_KEY": "62ccc18a-25e2-440c-bf6d-749c117fa9db",
		"P21_USERNAME":     "api_user", // the user context of the consumer token
	}
	c, err := client.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		log.Fatal(err)
	}
	req, _ := c.NewRequest(context.Background(), http.MethodGet, "/odataservice/odata/table/supplier", nil)
	resp, err := c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)

	_, err = client.FromEnv(func(k string) string { return map[string]string{"P21_BASE_URL": srv.URL}[k] })
	fmt.Println(err)
	// Output:
	// 200
	// P21_USERNAME is not set (needed for the p21-user flow)
}

func ExampleParseResponse() {
	// Some P21 middleware answers XML, whatever was asked for.
	r, err := client.ParseResponse([]byte(`<?xml version="1.0" encoding="utf-8"?>
<TokenResponse>
    <AccessToken>eyJhbGciOiJSUzI1NiIs</AccessToken>
    <TokenType>Bearer</TokenType>
    <ExpiresIn>86400</ExpiresIn>
    <RefreshToken>dGhpcyBpcyBhIHNhbXBsZQ</RefreshToken>
</TokenResponse>`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.AccessToken, r.TokenType, r.ExpiresIn)

	// An error body is an error, even with status 200.
	_, err = client.ParseResponse([]byte(`{"error":"invalid_grant","error_description":"The user name or password is incorrect."}`))
	fmt.Println(err)
	// Output:
	// eyJhbGciOiJSUzI1NiIs Bearer 86400
	// token response: invalid_grant: The user name or password is incorrect.
}

func ExampleTransport() {
	srv, issued := exampleServer()
	defer srv.Close()
	// An API that has ended the session of the first token (as after
	// `gatehouse session end`): it accepts only the second one.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer user-token-2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "created %s", body)
	}))
	defer api.Close()

	src := client.NewCachedSource(client.NewP21UserSource(srv.URL, "api_user", "your_password"))
	hc := &http.Client{Transport: &client.Transport{Source: src}}
	// strings.NewReader gives the request a GetBody, so it can be sent again.
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/api/sales/orders", strings.NewReader(`{"customer_id":10}`))
	resp, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", issued.Load(), "token requests")
	// Output:
	// 200 created {"customer_id":10} after 2 token requests
}

// A load test or a debugging tool can send the token request itself.
func ExampleTokenRequester() {
	srv, issued := exampleServer()
	defer srv.Close()

	src := client.NewP21ConsumerSource(srv.URL, "62ccc18a-25e2-440c-bf6d-749c117fa9db", "")
	req, err := src.NewTokenRequest(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(req.Method, req.URL.Path, req.Header.Get("Content-Type"))
	for range 3 {
		r := req.Clone(context.Background())
		r.Body, _ = req.GetBody() // a fresh copy of the body for each send
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("tokens issued:", issued.Load())
	// Output:
	// POST /api/security/token/v2 application/json
	// 200 OK
	// 200 OK
	// 200 OK
	// tokens issued: 3
}

// The plain OAuth2 password grant (RFC 6749 §4.3), for servers that spell
// the fields username and password; NewAPXSource sends APX's Username and
// Password.
func ExampleNewPasswordSource() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.PostForm.Get("username") != "svc_user" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"eyJ-example","token_type":"bearer","expires_in":3600}`)
	}))
	defer srv.Close()

	src := client.NewPasswordSource(srv.URL+"/oauth/token", "my-app", "client-secret", "svc_user", "pw")
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.Type())
	// Output: eyJ-example Bearer
}
