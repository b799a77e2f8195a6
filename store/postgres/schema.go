package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// migrations[i] takes the schema from version i to i+1; each runs in one
// transaction with the version it reaches. Never edit a released migration;
// append a new one.
//
// Text that is sorted or compared by range (names, actions) is COLLATE "C":
// byte order, as the embedded store sorts, whatever the database's locale.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE gatehouse_schema (
	version integer NOT NULL
);
INSERT INTO gatehouse_schema (version) VALUES (0);

CREATE TABLE meta (
	key   text COLLATE "C" PRIMARY KEY,
	value bigint NOT NULL
);
-- feed_pruned: the highest revision PruneChanges has removed.
-- consumer_uid: the last consumer uid handed out.
INSERT INTO meta (key, value) VALUES ('feed_pruned', 0), ('consumer_uid', 0);

CREATE TABLE users (
	name_key      text COLLATE "C" PRIMARY KEY, -- lower-cased name
	name          text COLLATE "C" NOT NULL,
	identity      text NOT NULL,
	role          text NOT NULL,
	allow_odata   boolean NOT NULL,
	admin         boolean NOT NULL,
	deleted       boolean NOT NULL,
	password_hash text NOT NULL,
	created_at    timestamptz,
	updated_at    timestamptz
);

CREATE TABLE roles (
	name_key         text COLLATE "C" PRIMARY KEY,
	name             text COLLATE "C" NOT NULL,
	allow_all        boolean NOT NULL,
	allow_all_tables boolean NOT NULL,
	allow_all_views  boolean NOT NULL,
	created_at       timestamptz,
	updated_at       timestamptz
);

CREATE TABLE role_entries (
	role_key   text COLLATE "C" NOT NULL REFERENCES roles (name_key) ON DELETE CASCADE,
	object_key text COLLATE "C" NOT NULL,
	pos        integer NOT NULL, -- keeps the entries in the order given
	object     text NOT NULL,
	kind       text NOT NULL,
	allow      boolean NOT NULL,
	PRIMARY KEY (role_key, object_key)
);

CREATE TABLE catalog (
	name_key text COLLATE "C" PRIMARY KEY,
	name     text COLLATE "C" NOT NULL,
	kind     text NOT NULL
);

CREATE TABLE consumers (
	uid         bigint PRIMARY KEY, -- from meta consumer_uid, never reused
	name_key    text COLLATE "C" NOT NULL UNIQUE,
	name        text NOT NULL,
	type        text NOT NULL,
	sdk_access  boolean NOT NULL,
	lifetime_ns bigint NOT NULL,
	scope       text NOT NULL,
	grants      text[] NOT NULL,
	disabled    boolean NOT NULL,
	key_hash    bytea UNIQUE, -- NULL when the consumer has no key
	created_at  timestamptz,
	updated_at  timestamptz
);

CREATE TABLE sessions (
	seq          bigserial PRIMARY KEY, -- insertion order, breaks created_at ties
	id           text COLLATE "C" NOT NULL UNIQUE,
	username     text NOT NULL,
	username_key text COLLATE "C" NOT NULL, -- lower-cased username
	consumer_uid bigint NOT NULL,
	flow         text NOT NULL,
	scope        text NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	ended_at     timestamptz,
	end_reason   text NOT NULL,
	remote_addr  text NOT NULL
);
-- Sessions not yet ended, by principal: the cap of CreateSession, and
-- EndSessions by consumer. Every index costs each token issued, so
-- sessions have few.
CREATE INDEX sessions_open ON sessions (consumer_uid, username_key, seq) WHERE ended_at IS NULL;

