// Package p21 serves the P21 token endpoints: V2 (POST
// /api/security/token/v2, credentials in the body) and the deprecated V1
// (POST /api/security/token, credentials in headers). It only translates the
// wire format; the rules live in package auth.
package p21

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// MaxBody is the largest token request body accepted.
const MaxBody = 64 << 10

// Flow is what a token request asks for.
type Flow int

// The P21 flows.
const (
	FlowUser     Flow = iota + 1 // username + password
	FlowConsumer                 // consumer key, optional username
	FlowRefresh                  // refresh token
)

func (f Flow) String() string {
	switch f {
	case FlowUser:
		return "user"
	case FlowConsumer:
		return "consumer"
	case FlowRefresh:
		return "refresh"
	}
	return "unknown"
}

// Request is a parsed token request. Has* fields tell a field that was sent
// (even empty) from one that was not.
type Request struct {
	Username, Password, GrantType, ClientSecret, RefreshToken string

	HasUsername, HasPassword, HasGrantType, HasClientSecret, HasRefreshToken bool
}

// field names are matched case-insensitively (SPEC §2.1): "UserName" and
// "username" are one field; "user_name" is another, unknown one.
func normField(k string) string { return strings.ToLower(k) }

// display names used in error messages.
var fieldNames = map[string]string{
	"username": "username", "password": "password", "granttype": "GrantType",
	"clientsecret": "ClientSecret", "refreshtoken": "RefreshToken",
}

func (r *Request) set(norm, value string) {
	switch norm {
	case "username":
		r.Username, r.HasUsername = value, true
	case "password":
		r.Password, r.HasPassword = value, true
	case "granttype":
		r.GrantType, r.HasGrantType = value, true
	case "clientsecret":
		r.ClientSecret, r.HasClientSecret = value, true
	case "refreshtoken":
		r.RefreshToken, r.HasRefreshToken = value, true
	}
}

// maxFieldLen bounds any one credential field.
const maxFieldLen = 4096

// ParseV2 reads a V2 body: JSON (application/json) or a form
// (application/x-www-form-urlencoded) with the same field names. A missing
// Content-Type is read as JSON. Unknown fields are ignored; a Scope field is
// accepted and ignored. Duplicate fields, wrong types and trailing garbage
// are refused with an error naming the problem.
func ParseV2(contentType string, body []byte) (Request, *gatehouse.Error) {
	kind := "json"
	if strings.TrimSpace(contentType) != "" {
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			return Request{}, gatehouse.ErrInvalidRequest("Content-Type %q cannot be parsed; send application/json", gatehouse.Clip(contentType, 64))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return Request{}, gatehouse.ErrInvalidRequest("charset %q is not supported; send UTF-8", gatehouse.Clip(cs, 64))
		}
		switch {
		case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
		case mt == "application/x-www-form-urlencoded":
			kind = "form"
		default:
			return Request{}, gatehouse.ErrInvalidRequest("Content-Type %s is not supported; send application/json or application/x-www-form-urlencoded", gatehouse.Clip(mt, 64))
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Request{}, gatehouse.ErrInvalidRequest("the request body is empty; send a JSON object with username and password, or with GrantType and ClientSecret")
	}
	if kind == "form" {
		if t := bytes.TrimSpace(body); t[0] == '{' && t[len(t)-1] == '}' {
			// A JSON object is no form: say what to change rather than that
			// its fields are missing.
			return Request{}, gatehouse.ErrInvalidRequest("the body is JSON but Content-Type says application/x-www-form-urlencoded; set Content-Type: application/json")
		}
		return parseForm(body)
	}
	return parseJSON(body)
}

func parseJSON(body []byte) (Request, *gatehouse.Error) {
	var r Request
	if !utf8.Valid(body) {
		return r, gatehouse.ErrInvalidRequest("the request body is not valid UTF-8")
	}
	if fields, ok := scanFlat(body); ok {
		seen := map[string]string{}
		for _, f := range fields {
			if e := r.field(seen, f.key, f.null, f.value); e != nil {
				return r, e
			}
		}
		return r, nil
	}
	return parseJSONDecoder(body)
}

// flatField is a field of a flat JSON object: a string or null.
type flatField struct {
	key, value string
	null       bool
}

