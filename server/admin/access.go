package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/wire"
)

// ScopeAdmin is the scope entry that lets a consumer's OAuth2 tokens use
// the admin API, for automation.
const ScopeAdmin = "admin"

// errNotAdmin is the 403 for a valid token that may not administer.
func errNotAdmin() *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusForbidden, Code: gatehouse.CodeAccessDenied,
		Description: "Administration needs a user token of an administrator (user add|update --admin) or the token of a consumer whose scope has the entry \"admin\"."}
}

// bearerActor verifies the request's bearer token and returns the acting
// administrator's name for the audit trail: admin:NAME for a user token of
// an administrator, consumer:UID for a token of a consumer whose scope (in
// the token and as configured now) holds "admin". Anything else is a 401
// (no or a bad token) or a 403.
func (h *Handler) bearerActor(ctx context.Context, r *http.Request) (string, error) {
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return "", policy.ErrManyAuthorizations()
	}
	raw := ""
	if len(authz) == 1 {
		raw = wire.BearerToken(authz[0])
	}
	id, err := h.o.Verifier.Verify(ctx, raw)
	if err != nil {
		return "", err
	}
	if id.IsConsumer() {
		sc, err := scope.Parse(id.Claims.Audience)
		if err != nil || !sc.Has(ScopeAdmin) {
			return "", errNotAdmin()
		}
		// The consumer as configured now: a scope without admin, or a
		// disabled consumer, stops its old tokens too.
		c, err := h.o.Store.GetConsumer(ctx, id.ConsumerUIDInt())
		if errors.Is(err, gatehouse.ErrNotFound) {
			return "", errNotAdmin()
		} else if err != nil {
			return "", gatehouse.ErrStoreDown(err)
		}
		now, err := scope.Parse(c.Scope)
		if c.Disabled || err != nil || !now.Has(ScopeAdmin) {
			return "", errNotAdmin()
		}
		return "consumer:" + c.UIDString(), nil
	}
	name, err := h.adminUser(ctx, id.Username())
	if err != nil {
		return "", err
	}
	return "admin:" + name, nil
}

// adminUser returns the stored name of a user who is an administrator now
// (not deleted, admin flag set), else a 403.
func (h *Handler) adminUser(ctx context.Context, name string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", errNotAdmin()
	}
	u, err := h.o.Store.GetUser(ctx, name)
	switch {
	case errors.Is(err, gatehouse.ErrNotFound):
		return "", errNotAdmin()
	case err != nil:
		return "", gatehouse.ErrStoreDown(err)
	case u.Deleted || !u.Admin:
		return "", errNotAdmin()
	}
	return u.Name, nil
}
