package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

const sessionCols = "id, username, consumer_uid, flow, scope, created_at, expires_at, ended_at, end_reason, remote_addr"

// sessionColsS is sessionCols of the table aliased s.
var sessionColsS = "s." + strings.ReplaceAll(sessionCols, ", ", ", s.")

func scanSession(r pgx.Row, extra ...any) (gatehouse.Session, error) {
	var x gatehouse.Session
	var created, expires, ended pgtype.Timestamptz
	err := r.Scan(append([]any{&x.ID, &x.Username, &x.ConsumerUID, &x.Flow, &x.Scope, &created, &expires, &ended,
		&x.EndReason, &x.RemoteAddr}, extra...)...)
	x.CreatedAt, x.ExpiresAt, x.EndedAt = goTime(created), goTime(expires), goTime(ended)
	return x, err
}

const insertAuditSQL = "INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"

func auditArgs(e *gatehouse.AuditEvent) []any {
	return []any{dbTime(e.At), e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail, max(e.Count, 1), e.RequestID}
}

// capSQL enforces the cap of a principal ($3 consumer uid, $4 lower-cased
// username) at $1 after the new session $5 was inserted: it ends (reason $2)
// the oldest active sessions beyond the newest $6 others, adds their feed
// entries and audit events ($8–$14: store.CapEndEvent, the target a
// prefix of the id), and returns their ids. It reads the principal's sessions from its
// lower bound on (see the principals table) and moves that bound to the
// oldest session still open and not expired before $7, or the new one: down
// at once, up only once it lags by 1000 (a bound too low costs a longer
// scan, not a wrong answer, and rewriting it on every token costs more).
const capSQL = `WITH open AS (
	SELECT seq, id, created_at, expires_at FROM sessions
	WHERE consumer_uid = $3 AND username_key = $4 AND ended_at IS NULL AND id <> $5
	AND seq >= coalesce((SELECT min_seq FROM principals WHERE consumer_uid = $3 AND username_key = $4), 0)),
victims AS (
	SELECT seq FROM open WHERE expires_at > $1
	ORDER BY created_at DESC NULLS LAST, expires_at DESC NULLS LAST, seq DESC OFFSET $6),
ended AS (
	UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE seq IN (SELECT seq FROM victims) RETURNING id, created_at, seq),
feed AS (
	INSERT INTO changes (kind, key, op) SELECT 'session', id, 'end' FROM ended),
audited AS (
	INSERT INTO audit (at, actor, action, target, outcome, remote, detail)
	SELECT $8::timestamptz, $9::text, $10::text, $11::text || id, $12::text, $13::text, $14::text FROM ended ORDER BY created_at DESC NULLS LAST, seq DESC),
bound AS (
	INSERT INTO principals (consumer_uid, username_key, min_seq)
	SELECT $3, $4, least((SELECT seq FROM sessions WHERE id = $5), min(seq)) FROM open
	WHERE expires_at > $7 AND seq NOT IN (SELECT seq FROM victims)
	ON CONFLICT (consumer_uid, username_key) DO UPDATE SET min_seq = excluded.min_seq
	WHERE excluded.min_seq < principals.min_seq OR excluded.min_seq > principals.min_seq + 1000)
SELECT id FROM ended ORDER BY created_at DESC NULLS LAST, seq DESC`

// capSkew is how long after its expiry a session still counts as possibly
// active for the cap's lower bound: replicas' clocks may differ by this
// much. (A session that expired is never refreshed again.)
const capSkew = 5 * time.Minute

// CreateSession stores the session and its first refresh token, writes the
// audit events, and enforces the principal's cap: counting the new session,
// the oldest active sessions (at CreatedAt) beyond MaxSessions are ended with
// reason cap. The new session itself is never the one ended.
//
// It is the hottest write of the store, so the creates made at the same
// time share a transaction (see creates.go). Each goes to the database as
// part of one batch: one round trip. With a cap, the batch takes the
// principal's advisory lock before the cap, so creates for one principal
// take turns across replicas and each counts the sessions of those before
// it.
func (s *Store) CreateSession(ctx context.Context, n store.NewSession) ([]string, error) {
	return s.creates.create(ctx, &n)
}

