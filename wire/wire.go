// Package wire is the HTTP contract between a gatehouse server and the
// programs that talk to it as resource servers (package guard, proxies):
// the endpoint paths, the introspection answer, the identity headers, and
// how a bearer token travels. It depends on the standard library only, so
// that a resource server linking it links nothing else of gatehouse.
package wire

import (
	"net/http"
	"strings"
)

// Paths of the OAuth2 and discovery endpoints.
const (
	PathToken      = "/oauth/token"
	PathIntrospect = "/oauth/introspect"
	PathRevoke     = "/oauth/revoke"
	PathMetadata   = "/.well-known/oauth-authorization-server"
	PathJWKS       = "/.well-known/jwks.json"
	// PathConfiguration publishes what resource servers need to decide as
	// the server does: its API family table (Configuration).
	PathConfiguration = "/.well-known/gatehouse-configuration"
	PathPrefixOAuth   = "/oauth/"
	PathPrefixWell    = "/.well-known/"
)

// Forward-auth endpoints, one per way a proxy reports the original request.
const (
	// PathCheck reads X-Original-Method/X-Original-URI or
	// X-Forwarded-Method/X-Forwarded-Uri, refusing a request that carries
	// both with different values (the documented default).
	PathCheck = "/auth/check"
	// PathNginx reads only X-Original-Method and X-Original-URI, which
	// nginx's auth_request snippet sets.
	PathNginx = "/auth/nginx"
	// PathTraefik and PathCaddy read only X-Forwarded-Method and
	// X-Forwarded-Uri, which Traefik forwardAuth and Caddy forward_auth set.
	PathTraefik = "/auth/traefik"
	PathCaddy   = "/auth/caddy"
	// PathEnvoy is the path_prefix of Envoy's ext_authz HTTP service: the
	// check request's own method and path, after the prefix, are the
	// original request's.
	PathEnvoy = "/auth/envoy"
)

// Introspection is the RFC 7662 answer of PathIntrospect.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Nbf       int64  `json:"nbf,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
	Sid       string `json:"sid,omitempty"`
}

// The identity headers gatehouse sets on an allowed request (the gateway's
// upstream request, a forward-auth 200); clients can never set them.
const (
	HeaderUser        = "X-Gatehouse-User"
	HeaderConsumerUID = "X-Gatehouse-Consumer-Uid"
	HeaderSessionID   = "X-Gatehouse-Session-Id"
	HeaderScope       = "X-Gatehouse-Scope"
	HeaderFamily      = "X-Gatehouse-Family"
)

// IdentityHeaders lists them.
var IdentityHeaders = []string{HeaderUser, HeaderConsumerUID, HeaderSessionID, HeaderScope, HeaderFamily}

// IsIdentityHeader reports whether a header name is, or could be read as,
// one of the identity headers: with "_" folded to "-" and case ignored, it
// starts with "x-gatehouse-". CGI, WSGI and Rack servers fold "_" and "-"
// together, so X_Gatehouse_User reaches them as X-Gatehouse-User.
func IsIdentityHeader(name string) bool {
	const p = "x-gatehouse-"
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// StripIdentityHeaders removes every header that IsIdentityHeader.
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		if IsIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// BearerToken extracts the token of an Authorization header value; "" when
// there is none or the scheme is not Bearer.
func BearerToken(h string) string {
	const p = "bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return ""
	}
	return strings.TrimSpace(h[len(p):])
}
