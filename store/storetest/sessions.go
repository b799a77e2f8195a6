package storetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

var sessionTests = append([]test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		x := gatehouse.Session{ID: "5f0c6b8e-4a51-4b9e-9a43-2f1d2c3b4a59", Username: "Bob", ConsumerUID: 7,
			Flow: gatehouse.FlowOAuthPassword, Scope: "/api /p21sdk", CreatedAt: at(0), ExpiresAt: at(time.Hour),
			RemoteAddr: "[2001:db8::1]:443"}
		ended, err := s.CreateSession(ctx, store.NewSession{Session: x, RefreshHash: hash("r1"), MaxSessions: 5})
		must(t, err)
		if len(ended) != 0 {
			t.Fatalf("first session ended %v", ended)
		}
		checkEqual(t, "GetSession", getSession(t, s, x.ID), x)

		never := gatehouse.Session{ID: "never", ConsumerUID: 3, Flow: gatehouse.FlowConsumer, CreatedAt: at(0),
			ExpiresAt: time.Unix(gatehouse.NeverExpiresUnix, 0)}
		createSession(t, s, never, "", 0)
		checkEqual(t, "never-expiring session", getSession(t, s, "never"), never)

		_, err = s.GetSession(ctx, "nope")
		wantErr(t, "unknown session", err, gatehouse.ErrNotFound)
		_, err = s.CreateSession(ctx, store.NewSession{Session: session(x.ID, 0, "eve", 0)})
		wantErr(t, "duplicate session id", err, gatehouse.ErrConflict)
		checkEqual(t, "session after a duplicate", getSession(t, s, x.ID), x)
	}},
	{"AuditInSameTransaction", func(t *testing.T, s store.Store) {
		ev := gatehouse.AuditEvent{At: at(0), Actor: "consumer:7", Action: "token.issue", Target: "session:s1",
			Outcome: gatehouse.OutcomeSuccess, Remote: "192.0.2.1", Detail: "consumer"}
		_, err := s.CreateSession(ctx, store.NewSession{Session: session("s1", 7, "", 0), Audit: []gatehouse.AuditEvent{ev}})
		must(t, err)
		// A failing create writes none of its events.
		_, err = s.CreateSession(ctx, store.NewSession{Session: session("s1", 7, "", 0),
			Audit: []gatehouse.AuditEvent{{At: at(1), Action: "token.issue", Detail: "second"}}})
		wantErr(t, "duplicate session", err, gatehouse.ErrConflict)
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != 1 {
			t.Fatalf("audit events: %+v", evs)
		}
		ev.ID, ev.Count = evs[0].ID, 1
		checkEqual(t, "audit event", evs[0], ev)
	}},
	{"DuplicateRefreshHash", func(t *testing.T, s store.Store) {
		createSession(t, s, session("s1", 0, "bob", 0), "r1", 0)
		_, err := s.CreateSession(ctx, store.NewSession{Session: session("s2", 0, "bob", 0), RefreshHash: hash("r1")})
		wantErr(t, "refresh hash in use", err, gatehouse.ErrConflict)
		_, err = s.GetSession(ctx, "s2")
		wantErr(t, "session of the failed create", err, gatehouse.ErrNotFound)
	}},
	{"Cap", testCap},
	{"CapAudit", testCapAudit},
	{"AnyContextUsername", testAnyContextUsername},
	{"CapCountsOnlyActive", func(t *testing.T, s store.Store) {
		// An expired session and an ended one do not count and are left alone.
		old := session("old", 7, "bob", -2*time.Hour) // expired at t0-1h
		createSession(t, s, old, "", 0)
		createSession(t, s, session("ended", 7, "bob", -time.Minute), "", 0)
		must(t, s.EndSession(ctx, "ended", gatehouse.EndAdmin, at(-30*time.Second)))
		createSession(t, s, session("a", 7, "bob", 0), "", 2)
		if ended := createSession(t, s, session("b", 7, "bob", time.Second), "", 2); len(ended) != 0 {
			t.Fatalf("cap of 2 with two active sessions ended %v", ended)
		}
		checkEqual(t, "expired session", getSession(t, s, "old"), old)
		if x := getSession(t, s, "ended"); x.EndReason != gatehouse.EndAdmin {
			t.Fatalf("ended session changed: %+v", x)
		}
		if ended := createSession(t, s, session("c", 7, "BOB", 2*time.Second), "", 2); !sameSet(ended, []string{"a"}) {
			t.Fatalf("third session ended %v, want [a]", ended)
		}
	}},
	{"EndSession", func(t *testing.T, s store.Store) {
		createSession(t, s, session("s1", 7, "bob", 0), "", 0)
		must(t, s.EndSession(ctx, "s1", gatehouse.EndRevoked, at(time.Minute)))
		x := getSession(t, s, "s1")
		if !x.EndedAt.Equal(at(time.Minute).Truncate(time.Microsecond)) || x.EndReason != gatehouse.EndRevoked {
			t.Fatalf("ended session: %+v", x)
		}
		rev := lastRev(t, s)
		must(t, s.EndSession(ctx, "s1", gatehouse.EndAdmin, at(2*time.Minute)))
		checkEqual(t, "ending again keeps the first end", getSession(t, s, "s1"), x)
		noChanges(t, s, rev)
		wantErr(t, "end unknown session", s.EndSession(ctx, "nope", gatehouse.EndAdmin, at(0)), gatehouse.ErrNotFound)
	}},
	{"List", testListSessions},
	{"CountActive", func(t *testing.T, s store.Store) {
		if n, err := s.CountActiveSessions(ctx, at(0)); err != nil || n != 0 {
			t.Fatalf("CountActiveSessions on an empty store = %d, %v", n, err)
		}
		createSession(t, s, session("a", 1, "x", 0), "", 0)              // active until t0+1h
		createSession(t, s, session("b", 0, "y", 30*time.Minute), "", 0) // until t0+1h30m
		createSession(t, s, session("c", 2, "", 0), "", 0)
		must(t, s.EndSession(ctx, "c", gatehouse.EndAdmin, at(time.Minute)))
		cases := []struct {
			at   time.Time
			want int
		}{
			{at(30 * time.Second), 2}, // c counts as ended whatever the time
			{at(31 * time.Minute), 2},
			{at(time.Hour), 1}, // a expires at that instant
			{at(90 * time.Minute), 0},
		}
		for _, tc := range cases {
			if n, err := s.CountActiveSessions(ctx, tc.at); err != nil || n != tc.want {
				t.Fatalf("CountActiveSessions(%v) = %d, %v; want %d", tc.at, n, err, tc.want)
			}
		}
	}},
	{"Delete", func(t *testing.T, s store.Store) {
		cut := at(2 * time.Hour)
		createSession(t, s, session("expired", 1, "a", 0), "r-expired", 0) // expires t0+1h
		createSession(t, s, session("ended", 1, "b", 2*time.Hour), "r-ended", 0)
		must(t, s.EndSession(ctx, "ended", gatehouse.EndAdmin, at(time.Hour+59*time.Minute)))
		createSession(t, s, session("active", 1, "c", 90*time.Minute), "r-active", 0) // until t0+2h30m
		createSession(t, s, session("ended-late", 1, "d", 90*time.Minute), "r-late", 0)
		must(t, s.EndSession(ctx, "ended-late", gatehouse.EndAdmin, at(2*time.Hour+time.Minute)))
		createSession(t, s, session("edge", 1, "e", time.Hour), "", 0) // expires exactly at the cut

		n, err := s.DeleteSessions(ctx, cut)
		must(t, err)
		if n != 2 {
			t.Fatalf("DeleteSessions = %d, want 2", n)
		}
		for _, id := range []string{"expired", "ended"} {
			_, err := s.GetSession(ctx, id)
			wantErr(t, "deleted session "+id, err, gatehouse.ErrNotFound)
		}
		for _, r := range []string{"r-expired", "r-ended"} {
			_, err := s.FindSessionByRefresh(ctx, hash(r))
			wantErr(t, "refresh token of a deleted session", err, gatehouse.ErrNotFound)
			_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash(r), NewHash: hash(r + "'"), Now: at(0), ExpiresAt: at(time.Hour)})
			wantErr(t, "refresh with a deleted session's token", err, gatehouse.ErrNotFound)
		}
		for _, id := range []string{"active", "ended-late", "edge"} {
			getSession(t, s, id)
		}
		if x, err := s.FindSessionByRefresh(ctx, hash("r-active")); err != nil || x.ID != "active" {
			t.Fatalf("refresh token of a kept session: %+v, %v", x, err)
		}
		if n, err := s.DeleteSessions(ctx, cut); err != nil || n != 0 {
			t.Fatalf("second DeleteSessions = %d, %v", n, err)
		}
	}},
}, endSessionsTests()...)

