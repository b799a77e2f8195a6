package oauth2

import (
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/server/render"
)

// MaxBody is the largest request body accepted on /oauth/*.
const MaxBody = 64 << 10

// maxValueLen bounds any one parameter value.
const maxValueLen = 4096

// Form is a parsed application/x-www-form-urlencoded request body: every
// parameter at most once, empty values dropped (RFC 6749 §3.1: a parameter
// sent without a value is treated as omitted).
type Form map[string]string

// Get returns the value of a parameter, "" when absent.
func (f Form) Get(name string) string { return f[name] }

// ParseForm reads an OAuth request body. The Content-Type must be
// application/x-www-form-urlencoded (charset UTF-8, if given). A parameter
// sent twice, an invalid %-escape, a semicolon separator, invalid UTF-8 or
// a value over 4096 bytes is refused with invalid_request. Error
// descriptions name known parameters only, never a value.
func ParseForm(contentType string, body []byte) (Form, *gatehouse.Error) {
	return parseForm(contentType, string(body))
}

func parseForm(contentType, body string) (Form, *gatehouse.Error) {
	if strings.TrimSpace(contentType) == "" {
		return nil, gatehouse.ErrInvalidRequest("the Content-Type header is missing; send application/x-www-form-urlencoded")
	}
	// What nearly every client sends needs no parsing (nor its map).
	if !strings.EqualFold(contentType, "application/x-www-form-urlencoded") {
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, gatehouse.ErrInvalidRequest("the Content-Type header cannot be parsed; send application/x-www-form-urlencoded")
		}
		if mt != "application/x-www-form-urlencoded" {
			return nil, gatehouse.ErrInvalidRequest("Content-Type %s is not supported; send application/x-www-form-urlencoded", gatehouse.Clip(mt, 64))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return nil, gatehouse.ErrInvalidRequest("charset %s is not supported; send UTF-8", gatehouse.Clip(cs, 64))
		}
	}
	if !strings.ContainsAny(body, "%+;") {
		// Nothing escaped (a token, a UUID key): no unescaping to do.
		return plainForm(body)
	}
	return queryForm(body)
}

// queryForm is ParseForm of any body, with url.ParseQuery.
func queryForm(body string) (Form, *gatehouse.Error) {
	vals, err := url.ParseQuery(body)
	if err != nil {
		return nil, gatehouse.ErrInvalidRequest("the form body cannot be parsed: %s", formErr(err))
	}
	f := Form{}
	for k, vs := range vals {
		if len(vs) > 1 {
			return nil, gatehouse.ErrInvalidRequest("%s is given %d times; every parameter may appear once (RFC 6749 §3.2)", paramName(k), len(vs))
		}
		v := vs[0]
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, gatehouse.ErrInvalidRequest("%s is not valid UTF-8", paramName(k))
		}
		if len(v) > maxValueLen {
			return nil, gatehouse.ErrInvalidRequest("%s is longer than %d bytes", paramName(k), maxValueLen)
		}
		if v != "" {
			f[k] = v
		}
	}
	return f, nil
}

// plainForm is ParseForm of a body without escapes or semicolons, with
// the same answers, without url.ParseQuery's map of slices.
func plainForm(q string) (Form, *gatehouse.Error) {
	// The pairs of a usual request (two to five) are kept on the stack, and
	// a repeated name is found by comparing them; longer forms count names
	// in a map.
	type pair struct{ k, v string }
	var small [8]pair
	pairs := small[:0]
	for rest := q; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		if kv != "" {
			k, v, _ := strings.Cut(kv, "=")
			pairs = append(pairs, pair{k, v})
		}
	}
	var count map[string]int
	if len(pairs) > len(small) {
		count = make(map[string]int, len(pairs))
		for _, p := range pairs {
			count[p.k]++
		}
	}
	f := make(Form, len(pairs))
	for _, p := range pairs {
		n := count[p.k]
		if count == nil {
			for _, o := range pairs {
				if o.k == p.k {
					n++
				}
			}
		}
		if n > 1 {
			return nil, gatehouse.ErrInvalidRequest("%s is given %d times; every parameter may appear once (RFC 6749 §3.2)", paramName(p.k), n)
		}
		if !utf8.ValidString(p.k) || !utf8.ValidString(p.v) {
			return nil, gatehouse.ErrInvalidRequest("%s is not valid UTF-8", paramName(p.k))
		}
		if len(p.v) > maxValueLen {
			return nil, gatehouse.ErrInvalidRequest("%s is longer than %d bytes", paramName(p.k), maxValueLen)
		}
		if p.v != "" {
			f[p.k] = p.v
		}
	}
	return f, nil
}

