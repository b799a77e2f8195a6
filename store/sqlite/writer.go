package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// maxBatch bounds how many writes share one transaction, so that one commit
// never holds the write lock for long.
const maxBatch = 256

// Op states: a caller that gives up can withdraw an op only while it is
// still queued; once the writer has claimed it, the caller waits for the
// outcome, so an error from a cancelled context always means nothing was
// written.
const (
	opQueued int32 = iota
	opRunning
	opWithdrawn
)

// An op is one write call. Its fn follows one rule that lets a batch run
// without a savepoint per op (savepoints copy every page an op touches, which
// would double the writer's work): any error meant for the caller (not found,
// conflict, refused, the caller's own fn failing) is returned before the op's
// first write. An op that fails after writing, which only an I/O-level
// failure should cause, costs the batch a rollback, after which the rest of
// the batch runs again with a savepoint around each op.
type op struct {
	ctx context.Context
	fn  func(*wtx) error
	// replay: fn may run a second time if its batch is rolled back. Ops that
	// call a caller's function (Update*) must not, so they fail instead.
	replay bool
	// appendOnly: fn reads neither the feed nor the audit trail, so its
	// entries there may wait for the batch's multi-row INSERT (wtx.flush).
	appendOnly bool
	state      atomic.Int32
	done       chan error // buffered: the writer never blocks on it
}

// committed marks an op error that must not roll the op back: the op's
// writes are committed and the error is still returned to the caller (a
// reused refresh token ends its session and reports ErrRefreshReused).
type committed struct{ err error }

func (c committed) Error() string { return c.err.Error() }
func (c committed) Unwrap() error { return c.err }

// panicked carries a panic out of an op function to the caller's goroutine.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) Error() string { return fmt.Sprintf("panic in store op: %v\n%s", p.value, p.stack) }

type writer struct {
	db   *sql.DB
	conn *sql.Conn
	busy time.Duration
	// check runs before every batch: an error (the file was removed or
	// replaced) fails the batch without writing.
	check func() error

	// batches and batched count commits and the ops in them, for the
	// benchmarks.
	batches, batched atomic.Int64

	ops     chan *op
	closing chan struct{}
	stopped chan struct{}

	// Owned by the writer goroutine.
	dc          *dconn
	caps        capCache
	pending     appends
	dataVersion int64 // PRAGMA data_version at the last batch
}

func newWriter(db *sql.DB, conn *sql.Conn, busy time.Duration, check func() error) *writer {
	w := &writer{db: db, conn: conn, busy: busy, check: check,
		ops: make(chan *op, maxBatch), closing: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(w.stopped)
		// The writer keeps the driver connection for its whole life.
		err := conn.Raw(func(c any) error {
			dc, ok := c.(driver.Conn)
			if !ok {
				return fmt.Errorf("sqlite: driver connection is %T", c)
			}
			w.dc = &dconn{c: dc, stmts: map[string]*dstmt{}}
			defer w.dc.close()
			w.run()
			return nil
		})
		if err != nil {
			w.drain(unavailable("writer", err))
		}
	}()
	return w
}

func (w *writer) close() error {
	close(w.closing)
	<-w.stopped
	w.drain(errClosed)
	return errors.Join(w.conn.Close(), w.db.Close())
}

// write runs fn in the writer's transaction and waits until it is committed.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	return s.submit(ctx, true, false, fn)
}

// writeAppend is write for an fn that reads neither the changes nor the
// audit table: its feed entries and audit events are written with those of
// the ops around it, one multi-row INSERT per table and batch.
func (s *Store) writeAppend(ctx context.Context, fn func(*wtx) error) error {
	return s.submit(ctx, true, true, fn)
}

// writeOnce is write for an fn that must run at most once, because it calls
// a function of the caller. That function runs on the writer goroutine while
// the store holds the write lock: it must be quick and must not call the
// store's write methods.
func (s *Store) writeOnce(ctx context.Context, fn func(*wtx) error) error {
	return s.submit(ctx, false, false, fn)
}

func (s *Store) submit(ctx context.Context, replay, appendOnly bool, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if audit := store.AuditOf(ctx); audit != nil {
		// The write's audit events, in its transaction (store.WithAudit).
		write := fn
		fn = func(tx *wtx) error {
			tx.changes, tx.record = tx.changes[:0], true
			err := write(tx)
			tx.record = false
			if err != nil {
				return err
			}
			tx.wrote = true
			return writeErr("audit", insertAudit(tx, audit(tx.changes)))
		}
	}
	w := s.w
	o := &op{ctx: ctx, fn: fn, replay: replay, appendOnly: appendOnly, done: make(chan error, 1)}
	select {
	case <-w.closing:
		return errClosed
	default:
	}
	select {
	case w.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.closing:
		return errClosed
	}
	var err error
	select {
	case err = <-o.done:
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opWithdrawn) {
			return ctx.Err()
		}
		err = <-o.done
	case <-w.stopped:
		select {
		case err = <-o.done:
		default:
			return errClosed
		}
	}
	var p *panicked
	if errors.As(err, &p) {
		panic(p.value)
	}
	return err
}

