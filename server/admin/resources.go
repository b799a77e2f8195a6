package admin

import (
	"fmt"
	"math"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// The resources as the API shows them are the administration views of
// package auth/admin, the same as the CLI's --json output.
type (
	User      = admin.UserView
	Lockout   = admin.LockoutView
	RoleEntry = admin.RoleEntryView
	Role      = admin.RoleView
	Consumer  = admin.ConsumerView
	Session   = admin.SessionView
)

func toUser(u gatehouse.User) User                         { return admin.ViewUser(u) }
func toLockout(l admin.Lockout) *Lockout                   { return admin.ViewLockout(l) }
func toRole(r gatehouse.Role) Role                         { return admin.ViewRole(r) }
func toConsumer(c gatehouse.Consumer) Consumer             { return admin.ViewConsumer(c) }
func toSession(s gatehouse.Session, now time.Time) Session { return admin.ViewSession(s, now) }

// sessionKey sorts sessions newest first.
func sessionKey(s Session) string {
	t, _ := time.Parse(time.RFC3339Nano, s.CreatedAt)
	return fmt.Sprintf("%020d|%s", math.MaxInt64-t.UnixNano(), s.ID)
}

// Key is a signing key as the API shows it (never its private part).
type Key struct {
	KID         string `json:"kid"`
	Algorithm   string `json:"alg"`
	State       string `json:"state"`
	CreatedAt   string `json:"created_at"`
	ActivatedAt string `json:"activated_at,omitempty"`
	RetiredAt   string `json:"retired_at,omitempty"`
	NotAfter    string `json:"not_after,omitempty"`
}

func toKey(k gatehouse.SigningKey) Key {
	return Key{KID: k.KID, Algorithm: k.Algorithm, State: string(k.State), CreatedAt: ts(k.CreatedAt),
		ActivatedAt: ts(k.ActivatedAt), RetiredAt: ts(k.RetiredAt), NotAfter: ts(k.NotAfter)}
}

// CatalogEntry is a known table or view.
type CatalogEntry struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// AuditEvent is one line of the audit trail, as `gatehouse audit --json`
// writes it.
type AuditEvent struct {
	ID      int64  `json:"id"`
	At      string `json:"at"`
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
	Remote  string `json:"remote,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

func toAudit(ev gatehouse.AuditEvent) AuditEvent {
	return AuditEvent{ID: ev.ID, At: ev.At.UTC().Format(time.RFC3339Nano), Actor: ev.Actor, Action: ev.Action,
		Target: ev.Target, Outcome: ev.Outcome, Count: max(ev.Count, 1), Remote: ev.Remote, Detail: ev.Detail}
}

// ts formats a time as the API shows it (UTC, RFC 3339 with fractions), "" for zero.
func ts(t time.Time) string { return admin.Time(t) }
