// Package token signs and verifies gatehouse's JWT access tokens with the
// signing keys kept in the store: it builds a key ring from stored keys
// (opening their private parts with the master key), signs with the active
// key of an algorithm, verifies with the algorithm pinned to each kid, and
// publishes the public keys as a JWKS.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/wire"
	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of a gatehouse access token (P21 shape).
type Claims struct {
	Issuer    string
	Subject   string // username, "" when none
	Audience  string // the scope string, e.g. /api;/p21sdk
	ExpiresAt time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	ID        string // jti
	SessionID string // P21.SessionId
	// ConsumerUID is P21.ConsumerUid, "" for user tokens.
	ConsumerUID string

	// Set by Verify: the key that signed the token and its algorithm.
	KeyID     string
	Algorithm string
}

// wireClaims is the JSON payload. sub is always present (P21 sends "" for a
// consumer token without username); P21.ConsumerUid only on consumer tokens.
type wireClaims struct {
	Iss         string `json:"iss"`
	Sub         string `json:"sub"`
	Aud         string `json:"aud"`
	Exp         int64  `json:"exp"`
	Iat         int64  `json:"iat"`
	Nbf         int64  `json:"nbf"`
	Jti         string `json:"jti"`
	SessionID   string `json:"P21.SessionId"`
	ConsumerUID string `json:"P21.ConsumerUid,omitempty"`
}

func numericDate(s int64) *jwt.NumericDate { return jwt.NewNumericDate(time.Unix(s, 0)) }

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(c.Exp), nil }
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return numericDate(c.Iat), nil }
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return numericDate(c.Nbf), nil }
func (c *wireClaims) GetIssuer() (string, error)                   { return c.Iss, nil }
func (c *wireClaims) GetSubject() (string, error)                  { return c.Sub, nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Aud}, nil }

func (c Claims) wire() *wireClaims {
	return &wireClaims{
		Iss: c.Issuer, Sub: c.Subject, Aud: c.Audience,
		Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), Nbf: c.NotBefore.Unix(),
		Jti: c.ID, SessionID: c.SessionID, ConsumerUID: c.ConsumerUID,
	}
}

// MarshalJSON writes the claims as encoding/json would write wireClaims,
// without reflection: golang-jwt marshals the claims of every token signed.
func (c *wireClaims) MarshalJSON() ([]byte, error) {
	return c.appendJSON(make([]byte, 0, 256)), nil
}

// appendJSON appends the claims in their JSON form.
func (c *wireClaims) appendJSON(b []byte) []byte {
	b = append(b, `{"iss":`...)
	b = wire.AppendJSONString(b, c.Iss)
	b = append(b, `,"sub":`...)
	b = wire.AppendJSONString(b, c.Sub)
	b = append(b, `,"aud":`...)
	b = wire.AppendJSONString(b, c.Aud)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.Exp, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.Iat, 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, c.Nbf, 10)
	b = append(b, `,"jti":`...)
	b = wire.AppendJSONString(b, c.Jti)
	b = append(b, `,"P21.SessionId":`...)
	b = wire.AppendJSONString(b, c.SessionID)
	if c.ConsumerUID != "" {
		b = append(b, `,"P21.ConsumerUid":`...)
		b = wire.AppendJSONString(b, c.ConsumerUID)
	}
	return append(b, '}')
}

func (c *wireClaims) claims() *Claims {
	return &Claims{
		Issuer: c.Iss, Subject: c.Sub, Audience: c.Aud,
		ExpiresAt: time.Unix(c.Exp, 0), IssuedAt: time.Unix(c.Iat, 0), NotBefore: time.Unix(c.Nbf, 0),
		ID: c.Jti, SessionID: c.SessionID, ConsumerUID: c.ConsumerUID,
	}
}

// Algorithms gatehouse signs with.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
	HS256 = "HS256"
)

// Algorithms lists the supported algorithms.
var Algorithms = []string{RS256, ES256, EdDSA, HS256}

// ValidAlgorithm reports whether alg is one gatehouse can sign with.
func ValidAlgorithm(alg string) bool {
	switch alg {
	case RS256, ES256, EdDSA, HS256:
		return true
	}
	return false
}

// Asymmetric reports whether alg has a public key that can be published.
func Asymmetric(alg string) bool { return alg != HS256 }

// RandomToken returns n random bytes (crypto/rand) in unpadded base64url.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Errors from Verify. Callers answer all of them with invalid_token; the
// distinction is for logs and tests.
var (
	ErrMalformed  = errors.New("token is malformed")
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrKeyRevoked: the key was withdrawn at once (gatehouse keys retire);
	// its tokens are refused with a message that says so.
	ErrKeyRevoked   = errors.New("token signed by a withdrawn key")
	ErrAlgorithm    = errors.New("token algorithm does not match its key")
	ErrSignature    = errors.New("token signature is invalid")
	ErrExpired      = errors.New("token has expired")
	ErrNotYetValid  = errors.New("token is not valid yet")
	ErrIssuer       = errors.New("token issuer is not accepted")
	ErrMissingClaim = errors.New("token lacks a required claim")
)
