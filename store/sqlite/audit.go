package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// AppendAudit stores events in one transaction; ids grow with each event.
func (s *Store) AppendAudit(ctx context.Context, events ...gatehouse.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *wtx) error {
		return writeErr("append audit", insertAudit(tx, events))
	})
}

// CountAudit stores each event under its key, or adds its count to the
// row already stored under that key, all in one transaction.
func (s *Store) CountAudit(ctx context.Context, events ...store.CountedEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *wtx) error {
		for _, c := range events {
			e := &c.Event
			if _, err := tx.exec(`INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count, count_key)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (count_key) WHERE count_key IS NOT NULL DO UPDATE SET count = count + excluded.count`,
				dbTime(e.At), e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail, max(e.Count, 1), c.Key); err != nil {
				return writeErr("count audit", err)
			}
		}
		return nil
	})
}

// PruneAudit removes the events before t, a chunk per transaction.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(tx *wtx) error {
			res, err := tx.exec("DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? ORDER BY at LIMIT ?)",
				before.UnixMicro(), pruneChunk)
			if err != nil {
				return writeErr("prune audit", err)
			}
			n, err = res.RowsAffected()
			return writeErr("prune audit", err)
		})
		total += int(n)
		if err != nil || n < pruneChunk {
			return total, err
		}
	}
}

// actionTerm is the SQL condition of AuditFilter.Action a on the column
// action, with its arguments. A prefix "x." is the range [x., x/): '/'
// follows '.' in byte order; a whole name "x" is x itself or that range.
func actionTerm(a string) (string, []any) {
	if strings.HasSuffix(a, ".") {
		return "(action >= ? AND action < ?)", []any{a, a[:len(a)-1] + "/"}
	}
	return "(action = ? OR (action >= ? AND action < ?))", []any{a, a + ".", a + "/"}
}

// ListAudit returns events matching f in id order. Since is inclusive, Until
// exclusive.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]gatehouse.AuditEvent, error) {
	var terms []string
	var args []any
	if !f.Since.IsZero() {
		terms = append(terms, "at >= ?")
		args = append(args, f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		terms = append(terms, "at < ?")
		args = append(args, f.Until.UnixMicro())
	}
	if f.Action != "" {
		term, a := actionTerm(f.Action)
		terms = append(terms, term)
		args = append(args, a...)
	}
	if f.AfterID > 0 {
		terms = append(terms, "id > ?")
		args = append(args, f.AfterID)
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
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, s.readErr("list audit", err)
	}
	defer rows.Close()
	var out []gatehouse.AuditEvent
	for rows.Next() {
		var e gatehouse.AuditEvent
		var at sql.NullInt64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Remote, &e.Detail, &e.Count, &e.RequestID); err != nil {
			return nil, s.readErr("list audit", err)
		}
		e.At = goTime(at)
		out = append(out, e)
	}
	if newest {
		slices.Reverse(out)
	}
	return out, s.readErr("list audit", rows.Err())
}

// RecordAuthFailure notes a failure of key at t and returns the failures in
// (t-window, t]. The key's failures older than the window are dropped on
// the way.
func (s *Store) RecordAuthFailure(ctx context.Context, key string, t time.Time, window time.Duration) (int, error) {
	var n int
	now, from := t.UnixMicro(), t.Add(-window).UnixMicro()
	err := s.write(ctx, func(tx *wtx) error {
		if _, err := tx.exec("INSERT INTO auth_failures (key, at) VALUES (?, ?)", key, now); err != nil {
			return writeErr("record auth failure", err)
		}
		if _, err := tx.exec("DELETE FROM auth_failures WHERE key = ? AND at <= ?", key, from); err != nil {
			return writeErr("record auth failure", err)
		}
		return writeErr("record auth failure",
			tx.queryRow("SELECT count(*) FROM auth_failures WHERE key = ? AND at > ? AND at <= ?", key, from, now).Scan(&n))
	})
	return n, err
}

