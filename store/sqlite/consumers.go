package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

const consumerCols = sqlrow.ConsumerCols

func scanConsumer(r sqlrow.Scanner) (gatehouse.Consumer, error) {
	return sqlrow.ScanConsumer(r, goTime, func(g string) ([]string, error) {
		var gs []string
		if err := json.Unmarshal([]byte(g), &gs); err != nil {
			return nil, fmt.Errorf("grants: %w", err)
		}
		return gs, nil
	})
}

// consumerArgs are the values of every column but uid, in consumerCols order,
// followed by name_key. Grants are kept as a JSON array.
func consumerArgs(c *gatehouse.Consumer) []any {
	return sqlrow.ConsumerArgs(c, dbTime, func(g []string) any {
		b, _ := json.Marshal(g) // a []string always marshals
		return string(b)
	})
}

// CreateConsumer stores c under the next uid and returns it as stored.
func (s *Store) CreateConsumer(ctx context.Context, c gatehouse.Consumer) (gatehouse.Consumer, error) {
	what := fmt.Sprintf("consumer %q", c.Name)
	var out gatehouse.Consumer
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.exec("INSERT INTO consumers (name, type, sdk_access, lifetime_ns, scope, grants, disabled, key_hash, "+
			"created_at, updated_at, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", consumerArgs(&c)...)
		if err != nil {
			return writeErr(what, err)
		}
		uid, err := res.LastInsertId()
		if err != nil {
			return writeErr(what, err)
		}
		if out, err = scanConsumer(tx.queryRow("SELECT "+consumerCols+" FROM consumers WHERE uid = ?", uid)); err != nil {
			return writeErr(what, err)
		}
		return writeErr(what, tx.change(gatehouse.ChangeConsumer, out.UIDString(), gatehouse.OpCreate))
	})
	if err != nil {
		return gatehouse.Consumer{}, err
	}
	return out, nil
}

func (s *Store) getConsumer(ctx context.Context, what, where string, arg any) (gatehouse.Consumer, error) {
	c, err := scanConsumer(s.queryRow(ctx, "SELECT "+consumerCols+" FROM consumers WHERE "+where, arg))
	if err != nil {
		return gatehouse.Consumer{}, s.readErr(what, err)
	}
	return c, nil
}

// GetConsumer finds a consumer by uid.
func (s *Store) GetConsumer(ctx context.Context, uid int64) (gatehouse.Consumer, error) {
	return s.getConsumer(ctx, fmt.Sprintf("consumer %d", uid), "uid = ?", uid)
}

// GetConsumerByName finds a consumer by name, case-insensitively.
func (s *Store) GetConsumerByName(ctx context.Context, name string) (gatehouse.Consumer, error) {
	return s.getConsumer(ctx, fmt.Sprintf("consumer %q", name), "name_key = ?", lower(name))
}

// GetConsumerByKeyHash finds the consumer whose key hashes to h.
func (s *Store) GetConsumerByKeyHash(ctx context.Context, h []byte) (gatehouse.Consumer, error) {
	if len(h) == 0 {
		return gatehouse.Consumer{}, fmt.Errorf("consumer by key: %w", gatehouse.ErrNotFound)
	}
	return s.getConsumer(ctx, "consumer by key", "key_hash = ?", h)
}

// UpdateConsumer applies fn to the stored consumer inside the write
// transaction. fn may not change the uid, must be quick and must not call the
// store. A new name or key hash that is taken gives ErrConflict.
func (s *Store) UpdateConsumer(ctx context.Context, uid int64, fn func(*gatehouse.Consumer) error) (gatehouse.Consumer, error) {
	what := fmt.Sprintf("consumer %d", uid)
	var out gatehouse.Consumer
	err := s.writeOnce(ctx, func(tx *wtx) error {
		c, err := scanConsumer(tx.queryRow("SELECT "+consumerCols+" FROM consumers WHERE uid = ?", uid))
		if err != nil {
			return writeErr(what, err)
		}
		if err := fn(&c); err != nil {
			return err
		}
		if c.UID != uid {
			return fmt.Errorf("%s: the update may not change the uid to %d", what, c.UID)
		}
		args := append(consumerArgs(&c), uid)
		if _, err := tx.exec("UPDATE consumers SET name = ?, type = ?, sdk_access = ?, lifetime_ns = ?, scope = ?, grants = ?, "+
			"disabled = ?, key_hash = ?, created_at = ?, updated_at = ?, name_key = ? WHERE uid = ?", args...); err != nil {
			return writeErr(what, err)
		}
		if out, err = scanConsumer(tx.queryRow("SELECT "+consumerCols+" FROM consumers WHERE uid = ?", uid)); err != nil {
			return writeErr(what, err)
		}
		return writeErr(what, tx.change(gatehouse.ChangeConsumer, out.UIDString(), gatehouse.OpUpdate))
	})
	if err != nil {
		return gatehouse.Consumer{}, err
	}
	return out, nil
}

// DeleteConsumer removes a consumer and ends every session of it not yet
// ended (reason consumer_disabled), at the wall-clock time.
func (s *Store) DeleteConsumer(ctx context.Context, uid int64) error {
	what := fmt.Sprintf("consumer %d", uid)
	return s.write(ctx, func(tx *wtx) error {
		var n int
		if err := tx.queryRow("SELECT count(*) FROM consumers WHERE uid = ?", uid).Scan(&n); err != nil {
			return writeErr(what, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", what, gatehouse.ErrNotFound)
		}
		tx.w.caps.clear()
		if _, err := tx.exec("DELETE FROM consumers WHERE uid = ?", uid); err != nil {
			return writeErr(what, err)
		}
		ids, err := tx.strings("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE consumer_uid = ? AND ended_at IS NULL RETURNING id",
			tx.now.UnixMicro(), gatehouse.EndConsumerDisabled, uid)
		if err != nil {
			return writeErr(what, err)
		}
		for _, id := range ids {
			if err := tx.change(gatehouse.ChangeSession, id, gatehouse.OpEnd); err != nil {
				return writeErr(what, err)
			}
		}
		return writeErr(what, tx.change(gatehouse.ChangeConsumer, fmt.Sprint(uid), gatehouse.OpDelete))
	})
}

// ListConsumers returns every consumer ordered by uid.
func (s *Store) ListConsumers(ctx context.Context) ([]gatehouse.Consumer, error) {
	rows, err := s.query(ctx, "SELECT "+consumerCols+" FROM consumers ORDER BY uid")
	if err != nil {
		return nil, s.readErr("list consumers", err)
	}
	defer rows.Close()
	var out []gatehouse.Consumer
	for rows.Next() {
		c, err := scanConsumer(rows)
		if err != nil {
			return nil, s.readErr("list consumers", err)
		}
		out = append(out, c)
	}
	return out, s.readErr("list consumers", rows.Err())
}