// testCap checks --max-sessions: the oldest active sessions of the principal
// over the cap end; other principals are untouched.
func testCap(t *testing.T, s store.Store) {
	// Other principals: a plain user "bob", the same username under another
	// consumer, another username under the same consumer.
	createSession(t, s, session("user-bob", 0, "bob", -time.Minute), "", 0)
	createSession(t, s, session("c8-bob", 8, "bob", -time.Minute), "", 0)
	createSession(t, s, session("c7-alice", 7, "alice", -time.Minute), "", 0)

	type step struct {
		id, username string
		max          int
		ended        []string
	}
	steps := []step{
		{"s1", "bob", 3, nil},
		{"s2", "Bob", 3, nil},
		{"s3", "BOB", 3, nil},
		{"s4", "bob", 3, []string{"s1"}},
		{"s5", "bob", 0, nil}, // no cap: nothing ends
		{"s6", "bob", 0, nil},
		{"s7", "bOb", 3, []string{"s2", "s3", "s4"}},
		{"s8", "bob", 1, []string{"s5", "s6", "s7"}},
		{"s9", "bob", 1, []string{"s8"}},
	}
	for i, st := range steps {
		created := time.Duration(i) * time.Second
		ended := createSession(t, s, session(st.id, 7, st.username, created), "", st.max)
		if !sameSet(ended, st.ended) {
			t.Fatalf("creating %s (max %d) ended %v, want %v", st.id, st.max, ended, st.ended)
		}
		for _, id := range st.ended {
			x := getSession(t, s, id)
			if x.EndReason != gatehouse.EndCap || !x.EndedAt.Equal(at(created).Truncate(time.Microsecond)) {
				t.Fatalf("session %s ended by the cap: %+v, want reason cap at %v", id, x, at(created))
			}
		}
	}
	active, err := s.ListSessions(ctx, store.SessionFilter{ConsumerUID: 7, Username: "bob", ActiveAt: at(time.Minute)})
	must(t, err)
	checkEqual(t, "active sessions of the principal", ids(active), []string{"s9"})
	for _, id := range []string{"user-bob", "c8-bob", "c7-alice"} {
		if x := getSession(t, s, id); !x.EndedAt.IsZero() {
			t.Fatalf("session %s of another principal ended: %+v", id, x)
		}
	}
}

