package p21_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// malformed is one bad request.
type malformed struct {
	name    string
	method  string
	path    string
	ct      string
	body    []byte
	headers map[string][]string
	accept  string
}

func malformedRequests(key string) []malformed {
	var ms []malformed
	v2 := "/api/security/token/v2"
	v1 := "/api/security/token"
	add := func(m malformed) {
		if m.method == "" {
			m.method = http.MethodPost
		}
		if m.path == "" {
			m.path = v2
		}
		ms = append(ms, m)
	}

	// Bad JSON, each sent as JSON and with no content type.
	badJSON := []string{
		``, ` `, `{`, `}`, `[`, `]`, `null`, `true`, `false`, `0`, `-1`, `1e999`, `"string"`, `[]`, `[{}]`,
		`{"username":}`, `{"username":"a",}`, `{"username":"a" "password":"b"}`, `{'username':'a','password':'b'}`,
		`{username:"a",password:"b"}`, `{"username":"a","password":"b"}garbage`, `{"username":"a","password":"b"}{}`,
		`{"username":"a","password":"b"}]`, `{"username":"a\u00","password":"b"}`, `{"username":"a\x","password":"b"}`,
		"{\"username\":\"a\nb\",\"password\":\"b\"", `{"username":"a","password":"b"`, `{"a":[1,2,}`, `{"a":{"b":}}`,
		`{"username":"a","password":"b",,}`, `{,}`, `{"":}`, `{"username" "a"}`, `{"username":"a":"b"}`,
		`{"GrantType":"client_credentials"}`, `{"GrantType":"refresh_token"}`, `{"GrantType":"implicit","username":"a","password":"b"}`,
		`{"GrantType":"authorization_code"}`, `{"GrantType":""}`, `{"username":""}`, `{"password":""}`, `{"username":"","password":""}`,
		`{"username":"a"}`, `{"password":"b"}`, `{}`, `{"Scope":"/api"}`, `{"ClientSecret":""}`, `{"RefreshToken":"x"}`,
		"\xef\xbb\xbf" + `{"username":"a","password":"b"}`, "{\"username\":\"\xff\xfe\",\"password\":\"b\"}",
		`{"username":"a","password":"b","username":"c"}`, `{"username":"a","UserName":"c","password":"b"}`,
		`{"password":"a","Password":"b","username":"c"}`, `{"ClientSecret":"a","client_secret":"b"}`,
		`{"GrantType":"client_credentials","granttype":"password","ClientSecret":"x"}`,
	}
	for i, b := range badJSON {
		add(malformed{name: fmt.Sprintf("bad json %d", i), ct: "application/json", body: []byte(b)})
		add(malformed{name: fmt.Sprintf("bad json %d no content type", i), body: []byte(b)})
	}

	// Wrong types for every known field.
	for _, fld := range []string{"username", "password", "GrantType", "ClientSecret", "RefreshToken"} {
		for _, v := range []string{`1`, `1.5`, `true`, `false`, `[]`, `["a"]`, `{}`, `{"a":"b"}`} {
			add(malformed{name: "type " + fld + "=" + v, ct: "application/json", body: []byte(`{"` + fld + `":` + v + `}`)})
		}
	}

	// Wrong content types, with a body that would otherwise be good.
	good := []byte(`{"username":"api_user","password":"your_password"}`)
	for _, ct := range []string{"text/plain", "application/xml", "text/xml", "multipart/form-data; boundary=x",
		"application/octet-stream", "image/png", "text/html", "application/javascript", "garbage", "application/json; charset=latin1",
		"application/json; charset=utf-16", "/", "application/", ";;;", "application/x-www-form-urlencoded; charset=ebcdic"} {
		add(malformed{name: "content type " + ct, ct: ct, body: good})
	}

	// Bad forms.
	for i, b := range []string{"username=a;password=b", "username=%zz&password=b", "username=%&password=b",
		"username=a&username=b&password=c", "username=a&UserName=b&password=c", "password=b", "username=a", "",
		"grant_type=client_credentials", "grant_type=refresh_token", "grant_type=bogus", "=&=&=", "%ff%fe=%ff",
		"username=%ff&password=%fe", "client_secret=a&ClientSecret=b&grant_type=client_credentials"} {
		add(malformed{name: fmt.Sprintf("bad form %d", i), ct: "application/x-www-form-urlencoded", body: []byte(b)})
	}

	// Binary and large bodies.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10 {
		b := make([]byte, 1+rng.IntN(2000))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		add(malformed{name: fmt.Sprintf("binary %d", i), ct: "application/json", body: b})
	}
	add(malformed{name: "NUL bytes", ct: "application/json", body: bytes.Repeat([]byte{0}, 100)})
	add(malformed{name: "1 MiB JSON", ct: "application/json", body: append([]byte(`{"username":"`), bytes.Repeat([]byte("a"), 1<<20)...)})
	add(malformed{name: "1 MiB form", ct: "application/x-www-form-urlencoded", body: bytes.Repeat([]byte("a=b&"), 1<<18)})
	add(malformed{name: "65 KiB JSON", ct: "application/json", body: []byte(`{"x":"` + strings.Repeat("a", 65<<10) + `"}`)})
	add(malformed{name: "deep nesting", ct: "application/json", body: []byte(`{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`)})
	add(malformed{name: "long field", ct: "application/json", body: []byte(`{"username":"` + strings.Repeat("u", 5000) + `","password":"p"}`)})
	add(malformed{name: "invalid UTF-8 consumer username", ct: "application/x-www-form-urlencoded", body: []byte("GrantType=client_credentials&ClientSecret=" + key + "&username=a%C3%28b")})
	add(malformed{name: "control char user-flow username", ct: "application/json", body: []byte(`{"username":"a\u0001b","password":"p"}`)})

	// Wrong methods on both endpoints.
	for _, p := range []string{v2, v1} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "TRACE", "PROPFIND", "FOO"} {
			add(malformed{name: "method " + m + " " + p, method: m, path: p, ct: "application/json", body: good})
		}
	}

	// Odd paths.
	for _, p := range []string{"/api/security/", "/api/security", "/api/security/token/v2/extra", "/api/security/token/v3",
		"/api/security/token/v1", "/api/security/tokenv2", "/api/security/../security/token/v2", "/api/security/%2e%2e/token",
		"/api/security/token%2Fv2", "/api/security/token/v2;x", "/api/security/" + strings.Repeat("a", 3000),
		"/api/security/tøken", "/api/security/token/v2%00", "/api/security//token/v2", "/api/SECURITY/unknown",
		"/nothing/here", "/", "/api", "/api/security/token/v2/../../../etc/passwd", "/.env"} {
		add(malformed{name: "path " + p, path: p, ct: "application/json", body: good})
	}

	// V1 header problems.
	v1h := []map[string][]string{
		{}, {"Username": {"a"}}, {"Password": {"b"}}, {"Appkey": {""}}, {"Username": {""}, "Password": {""}},
		{"Username": {"a", "b"}, "Password": {"c"}}, {"Username": {"a"}, "Password": {"b", "c"}}, {"Appkey": {"a", "b"}},
		{"Username": {"a"}, "Password": {strings.Repeat("p", 5000)}}, {"Appkey": {strings.Repeat("k", 5000)}},
		{"Username": {"\xff"}, "Password": {"b"}}, {"Appkey": {"\xfe\xff"}},
	}
	for i, h := range v1h {
		add(malformed{name: fmt.Sprintf("v1 headers %d", i), path: v1, headers: h})
		add(malformed{name: fmt.Sprintf("v1 headers %d xml", i), path: v1, headers: h, accept: "application/xml"})
	}
	add(malformed{name: "v1 1 MiB body", path: v1, ct: "application/json", body: bytes.Repeat([]byte("x"), 1<<20),
		headers: map[string][]string{"Username": {"a"}, "Password": {"b"}}})

	// A sample of the above, asking for XML.
	n := len(ms)
	for i := 0; i < n; i += 7 {
		m := ms[i]
		m.name += " (xml)"
		m.accept = "application/xml"
		ms = append(ms, m)
	}
	return ms
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	reqs := malformedRequests(f.key)
	if len(reqs) < 200 {
		t.Fatalf("only %d malformed requests", len(reqs))
	}
	for _, m := range reqs {
		req, err := http.NewRequest(m.method, f.URL+m.path, bytes.NewReader(m.body))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if m.ct != "" {
			req.Header.Set("Content-Type", m.ct)
		}
		for k, vs := range m.headers {
			req.Header[k] = vs
		}
		if m.accept != "" {
			req.Header.Set("Accept", m.accept)
		}
		resp, body := f.Do(req)
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("%s: status %d, want 4xx: %.200s", m.name, resp.StatusCode, body)
			continue
		}
		var e struct {
			Error       string `json:"error" xml:"error"`
			Description string `json:"error_description" xml:"error_description"`
		}
		if m.accept == "application/xml" {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") || xml.Unmarshal(body, &e) != nil {
				t.Errorf("%s: not an XML error body: %q %.200s", m.name, resp.Header.Get("Content-Type"), body)
				continue
			}
		} else {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: Content-Type %q", m.name, resp.Header.Get("Content-Type"))
				continue
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Errorf("%s: not a JSON error body: %v: %.200s", m.name, err, body)
				continue
			}
		}
		if e.Error == "" || e.Description == "" {
			t.Errorf("%s: error body lacks error or error_description: %.200s", m.name, body)
		}
	}
	t.Logf("%d malformed requests, all answered 4xx with an error body", len(reqs))
}
