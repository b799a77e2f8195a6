package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// feedChannel is the channel the changes table's trigger notifies (see
// migration 6), with the schema as the payload.
const feedChannel = "gatehouse_feed"

// Notify calls wake whenever the feed may have new entries, until ctx
// ends: it LISTENs on a connection of its own. A notification sent while
// that connection is down is lost, so wake is also called each time it
// has (re)connected; the follower's polling stays the fallback meanwhile.
func (s *Store) Notify(ctx context.Context, wake func()) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if s.listen(ctx, wake) {
			backoff = 50 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// listen listens until the connection fails or ctx ends; it reports
// whether it got as far as listening.
func (s *Store) listen(ctx context.Context, wake func()) bool {
	cfg := s.pool.Config().ConnConfig.Copy()
	// Named with the schema, so that it can be told from other stores' listeners.
	name := "gatehouse-listen:" + s.schema
	cfg.RuntimeParams["application_name"] = name[:min(len(name), 63)]
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+feedChannel)
	}
	cancel()
	if conn != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			conn.Close(cctx)
		}()
	}
	if err != nil {
		return false
	}
	wake() // whatever was written while nobody listened
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		if n.Payload == s.schema {
			wake()
		}
	}
}
