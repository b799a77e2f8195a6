package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// migrations[i] takes the schema from version i to i+1. The version lives in
// the file header (PRAGMA user_version). Never edit a released migration;
// append a new one.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
-- feed_pruned: the highest revision PruneChanges has removed.
INSERT INTO meta (key, value) VALUES ('feed_pruned', 0);

CREATE TABLE users (
	name_key      TEXT PRIMARY KEY, -- lower-cased name
	name          TEXT NOT NULL,
	identity      TEXT NOT NULL,
	role          TEXT NOT NULL,
	allow_odata   INTEGER NOT NULL,
	admin         INTEGER NOT NULL,
	deleted       INTEGER NOT NULL,
	password_hash TEXT NOT NULL,
	created_at    INTEGER,
	updated_at    INTEGER
) WITHOUT ROWID;

CREATE TABLE roles (
	name_key         TEXT PRIMARY KEY,
	name             TEXT NOT NULL,
	allow_all        INTEGER NOT NULL,
	allow_all_tables INTEGER NOT NULL,
	allow_all_views  INTEGER NOT NULL,
	created_at       INTEGER,
	updated_at       INTEGER
) WITHOUT ROWID;

CREATE TABLE role_entries (
	role_key   TEXT NOT NULL REFERENCES roles (name_key) ON DELETE CASCADE,
	object_key TEXT NOT NULL,
	pos        INTEGER NOT NULL, -- keeps the entries in the order given
	object     TEXT NOT NULL,
	kind       TEXT NOT NULL,
	allow      INTEGER NOT NULL,
	PRIMARY KEY (role_key, object_key)
) WITHOUT ROWID;