// scanFlat reads the body every client sends, a flat JSON object whose
// values are strings without escapes or null, without encoding/json's
// reflection. Anything else (escapes, numbers, nested values, any syntax
// error) is not ok, and goes to the full decoder, which reads what this
// reads the same.
func scanFlat(b []byte) ([]flatField, bool) {
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		start := i + 1
		for j := start; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				i = j + 1
				return string(b[start:j]), true
			case c == '\\' || c < 0x20:
				return "", false
			}
		}
		return "", false
	}
	ws()
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i++
	ws()
	fields := make([]flatField, 0, 4)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			ws()
			k, ok := str()
			if !ok {
				return nil, false
			}
			ws()
			if i >= len(b) || b[i] != ':' {
				return nil, false
			}
			i++
			ws()
			f := flatField{key: k}
			if i+4 <= len(b) && string(b[i:i+4]) == "null" {
				f.null, i = true, i+4
			} else if f.value, ok = str(); !ok {
				return nil, false
			}
			fields = append(fields, f)
			ws()
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return nil, false
		}
	}
	ws()
	return fields, i == len(b)
}

// field applies one field of a JSON body: unknown names are ignored, a
// known one given twice is refused, null is as if absent.
func (r *Request) field(seen map[string]string, key string, null bool, v string) *gatehouse.Error {
	norm := normField(key)
	name, known := fieldNames[norm]
	if !known {
		return nil
	}
	if prev, dup := seen[norm]; dup {
		return gatehouse.ErrInvalidRequest("field %s is given twice (as %q and %q)", name, gatehouse.Clip(prev, 64), gatehouse.Clip(key, 64))
	}
	seen[norm] = key
	if null {
		return nil
	}
	if len(v) > maxFieldLen {
		return gatehouse.ErrInvalidRequest("field %s is longer than %d bytes", name, maxFieldLen)
	}
	r.set(norm, v)
	return nil
}

// parseJSONDecoder reads any JSON body with encoding/json.
func parseJSONDecoder(body []byte) (Request, *gatehouse.Error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return r, gatehouse.ErrInvalidRequest("the request body is not valid JSON: %s", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return r, gatehouse.ErrInvalidRequest("the request body must be a JSON object")
	}
	seen := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, gatehouse.ErrInvalidRequest("the request body is not valid JSON: %s", jsonErr(err))
		}
		key, _ := tok.(string)
		norm := normField(key)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return r, gatehouse.ErrInvalidRequest("the request body is not valid JSON: %s", jsonErr(err))
		}
		name, known := fieldNames[norm]
		if !known {
			continue
		}
		if prev, dup := seen[norm]; dup {
			return r, gatehouse.ErrInvalidRequest("field %s is given twice (as %q and %q)", name, gatehouse.Clip(prev, 64), gatehouse.Clip(key, 64))
		}
		seen[norm] = key
		switch raw[0] {
		case 'n': // null: as if absent
			continue
		case '"':
		default:
			return r, gatehouse.ErrInvalidRequest("field %s must be a string, not %s", name, jsonType(raw[0]))
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return r, gatehouse.ErrInvalidRequest("field %s is not a valid JSON string", name)
		}
		if len(v) > maxFieldLen {
			return r, gatehouse.ErrInvalidRequest("field %s is longer than %d bytes", name, maxFieldLen)
		}
		r.set(norm, v)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return r, gatehouse.ErrInvalidRequest("the request body is not valid JSON: %s", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, gatehouse.ErrInvalidRequest("the request body has data after the JSON object")
	}
	return r, nil
}

func parseForm(body []byte) (Request, *gatehouse.Error) {
	var r Request
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return r, gatehouse.ErrInvalidRequest("the form body cannot be parsed: %s", formErr(err))
	}
	seen := map[string]string{}
	for key, vs := range vals {
		norm := normField(key)
		name, known := fieldNames[norm]
		if !known {
			continue
		}
		if len(vs) > 1 {
			return r, gatehouse.ErrInvalidRequest("field %s is given %d times", name, len(vs))
		}
		if prev, dup := seen[norm]; dup {
			return r, gatehouse.ErrInvalidRequest("field %s is given twice (as %q and %q)", name, gatehouse.Clip(prev, 64), gatehouse.Clip(key, 64))
		}
		seen[norm] = key
		v := vs[0]
		if !utf8.ValidString(v) {
			return r, gatehouse.ErrInvalidRequest("field %s is not valid UTF-8", name)
		}
		if len(v) > maxFieldLen {
			return r, gatehouse.ErrInvalidRequest("field %s is longer than %d bytes", name, maxFieldLen)
		}
		r.set(norm, v)
	}
	return r, nil
}

