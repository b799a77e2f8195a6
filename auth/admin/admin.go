// Package admin is gatehouse's administration: users, roles and their
// permissions, the catalog, consumers, sessions and signing keys, one file
// per resource. Every change is audited with the acting administrator. The
// command line uses it today; every other interface must, so that all
// share the same rules and the same audit trail.
package admin

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/store"
)

// Admin is the administration service behind the CLI (and, later, the
// admin API): every change is validated, stored, and audited under the
// actor's name.
type Admin struct {
	store     store.Store
	passwords *password.Hasher
	ckeys     *auth.ConsumerKeys
	keys      *auth.KeyManager
	cfg       auth.Config
	clock     gatehouse.Clock
	// ended is told the sessions a change ends (see OnSessionsEnded).
	ended func(ids ...string)
}

// New builds the administration service.
func New(st store.Store, pw *password.Hasher, ck *auth.ConsumerKeys, km *auth.KeyManager, cfg auth.Config, clock gatehouse.Clock) *Admin {
	if clock == nil {
		clock = gatehouse.SystemClock
	}
	return &Admin{store: st, passwords: pw, ckeys: ck, keys: km, cfg: cfg.Defaults(), clock: clock, ended: func(...string) {}}
}

// OnSessionsEnded makes the service tell f about the sessions its changes
// end, so that a verifier in the same process forgets them at once; other
// processes learn of them from the change feed. Call before use.
func (a *Admin) OnSessionsEnded(f func(ids ...string)) { a.ended = f }

func (a *Admin) sessionsEnded(ids []string) {
	if len(ids) > 0 {
		a.ended(ids...)
	}
}

// InputError is an administrator's mistake; its message names what is wrong.
type InputError struct {
	Msg string
	// NotFound: the thing named does not exist. Conflict: a name or key is
	// taken, or a precondition (see WithPrecondition) failed.
	NotFound, Conflict bool
}

func (e *InputError) Error() string { return e.Msg }

func inputErr(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

var (
	userNameRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@\-]{0,127}$`)
	consumerNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@\-]{0,127}$`)
	roleNameRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,127}$`)
	objectNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// event is the audit event of a change an administrator made.
func (a *Admin) event(actor, action, target, detail string) gatehouse.AuditEvent {
	return gatehouse.AuditEvent{At: a.clock.Now(), Actor: actor, Action: action, Target: target,
		Outcome: gatehouse.OutcomeSuccess, Detail: detail}
}

// audited is ctx for the one store write that makes a change, whose audit
// event f makes from the write's changes, written in the same transaction:
// the change is stored with its event, or not at all. Every change an
// administrator makes goes through it.
func (a *Admin) audited(ctx context.Context, f func(changes []gatehouse.Change) gatehouse.AuditEvent) context.Context {
	return store.WithAudit(ctx, func(changes []gatehouse.Change) []gatehouse.AuditEvent {
		return []gatehouse.AuditEvent{f(changes)}
	})
}

// with is audited for an event known before the write.
func (a *Admin) with(ctx context.Context, actor, action, target, detail string) context.Context {
	return store.WithAudit(ctx, store.Events(a.event(actor, action, target, detail)))
}

// endedCount is the number of sessions a write ended, from its changes.
func endedCount(changes []gatehouse.Change) int {
	n := 0
	for _, c := range changes {
		if c.Kind == gatehouse.ChangeSession && c.Op == gatehouse.OpEnd {
			n++
		}
	}
	return n
}

// sessionsEndedEvent audits the sessions a write ended, for target.
func (a *Admin) sessionsEndedEvent(ctx context.Context, actor, target, why string) context.Context {
	return a.audited(ctx, func(ch []gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "session.end", target, fmt.Sprintf("%d sessions ended: %s", endedCount(ch), why))
	})
}

// notFound turns a store ErrNotFound into a message naming the thing.
func notFound(err error, what, name string) error {
	if errors.Is(err, gatehouse.ErrNotFound) {
		return &InputError{Msg: fmt.Sprintf("%s %q does not exist", what, name), NotFound: true}
	}
	return err
}

// conflictErr is an InputError for a name or key that is taken.
func conflictErr(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...), Conflict: true}
}

// PreconditionError is returned when a precondition given with
// WithPrecondition refuses the stored state: someone else changed it since
// the caller read it. Nothing was written.
type PreconditionError struct{ Msg string }

func (e *PreconditionError) Error() string { return e.Msg }

type preconditionKey struct{}

// WithPrecondition makes the change made with ctx check the stored thing
// (a gatehouse.User, Role or Consumer) with f inside the write that changes
// it, so that a change based on a stale read is refused rather than
// overwriting someone else's (HTTP If-Match). f returns a non-nil error to
// refuse; the change then fails with a *PreconditionError.
func WithPrecondition(ctx context.Context, f func(stored any) error) context.Context {
	return context.WithValue(ctx, preconditionKey{}, f)
}

// checkPrecondition applies ctx's precondition to the stored thing v.
func checkPrecondition(ctx context.Context, v any) error {
	f, _ := ctx.Value(preconditionKey{}).(func(any) error)
	if f == nil {
		return nil
	}
	if err := f(v); err != nil {
		return &PreconditionError{Msg: err.Error()}
	}
	return nil
}
