// Package sqlite is the embedded store of gatehouse: one SQLite file in WAL
// mode, shared by the running server and the admin CLI processes.
//
// Writes go through a single writer goroutine that owns the only write
// connection of the process. It takes every write queued at the time (up to
// maxBatch), runs them in one transaction and commits once, so that many
// concurrent writes share one fsync (group commit). An op that is refused
// (not found, conflict, ...) is refused before it writes anything, so it
// needs no rollback; an op failing after it wrote (an I/O error) makes the
// writer roll the batch back and run the rest again, each op in its own
// savepoint (see op). Reads use a separate pool of read-only connections
// that WAL lets run alongside the writer. Across processes, writers take
// turns on the file's write lock (BEGIN IMMEDIATE, waiting up to
// Options.BusyTimeout).
//
// Times are stored as integer Unix microseconds; a zero time.Time is stored
// as NULL. Times come back in UTC, truncated to the microsecond.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/internal/sqlrow"
)

// Options tunes the embedded store.
type Options struct {
	// Synchronous is "full" (default, every acknowledged write survives power loss / kill -9) or "normal".
	Synchronous string
	// BusyTimeout: how long to wait for another process's write lock (default 5s).
	BusyTimeout time.Duration
	// Mode says whether a missing store is created and an older one
	// upgraded (default store.OpenMigrate: both).
	Mode store.OpenMode
}

// Store is the SQLite implementation of store.Store.
type Store struct {
	path string
	fi   os.FileInfo // the file as opened, to notice it being removed or replaced
	from int         // schema version found at Open

	rdb    *sql.DB
	rstmts sync.Map // query -> *sql.Stmt prepared on rdb

	w *writer

	closeMu sync.Mutex // serializes Close
	closed  atomic.Bool
}

var _ store.Store = (*Store)(nil)

// errClosed is returned by every method of a closed store.
var errClosed = fmt.Errorf("sqlite store closed: %w", gatehouse.ErrUnavailable)

// Open opens the store file at path. Whether a missing file is created
// (mode 0600; SQLite gives its -wal and -shm files the same mode) and an
// older schema migrated depends on opts.Mode: ErrNoStore and ErrSchemaOld
// say what was refused.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	syncMode := "FULL"
	switch strings.ToLower(opts.Synchronous) {
	case "", "full":
	case "normal":
		syncMode = "NORMAL"
	default:
		return nil, fmt.Errorf("sqlite: synchronous %q is not full or normal", opts.Synchronous)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := ensureFile(abs, opts.Mode); err != nil {
		return nil, err
	}
	// A file: URI keeps unusual characters in the path (?, #, %) from being
	// taken for DSN syntax. mode=rw: no connection ever creates the file, so
	// a store removed under a running process is not silently replaced by
	// an empty one.
	uri := (&url.URL{Scheme: "file", Path: abs}).String()
	ms := strconv.FormatInt(busy.Milliseconds(), 10)
	common := "mode=rw&_pragma=busy_timeout(" + ms + ")"

	// temp_store=memory keeps savepoint journals (replayed batches) off the
	// disk. Checkpointing every 4000 pages rather than 1000 copies hot pages
	// (table and index tails rewritten by every batch) fewer times. The
	// writer's page cache is 4 MiB: 16 MiB issued no more tokens per second
	// and held 12 MiB more (docs/benchmarks.md); a page it misses is read
	// from the operating system's cache.
	wdb, err := sql.Open("sqlite", uri+"?"+common+
		"&_pragma=foreign_keys(1)&_pragma=synchronous("+syncMode+")&_pragma=cache_size(-4096)"+
		"&_pragma=journal_size_limit(67108864)&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(4000)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxIdleTime(0)
	wdb.SetConnMaxLifetime(0)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, unavailable("open "+path, err)
	}
	fail := func(err error) (*Store, error) {
		conn.Close()
		wdb.Close()
		return nil, err
	}
	// Refuse before anything is written: even setting WAL mode changes a
	// file that holds no store.
	if v, err := readVersion(ctx, conn); err != nil {
		return fail(err)
	} else if err := checkVersion(v, opts.Mode); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(busy)
	if err := retryBusy(ctx, deadline, func() error {
		var mode string
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
			return err
		}
		if !strings.EqualFold(mode, "wal") {
			return fmt.Errorf("journal mode is %q, not wal", mode)
		}
		return nil
	}); err != nil {
		return fail(unavailable("set WAL mode on "+path, err))
	}
	from, err := migrate(ctx, conn, deadline, opts.Mode)
	if err != nil {
		return fail(err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fail(unavailable("stat "+path, err))
	}

	// Readers keep 1 MiB of pages each (SQLite's default is 2 MiB); a page
	// they miss is read from the operating system's cache.
	rdb, err := sql.Open("sqlite", uri+"?"+common+"&_pragma=query_only(1)&_pragma=cache_size(-1024)")
	if err != nil {
		return fail(fmt.Errorf("sqlite: %w", err))
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxIdleTime(5 * time.Minute)

	s := &Store{path: abs, fi: fi, from: from, rdb: rdb}
	s.w = newWriter(wdb, conn, busy, s.checkFile)
	return s, nil
}

// ensureFile creates a missing store file with mode 0600 when mode allows
// it, before SQLite opens it: SQLite would create it 0644 (less the umask),
// and its -wal and -shm files take the main file's mode.
func ensureFile(path string, mode store.OpenMode) error {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return unavailable("stat "+path, err)
	case mode == store.OpenExisting:
		return fmt.Errorf("sqlite: %s does not exist: %w", path, gatehouse.ErrNoStore)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another process created it first
	}
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return f.Close()
}