-- For each capped principal, a seq no session the cap may still count is
-- below. Entries of sessions the cap ended stay in sessions_open until
-- vacuum; a busy principal would have the cap walk thousands of them on
-- every token. The cap starts its scan here instead. Written only by
-- capped CreateSession calls, under the principal's lock; each lowers it to
-- its own session at least, so sessions committed later are never below it.
-- (Uncapped creates do not take part: do not run replicas with and without
-- --max-sessions side by side.)
CREATE TABLE principals (
	consumer_uid bigint NOT NULL,
	username_key text COLLATE "C" NOT NULL,
	min_seq      bigint NOT NULL,
	PRIMARY KEY (consumer_uid, username_key)
);
-- When a session stopped being usable (the earlier of its expiry and its
-- end; long ago without an expiry), for DeleteSessions. The expression
-- must match goneAt in sessions.go exactly for the index to be used.
CREATE INDEX sessions_gone ON sessions ((least(coalesce(expires_at, '-infinity'::timestamptz), ended_at)));

CREATE TABLE refresh_tokens (
	hash       bytea PRIMARY KEY,
	session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	spent      boolean NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
	seq          bigserial PRIMARY KEY,
	kid          text COLLATE "C" NOT NULL UNIQUE,
	algorithm    text COLLATE "C" NOT NULL,
	public       bytea,
	private      bytea,
	state        text NOT NULL,
	created_at   timestamptz,
	activated_at timestamptz,
	retired_at   timestamptz,
	not_after    timestamptz
);
-- At most one active and one next key per algorithm, whichever replica writes.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (algorithm) WHERE state = 'next';

CREATE TABLE audit (
	id      bigserial PRIMARY KEY,
	at      timestamptz,
	actor   text NOT NULL,
	action  text COLLATE "C" NOT NULL,
	target  text NOT NULL,
	outcome text NOT NULL,
	remote  text NOT NULL,
	detail  text NOT NULL
);

CREATE TABLE auth_failures (
	key text COLLATE "C" NOT NULL,
	at  timestamptz NOT NULL
);
CREATE INDEX auth_failures_key ON auth_failures (key, at);

