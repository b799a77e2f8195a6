// Package oauth2 serves gatehouse's OAuth2 endpoints: the token endpoint of
// the APX protocol and RFC 6749 (password, client_credentials and
// refresh_token grants), introspection (RFC 7662), revocation (RFC 7009),
// authorization server metadata (RFC 8414) and the JWKS (RFC 7517). It only
// translates the wire format; the rules live in package auth.
package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/wire"
)

// Service is what the handlers need from the OAuth2 service (*issue.OAuth).
type Service interface {
	AuthenticateClient(ctx context.Context, ca issue.ClientAuth, m issue.Meta) (*issue.Client, error)
	PasswordGrant(ctx context.Context, cl *issue.Client, username, password string, m issue.Meta) (*issue.Issued, error)
	ClientCredentialsGrant(ctx context.Context, cl *issue.Client, m issue.Meta) (*issue.Issued, error)
	RefreshGrant(ctx context.Context, cl *issue.Client, refresh string, m issue.Meta) (*issue.Issued, error)
	Introspect(ctx context.Context, cl *issue.Client, tok, hint string, m issue.Meta) (issue.Introspection, error)
	Revoke(ctx context.Context, cl *issue.Client, tok, hint string, m issue.Meta) error
}

// Handler serves /oauth/… and /.well-known/….
type Handler struct {
	OAuth Service
	// Keys is the key ring whose public keys the JWKS publishes.
	Keys *token.Ring
	// PublicURL is the base of the metadata's endpoint URLs, and its issuer
	// unless Issuer is set; when empty it is taken from the request's Host.
	PublicURL string
	// Issuer is the metadata's issuer: the iss of the tokens this endpoint
	// issues (--oauth-issuer, default the public URL).
	Issuer string
	// Strict answers bad user credentials with 400 as RFC 6749 says,
	// instead of APX's 401 (--oauth-strict).
	Strict bool
	// Remote gives the client address of a request.
	Remote func(*http.Request) string
	// Observe counts a token request by flow and outcome; may be nil.
	Observe func(flow, outcome string)
	Log     *slog.Logger
}

// Paths of the endpoints (package wire holds them for clients too).
const (
	PathToken      = wire.PathToken
	PathIntrospect = wire.PathIntrospect
	PathRevoke     = wire.PathRevoke
	PathMetadata   = wire.PathMetadata
	PathJWKS       = wire.PathJWKS
	PathPrefix     = wire.PathPrefixOAuth
	WellKnown      = wire.PathPrefixWell
)

// Grants lists the grant types the token endpoint supports.
var Grants = []string{gatehouse.GrantPassword, gatehouse.GrantClientCredentials, gatehouse.GrantRefreshToken}

// basicChallenge goes with every invalid_client answer (RFC 6749 §5.2).
const basicChallenge = `Basic realm="gatehouse"`

// ServeHTTP dispatches. Paths match case-insensitively and with or without
// a trailing slash, as on the P21 endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(strings.ToLower(r.URL.Path), "/")
	switch p {
	case PathToken:
		if h.post(w, r, "oauth.token") {
			h.token(w, r)
		}
	case PathIntrospect:
		if h.post(w, r, "oauth.introspect") {
			h.introspect(w, r)
		}
	case PathRevoke:
		if h.post(w, r, "oauth.revoke") {
			h.revoke(w, r)
		}
	case PathMetadata:
		if h.get(w, r) {
			h.metadata(w, r)
		}
	case PathJWKS:
		if h.get(w, r) {
			h.jwks(w, r)
		}
	default:
		render.Error(w, render.JSON, &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
			Description: "There is no endpoint " + gatehouse.Clip(r.URL.Path, 64) + "; see " + PathMetadata})
	}
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request, flow string) bool {
	if r.Method == http.MethodPost {
		return true
	}
	e := gatehouse.ErrInvalidRequest("method %s is not allowed; use POST", gatehouse.Clip(r.Method, 64))
	e.Status = http.StatusMethodNotAllowed
	h.fail(w, flow, "invalid", e.WithHeader("Allow", http.MethodPost))
	return false
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	e := gatehouse.ErrInvalidRequest("method %s is not allowed; use GET", gatehouse.Clip(r.Method, 64))
	e.Status = http.StatusMethodNotAllowed
	render.Error(w, render.JSON, e.WithHeader("Allow", "GET, HEAD"))
	return false
}

func (h *Handler) meta(r *http.Request, via string) issue.Meta {
	m := issue.Meta{Via: via}
	if h.Remote != nil {
		m.Remote = h.Remote(r)
	}
	return m
}

