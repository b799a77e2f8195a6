package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

var userTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		u := user("Alice")
		u.Admin = true
		must(t, s.CreateUser(ctx, u))
		for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
			got, err := s.GetUser(ctx, name)
			must(t, err)
			checkEqual(t, "GetUser("+name+")", got, u)
		}
		_, err := s.GetUser(ctx, "alic")
		wantErr(t, "unknown user", err, gatehouse.ErrNotFound)
		_, err = s.GetUser(ctx, "")
		wantErr(t, "empty name", err, gatehouse.ErrNotFound)
	}},
	{"ZeroFields", func(t *testing.T, s store.Store) {
		u := gatehouse.User{Name: "bare", Identity: gatehouse.IdentityWindows}
		must(t, s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, "bare")
		must(t, err)
		checkEqual(t, "user with zero fields", got, u)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		must(t, s.CreateUser(ctx, user("Alice")))
		gone := user("Bob")
		gone.Deleted = true
		must(t, s.CreateUser(ctx, gone))
		for _, name := range []string{"Alice", "alice", "ALICE", "Bob", "bob", "BOB"} {
			u := user(name)
			u.Role = "other"
			wantErr(t, "create "+name, s.CreateUser(ctx, u), gatehouse.ErrConflict)
		}
		got, err := s.GetUser(ctx, "alice")
		must(t, err)
		checkEqual(t, "Alice after conflicts", got, user("Alice"))
		if n, err := s.CountUsers(ctx); err != nil || n != 2 {
			t.Fatalf("CountUsers = %d, %v; want 2", n, err)
		}
	}},
	{"Update", func(t *testing.T, s store.Store) {
		must(t, s.CreateUser(ctx, user("Alice")))
		var seen gatehouse.User
		got, err := s.UpdateUser(ctx, "ALICE", func(u *gatehouse.User) error {
			seen = *u
			u.Role = "admins"
			u.Admin = true
			u.AllowODataAPI = false
			u.Identity = gatehouse.IdentityAAD
			u.PasswordHash = ""
			u.UpdatedAt = at(time.Hour)
			return nil
		})
		must(t, err)
		checkEqual(t, "fn sees the stored user", seen, user("Alice"))
		want := user("Alice")
		want.Role, want.Admin, want.AllowODataAPI, want.Identity, want.PasswordHash, want.UpdatedAt =
			"admins", true, false, gatehouse.IdentityAAD, "", at(time.Hour)
		checkEqual(t, "UpdateUser result", got, want)
		stored, err := s.GetUser(ctx, "alice")
		must(t, err)
		checkEqual(t, "stored after update", stored, want)
	}},
	{"UpdateFnErrorWritesNothing", func(t *testing.T, s store.Store) {
		must(t, s.CreateUser(ctx, user("Alice")))
		rev := lastRev(t, s)
		boom := errors.New("boom")
		_, err := s.UpdateUser(ctx, "alice", func(u *gatehouse.User) error {
			u.Role = "changed"
			u.Deleted = true
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("UpdateUser error = %v, want the fn's error", err)
		}
		got, err := s.GetUser(ctx, "alice")
		must(t, err)
		checkEqual(t, "user after failed update", got, user("Alice"))
		noChanges(t, s, rev)
	}},
	{"UpdateCannotRename", func(t *testing.T, s store.Store) {
		must(t, s.CreateUser(ctx, user("Alice")))
		_, err := s.UpdateUser(ctx, "alice", func(u *gatehouse.User) error {
			u.Name = "Mallory"
			u.Role = "changed"
			return nil
		})
		if err == nil {
			t.Fatal("UpdateUser renamed the user")
		}
		got, err := s.GetUser(ctx, "alice")
		must(t, err)
		checkEqual(t, "user after refused rename", got, user("Alice"))
		_, err = s.GetUser(ctx, "Mallory")
		wantErr(t, "renamed user", err, gatehouse.ErrNotFound)
	}},
	{"UpdateNotFound", func(t *testing.T, s store.Store) {
		called := false
		_, err := s.UpdateUser(ctx, "nobody", func(*gatehouse.User) error { called = true; return nil })
		wantErr(t, "update unknown user", err, gatehouse.ErrNotFound)
		if called {
			t.Fatal("fn called for an unknown user")
		}
	}},
	{"ListAndCount", func(t *testing.T, s store.Store) {
		if us, err := s.ListUsers(ctx); err != nil || len(us) != 0 {
			t.Fatalf("ListUsers on an empty store = %v, %v", us, err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 0 {
			t.Fatalf("CountUsers on an empty store = %d, %v", n, err)
		}
		for _, name := range []string{"carol", "Bob", "dave", "alice"} {
			u := user(name)
			u.Deleted = name == "dave"
			must(t, s.CreateUser(ctx, u))
		}
		us, err := s.ListUsers(ctx)
		must(t, err)
		var names []string
		for _, u := range us {
			names = append(names, u.Name)
		}
		checkEqual(t, "ListUsers order", names, []string{"alice", "Bob", "carol", "dave"})
		if !us[3].Deleted || us[0].Deleted {
			t.Fatalf("ListUsers lost the deleted flag: %+v", us)
		}
		want := user("Bob")
		checkEqual(t, "listed user", us[1], want)
		if u, err := s.GetUser(ctx, "DAVE"); err != nil || !u.Deleted {
			t.Fatalf("GetUser of a deleted user = %+v, %v", u, err)
		}
		if n, err := s.CountUsers(ctx); err != nil || n != 4 {
			t.Fatalf("CountUsers = %d, %v; want 4 (deleted included)", n, err)
		}
	}},
}

func role(name string) gatehouse.Role {
	return gatehouse.Role{Name: name, AllowAllViews: true, CreatedAt: at(0), UpdatedAt: at(time.Second),
		Entries: []gatehouse.RoleEntry{
			{Object: "Orders", Kind: gatehouse.KindTable, Allow: true},
			{Object: "v_Customers", Kind: gatehouse.KindView, Allow: false},
			{Object: "ar_open", Kind: gatehouse.KindTable, Allow: false},
		}}
}

var roleTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		r := role("Sales")
		must(t, s.CreateRole(ctx, r))
		empty := gatehouse.Role{Name: "Empty", AllowAll: true, AllowAllTables: true}
		must(t, s.CreateRole(ctx, empty))
		for _, name := range []string{"Sales", "sales", "SALES"} {
			got, err := s.GetRole(ctx, name)
			must(t, err)
			checkEqual(t, "GetRole("+name+")", got, r)
		}
		got, err := s.GetRole(ctx, "empty")
		must(t, err)
		checkEqual(t, "role without entries", got, empty)
		_, err = s.GetRole(ctx, "sale")
		wantErr(t, "unknown role", err, gatehouse.ErrNotFound)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		must(t, s.CreateRole(ctx, role("Sales")))
		rev := lastRev(t, s)
		for _, name := range []string{"Sales", "sales", "SALES"} {
			wantErr(t, "create "+name, s.CreateRole(ctx, gatehouse.Role{Name: name}), gatehouse.ErrConflict)
		}
		got, err := s.GetRole(ctx, "sales")
		must(t, err)
		checkEqual(t, "role after conflicts", got, role("Sales"))
		noChanges(t, s, rev)
	}},
	{"Update", func(t *testing.T, s store.Store) {
		must(t, s.CreateRole(ctx, role("Sales")))
		var seen gatehouse.Role
		got, err := s.UpdateRole(ctx, "SALES", func(r *gatehouse.Role) error {
			seen = *r
			seen.Entries = append([]gatehouse.RoleEntry(nil), r.Entries...)
			r.AllowAll = true
			r.AllowAllViews = false
			r.UpdatedAt = at(time.Hour)
			r.SetEntry(gatehouse.RoleEntry{Object: "ORDERS", Kind: gatehouse.KindTable, Allow: false})
			r.Entries = append(r.Entries[:1], r.Entries[2:]...) // drop v_Customers
			r.SetEntry(gatehouse.RoleEntry{Object: "v_new", Kind: gatehouse.KindView, Allow: true})
			return nil
		})
		must(t, err)
		checkEqual(t, "fn sees the stored role", seen, role("Sales"))
		want := role("Sales")
		want.AllowAll, want.AllowAllViews, want.UpdatedAt = true, false, at(time.Hour)
		want.Entries = []gatehouse.RoleEntry{
			{Object: "ORDERS", Kind: gatehouse.KindTable, Allow: false},
			{Object: "ar_open", Kind: gatehouse.KindTable, Allow: false},
			{Object: "v_new", Kind: gatehouse.KindView, Allow: true},
		}
		checkEqual(t, "UpdateRole result", got, want)
		stored, err := s.GetRole(ctx, "sales")
		must(t, err)
		checkEqual(t, "stored role", stored, want)

		// Clearing every entry.
		_, err = s.UpdateRole(ctx, "sales", func(r *gatehouse.Role) error { r.Entries = nil; return nil })
		must(t, err)
		stored, err = s.GetRole(ctx, "sales")
		must(t, err)
		if len(stored.Entries) != 0 {
			t.Fatalf("entries after clearing: %+v", stored.Entries)
		}
	}},
	{"UpdateFnErrorWritesNothing", func(t *testing.T, s store.Store) {
		must(t, s.CreateRole(ctx, role("Sales")))
		rev := lastRev(t, s)
		boom := errors.New("boom")
		_, err := s.UpdateRole(ctx, "sales", func(r *gatehouse.Role) error {
			r.AllowAll = true
			r.Entries = nil
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("UpdateRole error = %v, want the fn's error", err)
		}
		got, err := s.GetRole(ctx, "sales")
		must(t, err)
		checkEqual(t, "role after failed update", got, role("Sales"))
		noChanges(t, s, rev)
	}},
	{"UpdateNotFound", func(t *testing.T, s store.Store) {
		_, err := s.UpdateRole(ctx, "nobody", func(*gatehouse.Role) error { return nil })
		wantErr(t, "update unknown role", err, gatehouse.ErrNotFound)
	}},
	{"List", func(t *testing.T, s store.Store) {
		if rs, err := s.ListRoles(ctx); err != nil || len(rs) != 0 {
			t.Fatalf("ListRoles on an empty store = %v, %v", rs, err)
		}
		must(t, s.CreateRole(ctx, role("warehouse")))
		must(t, s.CreateRole(ctx, gatehouse.Role{Name: "Empty"}))
		must(t, s.CreateRole(ctx, role("accounting")))
		rs, err := s.ListRoles(ctx)
		must(t, err)
		checkEqual(t, "ListRoles", rs, []gatehouse.Role{role("accounting"), {Name: "Empty"}, role("warehouse")})
	}},
}