CREATE TABLE catalog (
	name_key TEXT PRIMARY KEY,
	name     TEXT NOT NULL,
	kind     TEXT NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT: a deleted consumer's uid is never handed out again.
CREATE TABLE consumers (
	uid         INTEGER PRIMARY KEY AUTOINCREMENT,
	name_key    TEXT NOT NULL UNIQUE,
	name        TEXT NOT NULL,
	type        TEXT NOT NULL,
	sdk_access  INTEGER NOT NULL,
	lifetime_ns INTEGER NOT NULL,
	scope       TEXT NOT NULL,
	grants      TEXT NOT NULL, -- JSON array
	disabled    INTEGER NOT NULL,
	key_hash    BLOB UNIQUE,   -- NULL when the consumer has no key
	created_at  INTEGER,
	updated_at  INTEGER
);

CREATE TABLE sessions (
	seq          INTEGER PRIMARY KEY, -- insertion order, breaks created_at ties
	id           TEXT NOT NULL UNIQUE,
	username     TEXT NOT NULL,
	username_key TEXT NOT NULL, -- lower-cased username
	consumer_uid INTEGER NOT NULL,
	flow         TEXT NOT NULL,
	scope        TEXT NOT NULL,
	created_at   INTEGER,
	expires_at   INTEGER,
	ended_at     INTEGER,
	end_reason   TEXT NOT NULL,
	remote_addr  TEXT NOT NULL
);
-- Sessions not yet ended, by principal (consumer_uid, username_key). The
-- cap of CreateSession reads it alone (expires_at is in it); EndSessions by
-- consumer walks a prefix of it, by username one range per consumer. Every
-- index costs each token issued, so sessions have few.
CREATE INDEX sessions_open ON sessions (consumer_uid, username_key, created_at, expires_at) WHERE ended_at IS NULL;
-- When a session stopped being usable (see goneAt), for DeleteSessions; with
-- ended_at, it also counts the active ones.
CREATE INDEX sessions_gone ON sessions (min(coalesce(expires_at, -9223372036854775807), coalesce(ended_at, expires_at, -9223372036854775807)), ended_at);

CREATE TABLE refresh_tokens (
	hash       BLOB PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	spent      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
	seq          INTEGER PRIMARY KEY,
	kid          TEXT NOT NULL UNIQUE,
	algorithm    TEXT NOT NULL,
	public       BLOB,
	private      BLOB,
	state        TEXT NOT NULL,
	created_at   INTEGER,
	activated_at INTEGER,
	retired_at   INTEGER,
	not_after    INTEGER
);
-- At most one active and one next key per algorithm, whoever writes.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (algorithm) WHERE state = 'next';

CREATE TABLE audit (
	id      INTEGER PRIMARY KEY,
	at      INTEGER,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	target  TEXT NOT NULL,
	outcome TEXT NOT NULL,
	remote  TEXT NOT NULL,
	detail  TEXT NOT NULL
);

CREATE TABLE auth_failures (
	key TEXT NOT NULL,
	at  INTEGER NOT NULL
);
CREATE INDEX auth_failures_key ON auth_failures (key, at);

CREATE TABLE changes (
	rev  INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	op   TEXT NOT NULL,
	at   INTEGER NOT NULL
);
`,
	// 2: open lockouts, so that their end is audited once, by one process.
	`
CREATE TABLE lockouts (
	key   TEXT PRIMARY KEY,
	since INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// 3: counted audit rows (refusals) and the retention sweep.
	`
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
-- The key a counted row is found by; NULL for ordinary events.
ALTER TABLE audit ADD COLUMN count_key TEXT;
CREATE UNIQUE INDEX audit_count_key ON audit (count_key) WHERE count_key IS NOT NULL;
CREATE INDEX audit_at ON audit (at);
`,
	// 4: when a refresh token was spent, for the reuse grace.
	`
ALTER TABLE refresh_tokens ADD COLUMN spent_at INTEGER;
`,
	// 5: the request behind an audit event.
	`
ALTER TABLE audit ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
`,
}

// currentVersion is the schema version this build migrates to.
var currentVersion = len(migrations)

// checkVersion refuses what mode may not do to a file at schema version v:
// version 0 is a file without a store.
func checkVersion(v int, mode store.OpenMode) error {
	switch {
	case v > currentVersion:
		return fmt.Errorf("sqlite: schema version %d, this build knows up to %d: %w", v, currentVersion, gatehouse.ErrSchemaTooNew)
	case v == 0 && mode == store.OpenExisting:
		return fmt.Errorf("sqlite: the file holds no store: %w", gatehouse.ErrNoStore)
	case v > 0 && v < currentVersion && mode != store.OpenMigrate:
		return fmt.Errorf("sqlite: schema version %d, this build needs %d: %w", v, currentVersion, gatehouse.ErrSchemaOld)
	}
	return nil
}

// readVersion reads the schema version recorded in the file header.
func readVersion(ctx context.Context, conn *sql.Conn) (int, error) {
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, unavailable("read schema version", err)
	}
	return v, nil
}

// migrate brings the file up to currentVersion in one write transaction, so
// that of several processes opening a new file at once one migrates and the
// others find it done. It returns the version it found; mode says whether
// it may create a store (from version 0) or upgrade one.
func migrate(ctx context.Context, conn *sql.Conn, deadline time.Time, mode store.OpenMode) (int, error) {
	v, err := readVersion(ctx, conn)
	if err != nil {
		return 0, err
	}
	if err := checkVersion(v, mode); err != nil || v == currentVersion {
		return v, err
	}
	if err := retryBusy(ctx, deadline, func() error {
		_, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		return err
	}); err != nil {
		return v, unavailable("migrate: begin", err)
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// Read again under the lock: another process may have migrated meanwhile.
	if v, err = readVersion(ctx, conn); err != nil {
		return 0, err
	}
	if err := checkVersion(v, mode); err != nil {
		return v, err
	}
	if v == currentVersion {
		_, err := conn.ExecContext(ctx, "COMMIT")
		done = err == nil
		if err != nil {
			return v, unavailable("migrate: commit", err)
		}
		return v, nil
	}
	for i := v; i < currentVersion; i++ {
		if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
			return v, fmt.Errorf("sqlite: migration %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no bound parameters; the value is this build's constant.
	if _, err := conn.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(currentVersion)); err != nil {
		return v, fmt.Errorf("sqlite: record schema version: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return v, unavailable("migrate: commit", err)
	}
	done = true
	return v, nil
}
