package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/postgres"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
)

// ends is a listener that reports session ends.
type ends chan string

func (e ends) Changes(cs []gatehouse.Change) {
	for _, c := range cs {
		if c.Kind == gatehouse.ChangeSession && c.Op == gatehouse.OpEnd {
			e <- c.Key
		}
	}
}
func (e ends) Reset() {}

func (e ends) want(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-e:
		if got != id {
			t.Fatalf("follower saw the end of %q, want %q", got, id)
		}
	case <-time.After(10 * time.Second): // a bound on a test that failed, not a measure
		t.Fatalf("the end of %q was not seen", id)
	}
}

// TestNotifiedFollower: a follower of the PostgreSQL store learns of a
// change written by another process at once (LISTEN/NOTIFY), not at its
// interval (an hour here), and still does after its listening connection
// was dropped, including a change written while it was down.
func TestNotifiedFollower(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, postgres.Options{})
	writer := open(t, dsn, postgres.Options{})
	f := store.NewFollower(s, time.Hour, nil)
	seen := ends(make(chan string, 16))
	f.Subscribe(seen)
	if err := f.Start(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	end := func(id string) {
		t.Helper()
		if _, err := writer.CreateSession(bg, store.NewSession{Session: gatehouse.Session{ID: id, ConsumerUID: 1,
			Flow: gatehouse.FlowConsumer, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		if err := writer.EndSession(bg, id, gatehouse.EndAdmin, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	const ours = "application_name = 'gatehouse-listen:' || current_schema()"
	// The follower connects in the background.
	testtime.Eventually(t, 10*time.Second, func() error {
		var n int
		if err := conn.QueryRow(bg, "SELECT count(*) FROM pg_stat_activity WHERE "+ours).Scan(&n); err != nil || n == 0 {
			return fmt.Errorf("not listening yet (%v)", err)
		}
		return nil
	})
	end("s1")
	seen.want(t, "s1")

	// Drop the listening connection, and write while it is down.
	if _, err := conn.Exec(bg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "+ours); err != nil {
		t.Fatal(err)
	}
	end("s2")
	seen.want(t, "s2")
	end("s3")
	seen.want(t, "s3")
}