// testAnyContextUsername: a consumer token's user context may be any text
// up to 1,024 bytes but NUL (issue.CheckContextUsername), control
// characters and multi-byte letters included, capped or not.
func testAnyContextUsername(t *testing.T, s store.Store) {
	names := []string{
		strings.Repeat("é", 512), // 1,024 bytes
		strings.Repeat("x", 1024),
		"tab\there\nnew line\x1b[31m",
	}
	for i, name := range names {
		id := "any-" + strconv.Itoa(i)
		createSession(t, s, session(id, 9, name, time.Duration(i)*time.Second), "", 2)
		if x := getSession(t, s, id); x.Username != name {
			t.Fatalf("session %s username %q, want %q", id, x.Username, name)
		}
		got, err := s.ListSessions(ctx, store.SessionFilter{Username: strings.ToUpper(name)})
		must(t, err)
		if len(got) != 1 || got[0].ID != id {
			t.Fatalf("sessions of %q: %v", name, ids(got))
		}
	}
}

// testCapAudit: every session the cap ends has its session.end event,
// written with the create (store.CapEndEvent).
func testCapAudit(t *testing.T, s store.Store) {
	issue := func(id string, d time.Duration) gatehouse.AuditEvent {
		return gatehouse.AuditEvent{At: at(d), Actor: "consumer:7", Action: "token.issue", Target: "session:" + id,
			Outcome: gatehouse.OutcomeSuccess, Remote: "10.0.0.9", Detail: "p21.v2.consumer"}
	}
	create := func(id string, d time.Duration, max int, audit bool) []string {
		n := store.NewSession{Session: session(id, 7, "", d), MaxSessions: max}
		if audit {
			n.Audit = []gatehouse.AuditEvent{issue(id, d)}
		}
		ended, err := s.CreateSession(ctx, n)
		must(t, err)
		return ended
	}
	create("a1", 0, 3, true)
	create("a2", time.Second, 3, true)
	create("a3", 2*time.Second, 3, true)
	if ended := create("a4", 3*time.Second, 2, true); !sameSet(ended, []string{"a1", "a2"}) {
		t.Fatalf("cap of 2 ended %v, want a1 a2", ended)
	}
	if ended := create("a5", 4*time.Second, 1, false); !sameSet(ended, []string{"a3", "a4"}) {
		t.Fatalf("cap of 1 ended %v, want a3 a4", ended)
	}
	evs, err := s.ListAudit(ctx, store.AuditFilter{Action: "session.end"})
	must(t, err)
	type seen struct{ target, actor, remote, detail string }
	got := map[seen]time.Time{}
	for _, e := range evs {
		got[seen{e.Target, e.Actor, e.Remote, e.Detail}] = e.At
	}
	want := map[seen]time.Time{
		{"session:a1", "consumer:7", "10.0.0.9", "reason=cap"}:  at(3 * time.Second),
		{"session:a2", "consumer:7", "10.0.0.9", "reason=cap"}:  at(3 * time.Second),
		{"session:a3", "system:cap", "192.0.2.7", "reason=cap"}: at(4 * time.Second), // no event: the session's address
		{"session:a4", "system:cap", "192.0.2.7", "reason=cap"}: at(4 * time.Second),
	}
	if len(evs) != len(want) {
		t.Fatalf("%d session.end events, want %d: %+v", len(evs), len(want), evs)
	}
	for k, when := range want {
		if g, ok := got[k]; !ok || !g.Equal(when.Truncate(time.Microsecond)) {
			t.Errorf("no session.end event %+v at %v (have %+v)", k, when, evs)
		}
	}
	for _, e := range evs {
		if e.Outcome != gatehouse.OutcomeSuccess {
			t.Errorf("event %+v: outcome %q", e, e.Outcome)
		}
	}
	// The issuance events are there too.
	issued, err := s.ListAudit(ctx, store.AuditFilter{Action: "token.issue"})
	must(t, err)
	if len(issued) != 4 {
		t.Errorf("%d token.issue events, want 4", len(issued))
	}
}

