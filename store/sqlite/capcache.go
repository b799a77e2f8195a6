package sqlite

import (
	"database/sql"
	"math"
	"slices"
)

// capCache keeps, for principals recently capped, their sessions not yet
// ended, so that enforcing --max-sessions on a principal at its cap (every
// token of a busy service consumer) does not walk the index each time. It
// belongs to the writer goroutine.
//
// It is a copy of what the file holds, and is dropped whenever that may no
// longer be so: when another connection has committed (PRAGMA data_version),
// when a batch is rolled back, and when an op ends or changes sessions other
// than through CreateSession.
type capCache struct {
	m       map[principal][]openSession // oldest first, as the index orders them
	entries int
}

type principal struct {
	consumer int64
	username string // lower-cased
}

// openSession is a session not yet ended. NULL times are math.MinInt64,
// which sorts and compares as SQL's NULL does here (never active).
type openSession struct {
	created, expires, seq int64
	id                    string
}

// maxCapEntries bounds the cache; past it, it starts over.
const maxCapEntries = 100_000

func nullMin(v sql.NullInt64) int64 {
	if !v.Valid {
		return math.MinInt64
	}
	return v.Int64
}

func (c *capCache) clear() {
	c.m, c.entries = nil, 0
}

func (c *capCache) drop(p principal) {
	if s, ok := c.m[p]; ok {
		c.entries -= len(s)
		delete(c.m, p)
	}
}

func (c *capCache) get(p principal) ([]openSession, bool) {
	s, ok := c.m[p]
	return s, ok
}

func (c *capCache) put(p principal, s []openSession) {
	c.drop(p)
	if c.entries+len(s) > maxCapEntries {
		c.clear()
	}
	if c.m == nil {
		c.m = map[principal][]openSession{}
	}
	c.m[p] = s
	c.entries += len(s)
}

func compareOpen(a, b openSession) int {
	switch {
	case a.created != b.created:
		return cmpInt(a.created, b.created)
	case a.expires != b.expires:
		return cmpInt(a.expires, b.expires)
	}
	return cmpInt(a.seq, b.seq)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// insert adds x to a sorted set.
func insertOpen(set []openSession, x openSession) []openSession {
	i, _ := slices.BinarySearchFunc(set, x, compareOpen)
	return slices.Insert(set, i, x)
}

// overCap picks from set (sorted, not holding the new session) the sessions
// to end: those active at now beyond the newest keep. It is the query of
// capQuery done in memory.
func overCap(set []openSession, now int64, keep int) []openSession {
	var out []openSession
	seen := 0
	for i := len(set) - 1; i >= 0; i-- {
		if set[i].expires <= now {
			continue
		}
		if seen++; seen > keep {
			out = append(out, set[i])
		}
	}
	return out
}
