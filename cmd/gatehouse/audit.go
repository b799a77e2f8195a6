package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
	"github.com/spf13/cobra"
)

func newAuditCmd(e *env, g *globals) *cobra.Command {
	var since, until, action string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit trail (JSON lines with --json); prune it",
		Long: `Read the audit trail: every token issued or refused, every session ended,
every lockout and every administrative change, with who, what, when, from
where and the outcome. --json writes one JSON object per line, for export.

Events come oldest first. --limit N shows the newest N of the events that
match (still oldest first).

--action takes a whole action name, which matches that action and the
actions under it (lockout matches lockout.start and lockout.end), or a
prefix ending in "." (token.), which matches the actions under it. Part of a
name matches nothing (lock matches neither).

Refusals are counted: one row per client network, kind and minute, whose
COUNT says how many refusals it stands for.`,
		Example: `  gatehouse audit --since 1h --action token.
  gatehouse audit --action lockout --limit 20
  gatehouse audit --json > audit.jsonl
  gatehouse audit prune --before 90d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return &admin.InputError{Msg: fmt.Sprintf("--limit %d is negative; give the number of newest events to show (0: all)", limit)}
			}
			f := store.AuditFilter{Limit: limit, Newest: true}
			var err error
			if f.Action, err = checkAction(action); err != nil {
				return err
			}
			now := time.Now()
			if f.Since, err = parseWhen(since, now); err != nil {
				return &admin.InputError{Msg: "--since: " + err.Error()}
			}
			if f.Until, err = parseWhen(until, now); err != nil {
				return &admin.InputError{Msg: "--until: " + err.Error()}
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			evs, err := a.store.ListAudit(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				for _, ev := range evs {
					if err := enc.Encode(auditJSON{ID: ev.ID, At: ev.At.UTC().Format(time.RFC3339Nano), Actor: ev.Actor,
						Action: ev.Action, Target: ev.Target, Outcome: ev.Outcome, Count: max(ev.Count, 1), Remote: ev.Remote,
						Detail: ev.Detail, RequestID: ev.RequestID}); err != nil {
						return err
					}
				}
				return nil
			}
			rows := make([][]string, len(evs))
			for i, ev := range evs {
				rows[i] = []string{ts(ev.At), ev.Actor, ev.Action, ev.Target, ev.Outcome, strconv.Itoa(max(ev.Count, 1)), ev.Remote, ev.Detail}
			}
			return table(e.stdout, "AT\tACTOR\tACTION\tTARGET\tOUTCOME\tCOUNT\tREMOTE\tDETAIL", rows)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events at or after: an age (1h, 30m, 7d), an RFC 3339 time or a date (2031-03-04)")
	cmd.Flags().StringVar(&until, "until", "", "only events before: an age, an RFC 3339 time or a date")
	cmd.Flags().StringVar(&action, "action", "", `only this action and the actions under it (lockout), or a prefix ending in "." (token.)`)
	cmd.Flags().IntVar(&limit, "limit", 0, "only the newest N matching events, still printed oldest first (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write JSON lines")
	cmd.SetFlagErrorFunc(inputFlagError)
	cmd.AddCommand(newAuditPruneCmd(e, g))
	return cmd
}

func newAuditPruneCmd(e *env, g *globals) *cobra.Command {
	var before string
	cmd := &cobra.Command{
		Use:   "prune --before TIME|AGE",
		Short: "Remove audit events older than a time or an age",
		Long: `Remove the audit events from before --before: an RFC 3339 time, a date
(midnight UTC), or an age (90d, 36h) counted back from now. The removal is
itself audited (audit.prune, with the cut-off and how many events went).
It prints how many events it removed. Bad input exits with status 2.

A running server removes events older than --audit-retention (default 90d)
by itself; prune is for doing it at once, or further back.`,
		Example: `  gatehouse audit prune --before 30d
  gatehouse audit prune --before 2031-01-01`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &admin.InputError{Msg: fmt.Sprintf("audit prune takes no arguments (got %q); give the cut-off with --before", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(before) == "" {
				return &admin.InputError{Msg: "--before is required: an RFC 3339 time, a date or an age (90d, 36h); older events are removed"}
			}
			now := time.Now()
			if d, err := parseAge(before); err == nil && d <= 0 {
				return &admin.InputError{Msg: fmt.Sprintf("--before %s: an age must be positive (%s would remove every event up to now)", before, before)}
			}
			cut, err := parseWhen(before, now)
			if err != nil {
				return &admin.InputError{Msg: "--before: " + err.Error()}
			}
			a, err := openAdmin(cmd.Context(), e, g, auth.Config{}, false)
			if err != nil {
				return err
			}
			defer a.Close()
			n, err := admin.PruneAudit(cmd.Context(), a.store, a.actor, cut, now)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed %d audit events from before %s\n", n, cut.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "remove events before this: an RFC 3339 time, a date, or an age (90d, 36h)")
	return cmd
}

// inputFlagError makes a flag that does not parse bad input (exit status 2).
func inputFlagError(_ *cobra.Command, err error) error {
	return &admin.InputError{Msg: err.Error()}
}

type auditJSON struct {
	ID      int64  `json:"id"`
	At      string `json:"at"`
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
	Remote  string `json:"remote,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// RequestID is the X-Request-Id of the request behind the event.
	RequestID string `json:"request_id,omitempty"`
}

// actionPattern is a whole action name (token.refuse) or a prefix ending
// in "." (token.).
var actionPattern = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$`)

// checkAction validates --action; actions are lower case.
func checkAction(a string) (string, error) {
	a = strings.ToLower(strings.TrimSpace(a))
	if a != "" && !actionPattern.MatchString(a) {
		return "", &admin.InputError{Msg: fmt.Sprintf(`--action %q: give a whole action name (lockout, token.refuse) or a prefix ending in "." (token.); patterns are not supported`, a)}
	}
	return a, nil
}

// parseWhen reads an age ("1h", "7d": that long before now), an RFC 3339
// time or a date (midnight UTC); "" is zero.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := parseAge(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an age (90d, 36h, 30m), an RFC 3339 time nor a date (2031-03-04)", s)
}

const day = 24 * time.Hour

// maxAgeDays bounds an age in days (a century), so that it cannot overflow.
const maxAgeDays = 36500

// parseAge reads a Go duration (36h, 90m, 0) or a whole number of days (90d).
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil || days > maxAgeDays {
			return 0, fmt.Errorf("%q is not a whole number of days up to %d (90d)", s, maxAgeDays)
		}
		return time.Duration(days) * day, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (90d, 36h, 30m)", s)
	}
	return d, nil
}

// ageValue is a duration flag that also takes whole days ("90d"), the
// usual unit of retention periods; it refuses negative values.
type ageValue time.Duration

func (v *ageValue) String() string {
	d := time.Duration(*v)
	switch {
	case d == 0:
		return "0"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

func (v *ageValue) Set(s string) error {
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*v = ageValue(d)
	return nil
}

func (v *ageValue) Type() string { return "duration" }
