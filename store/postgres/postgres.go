// Package postgres is the PostgreSQL store of gatehouse, for running several
// replicas on one database. It passes the same conformance suite as the
// embedded store (store/storetest).
//
// Everything runs at READ COMMITTED. Where two replicas could race, the
// database decides:
//
//   - Session caps: CreateSession takes a transaction-level advisory lock
//     on the principal before it reads the principal's sessions, so two
//     creates for one principal (on any replicas) take turns and neither
//     can miss the other's session.
//   - Keys: a partial unique index allows one active and one next key per
//     algorithm; RotateKeys locks the expected active key (SELECT … FOR
//     UPDATE), so of two rotations the second finds it retired and fails
//     with ErrConflict.
//   - Consumer uids come from a counter row updated in the creating
//     transaction: a refused create does not use up a uid.
//   - Migrations run under a session-level advisory lock.
//
// The change feed. Writers append rows to the changes table in the same
// transaction as the change, without a revision. Revisions are handed out
// later, in commit order, by feed_sequence (run by Changes and
// LastRevision): under an advisory lock it numbers the committed rows that
// have none, continuing from the highest revision. A row becomes visible
// only once committed, so it can only ever be numbered after every row
// that was visible before it: a follower that has read up to revision N
// never sees a later row below N. A plain sequence would not do: its values
// are taken before commit, so a transaction holding revision 10 can commit
// after one holding 11 has been read. Serializing every writer on a counter
// row would also do, but would make commits wait for each other's disk
// flush; here writers never wait for each other.
//
// Times are timestamptz (microseconds, like the interface's convention);
// they come back in UTC. A zero time.Time is NULL.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

// Options tunes the PostgreSQL store. Zero values take the defaults.
type Options struct {
	// Schema is the schema the tables live in; it is created if missing.
	// Empty: the first schema of the connection's search_path (normally
	// public).
	Schema string
	// MaxConns caps the connection pool. Default: the DSN's pool_max_conns,
	// else max(8, 4 × GOMAXPROCS).
	MaxConns int32
	// QueryTimeout bounds every store call (default 5s): a database that
	// does not answer makes calls fail with ErrUnavailable rather than hang.
	QueryTimeout time.Duration
	// ConnectTimeout bounds opening one connection (default 5s).
	ConnectTimeout time.Duration
	// Mode says whether a missing store is created and an older one
	// upgraded (default store.OpenMigrate: both).
	Mode store.OpenMode
}

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	// schema is the schema the tables live in, for advisory lock keys: two
	// gatehouse deployments in two schemas of one database do not share locks.
	schema string
	from   int // schema version found at Open
	// creates groups concurrent session creates (creates.go).
	creates *creates
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), creates or migrates its schema as opts.Mode allows,
// and returns the store. ErrSchemaTooNew when a newer gatehouse has
// migrated it; ErrNoStore and ErrSchemaOld when the mode refuses to create
// or upgrade.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message shows the connection string with its password masked.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 || cfg.ConnConfig.ConnectTimeout > opts.ConnectTimeout {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 5 * time.Second
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "gatehouse"
	// Connections that died while the database was away are found by the
	// query that uses them; a short check period finds idle ones sooner.
	cfg.HealthCheckPeriod = 15 * time.Second

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, timeout: opts.QueryTimeout}
	mctx, cancel := context.WithTimeout(ctx, opts.QueryTimeout+opts.ConnectTimeout+time.Minute)
	defer cancel()
	if s.from, err = s.migrate(mctx, opts.Schema, opts.Mode); err != nil {
		pool.Close()
		return nil, err
	}
	if err := pool.QueryRow(mctx, "SELECT current_schema()").Scan(&s.schema); err != nil {
		pool.Close()
		return nil, s.err(ctx, "read schema", err)
	}
	s.creates = newCreates(s)
	return s, nil
}

// Close closes every connection. Calling it again does nothing.
func (s *Store) Close() error {
	s.creates.close()
	s.pool.Close()
	return nil
}

// Migrated reports the schema version Open found and the one it left.
func (s *Store) Migrated() (from, to int) { return s.from, currentVersion }

// Ping checks that the database answers and holds a gatehouse schema.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.SchemaVersion(ctx)
	return err
}

// SchemaVersion reads the migration version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	var v int
	if err := s.pool.QueryRow(qctx, "SELECT version FROM gatehouse_schema").Scan(&v); err != nil {
		return 0, s.err(ctx, "schema version", err)
	}
	return v, nil
}

// ctx bounds one store call by the query timeout.
func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// lockKey is the advisory lock key of purpose (and detail) in this store's
// schema. FNV-1a is the same in every process, so replicas agree on keys.
func (s *Store) lockKey(purpose, detail string) int64 {
	return lockKey(s.schema, purpose, detail)
}

