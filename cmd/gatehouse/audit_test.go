package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

// auditStore is a data dir whose audit trail holds events at known ages.
func auditStore(t *testing.T) (dir string, env map[string]string) {
	t.Helper()
	dir = t.TempDir()
	env = map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gatehouse.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	ev := func(age time.Duration, action string, count int) gatehouse.AuditEvent {
		return gatehouse.AuditEvent{At: now.Add(-age), Actor: "system", Action: action, Target: "user:bob",
			Outcome: gatehouse.OutcomeSuccess, Count: count}
	}
	if err := st.AppendAudit(context.Background(),
		ev(100*24*time.Hour, "lockout.start", 1),
		ev(99*24*time.Hour, "lockout.end", 1),
		ev(50*24*time.Hour, "lockouts.report", 1),
		ev(10*24*time.Hour, "token.refuse", 5),
		ev(time.Hour, "token.issue", 1),
	); err != nil {
		t.Fatal(err)
	}
	return dir, env
}

func auditActions(t *testing.T, env map[string]string, dir string, args ...string) []string {
	t.Helper()
	out := mustCLI(t, "", env, append([]string{"--data", dir, "audit", "--json"}, args...)...)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev auditJSON
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		got = append(got, ev.Action)
	}
	return got
}

func TestAuditActionAndLimit(t *testing.T) {
	dir, env := auditStore(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--action", "lockout"}, "lockout.start lockout.end"},
		{[]string{"--action", "lockout."}, "lockout.start lockout.end"},
		{[]string{"--action", "Lockout"}, "lockout.start lockout.end"},
		{[]string{"--action", "lock"}, ""},
		{[]string{"--action", "lockouts"}, "lockouts.report"},
		{[]string{"--action", "token.refuse"}, "token.refuse"},
		{[]string{"--action", "token"}, "token.refuse token.issue"},
		// --limit N: the newest N, printed oldest first.
		{[]string{"--limit", "2"}, "token.refuse token.issue"},
		{[]string{"--limit", "1", "--action", "lockout"}, "lockout.end"},
		{[]string{"--limit", "2", "--until", "20d"}, "lockout.end lockouts.report"},
		{[]string{"--limit", "9"}, "lockout.start lockout.end lockouts.report token.refuse token.issue"},
		{[]string{"--since", "60d"}, "lockouts.report token.refuse token.issue"},
	} {
		if got := strings.Join(auditActions(t, env, dir, tc.args...), " "); got != tc.want {
			t.Errorf("audit %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	// The table and the JSON lines carry the count of a counted row.
	out := mustCLI(t, "", env, "--data", dir, "audit", "--action", "token.refuse")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || strings.Fields(lines[0])[5] != "COUNT" ||
		strings.Fields(lines[1])[5] != "5" {
		t.Errorf("table:\n%s", out)
	}
	out = mustCLI(t, "", env, "--data", dir, "audit", "--json", "--action", "token")
	if !strings.Contains(out, `"count":5`) || !strings.Contains(out, `"count":1`) {
		t.Errorf("JSON lines lack counts:\n%s", out)
	}
}

// TestAuditPrune: prune removes what is older than --before, says how many,
// and is audited; bad input exits 2 and removes nothing.
func TestAuditPrune(t *testing.T) {
	dir, env := auditStore(t)
	for _, tc := range []struct {
		args    []string
		message string
	}{
		{[]string{"audit", "prune"}, "--before is required"},
		{[]string{"audit", "prune", "--before", "soon"}, `"soon" is neither an age`},
		{[]string{"audit", "prune", "--before", "0"}, "must be positive"},
		{[]string{"audit", "prune", "--before", "-5d"}, "is neither an age"},
		{[]string{"audit", "prune", "--before", "-2h"}, "must be positive"},
		{[]string{"audit", "prune", "--before", "2999-01-01"}, "in the future"},
		{[]string{"audit", "prune", "--before", "99999d"}, "is neither an age"},
		{[]string{"audit", "prune", "30d"}, "takes no arguments"},
		{[]string{"audit", "prune", "--before"}, "flag needs an argument"},
		{[]string{"audit", "prune", "--bfore", "30d"}, "unknown flag"},
		{[]string{"audit", "--limit", "-1"}, "--limit -1 is negative"},
		{[]string{"audit", "--limit", "x"}, "invalid argument"},
		{[]string{"audit", "--action", "lock*"}, "patterns are not supported"},
		{[]string{"audit", "--action", ".token"}, "whole action name"},
		{[]string{"audit", "--since", "yesterday"}, "--since"},
	} {
		code, out, errs := cli(t, "", env, append([]string{"--data", dir}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.message) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q); want exit 2 mentioning %q", tc.args, code, errs, out, tc.message)
		}
	}
	if got := auditActions(t, env, dir); len(got) != 5 {
		t.Fatalf("bad input changed the audit trail: %v", got)
	}

	out := mustCLI(t, "", env, "--data", dir, "audit", "prune", "--before", "60d")
	if !strings.HasPrefix(out, "removed 2 audit events from before ") {
		t.Errorf("prune --before 60d: %q", out)
	}
	cut := time.Now().Add(-20 * 24 * time.Hour).UTC().Format(time.RFC3339)
	out = mustCLI(t, "", env, "--data", dir, "audit", "prune", "--before", cut)
	if out != "removed 1 audit events from before "+cut+"\n" {
		t.Errorf("prune --before %s: %q", cut, out)
	}
	if got := strings.Join(auditActions(t, env, dir), " "); got != "token.refuse token.issue audit.prune audit.prune" {
		t.Errorf("after pruning: %s", got)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gatehouse.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "audit.prune"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || !strings.HasPrefix(evs[0].Actor, "cli") || !strings.HasPrefix(evs[0].Detail, "removed 2 events before ") ||
		evs[1].Detail != "removed 1 events before "+cut {
		t.Errorf("audit.prune events: %+v", evs)
	}
}

// TestAuditRetentionSetting: --audit-retention is set like every other
// setting (flag, GATEHOUSE_AUDIT_RETENTION, the YAML key) and shown by
// --print-config; it takes days.
func TestAuditRetentionSetting(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(cfg, []byte("audit-retention: 30d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(zero, []byte("audit-retention: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "audit-retention: 90d"},
		{nil, []string{"--audit-retention", "7d"}, "audit-retention: 7d"},
		{nil, []string{"--audit-retention", "36h"}, "audit-retention: 36h0m0s"},
		{nil, []string{"--audit-retention", "0"}, `audit-retention: "0"`},
		{map[string]string{"GATEHOUSE_AUDIT_RETENTION": "14d"}, nil, "audit-retention: 14d"},
		{nil, []string{"--config", cfg}, "audit-retention: 30d"},
		{map[string]string{"GATEHOUSE_AUDIT_RETENTION": "14d"}, []string{"--config", cfg}, "audit-retention: 14d"},
		{nil, []string{"--config", cfg, "--audit-retention", "1d"}, "audit-retention: 1d"},
		{nil, []string{"--config", zero}, `audit-retention: "0"`},
	} {
		code, out, errs := runCmd(t, tc.env, append(append([]string{"serve"}, tc.args...), "--print-config")...)
		if code != 0 || !strings.Contains(out, tc.want+"\n") {
			t.Errorf("%v %v: exit %d, want %q in:\n%s%s", tc.env, tc.args, code, tc.want, out, errs)
		}
	}
	for _, bad := range []map[string]string{{"GATEHOUSE_AUDIT_RETENTION": "-1d"}, {"GATEHOUSE_AUDIT_RETENTION": "forever"}} {
		if code, _, errs := runCmd(t, bad, "serve", "--print-config"); code == 0 || !strings.Contains(errs, "GATEHOUSE_AUDIT_RETENTION") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errs)
		}
	}
}
