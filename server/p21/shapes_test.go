package p21_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

var update = flag.Bool("update", false, "rewrite golden files")

// field is one member of a JSON object, in order.
type field struct {
	Name string
	Kind string // string, number, null, bool, object, array
	Raw  string
}

func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []field
	for dec.More() {
		k, _ := dec.Token()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		kind := "number"
		switch raw[0] {
		case '"':
			kind = "string"
		case 'n':
			kind = "null"
		case 't', 'f':
			kind = "bool"
		case '{':
			kind = "object"
		case '[':
			kind = "array"
		}
		out = append(out, field{Name: k.(string), Kind: kind, Raw: string(raw)})
	}
	return out
}

// TestSeedExamplesAreVerbatim checks that the examples responses are
// compared with (testdata/seed_*) are the seed's own: each appears in
// testdata/seed_000_excerpts.txt, passages copied verbatim from the seed
// document it names. Where that document lies beside the repository
// (../shared/seeds), the excerpts are checked against it too.
func TestSeedExamplesAreVerbatim(t *testing.T) {
	source, excerpts := seedExcerpts(t)
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, name := range []string{"seed_user_v2.json", "seed_consumer.json", "seed_consumer_username.json", "seed_xml.xml"} {
		example := squash(string(readTestdata(t, name)))
		found := false
		for _, ex := range excerpts {
			found = found || strings.Contains(squash(ex.text), example)
		}
		if !found {
			t.Errorf("testdata/%s is not verbatim in the excerpts of %s", name, source)
		}
	}

	seed, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "seeds", source))
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("%s is not beside the repository; checked the examples against its excerpts only", source)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(seed), "\n")
	for _, ex := range excerpts {
		if ex.from < 1 || ex.to > len(lines) || ex.from > ex.to {
			t.Errorf("excerpt lines %d-%d: %s has %d lines", ex.from, ex.to, source, len(lines))
			continue
		}
		if want := strings.Join(lines[ex.from-1:ex.to], "\n"); ex.text != want {
			t.Errorf("excerpt lines %d-%d differs from %s:\n%s\nwant:\n%s", ex.from, ex.to, source, ex.text, want)
		}
	}
}

// excerpt is a passage of a seed document, lines from to to (from 1).
type excerpt struct {
	from, to int
	text     string
}

// seedExcerpts reads testdata/seed_000_excerpts.txt: a header, then
// excerpts, each after a line "== <seed file> lines FROM-TO" and followed by
// one empty line. It returns the seed file's name and the excerpts.
func seedExcerpts(t *testing.T) (string, []excerpt) {
	t.Helper()
	parts := strings.Split(string(readTestdata(t, "seed_000_excerpts.txt")), "\n== ")
	var source string
	var out []excerpt
	for _, p := range parts[1:] {
		head, text, _ := strings.Cut(p, "\n")
		var name string
		var ex excerpt
		if _, err := fmt.Sscanf(head, "%s lines %d-%d", &name, &ex.from, &ex.to); err != nil {
			t.Fatalf("excerpt heading %q: %v", head, err)
		}
		if source != "" && name != source {
			t.Fatalf("excerpts of two documents: %s and %s", source, name)
		}
		source = name
		// The end of the last line, then the empty line before the next excerpt.
		ex.text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\n")
		out = append(out, ex)
	}
	if len(out) == 0 {
		t.Fatal("no excerpts in testdata/seed_000_excerpts.txt")
	}
	return source, out
}

// checkAgainstSeed compares a response field by field with a seed example:
// same names, same order, same JSON types; values equal where the seed's
// value is not a placeholder (tokens, session ids).
func checkAgainstSeed(t *testing.T, got []byte, seedFile string, dynamic ...string) {
	t.Helper()
	want := fields(t, readTestdata(t, seedFile))
	have := fields(t, got)
	if len(have) != len(want) {
		t.Fatalf("%s: got fields %v, want %v", seedFile, have, want)
	}
	isDynamic := map[string]bool{}
	for _, d := range dynamic {
		isDynamic[d] = true
	}
	for i := range want {
		if have[i].Name != want[i].Name || have[i].Kind != want[i].Kind {
			t.Errorf("%s field %d: got %s (%s), want %s (%s)", seedFile, i, have[i].Name, have[i].Kind, want[i].Name, want[i].Kind)
			continue
		}
		if !isDynamic[want[i].Name] && have[i].Raw != want[i].Raw {
			t.Errorf("%s field %s: got %s, want %s", seedFile, want[i].Name, have[i].Raw, want[i].Raw)
		}
	}
}

var (
	jwtRE  = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)
)

