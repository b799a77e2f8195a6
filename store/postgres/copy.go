package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, "SELECT hash, session_id, spent, spent_at FROM refresh_tokens WHERE session_id = ANY($1) ORDER BY session_id, hash",
		sessionIDs)
	if err != nil {
		return nil, s.err(ctx, "refresh tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.RefreshToken, error) {
		var t store.RefreshToken
		var spentAt pgtype.Timestamptz
		err := r.Scan(&t.Hash, &t.SessionID, &t.Spent, &spentAt)
		t.SpentAt = goTime(spentAt)
		return t, err
	})
	return out, s.err(ctx, "refresh tokens", err)
}

// LastConsumerUID is the highest consumer uid ever handed out.
func (s *Store) LastConsumerUID(ctx context.Context) (int64, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var uid int64
	err := s.pool.QueryRow(qctx, "SELECT value FROM meta WHERE key = 'consumer_uid'").Scan(&uid)
	return uid, s.err(ctx, "last consumer uid", err)
}

// ImportConsumers stores consumers under their own uids and moves the uid
// counter to at least lastUID and past the highest, in one transaction.
func (s *Store) ImportConsumers(ctx context.Context, cs []gatehouse.Consumer, lastUID int64) error {
	return s.tx(ctx, "import consumers", true, func(ctx context.Context, tx pgx.Tx) error {
		top := lastUID
		for i := range cs {
			c := &cs[i]
			if _, err := tx.Exec(ctx, insertConsumer, append([]any{c.UID}, consumerArgs(c)...)...); err != nil {
				return err
			}
			if err := change(ctx, tx, gatehouse.ChangeConsumer, c.UIDString(), gatehouse.OpCreate); err != nil {
				return err
			}
			top = max(top, c.UID)
		}
		_, err := tx.Exec(ctx, "UPDATE meta SET value = greatest(value, $1) WHERE key = 'consumer_uid'", top)
		return err
	})
}

// ImportSessions stores sessions as they are, with their refresh tokens, in
// one transaction.
func (s *Store) ImportSessions(ctx context.Context, rs []store.SessionRecord) error {
	if len(rs) == 0 {
		return nil
	}
	return s.tx(ctx, "import sessions", true, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		for i := range rs {
			x := &rs[i].Session
			b.Queue("INSERT INTO sessions ("+sessionCols+", username_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
				x.ID, x.Username, x.ConsumerUID, x.Flow, x.Scope, dbTime(x.CreatedAt), dbTime(x.ExpiresAt), dbTime(x.EndedAt),
				x.EndReason, x.RemoteAddr, lower(x.Username))
			for _, t := range rs[i].RefreshTokens {
				b.Queue("INSERT INTO refresh_tokens (hash, session_id, spent, spent_at) VALUES ($1, $2, $3, $4)", t.Hash, x.ID, t.Spent, dbTime(t.SpentAt))
			}
			b.Queue("INSERT INTO changes (kind, key, op) VALUES ('session', $1, 'create')", x.ID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ImportKeys stores signing keys as they are, in one transaction.
func (s *Store) ImportKeys(ctx context.Context, ks []gatehouse.SigningKey) error {
	if len(ks) == 0 {
		return nil
	}
	return s.tx(ctx, "import keys", true, func(ctx context.Context, tx pgx.Tx) error {
		for _, k := range ks {
			if err := insertKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}