func (w *writer) run() {
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-w.ops:
			batch = append(batch[:0], o)
		case <-w.closing:
			w.drain(errClosed)
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-w.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		w.runBatch(batch)
		clear(batch)
	}
}

// drain fails whatever is still queued.
func (w *writer) drain(err error) {
	for {
		select {
		case o := <-w.ops:
			o.done <- err
		default:
			return
		}
	}
}

// exec runs a statement of the batch protocol.
func (w *writer) exec(q string) error {
	st, err := w.dc.prepare(q)
	if err != nil {
		return err
	}
	_, err = st.exec(nil)
	return err
}

// runBatch commits the ops of batch in one transaction.
func (w *writer) runBatch(batch []*op) {
	live := batch[:0:0]
	for _, o := range batch {
		if o.ctx.Err() != nil || o.state.Load() == opWithdrawn {
			o.done <- o.ctx.Err()
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	if err := w.begin(); err != nil {
		for _, o := range live {
			o.done <- err
		}
		return
	}
	tx := &wtx{w: w, now: time.Now(), pending: &w.pending}
	ran := live[:0:0] // claimed and run, not yet answered
	results := make([]error, 0, len(live))
	for i, o := range live {
		if !o.appendOnly {
			// It may read what the ops before it appended.
			if err := tx.flush(); err != nil {
				w.rollbackAndReplay(ran, live[i:])
				return
			}
		}
		if !o.state.CompareAndSwap(opQueued, opRunning) {
			o.done <- o.ctx.Err()
			continue
		}
		tx.wrote, tx.deferAppends = false, o.appendOnly
		err := callOp(o.fn, tx)
		var c committed
		switch {
		case err == nil:
		case errors.As(err, &c):
			err = c.err
		case tx.wrote:
			// Its writes cannot be taken back alone: roll the batch back and
			// run the others again, each in a savepoint.
			o.done <- err
			w.rollbackAndReplay(ran, live[i+1:])
			return
		}
		ran = append(ran, o)
		results = append(results, err)
	}
	if err := tx.flush(); err != nil {
		w.rollbackAndReplay(ran, nil)
		return
	}
	if err := w.exec("COMMIT"); err != nil {
		w.abort(ran, nil, err)
		return
	}
	w.batches.Add(1)
	w.batched.Add(int64(len(ran)))
	w.deliver(ran, results)
}

// rollbackAndReplay rolls the batch back and runs ran and rest again (see replay).
func (w *writer) rollbackAndReplay(ran, rest []*op) {
	w.pending.reset()
	_ = w.exec("ROLLBACK")
	w.caps.clear()
	w.replay(ran, rest)
}

// deliver answers the ops of a committed batch; if the file was removed or
// replaced meanwhile, the commit went to a file no restart will find, and
// every op is told the store is unavailable instead.
func (w *writer) deliver(ops []*op, results []error) {
	if w.check != nil {
		if err := w.check(); err != nil {
			err = fmt.Errorf("write: %w", err)
			for _, o := range ops {
				o.done <- err
			}
			return
		}
	}
	for i, o := range ops {
		o.done <- results[i]
	}
}

// replay runs again, in a new transaction and each in its own savepoint, the
// ops of a rolled-back batch: ran had run (their writes are gone), rest had
// not. Ops that may not run twice are failed instead.
func (w *writer) replay(ran, rest []*op) {
	w.caps.clear()
	if err := w.begin(); err != nil {
		w.abort(ran, rest, err)
		return
	}
	tx := &wtx{w: w, now: time.Now(), noCache: true}
	var done []*op
	var results []error
	run := func(o *op) error {
		if err := w.exec("SAVEPOINT op"); err != nil {
			return err
		}
		err := callOp(o.fn, tx)
		var c committed
		switch {
		case err == nil:
		case errors.As(err, &c):
			err = c.err
		default:
			if rerr := w.exec("ROLLBACK TO op"); rerr != nil {
				return rerr
			}
		}
		if rerr := w.exec("RELEASE op"); rerr != nil {
			return rerr
		}
		done = append(done, o)
		results = append(results, err)
		return nil
	}
	for i, o := range ran {
		if !o.replay {
			o.done <- fmt.Errorf("write batch rolled back, try again: %w", gatehouse.ErrUnavailable)
			continue
		}
		if err := run(o); err != nil {
			w.abort(append(done, ran[i:]...), rest, err)
			return
		}
	}
	for i, o := range rest {
		if !o.state.CompareAndSwap(opQueued, opRunning) {
			o.done <- o.ctx.Err()
			continue
		}
		if err := run(o); err != nil {
			w.abort(append(done, o), rest[i+1:], err)
			return
		}
	}
	if err := w.exec("COMMIT"); err != nil {
		w.abort(done, nil, err)
		return
	}
	w.deliver(done, results)
}

// begin starts the batch transaction, taking the file's write lock, and
// drops the caches if another connection has written since the last batch.
func (w *writer) begin() error {
	if w.check != nil {
		if err := w.check(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	deadline := time.Now().Add(w.busy)
	if err := retryBusy(context.Background(), deadline, func() error { return w.exec("BEGIN IMMEDIATE") }); err != nil {
		return unavailable("begin write transaction", err)
	}
	var v int64
	st, err := w.dc.prepare("PRAGMA data_version")
	if err == nil {
		rows, qerr := st.query(nil)
		err = drow{r: rows, err: qerr}.Scan(&v)
	}
	if err != nil {
		_ = w.exec("ROLLBACK")
		return unavailable("begin write transaction", err)
	}
	if v != w.dataVersion {
		w.caps.clear()
		w.dataVersion = v
	}
	return nil
}

// abort rolls the transaction back and fails ran (whose writes are gone) and
// rest; ops of rest still queued are failed without running.
func (w *writer) abort(ran, rest []*op, cause error) {
	_ = w.exec("ROLLBACK")
	w.caps.clear()
	err := unavailable("write transaction", cause)
	for _, o := range ran {
		o.done <- err
	}
	for _, o := range rest {
		o.done <- err
	}
}

func callOp(fn func(*wtx) error, tx *wtx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{value: v, stack: debug.Stack()}
		}
	}()
	return fn(tx)
}

// wtx is what an op function writes through: the writer's connection inside
// the batch transaction, with statements prepared once per process.
type wtx struct {
	w       *writer
	changes []gatehouse.Change // the current op's feed entries, for its audit
	record  bool               // collect changes (the op has an audit)
	now     time.Time          // wall clock of the batch, stamped on feed entries
	wrote   bool               // the current op has changed something
	// noCache: ops may be rolled back one by one (replay), so the writer's
	// caches must not learn from them.
	noCache bool
	// deferAppends: the current op is appendOnly; its feed entries and audit
	// events go to pending (nil in replay, which writes each at once).
	deferAppends bool
	pending      *appends
}

func (t *wtx) exec(q string, args ...any) (driver.Result, error) {
	st, err := t.w.dc.prepare(q)
	if err != nil {
		return nil, err
	}
	res, err := st.exec(args)
	if err == nil {
		t.wrote = true
	}
	return res, err
}

func (t *wtx) query(q string, args ...any) (*drows, error) {
	st, err := t.w.dc.prepare(q)
	if err != nil {
		return nil, err
	}
	return st.query(args)
}

// rows is query as a rowSet.
func (t *wtx) rows(q string, args ...any) (rowSet, error) {
	r, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (t *wtx) queryRow(q string, args ...any) drow {
	rows, err := t.query(q, args...)
	return drow{r: rows, err: err}
}

// strings runs q, which may write (UPDATE ... RETURNING), and collects its
// single text column.
func (t *wtx) strings(q string, args ...any) ([]string, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t.wrote = true // a failing RETURNING statement may have changed rows already
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// at is t as stored, or the batch's wall-clock time when t is zero: an end
// time must never be NULL, which would mean "not ended".
func (t *wtx) at(x time.Time) int64 {
	if x.IsZero() {
		return t.now.UnixMicro()
	}
	return x.UnixMicro()
}

// change appends a feed entry in the op's transaction.
// note tells the op's audit about a change the feed does not carry.
func (t *wtx) note(kind gatehouse.ChangeKind, key, op string) {
	if t.record {
		t.changes = append(t.changes, gatehouse.Change{Kind: kind, Key: key, Op: op, At: t.now})
	}
}

func (t *wtx) change(kind gatehouse.ChangeKind, key, op string) error {
	if t.record {
		t.changes = append(t.changes, gatehouse.Change{Kind: kind, Key: key, Op: op, At: t.now})
	}
	at := t.now.UnixMicro()
	if t.deferAppends && t.pending != nil {
		t.pending.changes = append(t.pending.changes, pendingChange{kind: kind, key: key, op: op, at: at})
		t.wrote = true
		return nil
	}
	var err error
	// Every token issued writes session entries: for those, kind and op are
	// in the statement text, which spares binding two strings.
	switch {
	case kind == gatehouse.ChangeSession && op == gatehouse.OpEnd:
		_, err = t.exec("INSERT INTO changes (kind, key, op, at) VALUES ('session', ?, 'end', ?)", key, at)
	default:
		_, err = t.exec("INSERT INTO changes (kind, key, op, at) VALUES (?, ?, ?, ?)", string(kind), key, op, at)
	}
	return err
}

// writeErr maps a failure inside an op: a unique constraint is ErrConflict,
// errors already carrying a store error (or the caller's own error from fn)
// pass through, the rest mean the store could not write.
func writeErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, gatehouse.ErrNotFound)
	case isConstraint(err):
		return fmt.Errorf("%s: %w", what, gatehouse.ErrConflict)
	case isSentinel(err):
		return err
	}
	return unavailable(what, err)
}