// endSessionsTests checks EndSessions, one fresh store per filter.
func endSessionsTests() []test {
	setup := func(t *testing.T, s store.Store) {
		createSession(t, s, session("u-bob", 0, "bob", 0), "", 0)
		createSession(t, s, session("c7-bob", 7, "Bob", time.Second), "", 0)
		createSession(t, s, session("c7-none", 7, "", 2*time.Second), "", 0)
		createSession(t, s, session("c8-bob", 8, "BOB", 3*time.Second), "", 0)
		createSession(t, s, session("c7-bob-old", 7, "bob", -2*time.Hour), "", 0) // expired
		createSession(t, s, session("c7-bob-ended", 7, "bob", 0), "", 0)
		must(t, s.EndSession(ctx, "c7-bob-ended", gatehouse.EndRevoked, at(time.Second)))
		createSession(t, s, session("u-alice", 0, "alice", 0), "", 0)
	}
	cases := []struct {
		name   string
		filter store.SessionFilter
		want   []string
	}{
		{"Username", store.SessionFilter{Username: "BOB"}, []string{"c8-bob", "c7-bob", "u-bob"}},
		{"Consumer", store.SessionFilter{ConsumerUID: 7}, []string{"c7-none", "c7-bob"}},
		{"ConsumerAndUsername", store.SessionFilter{ConsumerUID: 7, Username: "bob"}, []string{"c7-bob"}},
		{"NoMatch", store.SessionFilter{Username: "carol"}, nil},
	}
	var tests []test
	for _, tc := range cases {
		tests = append(tests, test{"EndSessions" + tc.name, func(t *testing.T, s store.Store) {
			setup(t, s)
			rev := lastRev(t, s)
			end := at(time.Minute)
			got, err := s.EndSessions(ctx, tc.filter, gatehouse.EndUserDeleted, end)
			must(t, err)
			if !sameSet(got, tc.want) {
				t.Fatalf("EndSessions(%+v) = %v, want %v", tc.filter, got, tc.want)
			}
			var want []change
			ended := map[string]bool{}
			for _, id := range tc.want {
				ended[id] = true
				want = append(want, change{gatehouse.ChangeSession, id, gatehouse.OpEnd})
			}
			expectChanges(t, s, rev, want)
			all, err := s.ListSessions(ctx, store.SessionFilter{})
			must(t, err)
			for _, x := range all {
				switch {
				case ended[x.ID]:
					if x.EndReason != gatehouse.EndUserDeleted || !x.EndedAt.Equal(end.Truncate(time.Microsecond)) {
						t.Fatalf("session %s: %+v", x.ID, x)
					}
				case x.ID == "c7-bob-ended":
					if x.EndReason != gatehouse.EndRevoked {
						t.Fatalf("already ended session changed: %+v", x)
					}
				default:
					if !x.EndedAt.IsZero() {
						t.Fatalf("session %s outside the filter ended: %+v", x.ID, x)
					}
				}
			}
		}})
	}
	return append(tests, test{"EndSessionsNeedsFilter", func(t *testing.T, s store.Store) {
		setup(t, s)
		rev := lastRev(t, s)
		for _, f := range []store.SessionFilter{{}, {ActiveAt: at(0)}, {Limit: 3}} {
			if got, err := s.EndSessions(ctx, f, gatehouse.EndAdmin, at(time.Minute)); err == nil {
				t.Fatalf("EndSessions(%+v) = %v, want an error", f, got)
			}
		}
		if n, err := s.CountActiveSessions(ctx, at(time.Minute)); err != nil || n != 5 {
			t.Fatalf("active sessions after refused EndSessions = %d, %v; want 5", n, err)
		}
		noChanges(t, s, rev)
	}})
}

