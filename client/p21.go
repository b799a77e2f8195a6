package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// P21 token endpoint paths, relative to the server's base URL.
const (
	P21TokenPathV2 = "/api/security/token/v2"
	P21TokenPathV1 = "/api/security/token"
)

// joinURL appends an absolute path to a base URL that may end in a slash.
func joinURL(base, path string) string {
	return strings.TrimRight(base, "/") + path
}

// P21UserSource gets P21 tokens with a user name and password. Each call
// of Token or TokenContext signs in anew (and so creates a new middleware
// session); wrap it in [NewCachedSource] to reuse tokens.
type P21UserSource struct {
	baseURL, username, password string
	o                           options
}

// NewP21UserSource returns a source for the P21 user flow: V2
// (POST {baseURL}/api/security/token/v2 with {"username","password"}), or
// V1 with [WithV1] (username and password headers, empty body).
// It honours [WithHTTPClient], [WithLogger], [WithClock], [WithV1],
// [WithRetries] and [WithUserAgent].
func NewP21UserSource(baseURL, username, password string, opts ...Option) *P21UserSource {
	return &P21UserSource{baseURL: baseURL, username: username, password: password, o: buildOptions(opts)}
}

// Token signs in and returns a new token.
func (s *P21UserSource) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext signs in and returns a new token.
func (s *P21UserSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return s.o.fetchToken(ctx, s.request())
}

// NewTokenRequest returns the HTTP request that TokenContext sends, for
// tools that send it themselves (load tests, debugging). It carries the
// password: do not log it.
func (s *P21UserSource) NewTokenRequest(ctx context.Context) (*http.Request, error) {
	return s.o.newTokenRequest(ctx, s.request())
}

func (s *P21UserSource) request() tokenRequest {
	if s.o.v1 {
		return p21V1(s.baseURL, map[string]string{"username": s.username, "password": s.password}, s.password)
	}
	return p21V2(s.baseURL, struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{s.username, s.password}, s.password)
}

// Renew exchanges old's refresh token for a new token
// ({"GrantType":"refresh_token","RefreshToken":…} on V2). When the server
// refuses the refresh token (spent, expired, session ended), it signs in
// with the password instead. A token without a refresh token just signs in.
func (s *P21UserSource) Renew(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	if old == nil || old.RefreshToken == "" {
		return s.TokenContext(ctx)
	}
	tok, err := s.o.fetchToken(ctx, p21V2(s.baseURL, struct {
		GrantType    string
		RefreshToken string
	}{"refresh_token", old.RefreshToken}, old.RefreshToken, s.password))
	if err == nil {
		return tok, nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return nil, err // the server is unreachable: a password sign-in would fail the same way
	}
	s.o.logger.Debug("refresh token refused; signing in with the password", "status", e.Status, "code", e.Code)
	return s.TokenContext(ctx)
}

// String describes the source without its password.
func (s *P21UserSource) String() string {
	v := "V2"
	if s.o.v1 {
		v = "V1"
	}
	return fmt.Sprintf("P21 user %q at %s (%s)", s.username, redactURL(s.baseURL), v)
}

// Format prints the source as String does, for every verb, so that no
// formatting of it can reveal the password.
func (s *P21UserSource) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// P21ConsumerSource gets P21 tokens with a consumer key, optionally with a
// user context. Each call requests a new token (and middleware session);
// wrap it in [NewCachedSource] to reuse tokens.
type P21ConsumerSource struct {
	baseURL, key, username string
	o                      options
}

// NewP21ConsumerSource returns a source for the P21 consumer flow: V2
// ({"GrantType":"client_credentials","ClientSecret":key} plus "username"
// when username is not empty), or V1 with [WithV1] (appkey header, plus a
// username header). The username gives the token a user context (needed
// by the Interactive API); no password is involved.
// It honours [WithHTTPClient], [WithLogger], [WithClock], [WithV1],
// [WithRetries] and [WithUserAgent].
func NewP21ConsumerSource(baseURL, consumerKey, username string, opts ...Option) *P21ConsumerSource {
	return &P21ConsumerSource{baseURL: baseURL, key: consumerKey, username: username, o: buildOptions(opts)}
}

// Token requests a new token.
func (s *P21ConsumerSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext requests a new token.
func (s *P21ConsumerSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return s.o.fetchToken(ctx, s.request())
}

// NewTokenRequest returns the HTTP request that TokenContext sends, for
// tools that send it themselves (load tests, debugging). It carries the
// consumer key: do not log it.
func (s *P21ConsumerSource) NewTokenRequest(ctx context.Context) (*http.Request, error) {
	return s.o.newTokenRequest(ctx, s.request())
}

func (s *P21ConsumerSource) request() tokenRequest {
	if s.o.v1 {
		h := map[string]string{"appkey": s.key}
		if s.username != "" {
			h["username"] = s.username
		}
		return p21V1(s.baseURL, h, s.key)
	}
	return p21V2(s.baseURL, struct {
		GrantType    string
		ClientSecret string
		Username     string `json:"username,omitempty"`
	}{"client_credentials", s.key, s.username}, s.key)
}

// String describes the source without its key.
func (s *P21ConsumerSource) String() string {
	v := "V2"
	if s.o.v1 {
		v = "V1"
	}
	u := ""
	if s.username != "" {
		u = fmt.Sprintf(" for user %q", s.username)
	}
	return fmt.Sprintf("P21 consumer key%s at %s (%s)", u, redactURL(s.baseURL), v)
}

// Format prints the source as String does, for every verb, so that no
// formatting of it can reveal the key.
func (s *P21ConsumerSource) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// p21V2 is a V2 request with a JSON body.
func p21V2(baseURL string, body any, secrets ...string) tokenRequest {
	u := joinURL(baseURL, P21TokenPathV2)
	return tokenRequest{endpoint: redactURL(u), secrets: secrets, build: func(ctx context.Context) (*http.Request, error) {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, errors.New("cannot encode the request body")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
		if err != nil {
			return nil, errBadURL
		}
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	}}
}

// p21V1 is a V1 request: credentials in headers, empty body.
func p21V1(baseURL string, headers map[string]string, secrets ...string) tokenRequest {
	u := joinURL(baseURL, P21TokenPathV1)
	return tokenRequest{endpoint: redactURL(u), secrets: secrets, build: func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
		if err != nil {
			return nil, errBadURL
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			// Set would canonicalise the names; P21 documents them in lower case.
			req.Header[k] = []string{v}
		}
		return req, nil
	}}
}

// errBadURL replaces net/url's parse errors, which quote the whole URL
// (user info included).
var errBadURL = errors.New("the URL is not valid")
