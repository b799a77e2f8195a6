package client

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Response is a successful token response, read from JSON or XML. The
// named fields are found whatever their spelling (AccessToken,
// access_token, accessToken, …); Fields keeps everything the server sent.
type Response struct {
	// AccessToken is the bearer token.
	AccessToken string
	// TokenType is "Bearer" (P21) or "bearer" (OAuth2), as sent.
	TokenType string
	// RefreshToken is the refresh token, "" when none was given.
	RefreshToken string
	// ExpiresIn is the lifetime in seconds from ExpiresInSeconds, ExpiresIn
	// or expires_in; 0 when the response had none (or an unreadable one).
	ExpiresIn int64
	// Scope is the granted scope: the consumer's (P21) or the OAuth2 scope.
	Scope string
	// UserName is the consumer flow's user context ("" without one).
	UserName string
	// SessionID is the P21 middleware session (consumer flow).
	SessionID string
	// ConsumerUID is the P21 consumer's uid, e.g. "8" (consumer flow).
	ConsumerUID string
	// Fields holds every top-level field as sent: JSON values (numbers as
	// json.Number) or XML element text.
	Fields map[string]any
}

// maxExpiresIn caps absurd lifetimes so that expiry arithmetic cannot overflow.
const maxExpiresIn = 100 * 365 * 24 * 3600

// errNotTokenResponse is the parse failure for a body that is neither a
// JSON object nor an XML document.
var errNotTokenResponse = errors.New("the response is neither a JSON object nor an XML document")

// ParseResponse reads a token response body, JSON or XML (whatever the
// Content-Type says, since some P21 middleware answers XML to JSON
// requests). A body without an access token is an [*Error] carrying the
// body's error and error_description, if any.
func ParseResponse(body []byte) (*Response, error) {
	return parseResponse(body, nil)
}

// parseResponse is ParseResponse, scrubbing secrets from an error body's
// text before it is shortened (so that no part of one survives).
func parseResponse(body []byte, secrets []string) (*Response, error) {
	fields, err := parseFields(body)
	if err != nil {
		return nil, err
	}
	r, err := responseFromFields(fields)
	if err != nil {
		return nil, err
	}
	if r.AccessToken == "" {
		code, desc := errorFields(fields, secrets)
		if desc == "" {
			desc = "the response holds no access token"
		}
		return nil, &Error{Op: "token response", Code: code, Description: desc}
	}
	return r, nil
}

// normKey folds the spellings of a field name into one: lower case,
// without _ and -.
func normKey(k string) string {
	k = strings.ToLower(strings.TrimSpace(k))
	if strings.ContainsAny(k, "_-") {
		k = strings.NewReplacer("_", "", "-", "").Replace(k)
	}
	return k
}

// parseFields reads the top level of a JSON object or XML document.
func parseFields(body []byte) (map[string]any, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("the response body is empty")
	case trimmed[0] == '{':
		return parseJSONFields(trimmed)
	case trimmed[0] == '<':
		return parseXMLFields(trimmed)
	}
	return nil, errNotTokenResponse
}

func parseJSONFields(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, errors.New("the response is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the response has data after its JSON object")
	}
	if m == nil {
		return nil, errNotTokenResponse
	}
	return m, nil
}

// parseXMLFields collects the text of the root element's children, in any
// order, ignoring namespaces, attributes and deeper elements. A root with
// no children whose text is a JSON object (a JSON answer wrapped in
// <string>, as some .NET services send) is read as JSON.
func parseXMLFields(body []byte) (map[string]any, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	// A declared non-UTF-8 charset is read as is; token fields are ASCII.
	dec.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	bad := errors.New("the response is not well-formed XML")
	var root bool
	fields := map[string]any{}
	var rootText strings.Builder
	for {
		t, err := dec.Token()
		if err != nil {
			if err == io.EOF && root {
				break
			}
			return nil, bad
		}
		switch t := t.(type) {
		case xml.StartElement:
			if !root {
				root = true
				continue
			}
			text, err := elementText(dec)
			if err != nil {
				return nil, bad
			}
			name := t.Name.Local
			if prev, ok := fields[name]; ok && prev != text {
				return nil, fmt.Errorf("the response has the element %s twice", clean(name, 64))
			}
			fields[name] = text
		case xml.CharData:
			if root {
				rootText.Write(t)
			}
		case xml.EndElement:
			// The root's end: what follows is not part of the answer.
			if len(fields) == 0 {
				if s := strings.TrimSpace(rootText.String()); strings.HasPrefix(s, "{") {
					return parseJSONFields([]byte(s))
				}
			}
			return fields, nil
		}
	}
	return fields, nil
}

// elementText reads the character data of the element just started, up
// to its end, skipping nested elements.
func elementText(dec *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			if err := dec.Skip(); err != nil {
				return "", err
			}
		case xml.EndElement:
			return strings.TrimSpace(b.String()), nil
		}
	}
}

