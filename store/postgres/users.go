package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

const userCols = sqlrow.UserCols

func scanUser(r pgx.Row) (gatehouse.User, error) { return sqlrow.ScanUser(r, goTime) }

// userArgs are the values of userCols followed by name_key.
func userArgs(u *gatehouse.User) []any { return sqlrow.UserArgs(u, dbTime) }

// change queues a feed entry in the caller's transaction.
func change(ctx context.Context, tx pgx.Tx, kind gatehouse.ChangeKind, key, op string) error {
	_, err := tx.Exec(ctx, "INSERT INTO changes (kind, key, op) VALUES ($1, $2, $3)", string(kind), key, op)
	if err == nil {
		record(ctx, kind, op, key)
	}
	return err
}

// CreateUser stores u; ErrConflict if the name is taken, deleted users included.
func (s *Store) CreateUser(ctx context.Context, u gatehouse.User) error {
	return s.tx(ctx, fmt.Sprintf("user %q", u.Name), true, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO users ("+userCols+", name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			userArgs(&u)...); err != nil {
			return err
		}
		return change(ctx, tx, gatehouse.ChangeUser, lower(u.Name), gatehouse.OpCreate)
	})
}

// GetUser finds a user by name, case-insensitively.
func (s *Store) GetUser(ctx context.Context, name string) (gatehouse.User, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(qctx, "SELECT "+userCols+" FROM users WHERE name_key = $1", lower(name)))
	if err != nil {
		return gatehouse.User{}, s.err(ctx, fmt.Sprintf("user %q", name), err)
	}
	return u, nil
}

// UpdateUser applies fn to the stored user, locked for the transaction.
// fn must be quick and must not call the store.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(*gatehouse.User) error) (gatehouse.User, error) {
	what := fmt.Sprintf("user %q", name)
	var out gatehouse.User
	err := s.tx(ctx, what, false, func(ctx context.Context, tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE name_key = $1 FOR UPDATE", lower(name)))
		if err != nil {
			return err
		}
		orig := u.Name
		if err := fn(&u); err != nil {
			return callerErr{err}
		}
		if u.Name != orig {
			return callerErr{fmt.Errorf("%s: the update may not rename the user to %q", what, u.Name)}
		}
		if out, err = scanUser(tx.QueryRow(ctx, "UPDATE users SET name = $1, identity = $2, role = $3, allow_odata = $4, admin = $5, "+
			"deleted = $6, password_hash = $7, created_at = $8, updated_at = $9 WHERE name_key = $10 RETURNING "+userCols,
			userArgs(&u)...)); err != nil {
			return err
		}
		return change(ctx, tx, gatehouse.ChangeUser, lower(u.Name), gatehouse.OpUpdate)
	})
	if err != nil {
		return gatehouse.User{}, unwrapCaller(err)
	}
	return out, nil
}

// callerErr carries an error of the caller's fn (or a refusal of what it
// did) through the transaction unchanged.
type callerErr struct{ err error }

func (c callerErr) Error() string { return c.err.Error() }
func (c callerErr) Unwrap() error { return c.err }

// unwrapCaller returns the caller's own error as it was, else err.
func unwrapCaller(err error) error {
	for e := err; e != nil; {
		if c, ok := e.(callerErr); ok {
			return c.err
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

// ListUsers returns every user ordered by lower-cased name.
func (s *Store) ListUsers(ctx context.Context) ([]gatehouse.User, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, "SELECT "+userCols+" FROM users ORDER BY name_key, name")
	if err != nil {
		return nil, s.err(ctx, "list users", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.User, error) { return scanUser(r) })
	return out, s.err(ctx, "list users", err)
}

// CountUsers counts users, deleted ones included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(qctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, s.err(ctx, "count users", err)
	}
	return n, nil
}

// Roles.

// roleQuery reads roles with their entries in one statement.
const roleQuery = sqlrow.RoleQuery

// scanRoles folds the rows of roleQuery (ordered by role) into roles.
func scanRoles(rows pgx.Rows) ([]gatehouse.Role, error) {
	defer rows.Close()
	return sqlrow.FoldRoles(rows, goTime)
}

func writeRole(ctx context.Context, tx pgx.Tx, r *gatehouse.Role, insert bool) error {
	args := []any{r.Name, r.AllowAll, r.AllowAllTables, r.AllowAllViews, dbTime(r.CreatedAt), dbTime(r.UpdatedAt), lower(r.Name)}
	q := "UPDATE roles SET name = $1, allow_all = $2, allow_all_tables = $3, allow_all_views = $4, created_at = $5, updated_at = $6 WHERE name_key = $7"
	if insert {
		q = "INSERT INTO roles (name, allow_all, allow_all_tables, allow_all_views, created_at, updated_at, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7)"
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return err
	}
	if !insert {
		if _, err := tx.Exec(ctx, "DELETE FROM role_entries WHERE role_key = $1", lower(r.Name)); err != nil {
			return err
		}
	}
	r.Entries = gatehouse.NormalEntries(r.Entries)
	for i, e := range r.Entries {
		if _, err := tx.Exec(ctx, "INSERT INTO role_entries (role_key, object_key, pos, object, kind, allow) VALUES ($1, $2, $3, $4, $5, $6)",
			lower(r.Name), lower(e.Object), i, e.Object, string(e.Kind), e.Allow); err != nil {
			return err
		}
	}
	return nil
}

