package issue

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"), sqlite.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func listAudit(t *testing.T, st store.Audit) []gatehouse.AuditEvent {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func refusal(clk *testtime.Clock, remote, detail string) gatehouse.AuditEvent {
	return gatehouse.AuditEvent{At: clk.Now(), Actor: "consumer:unknown", Action: "token.refuse", Target: "consumer:unknown",
		Outcome: gatehouse.OutcomeFailure, Remote: remote, Detail: detail}
}

// TestRefusalsCounted: repeated refusals of one kind from one client
// network in one minute are one audit row with a count; the first is
// written at once, the repeats at the flush.
func TestRefusalsCounted(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	// Mid-minute, so that the minute ends within the test's steps.
	clk := testtime.NewClock(time.Date(2031, 3, 4, 5, 6, 30, 0, time.UTC))
	r := newRefusals(st, clk, slog.New(slog.DiscardHandler))

	const detail = "p21.v2/consumer: unknown_key"
	r.record(ctx, refusal(clk, "192.0.2.1", detail))
	evs := listAudit(t, st)
	if len(evs) != 1 || evs[0].Count != 1 || evs[0].Remote != "192.0.2.1" {
		t.Fatalf("after the first refusal: %+v, want one row written at once", evs)
	}
	for range 99 {
		r.record(ctx, refusal(clk, "192.0.2.1", detail))
	}
	r.record(ctx, refusal(clk, "::ffff:192.0.2.1", detail)) // the same IPv4 client
	r.record(ctx, refusal(clk, "2001:db8:1:2::1", detail))
	r.record(ctx, refusal(clk, "2001:db8:1:2::ffff", detail)) // the same /64
	r.record(ctx, refusal(clk, "2001:db8:1:3::1", detail))    // another /64
	r.record(ctx, refusal(clk, "192.0.2.1", "p21.v1/consumer: unknown_key"))
	if err := r.flush(ctx); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range listAudit(t, st) {
		counts[e.Remote+" "+e.Detail] += e.Count
	}
	want := map[string]int{
		"192.0.2.1 " + detail:                    101,
		"2001:db8:1:2::/64 " + detail:            2,
		"2001:db8:1:3::/64 " + detail:            1,
		"192.0.2.1 p21.v1/consumer: unknown_key": 1,
	}
	if len(listAudit(t, st)) != len(want) {
		t.Errorf("rows: %+v", listAudit(t, st))
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: count %d, want %d", k, counts[k], n)
		}
	}

	// The next minute starts new rows; the repeats of the last one still
	// go to its row, also when they are flushed after it ended.
	r.record(ctx, refusal(clk, "192.0.2.1", detail)) // repeat in the first minute
	clk.Advance(time.Minute)
	r.record(ctx, refusal(clk, "192.0.2.1", detail))
	r.record(ctx, refusal(clk, "192.0.2.1", detail))
	if err := r.flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListAudit(ctx, store.AuditFilter{Action: "token.refuse"})
	if err != nil {
		t.Fatal(err)
	}
	var mine []gatehouse.AuditEvent
	for _, e := range evs {
		if e.Remote == "192.0.2.1" && e.Detail == detail {
			mine = append(mine, e)
		}
	}
	if len(mine) != 2 || mine[0].Count != 102 || mine[1].Count != 2 {
		t.Fatalf("rows of 192.0.2.1 over two minutes: %+v, want counts 102 and 2", mine)
	}
}

// TestRefusalsSharedBetweenProcesses: two processes on one store add to
// the same row.
func TestRefusalsSharedBetweenProcesses(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := testtime.NewClock(time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC))
	a := newRefusals(st, clk, slog.New(slog.DiscardHandler))
	b := newRefusals(st, clk, slog.New(slog.DiscardHandler))
	for range 5 {
		a.record(ctx, refusal(clk, "192.0.2.9", "oauth.token: rate_limited"))
		b.record(ctx, refusal(clk, "192.0.2.9", "oauth.token: rate_limited"))
	}
	for _, r := range []*refusals{a, b} {
		if err := r.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if evs := listAudit(t, st); len(evs) != 1 || evs[0].Count != 10 {
		t.Fatalf("rows: %+v, want one with count 10", evs)
	}
}

// TestRefusalsOverflow: past the row cap of a minute, refusals of further
// kinds and networks are counted in one overflow row, so that the store
// grows by a bounded number of rows per minute however many addresses
// an attacker has.
func TestRefusalsOverflow(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := testtime.NewClock(time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC))
	r := newRefusals(st, clk, slog.New(slog.DiscardHandler))
	r.maxRows = 3
	for i := range 10 {
		for range 2 {
			r.record(ctx, refusal(clk, "2001:db8:"+strconv.Itoa(i)+"::1", "oauth.token/client_auth: unknown_key"))
		}
	}
	if err := r.flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs := listAudit(t, st)
	if len(evs) != 4 {
		t.Fatalf("%d rows, want 3 and the overflow row: %+v", len(evs), evs)
	}
	total := 0
	for _, e := range evs {
		total += e.Count
	}
	if last := evs[3]; last.Remote != "*" || last.Actor != "system" || last.Count != 14 || last.Action != "token.refuse" {
		t.Errorf("overflow row %+v, want Remote * and count 14", last)
	}
	if total != 20 {
		t.Errorf("counts add up to %d, want 20", total)
	}
}

// flaky fails CountAudit while fail is set.
type flaky struct {
	store.Audit
	fail atomic.Bool
}

func (f *flaky) CountAudit(ctx context.Context, evs ...store.CountedEvent) error {
	if f.fail.Load() {
		return errors.New("store down")
	}
	return f.Audit.CountAudit(ctx, evs...)
}

// TestRefusalsFlushEveryTenSeconds: a refusal flushes what was counted
// when the last flush is ten seconds old; counts that could not be written
// are kept for the next flush.
func TestRefusalsFlushEveryTenSeconds(t *testing.T) {
	ctx := context.Background()
	st := &flaky{Audit: openStore(t)}
	clk := testtime.NewClock(time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC))
	r := newRefusals(st, clk, slog.New(slog.DiscardHandler))
	for range 3 {
		r.record(ctx, refusal(clk, "192.0.2.5", "oauth.introspect/client_auth: unknown_key"))
	}
	if evs := listAudit(t, st); len(evs) != 1 || evs[0].Count != 1 {
		t.Fatalf("before a flush is due: %+v", evs)
	}
	clk.Advance(refusalFlushEvery)
	r.record(ctx, refusal(clk, "192.0.2.5", "oauth.introspect/client_auth: unknown_key"))
	if evs := listAudit(t, st); len(evs) != 1 || evs[0].Count != 4 {
		t.Fatalf("after a refusal with a flush due: %+v, want count 4", evs)
	}
	st.fail.Store(true)
	r.record(ctx, refusal(clk, "192.0.2.5", "oauth.introspect/client_auth: unknown_key"))
	r.record(ctx, refusal(clk, "192.0.2.6", "oauth.introspect/client_auth: unknown_key")) // first write fails
	if err := r.flush(ctx); err == nil {
		t.Fatal("flush to a failing store reported no error")
	}
	st.fail.Store(false)
	if err := r.flush(ctx); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range listAudit(t, st) {
		counts[e.Remote] += e.Count
	}
	if counts["192.0.2.5"] != 5 || counts["192.0.2.6"] != 1 {
		t.Fatalf("counts after the store came back: %v, want 5 and 1", counts)
	}
}
