package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// PruneAudit removes the audit events before `before` for an
// administrator (actor), and audits that it did: the audit.prune event is
// written after the removal, at now, so that it is never removed with
// them. before may not be after now.
func PruneAudit(ctx context.Context, st store.Audit, actor string, before, now time.Time) (int, error) {
	if before.After(now) {
		return 0, &InputError{Msg: fmt.Sprintf("--before %s is in the future; the audit trail is pruned of past events only",
			before.UTC().Format(time.RFC3339))}
	}
	n, err := st.PruneAudit(ctx, before)
	if err != nil {
		return n, fmt.Errorf("prune the audit trail: %w", err)
	}
	if err := st.AppendAudit(ctx, gatehouse.AuditEvent{At: now, Actor: actor, Action: "audit.prune", Target: "audit",
		Outcome: gatehouse.OutcomeSuccess, Detail: fmt.Sprintf("removed %d events before %s", n, before.UTC().Format(time.RFC3339))}); err != nil {
		return n, fmt.Errorf("removed %d audit events, but could not audit it: %w", n, err)
	}
	return n, nil
}
