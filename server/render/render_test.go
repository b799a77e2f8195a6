package render

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

func TestPrefersXML(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "application/json": false, "*/*": false, "application/xml": true, "text/xml": true,
		"application/json, application/xml": false, "application/xml, application/json": true,
		"application/json;q=0.5, application/xml": true, "application/xml;q=0, */*": false,
		"text/xml;q=0.9, application/json;q=0.8": true, "application/xml;q=bogus": true,
	} {
		if got := PrefersXML(accept); got != want {
			t.Errorf("PrefersXML(%q) = %v, want %v", accept, got, want)
		}
	}
}

// FuzzErrorXML: whatever an error description holds (it may quote client
// input), the XML written is a well-formed document that reads back as the
// same text, with characters XML cannot carry replaced.
func FuzzErrorXML(f *testing.F) {
	f.Add("invalid_request", "field username is required")
	f.Add("x", "<tag>&amp;\"'\x00\x01\uFFFE]]>")
	f.Add("", "\xff\xfe invalid utf-8")
	f.Fuzz(func(t *testing.T, code, desc string) {
		rec := httptest.NewRecorder()
		Error(rec, XML, &gatehouse.Error{Status: http.StatusBadRequest, Code: code, Description: desc})
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d for %q", rec.Code, desc)
		}
		body := rec.Body.String()
		if !strings.HasPrefix(body, `<?xml version="1.0" encoding="utf-8"?>`) || !utf8.ValidString(body) {
			t.Fatalf("not an XML document: %q", body)
		}
		var got XMLErrorBody
		if err := xml.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("written XML does not parse: %v\n%q", err, body)
		}
		if got.Description != xmlText(desc) || got.Error != xmlText(code) {
			t.Fatalf("read back %q %q, want %q %q", got.Error, got.Description, xmlText(code), xmlText(desc))
		}
		rec = httptest.NewRecorder()
		Error(rec, JSON, &gatehouse.Error{Status: http.StatusBadRequest, Code: code, Description: desc})
		var j ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &j); err != nil {
			t.Fatalf("written JSON does not parse: %v", err)
		}
	})
}

// xmlText is s as encoding/xml can carry it: invalid UTF-8 and characters
// outside the XML character range become U+FFFD (a CR is escaped, so it survives).
func xmlText(s string) string {
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, width := utf8.DecodeRuneInString(s[i:])
		w = width
		if r == utf8.RuneError && width == 1 || !inXMLRange(r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func inXMLRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func FuzzPrefersXML(f *testing.F) {
	f.Add("application/xml;q=0.9, application/json;q=0.8")
	f.Add(",,;;q=,*/*")
	f.Fuzz(func(t *testing.T, accept string) {
		got := PrefersXML(accept)
		if got && !strings.Contains(accept, "xml") {
			t.Fatalf("XML chosen for %q", accept)
		}
	})
}

// FuzzAppendString: a string is written exactly as encoding/json writes it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<html>&", "tab\tnl\n", "\x00\x1f\x7f", "é", "\u2028", "\xff\xfe", "/api;/p21sdk"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestObjectMatchesEncodingJSON: an Object is the bytes encoding/json
// writes for the same struct.
func TestObjectMatchesEncodingJSON(t *testing.T) {
	type body struct {
		A string  `json:"a"`
		B int64   `json:"b"`
		C string  `json:"c,omitempty"`
		D bool    `json:"d"`
		E *string `json:"e"`
		F int64   `json:"f,omitempty"`
	}
	for _, v := range []body{{A: "x<y", B: -3, D: true}, {A: "", B: 0, C: "z\u2028", F: 7}} {
		o := NewObject()
		o.String("a", v.A)
		o.Int("b", v.B)
		o.StringOmitEmpty("c", v.C)
		o.Bool("d", v.D)
		o.Null("e")
		o.IntOmitEmpty("f", v.F)
		want, _ := json.Marshal(v)
		if got := o.Bytes(); string(got) != string(want) {
			t.Errorf("Object = %s, want %s", got, want)
		}
		o.Free()
	}
}

func TestReadBody(t *testing.T) {
	const max = 16
	for _, tc := range []struct {
		name   string
		body   string
		length int64 // Content-Length as declared; -1 unknown
		want   string
		status int // of the error, 0 none
	}{
		{"known length", "token=abc", 9, "token=abc", 0},
		{"unknown length", "token=abc", -1, "token=abc", 0},
		{"empty", "", 0, "", 0},
		{"exactly max, known length", strings.Repeat("y", max), max, strings.Repeat("y", max), 0},
		{"exactly max, unknown length", strings.Repeat("y", max), -1, strings.Repeat("y", max), 0},
		{"declared over max", "x", max + 1, "", http.StatusRequestEntityTooLarge},
		{"unknown length over max", strings.Repeat("x", max+1), -1, "", http.StatusRequestEntityTooLarge},
		{"shorter than declared", "abc", 10, "", http.StatusBadRequest},
		{"longer than declared", "abcdef", 3, "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			r.ContentLength = tc.length
			b, e := ReadBody(httptest.NewRecorder(), r, max)
			switch {
			case tc.status == 0 && e != nil:
				t.Fatalf("error %v", e)
			case tc.status != 0 && (e == nil || e.Status != tc.status):
				t.Fatalf("got %q, %v; want an error with status %d", b, e, tc.status)
			case tc.status == 0 && string(b) != tc.want:
				t.Fatalf("body %q, want %q", b, tc.want)
			}
		})
	}
}
