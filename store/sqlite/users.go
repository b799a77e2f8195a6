package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

const userCols = sqlrow.UserCols

func scanUser(r sqlrow.Scanner) (gatehouse.User, error) { return sqlrow.ScanUser(r, goTime) }

func userArgs(u *gatehouse.User) []any { return sqlrow.UserArgs(u, dbTime) }

// CreateUser stores u; ErrConflict if the name is taken, deleted users included.
func (s *Store) CreateUser(ctx context.Context, u gatehouse.User) error {
	what := fmt.Sprintf("user %q", u.Name)
	return s.write(ctx, func(tx *wtx) error {
		if _, err := tx.exec("INSERT INTO users ("+userCols+", name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", userArgs(&u)...); err != nil {
			return writeErr(what, err)
		}
		return writeErr(what, tx.change(gatehouse.ChangeUser, lower(u.Name), gatehouse.OpCreate))
	})
}

// GetUser finds a user by name, case-insensitively.
func (s *Store) GetUser(ctx context.Context, name string) (gatehouse.User, error) {
	u, err := scanUser(s.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE name_key = ?", lower(name)))
	if err != nil {
		return gatehouse.User{}, s.readErr(fmt.Sprintf("user %q", name), err)
	}
	return u, nil
}

// UpdateUser applies fn to the stored user inside the write transaction. fn
// runs while the store holds its write lock: it must be quick and must not
// call the store.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(*gatehouse.User) error) (gatehouse.User, error) {
	what := fmt.Sprintf("user %q", name)
	var out gatehouse.User
	err := s.writeOnce(ctx, func(tx *wtx) error {
		u, err := scanUser(tx.queryRow("SELECT "+userCols+" FROM users WHERE name_key = ?", lower(name)))
		if err != nil {
			return writeErr(what, err)
		}
		orig := u.Name
		if err := fn(&u); err != nil {
			return err
		}
		if u.Name != orig {
			return fmt.Errorf("%s: the update may not rename the user to %q", what, u.Name)
		}
		if _, err := tx.exec("UPDATE users SET name = ?, identity = ?, role = ?, allow_odata = ?, admin = ?, deleted = ?, "+
			"password_hash = ?, created_at = ?, updated_at = ? WHERE name_key = ?", userArgs(&u)...); err != nil {
			return writeErr(what, err)
		}
		if err := tx.change(gatehouse.ChangeUser, lower(u.Name), gatehouse.OpUpdate); err != nil {
			return writeErr(what, err)
		}
		// Return the user as stored (times truncated, in UTC).
		out, err = scanUser(tx.queryRow("SELECT "+userCols+" FROM users WHERE name_key = ?", lower(name)))
		return writeErr(what, err)
	})
	if err != nil {
		return gatehouse.User{}, err
	}
	return out, nil
}

// ListUsers returns every user ordered by lower-cased name.
func (s *Store) ListUsers(ctx context.Context) ([]gatehouse.User, error) {
	rows, err := s.query(ctx, "SELECT "+userCols+" FROM users ORDER BY name_key, name")
	if err != nil {
		return nil, s.readErr("list users", err)
	}
	defer rows.Close()
	var out []gatehouse.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.readErr("list users", err)
		}
		out = append(out, u)
	}
	return out, s.readErr("list users", rows.Err())
}

// CountUsers counts users, deleted ones included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, s.readErr("count users", err)
	}
	return n, nil
}

// Roles.

// roleQuery reads roles with their entries in one statement.
const roleQuery = sqlrow.RoleQuery

// scanRoles folds the rows of roleQuery (ordered by role) into roles.
func scanRoles(rows sqlrow.Rows) ([]gatehouse.Role, error) { return sqlrow.FoldRoles(rows, goTime) }

func writeRole(tx *wtx, r *gatehouse.Role, insert bool) error {
	args := []any{r.Name, r.AllowAll, r.AllowAllTables, r.AllowAllViews, dbTime(r.CreatedAt), dbTime(r.UpdatedAt), lower(r.Name)}
	q := "UPDATE roles SET name = ?, allow_all = ?, allow_all_tables = ?, allow_all_views = ?, created_at = ?, updated_at = ? WHERE name_key = ?"
	if insert {
		q = "INSERT INTO roles (name, allow_all, allow_all_tables, allow_all_views, created_at, updated_at, name_key) VALUES (?, ?, ?, ?, ?, ?, ?)"
	}
	if _, err := tx.exec(q, args...); err != nil {
		return err
	}
	if !insert {
		if _, err := tx.exec("DELETE FROM role_entries WHERE role_key = ?", lower(r.Name)); err != nil {
			return err
		}
	}
	r.Entries = gatehouse.NormalEntries(r.Entries)
	for i, e := range r.Entries {
		if _, err := tx.exec("INSERT INTO role_entries (role_key, object_key, pos, object, kind, allow) VALUES (?, ?, ?, ?, ?, ?)",
			lower(r.Name), lower(e.Object), i, e.Object, string(e.Kind), e.Allow); err != nil {
			return err
		}
	}
	return nil
}

