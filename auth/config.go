// Package auth holds what issuing, verifying and administering tokens
// share: the token rules (Config), consumer keys and signing keys. The
// services themselves are its subpackages: issue (P21 and OAuth2 grants),
// verify (bearer verification and the authorization decision) and admin
// (administration). None of them sees an http.Request; the protocol
// handlers translate wire formats to calls on them and back.
package auth

import (
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Config holds the token rules of a server.
type Config struct {
	Issuer string // iss claim of P21 tokens, default P21.Soa
	// OAuthIssuer is the iss claim of tokens issued by /oauth/token, equal
	// to the issuer of the RFC 8414 metadata so that validators that
	// discover it accept the tokens. Empty: Issuer (the server sets its
	// public URL).
	OAuthIssuer  string
	UserScope    string        // aud of user tokens, default /api
	UserTokenTTL time.Duration // access-token lifetime of user tokens, default 24h
	// RefreshTTL is how long a user session can be refreshed after its last
	// refresh; the session expires then. Default 7 days, never below UserTokenTTL.
	RefreshTTL       time.Duration
	UserTokenAlg     string // default RS256
	ConsumerTokenAlg string // default HS256
	// OAuthTokenAlg signs the tokens of /oauth/token (all its grants):
	// default ES256, asymmetric so that any validator can check them with
	// the JWKS.
	OAuthTokenAlg string
	// MaxSessions caps the active sessions of one principal; 0 means no cap.
	MaxSessions int
	// LockoutThreshold failures within LockoutWindow lock a username; 0 disables lockout.
	LockoutThreshold int
	LockoutWindow    time.Duration
	// Leeway is the clock skew tolerated on exp and nbf when verifying.
	Leeway time.Duration
	// RefreshReuseGrace is how long after a refresh a retry with the refresh
	// token it spent gets the same new pair again instead of ending the
	// session as a reuse; 0 (the default) allows no retry.
	RefreshReuseGrace time.Duration
}

// MaxRefreshReuseGrace bounds RefreshReuseGrace: long enough for a client
// to retry a response it lost, short enough that a stolen spent token is
// still caught.
const MaxRefreshReuseGrace = 5 * time.Minute

// Defaults fills zero fields with the documented defaults.
func (c Config) Defaults() Config {
	if c.Issuer == "" {
		c.Issuer = gatehouse.DefaultIssuer
	}
	if c.UserScope == "" {
		c.UserScope = "/api"
	}
	if c.UserTokenTTL <= 0 {
		c.UserTokenTTL = 24 * time.Hour
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 7 * 24 * time.Hour
	}
	if c.RefreshTTL < c.UserTokenTTL {
		c.RefreshTTL = c.UserTokenTTL
	}
	if c.UserTokenAlg == "" {
		c.UserTokenAlg = "RS256"
	}
	if c.ConsumerTokenAlg == "" {
		c.ConsumerTokenAlg = "HS256"
	}
	if c.OAuthTokenAlg == "" {
		c.OAuthTokenAlg = "ES256"
	}
	if c.LockoutWindow <= 0 {
		c.LockoutWindow = 15 * time.Minute
	}
	if c.Leeway <= 0 {
		c.Leeway = 30 * time.Second
	}
	return c
}

// Signing gives the algorithm and the issuer of the access tokens of a
// session started by flow: OAuth2 sessions (password and client
// credentials grants) get the OAuth2 ones, whichever grant refreshes them;
// P21 consumer sessions the consumer algorithm; P21 user sessions the user
// algorithm.
func (c Config) Signing(flow string) (alg, issuer string) {
	switch flow {
	case gatehouse.FlowOAuthPassword, gatehouse.FlowOAuthClient:
		if c.OAuthIssuer == "" {
			return c.OAuthTokenAlg, c.Issuer
		}
		return c.OAuthTokenAlg, c.OAuthIssuer
	case gatehouse.FlowConsumer:
		return c.ConsumerTokenAlg, c.Issuer
	}
	return c.UserTokenAlg, c.Issuer
}

// Algorithms lists the signing algorithms in use, each once.
func (c Config) Algorithms() []string {
	var out []string
	for _, a := range []string{c.UserTokenAlg, c.ConsumerTokenAlg, c.OAuthTokenAlg} {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
