package main

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/spf13/cobra"
)

// newConsumerUpdateCmd is `consumer update`: scope, grants, expiry and type
// change, the key stays.
func newConsumerUpdateCmd(e *env, g *globals) *cobra.Command {
	var scope, typ, expires string
	var sdk, asJSON bool
	var grants []string
	cmd := &cobra.Command{
		Use:   "update NAME|UID [--scope SCOPE] [--type TYPE] [--sdk[=false]] [--expires never|DURATION] [--grant G]…",
		Short: "Change a consumer's scope, grants, expiry, type or SDK access; its key stays",
		Long: `Change a consumer's settings without a new key. Only the flags given change;
--grant replaces the opt-in grants (give --grant "" for none). Tokens already
issued keep their scope and lifetime until they expire or their session
ends; end its sessions (gatehouse session list --consumer NAME, session end)
to apply the change at once.`,
		Example: `  gatehouse consumer update MY_SERVICE_APP --scope '/odata:supplier,price_page'
  gatehouse consumer update reports --expires 90d --type web --grant refresh_token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch admin.ConsumerChange
			fl := cmd.Flags()
			if fl.Changed("scope") {
				ch.Scope = &scope
			}
			if fl.Changed("type") {
				t := gatehouse.ConsumerType(strings.ToLower(typ))
				ch.Type = &t
			}
			if fl.Changed("sdk") {
				ch.SDK = &sdk
			}
			if fl.Changed("expires") {
				lt, err := admin.ParseLifetime(expires)
				if err != nil {
					return err
				}
				ch.Lifetime = &lt
			}
			if fl.Changed("grant") {
				var gs []string
				for _, g := range grants {
					if strings.TrimSpace(g) != "" {
						gs = append(gs, g)
					}
				}
				if gs == nil {
					gs = []string{}
				}
				ch.Grants = &gs
			}
			if ch == (admin.ConsumerChange{}) {
				return &admin.InputError{Msg: "nothing to change: give --scope, --type, --sdk, --expires or --grant"}
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			c, err := a.admin.UpdateConsumer(cmd.Context(), a.actor, args[0], ch)
			if err != nil {
				return err
			}
			j := admin.ViewConsumer(c)
			if asJSON {
				return printJSON(e.stdout, j)
			}
			fmt.Fprintf(e.stdout, "consumer %s updated (key kept): uid %s, type %s, scope %s, expires %s, grants %s\n",
				c.Name, j.UID, j.Type, j.Scope, j.Expires, strings.Join(j.Grants, ","))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scope, "scope", "", "API scope, e.g. /api or '/odata:supplier,price_page'")
	f.StringVar(&typ, "type", "", "consumer type: desktop, mobile, web or service")
	f.BoolVar(&sdk, "sdk", false, "SDK access (adds /p21sdk; --sdk=false removes it)")
	f.StringVar(&expires, "expires", "", `token lifetime: "never", a duration (90m, 24h) or days (30d)`)
	f.StringArrayVar(&grants, "grant", nil, "opt-in OAuth2 grants, replacing the current ones: password, refresh_token (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