// CreateRole stores r with its entries; ErrConflict if the name is taken.
// Entries naming the same object (case-insensitively) collapse into the last.
func (s *Store) CreateRole(ctx context.Context, r gatehouse.Role) error {
	what := fmt.Sprintf("role %q", r.Name)
	return s.write(ctx, func(tx *wtx) error {
		if err := writeRole(tx, &r, true); err != nil {
			return writeErr(what, err)
		}
		return writeErr(what, tx.change(gatehouse.ChangeRole, lower(r.Name), gatehouse.OpCreate))
	})
}

func getRole(q func(query string, args ...any) (rowSet, error), name string) (gatehouse.Role, error) {
	rows, err := q(roleQuery+"WHERE r.name_key = ? ORDER BY e.pos", lower(name))
	if err != nil {
		return gatehouse.Role{}, err
	}
	defer rows.Close()
	rs, err := scanRoles(rows)
	if err != nil {
		return gatehouse.Role{}, err
	}
	if len(rs) == 0 {
		return gatehouse.Role{}, sql.ErrNoRows
	}
	return rs[0], nil
}

// GetRole finds a role by name, case-insensitively, with its entries.
func (s *Store) GetRole(ctx context.Context, name string) (gatehouse.Role, error) {
	r, err := getRole(func(q string, args ...any) (rowSet, error) { return s.query(ctx, q, args...) }, name)
	if err != nil {
		return gatehouse.Role{}, s.readErr(fmt.Sprintf("role %q", name), err)
	}
	return r, nil
}

// UpdateRole applies fn to the stored role inside the write transaction; its
// entries are replaced by those fn leaves. fn may not rename the role, must be
// quick and must not call the store.
func (s *Store) UpdateRole(ctx context.Context, name string, fn func(*gatehouse.Role) error) (gatehouse.Role, error) {
	what := fmt.Sprintf("role %q", name)
	var out gatehouse.Role
	err := s.writeOnce(ctx, func(tx *wtx) error {
		r, err := getRole(tx.rows, name)
		if err != nil {
			return writeErr(what, err)
		}
		orig := r.Name
		if err := fn(&r); err != nil {
			return err
		}
		if r.Name != orig {
			return fmt.Errorf("%s: the update may not rename the role to %q", what, r.Name)
		}
		if err := writeRole(tx, &r, false); err != nil {
			return writeErr(what, err)
		}
		if err := tx.change(gatehouse.ChangeRole, lower(r.Name), gatehouse.OpUpdate); err != nil {
			return writeErr(what, err)
		}
		out, err = getRole(tx.rows, name)
		return writeErr(what, err)
	})
	if err != nil {
		return gatehouse.Role{}, err
	}
	return out, nil
}

// ListRoles returns every role ordered by lower-cased name, with entries.
func (s *Store) ListRoles(ctx context.Context) ([]gatehouse.Role, error) {
	rows, err := s.query(ctx, roleQuery+"ORDER BY r.name_key, e.pos")
	if err != nil {
		return nil, s.readErr("list roles", err)
	}
	defer rows.Close()
	rs, err := scanRoles(rows)
	return rs, s.readErr("list roles", err)
}

// Catalog.

// ImportCatalog adds or replaces entries, matched case-insensitively, in
// one transaction; the stored name takes the spelling of the import.
func (s *Store) ImportCatalog(ctx context.Context, entries []gatehouse.CatalogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *wtx) error {
		for _, e := range entries {
			if _, err := tx.exec("INSERT INTO catalog (name_key, name, kind) VALUES (?, ?, ?) "+
				"ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, kind = excluded.kind",
				lower(e.Name), e.Name, string(e.Kind)); err != nil {
				return writeErr(fmt.Sprintf("catalog entry %q", e.Name), err)
			}
		}
		return writeErr("import catalog", tx.change(gatehouse.ChangeCatalog, "", gatehouse.OpUpdate))
	})
}

// LookupCatalog finds an object by name, case-insensitively.
func (s *Store) LookupCatalog(ctx context.Context, name string) (gatehouse.CatalogEntry, error) {
	var e gatehouse.CatalogEntry
	var kind string
	if err := s.queryRow(ctx, "SELECT name, kind FROM catalog WHERE name_key = ?", lower(name)).Scan(&e.Name, &kind); err != nil {
		return e, s.readErr(fmt.Sprintf("catalog entry %q", name), err)
	}
	e.Kind = gatehouse.ObjectKind(kind)
	return e, nil
}

// ListCatalog returns every entry ordered by lower-cased name.
func (s *Store) ListCatalog(ctx context.Context) ([]gatehouse.CatalogEntry, error) {
	rows, err := s.query(ctx, "SELECT name, kind FROM catalog ORDER BY name_key, name")
	if err != nil {
		return nil, s.readErr("list catalog", err)
	}
	defer rows.Close()
	var out []gatehouse.CatalogEntry
	for rows.Next() {
		var e gatehouse.CatalogEntry
		var kind string
		if err := rows.Scan(&e.Name, &kind); err != nil {
			return nil, s.readErr("list catalog", err)
		}
		e.Kind = gatehouse.ObjectKind(kind)
		out = append(out, e)
	}
	return out, s.readErr("list catalog", rows.Err())
}

// rowSet is what *sql.Rows and the writer's rows have in common.
type rowSet interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}