func testListSessions(t *testing.T, s store.Store) {
	if xs, err := s.ListSessions(ctx, store.SessionFilter{}); err != nil || len(xs) != 0 {
		t.Fatalf("ListSessions on an empty store = %v, %v", xs, err)
	}
	createSession(t, s, session("u-bob", 0, "bob", 0), "", 0)
	createSession(t, s, session("c7-bob", 7, "Bob", 3*time.Second), "", 0)
	createSession(t, s, session("c7-none", 7, "", 2*time.Second), "", 0)
	createSession(t, s, session("c8-bob", 8, "BOB", time.Second), "", 0)
	createSession(t, s, session("c7-old", 7, "bob", -2*time.Hour), "", 0) // expired at t0-1h
	createSession(t, s, session("c7-ended", 7, "carol", 4*time.Second), "", 0)
	must(t, s.EndSession(ctx, "c7-ended", gatehouse.EndAdmin, at(5*time.Second)))

	now := at(time.Minute)
	cases := []struct {
		name   string
		filter store.SessionFilter
		want   []string
	}{
		{"all, newest first", store.SessionFilter{}, []string{"c7-ended", "c7-bob", "c7-none", "c8-bob", "u-bob", "c7-old"}},
		{"limit", store.SessionFilter{Limit: 2}, []string{"c7-ended", "c7-bob"}},
		{"username", store.SessionFilter{Username: "BOB"}, []string{"c7-bob", "c8-bob", "u-bob", "c7-old"}},
		{"consumer", store.SessionFilter{ConsumerUID: 7}, []string{"c7-ended", "c7-bob", "c7-none", "c7-old"}},
		{"consumer and username", store.SessionFilter{ConsumerUID: 7, Username: "bob"}, []string{"c7-bob", "c7-old"}},
		{"active", store.SessionFilter{ActiveAt: now}, []string{"c7-bob", "c7-none", "c8-bob", "u-bob"}},
		{"active before the end", store.SessionFilter{ActiveAt: at(4 * time.Second)}, []string{"c7-bob", "c7-none", "c8-bob", "u-bob"}},
		{"active, consumer, limit", store.SessionFilter{ActiveAt: now, ConsumerUID: 7, Limit: 1}, []string{"c7-bob"}},
		{"active at an expiry instant", store.SessionFilter{ActiveAt: at(time.Hour)}, []string{"c7-bob", "c7-none", "c8-bob"}},
		{"no match", store.SessionFilter{Username: "dave"}, nil},
	}
	for _, tc := range cases {
		xs, err := s.ListSessions(ctx, tc.filter)
		must(t, err)
		checkEqual(t, tc.name, ids(xs), tc.want)
	}
	xs, err := s.ListSessions(ctx, store.SessionFilter{Username: "carol"})
	must(t, err)
	want := session("c7-ended", 7, "carol", 4*time.Second)
	want.EndedAt, want.EndReason = at(5*time.Second), gatehouse.EndAdmin
	checkEqual(t, "listed session", xs, []gatehouse.Session{want})
}