// queueCreate queues the statements of one create on b; capQ, when not
// nil, is the cap's statement, whose rows are the ended sessions.
func (s *Store) queueCreate(b *pgx.Batch, n *store.NewSession) (capQ *pgx.QueuedQuery) {
	x := &n.Session
	if n.MaxSessions > 0 {
		b.Queue(quietFeedSQL)
	}
	b.Queue("INSERT INTO sessions ("+sessionCols+", username_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
		x.ID, x.Username, x.ConsumerUID, x.Flow, x.Scope, dbTime(x.CreatedAt), dbTime(x.ExpiresAt), dbTime(x.EndedAt),
		x.EndReason, x.RemoteAddr, lower(x.Username))
	if len(n.RefreshHash) > 0 {
		b.Queue("INSERT INTO refresh_tokens (hash, session_id, spent) VALUES ($1, $2, false)", n.RefreshHash, x.ID)
	}
	for i := range n.Audit {
		b.Queue(insertAuditSQL, auditArgs(&n.Audit[i])...)
	}
	if n.MaxSessions > 0 {
		keep := n.MaxSessions
		if x.Active(x.CreatedAt) {
			keep-- // the new session takes one place
		}
		// The lock comes last, so that it is held for the cap and the commit
		// only. The cap's statement starts after the lock is granted, so it sees
		// every session committed by whoever held it before.
		b.Queue("SELECT pg_advisory_xact_lock($1)", s.lockKey("principal", gatehouse.PrincipalKey(x.ConsumerUID, x.Username)))
		now := endTime(x.CreatedAt)
		ev := store.CapEndEvent(n, "")
		capQ = b.Queue(capSQL, now, gatehouse.EndCap, x.ConsumerUID, lower(x.Username), x.ID, keep, now.Add(-capSkew),
			dbTime(ev.At), ev.Actor, ev.Action, ev.Target, ev.Outcome, ev.Remote, ev.Detail)
	}
	return capQ
}

