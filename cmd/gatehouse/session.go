package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/store"
	"github.com/spf13/cobra"
)

type sessionJSON struct {
	ID          string `json:"id"`
	State       string `json:"state"` // active, ended or expired
	Username    string `json:"username"`
	ConsumerUID string `json:"consumer_uid"`
	Flow        string `json:"flow"`
	Scope       string `json:"scope"`
	CreatedAt   string `json:"created_at"`
	ExpiresAt   string `json:"expires_at"`
	EndedAt     string `json:"ended_at,omitempty"`
	EndReason   string `json:"end_reason,omitempty"`
	Remote      string `json:"remote"`
}

func toSessionJSON(s gatehouse.Session, now time.Time) sessionJSON {
	state := "active"
	switch {
	case !s.EndedAt.IsZero():
		state = "ended"
	case !now.Before(s.ExpiresAt):
		state = "expired"
	}
	uid := ""
	if s.ConsumerUID != 0 {
		uid = strconv.FormatInt(s.ConsumerUID, 10)
	}
	return sessionJSON{ID: s.ID, State: state, Username: s.Username, ConsumerUID: uid, Flow: s.Flow, Scope: s.Scope,
		CreatedAt: ts(s.CreatedAt), ExpiresAt: ts(s.ExpiresAt), EndedAt: ts(s.EndedAt), EndReason: s.EndReason, Remote: s.RemoteAddr}
}

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
			out := make([]sessionJSON, len(ss))
			rows := make([][]string, len(ss))
			for i, s := range ss {
				out[i] = toSessionJSON(s, now)
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
				return &auth.InputError{Msg: "give either a session ID or --user U"}
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
	cmd := &cobra.Command{Use: "keys", Short: "List and rotate signing keys"}
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
				rows[i] = []string{k.KID, k.Algorithm, string(k.State), ts(k.CreatedAt), ts(k.ActivatedAt), ts(k.RetiredAt), ts(k.NotAfter)}
			}
			if asJSON {
				return printJSON(e.stdout, out)
			}
			return table(e.stdout, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED\tVERIFIES_UNTIL", rows)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var algs []string
	var ttl time.Duration
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate signing keys: the published next key starts signing, a new next key is published",
		Long: `Rotate signing keys. For each algorithm (all in use, or those named with
--alg), the next key — already published in JWKS — becomes the active
signing key, the active key is retired, and a new next key is created and
published. Retired keys keep verifying until the longest-lived token they may
have signed has expired (--user-token-ttl, or the longest consumer lifetime).
Running servers pick up the change within a second.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{UserTokenTTL: ttl}, true)
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
	rotate.Flags().DurationVar(&ttl, "user-token-ttl", 24*time.Hour, "user token lifetime the server uses (keeps retired keys that long)")
	cmd.AddCommand(list, rotate)
	return cmd
}
