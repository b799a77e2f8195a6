package auth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/scope"
)

// Authorizer is the one decision behind every enforcement point (gateway,
// forward-auth, the UI router, in-process middleware): verify the bearer
// token, classify the path, look up the user state the rule needs, decide.
type Authorizer struct {
	Verifier    *Verifier
	Directory   *Directory
	Table       *policy.Table
	InstallUser string

	scopes  sync.Map // scope string → scope.Scope
	nscopes atomic.Int64
}

// Request is what an enforcement point asks about: the request as sent.
type Request struct {
	// Path is the escaped path as the client sent it (the request line, or
	// the URI a proxy reports), without the query.
	Path string
	// Query is the raw query string, without "?".
	Query string
	// Authorization holds every Authorization header value of the request;
	// more than one is refused.
	Authorization []string
}

// Authorization is an allowed request.
type Authorization struct {
	Identity *Identity
	Match    policy.Match
	// ActingUser is the user the upstream acts as ("" for none).
	ActingUser string
	// Path is the decoded canonical path: what was judged. EscapedPath is
	// the same path as the client spelled it, which is what is forwarded.
	Path, EscapedPath string
}

// Headers are the identity headers passed upstream; clients cannot set them.
var Headers = []string{"X-Gatehouse-User", "X-Gatehouse-Consumer-Uid", "X-Gatehouse-Session-Id", "X-Gatehouse-Scope", "X-Gatehouse-Family"}

// SetHeaders writes the identity headers of a into h, every one of them,
// also when empty (so that a proxy copying them always overwrites), after
// removing any header that IsIdentityHeader.
func (a *Authorization) SetHeaders(h http.Header) {
	StripHeaders(h)
	h.Set("X-Gatehouse-User", a.ActingUser)
	h.Set("X-Gatehouse-Consumer-Uid", a.Identity.ConsumerUID())
	h.Set("X-Gatehouse-Session-Id", a.Identity.Claims.SessionID)
	h.Set("X-Gatehouse-Scope", a.Identity.Claims.Audience)
	h.Set("X-Gatehouse-Family", a.Match.Family.Name)
}

// IsIdentityHeader reports whether a header name is, or could be read as,
// one of gatehouse's identity headers: with "_" folded to "-" and case
// ignored, it starts with "x-gatehouse-". CGI, WSGI and Rack servers fold
// "_" and "-" together, so X_Gatehouse_User reaches them as
// X-Gatehouse-User.
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

// StripHeaders removes every header that IsIdentityHeader.
func StripHeaders(h http.Header) {
	for k := range h {
		if IsIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// ErrNoFamily is the answer for a path no API family claims.
func ErrNoFamily(path string) *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
		Description: "No API is served at " + clipDesc(path) + " on this server."}
}

// ErrCannotJudge is the answer for a request whose path is not canonical
// or whose OData query names objects that cannot be known (see
// policy.Resolve): 400 invalid_request naming what is wrong.
func ErrCannotJudge(err error) *gatehouse.Error {
	return gatehouse.ErrInvalidRequest("The request cannot be judged: %s; send it in canonical form.", err.Error())
}

// ErrManyAuthorizations is the answer for a request with more than one
// Authorization header: which one a server reads is up to the server.
func ErrManyAuthorizations() *gatehouse.Error {
	return gatehouse.ErrInvalidRequest("The request has more than one Authorization header.")
}

func clipDesc(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Authorize decides a request. Refusals are *gatehouse.Error values, in
// this order: 400 for more than one Authorization header, 401 for the token
// (missing, invalid, ended), 400 for a request that cannot be judged (see
// policy.Resolve), 404 for a path no family claims, 403 for scope and
// permissions, 503 when state cannot be read.
func (a *Authorizer) Authorize(ctx context.Context, req Request) (*Authorization, error) {
	if len(req.Authorization) > 1 {
		return nil, ErrManyAuthorizations()
	}
	authz := ""
	if len(req.Authorization) == 1 {
		authz = req.Authorization[0]
	}
	id, err := a.Verifier.Verify(ctx, BearerToken(authz))
	if err != nil {
		return nil, err
	}
	m, err := a.Table.Resolve(req.Path, req.Query)
	switch {
	case errors.Is(err, policy.ErrNoFamily):
		return nil, ErrNoFamily(req.Path)
	case err != nil:
		return nil, ErrCannotJudge(err)
	}
	sc, err := a.scope(id.Claims.Audience)
	if err != nil {
		return nil, ErrInvalidToken("The access token carries a scope that cannot be read.")
	}
	sub := policy.Subject{Username: id.Claims.Subject, Consumer: id.IsConsumer(), Scope: sc}
	var st policy.State
	needUser, needRole, needCatalog := policy.Needs(m, sub)
	if needUser {
		if st.User, err = a.Directory.User(ctx, sub.Username); err != nil {
			return nil, gatehouse.ErrStoreDown(err)
		}
	}
	if needRole && st.User != nil {
		if st.Role, err = a.Directory.Role(ctx, st.User.Role); err != nil {
			return nil, gatehouse.ErrStoreDown(err)
		}
	}
	if needCatalog {
		st.Kinds = make(map[string]gatehouse.ObjectKind, len(m.Objects))
		for _, o := range m.Objects {
			if st.Kinds[o], err = a.Directory.Kind(ctx, o); err != nil {
				return nil, gatehouse.ErrStoreDown(err)
			}
		}
	}
	d := policy.Decide(m, sub, st, a.InstallUser)
	if !d.Allow {
		return nil, d.Refusal
	}
	return &Authorization{Identity: id, Match: m, ActingUser: d.ActingUser, Path: m.Path, EscapedPath: req.Path}, nil
}

// scope parses a token's scope once; tokens of one consumer share it.
func (a *Authorizer) scope(aud string) (scope.Scope, error) {
	if v, ok := a.scopes.Load(aud); ok {
		return v.(scope.Scope), nil
	}
	sc, err := scope.Parse(aud)
	if err != nil {
		return nil, err
	}
	// Scopes come from consumer configuration, so there are few of them;
	// the bound only guards against a flood of distinct valid tokens.
	if a.nscopes.Load() < 10_000 {
		if _, loaded := a.scopes.LoadOrStore(aud, sc); !loaded {
			a.nscopes.Add(1)
		}
	}
	return sc, nil
}

// ConsumerUIDInt is the consumer uid of an identity as a number, 0 for none.
func (id *Identity) ConsumerUIDInt() int64 {
	n, _ := strconv.ParseInt(id.Claims.ConsumerUID, 10, 64)
	return n
}
