package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

const sessionCols = "id, username, consumer_uid, flow, scope, created_at, expires_at, ended_at, end_reason, remote_addr"

func scanSession(r sqlrow.Scanner) (gatehouse.Session, error) {
	var x gatehouse.Session
	var created, expires, ended sql.NullInt64
	err := r.Scan(&x.ID, &x.Username, &x.ConsumerUID, &x.Flow, &x.Scope, &created, &expires, &ended, &x.EndReason, &x.RemoteAddr)
	x.CreatedAt, x.ExpiresAt, x.EndedAt = goTime(created), goTime(expires), goTime(ended)
	return x, err
}

func insertAudit(tx *wtx, events []gatehouse.AuditEvent) error {
	if tx.deferAppends && tx.pending != nil {
		tx.pending.audit = append(tx.pending.audit, events...)
		tx.wrote = tx.wrote || len(events) > 0
		return nil
	}
	for _, e := range events {
		if _, err := tx.exec("INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			dbTime(e.At), e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail, max(e.Count, 1), e.RequestID); err != nil {
			return err
		}
	}
	return nil
}

// CreateSession stores the session and its first refresh token, writes the
// audit events, and enforces the principal's cap: counting the new session,
// the oldest active sessions (at CreatedAt) beyond MaxSessions are ended with
// reason cap. The new session itself is never the one ended.
func (s *Store) CreateSession(ctx context.Context, n store.NewSession) ([]string, error) {
	var ended []string
	err := s.writeAppend(ctx, func(tx *wtx) error {
		var err error
		ended, err = createSession(tx, &n)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

func createSession(tx *wtx, n *store.NewSession) ([]string, error) {
	x := &n.Session
	// Built only on failure: this is the hottest path of the store.
	what := func(part string) string { return fmt.Sprintf("session %q%s", x.ID, part) }
	// Checked before the first write (see op).
	if len(n.RefreshHash) > 0 {
		if err := refreshFree(tx, n.RefreshHash); err != nil {
			return nil, fmt.Errorf("%s: %w", what(""), err)
		}
	}
	res, err := tx.exec("INSERT INTO sessions ("+sessionCols+", username_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		x.ID, x.Username, x.ConsumerUID, x.Flow, x.Scope, dbTime(x.CreatedAt), dbTime(x.ExpiresAt), dbTime(x.EndedAt),
		x.EndReason, x.RemoteAddr, lower(x.Username))
	if err != nil {
		return nil, writeErr(what(""), err)
	}
	if len(n.RefreshHash) > 0 {
		if _, err := tx.exec("INSERT INTO refresh_tokens (hash, session_id, spent) VALUES (?, ?, 0)", n.RefreshHash, x.ID); err != nil {
			return nil, writeErr(what(" refresh token"), err)
		}
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return nil, writeErr(what(""), err)
	}
	var ended []string
	if n.MaxSessions > 0 {
		if ended, err = capSessions(tx, x, seq, n.MaxSessions); err != nil {
			return nil, writeErr(what(" cap"), err)
		}
	} else if set, ok := tx.w.caps.get(principal{x.ConsumerUID, lower(x.Username)}); ok && x.EndedAt.IsZero() {
		// Keep a cached principal whole when a create does not cap it.
		tx.w.caps.put(principal{x.ConsumerUID, lower(x.Username)}, insertOpen(set, openOf(x, seq)))
	}
	if err := insertAudit(tx, n.Audit); err != nil {
		return nil, writeErr(what(" audit"), err)
	}
	if len(ended) > 0 {
		evs := make([]gatehouse.AuditEvent, len(ended))
		for i, id := range ended {
			evs[i] = store.CapEndEvent(n, id)
		}
		if err := insertAudit(tx, evs); err != nil {
			return nil, writeErr(what(" audit"), err)
		}
	}
	return ended, nil
}

// capSessions ends the oldest active sessions of x's principal beyond max,
// x (row seq) counting as one and never ending. The principal's open
// sessions come from the writer's cache when it has them.
func capSessions(tx *wtx, x *gatehouse.Session, seq int64, max int) ([]string, error) {
	keep := max
	if x.Active(x.CreatedAt) {
		keep-- // the new session takes one place
	}
	now := tx.at(x.CreatedAt)
	p := principal{x.ConsumerUID, lower(x.Username)}
	set, ok := tx.w.caps.get(p)
	if !ok || tx.noCache {
		var err error
		if set, err = loadOpen(tx, p, seq); err != nil {
			return nil, err
		}
	}
	victims := overCap(set, now, keep)
	ended := make([]string, 0, len(victims))
	for _, v := range victims {
		if _, err := tx.exec("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE seq = ?", now, gatehouse.EndCap, v.seq); err != nil {
			return nil, err
		}
		if err := tx.change(gatehouse.ChangeSession, v.id, gatehouse.OpEnd); err != nil {
			return nil, err
		}
		ended = append(ended, v.id)
	}
	if !tx.noCache {
		set = slices.DeleteFunc(set, func(o openSession) bool {
			return slices.ContainsFunc(victims, func(v openSession) bool { return v.seq == o.seq })
		})
		if x.EndedAt.IsZero() {
			set = insertOpen(set, openOf(x, seq))
		}
		tx.w.caps.put(p, set)
	}
	return ended, nil
}

// loadOpen reads the open sessions of p but seq, oldest first.
func loadOpen(tx *wtx, p principal, seq int64) ([]openSession, error) {
	rows, err := tx.query("SELECT created_at, expires_at, seq, id FROM sessions WHERE consumer_uid = ? AND username_key = ? "+
		"AND ended_at IS NULL AND seq <> ? ORDER BY created_at, expires_at, seq", p.consumer, p.username, seq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var set []openSession
	for rows.Next() {
		var o openSession
		var created, expires sql.NullInt64
		if err := rows.Scan(&created, &expires, &o.seq, &o.id); err != nil {
			return nil, err
		}
		o.created, o.expires = nullMin(created), nullMin(expires)
		set = append(set, o)
	}
	return set, rows.Err()
}

func openOf(x *gatehouse.Session, seq int64) openSession {
	o := openSession{created: math.MinInt64, expires: math.MinInt64, seq: seq, id: x.ID}
	if !x.CreatedAt.IsZero() {
		o.created = x.CreatedAt.UnixMicro()
	}
	if !x.ExpiresAt.IsZero() {
		o.expires = x.ExpiresAt.UnixMicro()
	}
	return o
}

// refreshFree fails with ErrConflict if hash is already stored.
func refreshFree(tx *wtx, hash []byte) error {
	var n int
	if err := tx.queryRow("SELECT count(*) FROM refresh_tokens WHERE hash = ?", hash).Scan(&n); err != nil {
		return writeErr("refresh token", err)
	}
	if n > 0 {
		return fmt.Errorf("refresh token in use: %w", gatehouse.ErrConflict)
	}
	return nil
}

// GetSession finds a session by id.
func (s *Store) GetSession(ctx context.Context, id string) (gatehouse.Session, error) {
	x, err := scanSession(s.queryRow(ctx, "SELECT "+sessionCols+" FROM sessions WHERE id = ?", id))
	if err != nil {
		return gatehouse.Session{}, s.readErr(fmt.Sprintf("session %q", id), err)
	}
	return x, nil
}

// RefreshSession spends r.OldHash and stores r.NewHash in its place.
func (s *Store) RefreshSession(ctx context.Context, r store.Refresh) (store.Refreshed, error) {
	const what = "refresh token"
	if len(r.OldHash) == 0 {
		return store.Refreshed{}, fmt.Errorf("%s: %w", what, gatehouse.ErrNotFound)
	}
	var out store.Refreshed
	err := s.write(ctx, func(tx *wtx) error {
		out = store.Refreshed{} // the op may run again
		var id string
		var spent bool
		var spentAt sql.NullInt64
		if err := tx.queryRow("SELECT session_id, spent, spent_at FROM refresh_tokens WHERE hash = ?", r.OldHash).Scan(&id, &spent, &spentAt); err != nil {
			return writeErr(what, err)
		}
		x, err := scanSession(tx.queryRow("SELECT "+sessionCols+" FROM sessions WHERE id = ?", id))
		if err != nil {
			return writeErr(what, err)
		}
		out.Session = x
		if spent {
			retry, err := graceRetry(tx, &r, id, spentAt)
			if err != nil {
				return writeErr(what, err)
			}
			if retry {
				if !x.Active(r.Now) {
					return fmt.Errorf("session %q: %w", id, gatehouse.ErrSessionEnded)
				}
				out.At, out.Retry = goTime(spentAt), true
				return nil
			}
			// A replayed token means it leaked: end the session for good, and
			// keep that even though the call fails.
			if x.EndedAt.IsZero() {
				tx.w.caps.drop(principal{x.ConsumerUID, lower(x.Username)})
				end := tx.at(r.Now)
				if _, err := tx.exec("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
					end, gatehouse.EndRefreshReuse, id); err != nil {
					return writeErr(what, err)
				}
				if err := tx.change(gatehouse.ChangeSession, id, gatehouse.OpEnd); err != nil {
					return writeErr(what, err)
				}
				if err := insertAudit(tx, []gatehouse.AuditEvent{store.ReuseEndEvent(&r, id)}); err != nil {
					return writeErr(what+" audit", err)
				}
				out.Session.EndedAt, out.Session.EndReason = time.UnixMicro(end).UTC(), gatehouse.EndRefreshReuse
			}
			return committed{fmt.Errorf("session %q: %w", id, gatehouse.ErrRefreshReused)}
		}
		if !x.Active(r.Now) {
			return fmt.Errorf("session %q: %w", id, gatehouse.ErrSessionEnded)
		}
		if len(r.NewHash) > 0 {
			if err := refreshFree(tx, r.NewHash); err != nil {
				return fmt.Errorf("new %s: %w", what, err)
			}
		}
		// Its expiry changes below.
		tx.w.caps.drop(principal{x.ConsumerUID, lower(x.Username)})
		now := tx.at(r.Now)
		if _, err := tx.exec("UPDATE refresh_tokens SET spent = 1, spent_at = ? WHERE hash = ?", now, r.OldHash); err != nil {
			return writeErr(what, err)
		}
		if len(r.NewHash) > 0 {
			if _, err := tx.exec("INSERT INTO refresh_tokens (hash, session_id, spent) VALUES (?, ?, 0)", r.NewHash, id); err != nil {
				return writeErr("new "+what, err)
			}
		}
		if _, err := tx.exec("UPDATE sessions SET expires_at = ? WHERE id = ?", dbTime(r.ExpiresAt), id); err != nil {
			return writeErr(what, err)
		}
		if err := tx.change(gatehouse.ChangeSession, id, gatehouse.OpUpdate); err != nil {
			return writeErr(what, err)
		}
		if err := insertAudit(tx, r.Audit); err != nil {
			return writeErr(what+" audit", err)
		}
		out.Session.ExpiresAt = stored(r.ExpiresAt)
		out.At = time.UnixMicro(now).UTC()
		return nil
	})
	if err != nil && !errors.Is(err, gatehouse.ErrRefreshReused) && !errors.Is(err, gatehouse.ErrSessionEnded) {
		return store.Refreshed{}, err
	}
	return out, err
}

// graceRetry reports whether a spent token of session id is a retry within
// r.Grace: spent less than r.Grace before r.Now, and its replacement
// r.NewHash is still the session's unspent token.
func graceRetry(tx *wtx, r *store.Refresh, id string, spentAt sql.NullInt64) (bool, error) {
	if r.Grace <= 0 || !spentAt.Valid || len(r.NewHash) == 0 || r.Now.Sub(goTime(spentAt)) >= r.Grace {
		return false, nil
	}
	var n int
	err := tx.queryRow("SELECT count(*) FROM refresh_tokens WHERE hash = ? AND session_id = ? AND spent = 0", r.NewHash, id).Scan(&n)
	return n > 0, err
}

// FindSessionByRefresh returns the session a refresh token, spent or not,
// belongs to.
func (s *Store) FindSessionByRefresh(ctx context.Context, hash []byte) (gatehouse.Session, error) {
	if len(hash) == 0 {
		return gatehouse.Session{}, fmt.Errorf("refresh token: %w", gatehouse.ErrNotFound)
	}
	x, err := scanSession(s.queryRow(ctx, "SELECT s."+strings.ReplaceAll(sessionCols, ", ", ", s.")+
		" FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?", hash))
	if err != nil {
		return gatehouse.Session{}, s.readErr("refresh token", err)
	}
	return x, nil
}

// EndSession ends one session; ending an ended session keeps its first end.
func (s *Store) EndSession(ctx context.Context, id, reason string, at time.Time) error {
	what := fmt.Sprintf("session %q", id)
	return s.write(ctx, func(tx *wtx) error {
		var ended sql.NullInt64
		var p principal
		if err := tx.queryRow("SELECT ended_at, consumer_uid, username_key FROM sessions WHERE id = ?", id).Scan(&ended, &p.consumer, &p.username); err != nil {
			return writeErr(what, err)
		}
		if ended.Valid {
			return nil
		}
		tx.w.caps.drop(p)
		if _, err := tx.exec("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?", tx.at(at), reason, id); err != nil {
			return writeErr(what, err)
		}
		return writeErr(what, tx.change(gatehouse.ChangeSession, id, gatehouse.OpEnd))
	})
}

// sessionWhere turns a filter into WHERE terms (fixed SQL text) and their
// arguments.
func sessionWhere(f store.SessionFilter) (string, []any) {
	var terms []string
	var args []any
	if f.Username != "" {
		terms = append(terms, "username_key = ?")
		args = append(args, lower(f.Username))
	}
	if f.ConsumerUID != 0 {
		terms = append(terms, "consumer_uid = ?")
		args = append(args, f.ConsumerUID)
	}
	if !f.ActiveAt.IsZero() {
		terms = append(terms, "ended_at IS NULL AND expires_at > ?")
		args = append(args, f.ActiveAt.UnixMicro())
	}
	if len(terms) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(terms, " AND "), args
}

// errNoFilter refuses EndSessions without a username or consumer.
var errNoFilter = errors.New("sqlite: ending sessions needs a username or a consumer uid")

// EndSessions ends every session matching f that is active at at (f.Limit
// is ignored) and returns their ids, newest first.
func (s *Store) EndSessions(ctx context.Context, f store.SessionFilter, reason string, at time.Time) ([]string, error) {
	if f.Username == "" && f.ConsumerUID == 0 {
		return nil, errNoFilter
	}
	if at.IsZero() {
		at = time.Now()
	}
	var ids []string
	err := s.write(ctx, func(tx *wtx) error {
		tx.w.caps.clear()
		hits, err := openMatching(tx, f, at.UnixMicro())
		if err != nil {
			return writeErr("end sessions", err)
		}
		ids = make([]string, len(hits))
		for i, h := range hits {
			if _, err := tx.exec("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE seq = ?", at.UnixMicro(), reason, h.seq); err != nil {
				return writeErr("end sessions", err)
			}
			if err := tx.change(gatehouse.ChangeSession, h.id, gatehouse.OpEnd); err != nil {
				return writeErr("end sessions", err)
			}
			ids[i] = h.id
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// openMatching finds the sessions active at now of f's consumer and/or
// username, newest first, through sessions_open. That index leads with the
// consumer, so a username alone is looked up once per consumer that has open
// sessions (a handful) rather than by scanning the table.
func openMatching(tx *wtx, f store.SessionFilter, now int64) ([]openSession, error) {
	uids := []int64{f.ConsumerUID}
	if f.ConsumerUID == 0 {
		uids = nil
		q := "SELECT min(consumer_uid) FROM sessions WHERE ended_at IS NULL"
		var args []any
		for {
			var uid sql.NullInt64
			if err := tx.queryRow(q, args...).Scan(&uid); err != nil {
				return nil, err
			}
			if !uid.Valid {
				break
			}
			uids = append(uids, uid.Int64)
			q, args = "SELECT min(consumer_uid) FROM sessions WHERE ended_at IS NULL AND consumer_uid > ?", []any{uid.Int64}
		}
	}
	var hits []openSession
	for _, uid := range uids {
		q := "SELECT created_at, seq, id FROM sessions WHERE consumer_uid = ? AND ended_at IS NULL AND expires_at > ?"
		args := []any{uid, now}
		if f.Username != "" {
			q += " AND username_key = ?"
			args = append(args, lower(f.Username))
		}
		rows, err := tx.query(q, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var h openSession
			var created sql.NullInt64
			if err := rows.Scan(&created, &h.seq, &h.id); err != nil {
				rows.Close()
				return nil, err
			}
			h.created = nullMin(created)
			hits = append(hits, h)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(hits, func(a, b openSession) int {
		if c := cmpInt(b.created, a.created); c != 0 {
			return c
		}
		return cmpInt(b.seq, a.seq)
	})
	return hits, nil
}

// ListSessions returns sessions matching f, newest (by CreatedAt) first.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]gatehouse.Session, error) {
	where, args := sessionWhere(f)
	q := "SELECT " + sessionCols + " FROM sessions" + where + " ORDER BY created_at DESC, seq DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, s.readErr("list sessions", err)
	}
	defer rows.Close()
	var out []gatehouse.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, s.readErr("list sessions", err)
		}
		out = append(out, x)
	}
	return out, s.readErr("list sessions", rows.Err())
}

// CountActiveSessions counts sessions not ended and not expired at t.
func (s *Store) CountActiveSessions(ctx context.Context, t time.Time) (int, error) {
	var n int
	// For a session not ended goneAt is its expiry: this reads sessions_gone alone.
	if err := s.queryRow(ctx, "SELECT count(*) FROM sessions WHERE "+goneAt+" > ? AND ended_at IS NULL", t.UnixMicro()).Scan(&n); err != nil {
		return 0, s.readErr("count sessions", err)
	}
	return n, nil
}

// goneAt is when a session stopped being usable: the earlier of its expiry
// and its end, the smallest integer (long gone) without an expiry. It must match the indexed
// expression of sessions_gone exactly for the index to be used.
const goneAt = "min(coalesce(expires_at, -9223372036854775807), coalesce(ended_at, expires_at, -9223372036854775807))"

// deleteChunk bounds the sessions one write transaction removes, so that a
// large clean-up does not hold the write lock for long.
const deleteChunk = 1000

// DeleteSessions removes sessions that expired or ended before t (and those
// without an expiry), with their refresh tokens, a chunk per transaction.
func (s *Store) DeleteSessions(ctx context.Context, before time.Time) (int, error) {
	total := 0
	t := before.UnixMicro()
	for {
		var n int
		err := s.write(ctx, func(tx *wtx) error {
			tx.w.caps.clear()
			ids, err := tx.strings("DELETE FROM sessions WHERE seq IN (SELECT seq FROM sessions WHERE "+goneAt+" < ? LIMIT ?) RETURNING id",
				t, deleteChunk)
			if err != nil {
				return writeErr("delete sessions", err)
			}
			for _, id := range ids {
				if err := tx.change(gatehouse.ChangeSession, id, gatehouse.OpDelete); err != nil {
					return writeErr("delete sessions", err)
				}
			}
			n = len(ids)
			return nil
		})
		total += n
		if err != nil {
			return total, err
		}
		if n < deleteChunk {
			return total, nil
		}
	}
}
