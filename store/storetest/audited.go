package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// auditedTests: a write given store.WithAudit stores its audit events in
// its own transaction — both, or neither — and the AuditFunc sees the
// changes the write made.
var auditedTests = []test{
	{"event written with the change it audits", func(t *testing.T, s store.Store) {
		ev := gatehouse.AuditEvent{At: at(0), Actor: "cli:ann", Action: "user.add", Target: "user:bob", Outcome: gatehouse.OutcomeSuccess}
		must(t, s.CreateUser(store.WithAudit(ctx, store.Events(ev)), user("bob")))
		evs := audited(t, s)
		if len(evs) != 1 || evs[0].Action != "user.add" || evs[0].Target != "user:bob" || evs[0].Actor != "cli:ann" {
			t.Fatalf("audit after an audited write: %+v", evs)
		}
	}},
	{"a failed write writes no event", func(t *testing.T, s store.Store) {
		must(t, s.CreateUser(ctx, user("bob")))
		ev := gatehouse.AuditEvent{At: at(0), Actor: "cli:ann", Action: "user.add", Target: "user:bob", Outcome: gatehouse.OutcomeSuccess}
		err := s.CreateUser(store.WithAudit(ctx, store.Events(ev)), user("BOB"))
		wantErr(t, "duplicate user", err, gatehouse.ErrConflict)
		_, err = s.UpdateUser(store.WithAudit(ctx, store.Events(ev)), "bob", func(*gatehouse.User) error { return fmt.Errorf("refused") })
		if err == nil {
			t.Fatal("refused update succeeded")
		}
		if evs := audited(t, s); len(evs) != 0 {
			t.Fatalf("a failed write left audit events: %+v", evs)
		}
	}},
	{"the AuditFunc sees the changes of its write", func(t *testing.T, s store.Store) {
		var seen []gatehouse.Change
		c, err := s.CreateConsumer(store.WithAudit(ctx, func(ch []gatehouse.Change) []gatehouse.AuditEvent {
			seen = append([]gatehouse.Change(nil), ch...)
			return []gatehouse.AuditEvent{{At: at(0), Actor: "cli:ann", Action: "consumer.add", Target: "consumer:" + ch[0].Key,
				Outcome: gatehouse.OutcomeSuccess}}
		}), consumer("svc", 1))
		must(t, err)
		if len(seen) != 1 || seen[0].Kind != gatehouse.ChangeConsumer || seen[0].Key != c.UIDString() || seen[0].Op != gatehouse.OpCreate {
			t.Fatalf("changes seen: %+v", seen)
		}
		createSession(t, s, session("s1", c.UID, "", 0), "", 0)
		createSession(t, s, session("s2", c.UID, "", time.Minute), "", 0)
		createSession(t, s, session("s3", 0, "bob", time.Minute), "", 0)
		ended, err := s.EndSessions(store.WithAudit(ctx, func(ch []gatehouse.Change) []gatehouse.AuditEvent {
			var ids []string
			for _, c := range ch {
				if c.Kind == gatehouse.ChangeSession && c.Op == gatehouse.OpEnd {
					ids = append(ids, c.Key)
				}
			}
			return []gatehouse.AuditEvent{{At: at(0), Actor: "cli:ann", Action: "session.end", Target: "consumer:" + c.UIDString(),
				Outcome: gatehouse.OutcomeSuccess, Detail: strings.Join(ids, ",")}}
		}), store.SessionFilter{ConsumerUID: c.UID}, gatehouse.EndAdmin, at(2*time.Minute))
		must(t, err)
		evs := audited(t, s)
		if len(ended) != 2 || len(evs) != 2 || evs[0].Target != "consumer:"+c.UIDString() {
			t.Fatalf("ended %v, audit %+v", ended, evs)
		}
		if d := evs[1].Detail; !strings.Contains(d, "s1") || !strings.Contains(d, "s2") || strings.Contains(d, "s3") {
			t.Fatalf("session.end event names %q, want s1 and s2", d)
		}
		must(t, s.EndSession(store.WithAudit(ctx, store.Events(gatehouse.AuditEvent{At: at(0), Actor: "cli:ann",
			Action: "session.end", Target: "session:s3", Outcome: gatehouse.OutcomeSuccess})), "s3", gatehouse.EndAdmin, at(3*time.Minute)))
		must(t, s.DeleteConsumer(store.WithAudit(ctx, store.Events(gatehouse.AuditEvent{At: at(0), Actor: "cli:ann",
			Action: "consumer.delete", Target: "consumer:" + c.UIDString(), Outcome: gatehouse.OutcomeSuccess})), c.UID))
		if evs := audited(t, s); len(evs) != 4 || evs[2].Target != "session:s3" || evs[3].Action != "consumer.delete" {
			t.Fatalf("audit: %+v", evs)
		}
	}},
	{"lockout and catalog writes carry their events", func(t *testing.T, s store.Store) {
		ev := func(a string) store.AuditFunc {
			return store.Events(gatehouse.AuditEvent{At: at(0), Actor: "cli:ann", Action: a, Outcome: gatehouse.OutcomeSuccess})
		}
		must(t, s.ClearAuthFailures(store.WithAudit(ctx, ev("user.unlock")), "bob"))
		if _, err := s.CloseLockout(store.WithAudit(ctx, ev("lockout.end")), "bob"); err != nil {
			t.Fatal(err)
		}
		// A lockout that was open is reported to the audit as a change.
		if _, err := s.OpenLockout(ctx, "carol", at(0)); err != nil {
			t.Fatal(err)
		}
		var seen []gatehouse.Change
		closed, err := s.CloseLockout(store.WithAudit(ctx, func(ch []gatehouse.Change) []gatehouse.AuditEvent {
			seen = append(seen, ch...)
			return nil
		}), "carol")
		if err != nil || !closed || len(seen) != 1 || seen[0].Kind != gatehouse.ChangeLockout || seen[0].Key != "carol" {
			t.Fatalf("closing an open lockout: %v %t %+v", err, closed, seen)
		}
		must(t, s.ImportCatalog(store.WithAudit(ctx, ev("catalog.import")), []gatehouse.CatalogEntry{{Name: "supplier", Kind: gatehouse.KindTable}}))
		must(t, s.CreateRole(store.WithAudit(ctx, ev("role.add")), gatehouse.Role{Name: "clerk"}))
		var got []string
		for _, e := range audited(t, s) {
			got = append(got, e.Action)
		}
		if strings.Join(got, " ") != "user.unlock lockout.end catalog.import role.add" {
			t.Fatalf("audit actions %v", got)
		}
	}},
}

// audited lists the audit trail, oldest first.
func audited(t *testing.T, s store.Store) []gatehouse.AuditEvent {
	t.Helper()
	evs, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err)
	return evs
}
