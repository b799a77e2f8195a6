package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Group commit for session creates: every token issued creates a session,
// and a transaction per session costs the database a commit (a WAL flush)
// and a round trip each. Creates made at the same time are sent together
// instead, as one transaction in one batch (pipelined: BEGIN, the
// statements, COMMIT in one round trip), with up to createsInFlight such
// transactions at once on their own connections. The sessions without a
// cap are written with one multi-row INSERT per table. Those with a cap go
// one after another, in the order they came, so that each counts the ones
// before it exactly as on its own, in transactions of their own, one at a
// time: a principal's creates take turns on its lock anyway, so while one
// transaction holds it the next ones gather into the following
// transaction rather than into several that would wait for each other.

const (
	// maxCreates bounds the creates of one transaction.
	maxCreates = 256
	// createsInFlight bounds the transactions of creates without a cap at
	// once; those with a cap run one at a time.
	createsInFlight = 4
)

type createOp struct {
	ctx  context.Context
	n    *store.NewSession
	done chan createResult // buffered
	// lock is the principal's advisory lock key, for creates with a cap.
	lock int64
}

type createResult struct {
	ended []string
	err   error
}

type creates struct {
	s            *Store
	free, capped lane
	closing      chan struct{}
	wg, runners  sync.WaitGroup
	once         sync.Once
}

// A lane gathers creates into transactions, up to cap(slots) at once.
type lane struct {
	ops   chan *createOp
	slots chan struct{}
}

func newCreates(s *Store) *creates {
	c := &creates{s: s, closing: make(chan struct{}),
		free:   lane{ops: make(chan *createOp, maxCreates), slots: make(chan struct{}, createsInFlight)},
		capped: lane{ops: make(chan *createOp, maxCreates), slots: make(chan struct{}, 1)}}
	for _, l := range []*lane{&c.free, &c.capped} {
		c.runners.Go(func() { c.run(l) })
	}
	return c
}

var errClosed = fmt.Errorf("store closed: %w", gatehouse.ErrUnavailable)

// close stops taking creates and waits for those under way.
func (c *creates) close() {
	c.once.Do(func() {
		close(c.closing)
		c.runners.Wait()
		c.wg.Wait()
	})
}

func (c *creates) create(ctx context.Context, n *store.NewSession) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := &createOp{ctx: ctx, n: n, done: make(chan createResult, 1)}
	l := &c.free
	if n.MaxSessions > 0 {
		o.lock = c.s.lockKey("principal", gatehouse.PrincipalKey(n.Session.ConsumerUID, n.Session.Username))
		l = &c.capped
	}
	select {
	case l.ops <- o:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.closing:
		return nil, errClosed
	}
	select {
	case r := <-o.done:
		return r.ended, r.err
	case <-c.closing:
		// Closed meanwhile: whether it was written is unknown.
		return nil, errClosed
	case <-ctx.Done():
		// Whether it was written is unknown; the caller hands nothing out.
		return nil, c.s.err(ctx, fmt.Sprintf("session %q", n.Session.ID), ctx.Err())
	}
}

func (c *creates) run(l *lane) {
	for {
		var first *createOp
		select {
		case first = <-l.ops:
		case <-c.closing:
			l.drain()
			return
		}
		// While every slot is busy, more creates queue up for this batch.
		select {
		case l.slots <- struct{}{}:
		case <-c.closing:
			first.done <- createResult{err: errClosed}
			l.drain()
			return
		}
		batch := []*createOp{first}
	fill:
		for len(batch) < maxCreates {
			select {
			case o := <-l.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-l.slots }()
			c.s.createBatch(batch)
		}()
	}
}

func (l *lane) drain() {
	for {
		select {
		case o := <-l.ops:
			o.done <- createResult{err: errClosed}
		default:
			return
		}
	}
}

// createBatch writes the creates of batch in one transaction, or, if that
// fails, each on its own.
func (s *Store) createBatch(batch []*createOp) {
	live := batch[:0]
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.done <- createResult{err: err}
			continue
		}
		live = append(live, o)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		ended, err := s.createOne(live[0].ctx, live[0].n)
		live[0].done <- createResult{ended, err}
		return
	}
	ended, err := s.createTogether(live)
	if err == nil {
		for i, o := range live {
			o.done <- createResult{ended: ended[i]}
		}
		return
	}
	// One create may have failed them all (a session id or refresh token
	// already stored): each again on its own, so that only it fails.
	var wg sync.WaitGroup
	for _, o := range live {
		wg.Go(func() {
			ended, err := s.createOne(o.ctx, o.n)
			o.done <- createResult{ended, err}
		})
	}
	wg.Wait()
}

