package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

const keyCols = "kid, algorithm, public, private, state, created_at, activated_at, retired_at, not_after"

func scanKey(r sqlrow.Scanner) (gatehouse.SigningKey, error) {
	var k gatehouse.SigningKey
	var state string
	var created, activated, retired, notAfter sql.NullInt64
	err := r.Scan(&k.KID, &k.Algorithm, &k.Public, &k.Private, &state, &created, &activated, &retired, &notAfter)
	k.State = gatehouse.KeyState(state)
	k.CreatedAt, k.ActivatedAt, k.RetiredAt, k.NotAfter = goTime(created), goTime(activated), goTime(retired), goTime(notAfter)
	return k, err
}

func insertKey(tx *wtx, k gatehouse.SigningKey) error {
	_, err := tx.exec("INSERT INTO signing_keys ("+keyCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		k.KID, k.Algorithm, k.Public, k.Private, string(k.State),
		dbTime(k.CreatedAt), dbTime(k.ActivatedAt), dbTime(k.RetiredAt), dbTime(k.NotAfter))
	if err != nil {
		return writeErr(fmt.Sprintf("key %q", k.KID), err)
	}
	return writeErr("key", tx.change(gatehouse.ChangeKey, k.KID, gatehouse.OpCreate))
}

// ListKeys returns every key, oldest (by CreatedAt) first.
func (s *Store) ListKeys(ctx context.Context) ([]gatehouse.SigningKey, error) {
	rows, err := s.query(ctx, "SELECT "+keyCols+" FROM signing_keys ORDER BY created_at, seq")
	if err != nil {
		return nil, s.readErr("list keys", err)
	}
	defer rows.Close()
	var out []gatehouse.SigningKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.readErr("list keys", err)
		}
		out = append(out, k)
	}
	return out, s.readErr("list keys", rows.Err())
}

// InitKeys stores active and next (their states forced to active and next)
// as the first keys of their algorithm; ErrConflict if it already has an
// active key.
func (s *Store) InitKeys(ctx context.Context, active, next gatehouse.SigningKey) error {
	alg := active.Algorithm
	if next.Algorithm != alg {
		return fmt.Errorf("sqlite: init keys: active key is %s, next key is %s", alg, next.Algorithm)
	}
	active.State, next.State = gatehouse.KeyActive, gatehouse.KeyNext
	return s.write(ctx, func(tx *wtx) error {
		var n int
		if err := tx.queryRow("SELECT count(*) FROM signing_keys WHERE algorithm = ? AND state = 'active'", alg).Scan(&n); err != nil {
			return writeErr("init keys", err)
		}
		if n > 0 {
			return fmt.Errorf("init %s keys: an active key exists: %w", alg, gatehouse.ErrConflict)
		}
		// Checked before the first write (see op).
		if active.KID == next.KID {
			return fmt.Errorf("init %s keys: both keys are %q: %w", alg, next.KID, gatehouse.ErrConflict)
		}
		if err := tx.queryRow("SELECT count(*) FROM signing_keys WHERE kid IN (?, ?) OR (algorithm = ? AND state = 'next')",
			active.KID, next.KID, alg).Scan(&n); err != nil {
			return writeErr("init keys", err)
		}
		if n > 0 {
			return fmt.Errorf("init %s keys: a key id is taken or a next key exists: %w", alg, gatehouse.ErrConflict)
		}
		if err := insertKey(tx, active); err != nil {
			return err
		}
		return insertKey(tx, next)
	})
}

// RotateKeys promotes the next key of expectActive's algorithm, retires
// expectActive and stores newNext as the next key.
func (s *Store) RotateKeys(ctx context.Context, expectActive string, newNext gatehouse.SigningKey, at, retireUntil time.Time) error {
	newNext.State = gatehouse.KeyNext
	return s.write(ctx, func(tx *wtx) error {
		var alg string
		err := tx.queryRow("SELECT algorithm FROM signing_keys WHERE kid = ? AND state = 'active'", expectActive).Scan(&alg)
		if err == sql.ErrNoRows {
			return fmt.Errorf("rotate keys: %q is not the active key: %w", expectActive, gatehouse.ErrConflict)
		}
		if err != nil {
			return writeErr("rotate keys", err)
		}
		if newNext.Algorithm != alg {
			return fmt.Errorf("sqlite: rotate keys: new next key is %s, the active key %s", newNext.Algorithm, alg)
		}
		var next string
		err = tx.queryRow("SELECT kid FROM signing_keys WHERE algorithm = ? AND state = 'next'", alg).Scan(&next)
		if err == sql.ErrNoRows {
			return fmt.Errorf("rotate keys: no next %s key: %w", alg, gatehouse.ErrNotFound)
		}
		if err != nil {
			return writeErr("rotate keys", err)
		}
		var taken int
		if err := tx.queryRow("SELECT count(*) FROM signing_keys WHERE kid = ?", newNext.KID).Scan(&taken); err != nil {
			return writeErr("rotate keys", err)
		}
		if taken > 0 {
			return fmt.Errorf("rotate keys: key id %q is taken: %w", newNext.KID, gatehouse.ErrConflict)
		}
		// Retire before promoting: at most one active key per algorithm at any
		// statement boundary (a unique index holds it).
		if _, err := tx.exec("UPDATE signing_keys SET state = 'retired', retired_at = ?, not_after = ? WHERE kid = ?",
			dbTime(at), dbTime(retireUntil), expectActive); err != nil {
			return writeErr("retire key", err)
		}
		if _, err := tx.exec("UPDATE signing_keys SET state = 'active', activated_at = ? WHERE kid = ?", dbTime(at), next); err != nil {
			return writeErr("promote key", err)
		}
		for _, kid := range []string{expectActive, next} {
			if err := tx.change(gatehouse.ChangeKey, kid, gatehouse.OpUpdate); err != nil {
				return writeErr("rotate keys", err)
			}
		}
		return insertKey(tx, newNext)
	})
}

