package issue

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"

	"github.com/gatehouse/gatehouse/masterkey"
)

// RefreshTokens derives the replacement of a refresh token from the token
// itself, with HMAC-SHA-256 under a secret derived from the master key. A
// retry of a refresh within the reuse grace therefore presents the same
// replacement and gets the same pair back, without the store keeping any
// token in a form that could be used: it keeps SHA-256 hashes only, and
// without the master key one token does not tell the next. Every process
// sharing a store derives the same replacements.
type RefreshTokens struct {
	secret []byte
}

// NewRefreshTokens derives the secret from the master key.
func NewRefreshTokens(mk *masterkey.Key) *RefreshTokens {
	return &RefreshTokens{secret: mk.Derive("gatehouse refresh-token rotation v1", 32)}
}

// newRandomRefreshTokens is for a service built without a master key: its
// replacements are stable within the process only.
func newRandomRefreshTokens() *RefreshTokens {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return &RefreshTokens{secret: b}
}

// next returns the replacement of refresh (32 bytes, unpadded base64url,
// like a first refresh token) and the jti of the access token issued with
// it.
func (r *RefreshTokens) next(refresh string) (newRefresh, jti string) {
	m := hmac.New(sha256.New, r.secret)
	m.Write([]byte("refresh\x00"))
	m.Write([]byte(refresh))
	newRefresh = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	m.Reset()
	m.Write([]byte("jti\x00"))
	m.Write([]byte(refresh))
	jti = base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
	return newRefresh, jti
}
