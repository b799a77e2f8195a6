package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// AddRole creates an empty role.
func (a *Admin) AddRole(ctx context.Context, actor, name string) (gatehouse.Role, error) {
	if !roleNameRE.MatchString(name) {
		return gatehouse.Role{}, inputErr("role name %q is not valid: use 1-128 letters, digits, spaces, _ . -", name)
	}
	now := a.clock.Now()
	r := gatehouse.Role{Name: name, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateRole(a.with(ctx, actor, "role.add", "role:"+name, ""), r); err != nil {
		if errors.Is(err, gatehouse.ErrConflict) {
			return r, conflictErr("role %q already exists", name)
		}
		return r, err
	}
	return r, nil
}

// SetRoleEntries allows (allow=true) or denies objects in a role. An object
// is NAME, table:NAME or view:NAME; without a kind, the catalog's kind is
// used, else table.
func (a *Admin) SetRoleEntries(ctx context.Context, actor, role string, allow bool, objects []string) (gatehouse.Role, error) {
	if len(objects) == 0 {
		return gatehouse.Role{}, inputErr("name at least one table or view")
	}
	entries := make([]gatehouse.RoleEntry, 0, len(objects))
	for _, o := range objects {
		e, err := a.parseObject(ctx, o)
		if err != nil {
			return gatehouse.Role{}, err
		}
		e.Allow = allow
		entries = append(entries, e)
	}
	verb := "deny"
	if allow {
		verb = "allow"
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = string(e.Kind) + ":" + e.Object
	}
	var stored string
	ev := a.audited(ctx, func([]gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "role."+verb, "role:"+stored, strings.Join(names, " "))
	})
	r, err := a.store.UpdateRole(ev, role, func(r *gatehouse.Role) error {
		stored = r.Name
		if err := checkPrecondition(ctx, *r); err != nil {
			return err
		}
		for _, e := range entries {
			r.SetEntry(e)
		}
		r.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return r, notFound(err, "role", role)
	}
	return r, nil
}

func (a *Admin) parseObject(ctx context.Context, o string) (gatehouse.RoleEntry, error) {
	kind := gatehouse.ObjectKind("")
	name := strings.TrimSpace(o)
	if k, n, ok := strings.Cut(name, ":"); ok {
		kind, name = gatehouse.ObjectKind(strings.ToLower(k)), n
		if !kind.Valid() {
			return gatehouse.RoleEntry{}, inputErr("object %q: kind %q is not table or view", o, k)
		}
	}
	if !objectNameRE.MatchString(name) {
		return gatehouse.RoleEntry{}, inputErr("object %q is not a valid table or view name (letters, digits, _)", o)
	}
	if kind == "" {
		kind = gatehouse.KindTable
		if c, err := a.store.LookupCatalog(ctx, name); err == nil {
			kind, name = c.Kind, c.Name
		} else if !errors.Is(err, gatehouse.ErrNotFound) {
			return gatehouse.RoleEntry{}, err
		}
	}
	return gatehouse.RoleEntry{Object: name, Kind: kind}, nil
}

// RoleFlags lists the blanket permissions SetRoleFlags changes; nil fields stay.
type RoleFlags struct {
	AllowAll, AllowAllTables, AllowAllViews *bool
}

// SetRoleFlags changes a role's Allow All / Allow All Tables / Allow All Views.
func (a *Admin) SetRoleFlags(ctx context.Context, actor, role string, f RoleFlags) (gatehouse.Role, error) {
	if f.AllowAll == nil && f.AllowAllTables == nil && f.AllowAllViews == nil {
		return gatehouse.Role{}, inputErr("give at least one of --all, --all-tables, --all-views")
	}
	var changes []string
	var stored string
	ev := a.audited(ctx, func([]gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "role.set", "role:"+stored, strings.Join(changes, " "))
	})
	r, err := a.store.UpdateRole(ev, role, func(r *gatehouse.Role) error {
		stored = r.Name
		if err := checkPrecondition(ctx, *r); err != nil {
			return err
		}
		if f.AllowAll != nil {
			r.AllowAll = *f.AllowAll
			changes = append(changes, fmt.Sprintf("allow_all=%t", *f.AllowAll))
		}
		if f.AllowAllTables != nil {
			r.AllowAllTables = *f.AllowAllTables
			changes = append(changes, fmt.Sprintf("allow_all_tables=%t", *f.AllowAllTables))
		}
		if f.AllowAllViews != nil {
			r.AllowAllViews = *f.AllowAllViews
			changes = append(changes, fmt.Sprintf("allow_all_views=%t", *f.AllowAllViews))
		}
		r.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return r, notFound(err, "role", role)
	}
	return r, nil
}

// ClearRoleEntries removes the explicit entries of objects from a role, so
// that the role's Allow All flags decide them again. An object without an
// entry is left as it is.
func (a *Admin) ClearRoleEntries(ctx context.Context, actor, role string, objects []string) (gatehouse.Role, error) {
	if len(objects) == 0 {
		return gatehouse.Role{}, inputErr("name at least one table or view")
	}
	names := make([]string, 0, len(objects))
	for _, o := range objects {
		name := strings.TrimSpace(o)
		if _, n, ok := strings.Cut(name, ":"); ok {
			name = n
		}
		if !objectNameRE.MatchString(name) {
			return gatehouse.Role{}, inputErr("object %q is not a valid table or view name (letters, digits, _)", o)
		}
		names = append(names, name)
	}
	var stored string
	var removed []string
	ev := a.audited(ctx, func([]gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "role.clear", "role:"+stored, strings.Join(removed, " "))
	})
	r, err := a.store.UpdateRole(ev, role, func(r *gatehouse.Role) error {
		stored = r.Name
		if err := checkPrecondition(ctx, *r); err != nil {
			return err
		}
		kept := r.Entries[:0:0]
		for _, e := range r.Entries {
			if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, e.Object) }) {
				removed = append(removed, string(e.Kind)+":"+e.Object)
				continue
			}
			kept = append(kept, e)
		}
		r.Entries = kept
		r.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return r, notFound(err, "role", role)
	}
	return r, nil
}