// createOne creates one session in a batch of its own, run by the server
// as one implicit transaction.
func (s *Store) createOne(ctx context.Context, n *store.NewSession) ([]string, error) {
	what := fmt.Sprintf("session %q", n.Session.ID)
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	b := &pgx.Batch{}
	capQ := s.queueCreate(b, n)
	br := s.pool.SendBatch(qctx, b)
	var ended []string
	var err error
	for _, q := range b.QueuedQueries {
		if q == capQ {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				ended, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, s.err(ctx, what, err)
	}
	return ended, nil
}

// GetSession finds a session by id.
func (s *Store) GetSession(ctx context.Context, id string) (gatehouse.Session, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	x, err := scanSession(s.pool.QueryRow(qctx, "SELECT "+sessionCols+" FROM sessions WHERE id = $1", id))
	if err != nil {
		return gatehouse.Session{}, s.err(ctx, fmt.Sprintf("session %q", id), err)
	}
	return x, nil
}

// RefreshSession spends r.OldHash and stores r.NewHash in its place. The
// token and its session are locked, so of two refreshes with one token the
// second sees it spent.
func (s *Store) RefreshSession(ctx context.Context, r store.Refresh) (store.Refreshed, error) {
	const what = "refresh token"
	if len(r.OldHash) == 0 {
		return store.Refreshed{}, fmt.Errorf("%s: %w", what, gatehouse.ErrNotFound)
	}
	var out store.Refreshed
	err := s.tx(ctx, what, true, func(ctx context.Context, tx pgx.Tx) error {
		out = store.Refreshed{} // the transaction may run again
		var spent bool
		var spentAt pgtype.Timestamptz
		x, err := scanSession(tx.QueryRow(ctx, "SELECT "+sessionColsS+", t.spent, t.spent_at FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "+
			"WHERE t.hash = $1 FOR UPDATE", r.OldHash), &spent, &spentAt)
		if err != nil {
			return err
		}
		out.Session = x
		if spent {
			if r.Grace > 0 && spentAt.Valid && len(r.NewHash) > 0 && r.Now.Sub(spentAt.Time) < r.Grace {
				var next bool
				if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE hash = $1 AND session_id = $2 AND NOT spent)",
					r.NewHash, x.ID).Scan(&next); err != nil {
					return err
				}
				if next {
					if !x.Active(r.Now) {
						return fmt.Errorf("session %q: %w", x.ID, gatehouse.ErrSessionEnded)
					}
					out.At, out.Retry = goTime(spentAt), true
					return nil
				}
			}
			// A replayed token means it leaked: end the session for good, and
			// keep that even though the call fails.
			if x.EndedAt.IsZero() {
				end := stored(endTime(r.Now))
				rows, err := tx.Query(ctx, endSessionsSQL("id = $3 AND ended_at IS NULL"), end, gatehouse.EndRefreshReuse, x.ID)
				if err != nil {
					return err
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				ev := store.ReuseEndEvent(&r, x.ID)
				if _, err := tx.Exec(ctx, insertAuditSQL, auditArgs(&ev)...); err != nil {
					return err
				}
				out.Session.EndedAt, out.Session.EndReason = end, gatehouse.EndRefreshReuse
			}
			return committed{fmt.Errorf("session %q: %w", x.ID, gatehouse.ErrRefreshReused)}
		}
		if !x.Active(r.Now) {
			return fmt.Errorf("session %q: %w", x.ID, gatehouse.ErrSessionEnded)
		}
		now := stored(r.Now)
		if _, err := tx.Exec(ctx, "UPDATE refresh_tokens SET spent = true, spent_at = $2 WHERE hash = $1", r.OldHash, now); err != nil {
			return err
		}
		if len(r.NewHash) > 0 {
			if _, err := tx.Exec(ctx, "INSERT INTO refresh_tokens (hash, session_id, spent) VALUES ($1, $2, false)", r.NewHash, x.ID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE sessions SET expires_at = $1 WHERE id = $2", dbTime(r.ExpiresAt), x.ID); err != nil {
			return err
		}
		if err := change(ctx, tx, gatehouse.ChangeSession, x.ID, gatehouse.OpUpdate); err != nil {
			return err
		}
		for i := range r.Audit {
			if _, err := tx.Exec(ctx, insertAuditSQL, auditArgs(&r.Audit[i])...); err != nil {
				return err
			}
		}
		out.Session.ExpiresAt = stored(r.ExpiresAt)
		out.At = now
		return nil
	})
	if err != nil && !errors.Is(err, gatehouse.ErrRefreshReused) && !errors.Is(err, gatehouse.ErrSessionEnded) {
		return store.Refreshed{}, err
	}
	return out, err
}

// FindSessionByRefresh returns the session a refresh token, spent or not,
// belongs to.
func (s *Store) FindSessionByRefresh(ctx context.Context, hash []byte) (gatehouse.Session, error) {
	x, _, err := s.FindRefreshToken(ctx, hash)
	return x, err
}

// FindRefreshToken returns the session a refresh token belongs to and
// whether the token has been spent, changing nothing.
func (s *Store) FindRefreshToken(ctx context.Context, hash []byte) (gatehouse.Session, bool, error) {
	if len(hash) == 0 {
		return gatehouse.Session{}, false, fmt.Errorf("refresh token: %w", gatehouse.ErrNotFound)
	}
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var spent bool
	x, err := scanSession(s.pool.QueryRow(qctx, "SELECT "+sessionColsS+", t.spent FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "+
		"WHERE t.hash = $1", hash), &spent)
	if err != nil {
		return gatehouse.Session{}, false, s.err(ctx, "refresh token", err)
	}
	return x, spent, nil
}

// EndSession ends one session; ending an ended session keeps its first end.
func (s *Store) EndSession(ctx context.Context, id, reason string, at time.Time) error {
	// One statement: the update, its feed entry, whether the session
	// exists and whether this call ended it.
	const q = "WITH ended AS (UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL RETURNING id), " +
		"feed AS (INSERT INTO changes (kind, key, op) SELECT 'session', id, 'end' FROM ended) " +
		"SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1), EXISTS (SELECT 1 FROM ended)"
	var found, ended bool
	what := fmt.Sprintf("session %q", id)
	if store.AuditOf(ctx) != nil {
		err := s.tx(ctx, what, true, func(ctx context.Context, tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, q, id, endTime(at), reason).Scan(&found, &ended); err != nil {
				return err
			}
			if !found {
				return gatehouse.ErrNotFound
			}
			if ended {
				record(ctx, gatehouse.ChangeSession, gatehouse.OpEnd, id)
			}
			return nil
		})
		return err
	}
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	err := s.pool.QueryRow(qctx, q, id, endTime(at), reason).Scan(&found, &ended)
	if err == nil && !found {
		err = gatehouse.ErrNotFound
	}
	return s.err(ctx, what, err)
}