var refreshTests = []test{
	{"Rotate", func(t *testing.T, s store.Store) {
		x := session("s1", 7, "bob", 0)
		createSession(t, s, x, "r1", 0)
		ev := gatehouse.AuditEvent{At: at(time.Minute), Actor: "consumer:7", Action: "token.refresh", Target: "session:s1",
			Outcome: gatehouse.OutcomeSuccess}
		got, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(time.Minute),
			ExpiresAt: at(2 * time.Hour), Audit: []gatehouse.AuditEvent{ev}})
		must(t, err)
		want := x
		want.ExpiresAt = at(2 * time.Hour)
		checkEqual(t, "RefreshSession result", got, store.Refreshed{Session: want, At: at(time.Minute)})
		checkEqual(t, "session after refresh", getSession(t, s, "s1"), want)
		for _, r := range []string{"r1", "r2"} {
			found, err := s.FindSessionByRefresh(ctx, hash(r))
			must(t, err)
			checkEqual(t, "FindSessionByRefresh("+r+")", found, want)
		}
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		if len(evs) != 1 || evs[0].Action != "token.refresh" || evs[0].Target != "session:s1" {
			t.Fatalf("audit after refresh: %+v", evs)
		}
		// The new token works in turn.
		got, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r2"), NewHash: hash("r3"), Now: at(time.Hour),
			ExpiresAt: at(3 * time.Hour)})
		must(t, err)
		if !got.Session.ExpiresAt.Equal(at(3*time.Hour).Truncate(time.Microsecond)) || got.Retry {
			t.Fatalf("second refresh: %+v", got)
		}
	}},
	{"Reuse", func(t *testing.T, s store.Store) {
		createSession(t, s, session("s1", 7, "bob", 0), "r1", 0)
		_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(time.Minute), ExpiresAt: at(time.Hour)})
		must(t, err)
		rev := lastRev(t, s)
		refresh := gatehouse.AuditEvent{At: at(2 * time.Minute), Actor: "user:bob", Action: "token.refresh", Target: "session:s1",
			Outcome: gatehouse.OutcomeSuccess, Remote: "198.51.100.4", Detail: "p21.v2/refresh"}
		r := store.Refresh{OldHash: hash("r1"), NewHash: hash("r9"), Now: at(2 * time.Minute), ExpiresAt: at(5 * time.Hour),
			Audit: []gatehouse.AuditEvent{refresh}}
		got, err := s.RefreshSession(ctx, r)
		wantErr(t, "reused refresh token", err, gatehouse.ErrRefreshReused)
		x := getSession(t, s, "s1")
		if x.EndReason != gatehouse.EndRefreshReuse || !x.EndedAt.Equal(at(2*time.Minute).Truncate(time.Microsecond)) {
			t.Fatalf("session after reuse: %+v", x)
		}
		if !x.ExpiresAt.Equal(at(time.Hour).Truncate(time.Microsecond)) {
			t.Fatalf("reuse changed the expiry: %+v", x)
		}
		// The failed call names the session it ended, as ended.
		checkEqual(t, "RefreshSession result on reuse", got.Session, x)
		expectChanges(t, s, rev, []change{{gatehouse.ChangeSession, "s1", gatehouse.OpEnd}})
		// The end is audited in the same transaction, naming the session;
		// the refresh event itself is not written.
		evs, err := s.ListAudit(ctx, store.AuditFilter{})
		must(t, err)
		want := gatehouse.AuditEvent{ID: evs[0].ID, At: at(2 * time.Minute), Actor: "user:bob", Action: "session.end", Target: "session:s1",
			Outcome: gatehouse.OutcomeSuccess, Remote: "198.51.100.4", Detail: "reason=" + gatehouse.EndRefreshReuse, Count: 1}
		checkEqual(t, "audit after reuse", evs, []gatehouse.AuditEvent{want})
		if ev := store.ReuseEndEvent(&r, "s1"); ev.Action != want.Action || ev.Actor != want.Actor || ev.Detail != want.Detail {
			t.Fatalf("ReuseEndEvent: %+v, want what the store wrote: %+v", ev, want)
		}
		_, err = s.FindSessionByRefresh(ctx, hash("r9"))
		wantErr(t, "replacement of a reused token", err, gatehouse.ErrNotFound)
		// The current token of the ended session is refused too, naming it.
		got, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r2"), NewHash: hash("r3"), Now: at(3 * time.Minute), ExpiresAt: at(time.Hour)})
		wantErr(t, "current token of a session ended by reuse", err, gatehouse.ErrSessionEnded)
		checkEqual(t, "RefreshSession result for an ended session", got.Session, x)
		// Reusing again keeps the first end, and audits no second one.
		got, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r4"), Now: at(4 * time.Minute), ExpiresAt: at(time.Hour)})
		wantErr(t, "reused again", err, gatehouse.ErrRefreshReused)
		checkEqual(t, "session after a second reuse", getSession(t, s, "s1"), x)
		checkEqual(t, "RefreshSession result on a second reuse", got.Session, x)
		if evs, _ := s.ListAudit(ctx, store.AuditFilter{}); len(evs) != 1 {
			t.Fatalf("a second reuse wrote audit events: %+v", evs)
		}
	}},
	{"ReuseWithoutEvents", func(t *testing.T, s store.Store) {
		// Without events of the caller's, the end is audited by the system.
		createSession(t, s, session("s1", 0, "bob", 0), "r1", 0)
		_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(time.Minute), ExpiresAt: at(time.Hour)})
		must(t, err)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r3"), Now: at(2 * time.Minute), ExpiresAt: at(time.Hour)})
		wantErr(t, "reused refresh token", err, gatehouse.ErrRefreshReused)
		evs, err := s.ListAudit(ctx, store.AuditFilter{Action: "session.end"})
		must(t, err)
		if len(evs) != 1 || evs[0].Actor != "system:refresh_reuse" || evs[0].Target != "session:s1" || evs[0].Detail != "reason=refresh_reuse" {
			t.Fatalf("audit of a reuse: %+v", evs)
		}
	}},
	{"ReuseGrace", func(t *testing.T, s store.Store) {
		const grace = 10 * time.Second
		createSession(t, s, session("s1", 7, "bob", 0), "r1", 0)
		ev := gatehouse.AuditEvent{At: at(time.Minute), Action: "token.refresh", Target: "session:s1", Outcome: gatehouse.OutcomeSuccess}
		first, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(time.Minute),
			ExpiresAt: at(2 * time.Hour), Grace: grace, Audit: []gatehouse.AuditEvent{ev}})
		must(t, err)
		rev := lastRev(t, s)
		// A retry with the same replacement within the grace changes nothing
		// and reports the time of the rotation it repeats.
		for _, now := range []time.Duration{time.Minute, time.Minute + grace - time.Microsecond} {
			got, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(now),
				ExpiresAt: at(3 * time.Hour), Grace: grace, Audit: []gatehouse.AuditEvent{ev}})
			must(t, err)
			checkEqual(t, "retry within the grace", got, store.Refreshed{Session: first.Session, At: at(time.Minute), Retry: true})
		}
		noChanges(t, s, rev)
		if evs, _ := s.ListAudit(ctx, store.AuditFilter{}); len(evs) != 1 {
			t.Fatalf("a retry wrote audit events: %+v", evs)
		}
		checkEqual(t, "session after retries", getSession(t, s, "s1"), first.Session)
		if _, spent, err := s.FindRefreshToken(ctx, hash("r2")); err != nil || spent {
			t.Fatalf("the replacement after retries: spent %t, %v", spent, err)
		}
		// Another replacement is a reuse, even within the grace.
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r-other"), Now: at(time.Minute + time.Second),
			ExpiresAt: at(3 * time.Hour), Grace: grace})
		wantErr(t, "another replacement within the grace", err, gatehouse.ErrRefreshReused)

		// At the end of the grace, a retry is a reuse.
		createSession(t, s, session("s2", 7, "carol", 0), "q1", 0)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("q1"), NewHash: hash("q2"), Now: at(time.Minute), ExpiresAt: at(2 * time.Hour), Grace: grace})
		must(t, err)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("q1"), NewHash: hash("q2"), Now: at(time.Minute + grace), ExpiresAt: at(2 * time.Hour), Grace: grace})
		wantErr(t, "retry at the end of the grace", err, gatehouse.ErrRefreshReused)
		if x := getSession(t, s, "s2"); x.EndReason != gatehouse.EndRefreshReuse {
			t.Fatalf("session after a late retry: %+v", x)
		}

		// Once the replacement is spent, the older token is a reuse.
		createSession(t, s, session("s3", 7, "dave", 0), "p1", 0)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("p1"), NewHash: hash("p2"), Now: at(time.Minute), ExpiresAt: at(2 * time.Hour), Grace: grace})
		must(t, err)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("p2"), NewHash: hash("p3"), Now: at(time.Minute + time.Second), ExpiresAt: at(2 * time.Hour), Grace: grace})
		must(t, err)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("p1"), NewHash: hash("p2"), Now: at(time.Minute + 2*time.Second), ExpiresAt: at(2 * time.Hour), Grace: grace})
		wantErr(t, "retry after the replacement was spent", err, gatehouse.ErrRefreshReused)

		// Without a grace, a retry is a reuse.
		createSession(t, s, session("s4", 7, "erin", 0), "o1", 0)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("o1"), NewHash: hash("o2"), Now: at(time.Minute), ExpiresAt: at(2 * time.Hour)})
		must(t, err)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("o1"), NewHash: hash("o2"), Now: at(time.Minute), ExpiresAt: at(2 * time.Hour), Grace: 0})
		wantErr(t, "retry without a grace", err, gatehouse.ErrRefreshReused)

		// A retry for a session ended meanwhile is refused without a reuse.
		createSession(t, s, session("s5", 7, "fay", 0), "n1", 0)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("n1"), NewHash: hash("n2"), Now: at(time.Minute), ExpiresAt: at(2 * time.Hour), Grace: grace})
		must(t, err)
		must(t, s.EndSession(ctx, "s5", gatehouse.EndAdmin, at(time.Minute+time.Second)))
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("n1"), NewHash: hash("n2"), Now: at(time.Minute + 2*time.Second), ExpiresAt: at(2 * time.Hour), Grace: grace})
		wantErr(t, "retry for an ended session", err, gatehouse.ErrSessionEnded)
		if x := getSession(t, s, "s5"); x.EndReason != gatehouse.EndAdmin {
			t.Fatalf("session ended meanwhile: %+v", x)
		}
	}},
	{"Refused", func(t *testing.T, s store.Store) {
		createSession(t, s, session("ended", 7, "bob", 0), "r-ended", 0)
		must(t, s.EndSession(ctx, "ended", gatehouse.EndAdmin, at(time.Minute)))
		createSession(t, s, session("expired", 7, "carol", 0), "r-expired", 0) // expires t0+1h
		createSession(t, s, session("ok", 7, "dave", 0), "r-ok", 0)
		rev := lastRev(t, s)
		cases := []struct {
			name   string
			old    string
			now    time.Time
			target error
		}{
			{"unknown token", "r-unknown", at(2 * time.Minute), gatehouse.ErrNotFound},
			{"ended session", "r-ended", at(2 * time.Minute), gatehouse.ErrSessionEnded},
			{"expired session", "r-expired", at(2 * time.Hour), gatehouse.ErrSessionEnded},
			{"expiry instant", "r-expired", at(time.Hour), gatehouse.ErrSessionEnded},
		}
		for _, tc := range cases {
			_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash(tc.old), NewHash: hash(tc.old + "-new"), Now: tc.now,
				ExpiresAt: at(10 * time.Hour), Audit: []gatehouse.AuditEvent{{Action: "token.refresh"}}})
			wantErr(t, tc.name, err, tc.target)
			if _, err := s.FindSessionByRefresh(ctx, hash(tc.old+"-new")); !errors.Is(err, gatehouse.ErrNotFound) {
				t.Fatalf("%s: the replacement token was stored: %v", tc.name, err)
			}
		}
		_, err := s.RefreshSession(ctx, store.Refresh{OldHash: nil, NewHash: hash("x"), Now: at(0), ExpiresAt: at(time.Hour)})
		wantErr(t, "nil token", err, gatehouse.ErrNotFound)
		noChanges(t, s, rev)
		if evs, _ := s.ListAudit(ctx, store.AuditFilter{}); len(evs) != 0 {
			t.Fatalf("refused refreshes wrote audit events: %+v", evs)
		}
		// The refused tokens were not spent: one just before expiry still works.
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r-expired"), NewHash: hash("r-expired-2"),
			Now: at(time.Hour - time.Microsecond), ExpiresAt: at(2 * time.Hour)})
		must(t, err)
		x := getSession(t, s, "ended")
		if x.EndReason != gatehouse.EndAdmin {
			t.Fatalf("ended session changed: %+v", x)
		}
	}},
	{"FindByRefresh", func(t *testing.T, s store.Store) {
		x := session("s1", 0, "bob", 0)
		createSession(t, s, x, "r1", 0)
		createSession(t, s, session("s2", 0, "bob", 0), "", 0)
		got, err := s.FindSessionByRefresh(ctx, hash("r1"))
		must(t, err)
		checkEqual(t, "FindSessionByRefresh", got, x)
		_, err = s.FindSessionByRefresh(ctx, hash("r2"))
		wantErr(t, "unknown token", err, gatehouse.ErrNotFound)
		_, err = s.FindSessionByRefresh(ctx, nil)
		wantErr(t, "nil token", err, gatehouse.ErrNotFound)
		// Finding changes nothing, even for a spent token.
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(time.Second), ExpiresAt: at(time.Hour)})
		must(t, err)
		rev := lastRev(t, s)
		for i := range 3 {
			got, err := s.FindSessionByRefresh(ctx, hash("r1"))
			if err != nil || got.ID != "s1" || !got.EndedAt.IsZero() {
				t.Fatalf("FindSessionByRefresh of a spent token (%d): %+v, %v", i, got, err)
			}
		}
		noChanges(t, s, rev)
	}},
	{"FindRefreshToken", func(t *testing.T, s store.Store) {
		x := session("s1", 0, "bob", 0)
		createSession(t, s, x, "r1", 0)
		got, spent, err := s.FindRefreshToken(ctx, hash("r1"))
		must(t, err)
		checkEqual(t, "FindRefreshToken", got, x)
		if spent {
			t.Fatal("a fresh refresh token is reported spent")
		}
		_, _, err = s.FindRefreshToken(ctx, hash("r9"))
		wantErr(t, "unknown token", err, gatehouse.ErrNotFound)
		_, _, err = s.FindRefreshToken(ctx, nil)
		wantErr(t, "nil token", err, gatehouse.ErrNotFound)
		_, err = s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r2"), Now: at(time.Second), ExpiresAt: at(time.Hour)})
		must(t, err)
		rev := lastRev(t, s)
		if got, spent, err := s.FindRefreshToken(ctx, hash("r1")); err != nil || !spent || got.ID != "s1" || !got.EndedAt.IsZero() {
			t.Fatalf("FindRefreshToken of a spent token: %+v, %t, %v", got, spent, err)
		}
		if got, spent, err := s.FindRefreshToken(ctx, hash("r2")); err != nil || spent || got.ID != "s1" {
			t.Fatalf("FindRefreshToken of its replacement: %+v, %t, %v", got, spent, err)
		}
		noChanges(t, s, rev)
	}},
}
