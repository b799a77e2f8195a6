package main

import (
	"fmt"
	"os"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

func printRole(e *env, r gatehouse.Role, asJSON bool) error {
	j := admin.ViewRole(r)
	if asJSON {
		return printJSON(e.stdout, j)
	}
	fmt.Fprintf(e.stdout, "role %s: Allow All %s, Allow All Tables %s, Allow All Views %s\n",
		j.Name, yesNo(j.AllowAll), yesNo(j.AllowAllTables), yesNo(j.AllowAllViews))
	if len(j.Entries) == 0 {
		return nil
	}
	rows := make([][]string, len(j.Entries))
	for i, en := range j.Entries {
		rows[i] = []string{en.Object, en.Kind, en.Access}
	}
	return table(e.stdout, "OBJECT\tKIND\tACCESS", rows)
}

func newRoleCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Manage roles and their dataservice permissions"}
	var asJSON bool
	withAdmin := func(run func(cmd *cobra.Command, a *adminCtx, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			return run(cmd, a, args)
		}
	}

	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a role (it allows nothing until told to)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, a *adminCtx, args []string) error {
			r, err := a.admin.AddRole(cmd.Context(), a.actor, args[0])
			if err != nil {
				return err
			}
			return printRole(e, r, asJSON)
		}),
	}
	add.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	entries := func(allow bool) *cobra.Command {
		verb, short := "deny", "Deny tables or views to a role"
		if allow {
			verb, short = "allow", "Allow tables or views to a role"
		}
		c := &cobra.Command{
			Use:   verb + " ROLE OBJECT...",
			Short: short,
			Long: short + `. An OBJECT is NAME, table:NAME or view:NAME; without a kind, the
catalog's kind is used (see "gatehouse catalog import"), else table. An
explicit entry beats Allow All, Allow All Tables and Allow All Views.`,
			Example: "  gatehouse role " + verb + " clerk supplier price_page view:p21_view_inv_mast",
			Args:    cobra.MinimumNArgs(2),
			RunE: withAdmin(func(cmd *cobra.Command, a *adminCtx, args []string) error {
				r, err := a.admin.SetRoleEntries(cmd.Context(), a.actor, args[0], allow, args[1:])
				if err != nil {
					return err
				}
				return printRole(e, r, asJSON)
			}),
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return c
	}

	var all, allTables, allViews bool
	set := &cobra.Command{
		Use:     "set ROLE",
		Short:   "Set Allow All, Allow All Tables or Allow All Views",
		Example: "  gatehouse role set clerk --all-tables\n  gatehouse role set clerk --all-tables=false --all-views",
		Args:    cobra.ExactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, a *adminCtx, args []string) error {
			var f admin.RoleFlags
			if cmd.Flags().Changed("all") {
				f.AllowAll = &all
			}
			if cmd.Flags().Changed("all-tables") {
				f.AllowAllTables = &allTables
			}
			if cmd.Flags().Changed("all-views") {
				f.AllowAllViews = &allViews
			}
			r, err := a.admin.SetRoleFlags(cmd.Context(), a.actor, args[0], f)
			if err != nil {
				return err
			}
			return printRole(e, r, asJSON)
		}),
	}
	set.Flags().BoolVar(&all, "all", false, "Allow All (tables and views)")
	set.Flags().BoolVar(&allTables, "all-tables", false, "Allow All Tables")
	set.Flags().BoolVar(&allViews, "all-views", false, "Allow All Views")
	set.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	show := &cobra.Command{
		Use:   "show ROLE",
		Short: "Show a role and its entries",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(func(cmd *cobra.Command, a *adminCtx, args []string) error {
			r, err := a.store.GetRole(cmd.Context(), args[0])
			if err != nil {
				return notFoundMsg(err, "role", args[0])
			}
			return printRole(e, r, asJSON)
		}),
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	list := &cobra.Command{
		Use:   "list",
		Short: "List roles",
		Args:  cobra.NoArgs,
		RunE: withAdmin(func(cmd *cobra.Command, a *adminCtx, _ []string) error {
			rs, err := a.store.ListRoles(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]admin.RoleView, len(rs))
				for i, r := range rs {
					out[i] = admin.ViewRole(r)
				}
				return printJSON(e.stdout, out)
			}
			rows := make([][]string, len(rs))
			for i, r := range rs {
				rows[i] = []string{r.Name, yesNo(r.AllowAll), yesNo(r.AllowAllTables), yesNo(r.AllowAllViews), fmt.Sprint(len(r.Entries))}
			}
			return table(e.stdout, "NAME\tALL\tALL_TABLES\tALL_VIEWS\tENTRIES", rows)
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	cmd.AddCommand(add, entries(true), entries(false), set, show, list)
	return cmd
}

func newCatalogCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "catalog", Short: "Manage the catalog of known tables and views"}
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import tables and views from a CSV file of name,kind lines (- for stdin)",
		Long: `Import tables and views from CSV lines "name,kind" where kind is table or
view; an optional header line "name,kind" is skipped. Existing entries with
the same name are replaced. The catalog tells role entries and OData
requests whether a name is a table or a view.`,
		Example: "  gatehouse catalog import p21-objects.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, name := e.stdin, "stdin"
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &admin.InputError{Msg: err.Error()}
				}
				defer f.Close()
				in, name = f, args[0]
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			n, err := a.admin.ImportCatalog(cmd.Context(), a.actor, in, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "imported %d catalog entries\n", n)
			return nil
		},
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			cs, err := a.store.ListCatalog(cmd.Context())
			if err != nil {
				return err
			}
			type entry struct {
				Name string `json:"name"`
				Kind string `json:"kind"`
			}
			out := make([]entry, len(cs))
			rows := make([][]string, len(cs))
			for i, c := range cs {
				out[i] = entry{c.Name, string(c.Kind)}
				rows[i] = []string{c.Name, string(c.Kind)}
			}
			if asJSON {
				return printJSON(e.stdout, out)
			}
			return table(e.stdout, "NAME\tKIND", rows)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(imp, list)
	return cmd
}