// Flow decides what the request asks for (SPEC §2.1): GrantType
// client_credentials, or a ClientSecret (not empty) whatever the GrantType
// → consumer; GrantType refresh_token → refresh; GrantType absent or
// password → user. An empty ClientSecret counts as absent, except with
// client_credentials, whose request it then leaves incomplete.
func (r *Request) Flow() (Flow, *gatehouse.Error) {
	g := strings.ToLower(strings.TrimSpace(r.GrantType))
	switch {
	case g == gatehouse.GrantClientCredentials || r.ClientSecret != "":
		if r.ClientSecret == "" {
			return 0, gatehouse.ErrInvalidRequest("field ClientSecret is required for the client_credentials grant")
		}
		return FlowConsumer, nil
	case g == gatehouse.GrantRefreshToken:
		if r.RefreshToken == "" {
			return 0, gatehouse.ErrInvalidRequest("field RefreshToken is required for the refresh_token grant")
		}
		return FlowRefresh, nil
	case g == "" || g == gatehouse.GrantPassword:
		switch {
		case r.Username == "" && r.Password == "":
			return 0, gatehouse.ErrInvalidRequest("fields username and password are required (or GrantType client_credentials with ClientSecret)")
		case r.Username == "":
			return 0, gatehouse.ErrInvalidRequest("field username is required")
		case r.Password == "":
			return 0, gatehouse.ErrInvalidRequest("field password is required")
		}
		return FlowUser, nil
	}
	return 0, &gatehouse.Error{Status: http.StatusBadRequest, Code: gatehouse.CodeUnsupportedGrantType,
		Description: fmt.Sprintf("GrantType %q is not supported; use password, client_credentials or refresh_token", gatehouse.Clip(r.GrantType, 64))}
}

// ParseV1 reads V1 credentials from request headers: username + password
// headers for the user flow, or an appkey header (with an optional username
// header) for the consumer flow.
func ParseV1(h http.Header) (Request, Flow, *gatehouse.Error) {
	var r Request
	get := func(name string) (string, bool, *gatehouse.Error) {
		vs := h.Values(name)
		switch len(vs) {
		case 0:
			return "", false, nil
		case 1:
		default:
			return "", true, gatehouse.ErrInvalidRequest("header %s is sent %d times", name, len(vs))
		}
		v := vs[0]
		if len(v) > maxFieldLen {
			return "", true, gatehouse.ErrInvalidRequest("header %s is longer than %d bytes", name, maxFieldLen)
		}
		if !utf8.ValidString(v) {
			return "", true, gatehouse.ErrInvalidRequest("header %s is not valid UTF-8", name)
		}
		return v, true, nil
	}
	var e *gatehouse.Error
	if r.Username, r.HasUsername, e = get("username"); e != nil {
		return r, 0, e
	}
	if r.Password, r.HasPassword, e = get("password"); e != nil {
		return r, 0, e
	}
	if r.ClientSecret, r.HasClientSecret, e = get("appkey"); e != nil {
		return r, 0, e
	}
	switch {
	case r.HasClientSecret:
		if r.ClientSecret == "" {
			return r, 0, gatehouse.ErrInvalidRequest("header appkey is empty")
		}
		return r, FlowConsumer, nil
	case r.HasUsername || r.HasPassword:
		if r.Username == "" {
			return r, 0, gatehouse.ErrInvalidRequest("header username is required")
		}
		if r.Password == "" {
			return r, 0, gatehouse.ErrInvalidRequest("header password is required")
		}
		return r, FlowUser, nil
	}
	return r, 0, gatehouse.ErrInvalidRequest("send username and password headers, or an appkey header; V1 is deprecated, use POST /api/security/token/v2")
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// The message would quote a character of the input, which may be
		// part of a secret: give the position only.
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "malformed"
}

func formErr(err error) string {
	s := err.Error()
	if strings.Contains(s, "semicolon") {
		return "semicolons are not allowed as separators"
	}
	if strings.Contains(s, "escape") {
		return "an invalid %-escape"
	}
	return "malformed"
}

func jsonType(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
