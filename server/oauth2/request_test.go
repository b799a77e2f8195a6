package oauth2

import (
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseForm(t *testing.T) {
	f, e := ParseForm("application/x-www-form-urlencoded;charset=UTF-8", []byte("grant_type=password&Username=a+b&Password=p%26w%3D&scope=&x=1"))
	if e != nil {
		t.Fatal(e)
	}
	if f.Get("grant_type") != "password" || f.Get("Username") != "a b" || f.Get("Password") != "p&w=" {
		t.Fatalf("form %v", f)
	}
	if _, ok := f["scope"]; ok {
		t.Fatal("an empty parameter was kept (RFC 6749 §3.1: treat as omitted)")
	}
	for _, tc := range []struct{ ct, body, want string }{
		{"", "a=b", "Content-Type"},
		{"application/json", "a=b", "Content-Type"},
		{"application/x-www-form-urlencoded; charset=latin1", "a=b", "charset"},
		{"application/x-www-form-urlencoded", "a=b&a=c", "given 2 times"},
		{"application/x-www-form-urlencoded", "password=secret1&password=secret1", "parameter password is given 2 times"},
		{"application/x-www-form-urlencoded", "a=%zz", "escape"},
		{"application/x-www-form-urlencoded", "a=b;c=d", "semicolon"},
		{"application/x-www-form-urlencoded", "a=%ff", "UTF-8"},
	} {
		_, e := ParseForm(tc.ct, []byte(tc.body))
		if e == nil || e.Status != 400 || !strings.Contains(e.Description, tc.want) {
			t.Errorf("%q %q: %v, want 400 mentioning %q", tc.ct, tc.body, e, tc.want)
		}
	}
	// An unknown parameter's name is never echoed: it may be a secret.
	_, e = ParseForm("application/x-www-form-urlencoded", []byte("s3cr3t&s3cr3t"))
	if e == nil || strings.Contains(e.Description, "s3cr3t") {
		t.Fatalf("%v", e)
	}
}

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		in             string
		ok, malformed  bool
		id, secret     string
		rawID, rawSecr string
	}{
		{enc("client:secret"), true, false, "client", "secret", "client", "secret"},
		{"bAsIc " + base64.StdEncoding.EncodeToString([]byte("c:s")), true, false, "c", "s", "c", "s"},
		{enc("my+client:a%3Ab%25c"), true, false, "my client", "a:b%c", "my+client", "a%3Ab%25c"},
		{enc("c:p:w%41+x=y/z@$!"), true, false, "c", "p:wA x=y/z@$!", "c", "p:w%41+x=y/z@$!"},
		{enc("c:bad%zz"), true, false, "c", "bad%zz", "c", "bad%zz"},
		{"Basic " + base64.RawStdEncoding.EncodeToString([]byte("c:sec")), true, false, "c", "sec", "c", "sec"},
		{enc("nocolon"), true, true, "", "", "", ""},
		{"Basic !!!", true, true, "", "", "", ""},
		{"Bearer abc", false, false, "", "", "", ""},
		{"", false, false, "", "", "", ""},
	} {
		b, ok, malformed := ParseBasic(tc.in)
		if ok != tc.ok || malformed != tc.malformed || b.ID != tc.id || b.Secret != tc.secret || b.RawID != tc.rawID || b.RawSecret != tc.rawSecr {
			t.Errorf("%q: %+v %t %t", tc.in, b, ok, malformed)
		}
	}
}

