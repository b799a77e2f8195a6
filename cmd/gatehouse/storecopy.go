package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/token"
	"github.com/spf13/cobra"
)

func newStoreCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Move a store between backends"}
	var from, to string
	cp := &cobra.Command{
		Use:   "copy --from DIR --to postgres://…",
		Short: "Copy an embedded (SQLite) store into an empty PostgreSQL store",
		Long: `Copy the embedded store in --from DIR into the empty PostgreSQL store named
by --to (default: --db, or GATEHOUSE_DB): users, roles, the catalog,
consumers (with their uids and key hashes), signing keys, the sessions still
active with their refresh-token hashes, and the audit trail. Failed sign-in
counts are not copied. Stop the server on DIR first, so that nothing changes
while it is copied.

The target must be empty: copy into a new database or schema. A target that
holds anything (a server started on it creates signing keys) is refused.

Consumer key hashes are HMACs under the master key, and signing keys are
sealed with it: the servers on PostgreSQL must use the same master key as
DIR. Set GATEHOUSE_MASTER_KEY on them to the content of DIR/master.key (or
to the GATEHOUSE_MASTER_KEY the old server had). This command checks that
key (GATEHOUSE_MASTER_KEY, else DIR/master.key) opens the signing keys it
copies.

Keep the password out of the command line: put it in PGPASSWORD or
~/.pgpass, or give the whole URL in GATEHOUSE_DB.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if to == "" {
				to = g.db
			}
			switch {
			case from == "":
				return &admin.InputError{Msg: "name the embedded store's data directory with --from DIR"}
			case to == "":
				return &admin.InputError{Msg: "name the PostgreSQL store with --to postgres://… (or --db, or GATEHOUSE_DB)"}
			}
			// A directory without a store is named as such.
			if _, err := os.Stat(filepath.Join(from, "gatehouse.db")); err != nil {
				return &admin.InputError{Msg: fmt.Sprintf("%s holds no gatehouse store (gatehouse.db): %v", from, err)}
			}
			src, err := app.OpenStore(ctx, app.Config{DataDir: from, SQLiteSync: "full"}, false)
			if err != nil {
				return fmt.Errorf("open %s: %w", from, err)
			}
			defer src.Close()
			if err := checkMasterKey(cmd, e, from, src); err != nil {
				return err
			}
			dst, err := postgres.Open(ctx, to, postgres.Options{})
			if err != nil {
				return fmt.Errorf("open %s: %w", maskDSN(to), err)
			}
			defer dst.Close()
			rep, err := store.Copy(ctx, dst, src, time.Now())
			if errors.Is(err, store.ErrNotEmpty) {
				return &admin.InputError{Msg: fmt.Sprintf("%s: %v; copy only into a new, empty database or schema", maskDSN(to), err)}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "copied %s into %s:\n", from, maskDSN(to))
			fmt.Fprintf(e.stdout, "  %d users, %d roles, %d catalog entries, %d consumers, %d signing keys,\n",
				rep.Users, rep.Roles, rep.Catalog, rep.Consumers, rep.Keys)
			fmt.Fprintf(e.stdout, "  %d active sessions with %d refresh tokens, %d audit events\n",
				rep.Sessions, rep.RefreshTokens, rep.Audit)
			fmt.Fprintln(e.stdout, "Run the servers on it with the same master key (GATEHOUSE_MASTER_KEY) as the old store,")
			fmt.Fprintln(e.stdout, "or its consumer keys will not authenticate and its signing keys will not load.")
			return nil
		},
	}
	f := cp.Flags()
	f.StringVar(&from, "from", "", "data directory of the embedded store to copy")
	f.StringVar(&to, "to", "", "PostgreSQL connection URL of the empty target (default --db)")
	cmd.AddCommand(cp)
	return cmd
}

// checkMasterKey makes sure the master key the copy will be served with
// opens the source's signing keys. Without one it only warns: the copy
// itself does not need it.
func checkMasterKey(cmd *cobra.Command, e *env, dir string, src store.Store) error {
	mk, source, err := masterkey.Load(e.getenv("GATEHOUSE_MASTER_KEY"), dir, false)
	if err != nil {
		fmt.Fprintf(e.stderr, "warning: no master key to check the signing keys with (%v); serve the copy with the master key of %s\n", err, dir)
		return nil
	}
	keys, err := src.ListKeys(cmd.Context())
	if err != nil {
		return err
	}
	if _, err := token.NewKeyring(keys, mk); err != nil {
		where := "GATEHOUSE_MASTER_KEY"
		if source == masterkey.SourceFile {
			where = filepath.Join(dir, masterkey.FileName)
		}
		return &admin.InputError{Msg: fmt.Sprintf("the master key in %s does not open the signing keys of %s: "+
			"set GATEHOUSE_MASTER_KEY to the key the old server used (%v)", where, dir, err)}
	}
	return nil
}
