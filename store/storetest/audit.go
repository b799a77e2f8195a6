package storetest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

func auditEvents() []gatehouse.AuditEvent {
	return []gatehouse.AuditEvent{
		{At: at(0), Actor: "user:bob", Action: "token.issue", Target: "session:s1", Outcome: gatehouse.OutcomeSuccess, Remote: "192.0.2.1", Detail: "user v2", RequestID: "0af7651916cd43dd8448eb211c80319c"},
		{At: at(time.Minute), Actor: "consumer:unknown", Action: "token.refuse", Target: "consumer:unknown", Outcome: gatehouse.OutcomeFailure, Remote: "192.0.2.2", Detail: "consumer: unknown_key", RequestID: "client-id:1"},
		{At: at(2 * time.Minute), Actor: "cli:root", Action: "user.add", Target: "user:carol", Outcome: gatehouse.OutcomeSuccess},
		{At: at(3 * time.Minute), Actor: "system", Action: "tokens.gc", Target: "", Outcome: gatehouse.OutcomeSuccess, Detail: "not a token. event"},
		{At: at(4 * time.Minute), Actor: "user:bob", Action: "token", Target: "session:s2", Outcome: gatehouse.OutcomeSuccess},
		{At: at(5 * time.Minute), Actor: "user:bob", Action: "token.issue", Target: "session:s3", Outcome: gatehouse.OutcomeSuccess},
	}
}

var auditTests = []test{
	{"AppendList", func(t *testing.T, s store.Store) {
		if evs, err := s.ListAudit(ctx, store.AuditFilter{}); err != nil || len(evs) != 0 {
			t.Fatalf("ListAudit on an empty store = %v, %v", evs, err)
		}
		must(t, s.AppendAudit(ctx))
		in := auditEvents()
		must(t, s.AppendAudit(ctx, in[:2]...))
		for _, e := range in[2:] {
			must(t, s.AppendAudit(ctx, e))
		}
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != len(in) {
			t.Fatalf("ListAudit returned %d events, want %d", len(evs), len(in))
		}
		for i := range evs {
			if evs[i].ID <= 0 || i > 0 && evs[i].ID <= evs[i-1].ID {
				t.Fatalf("ids not increasing: %+v", evs)
			}
			want := in[i]
			want.ID, want.Count = evs[i].ID, 1 // a Count below 1 is stored as 1
			checkEqual(t, "audit event", evs[i], want)
		}
	}},
	{"Filter", func(t *testing.T, s store.Store) {
		must(t, s.AppendAudit(ctx, auditEvents()...))
		all, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		id := func(i int) int64 { return all[i].ID }
		cases := []struct {
			name   string
			filter store.AuditFilter
			want   []int // indexes into auditEvents
		}{
			{"since (inclusive)", store.AuditFilter{Since: at(2 * time.Minute)}, []int{2, 3, 4, 5}},
			{"until (exclusive)", store.AuditFilter{Until: at(2 * time.Minute)}, []int{0, 1}},
			{"since and until", store.AuditFilter{Since: at(time.Minute), Until: at(3*time.Minute + time.Second)}, []int{1, 2, 3}},
			{"exact action", store.AuditFilter{Action: "token.issue"}, []int{0, 5}},
			{"whole name: itself and the actions under it", store.AuditFilter{Action: "token"}, []int{0, 1, 4, 5}},
			{"action prefix", store.AuditFilter{Action: "token."}, []int{0, 1, 5}},
			{"other prefix", store.AuditFilter{Action: "user."}, []int{2}},
			{"other whole name", store.AuditFilter{Action: "user"}, []int{2}},
			{"a name is not a prefix of a longer name", store.AuditFilter{Action: "tokens"}, []int{3}},
			{"part of a name matches nothing", store.AuditFilter{Action: "tok"}, nil},
			{"no such action", store.AuditFilter{Action: "token.iss"}, nil},
			{"after id", store.AuditFilter{AfterID: id(3)}, []int{4, 5}},
			{"limit", store.AuditFilter{Limit: 2}, []int{0, 1}},
			{"after id and limit", store.AuditFilter{AfterID: id(0), Limit: 2}, []int{1, 2}},
			{"prefix, since, limit", store.AuditFilter{Action: "token.", Since: at(30 * time.Second), Limit: 1}, []int{1}},
			{"newest", store.AuditFilter{Limit: 2, Newest: true}, []int{4, 5}},
			{"newest of a prefix", store.AuditFilter{Action: "token.", Limit: 2, Newest: true}, []int{1, 5}},
			{"newest before", store.AuditFilter{Until: at(3 * time.Minute), Limit: 2, Newest: true}, []int{1, 2}},
			{"newest without a limit is everything", store.AuditFilter{Newest: true}, []int{0, 1, 2, 3, 4, 5}},
			{"newest, more than there are", store.AuditFilter{Action: "user", Limit: 5, Newest: true}, []int{2}},
			{"everything filtered", store.AuditFilter{Since: at(time.Hour)}, nil},
		}
		for _, tc := range cases {
			evs, err := s.ListAudit(ctx, tc.filter)
			must(t, err)
			var got []int64
			for _, e := range evs {
				got = append(got, e.ID)
			}
			var want []int64
			for _, i := range tc.want {
				want = append(want, id(i))
			}
			checkEqual(t, tc.name, got, want)
		}
	}},
}