func TestClientAuth(t *testing.T) {
	req := func(auth string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	ca, e := clientAuth(req(enc("c:"+url.QueryEscape("a+b"))), Form{})
	if e != nil || ca.ID != "c" || ca.Secret != "a+b" || ca.AltSecret != "a%2Bb" || ca.AltID != "" {
		t.Fatalf("%+v %v", ca, e)
	}
	ca, e = clientAuth(req(""), Form{"client_id": "c", "client_secret": "s"})
	if e != nil || ca.ID != "c" || ca.Secret != "s" || ca.AltSecret != "" {
		t.Fatalf("%+v %v", ca, e)
	}
	// The same client_id in the body alongside Basic is fine; a secret is not.
	if _, e = clientAuth(req(enc("c:s")), Form{"client_id": "c"}); e != nil {
		t.Fatal(e)
	}
	if _, e = clientAuth(req(enc("c:s")), Form{"client_secret": "s"}); e == nil || e.Code != "invalid_request" {
		t.Fatalf("%v", e)
	}
	if _, e = clientAuth(req(enc("c:s")), Form{"client_id": "d"}); e == nil || e.Code != "invalid_request" {
		t.Fatalf("%v", e)
	}
}

func FuzzParseForm(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "Username=u&Password=p&grant_type=password"},
		{"application/x-www-form-urlencoded; charset=utf-8", "grant_type=client_credentials&client_id=a&client_secret=b"},
		{"application/x-www-form-urlencoded", "token=a.b.c&token_type_hint=access_token"},
		{"application/x-www-form-urlencoded", "a=%zz&a=b;c"},
		{"application/json", "{}"},
		{"", ""},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		form, e := ParseForm(ct, body)
		if e != nil {
			if e.Status != 400 || e.Code != "invalid_request" || e.Description == "" {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		// Every value is non-empty UTF-8 within bounds, and re-encoding
		// parses back to the same form.
		vals := url.Values{}
		for k, v := range form {
			if v == "" || len(v) > maxValueLen || !utf8.ValidString(v) {
				t.Fatalf("value of %q: %q", k, v)
			}
			vals.Set(k, v)
		}
		again, e := ParseForm("application/x-www-form-urlencoded", []byte(vals.Encode()))
		if e != nil || len(again) != len(form) {
			t.Fatalf("re-encoded form does not parse back: %v %v", again, e)
		}
		for k, v := range form {
			if again[k] != v {
				t.Fatalf("%q: %q != %q", k, again[k], v)
			}
		}
	})
}

func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"client:secret", "c:p:w%41+x=y/z@$!", "a%3Ab:c%zz", ":", "", "\xff:\x00"} {
		f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte(s)))
	}
	f.Add("Basic !!!")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		b, ok, malformed := ParseBasic(h)
		if !ok {
			if malformed || b != (Basic{}) {
				t.Fatalf("not Basic but %+v %t", b, malformed)
			}
			return
		}
		if malformed {
			return
		}
		// The raw readings are what was sent; the unescaped ones are their
		// unescaping when that succeeds.
		enc := strings.TrimSpace(h[len("basic "):])
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			raw, _ = base64.RawStdEncoding.DecodeString(enc)
		}
		if b.RawID+":"+b.RawSecret != string(raw) || strings.Contains(b.RawID, ":") {
			t.Fatalf("raw %q:%q from %q", b.RawID, b.RawSecret, raw)
		}
		if u, err := url.QueryUnescape(b.RawSecret); err == nil && u != b.Secret || err != nil && b.Secret != b.RawSecret {
			t.Fatalf("secret %q from %q", b.Secret, b.RawSecret)
		}
	})
}

// FuzzPlainForm: a body without escapes or semicolons is read as
// url.ParseQuery reads it.
func FuzzPlainForm(f *testing.F) {
	for _, s := range []string{"grant_type=client_credentials", "token=abc&token=def", "a&&b=&=c", "token=x&token_type_hint=access_token", "k=\xff",
		"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&a=0", "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if strings.ContainsAny(body, "%+;") {
			return
		}
		fast, fe := plainForm(body)
		slow, se := queryForm(body)
		if (fe == nil) != (se == nil) || fe == nil && !maps.Equal(fast, slow) {
			t.Fatalf("%q: plain %v, %v; query %v, %v", body, fast, fe, slow, se)
		}
	})
}