-- The change feed. Writers insert rows with rev NULL; feed_sequence numbers
-- them in commit order (see the package documentation).
CREATE TABLE changes (
	id   bigserial PRIMARY KEY, -- insertion order within a transaction
	rev  bigint UNIQUE,
	kind text NOT NULL,
	key  text NOT NULL,
	op   text NOT NULL,
	at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_pending ON changes (id) WHERE rev IS NULL;

-- feed_sequence numbers the committed feed rows that have no revision yet,
-- continuing from the highest, and returns the newest revision. lock_key
-- is the feed's advisory lock: one numbering at a time, so each starts
-- from what the previous one committed. Call it in a transaction of its
-- own at READ COMMITTED, so that each statement sees the latest commits.
CREATE FUNCTION feed_sequence(lock_key bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
	base bigint;
BEGIN
	IF EXISTS (SELECT 1 FROM changes WHERE rev IS NULL) THEN
		PERFORM pg_advisory_xact_lock(lock_key);
		SELECT greatest(coalesce(max(c.rev), 0), (SELECT value FROM meta WHERE key = 'feed_pruned'))
			INTO base FROM changes c;
		UPDATE changes c SET rev = base + p.n
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM changes WHERE rev IS NULL) p
		WHERE c.id = p.id;
	END IF;
	RETURN greatest((SELECT coalesce(max(rev), 0) FROM changes), (SELECT value FROM meta WHERE key = 'feed_pruned'));
END
$fn$;
`,
	// 2: open lockouts, so that their end is audited once, by one replica.
	`
CREATE TABLE lockouts (
	key   text COLLATE "C" PRIMARY KEY,
	since timestamptz NOT NULL
);
`,
	// 3: counted audit rows (refusals) and the retention sweep.
	`
ALTER TABLE audit ADD COLUMN count bigint NOT NULL DEFAULT 1;
-- The key a counted row is found by; NULL for ordinary events.
ALTER TABLE audit ADD COLUMN count_key text COLLATE "C";
CREATE UNIQUE INDEX audit_count_key ON audit (count_key) WHERE count_key IS NOT NULL;
CREATE INDEX audit_at ON audit (at);
`,
	// 4: when a refresh token was spent, for the reuse grace.
	`
ALTER TABLE refresh_tokens ADD COLUMN spent_at timestamptz;
`,
	// 5: the request behind an audit event.
	`
ALTER TABLE audit ADD COLUMN request_id text NOT NULL DEFAULT '';
`,
	// 6: tell the replicas that LISTEN on gatehouse_feed when the feed has
	// new entries (the payload is the schema; see Store.Notify), at the
	// commit that adds them. Session creates (which older versions wrote to
	// the feed) are not announced: no replica acts on them. Nor are the
	// writes of a transaction that sets gatehouse.quiet_feed (the sessions a
	// cap ends, see creates.go): NOTIFY serializes the commits of the
	// transactions that send one, cluster-wide.
	`
CREATE FUNCTION changes_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_notify('gatehouse_feed', TG_TABLE_SCHEMA);
	RETURN NULL;
END
$fn$;
CREATE TRIGGER changes_notify AFTER INSERT ON changes FOR EACH ROW
	WHEN ((NEW.kind <> 'session' OR NEW.op <> 'create') AND current_setting('gatehouse.quiet_feed', true) IS DISTINCT FROM 'on')
	EXECUTE FUNCTION changes_notify();
`,
}

// currentVersion is the schema version this build migrates to.
var currentVersion = len(migrations)

// CurrentVersion is the schema version this build migrates to.
func CurrentVersion() int { return currentVersion }

// readVersion reads the recorded version; 0 when there is no schema yet.
func readVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT version FROM gatehouse_schema").Scan(&v)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") { // no such table / schema
		return 0, nil
	}
	return v, err
}

// checkVersion refuses what mode may not do to a schema at version v:
// version 0 is a schema without a store.
func checkVersion(v int, mode store.OpenMode) error {
	switch {
	case v > currentVersion:
		return fmt.Errorf("postgres: schema version %d, this build knows up to %d: %w", v, currentVersion, gatehouse.ErrSchemaTooNew)
	case v == 0 && mode == store.OpenExisting:
		return fmt.Errorf("postgres: the schema holds no store: %w", gatehouse.ErrNoStore)
	case v > 0 && v < currentVersion && mode != store.OpenMigrate:
		return fmt.Errorf("postgres: schema version %d, this build needs %d: %w", v, currentVersion, gatehouse.ErrSchemaOld)
	}
	return nil
}

// migrate brings the schema up to currentVersion and returns the version it
// found; mode says whether it may create a store (from version 0) or
// upgrade one. Several processes may call it at once: they take turns on
// an advisory lock, and those that come second find the work done.
func (s *Store) migrate(ctx context.Context, schema string, mode store.OpenMode) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.err(ctx, "migrate: connect", err)
	}
	defer conn.Release()
	v, err := readVersion(ctx, conn)
	if err != nil {
		return 0, s.err(ctx, "migrate: read version", err)
	}
	if err := checkVersion(v, mode); err != nil || v == currentVersion {
		return v, err
	}
	var path string
	if err := conn.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&path); err != nil {
		return 0, s.err(ctx, "migrate: read search_path", err)
	}
	key := lockKey(path, "migrate", "")
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return 0, s.err(ctx, "migrate: lock", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			// A connection that could not unlock must not go back to the pool
			// holding the lock.
			conn.Conn().Close(uctx)
		}
	}()
	if schema != "" {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return 0, s.err(ctx, "migrate: create schema", err)
		}
	}
	// Read again under the lock: another process may have migrated meanwhile.
	from, err := readVersion(ctx, conn)
	if err != nil {
		return 0, s.err(ctx, "migrate: read version", err)
	}
	if err := checkVersion(from, mode); err != nil {
		return from, err
	}
	for i := from; i < currentVersion; i++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends the script with the simple protocol,
			// which runs several statements.
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE gatehouse_schema SET version = $1", i+1)
			return err
		})
		if err != nil {
			return from, s.err(ctx, fmt.Sprintf("migration %d", i+1), err)
		}
	}
	return from, nil
}