func lockKey(schema, purpose, detail string) int64 {
	h := fnv.New64a()
	io.WriteString(h, "gatehouse\x00"+schema+"\x00"+purpose+"\x00"+detail)
	return int64(h.Sum64())
}

// tx runs fn in a transaction bounded by the query timeout (fn gets that
// context), committing when fn returns nil or a committed error. retry: fn may run again after a deadlock or a
// serialization failure (it must not call a caller's function).
func (s *Store) tx(ctx context.Context, what string, retry bool, fn func(ctx context.Context, tx pgx.Tx) error) error {
	qctx, cancel := s.ctx(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := s.tx1(qctx, fn)
		if retry && attempt < 3 && isRetryable(err) && qctx.Err() == nil {
			continue
		}
		return s.err(ctx, what, err)
	}
}

func (s *Store) tx1(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if audit := store.AuditOf(ctx); audit != nil {
		// The write's audit events, in its transaction (store.WithAudit).
		rec := &recorder{}
		write := fn
		fn = func(ctx context.Context, tx pgx.Tx) error {
			if err := write(context.WithValue(ctx, recorderKey{}, rec), tx); err != nil {
				return err
			}
			for _, ev := range audit(rec.changes) {
				if _, err := tx.Exec(ctx, insertAuditSQL, auditArgs(&ev)...); err != nil {
					return err
				}
			}
			return nil
		}
	}
	err = fn(ctx, tx)
	var c committed
	if err != nil && !errors.As(err, &c) {
		// A rollback that fails leaves the connection to be closed by pgx.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		tx.Rollback(rctx)
		cancel()
		return err
	}
	if cerr := tx.Commit(ctx); cerr != nil {
		return cerr
	}
	return err
}

// recorder collects the feed entries of an audited write (see tx1).
type recorder struct{ changes []gatehouse.Change }

type recorderKey struct{}

// record notes feed entries a write made for its audit, when it has one.
// change records its own; statements that write feed entries themselves
// (INSERT … SELECT) record theirs with it.
func record(ctx context.Context, kind gatehouse.ChangeKind, op string, keys ...string) {
	rec, _ := ctx.Value(recorderKey{}).(*recorder)
	if rec == nil {
		return
	}
	for _, k := range keys {
		rec.changes = append(rec.changes, gatehouse.Change{Kind: kind, Key: k, Op: op, At: time.Now()})
	}
}

// committed marks an error returned after the transaction's writes are to
// be committed all the same (a reused refresh token ends its session).
type committed struct{ err error }

func (c committed) Error() string { return c.err.Error() }
func (c committed) Unwrap() error { return c.err }

// err maps a failure: no rows is ErrNotFound, a unique violation
// ErrConflict; the caller's own cancellation stays what it is; a database
// that cannot be reached, is shutting down, is out of resources, or did not
// answer within the query timeout is ErrUnavailable. ctx is the caller's
// context.
func (s *Store) err(ctx context.Context, what string, err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%s: %w", what, gatehouse.ErrNotFound)
	case isSentinel(err):
		return fmt.Errorf("%s: %w", what, err)
	case errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "23P01"):
		return fmt.Errorf("%s: %w", what, gatehouse.ErrConflict)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case isUnavailable(err):
		return fmt.Errorf("%s: %w: %w", what, gatehouse.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// isUnavailable reports whether err means the database could not be used
// right now, as opposed to refusing what was asked.
func isUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", // connection exception
			"25", // e.g. read-only transaction: a standby after failover
			"40", // deadlock, serialization failure (after retries)
			"53", // insufficient resources: too many connections, disk full
			"55", // object not in prerequisite state, lock not available
			"57", // operator intervention: shutdown, cancel, admin termination
			"58": // system error
			return true
		}
		return false
	}
	// Everything short of a server answer: network errors, a closed pool or
	// connection, a timeout.
	var ne net.Error
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, net.ErrClosed),
		pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn closed") ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "failed to connect")
}

func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// isSentinel reports whether err already carries one of the store errors.
func isSentinel(err error) bool {
	for _, e := range []error{gatehouse.ErrNotFound, gatehouse.ErrConflict, gatehouse.ErrUnavailable,
		gatehouse.ErrRefreshReused, gatehouse.ErrSessionEnded, gatehouse.ErrFeedGap, gatehouse.ErrSchemaTooNew,
		gatehouse.ErrSchemaOld, gatehouse.ErrNoStore} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// dbTime is t as a query argument: NULL for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// goTime is a scanned timestamptz in UTC; zero for NULL.
func goTime(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// stored is t as it comes back from the store.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// endTime is when an end happens: at, or now when at is zero (an end time
// must never be NULL, which would mean "not ended").
func endTime(at time.Time) time.Time {
	if at.IsZero() {
		return time.Now()
	}
	return at
}

func lower(s string) string { return sqlrow.Lower(s) }
