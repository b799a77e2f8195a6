package auth

import (
	"context"
	"crypto/hmac"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
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

type recentSession struct {
	id      string
	uid     int64
	keyHash []byte // the key hash that let the session in
	at      time.Time
}

type recentSessions struct {
	mu   sync.Mutex
	list []recentSession // list[head:] are remembered, oldest first
	head int
}

func (r *recentSessions) add(id string, c *gatehouse.Consumer) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.head < len(r.list) && (now.Sub(r.list[r.head].at) > recentHorizon || len(r.list)-r.head >= maxRecent) {
		r.list[r.head] = recentSession{}
		r.head++
	}
	if r.head > 0 && r.head >= len(r.list)/2 {
		// Amortised: each entry is moved at most once per halving.
		n := copy(r.list, r.list[r.head:])
		clear(r.list[n:])
		r.list, r.head = r.list[:n], 0
	}
	r.list = append(r.list, recentSession{id: id, uid: c.UID, keyHash: c.KeyHash, at: now})
}

// of returns the remembered sessions of the consumers uids (all when uids
// is nil).
func (r *recentSessions) of(uids map[int64]bool) []recentSession {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recentSession
	for _, x := range r.list[r.head:] {
		if uids == nil || uids[x.uid] {
			out = append(out, x)
		}
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

// endStale ends the remembered sessions of the consumers uids (nil: all)
// whose consumer is now disabled or gone, or holds another key than the one
// that let the session in.
func (s *Service) endStale(uids map[int64]bool) {
	recent := s.recent.of(uids)
	if len(recent) == 0 {
		return
	}
	// It runs in the feed's goroutine: bounded, so that the feed goes on.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	now := map[int64]*gatehouse.Consumer{}
	for _, x := range recent {
		c, seen := now[x.uid]
		if !seen {
			got, err := s.store.GetConsumer(ctx, x.uid)
			switch {
			case errors.Is(err, gatehouse.ErrNotFound):
			case err != nil:
				s.log.Warn("cannot check the sessions of a changed consumer", "consumer", x.uid, "err", err)
				return
			default:
				c = &got
			}
			now[x.uid] = c
		}
		reason := ""
		switch {
		case c == nil || c.Disabled:
			reason = gatehouse.EndConsumerDisabled
		case !hmac.Equal(c.KeyHash, x.keyHash):
			reason = gatehouse.EndKeyRotated
		default:
			continue
		}
		sess, err := s.store.GetSession(ctx, x.id)
		if err != nil || !sess.EndedAt.IsZero() {
			continue // ended already (by the change itself, most often)
		}
		at := s.clock.Now()
		if err := s.store.EndSession(ctx, x.id, reason, at); err != nil {
			s.log.Warn("cannot end a session of a changed consumer", "session", x.id, "err", err)
			continue
		}
		s.sessionEnded(x.id)
		s.audit(ctx, gatehouse.AuditEvent{At: at, Actor: "system", Action: "session.end", Target: "session:" + x.id,
			Outcome: gatehouse.OutcomeSuccess, Detail: "reason=" + reason + ": created after the consumer changed, before this server learnt of it"})
	}
}
