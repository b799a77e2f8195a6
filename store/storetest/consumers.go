package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

func createConsumer(t *testing.T, s store.Store, c gatehouse.Consumer) gatehouse.Consumer {
	t.Helper()
	got, err := s.CreateConsumer(ctx, c)
	if err != nil {
		t.Fatalf("create consumer %s: %v", c.Name, err)
	}
	return got
}

var consumerTests = []test{
	{"CreateGet", func(t *testing.T, s store.Store) {
		a := consumer("Reports", 1)
		a.UID = 99 // ignored
		b := consumer("Mobile App", 2)
		b.Lifetime, b.Grants, b.SDKAccess, b.Type, b.Disabled = 0, nil, false, gatehouse.ConsumerMobile, true
		c := consumer("web", 3)
		c.Grants = []string{}
		for i, in := range []gatehouse.Consumer{a, b, c} {
			got := createConsumer(t, s, in)
			want := in
			want.UID = int64(i + 1)
			checkEqual(t, "CreateConsumer result", got, want)
			byUID, err := s.GetConsumer(ctx, want.UID)
			must(t, err)
			checkEqual(t, "GetConsumer", byUID, want)
			byKey, err := s.GetConsumerByKeyHash(ctx, in.KeyHash)
			must(t, err)
			checkEqual(t, "GetConsumerByKeyHash", byKey, want)
		}
		for _, name := range []string{"Mobile App", "mobile app", "MOBILE APP"} {
			got, err := s.GetConsumerByName(ctx, name)
			must(t, err)
			if got.UID != 2 || got.Lifetime != 0 || !got.NeverExpires() || len(got.Grants) != 0 || !got.Disabled {
				t.Fatalf("GetConsumerByName(%q) = %+v", name, got)
			}
		}
		got, err := s.GetConsumer(ctx, 1)
		must(t, err)
		if got.Lifetime != 90*time.Minute || !got.AllowsGrant(gatehouse.GrantRefreshToken) {
			t.Fatalf("lifetime or grants lost: %+v", got)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		createConsumer(t, s, consumer("Reports", 1))
		_, err := s.GetConsumer(ctx, 2)
		wantErr(t, "unknown uid", err, gatehouse.ErrNotFound)
		_, err = s.GetConsumer(ctx, 0)
		wantErr(t, "uid 0", err, gatehouse.ErrNotFound)
		_, err = s.GetConsumerByName(ctx, "Report")
		wantErr(t, "unknown name", err, gatehouse.ErrNotFound)
		_, err = s.GetConsumerByKeyHash(ctx, hash("nope"))
		wantErr(t, "unknown key hash", err, gatehouse.ErrNotFound)
		_, err = s.GetConsumerByKeyHash(ctx, nil)
		wantErr(t, "nil key hash", err, gatehouse.ErrNotFound)
		_, err = s.UpdateConsumer(ctx, 2, func(*gatehouse.Consumer) error { return nil })
		wantErr(t, "update unknown", err, gatehouse.ErrNotFound)
		wantErr(t, "delete unknown", s.DeleteConsumer(ctx, 2), gatehouse.ErrNotFound)
	}},
	{"Conflict", func(t *testing.T, s store.Store) {
		createConsumer(t, s, consumer("Reports", 1))
		rev := lastRev(t, s)
		cases := []struct {
			name string
			c    gatehouse.Consumer
		}{
			{"same name", consumer("Reports", 2)},
			{"name in other case", consumer("REPORTS", 2)},
			{"same key hash", consumer("Other", 1)},
		}
		for _, tc := range cases {
			_, err := s.CreateConsumer(ctx, tc.c)
			wantErr(t, tc.name, err, gatehouse.ErrConflict)
		}
		noChanges(t, s, rev)
		cs, err := s.ListConsumers(ctx)
		must(t, err)
		if len(cs) != 1 {
			t.Fatalf("consumers after conflicts: %+v", cs)
		}
	}},
	{"UIDsNeverReused", func(t *testing.T, s store.Store) {
		createConsumer(t, s, consumer("a", 1))
		createConsumer(t, s, consumer("b", 2))
		must(t, s.DeleteConsumer(ctx, 2))
		if c := createConsumer(t, s, consumer("c", 3)); c.UID != 3 {
			t.Fatalf("uid after a delete = %d, want 3", c.UID)
		}
	}},
	{"Update", func(t *testing.T, s store.Store) {
		createConsumer(t, s, consumer("Reports", 1))
		createConsumer(t, s, consumer("Other", 2))
		var seen gatehouse.Consumer
		got, err := s.UpdateConsumer(ctx, 1, func(c *gatehouse.Consumer) error {
			seen = *c
			c.Name = "Reporting"
			c.Disabled = true
			c.KeyHash = hash("new key")
			c.Grants = []string{gatehouse.GrantPassword}
			c.Lifetime = 0
			c.Scope = "/api"
			c.UpdatedAt = at(time.Hour)
			return nil
		})
		must(t, err)
		first := consumer("Reports", 1)
		first.UID = 1
		checkEqual(t, "fn sees the stored consumer", seen, first)
		want := first
		want.Name, want.Disabled, want.KeyHash, want.Grants, want.Lifetime, want.Scope, want.UpdatedAt =
			"Reporting", true, hash("new key"), []string{gatehouse.GrantPassword}, 0, "/api", at(time.Hour)
		checkEqual(t, "UpdateConsumer result", got, want)
		stored, err := s.GetConsumerByName(ctx, "reporting")
		must(t, err)
		checkEqual(t, "stored consumer", stored, want)
		if _, err := s.GetConsumerByKeyHash(ctx, first.KeyHash); !errors.Is(err, gatehouse.ErrNotFound) {
			t.Fatalf("old key hash still finds the consumer: %v", err)
		}
		if _, err := s.GetConsumerByName(ctx, "Reports"); !errors.Is(err, gatehouse.ErrNotFound) {
			t.Fatalf("old name still finds the consumer: %v", err)
		}
	}},
	{"UpdateRefused", func(t *testing.T, s store.Store) {
		a := createConsumer(t, s, consumer("Reports", 1))
		createConsumer(t, s, consumer("Other", 2))
		rev := lastRev(t, s)
		boom := errors.New("boom")
		cases := []struct {
			name   string
			fn     func(*gatehouse.Consumer) error
			target error
		}{
			{"fn error", func(c *gatehouse.Consumer) error { c.Disabled = true; return boom }, boom},
			{"name taken", func(c *gatehouse.Consumer) error { c.Name = "OTHER"; c.Disabled = true; return nil }, gatehouse.ErrConflict},
			{"key hash taken", func(c *gatehouse.Consumer) error { c.KeyHash = consumer("x", 2).KeyHash; return nil }, gatehouse.ErrConflict},
		}
		for _, tc := range cases {
			_, err := s.UpdateConsumer(ctx, 1, tc.fn)
			wantErr(t, tc.name, err, tc.target)
		}
		_, err := s.UpdateConsumer(ctx, 1, func(c *gatehouse.Consumer) error { c.UID = 2; return nil })
		if err == nil {
			t.Fatal("UpdateConsumer changed the uid")
		}
		got, err := s.GetConsumer(ctx, 1)
		must(t, err)
		checkEqual(t, "consumer after refused updates", got, a)
		noChanges(t, s, rev)
	}},
	{"Delete", func(t *testing.T, s store.Store) {
		c := createConsumer(t, s, consumer("Reports", 1))
		other := createConsumer(t, s, consumer("Other", 2))
		createSession(t, s, session("s1", c.UID, "bob", 0), "r1", 0)
		createSession(t, s, session("s2", c.UID, "", time.Minute), "", 0)
		createSession(t, s, session("s3", c.UID, "carol", 2*time.Minute), "", 0)
		must(t, s.EndSession(ctx, "s3", gatehouse.EndAdmin, at(3*time.Minute)))
		createSession(t, s, session("s4", other.UID, "bob", 0), "", 0)
		createSession(t, s, session("s5", 0, "bob", 0), "", 0)

		must(t, s.DeleteConsumer(ctx, c.UID))
		_, err := s.GetConsumer(ctx, c.UID)
		wantErr(t, "deleted consumer", err, gatehouse.ErrNotFound)
		_, err = s.GetConsumerByKeyHash(ctx, c.KeyHash)
		wantErr(t, "deleted consumer's key", err, gatehouse.ErrNotFound)
		for _, id := range []string{"s1", "s2"} {
			x := getSession(t, s, id)
			if x.EndedAt.IsZero() || x.EndReason != gatehouse.EndConsumerDisabled {
				t.Fatalf("session %s after the consumer was deleted: %+v", id, x)
			}
		}
		if x := getSession(t, s, "s3"); x.EndReason != gatehouse.EndAdmin || !x.EndedAt.Equal(at(3*time.Minute).Truncate(time.Microsecond)) {
			t.Fatalf("an ended session lost its first end: %+v", x)
		}
		for _, id := range []string{"s4", "s5"} {
			if x := getSession(t, s, id); !x.EndedAt.IsZero() {
				t.Fatalf("session %s of another principal ended: %+v", id, x)
			}
		}
		cs, err := s.ListConsumers(ctx)
		must(t, err)
		checkEqual(t, "consumers after delete", cs, []gatehouse.Consumer{other})
		// Its name and key are free again.
		createConsumer(t, s, consumer("Reports", 1))
	}},
	{"List", func(t *testing.T, s store.Store) {
		if cs, err := s.ListConsumers(ctx); err != nil || len(cs) != 0 {
			t.Fatalf("ListConsumers on an empty store = %v, %v", cs, err)
		}
		var want []gatehouse.Consumer
		for i, name := range []string{"zeta", "Alpha", "mid"} {
			want = append(want, createConsumer(t, s, consumer(name, byte(i+1))))
		}
		cs, err := s.ListConsumers(ctx)
		must(t, err)
		checkEqual(t, "ListConsumers (by uid)", cs, want)
	}},
}