// client reads the form, applies check (if any) to it, and authenticates
// the client; or answers and reports false.
func (h *Handler) client(w http.ResponseWriter, r *http.Request, flow string, check func(Form) *gatehouse.Error) (Form, *issue.Client, issue.Meta, bool) {
	m := h.meta(r, flow)
	f, e := readForm(w, r)
	if e == nil && check != nil {
		e = check(f)
	}
	if e != nil {
		h.fail(w, flow, "invalid", e)
		return nil, nil, m, false
	}
	ca, e := clientAuth(r, f)
	if e != nil {
		h.fail(w, flow, "invalid", e)
		return nil, nil, m, false
	}
	cl, err := h.OAuth.AuthenticateClient(r.Context(), ca, m)
	if err != nil {
		h.failErr(w, r, flow, err)
		return nil, nil, m, false
	}
	return f, cl, m, true
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	const flow = "oauth.token"
	f, cl, m, ok := h.client(w, r, flow, func(f Form) *gatehouse.Error {
		if f.Get("grant_type") == "" {
			return gatehouse.ErrInvalidRequest("parameter grant_type is required: password, client_credentials or refresh_token")
		}
		return nil
	})
	if !ok {
		return
	}
	ctx, grant := r.Context(), f.Get("grant_type")
	var (
		iss *issue.Issued
		err error
	)
	switch {
	case strings.EqualFold(grant, gatehouse.GrantPassword):
		label := "oauth.password"
		u, p, e := userCredentials(f)
		if e != nil {
			h.fail(w, label, "invalid", e)
			return
		}
		if iss, err = h.OAuth.PasswordGrant(ctx, cl, u, p, m); err != nil {
			h.failErr(w, r, label, err)
			return
		}
		h.issued(w, label, iss)
	case strings.EqualFold(grant, gatehouse.GrantClientCredentials):
		label := "oauth.client_credentials"
		if iss, err = h.OAuth.ClientCredentialsGrant(ctx, cl, m); err != nil {
			h.failErr(w, r, label, err)
			return
		}
		h.issued(w, label, iss)
	case strings.EqualFold(grant, gatehouse.GrantRefreshToken):
		label := "oauth.refresh_token"
		rt := f.Get("refresh_token")
		if rt == "" {
			h.fail(w, label, "invalid", gatehouse.ErrInvalidRequest("parameter refresh_token is required for the refresh_token grant"))
			return
		}
		if iss, err = h.OAuth.RefreshGrant(ctx, cl, rt, m); err != nil {
			h.failErr(w, r, label, err)
			return
		}
		h.issued(w, label, iss)
	default:
		h.fail(w, flow, "invalid", &gatehouse.Error{Status: http.StatusBadRequest, Code: gatehouse.CodeUnsupportedGrantType,
			// The value is not echoed: a confused client may have put a secret there.
			Description: "The grant_type is not supported; use password, client_credentials or refresh_token."})
	}
}

// userCredentials reads the user of a password grant: APX spells the
// parameters Username and Password, RFC 6749 username and password; either
// is accepted, both only when they agree.
func userCredentials(f Form) (username, password string, e *gatehouse.Error) {
	pick := func(rfc, apx string) (string, *gatehouse.Error) {
		a, b := f.Get(rfc), f.Get(apx)
		if a != "" && b != "" && a != b {
			return "", gatehouse.ErrInvalidRequest("parameters %s and %s are both given and differ; send one", rfc, apx)
		}
		if a == "" {
			a = b
		}
		if a == "" {
			return "", gatehouse.ErrInvalidRequest("parameter %s (or %s) is required for the password grant", rfc, apx)
		}
		return a, nil
	}
	if username, e = pick("username", "Username"); e != nil {
		return "", "", e
	}
	if password, e = pick("password", "Password"); e != nil {
		return "", "", e
	}
	return username, password, nil
}

// TokenResponse is the token endpoint's success body (RFC 6749 §5.1, APX).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (h *Handler) issued(w http.ResponseWriter, label string, iss *issue.Issued) {
	if h.Observe != nil {
		h.Observe(label, "issued")
	}
	// TokenResponse, field by field.
	o := render.NewObject()
	o.String("access_token", iss.AccessToken)
	o.String("token_type", "bearer")
	o.Int("expires_in", iss.ExpiresIn)
	o.String("scope", iss.Session.Scope)
	o.StringOmitEmpty("refresh_token", iss.RefreshToken)
	render.WriteObject(w, http.StatusOK, o)
}

// IntrospectionResponse is the RFC 7662 body; an inactive token is
// {"active":false} and nothing else.
type IntrospectionResponse = wire.Introspection

// requireToken checks the token parameter of introspection and revocation.
func requireToken(f Form) *gatehouse.Error {
	if f.Get("token") == "" {
		return gatehouse.ErrInvalidRequest("parameter token is required")
	}
	return nil
}

