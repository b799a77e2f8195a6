// Package storetest is the conformance suite every store.Store backend
// passes. A behaviour it does not check is not guaranteed by the interface.
//
// Conventions the suite fixes where the interface leaves room:
//
//   - Times are kept to the microsecond: a time comes back truncated to the
//     microsecond (never rounded up), in UTC; a zero time comes back zero.
//   - Names (users, roles, catalog entries) are ordered by their lower-cased
//     form; case-insensitive matching uses strings.ToLower.
//   - Consumer uids start at 1, grow by one per consumer created, and are
//     never reused after a delete.
//   - Role entries come back in the order they were given.
//   - Feed entries are stamped with the wall-clock time of the write, which
//     is what PruneChanges compares against.
//   - Audit filters: Since is inclusive, Until exclusive.
//   - CreateSession's cap counts the new session, ends the others at the new
//     session's CreatedAt, and never ends the new session.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// RunTests runs the whole suite. open must return a fresh, empty store for
// each call and arrange for it to be closed when the test ends (t.Cleanup).
// The suite never runs subtests in parallel, so a backend may reuse one
// database between them as long as open empties it.
func RunTests(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Users", userTests},
		{"Roles", roleTests},
		{"Catalog", catalogTests},
		{"Consumers", consumerTests},
		{"Sessions", sessionTests},
		{"Refresh", refreshTests},
		{"Keys", keyTests},
		{"Audit", auditTests},
		{"Audited", auditedTests},
		{"AuditCount", auditCountTests},
		{"AuthFailures", authFailureTests},
		{"Lockouts", lockoutTests},
		{"Feed", feedTests},
		{"Concurrency", concurrencyTests},
		{"Misc", miscTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, open(t))
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

var ctx = context.Background()

// t0 is the base of the times the suite uses. Times carry nanoseconds and a
// non-UTC zone, to check truncation and conversion.
var (
	zone = time.FixedZone("UTC+2", 2*3600)
	t0   = time.Date(2031, 3, 4, 5, 6, 7, 123456789, zone)
)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// ---- fixtures ----

func user(name string) gatehouse.User {
	return gatehouse.User{Name: name, Identity: gatehouse.IdentitySQL, Role: "sales", AllowODataAPI: true,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAt: at(0), UpdatedAt: at(time.Minute)}
}

func consumer(name string, hash byte) gatehouse.Consumer {
	return gatehouse.Consumer{Name: name, Type: gatehouse.ConsumerService, SDKAccess: true, Lifetime: 90 * time.Minute,
		Scope: "/api /data/erp/views/v1", Grants: []string{gatehouse.GrantPassword, gatehouse.GrantRefreshToken},
		KeyHash: bytes.Repeat([]byte{hash}, 32), CreatedAt: at(0), UpdatedAt: at(0)}
}

// session is an active session of (uid, username) created at t0+created,
// expiring an hour later.
func session(id string, uid int64, username string, created time.Duration) gatehouse.Session {
	return gatehouse.Session{ID: id, Username: username, ConsumerUID: uid, Flow: gatehouse.FlowConsumer,
		Scope: "/api", CreatedAt: at(created), ExpiresAt: at(created + time.Hour), RemoteAddr: "192.0.2.7"}
}

func hash(s string) []byte {
	h := make([]byte, 32)
	copy(h, s)
	return h
}

func createSession(t *testing.T, s store.Store, x gatehouse.Session, refresh string, max int) []string {
	t.Helper()
	n := store.NewSession{Session: x, MaxSessions: max}
	if refresh != "" {
		n.RefreshHash = hash(refresh)
	}
	ended, err := s.CreateSession(ctx, n)
	if err != nil {
		t.Fatalf("create session %s: %v", x.ID, err)
	}
	return ended
}

func getSession(t *testing.T, s store.Store, id string) gatehouse.Session {
	t.Helper()
	x, err := s.GetSession(ctx, id)
	if err != nil {
		t.Fatalf("get session %s: %v", id, err)
	}
	return x
}

func key(kid, alg string, state gatehouse.KeyState, created time.Time) gatehouse.SigningKey {
	k := gatehouse.SigningKey{KID: kid, Algorithm: alg, Public: []byte("public " + kid), Private: []byte("sealed private " + kid),
		State: state, CreatedAt: created}
	if alg == "HS256" {
		k.Public = nil
	}
	if state == gatehouse.KeyActive {
		k.ActivatedAt = created
	}
	return k
}

// ---- comparison ----

var timeType = reflect.TypeOf(time.Time{})

// checkEqual compares got with want field by field. Times compare with
// Equal after truncating want to the microsecond and must come back in UTC;
// nil and empty slices are equal.
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := diff(reflect.ValueOf(got), reflect.ValueOf(want), ""); d != "" {
		t.Fatalf("%s: %s\n got: %+v\nwant: %+v", what, d, got, want)
	}
}

func diff(g, w reflect.Value, path string) string {
	if g.Type() != w.Type() {
		return fmt.Sprintf("%s: type %s, want %s", path, g.Type(), w.Type())
	}
	if g.Type() == timeType {
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if wt.IsZero() {
			if !gt.IsZero() {
				return fmt.Sprintf("%s: %v, want zero time", path, gt)
			}
			return ""
		}
		if !gt.Equal(wt.Truncate(time.Microsecond)) {
			return fmt.Sprintf("%s: %v, want %v", path, gt, wt.Truncate(time.Microsecond).UTC())
		}
		if gt.Location() != time.UTC {
			return fmt.Sprintf("%s: %v is not in UTC", path, gt)
		}
		return ""
	}
	switch g.Kind() {
	case reflect.Struct:
		for i := range g.NumField() {
			if d := diff(g.Field(i), w.Field(i), path+"."+g.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if g.Len() != w.Len() {
			return fmt.Sprintf("%s: length %d, want %d", path, g.Len(), w.Len())
		}
		for i := range g.Len() {
			if d := diff(g.Index(i), w.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(g.Interface(), w.Interface()) {
		return fmt.Sprintf("%s: %v, want %v", path, g.Interface(), w.Interface())
	}
	return ""
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func ids(ss []gatehouse.Session) []string {
	out := make([]string, len(ss))
	for i, x := range ss {
		out[i] = x.ID
	}
	return out
}
