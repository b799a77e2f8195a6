// Package sqlrow is what the two SQL stores share about their rows: the
// column lists of users, consumers and roles, the order of their values,
// and how a row becomes a domain value. Each store supplies what differs —
// how it keeps times (integers in SQLite, timestamptz in PostgreSQL), how
// it keeps a consumer's grants, and its placeholders — so that a column
// added here is added to both.
package sqlrow

import (
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Scanner is a row of either driver (database/sql or pgx).
type Scanner interface{ Scan(dest ...any) error }

// Rows is a result set of either driver; the caller closes it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// UserCols are the users columns read and written, in the order of
// ScanUser and UserArgs.
const UserCols = "name, identity, role, allow_odata, admin, deleted, password_hash, created_at, updated_at"

// ScanUser reads a row of UserCols; goTime reads the store's time type T.
func ScanUser[T any](r Scanner, goTime func(T) time.Time) (gatehouse.User, error) {
	var u gatehouse.User
	var identity string
	var created, updated T
	err := r.Scan(&u.Name, &identity, &u.Role, &u.AllowODataAPI, &u.Admin, &u.Deleted, &u.PasswordHash, &created, &updated)
	u.Identity = gatehouse.IdentityType(identity)
	u.CreatedAt, u.UpdatedAt = goTime(created), goTime(updated)
	return u, err
}

// UserArgs are the values of UserCols followed by name_key; dbTime writes
// the store's time type.
func UserArgs(u *gatehouse.User, dbTime func(time.Time) any) []any {
	return []any{u.Name, string(u.Identity), u.Role, u.AllowODataAPI, u.Admin, u.Deleted, u.PasswordHash,
		dbTime(u.CreatedAt), dbTime(u.UpdatedAt), Lower(u.Name)}
}

// ConsumerCols are the consumers columns read, in the order of
// ScanConsumer; ConsumerArgs has them but uid.
const ConsumerCols = "uid, name, type, sdk_access, lifetime_ns, scope, grants, disabled, key_hash, created_at, updated_at"

// ScanConsumer reads a row of ConsumerCols; goTime reads the store's time
// type T, grants its grants column of type G.
func ScanConsumer[T, G any](r Scanner, goTime func(T) time.Time, grants func(G) ([]string, error)) (gatehouse.Consumer, error) {
	var c gatehouse.Consumer
	var typ string
	var lifetime int64
	var g G
	var created, updated T
	if err := r.Scan(&c.UID, &c.Name, &typ, &c.SDKAccess, &lifetime, &c.Scope, &g, &c.Disabled, &c.KeyHash,
		&created, &updated); err != nil {
		return c, err
	}
	c.Type = gatehouse.ConsumerType(typ)
	c.Lifetime = time.Duration(lifetime)
	c.CreatedAt, c.UpdatedAt = goTime(created), goTime(updated)
	var err error
	c.Grants, err = grants(g)
	return c, err
}

// ConsumerArgs are the values of every column of ConsumerCols but uid,
// followed by name_key; grants writes the grants column.
func ConsumerArgs(c *gatehouse.Consumer, dbTime func(time.Time) any, grants func([]string) any) []any {
	gs := c.Grants
	if gs == nil {
		gs = []string{}
	}
	var hash any
	if len(c.KeyHash) > 0 {
		hash = c.KeyHash
	}
	return []any{c.Name, string(c.Type), c.SDKAccess, int64(c.Lifetime), c.Scope, grants(gs), c.Disabled, hash,
		dbTime(c.CreatedAt), dbTime(c.UpdatedAt), Lower(c.Name)}
}

// RoleQuery reads roles with their entries in one statement, so that a
// role and its entries come from the same snapshot; add the WHERE and
// ORDER BY (by role, then entry position) clauses.
const RoleQuery = "SELECT r.name_key, r.name, r.allow_all, r.allow_all_tables, r.allow_all_views, r.created_at, r.updated_at, " +
	"e.object, e.kind, e.allow FROM roles r LEFT JOIN role_entries e ON e.role_key = r.name_key "

// FoldRoles folds the rows of RoleQuery (ordered by role) into roles;
// goTime reads the store's time type T.
func FoldRoles[T any](rows Rows, goTime func(T) time.Time) ([]gatehouse.Role, error) {
	var out []gatehouse.Role
	last := ""
	for rows.Next() {
		var key string
		var r gatehouse.Role
		var created, updated T
		var object, kind *string
		var allow *bool
		if err := rows.Scan(&key, &r.Name, &r.AllowAll, &r.AllowAllTables, &r.AllowAllViews, &created, &updated,
			&object, &kind, &allow); err != nil {
			return nil, err
		}
		if len(out) == 0 || key != last {
			r.CreatedAt, r.UpdatedAt = goTime(created), goTime(updated)
			out = append(out, r)
			last = key
		}
		if object != nil {
			e := gatehouse.RoleEntry{Object: *object}
			if kind != nil {
				e.Kind = gatehouse.ObjectKind(*kind)
			}
			if allow != nil {
				e.Allow = *allow
			}
			cur := &out[len(out)-1]
			cur.Entries = append(cur.Entries, e)
		}
	}
	return out, rows.Err()
}

// Lower is the key of a case-insensitive name (name_key columns).
func Lower(s string) string { return strings.ToLower(s) }
