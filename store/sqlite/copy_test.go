package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// TestCopy: store.Copy between two embedded stores keeps consumer uids, key
// hashes, refresh tokens and keys, and refuses a non-empty target.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) *Store {
		s, err := Open(ctx, filepath.Join(dir, name), Options{Synchronous: "normal"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	src, dst := open("src.db"), open("dst.db")
	now := time.Now()
	for i, name := range []string{"a", "b", "c"} {
		_, err := src.CreateConsumer(ctx, gatehouse.Consumer{Name: name, Type: gatehouse.ConsumerService, Scope: "/api", KeyHash: []byte{byte(i + 1)}})
		must(err)
	}
	must(src.DeleteConsumer(ctx, 3))
	must(src.InitKeys(ctx, gatehouse.SigningKey{KID: "k1", Algorithm: "HS256", Private: []byte("1"), CreatedAt: now},
		gatehouse.SigningKey{KID: "k2", Algorithm: "HS256", Private: []byte("2"), CreatedAt: now}))
	x := gatehouse.Session{ID: "s1", ConsumerUID: 1, Flow: gatehouse.FlowOAuthClient, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	_, err := src.CreateSession(ctx, store.NewSession{Session: x, RefreshHash: []byte("r1")})
	must(err)
	_, err = src.RefreshSession(ctx, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r2"), Now: now, ExpiresAt: now.Add(time.Hour)})
	must(err)

	rep, err := store.Copy(ctx, dst, src, now)
	must(err)
	if rep.Consumers != 2 || rep.Sessions != 1 || rep.RefreshTokens != 2 || rep.Keys != 2 {
		t.Fatalf("copy report %+v", rep)
	}
	c, err := dst.GetConsumerByKeyHash(ctx, []byte{2})
	must(err)
	if c.UID != 2 {
		t.Fatalf("copied consumer uid %d", c.UID)
	}
	// Uid 3 was handed out and deleted in the source: the target does not
	// hand it out again.
	c, err = dst.CreateConsumer(ctx, gatehouse.Consumer{Name: "d", Type: gatehouse.ConsumerService, Scope: "/api"})
	must(err)
	if c.UID != 4 {
		t.Fatalf("uid after the copy = %d, want 4", c.UID)
	}
	// When r1 was spent is copied too: within a reuse grace, its retry is one still.
	if res, err := dst.RefreshSession(ctx, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r2"), Now: now.Add(time.Second),
		ExpiresAt: now.Add(time.Hour), Grace: time.Minute}); err != nil || !res.Retry || !res.At.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("retry after the copy: %+v, %v", res, err)
	}
	if _, err := dst.RefreshSession(ctx, store.Refresh{OldHash: []byte("r1"), NewHash: []byte("r3"), Now: now, ExpiresAt: now.Add(time.Hour)}); !errors.Is(err, gatehouse.ErrRefreshReused) {
		t.Fatalf("spent refresh token after the copy: %v", err)
	}
	if _, err := store.Copy(ctx, dst, src, now); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty store: %v", err)
	}
}
