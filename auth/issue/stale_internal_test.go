package issue

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
)

func TestRecentSessionsRemember(t *testing.T) {
	var r recentSessions
	a := &gatehouse.Consumer{UID: 1, KeyHash: bytes.Repeat([]byte{1}, 32)}
	a2 := &gatehouse.Consumer{UID: 1, KeyHash: bytes.Repeat([]byte{2}, 32)}
	b := &gatehouse.Consumer{UID: 2, KeyHash: bytes.Repeat([]byte{3}, 32)}
	want := map[string]*gatehouse.Consumer{}
	add := func(c *gatehouse.Consumer) {
		id := uuid.New()
		r.add(id, c)
		want[id.String()] = c
	}
	for i := range 52 {
		add([]*gatehouse.Consumer{a, a2, b}[i%3])
	}

	check := func(uids map[int64]bool) {
		t.Helper()
		got := r.of(uids)
		n := 0
		for _, c := range want {
			if uids == nil || uids[c.UID] {
				n++
			}
		}
		if len(got) != n {
			t.Fatalf("of(%v): %d sessions, want %d", uids, len(got), n)
		}
		for _, x := range got {
			c := want[x.id]
			if c == nil || c.UID != x.uid || !bytes.Equal(c.KeyHash, x.keyHash) {
				t.Fatalf("of(%v): %+v is not what was added (%+v)", uids, x, c)
			}
		}
	}
	check(nil)
	check(map[int64]bool{1: true})
	check(map[int64]bool{2: true})

	// The older entries pass the horizon: the next add forgets them and
	// compacts the rest, keeping what each remaining entry refers to.
	old := time.Now().Add(-2 * recentHorizon).UnixNano()
	before, forgot := len(r.list), 30
	for i := range r.list[:forgot] {
		r.list[i].at = old
		delete(want, r.list[i].id.String())
	}
	add(b)
	if r.head != 0 || len(r.list) != before-forgot+1 {
		t.Fatalf("after compaction: head %d, %d entries, want 0 and %d", r.head, len(r.list), before-forgot+1)
	}
	if len(r.keys) > 3 {
		t.Fatalf("%d keys kept for 3 consumers' keys", len(r.keys))
	}
	check(nil)
	check(map[int64]bool{1: true})
	check(map[int64]bool{2: true})

	// Once all have passed the horizon, nothing (and no key) is kept.
	for i := range r.list {
		r.list[i].at = old
	}
	clear(want)
	add(a)
	if len(r.list) != 1 || len(r.keys) != 1 {
		t.Fatalf("after all expired: %d entries, %d keys; want 1 and 1", len(r.list), len(r.keys))
	}
	check(nil)
}

func BenchmarkRecentSessionsAdd(b *testing.B) {
	var r recentSessions
	c := &gatehouse.Consumer{UID: 1, KeyHash: bytes.Repeat([]byte{1}, 32)}
	ids := make([]uuid.UUID, 1024)
	for i := range ids {
		ids[i] = uuid.New()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.add(ids[i%len(ids)], c)
	}
}
