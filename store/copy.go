package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// RefreshToken is a stored refresh token: the SHA-256 of the token, the
// session it belongs to, and whether it has been spent.
type RefreshToken struct {
	Hash      []byte
	SessionID string
	Spent     bool
	// SpentAt is when it was spent; zero when not spent, or not known (spent
	// before the store kept the time).
	SpentAt time.Time
}

// SessionRecord is a session with its refresh tokens, as copied.
type SessionRecord struct {
	Session       gatehouse.Session
	RefreshTokens []RefreshToken
}

// Exporter is implemented by stores that can hand out what copying a store
// needs beyond Store: the refresh tokens of sessions.
type Exporter interface {
	// RefreshTokens returns the refresh tokens, spent or not, of the given
	// sessions.
	RefreshTokens(ctx context.Context, sessionIDs []string) ([]RefreshToken, error)
	// LastConsumerUID is the highest consumer uid ever handed out, deleted
	// consumers included (0 for none).
	LastConsumerUID(ctx context.Context) (int64, error)
}

// Importer is implemented by stores that can take records as they are, for
// copying into an empty store. Each call is one transaction; records whose
// key is taken fail it with ErrConflict.
type Importer interface {
	// ImportConsumers stores consumers under their own uids (key hashes
	// included) and moves the uid counter to at least lastUID and past the
	// highest, so that no uid the source ever handed out is handed out again.
	ImportConsumers(ctx context.Context, cs []gatehouse.Consumer, lastUID int64) error
	// ImportSessions stores sessions as they are, with their refresh tokens.
	ImportSessions(ctx context.Context, rs []SessionRecord) error
	// ImportKeys stores signing keys as they are, in any state.
	ImportKeys(ctx context.Context, ks []gatehouse.SigningKey) error
}

// ErrNotEmpty means that the target of a copy already holds data.
var ErrNotEmpty = errors.New("target store is not empty")

// CopyReport counts what Copy copied.
type CopyReport struct {
	Users, Roles, Catalog, Consumers, Sessions, RefreshTokens, Keys, Audit int
}

// copyChunk bounds the records of one import call.
const copyChunk = 500

