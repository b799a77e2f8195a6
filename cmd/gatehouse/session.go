package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newSessionCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "session", Short: "List and end middleware sessions"}
	var asJSON, all bool
	var userF, consumerF string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List sessions, newest first (active ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			now := time.Now()
			f := store.SessionFilter{Username: userF, Limit: limit}
			if !all {
				f.ActiveAt = now
			}
			if consumerF != "" {
				c, err := a.admin.FindConsumer(cmd.Context(), consumerF)
				if err != nil {
					return err
				}
				f.ConsumerUID = c.UID
			}
			ss, err := a.store.ListSessions(cmd.Context(), f)
			if err != nil {
				return err
			}
			out := make([]admin.SessionView, len(ss))
			rows := make([][]string, len(ss))
			for i, s := range ss {
				out[i] = admin.ViewSession(s, now)
				j := out[i]
				rows[i] = []string{j.ID, j.State, j.Username, j.ConsumerUID, j.Flow, j.CreatedAt, j.ExpiresAt, j.EndReason}
			}
			if asJSON {
				return printJSON(e.stdout, out)
			}
			return table(e.stdout, "ID\tSTATE\tUSER\tCONSUMER\tFLOW\tCREATED\tEXPIRES\tEND_REASON", rows)
		},
	}
	list.Flags().StringVar(&userF, "user", "", "only sessions acting as this user")
	list.Flags().StringVar(&consumerF, "consumer", "", "only sessions of this consumer (name or uid)")
	list.Flags().BoolVar(&all, "all", false, "include ended and expired sessions not yet removed")
	list.Flags().IntVar(&limit, "limit", 1000, "at most this many (0: all)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var endUser string
	end := &cobra.Command{
		Use:   "end [ID] [--user U]",
		Short: "End a session, or every session acting as a user; their tokens stop working within a second",
		Example: `  gatehouse session end 1b4e28ba-2fa1-41d2-883f-0016d3cca427
  gatehouse session end --user api_user`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (endUser != "") {
				return &admin.InputError{Msg: "give either a session ID or --user U"}
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			if endUser != "" {
				ended, err := a.admin.EndUserSessions(cmd.Context(), a.actor, endUser)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%d sessions of %s ended\n", len(ended), endUser)
				return nil
			}
			if err := a.admin.EndSession(cmd.Context(), a.actor, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "session %s ended\n", args[0])
			return nil
		},
	}
	end.Flags().StringVar(&endUser, "user", "", "end every active session acting as this user")
	cmd.AddCommand(list, end)
	return cmd
}

type keyJSON struct {
	KID         string `json:"kid"`
	Algorithm   string `json:"alg"`
	State       string `json:"state"`
	CreatedAt   string `json:"created_at"`
	ActivatedAt string `json:"activated_at,omitempty"`
	RetiredAt   string `json:"retired_at,omitempty"`
	NotAfter    string `json:"not_after,omitempty"`
}

func newKeysCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "List, rotate and retire signing keys"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys (never their private parts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			ks, err := a.store.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			out := make([]keyJSON, len(ks))
			rows := make([][]string, len(ks))
			for i, k := range ks {
				out[i] = keyJSON{KID: k.KID, Algorithm: k.Algorithm, State: string(k.State), CreatedAt: ts(k.CreatedAt),
					ActivatedAt: ts(k.ActivatedAt), RetiredAt: ts(k.RetiredAt), NotAfter: ts(k.NotAfter)}
				until := ts(k.NotAfter)
				if k.State == gatehouse.KeyRevoked {
					until = "never (withdrawn)"
				}
				rows[i] = []string{k.KID, k.Algorithm, string(k.State), ts(k.CreatedAt), ts(k.ActivatedAt), ts(k.RetiredAt), until}
			}
			if asJSON {
				return printJSON(e.stdout, out)
			}
			return table(e.stdout, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED\tVERIFIES_UNTIL", rows)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var algs []string
	var rotateCfg auth.Config
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate signing keys: the published next key starts signing, a new next key is published",
		Long: `Rotate signing keys. For each algorithm (all in use, or those named with
--alg), the next key — already published in JWKS — becomes the active
signing key, the active key is retired, and a new next key is created and
published. Running servers pick up the change within a second.

A retired key keeps verifying as long as a token it signed can live, per
algorithm: the user token lifetime for the algorithm of user tokens, the
longest consumer lifetime for those of consumer and OAuth2 tokens (until
2038 when a consumer's tokens never expire). The token settings below say
which algorithm signs what; they are read like the server's (flags,
GATEHOUSE_* variables, the YAML file), so give this command the same ones.
To withdraw a compromised key at once, use gatehouse keys retire.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openAdmin(cmd.Context(), e, g, rotateCfg, true)
			if err != nil {
				return err
			}
			defer a.Close()
			for i := range algs {
				algs[i] = strings.TrimSpace(algs[i])
			}
			next, err := a.admin.RotateKeys(cmd.Context(), a.actor, algs)
			for _, k := range next {
				fmt.Fprintf(e.stdout, "%s: rotated; new next key %s\n", k.Algorithm, k.KID)
			}
			return err
		},
	}
	rotate.Flags().StringSliceVar(&algs, "alg", nil, "algorithms to rotate (default: every algorithm with an active key)")
	tokenSettings(rotate.Flags(), &rotateCfg)

	var retireCfg auth.Config
	retire := &cobra.Command{
		Use:   "retire KID",
		Short: "Withdraw a signing key at once (a compromised key): its tokens are refused everywhere",
		Long: `Withdraw the signing key KID at once, without waiting for its tokens to
expire, as for a key that may be compromised. Every token it signed is
refused from then on — by this store's servers within a second — with 401
invalid_token "` + verify.DescKeyRevoked + `"
Its private part is erased. If it was the active key, the next key (already
published in JWKS) signs from now on and a new next key is made.

The command lists the consumers with sessions that may hold its tokens:
their clients must request new tokens (the gatehouse client and
gatehouse call do so on the 401 by themselves; a token kept in a
configuration file must be replaced by hand).`,
		Example: `  gatehouse keys list
  gatehouse keys retire dUxx8qbXtk64H53S`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openAdmin(cmd.Context(), e, g, retireCfg, true)
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.admin.RetireKey(cmd.Context(), a.actor, args[0])
			if err != nil {
				return err
			}
			printRetired(e.stdout, r)
			return nil
		},
	}
	tokenSettings(retire.Flags(), &retireCfg)
	cmd.AddCommand(list, rotate, retire)
	return cmd
}

// tokenSettings registers the server's token settings that say which
// algorithm signs which tokens and how long they live, under the names
// serve uses, so that the environment and the YAML file set them alike.
func tokenSettings(f *pflag.FlagSet, c *auth.Config) {
	d := auth.Config{}.Defaults()
	f.DurationVar(&c.UserTokenTTL, "user-token-ttl", d.UserTokenTTL, "lifetime of user access tokens, as the server has it")
	f.StringVar(&c.UserTokenAlg, "user-token-alg", d.UserTokenAlg, "algorithm of P21 user tokens, as the server has it")
	f.StringVar(&c.ConsumerTokenAlg, "consumer-token-alg", d.ConsumerTokenAlg, "algorithm of P21 consumer tokens, as the server has it")
	f.StringVar(&c.OAuthTokenAlg, "oauth-token-alg", d.OAuthTokenAlg, "algorithm of /oauth/token tokens, as the server has it")
}

// printRetired tells what keys retire did and what the key's consumers
// must do.
func printRetired(w io.Writer, r admin.RetiredKey) {
	k := r.Key
	if r.Already {
		fmt.Fprintf(w, "key %s (%s) was already retired at once: it signs and verifies nothing.\n", k.KID, k.Algorithm)
		return
	}
	fmt.Fprintf(w, "key %s (%s, was %s) retired at once: every token it signed is refused from now on,\n"+
		"by every server on this store within a second, with 401 invalid_token:\n  %q\n", k.KID, k.Algorithm, k.State, verify.DescKeyRevoked)
	if k.State == gatehouse.KeyActive {
		fmt.Fprintf(w, "%s tokens are signed by %s from now on; the new next key is %s.\n", k.Algorithm, r.Active, r.Next)
	} else if k.State == gatehouse.KeyNext {
		fmt.Fprintf(w, "It had not signed yet; the new next %s key is %s.\n", k.Algorithm, r.Next)
		return
	}
	if len(r.Consumers) == 0 && r.UserSessions == 0 {
		fmt.Fprintln(w, "No active session may hold a token it signed.")
		return
	}
	fmt.Fprintln(w, "Clients that may hold its tokens must request new ones (the gatehouse client does so on the 401;")
	fmt.Fprintln(w, "tokens kept in configuration files must be replaced by hand):")
	for _, c := range r.Consumers {
		never := ""
		if c.NeverExpires() {
			never = " — its tokens never expire: look for copies kept in configuration"
		}
		fmt.Fprintf(w, "  consumer %s (uid %s)%s\n", cell(c.Name), c.UIDString(), never)
	}
	if r.UserSessions > 0 {
		fmt.Fprintf(w, "  %d P21 user sessions (their clients sign in again, or refresh)\n", r.UserSessions)
	}
}
