package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
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
// cap are written with one multi-row INSERT per table. Those with a cap
// are worked out one after another, in the order they came, so that each
// counts the ones before it exactly as on its own; they go in lanes of
// their own by principal, one transaction at a time in each lane: a
// principal's creates take turns on its lock anyway, so while one
// transaction holds it the next ones gather into the following transaction
// rather than into several that would wait for each other, and other
// principals go on in the other lanes.

const (
	// maxCreates bounds the creates of one transaction.
	maxCreates = 256
	// createsInFlight bounds the transactions of creates without a cap at
	// once.
	createsInFlight = 4
	// cappedLanes is the number of lanes of creates with a cap: many
	// principals spread over them, mostly one create per transaction (as
	// fast as on their own), while one busy principal's creates gather into
	// large transactions in its lane.
	cappedLanes = 16
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
	s           *Store
	free        lane
	capped      [cappedLanes]lane
	closing     chan struct{}
	wg, runners sync.WaitGroup
	once        sync.Once
}

// A lane gathers creates into transactions, up to cap(slots) at once.
type lane struct {
	ops   chan *createOp
	slots chan struct{}
}

func newCreates(s *Store) *creates {
	c := &creates{s: s, closing: make(chan struct{}),
		free: lane{ops: make(chan *createOp, maxCreates), slots: make(chan struct{}, createsInFlight)}}
	c.runners.Go(func() { c.run(&c.free) })
	for i := range c.capped {
		c.capped[i] = lane{ops: make(chan *createOp, maxCreates), slots: make(chan struct{}, 1)}
		c.runners.Go(func() { c.run(&c.capped[i]) })
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
		l = &c.capped[uint64(o.lock)%cappedLanes]
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
	if len(live) == 0 {
		return
	}
	if live[0].n.MaxSessions > 0 && distinctLocks(live) {
		// A transaction together saves these creates nothing but a commit
		// each, and costs them a round trip and running one at a time.
		s.createEach(live)
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
	s.createEach(live)
}

// createEach runs each create on its own, at once.
func (s *Store) createEach(ops []*createOp) {
	var wg sync.WaitGroup
	for _, o := range ops {
		wg.Go(func() {
			ended, err := s.createOne(o.ctx, o.n)
			o.done <- createResult{ended, err}
		})
	}
	wg.Wait()
}

// distinctLocks reports whether no two creates of ops (all with a cap)
// are of one principal.
func distinctLocks(ops []*createOp) bool {
	seen := make(map[int64]bool, len(ops))
	for _, o := range ops {
		if seen[o.lock] {
			return false
		}
		seen[o.lock] = true
	}
	return true
}

// quietFeedSQL keeps the feed entries of the sessions a cap ends from
// being announced (see migration 6): one principal over its cap ends a
// session with every token, and NOTIFY would serialize those commits across
// the cluster. Other replicas learn of them at their next poll.
const quietFeedSQL = "SELECT set_config('gatehouse.quiet_feed', 'on', true)"

// openSQL reads a principal's open sessions, from its lower bound on (see
// capSQL), for the cap of the creates of a batch.
const openSQL = `SELECT seq, id, created_at, expires_at FROM sessions
	WHERE consumer_uid = $1 AND username_key = $2 AND ended_at IS NULL
	AND seq >= coalesce((SELECT min_seq FROM principals WHERE consumer_uid = $1 AND username_key = $2), 0)`

// boundSQL moves a principal's lower bound as capSQL does: to the oldest of
// $3 (the oldest open session it kept that was not expired before the
// skew, NULL for none) and the new sessions $4 it kept, down at once, up
// once it lags by 1000.
const boundSQL = `INSERT INTO principals (consumer_uid, username_key, min_seq)
	SELECT $1, $2, least($3::bigint, (SELECT min(seq) FROM sessions WHERE id = ANY($4::text[])))
	ON CONFLICT (consumer_uid, username_key) DO UPDATE SET min_seq = excluded.min_seq
	WHERE excluded.min_seq < principals.min_seq OR excluded.min_seq > principals.min_seq + 1000`

// open is a session counted by a cap: seq orders sessions created at the
// same time (new sessions of the batch come after every stored one, in
// their order).
type openSession struct {
	seq              int64
	id               string
	created, expires pgtype.Timestamptz
	stored           bool
}

// older reports whether a is beyond b in the cap's order: created, then
// expires, then seq, newest first, NULLs last.
func older(a, b *openSession) bool {
	if c := cmpNullTime(a.created, b.created); c != 0 {
		return c < 0
	}
	if c := cmpNullTime(a.expires, b.expires); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

// cmpNullTime orders NULL before every time (it is last when newest come first).
func cmpNullTime(a, b pgtype.Timestamptz) int {
	switch {
	case !a.Valid && !b.Valid:
		return 0
	case !a.Valid:
		return -1
	case !b.Valid:
		return 1
	}
	return a.Time.Compare(b.Time)
}

// createTogether writes live in one transaction and returns each create's
// ended sessions, in live's order. The creates with a cap are grouped by
// principal: a group takes its principal's lock (groups in the order of
// their locks, so that two transactions take the locks of their
// principals in the same order and never deadlock), reads the principal's
// open sessions once, and its creates' caps are worked out here, one after
// another in the order they came, exactly as each would on its own; then
// everything is written with one multi-row statement per table. Two round
// trips: BEGIN, the locks and the reads; the writes and COMMIT.
func (s *Store) createTogether(live []*createOp) ([][]string, error) {
	type group struct {
		lock int64
		uid  int64
		key  string
		ops  []int
		q    *pgx.QueuedQuery
		open []*openSession
	}
	byLock := map[int64]*group{}
	var groups []*group
	for i, o := range live {
		if o.n.MaxSessions <= 0 {
			continue
		}
		g := byLock[o.lock]
		if g == nil {
			g = &group{lock: o.lock, uid: o.n.Session.ConsumerUID, key: lower(o.n.Session.Username)}
			byLock[o.lock] = g
			groups = append(groups, g)
		}
		g.ops = append(g.ops, i)
	}
	slices.SortFunc(groups, func(a, b *group) int { return cmp.Compare(a.lock, b.lock) })

	// Bounded like one create.
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// A connection left inside a transaction is closed by the pool.
	defer conn.Release()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if len(groups) > 0 {
		b.Queue(quietFeedSQL)
		for _, g := range groups {
			b.Queue("SELECT pg_advisory_xact_lock($1)", g.lock)
			g.q = b.Queue(openSQL, g.uid, g.key)
		}
		br := conn.SendBatch(ctx, b)
		for _, q := range b.QueuedQueries {
			g := (*group)(nil)
			for _, x := range groups {
				if x.q == q {
					g = x
				}
			}
			if g == nil {
				if _, err = br.Exec(); err != nil {
					break
				}
				continue
			}
			var rows pgx.Rows
			if rows, err = br.Query(); err != nil {
				break
			}
			for rows.Next() {
				o := &openSession{stored: true}
				if err = rows.Scan(&o.seq, &o.id, &o.created, &o.expires); err != nil {
					break
				}
				g.open = append(g.open, o)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
			if err != nil {
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		b = &pgx.Batch{}
	}

	// The caps, one create after another.
	ended := make([][]string, len(live))
	var w rowWriter
	type victim struct {
		id string
		at time.Time
	}
	victims := make([][]victim, len(live))
	for _, g := range groups {
		next := int64(math.MaxInt64 - len(g.ops))
		for _, i := range g.ops {
			n := live[i].n
			x := &n.Session
			keep := n.MaxSessions
			if x.Active(x.CreatedAt) {
				keep-- // the new session takes one place
			}
			now := endTime(x.CreatedAt)
			var counted []*openSession
			for _, o := range g.open {
				if o.expires.Valid && o.expires.Time.After(now) {
					counted = append(counted, o)
				}
			}
			slices.SortFunc(counted, func(a, b *openSession) int {
				switch {
				case older(b, a):
					return -1
				case older(a, b):
					return 1
				}
				return 0
			})
			if len(counted) > keep {
				for _, o := range counted[keep:] {
					victims[i] = append(victims[i], victim{o.id, now})
					ended[i] = append(ended[i], o.id)
				}
				gone := counted[keep:]
				g.open = slices.DeleteFunc(g.open, func(o *openSession) bool { return slices.Contains(gone, o) })
			}
			if x.EndedAt.IsZero() {
				g.open = append(g.open, &openSession{seq: next, id: x.ID, created: ts(x.CreatedAt), expires: ts(x.ExpiresAt)})
				next++
			}
		}
	}

	// Everything, in the order it came: a create's session and audit
	// events, then the feed entries and audit events of the sessions it
	// ended.
	for i, o := range live {
		w.session(o.n)
		w.audit = append(w.audit, o.n.Audit...)
		for _, v := range victims[i] {
			w.change("session", v.id, "end")
			w.audit = append(w.audit, store.CapEndEvent(o.n, v.id))
		}
	}
	w.queue(b)
	var vids []string
	var vats []pgtype.Timestamptz
	for i := range live {
		for _, v := range victims[i] {
			vids, vats = append(vids, v.id), append(vats, ts(v.at))
		}
	}
	if len(vids) > 0 {
		b.Queue("UPDATE sessions SET ended_at = v.at, end_reason = $3 FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at) "+
			"WHERE sessions.id = v.id AND sessions.ended_at IS NULL", vids, vats, gatehouse.EndCap)
	}
	for _, g := range groups {
		var oldest *int64
		var kept []string
		for _, o := range g.open {
			switch {
			case !o.stored:
				kept = append(kept, o.id)
			case o.expires.Valid && o.expires.Time.After(time.Now().Add(-capSkew)) && (oldest == nil || o.seq < *oldest):
				oldest = &o.seq
			}
		}
		if oldest != nil || len(kept) > 0 {
			b.Queue(boundSQL, g.uid, g.key, oldest, kept)
		}
	}
	commit := b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	for _, q := range b.QueuedQueries {
		var tag pgconn.CommandTag
		if tag, err = br.Exec(); err != nil {
			break
		}
		if q == commit && tag.String() != "COMMIT" {
			err = errors.New("the transaction of session creates was rolled back")
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return ended, nil
}

func ts(t time.Time) pgtype.Timestamptz { return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()} }

// rowWriter gathers the rows of a batch of creates, written with one
// multi-row INSERT per table.
type rowWriter struct {
	ids, users, flows, scopes, reasons, remotes, keys []string
	uids                                              []int64
	created, expires, endedAt                         []pgtype.Timestamptz
	rhashes                                           [][]byte
	rids                                              []string
	kinds, ckeys, cops                                []string
	audit                                             []gatehouse.AuditEvent
}

func (w *rowWriter) session(n *store.NewSession) {
	x := &n.Session
	w.ids, w.users, w.uids = append(w.ids, x.ID), append(w.users, x.Username), append(w.uids, x.ConsumerUID)
	w.flows, w.scopes = append(w.flows, x.Flow), append(w.scopes, x.Scope)
	w.created, w.expires, w.endedAt = append(w.created, ts(x.CreatedAt)), append(w.expires, ts(x.ExpiresAt)), append(w.endedAt, ts(x.EndedAt))
	w.reasons, w.remotes, w.keys = append(w.reasons, x.EndReason), append(w.remotes, x.RemoteAddr), append(w.keys, lower(x.Username))
	if len(n.RefreshHash) > 0 {
		w.rhashes, w.rids = append(w.rhashes, n.RefreshHash), append(w.rids, x.ID)
	}
}

func (w *rowWriter) change(kind, key, op string) {
	w.kinds, w.ckeys, w.cops = append(w.kinds, kind), append(w.ckeys, key), append(w.cops, op)
}

func (w *rowWriter) queue(b *pgx.Batch) {
	b.Queue("INSERT INTO sessions ("+sessionCols+", username_key) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], "+
		"$4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[])",
		w.ids, w.users, w.uids, w.flows, w.scopes, w.created, w.expires, w.endedAt, w.reasons, w.remotes, w.keys)
	if len(w.rhashes) > 0 {
		b.Queue("INSERT INTO refresh_tokens (hash, session_id, spent) SELECT h, id, false FROM unnest($1::bytea[], $2::text[]) AS t(h, id)",
			w.rhashes, w.rids)
	}
	if len(w.kinds) > 0 {
		b.Queue("INSERT INTO changes (kind, key, op) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])", w.kinds, w.ckeys, w.cops)
	}
	if k := len(w.audit); k > 0 {
		at := make([]pgtype.Timestamptz, k)
		actor, action, target, outcome, remote, detail := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
		count, reqs := make([]int64, k), make([]string, k)
		for i, e := range w.audit {
			at[i], actor[i], action[i], target[i], outcome[i], remote[i], detail[i], count[i], reqs[i] =
				ts(e.At), e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail, int64(max(e.Count, 1)), e.RequestID
		}
		b.Queue("INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count, request_id) SELECT * FROM unnest("+
			"$1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])",
			at, actor, action, target, outcome, remote, detail, count, reqs)
	}
}