// Contents lists what a store holds, e.g. "2 users, 1 consumer"; "" when
// it is empty. Failed sign-in counts and the change feed do not count.
func Contents(ctx context.Context, s Store) (string, error) {
	var parts []string
	add := func(n int, one, many string, err error) error {
		switch {
		case err != nil:
			return err
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
		return nil
	}
	n, err := s.CountUsers(ctx)
	if err := add(n, "user", "users", err); err != nil {
		return "", err
	}
	rs, err := s.ListRoles(ctx)
	if err := add(len(rs), "role", "roles", err); err != nil {
		return "", err
	}
	cat, err := s.ListCatalog(ctx)
	if err := add(len(cat), "catalog entry", "catalog entries", err); err != nil {
		return "", err
	}
	cs, err := s.ListConsumers(ctx)
	if err := add(len(cs), "consumer", "consumers", err); err != nil {
		return "", err
	}
	ks, err := s.ListKeys(ctx)
	if err := add(len(ks), "signing key", "signing keys", err); err != nil {
		return "", err
	}
	// Sessions and audit events are only checked for, not counted.
	xs, err := s.ListSessions(ctx, SessionFilter{Limit: 1})
	if err != nil {
		return "", err
	}
	if len(xs) > 0 {
		parts = append(parts, "sessions")
	}
	evs, err := s.ListAudit(ctx, AuditFilter{Limit: 1})
	if err != nil {
		return "", err
	}
	if len(evs) > 0 {
		parts = append(parts, "audit events")
	}
	return strings.Join(parts, ", "), nil
}

// Copy copies src into dst, which must be empty (ErrNotEmpty otherwise):
// users, roles, the catalog, consumers (uids and key hashes kept, the uid
// counter too), signing
// keys (still sealed with the master key that made them), the sessions
// active at now with their refresh-token hashes, and the audit trail (ids
// renumbered, order kept). src must implement Exporter and dst Importer.
// Consumer key hashes and sealed signing keys are only usable under the
// same master key. Failed sign-in counts and the change feed are not copied.
func Copy(ctx context.Context, dst, src Store, now time.Time) (CopyReport, error) {
	var rep CopyReport
	exp, ok := src.(Exporter)
	if !ok {
		return rep, fmt.Errorf("copy: the source store (%T) cannot export refresh tokens", src)
	}
	imp, ok := dst.(Importer)
	if !ok {
		return rep, fmt.Errorf("copy: the target store (%T) cannot import records", dst)
	}
	has, err := Contents(ctx, dst)
	if err != nil {
		return rep, fmt.Errorf("copy: read target: %w", err)
	}
	if has != "" {
		return rep, fmt.Errorf("%w: it holds %s", ErrNotEmpty, has)
	}

	cat, err := src.ListCatalog(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: read catalog: %w", err)
	}
	if err := dst.ImportCatalog(ctx, cat); err != nil {
		return rep, fmt.Errorf("copy: write catalog: %w", err)
	}
	rep.Catalog = len(cat)

	roles, err := src.ListRoles(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: read roles: %w", err)
	}
	for _, r := range roles {
		if err := dst.CreateRole(ctx, r); err != nil {
			return rep, fmt.Errorf("copy: write role %q: %w", r.Name, err)
		}
		rep.Roles++
	}

	users, err := src.ListUsers(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: read users: %w", err)
	}
	for _, u := range users {
		if err := dst.CreateUser(ctx, u); err != nil {
			return rep, fmt.Errorf("copy: write user %q: %w", u.Name, err)
		}
		rep.Users++
	}

	cs, err := src.ListConsumers(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: read consumers: %w", err)
	}
	lastUID, err := exp.LastConsumerUID(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: read consumer uids: %w", err)
	}
	if err := imp.ImportConsumers(ctx, nil, lastUID); err != nil {
		return rep, fmt.Errorf("copy: write consumers: %w", err)
	}
	if err := chunks(cs, func(part []gatehouse.Consumer) error { return imp.ImportConsumers(ctx, part, lastUID) }); err != nil {
		return rep, fmt.Errorf("copy: write consumers: %w", err)
	}
	rep.Consumers = len(cs)

	ks, err := src.ListKeys(ctx)
	if err != nil {
		return rep, fmt.Errorf("copy: read signing keys: %w", err)
	}
	if err := imp.ImportKeys(ctx, ks); err != nil {
		return rep, fmt.Errorf("copy: write signing keys: %w", err)
	}
	rep.Keys = len(ks)

	xs, err := src.ListSessions(ctx, SessionFilter{ActiveAt: now})
	if err != nil {
		return rep, fmt.Errorf("copy: read sessions: %w", err)
	}
	err = chunks(xs, func(part []gatehouse.Session) error {
		ids := make([]string, len(part))
		recs := make([]SessionRecord, len(part))
		at := map[string]int{}
		for i, x := range part {
			ids[i], recs[i].Session, at[x.ID] = x.ID, x, i
		}
		ts, err := exp.RefreshTokens(ctx, ids)
		if err != nil {
			return fmt.Errorf("read refresh tokens: %w", err)
		}
		for _, t := range ts {
			if i, ok := at[t.SessionID]; ok {
				recs[i].RefreshTokens = append(recs[i].RefreshTokens, t)
			}
		}
		if err := imp.ImportSessions(ctx, recs); err != nil {
			return err
		}
		rep.Sessions += len(part)
		rep.RefreshTokens += len(ts)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("copy: sessions: %w", err)
	}

	for after := int64(0); ; {
		evs, err := src.ListAudit(ctx, AuditFilter{AfterID: after, Limit: copyChunk})
		if err != nil {
			return rep, fmt.Errorf("copy: read audit: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		after = evs[len(evs)-1].ID
		if err := dst.AppendAudit(ctx, evs...); err != nil {
			return rep, fmt.Errorf("copy: write audit: %w", err)
		}
		rep.Audit += len(evs)
	}
	return rep, nil
}

// chunks calls fn with successive parts of xs of at most copyChunk items.
func chunks[T any](xs []T, fn func([]T) error) error {
	for len(xs) > 0 {
		n := min(len(xs), copyChunk)
		if err := fn(xs[:n]); err != nil {
			return err
		}
		xs = xs[n:]
	}
	return nil
}
