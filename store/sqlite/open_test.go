package sqlite

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

func testUser(name string) gatehouse.User {
	now := time.Now()
	return gatehouse.User{Name: name, Identity: gatehouse.IdentitySQL, Role: "", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
}

// TestOpenExistingCreatesNothing: a command that may only use a store
// neither creates a missing file nor touches an empty one.
func TestOpenExistingCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.db")
	if _, err := Open(bg, path, Options{Mode: store.OpenExisting}); !errors.Is(err, gatehouse.ErrNoStore) {
		t.Fatalf("missing file: %v, want ErrNoStore", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("opening a missing store created %v", ents)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bg, path, Options{Mode: store.OpenExisting}); !errors.Is(err, gatehouse.ErrNoStore) {
		t.Fatalf("empty file: %v, want ErrNoStore", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the empty file was written to: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("opening an empty file left %v", ents)
	}
}

// olderStore makes a store at schema version currentVersion-1, as the
// previous release left it.
func olderStore(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, m := range migrations[:currentVersion-1] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("PRAGMA user_version = " + strconv.Itoa(currentVersion-1)); err != nil {
		t.Fatal(err)
	}
}

func fileVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenOlderStoreOnlyMigrateUpgrades: only OpenMigrate (gatehouse
// migrate) upgrades a store written by an older gatehouse.
func TestOpenOlderStoreOnlyMigrateUpgrades(t *testing.T) {
	if currentVersion < 2 {
		t.Skip("one schema version only")
	}
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	olderStore(t, path)
	for _, mode := range []store.OpenMode{store.OpenExisting, store.OpenCreate} {
		if _, err := Open(bg, path, Options{Mode: mode}); !errors.Is(err, gatehouse.ErrSchemaOld) {
			t.Fatalf("mode %d: %v, want ErrSchemaOld", mode, err)
		}
		if v := fileVersion(t, path); v != currentVersion-1 {
			t.Fatalf("mode %d changed the schema version to %d", mode, v)
		}
	}
	s, err := Open(bg, path, Options{Mode: store.OpenMigrate})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if from, to := s.Migrated(); from != currentVersion-1 || to != currentVersion {
		t.Fatalf("Migrated() = %d, %d", from, to)
	}
}

// TestStoreFilesPrivate: a store created by gatehouse is 0600, and so are
// the -wal and -shm files SQLite creates beside it.
func TestStoreFilesPrivate(t *testing.T) {
	s, path := openTemp(t, Options{Mode: store.OpenCreate})
	if err := s.CreateUser(bg, testUser("perm")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

// TestRemovedStoreRefusesWrites: with the file removed or replaced under
// the running process, every write fails as unavailable (a 503 upstream)
// instead of going into a file no restart will see, and Ping fails; with
// the file back, writes work again.
func TestRemovedStoreRefusesWrites(t *testing.T) {
	s, path := openTemp(t, Options{})
	if err := s.CreateUser(bg, testUser("before")); err != nil {
		t.Fatal(err)
	}
	moved := path + ".moved"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(bg, testUser("while-gone")); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("write with the file gone: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(bg); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("ping with the file gone: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a new file was created at the store's path")
	}

	// Another file at the path: still refused.
	other, _ := openTemp(t, Options{})
	other.Close()
	if err := os.Rename(other.path, path); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(bg, testUser("replaced")); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("write with the file replaced: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(bg); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("ping with the file replaced: %v", err)
	}

	// The original back in place: writes work again, and land in it.
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(bg, testUser("after")); err != nil {
		t.Fatalf("write with the file back: %v", err)
	}
	if err := s.Ping(bg); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again, err := Open(bg, path, Options{Mode: store.OpenExisting})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for name, want := range map[string]bool{"before": true, "after": true, "while-gone": false, "replaced": false} {
		_, err := again.GetUser(bg, name)
		if got := err == nil; got != want {
			t.Errorf("user %s stored: %v, want %v (%v)", name, got, want, err)
		}
	}
}
