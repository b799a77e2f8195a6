package compat

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Envoy and Traefik are not packaged by Debian, so their snippets in
// docs/gateway.md are tested against their contracts instead of a running
// proxy: a small in-process stand-in reads the snippet's settings and
// forwards each attack request the way the proxy's documentation says it
// does — which check request it sends gatehouse, and which headers it
// copies onto the proxied request — and the same attack table as for nginx
// and Caddy runs through it.

// headerMatcher is an Envoy StringMatcher on a lower-cased header name.
type headerMatcher struct {
	Exact  string `yaml:"exact"`
	Prefix string `yaml:"prefix"`
}

func matchAny(ms []headerMatcher, name string) bool {
	name = strings.ToLower(name)
	for _, m := range ms {
		if (m.Exact != "" && name == m.Exact) || (m.Prefix != "" && strings.HasPrefix(name, m.Prefix)) {
			return true
		}
	}
	return false
}

// envoySnippet is the part of the Envoy snippet the contract uses.
type envoySnippet struct {
	HCM struct {
		Underscores    string `yaml:"headers_with_underscores_action"`
		EscapedSlashes string `yaml:"path_with_escaped_slashes_action"`
		Filters        []struct {
			Name   string `yaml:"name"`
			Config struct {
				FailureModeAllow bool `yaml:"failure_mode_allow"`
				HTTPService      struct {
					PathPrefix string `yaml:"path_prefix"`
					Request    struct {
						Allowed struct {
							Patterns []headerMatcher `yaml:"patterns"`
						} `yaml:"allowed_headers"`
					} `yaml:"authorization_request"`
					Response struct {
						Upstream struct {
							Patterns []headerMatcher `yaml:"patterns"`
						} `yaml:"allowed_upstream_headers"`
					} `yaml:"authorization_response"`
				} `yaml:"http_service"`
			} `yaml:"typed_config"`
		} `yaml:"http_filters"`
	} `yaml:"http_connection_manager"`
}

// originForm is the path and query of a request target; an absolute-form
// target ("http://host/p?q") gives its path and query, as proxies do.
func originForm(target string) string {
	if strings.HasPrefix(target, "/") {
		return target
	}
	if i := strings.Index(target, "://"); i >= 0 {
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return target
}

// rawRequest builds a request whose target is sent exactly as given.
func rawRequest(method, base, target string) *http.Request {
	u, _ := url.Parse(base)
	path, query, hasQuery := strings.Cut(target, "?")
	u.Opaque, u.RawQuery, u.ForceQuery = path, query, hasQuery && query == ""
	return &http.Request{Method: method, URL: u, Header: http.Header{}, Host: u.Host, Body: http.NoBody}
}

// relay copies an answer to the client.
func relay(w http.ResponseWriter, resp *http.Response) {
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// TestEnvoyExtAuthzContract: the Envoy snippet's ext_authz HTTP service
// contract. Envoy sends the check with the original method, its path_prefix
// before the original path and query, the Host, a zero Content-Length, the
// Authorization header and the headers allowed_headers matches; on 200 it
// copies the response headers allowed_upstream_headers matches onto the
// proxied request, replacing the client's; any other answer goes to the
// client. headers_with_underscores_action REJECT_REQUEST and
// path_with_escaped_slashes_action REJECT_REQUEST answer 400 themselves.
func TestEnvoyExtAuthzContract(t *testing.T) {
	var doc envoySnippet
	if err := yaml.Unmarshal([]byte(snippet(t, "yaml", "http_connection_manager:")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.HCM.Filters) == 0 || doc.HCM.Filters[0].Name != "envoy.filters.http.ext_authz" {
		t.Fatalf("the snippet's first filter is not ext_authz: %+v", doc.HCM.Filters)
	}
	cfg := doc.HCM.Filters[0].Config
	svc := cfg.HTTPService
	if cfg.FailureModeAllow || svc.PathPrefix != "/auth/envoy" || doc.HCM.Underscores != "REJECT_REQUEST" || doc.HCM.EscapedSlashes != "REJECT_REQUEST" {
		t.Fatalf("snippet settings: %+v", doc.HCM)
	}
	e, tok := proxyEnv(t)
	up := newRecordingUpstream(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	envoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.Contains(k, "_") {
				http.Error(w, "header with underscore", http.StatusBadRequest)
				return
			}
		}
		target := originForm(r.RequestURI)
		if p, _, _ := strings.Cut(strings.ToLower(target), "?"); strings.Contains(p, "%2f") || strings.Contains(p, "%5c") {
			http.Error(w, "escaped slash", http.StatusBadRequest)
			return
		}
		chk := rawRequest(r.Method, e.URL, svc.PathPrefix+target)
		chk.Host = r.Host
		chk.Header.Set("Content-Length", "0")
		for k, vs := range r.Header {
			if strings.EqualFold(k, "Authorization") || matchAny(svc.Request.Allowed.Patterns, k) {
				chk.Header[k] = vs
			}
		}
		resp, err := client.Do(chk)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			relay(w, resp)
			return
		}
		out := rawRequest(r.Method, up.URL, target)
		out.Header = r.Header.Clone()
		for k, vs := range resp.Header {
			if matchAny(svc.Response.Upstream.Patterns, k) {
				out.Header[k] = vs
			}
		}
		uresp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer uresp.Body.Close()
		relay(w, uresp)
	}))
	defer envoy.Close()
	runAttacks(t, e, up, strings.TrimPrefix(envoy.URL, "http://"), tok)
}

