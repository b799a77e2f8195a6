package gatehouse

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is a protocol error: what a client is told when a request fails. It
// is rendered in one place per wire format (JSON, XML). Description never
// holds a secret.
type Error struct {
	Status      int    // HTTP status
	Code        string // OAuth-style error code, e.g. invalid_grant
	Description string
	// RetryAfter, when set, becomes a Retry-After header (429, 503).
	RetryAfter time.Duration
	// Header holds extra response headers (WWW-Authenticate, Allow, …).
	Header http.Header
	// Err is the underlying cause, for logs only; it is never sent.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Err)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// WithHeader returns a copy of e carrying an extra response header.
func (e *Error) WithHeader(key, value string) *Error {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Add(key, value)
	return &c
}

// Error codes used on the wire.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidGrant         = "invalid_grant"
	CodeInvalidClient        = "invalid_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeSlowDown             = "slow_down"
	CodeNotFound             = "not_found"
	CodeInvalidToken         = "invalid_token"
	CodeInsufficientScope    = "insufficient_scope"
	CodeAccessDenied         = "access_denied"
	CodeInvalidUser          = "invalid_user"
	CodeTemporarilyUnavail   = "temporarily_unavailable"
	CodeServerError          = "server_error"
	CodeGone                 = "gone"
)

// Fixed descriptions that clients match on; they must not vary.
const (
	DescBadCredentials = "The user name or password is incorrect."
	DescBadClient      = "Client authentication failed."
)

// ErrBadCredentials is the one answer for a wrong password, an unknown,
// deleted or locked-out user: identical bytes for all four.
func ErrBadCredentials() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidGrant, Description: DescBadCredentials}
}

// ErrBadClient is the answer for an unknown, disabled or wrong consumer key.
func ErrBadClient() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidClient, Description: DescBadClient}
}

// ErrInvalidRequest reports a malformed request; the description names what is wrong.
func ErrInvalidRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

// ErrInvalidGrant reports a spent, unknown or expired refresh token (400).
func ErrInvalidGrant(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Description: desc}
}

// ErrStoreDown is the answer when the store cannot be read: 503 with
// Retry-After, never a wrong 401.
func ErrStoreDown(cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeTemporarilyUnavail,
		Description: "The token service cannot reach its store; try again shortly.",
		RetryAfter:  2 * time.Second, Err: cause}
}

// Clip keeps client-supplied text short and printable in messages: at most
// max bytes (cut at a character boundary, "…" added), invalid UTF-8
// replaced by "?".
func Clip(s string, max int) string {
	if len(s) > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
