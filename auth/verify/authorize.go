package verify

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/wire"
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
	// Path is the decoded canonical path: what was judged. EscapedPath is
	// the same path as the client spelled it, which is what is forwarded.
	Path, EscapedPath string
}

// Authorize decides a request. Refusals are *gatehouse.Error values, in
// this order: 400 for more than one Authorization header, 401 for the token
// (missing, invalid, ended), 400 for a request that cannot be judged (see
// policy.Resolve), 404 for a path no family claims, 403 for scope and
// permissions, 503 when state cannot be read.
func (a *Authorizer) Authorize(ctx context.Context, req policy.Request) (*Authorization, error) {
	if len(req.Authorization) > 1 {
		return nil, policy.ErrManyAuthorizations()
	}
	authz := ""
	if len(req.Authorization) == 1 {
		authz = req.Authorization[0]
	}
	id, err := a.Verifier.Verify(ctx, wire.BearerToken(authz))
	if err != nil {
		return nil, err
	}
	m, err := a.Table.Resolve(req.Path, req.Query)
	switch {
	case errors.Is(err, policy.ErrUnclaimed):
		return nil, policy.ErrNoFamily(req.Path)
	case err != nil:
		return nil, policy.ErrCannotJudge(err)
	}
	sc, err := a.scope(id.Claims.Audience)
	if err != nil {
		return nil, policy.ErrInvalidToken("The access token carries a scope that cannot be read.")
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
