package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// AppendAudit stores events in one transaction; ids grow with each event.
func (s *Store) AppendAudit(ctx context.Context, events ...gatehouse.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	if len(events) == 1 {
		_, err := s.pool.Exec(qctx, insertAuditSQL, auditArgs(&events[0])...)
		return s.err(ctx, "append audit", err)
	}
	// One batch is one implicit transaction: all events or none.
	b := &pgx.Batch{}
	for i := range events {
		b.Queue(insertAuditSQL, auditArgs(&events[i])...)
	}
	return s.err(ctx, "append audit", s.pool.SendBatch(qctx, b).Close())
}

// countAuditSQL stores an event under a key ($9) or adds its count to the
// row stored under it.
const countAuditSQL = `INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count, count_key)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (count_key) WHERE count_key IS NOT NULL DO UPDATE SET count = audit.count + excluded.count`

// CountAudit stores each event under its key, or adds its count to the
// row already stored under that key, in one transaction. Keys go in
// order, so that two processes counting the same keys never deadlock.
func (s *Store) CountAudit(ctx context.Context, events ...store.CountedEvent) error {
	if len(events) == 0 {
		return nil
	}
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b store.CountedEvent) int { return strings.Compare(a.Key, b.Key) })
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	// One batch is one implicit transaction: all events or none.
	b := &pgx.Batch{}
	for i := range sorted {
		// A counted row stands for many requests: no request id.
		b.Queue(countAuditSQL, append(auditArgs(&sorted[i].Event)[:8:8], sorted[i].Key)...)
	}
	return s.err(ctx, "count audit", s.pool.SendBatch(qctx, b).Close())
}

// PruneAudit removes the events before t, a chunk per statement.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		qctx, cancel := s.ctx(ctx)
		tag, err := s.pool.Exec(qctx, "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at LIMIT $2)",
			before, pruneChunk)
		cancel()
		if err != nil {
			return total, s.err(ctx, "prune audit", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// ListAudit returns events matching f in id order. Since is inclusive, Until
// exclusive.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]gatehouse.AuditEvent, error) {
	var terms []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !f.Since.IsZero() {
		terms = append(terms, "at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		terms = append(terms, "at < "+arg(f.Until))
	}
	if a := f.Action; a != "" {
		// A prefix "x." is the range [x., x/): '/' follows '.' in byte
		// order (the column is COLLATE "C"). A whole name "x" is x itself
		// or that range.
		if strings.HasSuffix(a, ".") {
			terms = append(terms, "(action >= "+arg(a)+" AND action < "+arg(a[:len(a)-1]+"/")+")")
		} else {
			terms = append(terms, "(action = "+arg(a)+" OR (action >= "+arg(a+".")+" AND action < "+arg(a+"/")+"))")
		}
	}
	if f.AfterID > 0 {
		terms = append(terms, "id > "+arg(f.AfterID))
	}
	q := "SELECT id, at, actor, action, target, outcome, remote, detail, count, request_id FROM audit"
	if len(terms) > 0 {
		q += " WHERE " + strings.Join(terms, " AND ")
	}
	newest := f.Newest && f.Limit > 0
	if newest {
		q += " ORDER BY id DESC"
	} else {
		q += " ORDER BY id"
	}
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, q, args...)
	if err != nil {
		return nil, s.err(ctx, "list audit", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.AuditEvent, error) {
		var e gatehouse.AuditEvent
		var at pgtype.Timestamptz
		var n int64
		err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Remote, &e.Detail, &n, &e.RequestID)
		e.At, e.Count = goTime(at), int(n)
		return e, err
	})
	if newest {
		slices.Reverse(out)
	}
	return out, s.err(ctx, "list audit", err)
}

