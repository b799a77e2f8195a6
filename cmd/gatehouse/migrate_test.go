package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
)

func TestMigratePostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	// The server trusts local connections, so the password is ignored; it
	// must not be printed.
	withPW := strings.Replace(dsn, "postgres@", "postgres:not-to-be-shown@", 1)
	if withPW == dsn {
		t.Skip("the test DSN has no user@ to add a password to")
	}
	out := mustCLI(t, "", nil, "migrate", "--db", withPW)
	want := fmt.Sprintf("migrated from schema version 0 to %d", postgres.CurrentVersion())
	if !strings.Contains(out, want) || strings.Contains(out, "not-to-be-shown") {
		t.Fatalf("first migrate: %q, want %q and no password", out, want)
	}
	out = mustCLI(t, "", map[string]string{"GATEHOUSE_DB": withPW}, "migrate")
	if !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %q", out)
	}

	pgtest.Exec(t, dsn, fmt.Sprintf("UPDATE gatehouse_schema SET version = %d", postgres.CurrentVersion()+1))
	code, _, errs := cli(t, "", nil, "migrate", "--db", withPW)
	if code == 0 || !strings.Contains(errs, "newer than this binary") || strings.Contains(errs, "not-to-be-shown") {
		t.Fatalf("migrate of a newer schema: exit %d: %s", code, errs)
	}
}

func TestMigrateSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	out := mustCLI(t, "", nil, "migrate", "--data", dir)
	if !strings.Contains(out, "SQLite store in "+dir+": migrated from schema version 0 to ") {
		t.Fatalf("migrate of a missing data dir: %q", out)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir created with %v (%v), want mode 700", fi.Mode(), err)
	}
	out = mustCLI(t, "", nil, "migrate", "--data", dir)
	if !strings.Contains(out, "SQLite store in "+dir+": schema version ") || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %q", out)
	}
}