var auditCountTests = []test{
	{"KeepsCount", func(t *testing.T, s store.Store) {
		// A copied row keeps its count.
		ev := auditEvents()[1]
		ev.Count = 7
		must(t, s.AppendAudit(ctx, ev))
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != 1 || evs[0].Count != 7 {
			t.Fatalf("AppendAudit with Count 7 stored %+v", evs)
		}
	}},
	{"AddsUnderKey", func(t *testing.T, s store.Store) {
		refusal := func(d time.Duration, remote, detail string, n int) gatehouse.AuditEvent {
			return gatehouse.AuditEvent{At: at(d), Actor: "consumer:unknown", Action: "token.refuse", Target: "consumer:unknown",
				Outcome: gatehouse.OutcomeFailure, Remote: remote, Detail: detail, Count: n}
		}
		first := refusal(0, "192.0.2.2", "p21.v2/consumer: unknown_key", 0)
		must(t, s.CountAudit(ctx, store.CountedEvent{Key: "k1", Event: first}))
		must(t, s.AppendAudit(ctx, auditEvents()[0])) // an ordinary event in between
		// Later events under k1 add their count and change nothing else.
		must(t, s.CountAudit(ctx,
			store.CountedEvent{Key: "k1", Event: refusal(time.Second, "192.0.2.99", "other", 5)},
			store.CountedEvent{Key: "k2", Event: refusal(2*time.Second, "2001:db8::/64", "p21.v1/consumer: unknown_key", 2)},
			store.CountedEvent{Key: "k1", Event: refusal(3*time.Second, "192.0.2.99", "other", 1)},
		))
		must(t, s.CountAudit(ctx))
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != 3 {
			t.Fatalf("%d rows, want 3: %+v", len(evs), evs)
		}
		want := first
		want.ID, want.Count = evs[0].ID, 7
		checkEqual(t, "row of k1", evs[0], want)
		if evs[1].Action != "token.issue" || evs[1].Count != 1 {
			t.Fatalf("ordinary event: %+v", evs[1])
		}
		want = refusal(2*time.Second, "2001:db8::/64", "p21.v1/consumer: unknown_key", 2)
		want.ID = evs[2].ID
		checkEqual(t, "row of k2", evs[2], want)
	}},
	{"CountsFromEveryWriter", func(t *testing.T, s store.Store) {
		const n = 40
		ev := gatehouse.AuditEvent{At: at(0), Actor: "unknown", Action: "token.refuse", Outcome: gatehouse.OutcomeFailure,
			Remote: "192.0.2.3", Detail: "oauth.token: rate_limited"}
		errs := parallel(n, func(i int) error {
			e := ev
			e.Count = i%3 + 1
			return s.CountAudit(ctx, store.CountedEvent{Key: "shared", Event: e},
				store.CountedEvent{Key: fmt.Sprintf("own-%d", i), Event: e})
		})
		want := 0
		for i := range n {
			must(t, errs[i])
			want += i%3 + 1
		}
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != n+1 {
			t.Fatalf("%d rows, want %d", len(evs), n+1)
		}
		total := 0
		for _, e := range evs {
			total += e.Count
		}
		if total != 2*want {
			t.Fatalf("counts add up to %d, want %d", total, 2*want)
		}
	}},
	{"Prune", func(t *testing.T, s store.Store) {
		must(t, s.AppendAudit(ctx, auditEvents()...))
		must(t, s.CountAudit(ctx, store.CountedEvent{Key: "k", Event: auditEvents()[1]}))
		n, err := s.PruneAudit(ctx, at(2*time.Minute))
		must(t, err)
		if n != 3 { // the two events before t0+2m and the counted row at t0+1m
			t.Fatalf("PruneAudit removed %d, want 3", n)
		}
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != 4 || !evs[0].At.Equal(at(2*time.Minute).Truncate(time.Microsecond)) {
			t.Fatalf("after pruning before t0+2m: %+v", evs)
		}
		// A pruned key starts a new row.
		must(t, s.CountAudit(ctx, store.CountedEvent{Key: "k", Event: auditEvents()[5]}))
		if evs, _ = s.ListAudit(ctx, store.AuditFilter{Action: "token.issue"}); len(evs) != 2 || evs[1].Count != 1 {
			t.Fatalf("a pruned key did not start a new row: %+v", evs)
		}
		if n, err = s.PruneAudit(ctx, at(0)); err != nil || n != 0 {
			t.Fatalf("pruning nothing = %d, %v", n, err)
		}
	}},
	{"PruneInChunks", func(t *testing.T, s store.Store) {
		const n = 10_050 // more than one chunk of either backend
		evs := make([]gatehouse.AuditEvent, n+1)
		for i := range evs {
			evs[i] = gatehouse.AuditEvent{At: at(time.Duration(i) * time.Millisecond), Actor: "system", Action: "test.event", Outcome: gatehouse.OutcomeSuccess}
		}
		must(t, s.AppendAudit(ctx, evs...))
		got, err := s.PruneAudit(ctx, at(n*time.Millisecond))
		must(t, err)
		if got != n {
			t.Fatalf("PruneAudit removed %d, want %d", got, n)
		}
		left, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(left) != 1 {
			t.Fatalf("%d events left, want 1", len(left))
		}
	}},
}

