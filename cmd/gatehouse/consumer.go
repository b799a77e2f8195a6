package main

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

func newConsumerCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "consumer", Short: "Manage consumers (applications holding a consumer key; also OAuth2 clients)"}
	var asJSON bool
	withAdmin := func(needKey bool, run func(cmd *cobra.Command, a *adminCtx, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, needKey)
			if err != nil {
				return err
			}
			defer a.Close()
			return run(cmd, a, args)
		}
	}
	printKey := func(c gatehouse.Consumer, key, verb string) error {
		if asJSON {
			j := admin.ViewConsumer(c)
			j.ConsumerKey = key
			return printJSON(e.stdout, j)
		}
		j := admin.ViewConsumer(c)
		fmt.Fprintf(e.stdout, "consumer %s %s: uid %s, type %s, scope %s, expires %s, grants %s\n",
			c.Name, verb, j.UID, j.Type, j.Scope, j.Expires, strings.Join(j.Grants, ","))
		fmt.Fprintf(e.stdout, "consumer key (shown once; only its hash is kept): %s\n", key)
		return nil
	}

	var in admin.NewConsumer
	var typ, expires, keyEnv string
	var keyStdin bool
	add := &cobra.Command{
		Use:   "add NAME --scope SCOPE",
		Short: "Register a consumer and print its key once",
		Long: `Register a consumer ("SOA Admin → API Console → Register Consumer Key").

The scope is semicolon-separated: /api for all APIs; /uiserver0 for the
Interactive and Transaction APIs; /odata:TABLE,VIEW,… for named OData tables
and views (a bare /odata is refused); /api/.configuration; or a plain name
such as "access" for OAuth-style deployments. --sdk adds /p21sdk.

The consumer key is printed once; only an HMAC of it is stored. As an OAuth2
client the consumer's client_id is its name (or uid) and the secret is its key.
--key-stdin (or --key-env VAR) registers a known key instead of a new one,
for reproducible CI; it is then not printed.`,
		Example: `  gatehouse consumer add MY_SERVICE_APP --scope /api --sdk --expires never
  gatehouse consumer add reports --scope '/odata:supplier,price_page' --expires 30d
  gatehouse consumer add apx-client --scope access --grant password --grant refresh_token`,
		Args: cobra.ExactArgs(1),
		RunE: withAdmin(true, func(cmd *cobra.Command, a *adminCtx, args []string) error {
			lt, err := admin.ParseLifetime(expires)
			if err != nil {
				return err
			}
			if in.Key, err = readSecret(e, "consumer key", keyStdin, keyEnv); err != nil {
				return err
			}
			in.Name, in.Type, in.Lifetime = args[0], gatehouse.ConsumerType(strings.ToLower(typ)), lt
			c, key, err := a.admin.AddConsumer(cmd.Context(), a.actor, in)
			if err != nil {
				return err
			}
			if in.Key != "" {
				j := admin.ViewConsumer(c)
				if asJSON {
					return printJSON(e.stdout, j)
				}
				fmt.Fprintf(e.stdout, "consumer %s registered with the given key: uid %s, type %s, scope %s, expires %s, grants %s\n",
					c.Name, j.UID, j.Type, j.Scope, j.Expires, strings.Join(j.Grants, ","))
				return nil
			}
			return printKey(c, key, "registered")
		}),
	}
	add.Flags().StringVar(&in.Scope, "scope", "", "API scope, e.g. /api or '/odata:supplier,price_page' (required)")
	add.Flags().StringVar(&typ, "type", "service", "consumer type: desktop, mobile, web or service")
	add.Flags().BoolVar(&in.SDK, "sdk", false, "SDK access (adds /p21sdk to the scope)")
	add.Flags().StringVar(&expires, "expires", "never", `token lifetime: "never", a duration (90m, 24h) or days (30d)`)
	add.Flags().StringArrayVar(&in.Grants, "grant", nil, "extra OAuth2 grant to allow: password or refresh_token (repeatable; client_credentials is always allowed)")
	add.Flags().BoolVar(&asJSON, "json", false, "print JSON (with the key)")
	add.Flags().BoolVar(&keyStdin, "key-stdin", false, "read a known consumer key from stdin instead of making a new one")
	add.Flags().StringVar(&keyEnv, "key-env", "", "read a known consumer key from this environment variable")
	_ = add.MarkFlagRequired("scope")

	list := &cobra.Command{
		Use:   "list",
		Short: "List consumers",
		Args:  cobra.NoArgs,
		RunE: withAdmin(false, func(cmd *cobra.Command, a *adminCtx, _ []string) error {
			cs, err := a.store.ListConsumers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]admin.ConsumerView, len(cs))
				for i, c := range cs {
					out[i] = admin.ViewConsumer(c)
				}
				return printJSON(e.stdout, out)
			}
			rows := make([][]string, len(cs))
			for i, c := range cs {
				j := admin.ViewConsumer(c)
				rows[i] = []string{j.UID, j.Name, j.Type, j.Scope, j.Expires, strings.Join(j.Grants, ","), yesNo(j.Disabled)}
			}
			return table(e.stdout, "UID\tNAME\tTYPE\tSCOPE\tEXPIRES\tGRANTS\tDISABLED", rows)
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	show := &cobra.Command{
		Use:   "show NAME|UID",
		Short: "Show one consumer",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(false, func(cmd *cobra.Command, a *adminCtx, args []string) error {
			c, err := a.admin.FindConsumer(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			j := admin.ViewConsumer(c)
			if asJSON {
				return printJSON(e.stdout, j)
			}
			return table(e.stdout, "FIELD\tVALUE", [][]string{
				{"uid", j.UID}, {"name", j.Name}, {"type", j.Type}, {"scope", j.Scope}, {"configured_scope", j.ConfiguredScope},
				{"sdk_access", yesNo(j.SDKAccess)}, {"expires", j.Expires}, {"grants", strings.Join(j.Grants, ",")},
				{"disabled", yesNo(j.Disabled)}, {"created_at", j.CreatedAt}, {"updated_at", j.UpdatedAt},
			})
		}),
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	toggle := func(disable bool) *cobra.Command {
		use, short := "enable NAME|UID", "Enable a consumer"
		if disable {
			use, short = "disable NAME|UID", "Disable a consumer and end its sessions"
		}
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: withAdmin(false, func(cmd *cobra.Command, a *adminCtx, args []string) error {
				c, ended, err := a.admin.SetConsumerDisabled(cmd.Context(), a.actor, args[0], disable)
				if err != nil {
					return err
				}
				if disable {
					fmt.Fprintf(e.stdout, "consumer %s (uid %s) disabled; %d sessions ended\n", c.Name, c.UIDString(), len(ended))
				} else {
					fmt.Fprintf(e.stdout, "consumer %s (uid %s) enabled\n", c.Name, c.UIDString())
				}
				return nil
			}),
		}
	}

	rotate := &cobra.Command{
		Use:   "rotate-key NAME|UID",
		Short: "Replace a consumer's key (printed once) and end the sessions of the old one",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(true, func(cmd *cobra.Command, a *adminCtx, args []string) error {
			c, key, err := a.admin.RotateConsumerKey(cmd.Context(), a.actor, args[0])
			if err != nil {
				return err
			}
			return printKey(c, key, "has a new key")
		}),
	}
	rotate.Flags().BoolVar(&asJSON, "json", false, "print JSON (with the key)")

	del := &cobra.Command{
		Use:   "delete NAME|UID",
		Short: "Delete a consumer and end its sessions (its uid is never reused)",
		Args:  cobra.ExactArgs(1),
		RunE: withAdmin(false, func(cmd *cobra.Command, a *adminCtx, args []string) error {
			c, err := a.admin.DeleteConsumer(cmd.Context(), a.actor, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "consumer %s (uid %s) deleted\n", c.Name, c.UIDString())
			return nil
		}),
	}

	cmd.AddCommand(add, list, show, toggle(true), toggle(false), rotate, del)
	return cmd
}
