package main

import (
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/spf13/cobra"
)

func newMigrateCmd(e *env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the store's schema up to this version of gatehouse, and report it",
		Long: `Bring the store named by --db (PostgreSQL) or --data (SQLite) up to the
schema version of this binary, and print the version.

Servers migrate on start as well, but in a rollout run this first, with the
new binary, so that replicas of the old version keep serving while the
schema changes under a lock, and the new ones start on a ready schema.
Several processes migrating at once take turns; the work is done once.

A store migrated by a newer gatehouse is refused: this binary does not know
its schema.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if g.db != "" {
				s, err := postgres.Open(ctx, g.db, postgres.Options{})
				if err != nil {
					return migrateErr(err)
				}
				defer s.Close()
				from, to := s.Migrated()
				if from == to {
					fmt.Fprintf(e.stdout, "PostgreSQL store %s: schema version %d, up to date\n", maskDSN(g.db), to)
				} else {
					fmt.Fprintf(e.stdout, "PostgreSQL store %s: migrated from schema version %d to %d\n", maskDSN(g.db), from, to)
				}
				return nil
			}
			st, err := app.OpenStore(ctx, g.baseConfig(e), false)
			if err != nil {
				return migrateErr(err)
			}
			defer st.Close()
			v, err := st.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "SQLite store in %s: schema version %d, up to date\n", g.dataDir, v)
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
