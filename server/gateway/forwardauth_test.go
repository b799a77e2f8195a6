package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// raw sends a request written by hand (request line and header pairs) to
// base and reads the answer.
func raw(t *testing.T, base, line string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString(line + "\r\nHost: gatehouse\r\nConnection: close\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return rawBytes(t, base, b.String())
}

// rawBytes sends msg as it is to base and reads the answer.
func rawBytes(t *testing.T, base, msg string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: %v", msg, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// fwdCase is one forward-auth request: the endpoint, the headers (name,
// value pairs; a name may repeat), and the expected answer.
type fwdCase struct {
	name     string
	method   string
	path     string
	headers  []string
	noToken  bool
	twoAuthz bool
	status   int
	code     string // the error code, "" for 200
	family   string // the X-Gatehouse-Family of a 200
}

func (f *fixture) forward(t *testing.T, tok string, c fwdCase) (*http.Response, map[string]any) {
	t.Helper()
	m := c.method
	if m == "" {
		m = http.MethodGet
	}
	req, err := http.NewRequest(m, f.URL+c.path, nil)
	if err != nil {
		// A request line Go's client would not send: write it by hand.
		var h []string
		if !c.noToken {
			h = append(h, "Authorization", "Bearer "+tok)
		}
		if c.twoAuthz {
			h = append(h, "Authorization", "Bearer "+tok)
		}
		resp, b := raw(t, f.URL, m+" "+c.path+" HTTP/1.1", append(h, c.headers...)...)
		var body map[string]any
		json.Unmarshal(b, &body)
		return resp, body
	}
	if !c.noToken {
		req.Header.Add("Authorization", "Bearer "+tok)
	}
	if c.twoAuthz {
		req.Header.Add("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header[c.headers[i]] = append(req.Header[c.headers[i]], c.headers[i+1])
	}
	resp, b := f.Do(req)
	var body map[string]any
	json.Unmarshal(b, &body)
	return resp, body
}

// TestForwardAuthModes: each proxy's endpoint reads only the headers that
// proxy sets; no client header can choose what is judged; the answer is
// 200, 401 or 403.
func TestForwardAuthModes(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/odata:supplier", "someone")
	const sup, cus = "/odataservice/odata/table/supplier", "/odataservice/odata/table/customer"
	cases := []fwdCase{
		// Each endpoint with what its proxy sends.
		{name: "check, nginx pair", path: "/auth/check", headers: []string{"X-Original-URI", sup, "X-Original-Method", "GET"}, status: 200, family: "odata"},
		{name: "check, forwarded pair", path: "/auth/check", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Method", "GET"}, status: 200, family: "odata"},
		{name: "check, both pairs agree", path: "/auth/check", headers: []string{"X-Original-URI", sup, "X-Forwarded-Uri", sup}, status: 200, family: "odata"},
		{name: "nginx", path: "/auth/nginx", headers: []string{"X-Original-URI", sup + "?$top=5", "X-Original-Method", "POST"}, status: 200, family: "odata"},
		{name: "traefik", path: "/auth/traefik", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https"}, status: 200, family: "odata"},
		{name: "caddy", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Method", "DELETE"}, status: 200, family: "odata"},
		{name: "envoy", path: "/auth/envoy" + sup + "?$top=5", status: 200, family: "odata"},
		{name: "envoy, original method", method: http.MethodPost, path: "/auth/envoy" + sup, status: 200, family: "odata"},
		{name: "envoy, other table", path: "/auth/envoy" + cus, status: 403, code: "insufficient_scope"},

		// The walk-around: the client adds the pair the proxy does
		// not set. Different values are refused wherever they arrive.
		{name: "check, client X-Forwarded-Uri behind nginx", path: "/auth/check", headers: []string{"X-Original-URI", cus, "X-Forwarded-Uri", sup}, status: 403, code: "invalid_request"},
		{name: "nginx, client X-Forwarded-Uri", path: "/auth/nginx", headers: []string{"X-Original-URI", cus, "X-Forwarded-Uri", sup}, status: 403, code: "invalid_request"},
		{name: "traefik, client X-Original-URI", path: "/auth/traefik", headers: []string{"X-Forwarded-Uri", cus, "X-Original-URI", sup}, status: 403, code: "invalid_request"},
		{name: "envoy, client X-Original-URI", path: "/auth/envoy" + cus, headers: []string{"X-Original-URI", sup}, status: 403, code: "invalid_request"},
		{name: "check, methods disagree", path: "/auth/check", headers: []string{"X-Original-URI", sup, "X-Original-Method", "GET", "X-Forwarded-Method", "DELETE"}, status: 403, code: "invalid_request"},
		// An endpoint ignores the other proxy's pair.
		{name: "nginx ignores the forwarded pair", path: "/auth/nginx", headers: []string{"X-Forwarded-Uri", sup}, status: 403, code: "invalid_request"},
		{name: "traefik ignores the nginx pair", path: "/auth/traefik", headers: []string{"X-Original-URI", sup}, status: 403, code: "invalid_request"},
		// A header read twice.
		{name: "two X-Original-URI", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Original-URI", cus}, status: 403, code: "invalid_request"},
		{name: "two X-Forwarded-Uri", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", sup, "X-Forwarded-Uri", sup}, status: 403, code: "invalid_request"},
		{name: "two Authorization", path: "/auth/nginx", twoAuthz: true, headers: []string{"X-Original-URI", sup}, status: 403, code: "invalid_request"},
		// Client headers that must never reach an upstream.
		{name: "identity header", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Gatehouse-User", "admin"}, status: 403, code: "invalid_request"},
		{name: "identity header, underscores", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X_Gatehouse_User", "admin"}, status: 403, code: "invalid_request"},
		{name: "identity header, mixed", path: "/auth/traefik", headers: []string{"X-Forwarded-Uri", sup, "x-gatehouse_scope", "/api"}, status: 403, code: "invalid_request"},
		{name: "identity header, unknown name", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", sup, "X-Gatehouse-Admin", "1"}, status: 403, code: "invalid_request"},
		{name: "path override header", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Original-URL", cus}, status: 403, code: "invalid_request"},
		{name: "path override header, underscores", path: "/auth/envoy" + sup, headers: []string{"X_Rewrite_URL", cus}, status: 403, code: "invalid_request"},
		// Paths that are not canonical, or name no API: 403, not 400/404
		// (nginx turns those into 500).
		{name: "dot segment", path: "/auth/nginx", headers: []string{"X-Original-URI", sup + "/../customer"}, status: 403, code: "invalid_request"},
		{name: "servlet dot-dot", path: "/auth/nginx", headers: []string{"X-Original-URI", sup + "/..;/customer"}, status: 403, code: "invalid_request"},
		{name: "envoy dot segment", path: "/auth/envoy" + sup + "/%2e%2e/customer", status: 403, code: "invalid_request"},
		{name: "no family", path: "/auth/nginx", headers: []string{"X-Original-URI", "/nowhere"}, status: 403, code: "not_found"},
		{name: "envoy, no path", path: "/auth/envoy", status: 403, code: "invalid_request"},
		{name: "$batch", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", "/odataservice/odata/table/$batch"}, status: 403, code: "insufficient_scope"},
		{name: "$expand", path: "/auth/caddy", headers: []string{"X-Forwarded-Uri", sup + "?$expand=customer"}, status: 403, code: "insufficient_scope"},
		{name: "bad method report", path: "/auth/nginx", headers: []string{"X-Original-URI", sup, "X-Original-Method", "G ET"}, status: 403, code: "invalid_request"},
		{name: "absolute URI report", path: "/auth/nginx", headers: []string{"X-Original-URI", "http://h" + sup}, status: 200, family: "odata"},
		// The token first: no token is 401 whatever else is wrong.
		{name: "no token, bad path", path: "/auth/nginx", noToken: true, headers: []string{"X-Original-URI", "/a/../b"}, status: 401, code: "invalid_token"},
		{name: "no token, no URI", path: "/auth/nginx", noToken: true, status: 401, code: "invalid_token"},
		{name: "no token, identity header", path: "/auth/nginx", noToken: true, headers: []string{"X-Original-URI", sup, "X-Gatehouse-User", "x"}, status: 401, code: "invalid_token"},
		{name: "no token, envoy, no family", path: "/auth/envoy/nowhere", noToken: true, status: 401, code: "invalid_token"},
	}
	for _, c := range cases {
		resp, body := f.forward(t, tok, c)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, resp.StatusCode, body, c.status)
			continue
		}
		if c.status != 200 {
			if body["error"] != c.code || body["error_description"] == "" {
				t.Errorf("%s: %v, want error %s", c.name, body, c.code)
			}
			continue
		}
		if resp.Header.Get("X-Gatehouse-Family") != c.family {
			t.Errorf("%s: family %q, want %q", c.name, resp.Header.Get("X-Gatehouse-Family"), c.family)
		}
	}
}

// TestForwardAuthIdentityHeadersAlwaysSet: a 200 carries all five identity
// headers, also the empty ones, so that a proxy copying them overwrites
// whatever the client sent.
func TestForwardAuthIdentityHeadersAlwaysSet(t *testing.T) {
	f := newFixture(t)
	f.AddRole("clerk")
	f.AddUser("api_user", "pw-one-two", true, "clerk")
	userTok := f.Token(`{"username":"api_user","password":"pw-one-two"}`)
	consumerTok := f.consumerToken(t, "/api", "")
	for name, tok := range map[string]string{"user": userTok, "consumer": consumerTok} {
		resp, body := f.forward(t, tok, fwdCase{path: "/auth/nginx", headers: []string{"X-Original-URI", "/api/entity/x"}})
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", name, resp.StatusCode, body)
		}
		for _, h := range []string{"X-Gatehouse-User", "X-Gatehouse-Consumer-Uid", "X-Gatehouse-Session-Id", "X-Gatehouse-Scope", "X-Gatehouse-Family"} {
			if _, ok := resp.Header[h]; !ok {
				t.Errorf("%s: %s is missing: %v", name, h, resp.Header)
			}
		}
	}
}

// TestForwardAuthOnlyAnswers200401403 sends a corpus of hostile requests
// to every forward-auth endpoint: none may answer anything but 200, 401 or
// 403, and none may allow a request that names customer.
func TestForwardAuthOnlyAnswers200401403(t *testing.T) {
	f := newFixture(t)
	tok := f.consumerToken(t, "/odata:supplier", "")
	uris := []string{
		"/odataservice/odata/table/customer", "/odataservice/odata/table/CUSTOMER", "/odataservice/odata/table/customer;x",
		"/odataservice/odata/table/supplier/..;/customer", "/odataservice/odata/table/supplier/../customer",
		"/odataservice/odata/table/supplier/%2e%2e/customer", "/odataservice/odata/table/supplier/%252e%252e/customer",
		"/odataservice/odata/table/customer%20", "/odataservice/odata/table/customer.", "/odataservice/odata/table/customer%2e",
		"/odataservice/odata/table/cust%6fmer", "/odataservice//odata/table/customer", "/odataservice/odata/table/supplier%2f..%2fcustomer",
		"/odataservice/odata/table/supplier%5c..%5ccustomer", "/odataservice/odata/table/supplier\\..\\customer",
		"/odataservice/odata/table/$batch", "/odataservice/odata/table/$metadata", "/odataservice/odata/table/$all",
		"/odataservice/odata/table/$crossjoin(customer)", "/odataservice/odata/table/$entity?$id=customer(1)",
		"/odataservice/odata/table/$root", "/odataservice/odata/table/supplier(1)/customer",
		"/odataservice/odata/table/supplier?$expand=customer", "/odataservice/odata/table/supplier?$expand=*",
		"/odataservice/odata/table/supplier?%24expand=customer", "/odataservice/odata/table/supplier?$select=customer/name",
		"/odataservice/odata/table/supplier?$filter=customer/name%20eq%20'x'", "/odataservice/odata/table/supplier?$expand=customer(",
		"/odataservice/odata/table/supplier%00", "/odataservice/odata/table/supplier%0d%0aX:%20y", "/api/entity/customers",
		"/uiserver0/api/v2/transaction", "", "relative/path", "*", "/%zz",
	}
	for _, ep := range []struct{ path, header string }{
		{"/auth/check", "X-Original-URI"}, {"/auth/check", "X-Forwarded-Uri"}, {"/auth/nginx", "X-Original-URI"},
		{"/auth/traefik", "X-Forwarded-Uri"}, {"/auth/caddy", "X-Forwarded-Uri"}, {"/auth/envoy", ""},
	} {
		for _, u := range uris {
			c := fwdCase{path: ep.path}
			if ep.header == "" {
				if !strings.HasPrefix(u, "/") || strings.ContainsAny(u, "\\\x00\r\n") || strings.Contains(u, "%zz") {
					// Not a request line a proxy sends; Go's server answers an
					// invalid escape with its own 400 before gatehouse sees
					// it, which Envoy treats as a denial like any non-200.
					continue
				}
				c.path += u
			} else {
				c.headers = []string{ep.header, u}
			}
			resp, body := f.forward(t, tok, c)
			if resp.StatusCode != 403 {
				t.Errorf("%s %s: %d %v, want 403", ep.path, u, resp.StatusCode, body)
			}
		}
	}
}
