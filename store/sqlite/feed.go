package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Feed entries are stamped with the wall clock of the transaction that
// wrote them; PruneChanges compares against that stamp.

const lastRevQuery = "SELECT max(coalesce((SELECT max(rev) FROM changes), 0), (SELECT value FROM meta WHERE key = 'feed_pruned'))"

// LastRevision is the newest revision, 0 for an empty feed.
func (s *Store) LastRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.queryRow(ctx, lastRevQuery).Scan(&rev); err != nil {
		return 0, s.readErr("last revision", err)
	}
	return rev, nil
}

// Changes returns up to limit entries after rev after (all of them when
// limit <= 0). ErrFeedGap when entries after `after` were pruned, or when
// after is beyond the newest revision (the file was replaced by an older
// copy, so whatever the caller derived from later revisions is stale).
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]gatehouse.Change, error) {
	after = max(after, 0)
	var out []gatehouse.Change
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var pruned, last int64
		if err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'feed_pruned'").Scan(&pruned); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, lastRevQuery).Scan(&last); err != nil {
			return err
		}
		if after < pruned {
			return fmt.Errorf("changes after %d: pruned up to %d: %w", after, pruned, gatehouse.ErrFeedGap)
		}
		if after > last {
			return fmt.Errorf("changes after %d: the newest is %d: %w", after, last, gatehouse.ErrFeedGap)
		}
		if after == last {
			return nil
		}
		q := "SELECT rev, kind, key, op, at FROM changes WHERE rev > ? ORDER BY rev"
		args := []any{after}
		if limit > 0 {
			q += " LIMIT ?"
			args = append(args, limit)
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c gatehouse.Change
			var kind string
			var at int64
			if err := rows.Scan(&c.Rev, &kind, &c.Key, &c.Op, &at); err != nil {
				return err
			}
			c.Kind, c.At = gatehouse.ChangeKind(kind), time.UnixMicro(at).UTC()
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.readErr("changes", err)
	}
	return out, nil
}

// pruneChunk bounds the entries one write transaction removes.
const pruneChunk = 10_000

// PruneChanges drops the oldest entries, up to the first one not older than
// t, always keeping the newest entry, and remembers how far it pruned. A
// large prune goes a chunk per transaction, so other writes interleave.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int, error) {
	cut := int64(-1) // decided by the first chunk
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(tx *wtx) error {
			if cut < 0 {
				var last int64
				if err := tx.queryRow("SELECT coalesce(max(rev), 0) FROM changes").Scan(&last); err != nil {
					return writeErr("prune changes", err)
				}
				c := last - 1
				var first int64
				err := tx.queryRow("SELECT rev FROM changes WHERE at >= ? ORDER BY rev LIMIT 1", before.UnixMicro()).Scan(&first)
				switch {
				case err == nil:
					c = min(c, first-1)
				case !errors.Is(err, sql.ErrNoRows):
					return writeErr("prune changes", err)
				}
				cut = max(c, 0)
			}
			var lo sql.NullInt64
			if err := tx.queryRow("SELECT min(rev) FROM changes").Scan(&lo); err != nil {
				return writeErr("prune changes", err)
			}
			if !lo.Valid || lo.Int64 > cut {
				return nil
			}
			upTo := min(cut, lo.Int64+pruneChunk-1)
			res, err := tx.exec("DELETE FROM changes WHERE rev <= ?", upTo)
			if err != nil {
				return writeErr("prune changes", err)
			}
			if n, err = res.RowsAffected(); err != nil {
				return writeErr("prune changes", err)
			}
			_, err = tx.exec("UPDATE meta SET value = max(value, ?) WHERE key = 'feed_pruned'", upTo)
			return writeErr("prune changes", err)
		})
		total += int(n)
		if err != nil || n == 0 {
			return total, err
		}
	}
}
