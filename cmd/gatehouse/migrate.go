package main

import (
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/spf13/cobra"
)

func newMigrateCmd(e *env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the store's schema up to this version of gatehouse, and report it",
		Long: `Bring the store named by --db (PostgreSQL) or --data (SQLite) up to the
schema version of this binary, creating it if there is none, and print the
version.

This is the only command that upgrades a store: a server refuses to start
on a store written by an older gatehouse, and administration commands
refuse to touch one. In a rollout run it first, with the new binary, so
that the schema changes once, under a lock, and the new replicas start on
a ready schema. Several processes migrating at once take turns; the work is
done once.

A store migrated by a newer gatehouse is refused: this binary does not know
its schema.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := app.MigrateStore(cmd.Context(), g.baseConfig(e))
			if err != nil {
				return migrateErr(err)
			}
			defer st.Close()
			kind := "SQLite store in " + g.dataDir
			if g.db != "" {
				kind = "PostgreSQL store " + maskDSN(g.db)
			}
			from, to := st.(interface{ Migrated() (int, int) }).Migrated()
			switch {
			case from == to:
				fmt.Fprintf(e.stdout, "%s: schema version %d, up to date\n", kind, to)
			case from == 0:
				fmt.Fprintf(e.stdout, "%s: migrated from schema version 0 to %d (a new store)\n", kind, to)
			default:
				fmt.Fprintf(e.stdout, "%s: migrated from schema version %d to %d\n", kind, from, to)
			}
			return nil
		},
	}
}

func migrateErr(err error) error {
	if errors.Is(err, gatehouse.ErrSchemaTooNew) {
		return fmt.Errorf("%w; upgrade gatehouse to a version that knows this schema", err)
	}
	return err
}
