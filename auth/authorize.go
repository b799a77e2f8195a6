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

// Authorization is an allowed request.
type Authorization struct {
	Identity *Identity
	Match    policy.Match
	// ActingUser is the user the upstream acts as ("" for none).
	ActingUser string
	// Path is the cleaned request path: what was classified. The gateway
	// forwards the client's own spelling of it where that is safe.
	Path string
}

// Headers are the identity headers passed upstream; clients cannot set them.
var Headers = []string{"X-Gatehouse-User", "X-Gatehouse-Consumer-Uid", "X-Gatehouse-Session-Id", "X-Gatehouse-Scope", "X-Gatehouse-Family"}

// SetHeaders writes the identity headers of a into h, after removing any
// X-Gatehouse-* header already there.
func (a *Authorization) SetHeaders(h http.Header) {
	StripHeaders(h)
	h.Set("X-Gatehouse-User", a.ActingUser)
	h.Set("X-Gatehouse-Consumer-Uid", a.Identity.ConsumerUID())
	h.Set("X-Gatehouse-Session-Id", a.Identity.Claims.SessionID)
	h.Set("X-Gatehouse-Scope", a.Identity.Claims.Audience)
	h.Set("X-Gatehouse-Family", a.Match.Family.Name)
}

// StripHeaders removes every X-Gatehouse-* header, whatever its spelling.
func StripHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len("X-Gatehouse-") && strings.EqualFold(k[:len("X-Gatehouse-")], "X-Gatehouse-") {
			delete(h, k)
		}
	}
}

// ErrNoFamily is the answer for a path no API family claims.
func ErrNoFamily(path string) *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
		Description: "No API is served at " + clipDesc(path) + " on this server."}
}

func clipDesc(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// Authorize decides a request given its escaped path (URL.EscapedPath) and
// its Authorization header value. Refusals are *gatehouse.Error values:
// 400 for a path that cannot be served, 404 for one no family claims, 401
// for the token, 403 for scope and permissions, 503 when state cannot be read.
func (a *Authorizer) Authorize(ctx context.Context, escapedPath, authorization string) (*Authorization, error) {
	clean, err := policy.CleanPath(escapedPath)
	if err != nil {
		return nil, gatehouse.ErrInvalidRequest("The request path cannot be served: %v.", errors.Unwrap(err))
	}
	m, ok := a.Table.Classify(clean)
	if !ok {
		return nil, ErrNoFamily(clean)
	}
	return a.AuthorizeMatch(ctx, m, clean, authorization)
}

// AuthorizeMatch is Authorize for a path already classified.
func (a *Authorizer) AuthorizeMatch(ctx context.Context, m policy.Match, clean, authorization string) (*Authorization, error) {
	id, err := a.Verifier.Verify(ctx, BearerToken(authorization))
	if err != nil {
		return nil, err
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
		if st.Kind, err = a.Directory.Kind(ctx, m.Object); err != nil {
			return nil, gatehouse.ErrStoreDown(err)
		}
	}
	d := policy.Decide(m, sub, st, a.InstallUser)
	if !d.Allow {
		return nil, d.Refusal
	}
	return &Authorization{Identity: id, Match: m, ActingUser: d.ActingUser, Path: clean}, nil
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
