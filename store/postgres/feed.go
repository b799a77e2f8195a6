package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gatehouse/gatehouse"
)

// Feed entries are stamped with the database's clock at the writing
// transaction (one clock for every replica); PruneChanges compares against
// that stamp.

// sequence numbers the committed entries that have no revision yet and
// returns the newest revision (see the package documentation). It runs as a
// statement of its own, so that the lock it takes ends with it.
func (s *Store) sequence(ctx context.Context) (int64, error) {
	var last int64
	err := s.pool.QueryRow(ctx, "SELECT feed_sequence($1)", s.lockKey("feed", "")).Scan(&last)
	return last, err
}

// LastRevision is the newest revision, 0 for an empty feed.
func (s *Store) LastRevision(ctx context.Context) (int64, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	last, err := s.sequence(qctx)
	if err != nil {
		return 0, s.err(ctx, "last revision", err)
	}
	return last, nil
}

// changesSQL reads the pruning mark, the newest revision and the entries
// after $1 (at most $2; NULL for all) from one snapshot.
const changesSQL = `WITH m AS (SELECT value AS pruned FROM meta WHERE key = 'feed_pruned'),
	l AS (SELECT greatest(coalesce(max(rev), 0), (SELECT pruned FROM m)) AS last FROM changes)
SELECT m.pruned, l.last, c.rev, c.kind, c.key, c.op, c.at
FROM m CROSS JOIN l
LEFT JOIN LATERAL (SELECT rev, kind, key, op, at FROM changes WHERE rev > $1 ORDER BY rev LIMIT $2) c ON true
ORDER BY c.rev`

// Changes returns up to limit entries after rev after (all of them when
// limit <= 0). ErrFeedGap when entries after `after` were pruned, or when
// after is beyond the newest revision (the database was restored from an
// older backup, so whatever the caller derived from later revisions is
// stale).
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]gatehouse.Change, error) {
	after = max(after, 0)
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.sequence(qctx); err != nil {
		return nil, s.err(ctx, "changes", err)
	}
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := s.pool.Query(qctx, changesSQL, after, lim)
	if err != nil {
		return nil, s.err(ctx, "changes", err)
	}
	defer rows.Close()
	var out []gatehouse.Change
	var pruned, last int64
	for rows.Next() {
		var rev pgtype.Int8
		var kind, key, op pgtype.Text
		var at pgtype.Timestamptz
		if err := rows.Scan(&pruned, &last, &rev, &kind, &key, &op, &at); err != nil {
			return nil, s.err(ctx, "changes", err)
		}
		if rev.Valid {
			out = append(out, gatehouse.Change{Rev: rev.Int64, Kind: gatehouse.ChangeKind(kind.String), Key: key.String, Op: op.String, At: goTime(at)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.err(ctx, "changes", err)
	}
	if after < pruned {
		return nil, fmt.Errorf("changes after %d: pruned up to %d: %w", after, pruned, gatehouse.ErrFeedGap)
	}
	if after > last {
		return nil, fmt.Errorf("changes after %d: the newest is %d: %w", after, last, gatehouse.ErrFeedGap)
	}
	return out, nil
}

// pruneChunk bounds the entries one transaction removes.
const pruneChunk = 10_000

// PruneChanges drops the oldest entries, up to the first one not older than
// t, always keeping the newest entry, and remembers how far it pruned. A
// large prune goes a chunk per transaction.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int, error) {
	qctx, cancel := s.ctx(ctx)
	last, err := s.sequence(qctx)
	cancel()
	if err != nil {
		return 0, s.err(ctx, "prune changes", err)
	}
	cut := last - 1
	total := 0
	first := true
	for {
		var n int64
		err := s.tx(ctx, "prune changes", true, func(ctx context.Context, tx pgx.Tx) error {
			if first {
				var keep pgtype.Int8
				if err := tx.QueryRow(ctx, "SELECT min(rev) FROM changes WHERE at >= $1", before).Scan(&keep); err != nil {
					return err
				}
				if keep.Valid {
					cut = min(cut, keep.Int64-1)
				}
			}
			var lo pgtype.Int8
			if err := tx.QueryRow(ctx, "SELECT min(rev) FROM changes").Scan(&lo); err != nil {
				return err
			}
			if !lo.Valid || lo.Int64 > cut {
				return nil
			}
			upTo := min(cut, lo.Int64+pruneChunk-1)
			tag, err := tx.Exec(ctx, "DELETE FROM changes WHERE rev <= $1", upTo)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			_, err = tx.Exec(ctx, "UPDATE meta SET value = greatest(value, $1) WHERE key = 'feed_pruned'", upTo)
			return err
		})
		first = false
		total += int(n)
		if err != nil || n == 0 {
			return total, err
		}
	}
}