var authFailureTests = []test{
	{"Window", func(t *testing.T, s store.Store) {
		const w = 5 * time.Minute
		record := func(key string, d time.Duration, want int) {
			t.Helper()
			n, err := s.RecordAuthFailure(ctx, key, at(d), w)
			must(t, err)
			if n != want {
				t.Fatalf("RecordAuthFailure(%s, t0+%v) = %d, want %d", key, d, n, want)
			}
		}
		count := func(key string, d time.Duration, want int) {
			t.Helper()
			n, err := s.CountAuthFailures(ctx, key, at(d), w)
			must(t, err)
			if n != want {
				t.Fatalf("CountAuthFailures(%s, t0+%v) = %d, want %d", key, d, n, want)
			}
		}
		count("bob", 0, 0)
		record("bob", 0, 1)
		record("bob", time.Minute, 2)
		record("bob", 2*time.Minute, 3)
		record("alice", 2*time.Minute, 1)
		count("bob", 2*time.Minute, 3)
		count("bob", 5*time.Minute, 2)                  // (t0, t0+5m]: the failure at t0 is out
		count("bob", 5*time.Minute-time.Microsecond, 3) // still in
		count("bob", 30*time.Second, 1)                 // later failures are not counted
		record("bob", 6*time.Minute+30*time.Second, 2)  // t0+1m has aged out
		record("bob", 20*time.Minute, 1)
		count("alice", 2*time.Minute, 1)
		must(t, s.ClearAuthFailures(ctx, "bob"))
		count("bob", 20*time.Minute, 0)
		count("alice", 2*time.Minute, 1)
		must(t, s.ClearAuthFailures(ctx, "nobody"))
	}},
	{"Prune", func(t *testing.T, s store.Store) {
		const w = 5 * time.Minute
		for i, key := range []string{"bob", "alice", "unknown:h=0123456789abcdef:len=9"} {
			for j := range 3 {
				_, err := s.RecordAuthFailure(ctx, key, at(time.Duration(i+j)*time.Minute), w)
				must(t, err)
			}
		}
		// bob at 0,1,2m; alice at 1,2,3m; the third key at 2,3,4m.
		n, err := s.PruneAuthFailures(ctx, at(2*time.Minute))
		must(t, err)
		if n != 6 {
			t.Fatalf("PruneAuthFailures(t0+2m) removed %d, want 6 (at or before t0+2m)", n)
		}
		for key, want := range map[string]int{"bob": 0, "alice": 1, "unknown:h=0123456789abcdef:len=9": 2} {
			got, err := s.CountAuthFailures(ctx, key, at(4*time.Minute), w)
			must(t, err)
			if got != want {
				t.Errorf("%s: %d failures left, want %d", key, got, want)
			}
		}
		if n, err = s.PruneAuthFailures(ctx, at(0)); err != nil || n != 0 {
			t.Fatalf("pruning nothing = %d, %v", n, err)
		}
	}},
}

