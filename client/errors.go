package client

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Error is a refusal or an unusable answer from a server: the HTTP status
// and, when the server sent them (in JSON or XML), its error code and
// description. A 200 answer that holds no access token is an Error too,
// with Status 200.
type Error struct {
	// Op says what was attempted, e.g. "token request".
	Op string
	// Endpoint is the URL asked, without user info or query.
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// Code is the server's error code (OAuth2 "error"), e.g. invalid_grant; may be empty.
	Code string
	// Description is the server's error_description (or the problem found
	// in its answer), cleaned of control characters and shortened.
	Description string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

// Error describes the failure: what, where, the status, the server's code
// and description. It never holds a secret.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
	} else {
		b.WriteString("request")
	}
	if e.Endpoint != "" {
		b.WriteString(" to ")
		b.WriteString(e.Endpoint)
	}
	if e.Status != 0 {
		// A body parsed without its HTTP exchange has no status.
		b.WriteString(" failed: HTTP " + strconv.Itoa(e.Status))
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(" " + t)
		}
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// Temporary reports whether trying again later may succeed: server errors
// (5xx) and 429.
func (e *Error) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// redactURL renders u for messages: no user info, no query, no fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return c.String()
}

// clean makes server-supplied text safe to show: printable characters
// only, at most max runes.
func clean(s string, max int) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// parseRetryAfter reads a Retry-After header given in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}
