package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
)

// TestAdminNeverCreatesStore: administration commands against a directory
// without a store exit 2 naming it, and create nothing there, whether they
// read or change.
func TestAdminNeverCreatesStore(t *testing.T) {
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, dir := range []string{empty, missing} {
		for _, args := range [][]string{
			{"user", "list"},
			{"user", "add", "u", "--password-stdin"},
			{"consumer", "add", "c", "--scope", "/api"},
			{"keys", "list"},
			{"keys", "rotate"},
			{"audit"},
			{"session", "list"},
		} {
			code, out, errs := cli(t, "pw\n", env, append([]string{"--data", dir}, args...)...)
			if code != 2 || !strings.Contains(errs, "no gatehouse store at "+dir) {
				t.Errorf("%v on %s: exit %d, %q %q; want 2 and \"no gatehouse store at %s\"", args, dir, code, out, errs, dir)
			}
		}
	}
	if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
		t.Errorf("the empty directory now holds %v (%v)", ents, err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the missing directory was created")
	}
}

// TestAdminRefusesOlderStore: a store written by an older gatehouse is
// refused with the command to run, and left as it was.
func TestAdminRefusesOlderStore(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	path := filepath.Join(dir, "gatehouse.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v-1)); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "", env, "--data", dir, "user", "list")
	if code != 2 || !strings.Contains(errs, "run gatehouse migrate") {
		t.Fatalf("user list on an older store: exit %d %q", code, errs)
	}
	var after int
	if err := db.QueryRow("PRAGMA user_version").Scan(&after); err != nil || after != v-1 {
		t.Fatalf("schema version now %d (%v), want %d", after, err, v-1)
	}
	// serve refuses it too, rather than upgrading it under older replicas.
	code, _, errs = cli(t, "", env, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "run gatehouse migrate") {
		t.Fatalf("serve on an older store: exit %d %q", code, errs)
	}
}

// TestAdminNoStorePostgres: a PostgreSQL schema without a store is named
// (password masked) and left empty.
func TestAdminNoStorePostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	withPW := strings.Replace(dsn, "postgres@", "postgres:not-to-be-shown@", 1)
	code, _, errs := cli(t, "", nil, "--db", withPW, "user", "list")
	if code != 2 || !strings.Contains(errs, "no gatehouse store at ") || strings.Contains(errs, "not-to-be-shown") {
		t.Fatalf("user list on an empty schema: exit %d %q", code, errs)
	}
	out := mustCLI(t, "", nil, "migrate", "--db", dsn)
	if want := fmt.Sprintf("migrated from schema version 0 to %d", postgres.CurrentVersion()); !strings.Contains(out, want) {
		t.Fatalf("migrate after the refused command: %q, want %q (nothing created before)", out, want)
	}
}
