package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
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

var DbgOps, DbgOpTime, DbgCommit, DbgBatches atomic.Int64

type op struct {
	ctx   context.Context
	fn    func(*wtx) error
	state atomic.Int32
	done  chan error // buffered: the writer never blocks on it
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

	ops     chan *op
	closing chan struct{}
	stopped chan struct{}
	stmts   map[string]*sql.Stmt // owned by the writer goroutine
}

func newWriter(db *sql.DB, conn *sql.Conn, busy time.Duration) *writer {
	w := &writer{db: db, conn: conn, busy: busy,
		ops: make(chan *op, maxBatch), closing: make(chan struct{}), stopped: make(chan struct{}),
		stmts: map[string]*sql.Stmt{}}
	go w.run()
	return w
}

func (w *writer) close() error {
	close(w.closing)
	<-w.stopped
	for _, st := range w.stmts {
		st.Close()
	}
	return errors.Join(w.conn.Close(), w.db.Close())
}

// write runs fn in the writer's transaction and waits until it is committed.
// fn runs on the writer goroutine while the store holds the write lock: it
// must be quick and must not call the store's write methods.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := s.w
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
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
	defer close(w.stopped)
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-w.ops:
			batch = append(batch[:0], o)
		case <-w.closing:
			w.drain()
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

// drain fails whatever is still queued at close.
func (w *writer) drain() {
	for {
		select {
		case o := <-w.ops:
			o.done <- errClosed
		default:
			return
		}
	}
}

// exec runs a statement of the batch protocol, prepared once.
func (w *writer) exec(q string) error {
	st, ok := w.stmts[q]
	if !ok {
		var err error
		if st, err = w.conn.PrepareContext(context.Background(), q); err != nil {
			return err
		}
		w.stmts[q] = st
	}
	_, err := st.ExecContext(context.Background())
	return err
}

// runBatch commits the ops of batch in one transaction, each in its own
// savepoint so that a failing op takes back only its own writes.
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
	deadline := time.Now().Add(w.busy)
	if err := retryBusy(context.Background(), deadline, func() error { return w.exec("BEGIN IMMEDIATE") }); err != nil {
		err = unavailable("begin write transaction", err)
		for _, o := range live {
			o.done <- err
		}
		return
	}
	tx := &wtx{w: w, now: time.Now()}
	// results[i] is nil until live[i] ran; skipped ops are answered at once.
	results := make([]error, len(live))
	ran := make([]bool, len(live))
	for i, o := range live {
		if !o.state.CompareAndSwap(opQueued, opRunning) {
			o.done <- o.ctx.Err()
			continue
		}
		ran[i] = true
		if err := w.exec("SAVEPOINT op"); err != nil {
			w.abort(live[i:], ran[:i], live[:i], err)
			return
		}
		t0 := time.Now()
		err := callOp(o.fn, tx)
		DbgOps.Add(1)
		DbgOpTime.Add(int64(time.Since(t0)))
		var c committed
		switch {
		case err == nil:
		case errors.As(err, &c):
			err = c.err
		default:
			if rerr := w.exec("ROLLBACK TO op"); rerr != nil {
				w.abort(live[i:], ran[:i], live[:i], rerr)
				return
			}
		}
		if rerr := w.exec("RELEASE op"); rerr != nil {
			w.abort(live[i:], ran[:i], live[:i], rerr)
			return
		}
		results[i] = err
	}
	tc := time.Now()
	defer func() { DbgCommit.Add(int64(time.Since(tc))); DbgBatches.Add(1) }()
	if err := w.exec("COMMIT"); err != nil {
		w.abort(nil, ran, live, err)
		return
	}
	for i, o := range live {
		if ran[i] {
			o.done <- results[i]
		}
	}
}

// abort rolls the whole transaction back and fails the ops that ran in it
// (none of their writes were committed) and those not yet reached.
func (w *writer) abort(rest []*op, ran []bool, done []*op, cause error) {
	_ = w.exec("ROLLBACK")
	err := unavailable("write transaction", cause)
	for i, o := range done {
		if ran[i] {
			o.done <- err
		}
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
	w   *writer
	now time.Time // wall clock of the batch, stamped on feed entries
}

func (t *wtx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.w.stmts[q]; ok {
		return st, nil
	}
	st, err := t.w.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	t.w.stmts[q] = st
	return st, nil
}

func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

func (t *wtx) query(q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.Background(), args...)
}

func (t *wtx) queryRow(q string, args ...any) row {
	st, err := t.stmt(q)
	if err != nil {
		return row{err: err}
	}
	return row{r: st.QueryRowContext(context.Background(), args...)}
}

// strings runs q and collects its single text column.
func (t *wtx) strings(q string, args ...any) ([]string, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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
func (t *wtx) change(kind gatehouse.ChangeKind, key, op string) error {
	_, err := t.exec("INSERT INTO changes (kind, key, op, at) VALUES (?, ?, ?, ?)",
		string(kind), key, op, t.now.UnixMicro())
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
