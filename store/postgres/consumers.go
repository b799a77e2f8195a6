package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

const consumerCols = sqlrow.ConsumerCols

func scanConsumer(r pgx.Row) (gatehouse.Consumer, error) {
	return sqlrow.ScanConsumer(r, goTime, func(g []string) ([]string, error) { return g, nil })
}

// consumerArgs are the values of every column of consumerCols but uid,
// followed by name_key.
func consumerArgs(c *gatehouse.Consumer) []any {
	return sqlrow.ConsumerArgs(c, dbTime, func(g []string) any { return g })
}

const insertConsumer = "INSERT INTO consumers (uid, name, type, sdk_access, lifetime_ns, scope, grants, disabled, key_hash, " +
	"created_at, updated_at, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING " + consumerCols

// CreateConsumer stores c under the next uid and returns it as stored. The
// uid counter moves in the same transaction, so a refused create does not
// use up a uid.
func (s *Store) CreateConsumer(ctx context.Context, c gatehouse.Consumer) (gatehouse.Consumer, error) {
	var out gatehouse.Consumer
	err := s.tx(ctx, fmt.Sprintf("consumer %q", c.Name), true, func(ctx context.Context, tx pgx.Tx) error {
		var uid int64
		if err := tx.QueryRow(ctx, "UPDATE meta SET value = value + 1 WHERE key = 'consumer_uid' RETURNING value").Scan(&uid); err != nil {
			return err
		}
		var err error
		if out, err = scanConsumer(tx.QueryRow(ctx, insertConsumer, append([]any{uid}, consumerArgs(&c)...)...)); err != nil {
			return err
		}
		return change(ctx, tx, gatehouse.ChangeConsumer, out.UIDString(), gatehouse.OpCreate)
	})
	if err != nil {
		return gatehouse.Consumer{}, err
	}
	return out, nil
}

func (s *Store) getConsumer(ctx context.Context, what, where string, arg any) (gatehouse.Consumer, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	c, err := scanConsumer(s.pool.QueryRow(qctx, "SELECT "+consumerCols+" FROM consumers WHERE "+where, arg))
	if err != nil {
		return gatehouse.Consumer{}, s.err(ctx, what, err)
	}
	return c, nil
}

// GetConsumer finds a consumer by uid.
func (s *Store) GetConsumer(ctx context.Context, uid int64) (gatehouse.Consumer, error) {
	return s.getConsumer(ctx, fmt.Sprintf("consumer %d", uid), "uid = $1", uid)
}

// GetConsumerByName finds a consumer by name, case-insensitively.
func (s *Store) GetConsumerByName(ctx context.Context, name string) (gatehouse.Consumer, error) {
	return s.getConsumer(ctx, fmt.Sprintf("consumer %q", name), "name_key = $1", lower(name))
}

// GetConsumerByKeyHash finds the consumer whose key hashes to h.
func (s *Store) GetConsumerByKeyHash(ctx context.Context, h []byte) (gatehouse.Consumer, error) {
	if len(h) == 0 {
		return gatehouse.Consumer{}, fmt.Errorf("consumer by key: %w", gatehouse.ErrNotFound)
	}
	return s.getConsumer(ctx, "consumer by key", "key_hash = $1", h)
}

// UpdateConsumer applies fn to the stored consumer, locked for the
// transaction. fn may not change the uid, must be quick and must not call
// the store. A new name or key hash that is taken gives ErrConflict.
func (s *Store) UpdateConsumer(ctx context.Context, uid int64, fn func(*gatehouse.Consumer) error) (gatehouse.Consumer, error) {
	what := fmt.Sprintf("consumer %d", uid)
	var out gatehouse.Consumer
	err := s.tx(ctx, what, false, func(ctx context.Context, tx pgx.Tx) error {
		c, err := scanConsumer(tx.QueryRow(ctx, "SELECT "+consumerCols+" FROM consumers WHERE uid = $1 FOR UPDATE", uid))
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return callerErr{err}
		}
		if c.UID != uid {
			return callerErr{fmt.Errorf("%s: the update may not change the uid to %d", what, c.UID)}
		}
		if out, err = scanConsumer(tx.QueryRow(ctx, "UPDATE consumers SET name = $1, type = $2, sdk_access = $3, lifetime_ns = $4, "+
			"scope = $5, grants = $6, disabled = $7, key_hash = $8, created_at = $9, updated_at = $10, name_key = $11 WHERE uid = $12 RETURNING "+
			consumerCols, append(consumerArgs(&c), uid)...)); err != nil {
			return err
		}
		return change(ctx, tx, gatehouse.ChangeConsumer, out.UIDString(), gatehouse.OpUpdate)
	})
	if err != nil {
		return gatehouse.Consumer{}, unwrapCaller(err)
	}
	return out, nil
}

// endSessionsSQL ends the sessions a WHERE clause (fixed text, on the
// sessions table) selects, adds their feed entries, and returns their ids.
// $1 is the end time, $2 the reason; the clause's arguments follow.
func endSessionsSQL(where string) string {
	return "WITH ended AS (UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE " + where + " RETURNING id, created_at, seq), " +
		"feed AS (INSERT INTO changes (kind, key, op) SELECT 'session', id, 'end' FROM ended) " +
		"SELECT id FROM ended ORDER BY created_at DESC NULLS LAST, seq DESC"
}

// DeleteConsumer removes a consumer and ends every session of it not yet
// ended (reason consumer_disabled), at the wall-clock time.
func (s *Store) DeleteConsumer(ctx context.Context, uid int64) error {
	return s.tx(ctx, fmt.Sprintf("consumer %d", uid), true, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM consumers WHERE uid = $1", uid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gatehouse.ErrNotFound
		}
		rows, err := tx.Query(ctx, endSessionsSQL("consumer_uid = $3 AND ended_at IS NULL"), time.Now(), gatehouse.EndConsumerDisabled, uid)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		record(ctx, gatehouse.ChangeSession, gatehouse.OpEnd, ids...)
		return change(ctx, tx, gatehouse.ChangeConsumer, strconv.FormatInt(uid, 10), gatehouse.OpDelete)
	})
}

// ListConsumers returns every consumer ordered by uid.
func (s *Store) ListConsumers(ctx context.Context) ([]gatehouse.Consumer, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, "SELECT "+consumerCols+" FROM consumers ORDER BY uid")
	if err != nil {
		return nil, s.err(ctx, "list consumers", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.Consumer, error) { return scanConsumer(r) })
	return out, s.err(ctx, "list consumers", err)
}
