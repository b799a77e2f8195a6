package oauth2_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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
	chunked bool // send without Content-Length
	// status, when set, is the exact status wanted; else any 4xx.
	status int
	allow  string // the Allow header wanted with a 405
}

var postPaths = []string{"/oauth/token", "/oauth/introspect", "/oauth/revoke"}

func malformedRequests(f *fixture) []malformed {
	var ms []malformed
	add := func(m malformed) {
		if m.method == "" {
			m.method = http.MethodPost
		}
		if m.path == "" {
			m.path = "/oauth/token"
		}
		ms = append(ms, m)
	}
	svc := map[string][]string{"Authorization": {basic("svc", f.svcKey)}}
	good := []byte("grant_type=client_credentials&token=x")

	// Wrong methods.
	for _, p := range postPaths {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch,
			http.MethodOptions, "TRACE", "PROPFIND", "FOO"} {
			add(malformed{name: "method " + m + " " + p, method: m, path: p, ct: formCT, body: good, headers: svc,
				status: 405, allow: "POST"})
		}
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/jwks.json"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "FOO"} {
			add(malformed{name: "method " + m + " " + p, method: m, path: p, ct: formCT, body: good,
				status: 405, allow: "GET, HEAD"})
		}
	}

	// Wrong content types, with a body that would otherwise be good.
	for _, ct := range []string{"", "application/json", "text/plain", "application/xml", "multipart/form-data; boundary=x",
		"application/octet-stream", "garbage", "/", "application/", ";;;", formCT + "; charset=ebcdic",
		formCT + "; charset=utf-16", formCT + `; charset="`, "application/x-www-form-urlencoded-extra"} {
		for _, p := range postPaths {
			add(malformed{name: "content type " + ct + " " + p, path: p, ct: ct, body: good, headers: svc, status: 400})
		}
	}

	// Bad and duplicated parameters.
	forms := []string{"", "=", "=&=&=", "&&&", "grant_type", "grant_type=", "grant_type=%zz", "grant_type=%", "%ff%fe=%ff",
		"grant_type=client_credentials&grant_type=client_credentials", "grant_type=password&Username=a&Username=a&Password=b",
		"grant_type=password&username=a&Username=b&password=c", "grant_type=password&password=a&Password=b&username=c",
		"grant_type=password", "grant_type=password&username=a", "grant_type=password&Password=b",
		"grant_type=refresh_token", "grant_type=refresh_token&refresh_token=", "grant_type=refresh_token&refresh_token=a&refresh_token=a",
		"grant_type=implicit", "grant_type=authorization_code&code=x", "grant_type=PASSWORD&username=" + strings.Repeat("u", 300) + "&password=x",
		"grant_type=password&username=a%00b&password=x", "grant_type=password&username=a%01b&password=x",
		"grant_type=client_credentials;x=y", "grant_type=client_credentials&client_secret=x",
		"grant_type=client_credentials&scope=" + strings.Repeat("s", 5000),
		"token=", "token=a&token=b", "token=%ff", "token=" + strings.Repeat("t", 5000), "token_type_hint=x&token_type_hint=y&token=z",
		"grant_type=client_credentials&client_id=other",
	}
	for i, b := range forms {
		for _, p := range postPaths {
			add(malformed{name: fmt.Sprintf("bad form %d %s", i, p), path: p, ct: formCT, body: []byte(b), headers: svc})
		}
	}

	// Bad client authentication.
	auths := [][]string{
		{""}, {"Basic"}, {"Basic "}, {"Basic ="}, {"Basic %%%"}, {"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon"))},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(":"))}, {"Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"))},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(":"+f.svcKey))},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+strings.Repeat("k", 5000)))},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("\xff\xfe:\x00\x01"))},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("svc:%zz%"))},
		{"Bearer " + f.svcKey}, {"Digest x"}, {basic("svc", f.svcKey), basic("svc", f.svcKey)},
	}
	for i, a := range auths {
		for _, p := range postPaths {
			add(malformed{name: fmt.Sprintf("auth %d %s", i, p), path: p, ct: formCT, body: good,
				headers: map[string][]string{"Authorization": a}})
		}
	}

	// Binary and large bodies.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10 {
		b := make([]byte, 1+rng.IntN(2000))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		add(malformed{name: fmt.Sprintf("binary %d", i), path: postPaths[i%3], ct: formCT, body: b, headers: svc})
	}
	for _, p := range postPaths {
		add(malformed{name: "NUL bytes " + p, path: p, ct: formCT, body: bytes.Repeat([]byte{0}, 100), headers: svc})
		add(malformed{name: "1 MiB " + p, path: p, ct: formCT, body: bytes.Repeat([]byte("a=b&"), 1<<18), headers: svc, status: 413})
		add(malformed{name: "65 KiB " + p, path: p, ct: formCT, body: []byte("x=" + strings.Repeat("a", 65<<10)), headers: svc, status: 413})
		add(malformed{name: "65 KiB chunked " + p, path: p, ct: formCT, body: []byte("x=" + strings.Repeat("a", 65<<10)), headers: svc,
			chunked: true, status: 413})
	}

	// Odd paths.
	for _, p := range []string{"/oauth/", "/oauth/unknown", "/oauth/token/extra", "/oauth/authorize", "/oauth/tøken",
		"/oauth/token%00", "/oauth//token", "/.well-known/", "/.well-known/openid-configuration", "/.well-known/jwks",
		"/.well-known/" + strings.Repeat("a", 3000), "/oauth/%2e%2e/token"} {
		add(malformed{name: "path " + p, path: p, ct: formCT, body: good, headers: svc})
	}
	return ms
}

// TestMalformedRequests sends a few hundred bad requests: none may produce
// a 5xx, a panic or a body that is not an OAuth error.
func TestMalformedRequests(t *testing.T) {
	f := newFixture(t)
	reqs := malformedRequests(f)
	if len(reqs) < 200 {
		t.Fatalf("only %d malformed requests", len(reqs))
	}
	for _, m := range reqs {
		var body io.Reader = bytes.NewReader(m.body)
		if m.chunked {
			body = io.MultiReader(bytes.NewReader(m.body)) // unknown length
		}
		req, err := http.NewRequest(m.method, f.URL+m.path, body)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if m.ct != "" {
			req.Header.Set("Content-Type", m.ct)
		}
		for k, vs := range m.headers {
			req.Header[k] = vs
		}
		resp, b := f.Do(req)
		if resp.StatusCode < 400 || resp.StatusCode > 499 || (m.status != 0 && resp.StatusCode != m.status) {
			t.Errorf("%s: status %d, want %v: %.200s", m.name, resp.StatusCode, max(m.status, 400), b)
			continue
		}
		if m.allow != "" && resp.Header.Get("Allow") != m.allow {
			t.Errorf("%s: Allow %q, want %q", m.name, resp.Header.Get("Allow"), m.allow)
		}
		if m.method == http.MethodHead {
			continue
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: Content-Type %q", m.name, resp.Header.Get("Content-Type"))
			continue
		}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Error == "" || e.Description == "" {
			t.Errorf("%s: not an OAuth error body (%v): %.200s", m.name, err, b)
		}
	}
	if strings.Contains(f.Log.String(), "panic") {
		t.Fatalf("the server logged a panic:\n%s", f.Log.String())
	}
	t.Logf("%d malformed requests, all answered 4xx with an error body", len(reqs))
}