// CountAuthFailures returns the failures of key in (t-window, t].
func (s *Store) CountAuthFailures(ctx context.Context, key string, t time.Time, window time.Duration) (int, error) {
	var n int
	err := s.queryRow(ctx, "SELECT count(*) FROM auth_failures WHERE key = ? AND at > ? AND at <= ?",
		key, t.Add(-window).UnixMicro(), t.UnixMicro()).Scan(&n)
	return n, s.readErr("count auth failures", err)
}

// ClearAuthFailures forgets the failures of key.
func (s *Store) ClearAuthFailures(ctx context.Context, key string) error {
	return s.write(ctx, func(tx *wtx) error {
		_, err := tx.exec("DELETE FROM auth_failures WHERE key = ?", key)
		return writeErr("clear auth failures", err)
	})
}

// PruneAuthFailures forgets every failure at or before t, a chunk per
// transaction.
func (s *Store) PruneAuthFailures(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(tx *wtx) error {
			res, err := tx.exec("DELETE FROM auth_failures WHERE rowid IN (SELECT rowid FROM auth_failures WHERE at <= ? LIMIT ?)",
				before.UnixMicro(), pruneChunk)
			if err != nil {
				return writeErr("prune auth failures", err)
			}
			n, err = res.RowsAffected()
			return writeErr("prune auth failures", err)
		})
		total += int(n)
		if err != nil || n < pruneChunk {
			return total, err
		}
	}
}

// OpenLockout records key's lockout from t unless one is open.
func (s *Store) OpenLockout(ctx context.Context, key string, t time.Time) (bool, error) {
	var opened bool
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("INSERT INTO lockouts (key, since) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", key, t.UnixMicro())
		if err != nil {
			return writeErr("open lockout", err)
		}
		n, err := res.RowsAffected()
		opened = n == 1
		return writeErr("open lockout", err)
	})
	return opened, err
}

// CloseLockouts closes and returns the open lockouts that are over at t.
func (s *Store) CloseLockouts(ctx context.Context, t time.Time, window time.Duration, threshold int) ([]store.Lockout, error) {
	threshold = max(threshold, 1)
	now, from := t.UnixMicro(), t.Add(-window).UnixMicro()
	var out []store.Lockout
	err := s.write(ctx, func(tx *wtx) error {
		out = out[:0]
		rows, err := tx.query(`SELECT l.key, l.since,
			(SELECT count(*) FROM auth_failures f WHERE f.key = l.key AND f.at > ? AND f.at <= ?),
			(SELECT f.at FROM auth_failures f WHERE f.key = l.key AND f.at <= ? ORDER BY f.at DESC LIMIT 1 OFFSET ?)
			FROM lockouts l ORDER BY l.key`, from, now, now, threshold-1)
		if err != nil {
			return writeErr("close lockouts", err)
		}
		for rows.Next() {
			var key string
			var since int64
			var n int
			var nth sql.NullInt64
			if err := rows.Scan(&key, &since, &n, &nth); err != nil {
				rows.Close()
				return writeErr("close lockouts", err)
			}
			if n < threshold {
				out = append(out, store.Lockout{Key: key, Since: time.UnixMicro(since).UTC(),
					Until: store.LockoutUntil(time.UnixMicro(since).UTC(), goTime(nth), t, window)})
			}
		}
		if err := rows.Close(); err != nil {
			return writeErr("close lockouts", err)
		}
		for _, l := range out {
			if _, err := tx.exec("DELETE FROM lockouts WHERE key = ?", l.Key); err != nil {
				return writeErr("close lockouts", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CloseLockout closes key's open lockout, if any.
func (s *Store) CloseLockout(ctx context.Context, key string) (bool, error) {
	var closed bool
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("DELETE FROM lockouts WHERE key = ?", key)
		if err != nil {
			return writeErr("close lockout", err)
		}
		n, err := res.RowsAffected()
		if closed = n == 1; closed {
			tx.note(gatehouse.ChangeLockout, key, gatehouse.OpEnd)
		}
		return writeErr("close lockout", err)
	})
	return closed, err
}
