package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// The APX token endpoints.
const (
	APXProduction = "https://apxjwtauthprod.apx.com/oauth/token"
	APXUAT        = "https://apxjwtauthuat.apx.com/oauth/token"
)

// OAuth2Source gets tokens from an OAuth2 token endpoint with HTTP Basic
// client authentication: the APX password grant or plain client
// credentials. Each call requests a new token; wrap it in
// [NewCachedSource] to reuse tokens.
type OAuth2Source struct {
	tokenURL, clientID, clientSecret string
	username, password               string
	grant                            string
	// rfcNames: the password grant's fields as RFC 6749 §4.3.2 spells
	// them (username, password) rather than as APX does.
	rfcNames bool
	o        options
}

// NewAPXSource returns a source for the APX password grant:
// POST tokenURL with Basic client authentication and the form
// grant_type=password&Username=…&Password=… (APX's capitalised names).
// tokenURL is usually [APXProduction] or [APXUAT].
// It honours [WithHTTPClient], [WithLogger], [WithClock],
// [WithRawBasicAuth], [WithRetries] and [WithUserAgent].
func NewAPXSource(tokenURL, clientID, clientSecret, username, password string, opts ...Option) *OAuth2Source {
	return &OAuth2Source{tokenURL: tokenURL, clientID: clientID, clientSecret: clientSecret,
		username: username, password: password, grant: "password", o: buildOptions(opts)}
}

// NewPasswordSource returns a source for the plain OAuth2 (RFC 6749 §4.3)
// resource owner password grant: like [NewAPXSource], with the form fields
// spelled username and password, as RFC 6749 has them.
// It honours the same options as [NewAPXSource].
func NewPasswordSource(tokenURL, clientID, clientSecret, username, password string, opts ...Option) *OAuth2Source {
	s := NewAPXSource(tokenURL, clientID, clientSecret, username, password, opts...)
	s.rfcNames = true
	return s
}

// NewClientCredentialsSource returns a source for the OAuth2 client
// credentials grant: POST tokenURL with Basic client authentication and
// the form grant_type=client_credentials.
// It honours the same options as [NewAPXSource].
func NewClientCredentialsSource(tokenURL, clientID, clientSecret string, opts ...Option) *OAuth2Source {
	return &OAuth2Source{tokenURL: tokenURL, clientID: clientID, clientSecret: clientSecret,
		grant: "client_credentials", o: buildOptions(opts)}
}

// Token requests a new token.
func (s *OAuth2Source) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext requests a new token.
func (s *OAuth2Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return s.o.fetchToken(ctx, s.grantRequest())
}

// NewTokenRequest returns the HTTP request that TokenContext sends, for
// tools that send it themselves (load tests, debugging). It carries the
// client secret (and the password grant's password): do not log it.
func (s *OAuth2Source) NewTokenRequest(ctx context.Context) (*http.Request, error) {
	return s.o.newTokenRequest(ctx, s.grantRequest())
}

// grantRequest is the request of the source's own grant.
func (s *OAuth2Source) grantRequest() tokenRequest {
	form := "grant_type=" + s.grant
	if s.grant == "password" {
		u, p := "&Username=", "&Password="
		if s.rfcNames {
			u, p = "&username=", "&password="
		}
		form += u + url.QueryEscape(s.username) + p + url.QueryEscape(s.password)
	}
	return s.request(form, s.password)
}

// Renew uses old's refresh token (grant_type=refresh_token) when it has
// one, and falls back to the source's own grant when the server refuses it.
func (s *OAuth2Source) Renew(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	if old == nil || old.RefreshToken == "" {
		return s.TokenContext(ctx)
	}
	tok, err := s.o.fetchToken(ctx, s.request("grant_type=refresh_token&refresh_token="+url.QueryEscape(old.RefreshToken), old.RefreshToken))
	if err == nil {
		return tok, nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return nil, err
	}
	s.o.logger.Debug("refresh token refused; requesting a new token", "status", e.Status, "code", e.Code)
	return s.TokenContext(ctx)
}

func (s *OAuth2Source) request(form string, secrets ...string) tokenRequest {
	auth := basicAuth(s.clientID, s.clientSecret, s.o.rawBasic)
	// The Basic credentials, encoded, are a secret too.
	secrets = append(secrets, s.clientSecret, strings.TrimPrefix(auth, "Basic "))
	return tokenRequest{endpoint: redactURL(s.tokenURL), secrets: secrets, build: func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.tokenURL, strings.NewReader(form))
		if err != nil {
			return nil, errBadURL
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		return req, nil
	}}
}

// basicAuth builds the Authorization header for client authentication.
// RFC 6749 §2.3.1 has the id and secret form-encoded before they are
// joined, so that a colon in the id survives; raw skips that for servers
// that do not decode them.
func basicAuth(id, secret string, raw bool) string {
	if !raw {
		id, secret = url.QueryEscape(id), url.QueryEscape(secret)
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// String describes the source without its secrets.
func (s *OAuth2Source) String() string {
	if s.grant == "password" {
		return fmt.Sprintf("OAuth2 password grant for user %q, client %q at %s", s.username, s.clientID, redactURL(s.tokenURL))
	}
	return fmt.Sprintf("OAuth2 client credentials for client %q at %s", s.clientID, redactURL(s.tokenURL))
}

// Format prints the source as String does, for every verb, so that no
// formatting of it can reveal a secret.
func (s *OAuth2Source) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }
