package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// change is what the suite checks of a feed entry.
type change struct {
	Kind gatehouse.ChangeKind
	Key  string
	Op   string
}

func lastRev(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.LastRevision(ctx)
	must(t, err)
	return rev
}

// changesSince reads every entry after rev and checks revisions grow.
func changesSince(t *testing.T, s store.Store, rev int64) []gatehouse.Change {
	t.Helper()
	cs, err := s.Changes(ctx, rev, 0)
	must(t, err)
	prev := rev
	for _, c := range cs {
		if c.Rev <= prev {
			t.Fatalf("revisions do not grow: %+v", cs)
		}
		if c.At.IsZero() {
			t.Fatalf("entry without a time: %+v", c)
		}
		prev = c.Rev
	}
	if last := lastRev(t, s); last != prev {
		t.Fatalf("LastRevision = %d, newest entry %d", last, prev)
	}
	return cs
}

// expectChanges checks the entries after rev, in any order.
func expectChanges(t *testing.T, s store.Store, rev int64, want []change) {
	t.Helper()
	var got []change
	for _, c := range changesSince(t, s, rev) {
		got = append(got, change{c.Kind, c.Key, c.Op})
	}
	order := func(cs []change) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = fmt.Sprintf("%s/%s/%s", c.Kind, c.Key, c.Op)
		}
		sort.Strings(out)
		return out
	}
	checkEqual(t, "feed entries", order(got), order(want))
}

func noChanges(t *testing.T, s store.Store, rev int64) {
	t.Helper()
	expectChanges(t, s, rev, nil)
}

// feedCase is one mutating call and the entries it must append.
type feedCase struct {
	name  string
	setup func(t *testing.T, s store.Store)
	act   func(t *testing.T, s store.Store) error
	fails bool // act must fail and append nothing
	want  []change
}

func feedSetup(t *testing.T, s store.Store) {
	must(t, s.CreateUser(ctx, user("Alice")))
	must(t, s.CreateRole(ctx, role("Sales")))
	createConsumer(t, s, consumer("Reports", 1))
	createSession(t, s, session("s1", 1, "bob", 0), "r1", 0)
	createSession(t, s, session("s2", 1, "BOB", time.Second), "", 0)
	createSession(t, s, session("s3", 0, "alice", 0), "r3", 0)
	must(t, s.InitKeys(ctx, key("k1", "RS256", gatehouse.KeyActive, at(0)), key("k2", "RS256", gatehouse.KeyNext, at(0))))
}

var feedCases = []feedCase{
	{name: "CreateUser", act: func(t *testing.T, s store.Store) error { return s.CreateUser(ctx, user("Carol")) },
		want: []change{{gatehouse.ChangeUser, "carol", gatehouse.OpCreate}}},
	{name: "UpdateUser", act: func(t *testing.T, s store.Store) error {
		_, err := s.UpdateUser(ctx, "ALICE", func(u *gatehouse.User) error { u.Admin = true; return nil })
		return err
	}, want: []change{{gatehouse.ChangeUser, "alice", gatehouse.OpUpdate}}},
	{name: "CreateRole", act: func(t *testing.T, s store.Store) error { return s.CreateRole(ctx, role("Warehouse")) },
		want: []change{{gatehouse.ChangeRole, "warehouse", gatehouse.OpCreate}}},
	{name: "UpdateRole", act: func(t *testing.T, s store.Store) error {
		_, err := s.UpdateRole(ctx, "sales", func(r *gatehouse.Role) error { r.AllowAll = true; return nil })
		return err
	}, want: []change{{gatehouse.ChangeRole, "sales", gatehouse.OpUpdate}}},
	{name: "ImportCatalog", act: func(t *testing.T, s store.Store) error {
		return s.ImportCatalog(ctx, []gatehouse.CatalogEntry{{Name: "a", Kind: gatehouse.KindTable}, {Name: "b", Kind: gatehouse.KindView}})
	}, want: []change{{gatehouse.ChangeCatalog, "", gatehouse.OpUpdate}}},
	{name: "CreateConsumer", act: func(t *testing.T, s store.Store) error {
		_, err := s.CreateConsumer(ctx, consumer("Other", 2))
		return err
	}, want: []change{{gatehouse.ChangeConsumer, "2", gatehouse.OpCreate}}},
	{name: "UpdateConsumer", act: func(t *testing.T, s store.Store) error {
		_, err := s.UpdateConsumer(ctx, 1, func(c *gatehouse.Consumer) error { c.Disabled = true; return nil })
		return err
	}, want: []change{{gatehouse.ChangeConsumer, "1", gatehouse.OpUpdate}}},
	{name: "DeleteConsumer", act: func(t *testing.T, s store.Store) error { return s.DeleteConsumer(ctx, 1) },
		want: []change{{gatehouse.ChangeConsumer, "1", gatehouse.OpDelete},
			{gatehouse.ChangeSession, "s1", gatehouse.OpEnd}, {gatehouse.ChangeSession, "s2", gatehouse.OpEnd}}},
	{name: "CreateSession", act: func(t *testing.T, s store.Store) error {
		_, err := s.CreateSession(ctx, store.NewSession{Session: session("s9", 2, "x", 0), RefreshHash: hash("r9"), MaxSessions: 3})
		return err
	}, want: nil}, // a session's creation has no entry (see store.Feed)
	{name: "CreateSessionCap", act: func(t *testing.T, s store.Store) error {
		_, err := s.CreateSession(ctx, store.NewSession{Session: session("s9", 1, "Bob", 2*time.Second), MaxSessions: 1})
		return err
	}, want: []change{
		{gatehouse.ChangeSession, "s1", gatehouse.OpEnd}, {gatehouse.ChangeSession, "s2", gatehouse.OpEnd}}},
	{name: "RefreshSession", act: func(t *testing.T, s store.Store) error {
		_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("r1b"), Now: at(time.Minute), ExpiresAt: at(2 * time.Hour)})
		return err
	}, want: []change{{gatehouse.ChangeSession, "s1", gatehouse.OpUpdate}}},
	{name: "EndSession", act: func(t *testing.T, s store.Store) error {
		return s.EndSession(ctx, "s3", gatehouse.EndRevoked, at(time.Minute))
	},
		want: []change{{gatehouse.ChangeSession, "s3", gatehouse.OpEnd}}},
	{name: "EndSessions", act: func(t *testing.T, s store.Store) error {
		_, err := s.EndSessions(ctx, store.SessionFilter{Username: "bob"}, gatehouse.EndUserDeleted, at(time.Minute))
		return err
	}, want: []change{{gatehouse.ChangeSession, "s1", gatehouse.OpEnd}, {gatehouse.ChangeSession, "s2", gatehouse.OpEnd}}},
	{name: "DeleteSessions", setup: func(t *testing.T, s store.Store) {
		must(t, s.EndSession(ctx, "s1", gatehouse.EndAdmin, at(time.Minute)))
	}, act: func(t *testing.T, s store.Store) error {
		_, err := s.DeleteSessions(ctx, at(2*time.Minute))
		return err
	}, want: []change{{gatehouse.ChangeSession, "s1", gatehouse.OpDelete}}},
	{name: "InitKeys", act: func(t *testing.T, s store.Store) error {
		return s.InitKeys(ctx, key("e1", "ES256", gatehouse.KeyActive, at(0)), key("e2", "ES256", gatehouse.KeyNext, at(0)))
	}, want: []change{{gatehouse.ChangeKey, "e1", gatehouse.OpCreate}, {gatehouse.ChangeKey, "e2", gatehouse.OpCreate}}},
	{name: "RotateKeys", act: func(t *testing.T, s store.Store) error {
		return s.RotateKeys(ctx, "k1", key("k3", "RS256", gatehouse.KeyNext, at(time.Hour)), at(time.Hour), at(2*time.Hour))
	}, want: []change{{gatehouse.ChangeKey, "k1", gatehouse.OpUpdate}, {gatehouse.ChangeKey, "k2", gatehouse.OpUpdate},
		{gatehouse.ChangeKey, "k3", gatehouse.OpCreate}}},
	{name: "DeleteRetiredKeys", setup: func(t *testing.T, s store.Store) {
		must(t, s.RotateKeys(ctx, "k1", key("k3", "RS256", gatehouse.KeyNext, at(time.Hour)), at(time.Hour), at(2*time.Hour)))
	}, act: func(t *testing.T, s store.Store) error {
		_, err := s.DeleteRetiredKeys(ctx, at(3*time.Hour))
		return err
	}, want: []change{{gatehouse.ChangeKey, "k1", gatehouse.OpDelete}}},

	// Calls that fail, change nothing, or touch nothing the feed covers.
	{name: "CreateUserConflict", fails: true, act: func(t *testing.T, s store.Store) error { return s.CreateUser(ctx, user("ALICE")) }},
	{name: "UpdateUserFnError", fails: true, act: func(t *testing.T, s store.Store) error {
		_, err := s.UpdateUser(ctx, "alice", func(u *gatehouse.User) error { u.Admin = true; return errors.New("no") })
		return err
	}},
	{name: "UpdateUserNotFound", fails: true, act: func(t *testing.T, s store.Store) error {
		_, err := s.UpdateUser(ctx, "nobody", func(u *gatehouse.User) error { return nil })
		return err
	}},
	{name: "CreateRoleConflict", fails: true, act: func(t *testing.T, s store.Store) error { return s.CreateRole(ctx, role("sales")) }},
	{name: "CreateConsumerConflict", fails: true, act: func(t *testing.T, s store.Store) error {
		_, err := s.CreateConsumer(ctx, consumer("reports", 9))
		return err
	}},
	{name: "DeleteConsumerNotFound", fails: true, act: func(t *testing.T, s store.Store) error { return s.DeleteConsumer(ctx, 42) }},
	{name: "CreateSessionConflict", fails: true, act: func(t *testing.T, s store.Store) error {
		_, err := s.CreateSession(ctx, store.NewSession{Session: session("s1", 1, "bob", 0), MaxSessions: 1})
		return err
	}},
	{name: "RefreshUnknown", fails: true, act: func(t *testing.T, s store.Store) error {
		_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("nope"), NewHash: hash("x"), Now: at(0), ExpiresAt: at(time.Hour)})
		return err
	}},
	{name: "RefreshEnded", fails: true, setup: func(t *testing.T, s store.Store) {
		must(t, s.EndSession(ctx, "s1", gatehouse.EndAdmin, at(time.Minute)))
	}, act: func(t *testing.T, s store.Store) error {
		_, err := s.RefreshSession(ctx, store.Refresh{OldHash: hash("r1"), NewHash: hash("x"), Now: at(2 * time.Minute), ExpiresAt: at(time.Hour)})
		return err
	}},
	{name: "EndSessionAgain", setup: func(t *testing.T, s store.Store) {
		must(t, s.EndSession(ctx, "s1", gatehouse.EndAdmin, at(time.Minute)))
	}, act: func(t *testing.T, s store.Store) error {
		return s.EndSession(ctx, "s1", gatehouse.EndRevoked, at(2*time.Minute))
	}},
	{name: "EndSessionsNoneActive", act: func(t *testing.T, s store.Store) error {
		_, err := s.EndSessions(ctx, store.SessionFilter{Username: "nobody"}, gatehouse.EndAdmin, at(0))
		return err
	}},
	{name: "InitKeysConflict", fails: true, act: func(t *testing.T, s store.Store) error {
		return s.InitKeys(ctx, key("k8", "RS256", gatehouse.KeyActive, at(0)), key("k9", "RS256", gatehouse.KeyNext, at(0)))
	}},
	{name: "RotateKeysStale", fails: true, act: func(t *testing.T, s store.Store) error {
		return s.RotateKeys(ctx, "k2", key("k3", "RS256", gatehouse.KeyNext, at(time.Hour)), at(time.Hour), at(2*time.Hour))
	}},
	{name: "AppendAudit", act: func(t *testing.T, s store.Store) error { return s.AppendAudit(ctx, auditEvents()...) }},
	{name: "ClearAuthFailures", act: func(t *testing.T, s store.Store) error { return s.ClearAuthFailures(ctx, "bob") }},
	{name: "ImportCatalogEmpty", act: func(t *testing.T, s store.Store) error { return s.ImportCatalog(ctx, nil) }},
	{name: "RecordAuthFailure", act: func(t *testing.T, s store.Store) error {
		_, err := s.RecordAuthFailure(ctx, "bob", at(0), time.Minute)
		return err
	}},
}

// listenerFunc hands a follower's changes to a function.
type listenerFunc func([]gatehouse.Change)

func (l listenerFunc) Changes(cs []gatehouse.Change) { l(cs) }
func (l listenerFunc) Reset()                        {}

var feedTests = append([]test{
	// A running follower hands a change to its listeners within its
	// interval (sooner where the backend announces changes).
	{"FollowerSeesChange", func(t *testing.T, s store.Store) {
		const interval = 20 * time.Millisecond
		f := store.NewFollower(s, interval, nil)
		seen := make(chan string, 100)
		f.Subscribe(listenerFunc(func(cs []gatehouse.Change) {
			for _, c := range cs {
				if c.Kind == gatehouse.ChangeSession && c.Op == gatehouse.OpEnd {
					seen <- c.Key
				}
			}
		}))
		must(t, f.Start(ctx))
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { f.Run(fctx); close(done) }()
		defer func() { cancel(); <-done }()
		createSession(t, s, session("followed", 1, "", 0), "", 0)
		must(t, s.EndSession(ctx, "followed", gatehouse.EndAdmin, time.Now()))
		select {
		case id := <-seen:
			if id != "followed" {
				t.Fatalf("follower saw the end of %q", id)
			}
		case <-time.After(100 * interval): // far beyond the interval: a follower that never polls
			t.Fatal("the follower did not report the ended session")
		}
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		if rev := lastRev(t, s); rev != 0 {
			t.Fatalf("LastRevision of an empty store = %d", rev)
		}
		for _, limit := range []int{0, 10} {
			cs, err := s.Changes(ctx, 0, limit)
			if err != nil || len(cs) != 0 {
				t.Fatalf("Changes(0, %d) of an empty store = %v, %v", limit, cs, err)
			}
		}
		if n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("PruneChanges of an empty store = %d, %v", n, err)
		}
		if cs, err := s.Changes(ctx, 0, 10); err != nil || len(cs) != 0 {
			t.Fatalf("Changes(0) after pruning nothing = %v, %v", cs, err)
		}
	}},
	{"Paging", func(t *testing.T, s store.Store) {
		for i := range 10 {
			must(t, s.CreateUser(ctx, user(fmt.Sprintf("user%02d", i))))
		}
		all := changesSince(t, s, 0)
		if len(all) != 10 {
			t.Fatalf("%d entries for 10 users", len(all))
		}
		var paged []gatehouse.Change
		after := int64(0)
		for {
			page, err := s.Changes(ctx, after, 3)
			must(t, err)
			if len(page) > 3 {
				t.Fatalf("Changes(%d, 3) returned %d entries", after, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Rev
		}
		checkEqual(t, "paged entries", paged, all)
		for i, c := range all {
			if c.Kind != gatehouse.ChangeUser || c.Key != fmt.Sprintf("user%02d", i) || c.Op != gatehouse.OpCreate {
				t.Fatalf("entry %d: %+v", i, c)
			}
		}
		if since := time.Since(all[0].At); since < -time.Hour || since > time.Hour {
			t.Fatalf("entry stamped %v, not near the wall clock", all[0].At)
		}
		page, err := s.Changes(ctx, all[4].Rev, 2)
		must(t, err)
		checkEqual(t, "Changes from the middle", page, all[5:7])
	}},
	{"Prune", func(t *testing.T, s store.Store) {
		for i := range 5 {
			must(t, s.CreateUser(ctx, user(fmt.Sprintf("user%d", i))))
		}
		all := changesSince(t, s, 0)
		last := all[len(all)-1].Rev
		if n, err := s.PruneChanges(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("PruneChanges of nothing old enough = %d, %v", n, err)
		}
		checkEqual(t, "entries after pruning nothing", changesSince(t, s, 0), all)

		n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour))
		must(t, err)
		if n != 4 {
			t.Fatalf("PruneChanges = %d, want 4 (the newest is kept)", n)
		}
		if rev := lastRev(t, s); rev != last {
			t.Fatalf("LastRevision after pruning = %d, want %d", rev, last)
		}
		for _, after := range []int64{0, all[0].Rev, all[2].Rev} {
			_, err := s.Changes(ctx, after, 10)
			wantErr(t, fmt.Sprintf("Changes(%d) after pruning", after), err, gatehouse.ErrFeedGap)
		}
		// Entries from the newest on are still there.
		if cs, err := s.Changes(ctx, all[3].Rev, 10); err != nil {
			t.Fatalf("Changes from the last pruned revision: %v", err)
		} else {
			checkEqual(t, "kept entry", cs, all[4:])
		}
		if cs, err := s.Changes(ctx, last, 10); err != nil || len(cs) != 0 {
			t.Fatalf("Changes(LastRevision) after pruning = %v, %v", cs, err)
		}
		must(t, s.CreateUser(ctx, user("later")))
		cs, err := s.Changes(ctx, last, 10)
		must(t, err)
		if len(cs) != 1 || cs[0].Key != "later" || cs[0].Rev <= last {
			t.Fatalf("entry after pruning: %+v", cs)
		}
		if n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("second PruneChanges = %d, %v; want 1", n, err)
		}
		_, err = s.Changes(ctx, all[3].Rev, 10)
		wantErr(t, "Changes from before the second prune", err, gatehouse.ErrFeedGap)
		if cs, err := s.Changes(ctx, last, 10); err != nil || len(cs) != 1 || cs[0].Key != "later" {
			t.Fatalf("Changes from the newest pruned revision = %v, %v", cs, err)
		}
		if cs, err := s.Changes(ctx, lastRev(t, s), 10); err != nil || len(cs) != 0 {
			t.Fatalf("Changes(LastRevision) after the second prune = %v, %v", cs, err)
		}
	}},
}, feedCaseTests()...)

func feedCaseTests() []test {
	var tests []test
	for _, fc := range feedCases {
		tests = append(tests, test{"Entries" + fc.name, func(t *testing.T, s store.Store) {
			feedSetup(t, s)
			if fc.setup != nil {
				fc.setup(t, s)
			}
			rev := lastRev(t, s)
			err := fc.act(t, s)
			if fc.fails && err == nil {
				t.Fatal("the call succeeded, want an error")
			}
			if !fc.fails && err != nil {
				t.Fatal(err)
			}
			expectChanges(t, s, rev, fc.want)
		}})
	}
	return tests
}
