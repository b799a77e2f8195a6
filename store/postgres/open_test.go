package postgres_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
)

func countTables(t *testing.T, dsn, schema string) int {
	t.Helper()
	conn, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	var n int
	if err := conn.QueryRow(bg, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenExistingCreatesNothing: a command that may only use a store
// creates nothing in a schema without one, nor a missing schema.
func TestOpenExistingCreatesNothing(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	if _, err := postgres.Open(bg, dsn, postgres.Options{Mode: store.OpenExisting}); !errors.Is(err, gatehouse.ErrNoStore) {
		t.Fatalf("empty schema: %v, want ErrNoStore", err)
	}
	if n := countTables(t, dsn, schema); n != 0 {
		t.Fatalf("opening an empty schema created %d tables", n)
	}
	missing := schema + "_missing"
	if _, err := postgres.Open(bg, dsn, postgres.Options{Mode: store.OpenExisting, Schema: missing}); !errors.Is(err, gatehouse.ErrNoStore) {
		t.Fatalf("missing schema: %v, want ErrNoStore", err)
	}
	conn, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	var n int
	if err := conn.QueryRow(bg, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", missing).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the missing schema was created (%d, %v)", n, err)
	}
	// OpenCreate (serve) creates it.
	s, err := postgres.Open(bg, dsn, postgres.Options{Mode: store.OpenCreate})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := countTables(t, dsn, schema); n == 0 {
		t.Fatal("OpenCreate created no tables")
	}
}

// TestOpenOlderStoreOnlyMigrateUpgrades: a store at an older schema version
// is refused, untouched, by every mode but OpenMigrate.
func TestOpenOlderStoreOnlyMigrateUpgrades(t *testing.T) {
	if postgres.CurrentVersion() < 2 {
		t.Skip("one schema version only")
	}
	dsn, _ := pgtest.Schema(t)
	open(t, dsn, postgres.Options{}).Close()
	older := postgres.CurrentVersion() - 1
	pgtest.Exec(t, dsn, fmt.Sprintf("UPDATE gatehouse_schema SET version = %d", older))
	for _, mode := range []store.OpenMode{store.OpenExisting, store.OpenCreate} {
		if _, err := postgres.Open(bg, dsn, postgres.Options{Mode: mode}); !errors.Is(err, gatehouse.ErrSchemaOld) {
			t.Fatalf("mode %d: %v, want ErrSchemaOld", mode, err)
		}
	}
	conn, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	var v int
	if err := conn.QueryRow(bg, "SELECT version FROM gatehouse_schema").Scan(&v); err != nil || v != older {
		t.Fatalf("schema version %d (%v), want it left at %d", v, err, older)
	}
}
