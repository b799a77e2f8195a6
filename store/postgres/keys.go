package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gatehouse/gatehouse"
)

const keyCols = "kid, algorithm, public, private, state, created_at, activated_at, retired_at, not_after"

func scanKey(r pgx.Row) (gatehouse.SigningKey, error) {
	var k gatehouse.SigningKey
	var state string
	var created, activated, retired, notAfter pgtype.Timestamptz
	err := r.Scan(&k.KID, &k.Algorithm, &k.Public, &k.Private, &state, &created, &activated, &retired, &notAfter)
	k.State = gatehouse.KeyState(state)
	k.CreatedAt, k.ActivatedAt, k.RetiredAt, k.NotAfter = goTime(created), goTime(activated), goTime(retired), goTime(notAfter)
	return k, err
}

func insertKey(ctx context.Context, tx pgx.Tx, k gatehouse.SigningKey) error {
	if _, err := tx.Exec(ctx, "INSERT INTO signing_keys ("+keyCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		k.KID, k.Algorithm, k.Public, k.Private, string(k.State),
		dbTime(k.CreatedAt), dbTime(k.ActivatedAt), dbTime(k.RetiredAt), dbTime(k.NotAfter)); err != nil {
		return err
	}
	return change(ctx, tx, gatehouse.ChangeKey, k.KID, gatehouse.OpCreate)
}

// ListKeys returns every key, oldest (by CreatedAt) first.
func (s *Store) ListKeys(ctx context.Context) ([]gatehouse.SigningKey, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.pool.Query(qctx, "SELECT "+keyCols+" FROM signing_keys ORDER BY created_at NULLS FIRST, seq")
	if err != nil {
		return nil, s.err(ctx, "list keys", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gatehouse.SigningKey, error) { return scanKey(r) })
	return out, s.err(ctx, "list keys", err)
}

// InitKeys stores active and next (their states forced to active and next)
// as the first keys of their algorithm; ErrConflict if it already has an
// active key. Of replicas racing, the unique index on the active key of an
// algorithm lets one insert win; the others wait for it and then conflict.
func (s *Store) InitKeys(ctx context.Context, active, next gatehouse.SigningKey) error {
	alg := active.Algorithm
	if next.Algorithm != alg {
		return fmt.Errorf("postgres: init keys: active key is %s, next key is %s", alg, next.Algorithm)
	}
	if active.KID == next.KID {
		return fmt.Errorf("init %s keys: both keys are %q: %w", alg, next.KID, gatehouse.ErrConflict)
	}
	active.State, next.State = gatehouse.KeyActive, gatehouse.KeyNext
	return s.tx(ctx, "init "+alg+" keys", true, func(ctx context.Context, tx pgx.Tx) error {
		if err := insertKey(ctx, tx, active); err != nil {
			return err
		}
		return insertKey(ctx, tx, next)
	})
}

// RotateKeys promotes the next key of expectActive's algorithm, retires
// expectActive and stores newNext as the next key. It locks expectActive
// while it is the active key: a concurrent rotation waits, then finds it
// retired and fails with ErrConflict.
func (s *Store) RotateKeys(ctx context.Context, expectActive string, newNext gatehouse.SigningKey, at, retireUntil time.Time) error {
	newNext.State = gatehouse.KeyNext
	return s.tx(ctx, "rotate keys", true, func(ctx context.Context, tx pgx.Tx) error {
		var alg string
		err := tx.QueryRow(ctx, "SELECT algorithm FROM signing_keys WHERE kid = $1 AND state = 'active' FOR UPDATE", expectActive).Scan(&alg)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%q is not the active key: %w", expectActive, gatehouse.ErrConflict)
		}
		if err != nil {
			return err
		}
		if newNext.Algorithm != alg {
			return fmt.Errorf("postgres: rotate keys: new next key is %s, the active key %s", newNext.Algorithm, alg)
		}
		var next string
		err = tx.QueryRow(ctx, "SELECT kid FROM signing_keys WHERE algorithm = $1 AND state = 'next' FOR UPDATE", alg).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no next %s key: %w", alg, gatehouse.ErrNotFound)
		}
		if err != nil {
			return err
		}
		// Retire before promoting: the unique index allows one active key per
		// algorithm after every statement.
		if _, err := tx.Exec(ctx, "UPDATE signing_keys SET state = 'retired', retired_at = $1, not_after = $2 WHERE kid = $3",
			dbTime(at), dbTime(retireUntil), expectActive); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE signing_keys SET state = 'active', activated_at = $1 WHERE kid = $2", dbTime(at), next); err != nil {
			return err
		}
		for _, kid := range []string{expectActive, next} {
			if err := change(ctx, tx, gatehouse.ChangeKey, kid, gatehouse.OpUpdate); err != nil {
				return err
			}
		}
		return insertKey(ctx, tx, newNext)
	})
}

