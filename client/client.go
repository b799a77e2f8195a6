package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client sends authorized requests to one P21 server: a [CachedSource],
// an [http.Client] that uses it, and the server's UI server URL, looked up
// once per Client.
type Client struct {
	// BaseURL is the server's URL, e.g. https://play.p21server.com.
	BaseURL string
	// Source provides the tokens.
	Source *CachedSource
	// HTTP sends requests with the token (see [Transport]).
	HTTP *http.Client

	mu sync.Mutex
	ui map[URLType]string
}

// NewClient returns a Client for baseURL that gets its tokens from src
// (wrapped in [NewCachedSource] with opts unless it already is one) and
// sends requests with [WithHTTPClient]'s client (default
// [http.DefaultClient]).
func NewClient(baseURL string, src TokenSource, opts ...Option) *Client {
	o := buildOptions(opts)
	cs, ok := src.(*CachedSource)
	if !ok {
		cs = NewCachedSource(src, opts...)
	}
	return &Client{BaseURL: baseURL, Source: cs, HTTP: NewHTTPClient(cs, o.httpClient)}
}

// URL resolves a path (with an optional query) against BaseURL. An
// absolute URL is returned as it is.
func (c *Client) URL(path string) (string, error) {
	return resolve(c.BaseURL, path)
}

// NewRequest builds a request for a path relative to BaseURL.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u, err := c.URL(path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, clean(path, 200), errBadURL)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Do sends req with the token.
func (c *Client) Do(req *http.Request) (*http.Response, error) { return c.HTTP.Do(req) }

// URLType selects the UI server URL the router returns.
type URLType string

// The router's URL types.
const (
	External URLType = "external"
	Internal URLType = "internal"
)

// UIRouterPath is the P21 UI server router endpoint.
const UIRouterPath = "/api/ui/router/v1"

// UIServerURL asks the server's router (GET /api/ui/router/v1?urlType=…)
// for the UI server URL that the Interactive and Transaction APIs live
// under, e.g. https://host/uiserver0 (without a trailing slash). The
// answer is kept for the life of the Client; failures are not.
func (c *Client) UIServerURL(ctx context.Context, t URLType) (string, error) {
	if t == "" {
		t = External
	}
	c.mu.Lock()
	u, ok := c.ui[t]
	c.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := LookupUIServerURL(ctx, c.HTTP, c.BaseURL, t)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.ui == nil {
		c.ui = map[URLType]string{}
	}
	c.ui[t] = u
	c.mu.Unlock()
	return u, nil
}

// UIURL resolves a path of the Interactive or Transaction API (e.g.
// /api/ui/interactive/sessions/) against the external UI server URL. A
// path that already starts with the UI server's own path (/uiserver0/…)
// is not prefixed twice; an absolute URL is returned as it is.
func (c *Client) UIURL(ctx context.Context, path string) (string, error) {
	if isAbsURL(path) {
		return path, nil
	}
	ui, err := c.UIServerURL(ctx, External)
	if err != nil {
		return "", err
	}
	return ResolveUIPath(ui, path)
}

// ResolveUIPath joins a UI server URL and a path as [Client.UIURL] does.
func ResolveUIPath(uiServerURL, path string) (string, error) {
	u, err := url.Parse(uiServerURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the UI server URL is not valid: %w", errBadURL)
	}
	prefix := strings.TrimRight(u.Path, "/")
	p := "/" + strings.TrimLeft(path, "/")
	if prefix != "" && (strings.EqualFold(p, prefix) || hasFoldPrefix(p, prefix+"/")) {
		u.Path, u.RawPath = "", ""
	}
	return resolve(strings.TrimRight(u.String(), "/"), p)
}

func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func isAbsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != ""
}

// resolve appends path (and its query) to base, keeping base's path.
func resolve(base, path string) (string, error) {
	if isAbsURL(path) {
		return path, nil
	}
	if base == "" {
		return "", errNoURL
	}
	if _, err := url.Parse(base); err != nil {
		return "", errBadURL
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return strings.TrimRight(base, "/") + path, nil
}

// LookupUIServerURL asks the router at baseURL for the UI server URL,
// sending the request with hc (which must add the token, as a client
// from [NewHTTPClient] does). It does not cache; [Client.UIServerURL] does.
func LookupUIServerURL(ctx context.Context, hc *http.Client, baseURL string, t URLType) (string, error) {
	if t != External && t != Internal {
		return "", fmt.Errorf("UI server URL type %q is not external or internal", clean(string(t), 32))
	}
	if baseURL == "" {
		return "", errNoURL
	}
	endpoint := joinURL(baseURL, UIRouterPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?urlType="+string(t), nil)
	if err != nil {
		return "", fmt.Errorf("UI server lookup: %w", errBadURL)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("UI server lookup at %s: %w", redactURL(endpoint), err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return "", fmt.Errorf("UI server lookup at %s: reading the response: %w", redactURL(endpoint), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", errorFromResponse("UI server lookup", redactURL(endpoint), resp, body, time.Now(), nil)
	}
	u := routerURL(body)
	if pu, err := url.Parse(u); err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
		return "", &Error{Op: "UI server lookup", Endpoint: redactURL(endpoint), Status: resp.StatusCode,
			Description: "the response holds no http(s) Url"}
	}
	return strings.TrimRight(u, "/"), nil
}

// routerURL reads the router's answer: {"Url": "…"} with the field in any
// spelling, as JSON or XML, or a bare JSON string.
func routerURL(body []byte) string {
	var s string
	if json.Unmarshal(body, &s) == nil {
		return strings.TrimSpace(s)
	}
	fields, err := parseFields(body)
	if err != nil {
		return ""
	}
	u, _ := str(fields, "url")
	return strings.TrimSpace(u)
}