var catalogTests = []test{
	{"ImportLookupList", func(t *testing.T, s store.Store) {
		if es, err := s.ListCatalog(ctx); err != nil || len(es) != 0 {
			t.Fatalf("ListCatalog on an empty store = %v, %v", es, err)
		}
		must(t, s.ImportCatalog(ctx, []gatehouse.CatalogEntry{
			{Name: "v_Customers", Kind: gatehouse.KindView},
			{Name: "Orders", Kind: gatehouse.KindTable},
			{Name: "ar_open", Kind: gatehouse.KindTable},
		}))
		for _, name := range []string{"orders", "ORDERS", "Orders"} {
			e, err := s.LookupCatalog(ctx, name)
			must(t, err)
			checkEqual(t, "LookupCatalog("+name+")", e, gatehouse.CatalogEntry{Name: "Orders", Kind: gatehouse.KindTable})
		}
		_, err := s.LookupCatalog(ctx, "order")
		wantErr(t, "unknown object", err, gatehouse.ErrNotFound)

		// A second import replaces by name, case-insensitively, and adds.
		must(t, s.ImportCatalog(ctx, []gatehouse.CatalogEntry{
			{Name: "ORDERS", Kind: gatehouse.KindView},
			{Name: "b_items", Kind: gatehouse.KindTable},
		}))
		e, err := s.LookupCatalog(ctx, "orders")
		must(t, err)
		checkEqual(t, "replaced entry", e, gatehouse.CatalogEntry{Name: "ORDERS", Kind: gatehouse.KindView})
		es, err := s.ListCatalog(ctx)
		must(t, err)
		checkEqual(t, "ListCatalog", es, []gatehouse.CatalogEntry{
			{Name: "ar_open", Kind: gatehouse.KindTable},
			{Name: "b_items", Kind: gatehouse.KindTable},
			{Name: "ORDERS", Kind: gatehouse.KindView},
			{Name: "v_Customers", Kind: gatehouse.KindView},
		})
	}},
}