// known parameter names; only these are named in error descriptions, since
// an unknown "name" may be a secret sent by mistake.
var known = map[string]bool{
	"grant_type": true, "username": true, "Username": true, "password": true, "Password": true,
	"client_id": true, "client_secret": true, "refresh_token": true, "scope": true,
	"token": true, "token_type_hint": true,
}

func paramName(k string) string {
	if known[k] {
		return "parameter " + k
	}
	return "a parameter"
}

func formErr(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "semicolon"):
		return "semicolons are not allowed as separators"
	case strings.Contains(s, "escape"):
		return "an invalid %-escape"
	}
	return "malformed"
}

// readForm checks the method, caps and reads the body, and parses it.
func readForm(w http.ResponseWriter, r *http.Request) (Form, *gatehouse.Error) {
	b, e := render.ReadBody(w, r, MaxBody)
	if e != nil {
		return nil, e
	}
	return parseForm(r.Header.Get("Content-Type"), string(b))
}

// Basic is client authentication read from an Authorization: Basic header.
// ID and Secret are form-unescaped (RFC 6749 §2.3.1); RawID and RawSecret
// are exactly as sent, for clients that do not escape.
type Basic struct {
	ID, Secret       string
	RawID, RawSecret string
}

// ParseBasic reads the value of an Authorization header. ok is false when
// the scheme is not Basic; malformed is true when it is Basic but the
// credentials cannot be read (bad base64, no colon).
func ParseBasic(v string) (b Basic, ok, malformed bool) {
	const p = "basic "
	if len(v) < len(p) || !strings.EqualFold(v[:len(p)], p) {
		return Basic{}, false, false
	}
	enc := strings.TrimSpace(v[len(p):])
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Some clients drop the padding.
		if raw, err = base64.RawStdEncoding.DecodeString(enc); err != nil {
			return Basic{}, true, true
		}
	}
	id, secret, found := strings.Cut(string(raw), ":")
	if !found {
		return Basic{}, true, true
	}
	b = Basic{ID: id, Secret: secret, RawID: id, RawSecret: secret}
	if u, err := url.QueryUnescape(id); err == nil {
		b.ID = u
	}
	if u, err := url.QueryUnescape(secret); err == nil {
		b.Secret = u
	}
	return b, true, false
}

// clientAuth finds the client authentication of a request: HTTP Basic, or
// client_id and client_secret form parameters, never both.
func clientAuth(r *http.Request, f Form) (issue.ClientAuth, *gatehouse.Error) {
	hs := r.Header.Values("Authorization")
	if len(hs) > 1 {
		return issue.ClientAuth{}, gatehouse.ErrInvalidRequest("the Authorization header is sent %d times", len(hs))
	}
	if len(hs) == 1 {
		b, ok, malformed := ParseBasic(hs[0])
		if malformed {
			e := gatehouse.ErrBadClient()
			e.Description = "The Authorization header does not hold valid HTTP Basic credentials."
			return issue.ClientAuth{}, e
		}
		if ok {
			if f.Get("client_secret") != "" {
				return issue.ClientAuth{}, gatehouse.ErrInvalidRequest(
					"the client authenticates twice (HTTP Basic and client_secret); use one method (RFC 6749 §2.3)")
			}
			if id := f.Get("client_id"); id != "" && id != b.ID && id != b.RawID {
				return issue.ClientAuth{}, gatehouse.ErrInvalidRequest("parameter client_id differs from the client of the Authorization header")
			}
			ca := issue.ClientAuth{ID: b.ID, Secret: b.Secret}
			if b.RawID != b.ID {
				ca.AltID = b.RawID
			}
			if b.RawSecret != b.Secret {
				ca.AltSecret = b.RawSecret
			}
			return ca, nil
		}
		// Another scheme (Bearer, …) is not client authentication here.
	}
	return issue.ClientAuth{ID: f.Get("client_id"), Secret: f.Get("client_secret")}, nil
}