func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	const flow = "oauth.introspect"
	f, cl, m, ok := h.client(w, r, flow, requireToken)
	if !ok {
		return
	}
	tok := f.Get("token")
	in, err := h.OAuth.Introspect(r.Context(), cl, tok, f.Get("token_type_hint"), m)
	if err != nil {
		h.failErr(w, r, flow, err)
		return
	}
	// IntrospectionResponse, field by field.
	o := render.NewObject()
	o.Bool("active", in.Active)
	if in.Active {
		o.StringOmitEmpty("scope", in.Scope)
		o.StringOmitEmpty("client_id", in.ClientID)
		o.StringOmitEmpty("username", in.Subject)
		o.StringOmitEmpty("token_type", in.TokenType)
		o.IntOmitEmpty("exp", unix(in.ExpiresAt))
		o.IntOmitEmpty("iat", unix(in.IssuedAt))
		o.IntOmitEmpty("nbf", unix(in.NotBefore))
		o.StringOmitEmpty("sub", in.Subject)
		o.StringOmitEmpty("iss", in.Issuer)
		o.StringOmitEmpty("jti", in.JTI)
		o.StringOmitEmpty("sid", in.SessionID)
	}
	render.WriteObject(w, http.StatusOK, o)
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	const flow = "oauth.revoke"
	f, cl, m, ok := h.client(w, r, flow, requireToken)
	if !ok {
		return
	}
	tok := f.Get("token")
	// RFC 7009 §2.2: unknown, invalid or foreign tokens are answered 200 too.
	if err := h.OAuth.Revoke(r.Context(), cl, tok, f.Get("token_type_hint"), m); err != nil {
		h.failErr(w, r, flow, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// Metadata is the RFC 8414 authorization server metadata.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
}

var authMethods = []string{"client_secret_basic", "client_secret_post"}

// ResponseTypes is the metadata's response_types_supported. RFC 8414 makes
// the member REQUIRED and strict validators refuse an empty list; gatehouse
// has no authorization endpoint, so the one true value is "none" (OAuth 2.0
// Multiple Response Type Encoding Practices §4, IANA-registered): no code
// and no token ever come from an authorization endpoint. No
// authorization_endpoint is published, so no client is sent to one.
var ResponseTypes = []string{"none"}

func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimSuffix(h.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
		w.Header().Set("Vary", "Host")
	}
	issuer := h.Issuer
	if issuer == "" {
		issuer = base
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	render.WriteJSON(w, http.StatusOK, Metadata{
		Issuer:                            issuer,
		TokenEndpoint:                     base + PathToken,
		JWKSURI:                           base + PathJWKS,
		IntrospectionEndpoint:             base + PathIntrospect,
		RevocationEndpoint:                base + PathRevoke,
		GrantTypesSupported:               Grants,
		ResponseTypesSupported:            ResponseTypes,
		TokenEndpointAuthMethodsSupported: authMethods,
		IntrospectionEndpointAuthMethodsSupported: authMethods,
		RevocationEndpointAuthMethodsSupported:    authMethods,
	})
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	var kr *token.Keyring
	if h.Keys != nil {
		kr = h.Keys.Load()
	}
	if kr == nil {
		render.Error(w, render.JSON, gatehouse.ErrStoreDown(errors.New("signing keys not loaded")))
		return
	}
	b, err := kr.JWKSJSON()
	if err != nil {
		if h.Log != nil {
			h.Log.ErrorContext(r.Context(), "JWKS encoding failed", "err", err)
		}
		render.Error(w, render.JSON, &gatehouse.Error{Status: http.StatusInternalServerError,
			Code: gatehouse.CodeServerError, Description: "the key set could not be encoded"})
		return
	}
	// Short: a rotation publishes the next key well before it signs.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// failErr answers a service error: a protocol error as is (with the Basic
// challenge for invalid_client, and 400 for bad user credentials under
// --oauth-strict); anything else as the 503 it stands for.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, flow string, err error) {
	var pe *gatehouse.Error
	if !errors.As(err, &pe) {
		pe = gatehouse.ErrStoreDown(err)
	}
	outcome := "refused"
	if pe.Status >= 500 {
		outcome = "error"
		if h.Log != nil {
			h.Log.WarnContext(r.Context(), "oauth request failed", "flow", flow, "err", err)
		}
	}
	h.fail(w, flow, outcome, pe)
}

func (h *Handler) fail(w http.ResponseWriter, flow, outcome string, e *gatehouse.Error) {
	switch {
	case e.Code == gatehouse.CodeInvalidClient:
		e = e.WithHeader("WWW-Authenticate", basicChallenge)
	case h.Strict && e.Code == gatehouse.CodeInvalidGrant && e.Status == http.StatusUnauthorized:
		c := *e
		c.Status = http.StatusBadRequest
		e = &c
	}
	if h.Observe != nil {
		if flow == "oauth.token" {
			flow = FlowUnknown // refused before its grant was known
		}
		h.Observe(flow, outcome)
	}
	render.Error(w, render.JSON, e)
}

// FlowUnknown is the metrics flow label of a token request refused before
// its grant was known (every label is oauth.<grant>).
const FlowUnknown = "oauth.unknown"

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
