package issue

import (
	"context"
	"crypto/hmac"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// A consumer disabled, deleted or re-keyed by another process (the CLI,
// another replica) is known here only at the next feed poll: until then
// the consumer cache still lets its old key in. The change ended the
// consumer's sessions when it was stored, but not those this process
// creates from the stale cache after that. So the service remembers the
// consumer sessions it created lately, with the cache entry that let them
// in, and when the feed reports a change to their consumer it ends those
// the consumer, as now stored, no longer allows.

// recentHorizon is how long a consumer session is remembered: far longer
// than the feed takes to report a change.
const recentHorizon = 10 * time.Second

// maxRecent bounds the memory: at most this many sessions are remembered
// (the oldest go first).
const maxRecent = 200_000

// A recentSession is what endStale needs of a remembered session.
type recentSession struct {
	id      string
	uid     int64
	keyHash []byte // the key hash that let the session in
}

// recentEntry is a remembered session as kept: pointer-free, so that the
// collector never scans the list (up to maxRecent entries), and small (32
// bytes). The consumer and key that let the session in are an index into
// recentSessions.keys.
type recentEntry struct {
	id  uuid.UUID
	at  int64 // unix nanoseconds
	key uint32
}

// recentKey is a consumer and the hash of the key it had.
type recentKey struct {
	uid  int64
	hash string
}

type recentSessions struct {
	mu   sync.Mutex
	list []recentEntry // list[head:] are remembered, oldest first
	head int
	keys []recentKey // the keys list[head:] refer to (and maybe a few more)
	key  map[recentKey]uint32
	last uint32 // the key of the last entry added
}

// add remembers the session id (its ID is id.String()), let in by c.
func (r *recentSessions) add(id uuid.UUID, c *gatehouse.Consumer) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	horizon := now.Add(-recentHorizon).UnixNano()
	for r.head < len(r.list) && (r.list[r.head].at < horizon || len(r.list)-r.head >= maxRecent) {
		r.head++
	}
	if r.head > 0 && r.head >= len(r.list)/2 {
		r.compact()
	}
	ki, ok := r.last, false
	if int(ki) < len(r.keys) && r.keys[ki].uid == c.UID && r.keys[ki].hash == string(c.KeyHash) {
		ok = true // the same consumer and key as the last session: the usual case
	} else {
		ki, ok = r.key[recentKey{uid: c.UID, hash: string(c.KeyHash)}]
	}
	if !ok {
		k := recentKey{uid: c.UID, hash: string(c.KeyHash)}
		if r.key == nil {
			r.key = map[recentKey]uint32{}
		}
		ki = uint32(len(r.keys))
		r.keys = append(r.keys, k)
		r.key[k] = ki
	}
	r.last = ki
	r.list = append(r.list, recentEntry{id: id, at: now.UnixNano(), key: ki})
}

// compact moves the remembered entries to the front (amortised: each entry
// is moved at most once per halving) and drops the keys none refers to.
func (r *recentSessions) compact() {
	n := copy(r.list, r.list[r.head:])
	r.list, r.head = r.list[:n], 0
	used := make(map[uint32]uint32, len(r.keys))
	var keys []recentKey
	for i := range r.list {
		old := r.list[i].key
		ni, ok := used[old]
		if !ok {
			ni = uint32(len(keys))
			keys = append(keys, r.keys[old])
			used[old] = ni
		}
		r.list[i].key = ni
	}
	r.keys, r.last = keys, 0
	r.key = make(map[recentKey]uint32, len(keys))
	for i, k := range keys {
		r.key[k] = uint32(i)
	}
}

// of returns the remembered sessions of the consumers uids (all when uids
// is nil).
func (r *recentSessions) of(uids map[int64]bool) []recentSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recentSession
	for i := r.head; i < len(r.list); i++ {
		e := r.list[i]
		k := r.keys[e.key]
		if uids != nil && !uids[k.uid] {
			continue
		}
		out = append(out, recentSession{id: e.id.String(), uid: k.uid, keyHash: []byte(k.hash)})
	}
	return out
}

// serviceListener keeps the consumer cache current and ends the sessions a
// stale entry let in.
type serviceListener struct{ s *Service }

func (l serviceListener) Changes(changes []gatehouse.Change) {
	l.s.consumers.Changes(changes)
	uids := map[int64]bool{}
	for _, ch := range changes {
		if ch.Kind != gatehouse.ChangeConsumer {
			continue
		}
		if uid, err := strconv.ParseInt(ch.Key, 10, 64); err == nil {
			uids[uid] = true
		}
	}
	if len(uids) > 0 {
		l.s.endStale(uids)
	}
}

func (l serviceListener) Reset() {
	l.s.consumers.Reset()
	l.s.endStale(nil)
}

// endStale ends, for each consumer of uids (nil: all) with sessions
// remembered here, the sessions the consumer as now stored no longer
// allows: all of them when it is disabled or gone (any still active was let
// in after the change ended the others), else those still active that this
// process let in with a key the consumer no longer has.
func (s *Service) endStale(uids map[int64]bool) {
	recent := s.recent.of(uids)
	if len(recent) == 0 {
		return
	}
	byUID := map[int64][]recentSession{}
	for _, x := range recent {
		byUID[x.uid] = append(byUID[x.uid], x)
	}
	// It runs in the feed's goroutine: bounded, so that the feed goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	for uid, xs := range byUID {
		if err := s.endStaleOf(ctx, uid, xs); err != nil {
			s.log.Warn("cannot end the sessions a changed consumer no longer allows", "consumer", uid, "err", err)
		}
	}
}

func (s *Service) endStaleOf(ctx context.Context, uid int64, xs []recentSession) error {
	c, err := s.store.GetConsumer(ctx, uid)
	gone := errors.Is(err, gatehouse.ErrNotFound)
	if err != nil && !gone {
		return err
	}
	now := s.clock.Now()
	if gone || c.Disabled {
		ended, err := s.store.EndSessions(ctx, store.SessionFilter{ConsumerUID: uid}, gatehouse.EndConsumerDisabled, now)
		if err != nil {
			return err
		}
		s.staleEnded(ctx, ended, gatehouse.EndConsumerDisabled, now)
		return nil
	}
	oldKey := map[string]bool{}
	for _, x := range xs {
		if !hmac.Equal(c.KeyHash, x.keyHash) {
			oldKey[x.id] = true
		}
	}
	if len(oldKey) == 0 {
		return nil
	}
	// After a new key, the sessions still active are those let in after it.
	active, err := s.store.ListSessions(ctx, store.SessionFilter{ConsumerUID: uid, ActiveAt: now})
	if err != nil {
		return err
	}
	var ended []string
	for _, x := range active {
		if !oldKey[x.ID] {
			continue
		}
		if err := s.store.EndSession(ctx, x.ID, gatehouse.EndKeyRotated, now); err != nil {
			return err
		}
		ended = append(ended, x.ID)
	}
	s.staleEnded(ctx, ended, gatehouse.EndKeyRotated, now)
	return nil
}

func (s *Service) staleEnded(ctx context.Context, ids []string, reason string, at time.Time) {
	if len(ids) == 0 {
		return
	}
	s.sessionEnded(ids...)
	for _, id := range ids {
		s.audit(ctx, gatehouse.AuditEvent{At: at, Actor: "system", Action: "session.end", Target: "session:" + id,
			Outcome: gatehouse.OutcomeSuccess, Detail: "reason=" + reason + ": let in after the consumer changed, before this server learnt of it"})
	}
}