var lockoutTests = []test{
	{"OpenClose", func(t *testing.T, s store.Store) {
		const w = 10 * time.Second
		open := func(key string, d time.Duration, want bool) {
			t.Helper()
			opened, err := s.OpenLockout(ctx, key, at(d))
			must(t, err)
			if opened != want {
				t.Fatalf("OpenLockout(%s, t0+%v) = %t, want %t", key, d, opened, want)
			}
		}
		closeAt := func(d time.Duration, threshold int) []store.Lockout {
			t.Helper()
			ls, err := s.CloseLockouts(ctx, at(d), w, threshold)
			must(t, err)
			return ls
		}
		for _, d := range []time.Duration{-3 * time.Second, -2 * time.Second, -time.Second} {
			_, err := s.RecordAuthFailure(ctx, "bob", at(d), w)
			must(t, err)
		}
		open("bob", 0, true)
		open("bob", time.Second, false) // already open
		open("dave", 0, true)           // no failures kept at all
		if ls := closeAt(5*time.Second, 3); len(ls) != 1 || ls[0].Key != "dave" {
			// bob still has 3 failures in (t0-5s, t0+5s]; dave has none.
			t.Fatalf("close at t0+5s: %+v, want dave only", ls)
		}
		if ls := closeAt(6*time.Second, 3); len(ls) != 0 {
			t.Fatalf("close at t0+6s: %+v, want none (bob's 3 failures are in the window)", ls)
		}
		ls := closeAt(8*time.Second, 3)
		if len(ls) != 1 || ls[0].Key != "bob" {
			t.Fatalf("close at t0+8s: %+v, want bob", ls)
		}
		// The third most recent failure (t0-3s) left the window at t0+7s.
		if !ls[0].Since.Equal(at(0).Truncate(time.Microsecond)) || !ls[0].Until.Equal(at(7*time.Second).Truncate(time.Microsecond)) {
			t.Errorf("bob's lockout: since %v until %v, want %v and %v", ls[0].Since, ls[0].Until, at(0), at(7*time.Second))
		}
		if ls := closeAt(9*time.Second, 3); len(ls) != 0 {
			t.Fatalf("a closed lockout closed again: %+v", ls)
		}
		open("bob", 10*time.Second, true) // a new one may open
		closed, err := s.CloseLockout(ctx, "bob")
		must(t, err)
		if !closed {
			t.Fatal("CloseLockout of an open lockout = false")
		}
		if closed, err = s.CloseLockout(ctx, "bob"); err != nil || closed {
			t.Fatalf("CloseLockout of a closed lockout = %t, %v", closed, err)
		}
	}},
	{"CloseOnce", func(t *testing.T, s store.Store) {
		const n = 30
		for i := range n {
			_, err := s.OpenLockout(ctx, "user"+strconv.Itoa(i), at(0))
			must(t, err)
		}
		results := make(chan []store.Lockout, 4)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				ls, err := s.CloseLockouts(ctx, at(time.Minute), time.Second, 1)
				results <- ls
				errs <- err
			}()
		}
		seen := map[string]int{}
		for range 4 {
			must(t, <-errs)
			for _, l := range <-results {
				seen[l.Key]++
			}
		}
		if len(seen) != n {
			t.Fatalf("%d lockouts closed, want %d", len(seen), n)
		}
		for k, c := range seen {
			if c != 1 {
				t.Errorf("lockout %s closed %d times", k, c)
			}
		}
	}},
}
