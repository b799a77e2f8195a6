package issue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Refusals (failed client authentication, bad user credentials, bad
// refresh tokens, rate limiting) are audited as counted rows, so that a
// flood of them cannot grow the store without bound: one row per client
// network (gatehouse.ClientNetwork), kind (action, actor, target, outcome
// and detail) and RefusalWindow. The first refusal of a row is written at
// once; the repeats are counted in memory and added to the row's Count at
// the next flush. Rows are found by a key the window is part of, so that
// every process sharing a store adds to the same row.
const (
	// RefusalWindow is the span of one counted row, aligned to the clock.
	RefusalWindow = time.Minute
	// MaxRefusalRows bounds the rows one process starts per window; further
	// kinds or networks are counted in one overflow row per action, whose
	// Remote is "*".
	MaxRefusalRows = 1000
	// refusalFlushEvery is how often a refusal flushes the counts held in
	// memory; the server's periodic sweep and its shutdown flush too.
	refusalFlushEvery = 10 * time.Second
	// maxRefusalBacklog bounds the counts kept for a store that cannot be
	// written; beyond it the oldest are dropped (and logged).
	maxRefusalBacklog = 4 * MaxRefusalRows
)

// refusals counts refusals into audit rows.
type refusals struct {
	st      store.Audit
	clock   gatehouse.Clock
	log     *slog.Logger
	maxRows int // MaxRefusalRows

	mu        sync.Mutex
	window    time.Time              // start of the window rows holds
	rows      map[string]*refusalRow // by key, this window's
	backlog   []store.CountedEvent   // counts not yet written
	lastFlush time.Time
	flushing  chan struct{} // holds a token while a flush writes
}

type refusalRow struct {
	ev      gatehouse.AuditEvent
	pending int // counted, not yet written
}

func newRefusals(st store.Audit, clock gatehouse.Clock, log *slog.Logger) *refusals {
	return &refusals{st: st, clock: clock, log: log, maxRows: MaxRefusalRows, rows: map[string]*refusalRow{},
		flushing: make(chan struct{}, 1), lastFlush: clock.Now()}
}

// refusalKey identifies a counted row: the window and every field of the
// event but its time.
func refusalKey(window time.Time, ev *gatehouse.AuditEvent) string {
	h := sha256.New()
	h.Write([]byte(strconv.FormatInt(window.Unix(), 10)))
	for _, f := range []string{ev.Remote, ev.Action, ev.Actor, ev.Target, ev.Outcome, ev.Detail} {
		h.Write([]byte{0})
		h.Write([]byte(f))
	}
	return "refusal:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// record counts one refusal. ev.At must be set.
func (r *refusals) record(ctx context.Context, ev gatehouse.AuditEvent) {
	ev.Remote = gatehouse.ClientNetwork(ev.Remote)
	ev.Count = 1
	win := ev.At.UTC().Truncate(RefusalWindow)
	key := refusalKey(win, &ev)
	r.mu.Lock()
	r.rotate(win)
	row, ok := r.rows[key]
	if !ok && len(r.rows) >= r.maxRows {
		ev = gatehouse.AuditEvent{At: ev.At, Actor: "system", Action: ev.Action, Outcome: ev.Outcome, Remote: "*", Count: 1,
			Detail: "refusals of further kinds or client networks, over " + strconv.Itoa(r.maxRows) + " in this minute"}
		key = refusalKey(win, &ev)
		row, ok = r.rows[key]
	}
	if ok {
		row.pending++
		due := r.flushDue()
		r.mu.Unlock()
		if due {
			r.tryFlush(ctx)
		}
		return
	}
	row = &refusalRow{ev: ev}
	r.rows[key] = row
	r.mu.Unlock()
	// The first refusal of a row is written at once, so that a crash loses
	// at most the repeats counted since the last flush.
	if err := r.st.CountAudit(ctx, store.CountedEvent{Key: key, Event: ev}); err != nil {
		r.log.Warn("audit write failed", "action", ev.Action, "err", err)
		r.mu.Lock()
		row.pending++ // retried by the next flush
		r.mu.Unlock()
	}
}

// rotate moves the counts of a past window to the backlog when win is a
// new one. Called with mu held.
func (r *refusals) rotate(win time.Time) {
	if !win.After(r.window) {
		return
	}
	for key, row := range r.rows {
		if row.pending > 0 {
			e := row.ev
			e.Count = row.pending
			r.backlog = append(r.backlog, store.CountedEvent{Key: key, Event: e})
		}
	}
	r.trimBacklog()
	r.window = win
	clear(r.rows)
}

func (r *refusals) trimBacklog() {
	if n := len(r.backlog) - maxRefusalBacklog; n > 0 {
		r.log.Warn("refusal counts dropped: the store could not be written", "rows", n)
		r.backlog = append(r.backlog[:0], r.backlog[n:]...)
	}
}

// flushDue reports whether a flush is due. Called with mu held.
func (r *refusals) flushDue() bool {
	return r.clock.Now().Sub(r.lastFlush) >= refusalFlushEvery
}

// tryFlush flushes unless another flush is under way.
func (r *refusals) tryFlush(ctx context.Context) {
	select {
	case r.flushing <- struct{}{}:
		r.flushNow(ctx)
		<-r.flushing
	default:
	}
}

// flush writes every count held in memory to the store, after any flush
// under way.
func (r *refusals) flush(ctx context.Context) error {
	select {
	case r.flushing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.flushing }()
	return r.flushNow(ctx)
}

// flushNow writes the counts; the caller holds the flushing token.
func (r *refusals) flushNow(ctx context.Context) error {
	r.mu.Lock()
	r.lastFlush = r.clock.Now()
	r.rotate(r.lastFlush.UTC().Truncate(RefusalWindow))
	batch := r.backlog
	r.backlog = nil
	for key, row := range r.rows {
		if row.pending > 0 {
			e := row.ev
			e.Count = row.pending
			batch = append(batch, store.CountedEvent{Key: key, Event: e})
			row.pending = 0
		}
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	// Detached from a request's cancellation: the counts belong to
	// everyone's refusals, not to the request that happens to flush.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err := r.st.CountAudit(wctx, batch...)
	cancel()
	if err != nil {
		r.log.Warn("audit write failed; refusal counts kept for the next flush", "rows", len(batch), "err", err)
		r.mu.Lock()
		r.backlog = append(batch, r.backlog...)
		r.trimBacklog()
		r.mu.Unlock()
	}
	return err
}

// FlushRefusals writes the refusal counts held in memory to the store. The
// server calls it from its periodic sweep and when it shuts down.
func (s *Service) FlushRefusals(ctx context.Context) error { return s.refusals.flush(ctx) }

// RateLimited audits a request refused by the per-address rate limit
// (counted like every refusal).
func (s *Service) RateLimited(ctx context.Context, m Meta) {
	s.refusals.record(ctx, gatehouse.AuditEvent{At: s.clock.Now(), Actor: "unknown", Action: "token.refuse",
		Outcome: gatehouse.OutcomeFailure, Remote: m.Remote, Detail: m.Via + ": rate_limited"})
}