// normalize replaces the values that differ on every run.
func normalize(b []byte, refresh string) []byte {
	s := jwtRE.ReplaceAllString(string(b), "<jwt>")
	if refresh != "" {
		s = strings.ReplaceAll(s, refresh, "<refresh-token>")
	}
	return []byte(uuidRE.ReplaceAllString(s, "<session-id>"))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func TestResponseShapes(t *testing.T) {
	f := newFixture(t)
	xmlAccept := []string{"Accept", "application/xml"}

	type shape struct {
		name    string
		send    func() (*http.Response, []byte)
		seed    string
		dynamic []string
		xml     bool
	}
	shapes := []shape{
		{name: "user_v2_json", send: f.userV2, seed: "seed_user_v2.json", dynamic: []string{"AccessToken", "RefreshToken"}},
		{name: "user_v1_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token", jsonCT, "", "username", "api_user", "password", userPassword, "Accept", jsonCT)
		}, seed: "seed_user_v2.json", dynamic: []string{"AccessToken", "RefreshToken"}},
		{name: "consumer_v2_json", send: func() (*http.Response, []byte) { return f.consumerV2("") },
			seed: "seed_consumer.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "consumer_username_v2_json", send: func() (*http.Response, []byte) { return f.consumerV2("api_user") },
			seed: "seed_consumer_username.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "consumer_v1_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token", jsonCT, "", "appkey", f.key, "Accept", jsonCT)
		}, seed: "seed_consumer.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "consumer_username_v1_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token", jsonCT, "", "appkey", f.key, "username", "api_user", "Accept", jsonCT)
		}, seed: "seed_consumer_username.json", dynamic: []string{"AccessToken", "SessionId"}},
		{name: "user_v2_xml", xml: true, send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`, xmlAccept...)
		}},
		{name: "consumer_v2_xml", xml: true, send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials","username":"api_user"}`, xmlAccept...)
		}},
		{name: "error_bad_credentials_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`)
		}},
		{name: "error_bad_credentials_xml", xml: true, send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong"}`, xmlAccept...)
		}},
		{name: "error_bad_client_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"00000000-0000-4000-8000-000000000000","GrantType":"client_credentials"}`)
		}},
		{name: "error_invalid_request_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user"}`)
		}},
		{name: "error_not_found_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v3", jsonCT, `{}`)
		}},
		{name: "error_refresh_json", send: func() (*http.Response, []byte) {
			return f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"nope"}`)
		}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			resp, body := s.send()
			ct := resp.Header.Get("Content-Type")
			if s.xml != strings.HasPrefix(ct, "application/xml") {
				t.Fatalf("Content-Type %q", ct)
			}
			if s.seed != "" {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				checkAgainstSeed(t, body, s.seed, s.dynamic...)
			}
			refresh := ""
			if m := regexp.MustCompile(`"RefreshToken":"([^"]+)"|<RefreshToken>([^<]+)</RefreshToken>`).FindSubmatch(body); m != nil {
				refresh = string(m[1]) + string(m[2])
			}
			golden(t, s.name, normalize(body, refresh))
		})
	}
}

func TestXMLMatchesSeedElements(t *testing.T) {
	f := newFixture(t)
	_, body := f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`, "Accept", "application/xml")
	// The seed's parser: a regex per field. It must find every field, and
	// ExpiresIn rather than ExpiresInSeconds.
	for _, fld := range []string{"AccessToken", "TokenType", "ExpiresIn", "RefreshToken"} {
		m := regexp.MustCompile(`<` + fld + `>([^<]*)</` + fld + `>`).FindSubmatch(body)
		if m == nil || len(m[1]) == 0 {
			t.Errorf("XML lacks %s: %s", fld, body)
		}
	}
	if bytes.Contains(body, []byte("ExpiresInSeconds")) {
		t.Errorf("XML must use ExpiresIn: %s", body)
	}
	if !bytes.HasPrefix(body, []byte(`<?xml version="1.0" encoding="utf-8"?>`)) {
		t.Errorf("XML declaration missing: %s", body)
	}
	if !strings.Contains(string(body), "<ExpiresIn>86400</ExpiresIn>") {
		t.Errorf("ExpiresIn: %s", body)
	}
}

func TestNegotiation(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		accept string
		xml    bool
	}{
		{"", false}, {"application/json", false}, {"*/*", false}, {"application/xml", true}, {"text/xml", true},
		{"application/json, application/xml", false}, {"application/xml, application/json", true},
		{"application/json;q=0.5, application/xml", true}, {"application/xml;q=0.1, */*", false},
		{"text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8", true},
	}
	for _, c := range cases {
		resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials"}`, "Accept", c.accept)
		isXML := bytes.HasPrefix(body, []byte("<?xml"))
		if resp.StatusCode != 200 || isXML != c.xml {
			t.Errorf("Accept %q: status %d, xml=%v, want xml=%v", c.accept, resp.StatusCode, isXML, c.xml)
		}
	}

	for _, mode := range []string{"xml", "json"} {
		t.Run("token-format="+mode, func(t *testing.T) {
			g := newFixture(t, func(c *app.Config) { c.TokenFormat = mode })
			for _, accept := range []string{"application/json", "application/xml", ""} {
				_, body := g.userV2Accept(accept)
				if bytes.HasPrefix(body, []byte("<?xml")) != (mode == "xml") {
					t.Errorf("mode %s Accept %q: %s", mode, accept, body)
				}
				_, body = g.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"bad"}`, "Accept", accept)
				if bytes.HasPrefix(body, []byte("<?xml")) != (mode == "xml") {
					t.Errorf("mode %s Accept %q error: %s", mode, accept, body)
				}
			}
		})
	}
}
