package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// RefreshTokens returns the refresh tokens, spent or not, of the given
// sessions.
func (s *Store) RefreshTokens(ctx context.Context, sessionIDs []string) ([]store.RefreshToken, error) {
	if s.isClosed() {
		return nil, errClosed
	}
	var out []store.RefreshToken
	// Bounded groups of placeholders: SQLite caps the variables of a statement.
	for len(sessionIDs) > 0 {
		part := sessionIDs[:min(len(sessionIDs), 500)]
		sessionIDs = sessionIDs[len(part):]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := "SELECT hash, session_id, spent, spent_at FROM refresh_tokens WHERE session_id IN (?" + strings.Repeat(", ?", len(part)-1) +
			") ORDER BY session_id, hash"
		rows, err := s.rdb.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, s.readErr("refresh tokens", err)
		}
		for rows.Next() {
			var t store.RefreshToken
			var spentAt sql.NullInt64
			if err := rows.Scan(&t.Hash, &t.SessionID, &t.Spent, &spentAt); err != nil {
				rows.Close()
				return nil, s.readErr("refresh tokens", err)
			}
			t.SpentAt = goTime(spentAt)
			out = append(out, t)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.readErr("refresh tokens", err)
		}
	}
	return out, nil
}

// LastConsumerUID is the highest consumer uid ever handed out (AUTOINCREMENT
// keeps it in sqlite_sequence).
func (s *Store) LastConsumerUID(ctx context.Context) (int64, error) {
	var uid int64
	err := s.queryRow(ctx, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'consumers'), 0)").Scan(&uid)
	return uid, s.readErr("last consumer uid", err)
}

// ImportConsumers stores consumers under their own uids, in one
// transaction, and moves the uid counter to at least lastUID
// (AUTOINCREMENT moves past the highest uid inserted by itself).
func (s *Store) ImportConsumers(ctx context.Context, cs []gatehouse.Consumer, lastUID int64) error {
	return s.write(ctx, func(tx *wtx) error {
		if lastUID > 0 {
			if _, err := tx.exec("INSERT INTO sqlite_sequence (name, seq) SELECT 'consumers', 0 " +
				"WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'consumers')"); err != nil {
				return writeErr("consumer uids", err)
			}
			if _, err := tx.exec("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'consumers'", lastUID); err != nil {
				return writeErr("consumer uids", err)
			}
		}
		for i := range cs {
			c := &cs[i]
			what := fmt.Sprintf("consumer %d", c.UID)
			if _, err := tx.exec("INSERT INTO consumers (uid, name, type, sdk_access, lifetime_ns, scope, grants, disabled, key_hash, "+
				"created_at, updated_at, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", append([]any{c.UID}, consumerArgs(c)...)...); err != nil {
				return writeErr(what, err)
			}
			if err := tx.change(gatehouse.ChangeConsumer, c.UIDString(), gatehouse.OpCreate); err != nil {
				return writeErr(what, err)
			}
		}
		return nil
	})
}

// ImportSessions stores sessions as they are, with their refresh tokens, in
// one transaction.
func (s *Store) ImportSessions(ctx context.Context, rs []store.SessionRecord) error {
	if len(rs) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *wtx) error {
		// The sessions bypass the cap: what the writer cached of principals is stale.
		tx.w.caps.clear()
		for i := range rs {
			x := &rs[i].Session
			what := fmt.Sprintf("session %q", x.ID)
			if _, err := tx.exec("INSERT INTO sessions ("+sessionCols+", username_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				x.ID, x.Username, x.ConsumerUID, x.Flow, x.Scope, dbTime(x.CreatedAt), dbTime(x.ExpiresAt), dbTime(x.EndedAt),
				x.EndReason, x.RemoteAddr, lower(x.Username)); err != nil {
				return writeErr(what, err)
			}
			for _, t := range rs[i].RefreshTokens {
				if _, err := tx.exec("INSERT INTO refresh_tokens (hash, session_id, spent, spent_at) VALUES (?, ?, ?, ?)", t.Hash, x.ID, t.Spent, dbTime(t.SpentAt)); err != nil {
					return writeErr(what+" refresh token", err)
				}
			}
			if err := tx.change(gatehouse.ChangeSession, x.ID, gatehouse.OpCreate); err != nil {
				return writeErr(what, err)
			}
		}
		return nil
	})
}

// ImportKeys stores signing keys as they are, in one transaction.
func (s *Store) ImportKeys(ctx context.Context, ks []gatehouse.SigningKey) error {
	if len(ks) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *wtx) error {
		for _, k := range ks {
			if err := insertKey(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}