// sessionWhere turns a filter into WHERE terms (fixed SQL text) and their
// arguments, numbered from $first.
func sessionWhere(f store.SessionFilter, first int) (string, []any) {
	var terms []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", first+len(args)-1)
	}
	if f.Username != "" {
		terms = append(terms, "username_key = "+arg(lower(f.Username)))
	}
	if f.ConsumerUID != 0 {
		terms = append(terms, "consumer_uid = "+arg(f.ConsumerUID))
	}
	if !f.ActiveAt.IsZero() {
		terms = append(terms, "ended_at IS NULL AND expires_at > "+arg(f.ActiveAt))
	}
	return strings.Join(terms, " AND "), args
}

// errNoFilter refuses EndSessions without a username or consumer.
var errNoFilter = errors.New("postgres: ending sessions needs a username or a consumer uid")

// EndSessions ends every session matching f that is active at at (f.Limit
// is ignored) and returns their ids, newest first.
func (s *Store) EndSessions(ctx context.Context, f store.SessionFilter, reason string, at time.Time) ([]string, error) {
	if f.Username == "" && f.ConsumerUID == 0 {
		return nil, errNoFilter
	}
	at = endTime(at)
	f.ActiveAt = at
	where, args := sessionWhere(f, 3)
	var ids []string
	err := s.tx(ctx, "end sessions", true, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, endSessionsSQL(where), append([]any{at, reason}, args...)...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		record(ctx, gatehouse.ChangeSession, gatehouse.OpEnd, ids...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// ListSessions returns sessions matching f, newest (by CreatedAt) first.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]gatehouse.Session, error) {
	where, args := sessionWhere(f, 1)
	q := "SELECT " + sessionCols + " FROM sessions"
	if where != "" {
		q += " WHERE " + where
	}
	q += " ORDER BY created_at DESC NULLS LAST, seq DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, q, args...)
	if err != nil {
		return nil, s.err(ctx, "list sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.Session, error) { return scanSession(r) })
	return out, s.err(ctx, "list sessions", err)
}

// CountActiveSessions counts sessions not ended and not expired at t.
func (s *Store) CountActiveSessions(ctx context.Context, t time.Time) (int, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(qctx, "SELECT count(*) FROM sessions WHERE ended_at IS NULL AND expires_at > $1", t).Scan(&n); err != nil {
		return 0, s.err(ctx, "count sessions", err)
	}
	return n, nil
}

// goneAt is when a session stopped being usable: the earlier of its expiry
// and its end, long ago without an expiry. It must match the expression of
// the sessions_gone index exactly for the index to be used.
const goneAt = "least(coalesce(expires_at, '-infinity'::timestamptz), ended_at)"

// deleteChunk bounds the sessions one transaction removes, so that a large
// clean-up does not hold locks for long.
const deleteChunk = 1000

// DeleteSessions removes sessions that expired or ended before t (and those
// without an expiry), with their refresh tokens, a chunk per transaction.
func (s *Store) DeleteSessions(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int
		err := s.tx(ctx, "delete sessions", true, func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "WITH gone AS (DELETE FROM sessions WHERE seq IN (SELECT seq FROM sessions WHERE "+goneAt+" < $1 LIMIT $2) RETURNING id), "+
				"feed AS (INSERT INTO changes (kind, key, op) SELECT 'session', id, 'delete' FROM gone) SELECT count(*) FROM gone", before, deleteChunk)
			if err != nil {
				return err
			}
			counts, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err == nil && len(counts) == 1 {
				n = counts[0]
			}
			return err
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
