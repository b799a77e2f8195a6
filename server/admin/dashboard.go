package admin

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/store"
)

// Minute counts the tokens issued and refused in one minute.
type Minute struct {
	At      string `json:"at"`
	Issued  int    `json:"issued"`
	Refused int    `json:"refused"`
}

// Dashboard is what the console's first page shows.
type Dashboard struct {
	ActiveSessions int `json:"active_sessions"`
	// Minutes are the last 60 minutes, oldest first.
	Minutes []Minute `json:"minutes"`
	// Lockouts are the lockouts begun in the last 24 hours, newest first.
	Lockouts []AuditEvent `json:"lockouts"`
	// Sessions are the newest active sessions (at most 20).
	Sessions []Session `json:"sessions"`
}

func (h *Handler) dashboard(ctx context.Context) (Dashboard, error) {
	now := h.o.Clock.Now()
	d := Dashboard{Minutes: make([]Minute, 60), Lockouts: []AuditEvent{}, Sessions: []Session{}}
	var err error
	if d.ActiveSessions, err = h.o.Store.CountActiveSessions(ctx, now); err != nil {
		return d, err
	}
	start := now.Truncate(time.Minute).Add(-59 * time.Minute)
	for i := range d.Minutes {
		d.Minutes[i].At = start.Add(time.Duration(i) * time.Minute).UTC().Format(time.RFC3339)
	}
	// Token events of the last hour, read a bounded chunk at a time.
	f := store.AuditFilter{Since: start, Action: "token.", Limit: 5000}
	for range 20 {
		evs, err := h.o.Store.ListAudit(ctx, f)
		if err != nil {
			return d, err
		}
		for _, ev := range evs {
			i := int(ev.At.Sub(start) / time.Minute)
			if i < 0 || i >= len(d.Minutes) {
				continue
			}
			switch {
			case ev.Action == "token.refuse":
				d.Minutes[i].Refused += max(ev.Count, 1)
			case ev.Action == "token.issue" || ev.Action == "token.refresh":
				d.Minutes[i].Issued++
			}
		}
		if len(evs) < f.Limit {
			break
		}
		f.AfterID = evs[len(evs)-1].ID
	}
	locks, err := h.o.Store.ListAudit(ctx, store.AuditFilter{Since: now.Add(-24 * time.Hour), Action: "lockout.start", Limit: 50, Newest: true})
	if err != nil {
		return d, err
	}
	for i := len(locks) - 1; i >= 0; i-- {
		d.Lockouts = append(d.Lockouts, toAudit(locks[i]))
	}
	ss, err := h.o.Store.ListSessions(ctx, store.SessionFilter{ActiveAt: now, Limit: 20})
	if err != nil {
		return d, err
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].CreatedAt.After(ss[j].CreatedAt) })
	for _, s := range ss {
		d.Sessions = append(d.Sessions, toSession(s, now))
	}
	return d, nil
}

func (h *Handler) apiDashboard(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	d, err := h.dashboard(r.Context())
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, d)
	return nil
}
