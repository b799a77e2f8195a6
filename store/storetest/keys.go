package storetest

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

func listKeys(t *testing.T, s store.Store) []gatehouse.SigningKey {
	t.Helper()
	ks, err := s.ListKeys(ctx)
	must(t, err)
	return ks
}

// checkOneActive fails unless every algorithm with keys has exactly one
// active key.
func checkOneActive(t *testing.T, ks []gatehouse.SigningKey) {
	t.Helper()
	active := map[string]int{}
	for _, k := range ks {
		active[k.Algorithm] += 0
		if k.State == gatehouse.KeyActive {
			active[k.Algorithm]++
		}
	}
	for alg, n := range active {
		if n != 1 {
			t.Fatalf("%s has %d active keys: %+v", alg, n, ks)
		}
	}
}

// us is t as the store keeps it: to the microsecond.
func us(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

var keyTests = []test{
	{"Init", func(t *testing.T, s store.Store) {
		if ks := listKeys(t, s); len(ks) != 0 {
			t.Fatalf("keys in an empty store: %+v", ks)
		}
		a, n := key("rs-1", "RS256", gatehouse.KeyActive, at(0)), key("rs-2", "RS256", gatehouse.KeyNext, at(time.Second))
		must(t, s.InitKeys(ctx, a, n))
		checkEqual(t, "keys after InitKeys", listKeys(t, s), []gatehouse.SigningKey{a, n})

		rev := lastRev(t, s)
		err := s.InitKeys(ctx, key("rs-3", "RS256", gatehouse.KeyActive, at(time.Hour)), key("rs-4", "RS256", gatehouse.KeyNext, at(time.Hour)))
		wantErr(t, "second InitKeys", err, gatehouse.ErrConflict)
		checkEqual(t, "keys after a refused InitKeys", listKeys(t, s), []gatehouse.SigningKey{a, n})
		noChanges(t, s, rev)

		// Another algorithm is independent; HS256 keys have no public part.
		ha, hn := key("hs-1", "HS256", gatehouse.KeyActive, at(time.Minute)), key("hs-2", "HS256", gatehouse.KeyNext, at(2*time.Minute))
		must(t, s.InitKeys(ctx, ha, hn))
		ks := listKeys(t, s)
		checkEqual(t, "keys of two algorithms", ks, []gatehouse.SigningKey{a, n, ha, hn})
		if len(ks[2].Public) != 0 {
			t.Fatalf("HS256 public key: %x", ks[2].Public)
		}
		checkOneActive(t, ks)
	}},
	{"ListOldestFirst", func(t *testing.T, s store.Store) {
		late := []gatehouse.SigningKey{key("b1", "ES256", gatehouse.KeyActive, at(time.Hour)), key("b2", "ES256", gatehouse.KeyNext, at(2*time.Hour))}
		early := []gatehouse.SigningKey{key("a1", "EdDSA", gatehouse.KeyActive, at(0)), key("a2", "EdDSA", gatehouse.KeyNext, at(time.Minute))}
		must(t, s.InitKeys(ctx, late[0], late[1]))
		must(t, s.InitKeys(ctx, early[0], early[1]))
		checkEqual(t, "ListKeys", listKeys(t, s), append(early, late...))
	}},
	{"BytesRoundTrip", func(t *testing.T, s store.Store) {
		a := key("k1", "ES256", gatehouse.KeyActive, at(0))
		a.Public = []byte{0, 1, 2, 0xff, 0, 0x80}
		a.Private = make([]byte, 4096)
		for i := range a.Private {
			a.Private[i] = byte(i * 7)
		}
		n := key("k2", "ES256", gatehouse.KeyNext, at(0))
		n.Private = []byte{0}
		must(t, s.InitKeys(ctx, a, n))
		checkEqual(t, "keys", listKeys(t, s), []gatehouse.SigningKey{a, n})
	}},
	{"Rotate", func(t *testing.T, s store.Store) {
		a, n := key("k1", "RS256", gatehouse.KeyActive, at(0)), key("k2", "RS256", gatehouse.KeyNext, at(time.Second))
		must(t, s.InitKeys(ctx, a, n))
		ea, en := key("e1", "ES256", gatehouse.KeyActive, at(2*time.Second)), key("e2", "ES256", gatehouse.KeyNext, at(3*time.Second))
		must(t, s.InitKeys(ctx, ea, en))

		rotated, until := at(time.Hour), at(25*time.Hour)
		k3 := key("k3", "RS256", gatehouse.KeyNext, rotated)
		must(t, s.RotateKeys(ctx, "k1", k3, rotated, until))
		wa := a
		wa.State, wa.RetiredAt, wa.NotAfter = gatehouse.KeyRetired, rotated, until
		wn := n
		wn.State, wn.ActivatedAt = gatehouse.KeyActive, rotated
		ks := listKeys(t, s)
		checkEqual(t, "keys after rotation", ks, []gatehouse.SigningKey{wa, wn, ea, en, k3})
		checkOneActive(t, ks)

		rev := lastRev(t, s)
		// k1 is no longer active: a rotation that expects it loses.
		err := s.RotateKeys(ctx, "k1", key("k4", "RS256", gatehouse.KeyNext, at(2*time.Hour)), at(2*time.Hour), at(26*time.Hour))
		wantErr(t, "stale rotation", err, gatehouse.ErrConflict)
		err = s.RotateKeys(ctx, "nope", key("k5", "RS256", gatehouse.KeyNext, at(2*time.Hour)), at(2*time.Hour), at(26*time.Hour))
		wantErr(t, "rotation of an unknown key", err, gatehouse.ErrConflict)
		err = s.RotateKeys(ctx, "k3", key("k6", "RS256", gatehouse.KeyNext, at(2*time.Hour)), at(2*time.Hour), at(26*time.Hour))
		wantErr(t, "rotation expecting the next key", err, gatehouse.ErrConflict)
		checkEqual(t, "keys after refused rotations", listKeys(t, s), ks)
		noChanges(t, s, rev)

		// A second rotation retires k2 and promotes k3.
		k7 := key("k7", "RS256", gatehouse.KeyNext, at(3*time.Hour))
		must(t, s.RotateKeys(ctx, "k2", k7, at(3*time.Hour), at(27*time.Hour)))
		ks = listKeys(t, s)
		checkOneActive(t, ks)
		states := map[string]gatehouse.KeyState{}
		for _, k := range ks {
			states[k.KID] = k.State
		}
		want := map[string]gatehouse.KeyState{"k1": "retired", "k2": "retired", "k3": "active", "k7": "next", "e1": "active", "e2": "next"}
		checkEqual(t, "states after two rotations", len(states), len(want))
		for kid, st := range want {
			if states[kid] != st {
				t.Fatalf("key %s is %s, want %s (%+v)", kid, states[kid], st, ks)
			}
		}
	}},
	{"Revoke", func(t *testing.T, s store.Store) {
		a, n := key("k1", "RS256", gatehouse.KeyActive, at(0)), key("k2", "RS256", gatehouse.KeyNext, at(time.Second))
		must(t, s.InitKeys(ctx, a, n))
		ea, en := key("e1", "ES256", gatehouse.KeyActive, at(2*time.Second)), key("e2", "ES256", gatehouse.KeyNext, at(3*time.Second))
		must(t, s.InitKeys(ctx, ea, en))
		keyNamed := func(kid string) gatehouse.SigningKey {
			t.Helper()
			for _, k := range listKeys(t, s) {
				if k.KID == kid {
					return k
				}
			}
			t.Fatalf("no key %s", kid)
			return gatehouse.SigningKey{}
		}

		// The active key: the next one takes over, a new next key comes in,
		// the revoked one loses its private part; one transaction, in the feed.
		rev := lastRev(t, s)
		revoked, keep := at(time.Hour), at(25*time.Hour)
		k3 := key("k3", "RS256", gatehouse.KeyNext, revoked)
		was, err := s.RevokeKey(ctx, "k1", k3, revoked, keep)
		must(t, err)
		checkEqual(t, "RevokeKey result", was, a)
		wa := a
		wa.State, wa.Private, wa.RetiredAt, wa.NotAfter = gatehouse.KeyRevoked, nil, revoked, keep
		wn := n
		wn.State, wn.ActivatedAt = gatehouse.KeyActive, revoked
		ks := listKeys(t, s)
		checkEqual(t, "keys after revoking the active key", ks, []gatehouse.SigningKey{wa, wn, ea, en, k3})
		checkOneActive(t, ks)
		expectChanges(t, s, rev, []change{{gatehouse.ChangeKey, "k1", gatehouse.OpUpdate},
			{gatehouse.ChangeKey, "k2", gatehouse.OpUpdate}, {gatehouse.ChangeKey, "k3", gatehouse.OpCreate}})

		// Again: nothing changes.
		rev = lastRev(t, s)
		was, err = s.RevokeKey(ctx, "k1", key("k9", "RS256", gatehouse.KeyNext, at(2*time.Hour)), at(2*time.Hour), at(99*time.Hour))
		must(t, err)
		checkEqual(t, "second RevokeKey result", was, wa)
		checkEqual(t, "keys after a second revocation", listKeys(t, s), ks)
		noChanges(t, s, rev)

		// The next key: replaced by a new next key.
		k4 := key("k4", "RS256", gatehouse.KeyNext, at(2*time.Hour))
		_, err = s.RevokeKey(ctx, "k3", k4, at(2*time.Hour), at(26*time.Hour))
		must(t, err)
		if k := keyNamed("k3"); k.State != gatehouse.KeyRevoked || len(k.Private) != 0 || !k.NotAfter.Equal(us(at(26*time.Hour))) {
			t.Fatalf("revoked next key %+v", k)
		}
		if k := keyNamed("k4"); k.State != gatehouse.KeyNext {
			t.Fatalf("new next key %+v", k)
		}
		checkOneActive(t, listKeys(t, s))

		// A retired key: revoked alone, its retirement times kept.
		must(t, s.RotateKeys(ctx, "e1", key("e3", "ES256", gatehouse.KeyNext, at(3*time.Hour)), at(3*time.Hour), at(30*time.Hour)))
		rev = lastRev(t, s)
		_, err = s.RevokeKey(ctx, "e1", key("e4", "ES256", gatehouse.KeyNext, at(4*time.Hour)), at(4*time.Hour), at(99*time.Hour))
		must(t, err)
		if k := keyNamed("e1"); k.State != gatehouse.KeyRevoked || len(k.Private) != 0 || !k.RetiredAt.Equal(us(at(3*time.Hour))) ||
			!k.NotAfter.Equal(us(at(30*time.Hour))) {
			t.Fatalf("revoked retired key %+v", k)
		}
		expectChanges(t, s, rev, []change{{gatehouse.ChangeKey, "e1", gatehouse.OpUpdate}})

		// Refusals change nothing.
		ks, rev = listKeys(t, s), lastRev(t, s)
		_, err = s.RevokeKey(ctx, "nope", key("x1", "RS256", gatehouse.KeyNext, at(5*time.Hour)), at(5*time.Hour), at(99*time.Hour))
		wantErr(t, "revoking an unknown key", err, gatehouse.ErrNotFound)
		_, err = s.RevokeKey(ctx, "k2", key("e2", "RS256", gatehouse.KeyNext, at(5*time.Hour)), at(5*time.Hour), at(99*time.Hour))
		wantErr(t, "revoking with a taken kid", err, gatehouse.ErrConflict)
		checkEqual(t, "keys after refused revocations", listKeys(t, s), ks)
		noChanges(t, s, rev)

		// Revoked keys go when their NotAfter has passed.
		n2, err := s.DeleteRetiredKeys(ctx, at(26*time.Hour))
		must(t, err)
		if n2 != 1 {
			t.Fatalf("DeleteRetiredKeys deleted %d keys, want k1", n2)
		}
		for _, k := range listKeys(t, s) {
			if k.KID == "k1" {
				t.Fatal("k1 kept past its NotAfter")
			}
		}
	}},
	{"DeleteRetired", func(t *testing.T, s store.Store) {
		must(t, s.InitKeys(ctx, key("k1", "RS256", gatehouse.KeyActive, at(0)), key("k2", "RS256", gatehouse.KeyNext, at(0))))
		must(t, s.RotateKeys(ctx, "k1", key("k3", "RS256", gatehouse.KeyNext, at(time.Hour)), at(time.Hour), at(10*time.Hour)))
		must(t, s.RotateKeys(ctx, "k2", key("k4", "RS256", gatehouse.KeyNext, at(2*time.Hour)), at(2*time.Hour), at(20*time.Hour)))
		cases := []struct {
			before time.Time
			n      int
			left   []string
		}{
			{at(10 * time.Hour), 0, []string{"k1", "k2", "k3", "k4"}}, // NotAfter is not before it
			{at(10*time.Hour + time.Second), 1, []string{"k2", "k3", "k4"}},
			{at(1000 * time.Hour), 1, []string{"k3", "k4"}}, // active and next keys stay
		}
		for _, tc := range cases {
			n, err := s.DeleteRetiredKeys(ctx, tc.before)
			must(t, err)
			var left []string
			for _, k := range listKeys(t, s) {
				left = append(left, k.KID)
			}
			if n != tc.n || !sameSet(left, tc.left) {
				t.Fatalf("DeleteRetiredKeys(%v) = %d leaving %v; want %d leaving %v", tc.before, n, left, tc.n, tc.left)
			}
		}
	}},
}
