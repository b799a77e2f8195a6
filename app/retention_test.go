package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/issue"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
)

// TestAuditRetentionSweep: the periodic sweep removes audit events older
// than --audit-retention, and keeps everything with 0.
func TestAuditRetentionSweep(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		retention time.Duration
		left      []string
	}{
		{app.DefaultAuditRetention, []string{"test.edge", "test.recent"}},
		{0, []string{"test.old", "test.edge", "test.recent"}},
	} {
		clk := testtime.NewClock(time.Now())
		cfg := apptest.Config(t)
		cfg.AuditRetention = tc.retention
		a, err := app.New(ctx, cfg, nil, clk)
		if err != nil {
			t.Fatal(err)
		}
		now := clk.Now()
		for _, ev := range []gatehouse.AuditEvent{
			{At: now.Add(-91 * 24 * time.Hour), Actor: "system", Action: "test.old", Outcome: gatehouse.OutcomeSuccess},
			{At: now.Add(-90*24*time.Hour + time.Second), Actor: "system", Action: "test.edge", Outcome: gatehouse.OutcomeSuccess},
			{At: now.Add(-time.Hour), Actor: "system", Action: "test.recent", Outcome: gatehouse.OutcomeSuccess},
		} {
			if err := a.Store.AppendAudit(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		a.GC(ctx)
		evs, err := a.Store.ListAudit(ctx, store.AuditFilter{Action: "test"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Action)
		}
		if strings.Join(got, " ") != strings.Join(tc.left, " ") {
			t.Errorf("retention %v: left %v, want %v", tc.retention, got, tc.left)
		}
		a.Close()
	}
}

// TestSweepForgetsOldFailedSignIns: failed sign-ins of names nobody tries
// again are forgotten once no lockout can count them, so that sign-ins
// with ever new names cannot grow the store without bound; the refusal
// counts held in memory are written by the sweep.
func TestSweepForgetsOldFailedSignIns(t *testing.T) {
	ctx := context.Background()
	clk := testtime.NewClock(time.Now())
	cfg := apptest.Config(t)
	cfg.Auth.LockoutWindow = time.Minute
	a, err := app.New(ctx, cfg, nil, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	names := []string{"nobody-1", "nobody-2", "nobody-3"}
	for _, n := range names {
		for range 2 {
			a.Service.PasswordToken(ctx, n, "x", issue.Meta{Remote: "192.0.2.4", Via: "p21.v2"})
		}
	}
	mk := a.MasterKey
	tags := issue.NewNameTags(mk)
	count := func() int {
		total := 0
		for _, n := range names {
			c, err := a.Store.CountAuthFailures(ctx, tags.Tag(n), clk.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			total += c
		}
		return total
	}
	if c := count(); c != 6 {
		t.Fatalf("%d failures recorded, want 6", c)
	}
	a.GC(ctx) // writes the counts of the repeats
	evs, err := a.Store.ListAudit(ctx, store.AuditFilter{Action: "token.refuse"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Count != 2 || evs[0].Remote != "192.0.2.4" {
		t.Fatalf("refusal rows: %+v, want 3 with count 2", evs)
	}
	clk.Advance(time.Minute)
	a.GC(ctx)
	if c := count(); c != 6 {
		t.Fatalf("failures forgotten while a lockout could still need them: %d left", c)
	}
	clk.Advance(time.Minute + time.Second)
	a.GC(ctx)
	if c := count(); c != 0 {
		t.Fatalf("%d failures left two windows later, want 0", c)
	}
}