// RevokeKey withdraws kid at once (see store.Keys).
func (s *Store) RevokeKey(ctx context.Context, kid string, newNext gatehouse.SigningKey, at, keepUntil time.Time) (gatehouse.SigningKey, error) {
	newNext.State = gatehouse.KeyNext
	var was gatehouse.SigningKey
	err := s.write(ctx, func(tx *wtx) error {
		k, err := scanKey(tx.queryRow("SELECT "+keyCols+" FROM signing_keys WHERE kid = ?", kid))
		if err == sql.ErrNoRows {
			return fmt.Errorf("revoke key %q: %w", kid, gatehouse.ErrNotFound)
		}
		if err != nil {
			return writeErr("revoke key", err)
		}
		was = k
		if k.State == gatehouse.KeyRevoked {
			return nil
		}
		// Everything that can refuse is checked before the first write (see op).
		replace := k.State == gatehouse.KeyActive || k.State == gatehouse.KeyNext
		var next string
		if replace {
			if newNext.Algorithm != k.Algorithm {
				return fmt.Errorf("sqlite: revoke key: new next key is %s, the revoked key %s", newNext.Algorithm, k.Algorithm)
			}
			var taken int
			if err := tx.queryRow("SELECT count(*) FROM signing_keys WHERE kid = ?", newNext.KID).Scan(&taken); err != nil {
				return writeErr("revoke key", err)
			}
			if taken > 0 {
				return fmt.Errorf("revoke key: key id %q is taken: %w", newNext.KID, gatehouse.ErrConflict)
			}
		}
		if k.State == gatehouse.KeyActive {
			err := tx.queryRow("SELECT kid FROM signing_keys WHERE algorithm = ? AND state = 'next'", k.Algorithm).Scan(&next)
			if err == sql.ErrNoRows {
				return fmt.Errorf("revoke key: no next %s key to take over: %w", k.Algorithm, gatehouse.ErrNotFound)
			}
			if err != nil {
				return writeErr("revoke key", err)
			}
		}
		notAfter := keepUntil
		if k.State == gatehouse.KeyRetired {
			notAfter = k.NotAfter
		}
		if _, err := tx.exec("UPDATE signing_keys SET state = 'revoked', private = NULL, retired_at = coalesce(retired_at, ?), not_after = ? WHERE kid = ?",
			dbTime(at), dbTime(notAfter), kid); err != nil {
			return writeErr("revoke key", err)
		}
		if err := tx.change(gatehouse.ChangeKey, kid, gatehouse.OpUpdate); err != nil {
			return writeErr("revoke key", err)
		}
		if next != "" {
			if _, err := tx.exec("UPDATE signing_keys SET state = 'active', activated_at = ? WHERE kid = ?", dbTime(at), next); err != nil {
				return writeErr("promote key", err)
			}
			if err := tx.change(gatehouse.ChangeKey, next, gatehouse.OpUpdate); err != nil {
				return writeErr("revoke key", err)
			}
		}
		if replace {
			return insertKey(tx, newNext)
		}
		return nil
	})
	return was, err
}

// DeleteRetiredKeys removes retired and revoked keys whose NotAfter is
// before t. A key without NotAfter is kept.
func (s *Store) DeleteRetiredKeys(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx *wtx) error {
		kids, err := tx.strings("DELETE FROM signing_keys WHERE state IN ('retired', 'revoked') AND not_after < ? RETURNING kid", before.UnixMicro())
		if err != nil {
			return writeErr("delete keys", err)
		}
		for _, kid := range kids {
			if err := tx.change(gatehouse.ChangeKey, kid, gatehouse.OpDelete); err != nil {
				return writeErr("delete keys", err)
			}
		}
		n = len(kids)
		return nil
	})
	return n, err
}