// CreateRole stores r with its entries; ErrConflict if the name is taken.
// Entries naming the same object (case-insensitively) collapse into the last.
func (s *Store) CreateRole(ctx context.Context, r gatehouse.Role) error {
	return s.tx(ctx, fmt.Sprintf("role %q", r.Name), true, func(ctx context.Context, tx pgx.Tx) error {
		r := r
		if err := writeRole(ctx, tx, &r, true); err != nil {
			return err
		}
		return change(ctx, tx, gatehouse.ChangeRole, lower(r.Name), gatehouse.OpCreate)
	})
}

func getRole(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, name string, lock bool) (gatehouse.Role, error) {
	query := roleQuery + "WHERE r.name_key = $1 ORDER BY e.pos"
	if lock {
		query += " FOR UPDATE OF r"
	}
	rows, err := q.Query(ctx, query, lower(name))
	if err != nil {
		return gatehouse.Role{}, err
	}
	rs, err := scanRoles(rows)
	if err != nil {
		return gatehouse.Role{}, err
	}
	if len(rs) == 0 {
		return gatehouse.Role{}, pgx.ErrNoRows
	}
	return rs[0], nil
}

// GetRole finds a role by name, case-insensitively, with its entries.
func (s *Store) GetRole(ctx context.Context, name string) (gatehouse.Role, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	r, err := getRole(qctx, s.pool, name, false)
	if err != nil {
		return gatehouse.Role{}, s.err(ctx, fmt.Sprintf("role %q", name), err)
	}
	return r, nil
}

// UpdateRole applies fn to the stored role, locked for the transaction; its
// entries are replaced by those fn leaves. fn may not rename the role, must
// be quick and must not call the store.
func (s *Store) UpdateRole(ctx context.Context, name string, fn func(*gatehouse.Role) error) (gatehouse.Role, error) {
	what := fmt.Sprintf("role %q", name)
	var out gatehouse.Role
	err := s.tx(ctx, what, false, func(ctx context.Context, tx pgx.Tx) error {
		r, err := getRole(ctx, tx, name, true)
		if err != nil {
			return err
		}
		orig := r.Name
		if err := fn(&r); err != nil {
			return callerErr{err}
		}
		if r.Name != orig {
			return callerErr{fmt.Errorf("%s: the update may not rename the role to %q", what, r.Name)}
		}
		if err := writeRole(ctx, tx, &r, false); err != nil {
			return err
		}
		if err := change(ctx, tx, gatehouse.ChangeRole, lower(r.Name), gatehouse.OpUpdate); err != nil {
			return err
		}
		out, err = getRole(ctx, tx, name, false)
		return err
	})
	if err != nil {
		return gatehouse.Role{}, unwrapCaller(err)
	}
	return out, nil
}

// ListRoles returns every role ordered by lower-cased name, with entries.
func (s *Store) ListRoles(ctx context.Context) ([]gatehouse.Role, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, roleQuery+"ORDER BY r.name_key, e.pos")
	if err != nil {
		return nil, s.err(ctx, "list roles", err)
	}
	rs, err := scanRoles(rows)
	return rs, s.err(ctx, "list roles", err)
}

// Catalog.

// ImportCatalog adds or replaces entries, matched case-insensitively, in
// one transaction; the stored name takes the spelling of the import.
func (s *Store) ImportCatalog(ctx context.Context, entries []gatehouse.CatalogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	// Later duplicates win, as one statement could not update a row twice.
	idx := map[string]int{}
	var keys, names, kinds []string
	for _, e := range entries {
		k := lower(e.Name)
		if i, ok := idx[k]; ok {
			names[i], kinds[i] = e.Name, string(e.Kind)
			continue
		}
		idx[k] = len(keys)
		keys, names, kinds = append(keys, k), append(names, e.Name), append(kinds, string(e.Kind))
	}
	return s.tx(ctx, "import catalog", true, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO catalog (name_key, name, kind) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) "+
			"ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, kind = excluded.kind", keys, names, kinds); err != nil {
			return err
		}
		return change(ctx, tx, gatehouse.ChangeCatalog, "", gatehouse.OpUpdate)
	})
}

// LookupCatalog finds an object by name, case-insensitively.
func (s *Store) LookupCatalog(ctx context.Context, name string) (gatehouse.CatalogEntry, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var e gatehouse.CatalogEntry
	var kind string
	if err := s.pool.QueryRow(qctx, "SELECT name, kind FROM catalog WHERE name_key = $1", lower(name)).Scan(&e.Name, &kind); err != nil {
		return e, s.err(ctx, fmt.Sprintf("catalog entry %q", name), err)
	}
	e.Kind = gatehouse.ObjectKind(kind)
	return e, nil
}

// ListCatalog returns every entry ordered by lower-cased name.
func (s *Store) ListCatalog(ctx context.Context) ([]gatehouse.CatalogEntry, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, "SELECT name, kind FROM catalog ORDER BY name_key, name")
	if err != nil {
		return nil, s.err(ctx, "list catalog", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.CatalogEntry, error) {
		var e gatehouse.CatalogEntry
		var kind string
		err := r.Scan(&e.Name, &kind)
		e.Kind = gatehouse.ObjectKind(kind)
		return e, err
	})
	return out, s.err(ctx, "list catalog", err)
}
