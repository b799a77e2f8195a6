package store

import (
	"context"

	"github.com/gatehouse/gatehouse"
)

// AuditFunc makes the audit events of a write from the changes it made (as
// the change feed records them: a created consumer's uid, the sessions
// ended). It runs inside the write's transaction, after the write itself,
// on a goroutine of the store: it must be quick and must not call the
// store.
type AuditFunc func(changes []gatehouse.Change) []gatehouse.AuditEvent

type auditKey struct{}

// WithAudit returns a context whose write — every write method of Users,
// Roles, Catalog, Consumers, Sessions' end methods, Keys and the lockout
// methods of Audit — also writes the events f makes, in the same
// transaction: both are stored, or neither. Give it to one write call only;
// each write that receives it writes f's events.
func WithAudit(ctx context.Context, f AuditFunc) context.Context {
	return context.WithValue(ctx, auditKey{}, f)
}

// AuditOf returns the AuditFunc of ctx, nil when there is none. Store
// implementations call it.
func AuditOf(ctx context.Context) AuditFunc {
	f, _ := ctx.Value(auditKey{}).(AuditFunc)
	return f
}

// Events is an AuditFunc for events known before the write.
func Events(events ...gatehouse.AuditEvent) AuditFunc {
	return func([]gatehouse.Change) []gatehouse.AuditEvent { return events }
}