// Migrated reports the schema version Open found and the one it left.
func (s *Store) Migrated() (from, to int) { return s.from, currentVersion }

// checkFile reports ErrUnavailable when the path no longer names the file
// this process holds open: removed (the process would write on into an
// unlinked inode, lost at exit) or replaced by another file. Every write
// batch and every Ping checks it, so that nothing is acknowledged that a
// restart would not find.
func (s *Store) checkFile() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s was removed while open: %w", s.path, gatehouse.ErrUnavailable)
	}
	if err != nil {
		return unavailable("stat "+s.path, err)
	}
	if !os.SameFile(fi, s.fi) {
		return fmt.Errorf("%s was replaced by another file while open: %w", s.path, gatehouse.ErrUnavailable)
	}
	return nil
}

// Close stops the writer (failing writes still queued) and closes every
// connection. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	werr := s.w.close()
	s.rstmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	rerr := s.rdb.Close()
	return errors.Join(werr, rerr)
}

func (s *Store) isClosed() bool { return s.closed.Load() }

// Ping checks that the file is still the one opened and can be read.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return errClosed
	}
	if err := s.checkFile(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var v int
	if err := s.queryRow(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return s.readErr("ping", err)
	}
	return nil
}

// SchemaVersion reads the migration version recorded in the file.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, errClosed
	}
	var v int
	if err := s.queryRow(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, s.readErr("schema version", err)
	}
	return v, nil
}

// rstmt returns query prepared on the read pool, preparing it once.
func (s *Store) rstmt(query string) (*sql.Stmt, error) {
	if v, ok := s.rstmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	// Prepared without the caller's context: the statement outlives the call.
	st, err := s.rdb.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.rstmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s.isClosed() {
		return nil, errClosed
	}
	st, err := s.rstmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// row is a *sql.Row that may carry an error from before the query ran.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) row {
	if s.isClosed() {
		return row{err: errClosed}
	}
	st, err := s.rstmt(query)
	if err != nil {
		return row{err: err}
	}
	return row{r: st.QueryRowContext(ctx, args...)}
}

// readTx runs fn in one read transaction, so that it sees a single snapshot.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.isClosed() {
		return errClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// readErr maps a read failure: no rows is ErrNotFound (the caller adds what
// was looked for), a cancelled context stays what it is, anything else means
// the store could not be read.
func (s *Store) readErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, gatehouse.ErrNotFound)
	case isSentinel(err), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, sql.ErrConnDone), strings.Contains(err.Error(), "sql: database is closed"):
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	return unavailable(what, err)
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, gatehouse.ErrUnavailable, err)
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

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

func isBusy(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

func isConstraint(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT }

// retryBusy runs fn until it succeeds, fails with something other than
// SQLITE_BUSY, or deadline passes. SQLite's busy handler covers most lock
// waits; a few (WAL recovery by another process, journal mode changes) report
// SQLITE_BUSY at once.
func retryBusy(ctx context.Context, deadline time.Time, fn func() error) error {
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Times are Unix microseconds; the zero time is NULL.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func goTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// stored is t as it comes back from the store.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

func lower(s string) string { return sqlrow.Lower(s) }

// WriteStats reports how many write transactions the store has committed
// and how many operations they carried: their ratio is the group-commit
// batch size.
func (s *Store) WriteStats() (commits, ops int64) {
	return s.w.batches.Load(), s.w.batched.Load()
}