// RevokeKey withdraws kid at once (see store.Keys). It locks the key, and
// the next key it promotes, so that a concurrent rotation or revocation
// waits and then sees the outcome.
func (s *Store) RevokeKey(ctx context.Context, kid string, newNext gatehouse.SigningKey, at, keepUntil time.Time) (gatehouse.SigningKey, error) {
	newNext.State = gatehouse.KeyNext
	var was gatehouse.SigningKey
	err := s.tx(ctx, "revoke key", true, func(ctx context.Context, tx pgx.Tx) error {
		k, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyCols+" FROM signing_keys WHERE kid = $1 FOR UPDATE", kid))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("key %q: %w", kid, gatehouse.ErrNotFound)
		}
		if err != nil {
			return err
		}
		was = k
		if k.State == gatehouse.KeyRevoked {
			return nil
		}
		replace := k.State == gatehouse.KeyActive || k.State == gatehouse.KeyNext
		if replace && newNext.Algorithm != k.Algorithm {
			return fmt.Errorf("postgres: revoke key: new next key is %s, the revoked key %s", newNext.Algorithm, k.Algorithm)
		}
		var next string
		if k.State == gatehouse.KeyActive {
			err := tx.QueryRow(ctx, "SELECT kid FROM signing_keys WHERE algorithm = $1 AND state = 'next' FOR UPDATE", k.Algorithm).Scan(&next)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("no next %s key to take over: %w", k.Algorithm, gatehouse.ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		notAfter := keepUntil
		if k.State == gatehouse.KeyRetired {
			notAfter = k.NotAfter
		}
		if _, err := tx.Exec(ctx, "UPDATE signing_keys SET state = 'revoked', private = NULL, retired_at = coalesce(retired_at, $1), not_after = $2 WHERE kid = $3",
			dbTime(at), dbTime(notAfter), kid); err != nil {
			return err
		}
		if err := change(ctx, tx, gatehouse.ChangeKey, kid, gatehouse.OpUpdate); err != nil {
			return err
		}
		if next != "" {
			if _, err := tx.Exec(ctx, "UPDATE signing_keys SET state = 'active', activated_at = $1 WHERE kid = $2", dbTime(at), next); err != nil {
				return err
			}
			if err := change(ctx, tx, gatehouse.ChangeKey, next, gatehouse.OpUpdate); err != nil {
				return err
			}
		}
		if replace {
			return insertKey(ctx, tx, newNext)
		}
		return nil
	})
	return was, err
}

// DeleteRetiredKeys removes retired and revoked keys whose NotAfter is
// before t. A key without NotAfter is kept.
func (s *Store) DeleteRetiredKeys(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.tx(ctx, "delete keys", true, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, "WITH gone AS (DELETE FROM signing_keys WHERE state IN ('retired', 'revoked') AND not_after < $1 RETURNING kid), "+
			"feed AS (INSERT INTO changes (kind, key, op) SELECT 'key', kid, 'delete' FROM gone) "+
			"SELECT count(*) FROM gone", before).Scan(&n)
	})
	return n, err
}