// traefikSnippet is the part of the Traefik snippet the contract uses.
type traefikSnippet struct {
	HTTP struct {
		Middlewares map[string]struct {
			ForwardAuth *struct {
				Address             string   `yaml:"address"`
				AuthResponseHeaders []string `yaml:"authResponseHeaders"`
				TrustForwardHeader  bool     `yaml:"trustForwardHeader"`
			} `yaml:"forwardAuth"`
			Headers *struct {
				CustomRequestHeaders map[string]string `yaml:"customRequestHeaders"`
			} `yaml:"headers"`
		} `yaml:"middlewares"`
		Routers map[string]struct {
			Middlewares []string `yaml:"middlewares"`
		} `yaml:"routers"`
	} `yaml:"http"`
}

// TestTraefikForwardAuthContract: the Traefik snippet's contract. The entry
// point drops client X-Forwarded-* headers (forwardedHeaders.insecure
// false); the headers middleware removes the headers set to ""; forwardAuth
// sends GET to its address with the client's headers and its own
// X-Forwarded-Method, -Proto, -Host, -Uri (the request URI) and -For; on a
// 2xx it replaces the authResponseHeaders on the proxied request with the
// answer's, else it passes the answer to the client.
func TestTraefikForwardAuthContract(t *testing.T) {
	var doc traefikSnippet
	if err := yaml.Unmarshal([]byte(snippet(t, "yaml", "http:\n  middlewares:")), &doc); err != nil {
		t.Fatal(err)
	}
	router, ok := doc.HTTP.Routers["p21"]
	if !ok || len(router.Middlewares) == 0 {
		t.Fatalf("the snippet has no p21 router with middlewares: %+v", doc.HTTP.Routers)
	}
	e, tok := proxyEnv(t)
	up := newRecordingUpstream(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	traefik := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "x-forwarded-") {
				delete(h, k)
			}
		}
		target := originForm(r.RequestURI)
		for _, name := range router.Middlewares {
			mw := doc.HTTP.Middlewares[name]
			switch {
			case mw.Headers != nil:
				for k, v := range mw.Headers.CustomRequestHeaders {
					if v == "" {
						h.Del(k)
					} else {
						h.Set(k, v)
					}
				}
			case mw.ForwardAuth != nil:
				fa := mw.ForwardAuth
				if fa.TrustForwardHeader {
					t.Errorf("the snippet trusts forwarded headers")
				}
				addr := strings.Replace(fa.Address, "http://127.0.0.1:8080", e.URL, 1)
				chk, _ := http.NewRequest(http.MethodGet, addr, nil)
				chk.Header = h.Clone()
				chk.Header.Set("X-Forwarded-Method", r.Method)
				chk.Header.Set("X-Forwarded-Proto", "http")
				chk.Header.Set("X-Forwarded-Host", r.Host)
				chk.Header.Set("X-Forwarded-Uri", target)
				chk.Header.Set("X-Forwarded-For", "127.0.0.1")
				resp, err := client.Do(chk)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					w.WriteHeader(resp.StatusCode)
					w.Write(body)
					return
				}
				for _, name := range fa.AuthResponseHeaders {
					k := http.CanonicalHeaderKey(name)
					h.Del(k)
					if vs := resp.Header[k]; len(vs) > 0 {
						h[k] = append([]string(nil), vs...)
					}
				}
			default:
				t.Fatalf("middleware %q is not in the snippet", name)
			}
		}
		out := rawRequest(r.Method, up.URL, target)
		out.Header = h
		uresp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer uresp.Body.Close()
		relay(w, uresp)
	}))
	defer traefik.Close()
	runAttacks(t, e, up, strings.TrimPrefix(traefik.URL, "http://"), tok)
}
