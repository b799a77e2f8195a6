package main

import (
	"context"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/store"
	"github.com/spf13/cobra"
)

// Shell completion (gatehouse completion bash|zsh|fish|powershell) offers
// the names in the store for arguments and name flags, and the values of
// enum flags.

// enumFlags are the values of flags that take one of a few.
var enumFlags = map[string][]string{
	"type":               {"desktop", "mobile", "web", "service"},
	"identity":           {"windows", "aad", "sql"},
	"grant":              {"password", "refresh_token"},
	"expires":            {"never", "90m", "24h", "30d", "365d"},
	"token-format":       {"negotiate", "json", "xml"},
	"log-level":          {"debug", "info", "warn", "error"},
	"log-format":         {"text", "json"},
	"user-token-alg":     {"RS256", "ES256", "EdDSA", "HS256"},
	"consumer-token-alg": {"HS256", "RS256", "ES256", "EdDSA"},
	"oauth-token-alg":    {"ES256", "RS256", "EdDSA"},
	"alg":                {"RS256", "ES256", "EdDSA", "HS256"},
	"sqlite-sync":        {"full", "normal"},
}

// names lists one kind of name from the store of --data/--db (GATEHOUSE_*
// and the YAML file apply), for completion; nothing when there is no store.
func names(cmd *cobra.Command, e *env, g *globals, kind string) []string {
	if err := applyConfig(cmd, e.getenv); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := app.OpenStore(ctx, g.baseConfig(e), false)
	if err != nil {
		return nil
	}
	defer st.Close()
	var out []string
	switch kind {
	case "user":
		us, _ := st.ListUsers(ctx)
		for _, u := range us {
			if !u.Deleted {
				out = append(out, u.Name)
			}
		}
	case "role":
		rs, _ := st.ListRoles(ctx)
		for _, r := range rs {
			out = append(out, r.Name)
		}
	case "consumer":
		cs, _ := st.ListConsumers(ctx)
		for _, c := range cs {
			out = append(out, c.Name)
		}
	case "session":
		ss, _ := st.ListSessions(ctx, store.SessionFilter{ActiveAt: time.Now(), Limit: 200})
		for _, s := range ss {
			out = append(out, s.ID)
		}
	case "key":
		ks, _ := st.ListKeys(ctx)
		for _, k := range ks {
			out = append(out, k.KID)
		}
	}
	return out
}

func complete(e *env, g *globals, kind string, firstOnly bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if firstOnly && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range names(cmd, e, g, kind) {
			if strings.HasPrefix(strings.ToLower(n), strings.ToLower(prefix)) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// addCompletion registers the completion functions on the command tree.
func addCompletion(root *cobra.Command, e *env, g *globals) {
	args := map[string]struct {
		kind      string
		firstOnly bool
	}{
		"user update": {"user", true}, "user show": {"user", true}, "user delete": {"user", true},
		"user set-password": {"user", true}, "user unlock": {"user", true},
		"role allow": {"role", true}, "role deny": {"role", true}, "role set": {"role", true}, "role show": {"role", true},
		"consumer show": {"consumer", true}, "consumer disable": {"consumer", true}, "consumer enable": {"consumer", true},
		"consumer rotate-key": {"consumer", true}, "consumer delete": {"consumer", true}, "consumer update": {"consumer", true},
		"session end": {"session", true}, "keys retire": {"key", true},
	}
	for path, a := range args {
		if c, _, err := root.Find(strings.Fields(path)); err == nil && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = complete(e, g, a.kind, a.firstOnly)
		}
	}
	nameFlags := map[string]string{"role": "role", "user": "user", "consumer": "consumer"}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for flag, values := range enumFlags {
			if c.Flags().Lookup(flag) != nil {
				vs := values
				_ = c.RegisterFlagCompletionFunc(flag, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
					return vs, cobra.ShellCompDirectiveNoFileComp
				})
			}
		}
		for flag, kind := range nameFlags {
			if c.Flags().Lookup(flag) != nil && c.Flags().Lookup(flag).Value.Type() == "string" {
				_ = c.RegisterFlagCompletionFunc(flag, complete(e, g, kind, false))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