// RecordAuthFailure notes a failure of key at t and returns the failures in
// (t-window, t], counted by every replica alike. The key's failures older
// than the window are dropped on the way.
func (s *Store) RecordAuthFailure(ctx context.Context, key string, t time.Time, window time.Duration) (int, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	from := t.Add(-window)
	// One batch, one implicit transaction, one round trip.
	b := &pgx.Batch{}
	b.Queue("INSERT INTO auth_failures (key, at) VALUES ($1, $2)", key, t)
	b.Queue("DELETE FROM auth_failures WHERE key = $1 AND at <= $2", key, from)
	count := b.Queue("SELECT count(*) FROM auth_failures WHERE key = $1 AND at > $2 AND at <= $3", key, from, t)
	var n int
	count.QueryRow(func(r pgx.Row) error { return r.Scan(&n) })
	err := s.pool.SendBatch(qctx, b).Close()
	return n, s.err(ctx, "record auth failure", err)
}

// CountAuthFailures returns the failures of key in (t-window, t].
func (s *Store) CountAuthFailures(ctx context.Context, key string, t time.Time, window time.Duration) (int, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(qctx, "SELECT count(*) FROM auth_failures WHERE key = $1 AND at > $2 AND at <= $3",
		key, t.Add(-window), t).Scan(&n)
	return n, s.err(ctx, "count auth failures", err)
}

// ClearAuthFailures forgets the failures of key.
func (s *Store) ClearAuthFailures(ctx context.Context, key string) error {
	return s.tx(ctx, "clear auth failures", true, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM auth_failures WHERE key = $1", key)
		return err
	})
}

// PruneAuthFailures forgets every failure at or before t, a chunk per
// statement.
func (s *Store) PruneAuthFailures(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		qctx, cancel := s.ctx(ctx)
		tag, err := s.pool.Exec(qctx, "DELETE FROM auth_failures WHERE ctid IN (SELECT ctid FROM auth_failures WHERE at <= $1 LIMIT $2)",
			before, pruneChunk)
		cancel()
		if err != nil {
			return total, s.err(ctx, "prune auth failures", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// OpenLockout records key's lockout from t unless one is open.
func (s *Store) OpenLockout(ctx context.Context, key string, t time.Time) (bool, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	tag, err := s.pool.Exec(qctx, "INSERT INTO lockouts (key, since) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, t)
	if err != nil {
		return false, s.err(ctx, "open lockout", err)
	}
	return tag.RowsAffected() == 1, nil
}

// CloseLockouts closes and returns the open lockouts that are over at t. The
// DELETE locks each row it takes: of two replicas closing at once, one gets
// each lockout.
func (s *Store) CloseLockouts(ctx context.Context, t time.Time, window time.Duration, threshold int) ([]store.Lockout, error) {
	threshold = max(threshold, 1)
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, `DELETE FROM lockouts l
		WHERE (SELECT count(*) FROM auth_failures f WHERE f.key = l.key AND f.at > $1 AND f.at <= $2) < $3
		RETURNING l.key, l.since,
			(SELECT f.at FROM auth_failures f WHERE f.key = l.key AND f.at <= $2 ORDER BY f.at DESC LIMIT 1 OFFSET $3 - 1)`,
		t.Add(-window), t, threshold)
	if err != nil {
		return nil, s.err(ctx, "close lockouts", err)
	}
	var out []store.Lockout
	for rows.Next() {
		var l store.Lockout
		var nth pgtype.Timestamptz
		if err := rows.Scan(&l.Key, &l.Since, &nth); err != nil {
			rows.Close()
			return nil, s.err(ctx, "close lockouts", err)
		}
		l.Since = l.Since.UTC()
		l.Until = store.LockoutUntil(l.Since, goTime(nth), t, window)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, s.err(ctx, "close lockouts", err)
	}
	slices.SortFunc(out, func(a, b store.Lockout) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// CloseLockout closes key's open lockout, if any.
func (s *Store) CloseLockout(ctx context.Context, key string) (bool, error) {
	var closed bool
	err := s.tx(ctx, "close lockout", true, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM lockouts WHERE key = $1", key)
		if closed = tag.RowsAffected() == 1; closed {
			record(ctx, gatehouse.ChangeLockout, gatehouse.OpEnd, key)
		}
		return err
	})
	return closed, err
}