// createTogether writes live in one transaction: first the creates without
// a cap, then those with one ordered by their principal's lock (so that two
// transactions take the locks of their principals in the same order and
// never deadlock), each principal's in the order they came. It returns
// each create's ended sessions, in live's order.
func (s *Store) createTogether(live []*createOp) ([][]string, error) {
	order := make([]int, len(live))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := live[a], live[b]
		if (x.n.MaxSessions > 0) != (y.n.MaxSessions > 0) {
			if x.n.MaxSessions > 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(x.lock, y.lock)
	})
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	var free []*store.NewSession
	for _, i := range order {
		if live[i].n.MaxSessions == 0 {
			free = append(free, live[i].n)
		}
	}
	if len(free) > 0 {
		queueFree(b, free)
	}
	caps := make(map[*pgx.QueuedQuery]int)
	for _, i := range order {
		if n := live[i].n; n.MaxSessions > 0 {
			caps[s.queueCreate(b, n)] = i
		}
	}
	commit := b.Queue("COMMIT")

	// Bounded like one create: the longest wait of the batch's callers.
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection left inside a transaction is closed by the pool.
	defer conn.Release()
	br := conn.SendBatch(ctx, b)
	ended := make([][]string, len(live))
	for _, q := range b.QueuedQueries {
		if i, ok := caps[q]; ok {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				ended[i], err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
		} else {
			var tag pgconn.CommandTag
			tag, err = br.Exec()
			if err == nil && q == commit && tag.String() != "COMMIT" {
				err = errors.New("the transaction of session creates was rolled back")
			}
		}
		if err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return ended, err
}

// queueFree queues the creates without a cap as one multi-row INSERT per
// table, in their order.
func queueFree(b *pgx.Batch, free []*store.NewSession) {
	k := len(free)
	var (
		ids, users, flows, scopes, reasons, remotes, keys = make([]string, k), make([]string, k), make([]string, k),
			make([]string, k), make([]string, k), make([]string, k), make([]string, k)
		uids                      = make([]int64, k)
		created, expires, endedAt = make([]pgtype.Timestamptz, k), make([]pgtype.Timestamptz, k), make([]pgtype.Timestamptz, k)
		rhashes                   [][]byte
		rids                      []string
		evs                       []gatehouse.AuditEvent
	)
	ts := func(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()} }
	for i, n := range free {
		x := &n.Session
		ids[i], users[i], uids[i], flows[i], scopes[i] = x.ID, x.Username, x.ConsumerUID, x.Flow, x.Scope
		created[i], expires[i], endedAt[i] = ts(x.CreatedAt), ts(x.ExpiresAt), ts(x.EndedAt)
		reasons[i], remotes[i], keys[i] = x.EndReason, x.RemoteAddr, lower(x.Username)
		if len(n.RefreshHash) > 0 {
			rhashes, rids = append(rhashes, n.RefreshHash), append(rids, x.ID)
		}
		evs = append(evs, n.Audit...)
	}
	b.Queue("INSERT INTO sessions ("+sessionCols+", username_key) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], "+
		"$4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[])",
		ids, users, uids, flows, scopes, created, expires, endedAt, reasons, remotes, keys)
	if len(rhashes) > 0 {
		b.Queue("INSERT INTO refresh_tokens (hash, session_id, spent) SELECT h, id, false FROM unnest($1::bytea[], $2::text[]) AS t(h, id)",
			rhashes, rids)
	}
	b.Queue("INSERT INTO changes (kind, key, op) SELECT 'session', id, 'create' FROM unnest($1::text[]) AS t(id)", ids)
	if len(evs) > 0 {
		var (
			at                                             = make([]pgtype.Timestamptz, len(evs))
			actor, action, target, outcome, remote, detail = make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
			count                                          = make([]int64, len(evs))
		)
		for i, e := range evs {
			at[i], actor[i], action[i], target[i], outcome[i], remote[i], detail[i], count[i] =
				ts(e.At), e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail, int64(max(e.Count, 1))
		}
		b.Queue("INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count) SELECT * FROM unnest("+
			"$1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])",
			at, actor, action, target, outcome, remote, detail, count)
	}
}