// known field names, normalised, mapped to where they go.
const (
	kAccessToken      = "accesstoken"
	kTokenType        = "tokentype"
	kRefreshToken     = "refreshtoken"
	kExpiresInSeconds = "expiresinseconds"
	kExpiresIn        = "expiresin"
	kScope            = "scope"
	kUserName         = "username"
	kSessionID        = "sessionid"
	kConsumerUID      = "consumeruid"
	kError            = "error"
	kErrorDescription = "errordescription"
	kMessage          = "message"
)

// lookup returns the value of a field by its normalised name, and whether
// two spellings of it disagree.
func lookup(fields map[string]any, norm string) (v any, conflict bool) {
	found := false
	for k, x := range fields {
		if normKey(k) != norm || x == nil {
			continue
		}
		if found && fmt.Sprint(x) != fmt.Sprint(v) {
			return nil, true
		}
		v, found = x, true
	}
	return v, false
}

// str returns a field as a string: JSON strings, and numbers as written.
func str(fields map[string]any, norm string) (string, error) {
	v, conflict := lookup(fields, norm)
	if conflict {
		return "", fmt.Errorf("the response has the field %s twice with different values", norm)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	return "", nil
}

// seconds reads a lifetime given as a number or a numeric string; ok is
// false when it is absent or unreadable.
func seconds(v any) (int64, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return min(n, maxExpiresIn), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, false
	}
	return int64(math.Min(f, maxExpiresIn)), true
}

// responseFromFields fills a Response from raw fields. Two spellings of a
// field with different values make the response ambiguous, so it is refused.
func responseFromFields(fields map[string]any) (*Response, error) {
	r := &Response{Fields: fields}
	var err error
	for _, f := range []struct {
		key string
		dst *string
	}{
		{kAccessToken, &r.AccessToken}, {kTokenType, &r.TokenType}, {kRefreshToken, &r.RefreshToken},
		{kScope, &r.Scope}, {kUserName, &r.UserName}, {kSessionID, &r.SessionID}, {kConsumerUID, &r.ConsumerUID},
	} {
		if *f.dst, err = str(fields, f.key); err != nil {
			return nil, err
		}
	}
	// ExpiresInSeconds (P21 user JSON), ExpiresIn (P21 consumer JSON and
	// XML), expires_in (OAuth2): the first one readable wins.
	for _, k := range []string{kExpiresInSeconds, kExpiresIn} {
		v, conflict := lookup(fields, k)
		if conflict {
			return nil, fmt.Errorf("the response has the field %s twice with different values", k)
		}
		if n, ok := seconds(v); ok {
			r.ExpiresIn = n
			break
		}
	}
	return r, nil
}

// errorFields returns the error code and description of an error body,
// cleaned, without secrets.
func errorFields(fields map[string]any, secrets []string) (code, desc string) {
	code, _ = str(fields, kError)
	desc, _ = str(fields, kErrorDescription)
	if desc == "" {
		desc, _ = str(fields, kMessage)
	}
	return clean(scrub(code, secrets), 64), clean(scrub(desc, secrets), 300)
}

// responseKey is where a token's extra data keeps the Response; the
// fields are kept under their own names too, so that
// Token.Extra("SessionId") works.
const responseKey = "gatehouse.client.Response"

// Token converts the response into an [oauth2.Token] whose Expiry is now
// plus its lifetime (3600 s when the response gave none). The token's
// Extra holds every response field, and [ResponseOf] gives back r.
func (r *Response) Token(now time.Time) *oauth2.Token {
	return r.token(now, nil, "")
}

func (r *Response) token(now time.Time, log *slog.Logger, endpoint string) *oauth2.Token {
	life := time.Duration(r.ExpiresIn) * time.Second
	if r.ExpiresIn <= 0 {
		life = DefaultExpiresIn
		if log != nil {
			log.Debug("token response has no usable lifetime; assuming the default",
				"endpoint", endpoint, "assumed_seconds", int(DefaultExpiresIn/time.Second))
		}
	}
	t := &oauth2.Token{
		AccessToken:  r.AccessToken,
		TokenType:    r.TokenType,
		RefreshToken: r.RefreshToken,
		Expiry:       now.Add(life),
		ExpiresIn:    int64(life / time.Second),
	}
	return t.WithExtra(extra(r))
}

func extra(r *Response) map[string]any {
	m := make(map[string]any, len(r.Fields)+1)
	for k, v := range r.Fields {
		m[k] = v
	}
	m[responseKey] = r
	return m
}

// ResponseOf returns the response a token was made from, or nil for a
// token that did not come from this package (or [WithFields]).
func ResponseOf(t *oauth2.Token) *Response {
	if t == nil {
		return nil
	}
	r, _ := t.Extra(responseKey).(*Response)
	return r
}

// Fields returns the response fields a token was made from (nil if none),
// e.g. to save them with the token.
func Fields(t *oauth2.Token) map[string]any {
	if r := ResponseOf(t); r != nil {
		return r.Fields
	}
	return nil
}

// WithFields returns a copy of t that carries the given response fields,
// as a token restored from storage should: [ResponseOf] and t.Extra then
// work as on the original. Fields that cannot be read are ignored.
func WithFields(t *oauth2.Token, fields map[string]any) *oauth2.Token {
	r, err := responseFromFields(fields)
	if err != nil {
		r = &Response{Fields: fields}
	}
	return t.WithExtra(extra(r))
}
