package admin

import (
	"context"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// EndSession ends one session.
func (a *Admin) EndSession(ctx context.Context, actor, id string) error {
	if err := a.store.EndSession(a.with(ctx, actor, "session.end", "session:"+id, ""), id, gatehouse.EndAdmin, a.clock.Now()); err != nil {
		return notFound(err, "session", id)
	}
	a.sessionsEnded([]string{id})
	return nil
}

// EndUserSessions ends every active session acting as a user.
func (a *Admin) EndUserSessions(ctx context.Context, actor, username string) ([]string, error) {
	if username == "" {
		return nil, inputErr("name a user")
	}
	ended, err := a.store.EndSessions(a.sessionsEndedEvent(ctx, actor, "user:"+username, "ended by an administrator"),
		store.SessionFilter{Username: username}, gatehouse.EndAdmin, a.clock.Now())
	if err != nil {
		return nil, err
	}
	a.sessionsEnded(ended)
	return ended, nil
}
