// Package store defines the storage interface of gatehouse. Each backend
// lives in its own package (sqlite, postgres) and passes the conformance
// suite in storetest; a behaviour that suite does not check is not
// guaranteed by the interface.
//
// All methods are safe for concurrent use, and every write is durable when
// the method returns: an acknowledged write survives the process being
// killed. Errors wrap gatehouse.ErrNotFound, ErrConflict, ErrUnavailable and
// friends; anything else means the store could not do what was asked.
package store

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Store is everything gatehouse keeps.
type Store interface {
	Users
	Roles
	Catalog
	Consumers
	Sessions
	Keys
	Audit
	AuthFailures
	Feed

	// Ping reports whether the store can be read right now.
	Ping(ctx context.Context) error
	// SchemaVersion is the migration version the store is at.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases the store's resources.
	Close() error
}

// OpenMode says what opening a store may do to it. Only `gatehouse serve`
// and `gatehouse migrate` create a store, and only `migrate` upgrades one:
// an administration command pointed at the wrong directory or schema must
// neither leave an empty store behind nor change a schema under a running
// older server.
type OpenMode int

const (
	// OpenMigrate creates a missing store and upgrades an older one
	// (`gatehouse migrate`, `store copy` into an empty database, tests).
	OpenMigrate OpenMode = iota
	// OpenCreate creates a missing store but refuses one at an older schema
	// with gatehouse.ErrSchemaOld (`gatehouse serve`).
	OpenCreate
	// OpenExisting refuses a missing store with gatehouse.ErrNoStore and
	// one at an older schema with gatehouse.ErrSchemaOld (administration
	// commands, in-process verifiers).
	OpenExisting
)

// Users keeps P21 users. Names are unique case-insensitively; users are never
// removed, only marked deleted.
type Users interface {
	// CreateUser stores u; ErrConflict if the name is taken (even by a deleted user).
	CreateUser(ctx context.Context, u gatehouse.User) error
	// GetUser finds a user by name, case-insensitively, deleted or not.
	GetUser(ctx context.Context, name string) (gatehouse.User, error)
	// UpdateUser applies fn to the stored user atomically. fn may not change
	// the name. If fn returns an error nothing is written and that error is
	// returned.
	UpdateUser(ctx context.Context, name string, fn func(*gatehouse.User) error) (gatehouse.User, error)
	// ListUsers returns all users ordered by name.
	ListUsers(ctx context.Context) ([]gatehouse.User, error)
	// CountUsers counts users, deleted ones included.
	CountUsers(ctx context.Context) (int, error)
}

// Roles keeps dataservice roles. Names are unique case-insensitively.
type Roles interface {
	// CreateRole stores r; ErrConflict if the name is taken.
	CreateRole(ctx context.Context, r gatehouse.Role) error
	// GetRole finds a role by name, case-insensitively, with its entries.
	GetRole(ctx context.Context, name string) (gatehouse.Role, error)
	// UpdateRole applies fn to the stored role (entries included) atomically.
	UpdateRole(ctx context.Context, name string, fn func(*gatehouse.Role) error) (gatehouse.Role, error)
	// ListRoles returns all roles ordered by name, with their entries.
	ListRoles(ctx context.Context) ([]gatehouse.Role, error)
}

// Catalog keeps the known tables and views.
type Catalog interface {
	// ImportCatalog adds or replaces entries (matched by name,
	// case-insensitively) in one transaction.
	ImportCatalog(ctx context.Context, entries []gatehouse.CatalogEntry) error
	// LookupCatalog finds an object by name, case-insensitively.
	LookupCatalog(ctx context.Context, name string) (gatehouse.CatalogEntry, error)
	// ListCatalog returns all entries ordered by name.
	ListCatalog(ctx context.Context) ([]gatehouse.CatalogEntry, error)
}

// Consumers keeps registered applications and their key hashes.
type Consumers interface {
	// CreateConsumer stores c with the next uid (c.UID is ignored) and returns
	// it as stored. ErrConflict if the name is taken (case-insensitively) or
	// the key hash is already in use.
	CreateConsumer(ctx context.Context, c gatehouse.Consumer) (gatehouse.Consumer, error)
	// GetConsumer finds a consumer by uid.
	GetConsumer(ctx context.Context, uid int64) (gatehouse.Consumer, error)
	// GetConsumerByName finds a consumer by name, case-insensitively.
	GetConsumerByName(ctx context.Context, name string) (gatehouse.Consumer, error)
	// GetConsumerByKeyHash finds the consumer whose key hashes to h.
	GetConsumerByKeyHash(ctx context.Context, h []byte) (gatehouse.Consumer, error)
	// UpdateConsumer applies fn atomically; fn may not change the uid.
	UpdateConsumer(ctx context.Context, uid int64, fn func(*gatehouse.Consumer) error) (gatehouse.Consumer, error)
	// DeleteConsumer removes a consumer and ends its active sessions (reason
	// consumer_disabled).
	DeleteConsumer(ctx context.Context, uid int64) error
	// ListConsumers returns all consumers ordered by uid.
	ListConsumers(ctx context.Context) ([]gatehouse.Consumer, error)
}

// NewSession is what CreateSession needs.
type NewSession struct {
	Session gatehouse.Session
	// RefreshHash is the SHA-256 of the session's first refresh token; nil
	// when the session has none.
	RefreshHash []byte
	// MaxSessions caps the active sessions of the principal: after inserting,
	// the oldest active sessions over the cap are ended (reason cap). 0 means
	// no cap.
	MaxSessions int
	// Audit events are written in the same transaction as the session.
	// Each session the cap ends gets its own event too, in the same
	// transaction: see [CapEndEvent].
	Audit []gatehouse.AuditEvent
}

// CapEndEvent is the audit event CreateSession writes for a session id that
// n's cap ended: session.end of session:ID with detail reason=cap, at the
// new session's creation, by the actor and from the address of n's first
// event (the token issuance that pushed the principal over its cap).
func CapEndEvent(n *NewSession, id string) gatehouse.AuditEvent {
	ev := gatehouse.AuditEvent{At: n.Session.CreatedAt, Actor: "system:cap", Action: "session.end",
		Target: "session:" + id, Outcome: gatehouse.OutcomeSuccess, Remote: n.Session.RemoteAddr, Detail: "reason=" + gatehouse.EndCap}
	if len(n.Audit) > 0 {
		ev.Actor, ev.Remote = n.Audit[0].Actor, n.Audit[0].Remote
	}
	return ev
}

// Refresh is what RefreshSession needs.
type Refresh struct {
	OldHash []byte // SHA-256 of the presented refresh token
	NewHash []byte // SHA-256 of its replacement
	Now     time.Time
	// ExpiresAt is the session's new expiry (sliding refresh window).
	ExpiresAt time.Time
	// Grace is the reuse grace: a token spent less than Grace before Now
	// whose replacement is NewHash, still unspent, is a retry of that
	// rotation (see [Refreshed.Retry]) rather than a reuse. 0: every
	// spent token is a reuse. It works only when the replacement of a
	// token is derived from it, so that a retry presents the same NewHash.
	Grace time.Duration
	// Audit events are written in the same transaction when the rotation
	// succeeds (not on a retry, which changes nothing).
	Audit []gatehouse.AuditEvent
}

// Refreshed is the outcome of RefreshSession. With ErrRefreshReused and
// ErrSessionEnded it still names the session the token belongs to.
type Refreshed struct {
	Session gatehouse.Session
	// At is when the presented token was spent: r.Now truncated as the
	// store keeps times, or for a Retry the time of the rotation it repeats.
	At time.Time
	// Retry reports a token spent within r.Grace whose replacement
	// r.NewHash is still the session's unspent token: nothing was changed,
	// and the caller answers with the pair of that rotation again.
	Retry bool
}

// ReuseEndEvent is the audit event RefreshSession writes, in the same
// transaction, when a reused refresh token ends session id: session.end of
// session:ID with detail reason=refresh_reuse at r.Now, by the actor and
// from the address of r's first event (the refresh that presented the
// spent token), else by system:refresh_reuse.
func ReuseEndEvent(r *Refresh, id string) gatehouse.AuditEvent {
	ev := gatehouse.AuditEvent{At: r.Now, Actor: "system:refresh_reuse", Action: "session.end", Target: "session:" + id,
		Outcome: gatehouse.OutcomeSuccess, Detail: "reason=" + gatehouse.EndRefreshReuse}
	if len(r.Audit) > 0 {
		ev.Actor, ev.Remote = r.Audit[0].Actor, r.Audit[0].Remote
	}
	return ev
}

// SessionFilter selects sessions for ListSessions and EndSessions. Empty
// fields do not filter.
type SessionFilter struct {
	Username    string // matched case-insensitively
	ConsumerUID int64
	// ActiveAt, when set, keeps only sessions not ended and not expired at that time.
	ActiveAt time.Time
	Limit    int // 0: no limit
}

// Sessions keeps middleware sessions and their refresh tokens.
type Sessions interface {
	// CreateSession stores a session (and its first refresh token), enforces
	// the principal's cap, and returns the ids of sessions the cap ended.
	CreateSession(ctx context.Context, n NewSession) (ended []string, err error)
	// GetSession finds a session by id.
	GetSession(ctx context.Context, id string) (gatehouse.Session, error)
	// RefreshSession spends the refresh token r.OldHash and stores r.NewHash
	// in its place, atomically. Unknown token: ErrNotFound. A spent token,
	// unless it is a retry within r.Grace (see [Refreshed.Retry]): the store
	// ends the session (reason refresh_reuse) and writes its
	// [ReuseEndEvent] in one committed transaction, and returns
	// ErrRefreshReused with the session. A session that has ended or
	// expired at r.Now: ErrSessionEnded, with the session.
	RefreshSession(ctx context.Context, r Refresh) (Refreshed, error)
	// FindSessionByRefresh returns the session a refresh token (spent or not)
	// belongs to, without changing anything.
	FindSessionByRefresh(ctx context.Context, hash []byte) (gatehouse.Session, error)
	// FindRefreshToken is FindSessionByRefresh that also reports whether the
	// token has been spent (introspection answers "inactive" for it).
	FindRefreshToken(ctx context.Context, hash []byte) (sess gatehouse.Session, spent bool, err error)
	// EndSession ends one session. Ending an ended session is a no-op that
	// keeps the first reason. ErrNotFound if there is no such session.
	EndSession(ctx context.Context, id, reason string, at time.Time) error
	// EndSessions ends every active session matching f (f.ActiveAt is set to
	// at) and returns their ids. A filter with neither Username nor
	// ConsumerUID is refused.
	EndSessions(ctx context.Context, f SessionFilter, reason string, at time.Time) ([]string, error)
	// ListSessions returns sessions matching f, newest first.
	ListSessions(ctx context.Context, f SessionFilter) ([]gatehouse.Session, error)
	// CountActiveSessions counts sessions not ended and not expired at t.
	CountActiveSessions(ctx context.Context, t time.Time) (int, error)
	// DeleteSessions removes sessions that expired or ended before t, with
	// their refresh tokens, and returns how many went.
	DeleteSessions(ctx context.Context, before time.Time) (int, error)
}

// Keys keeps signing keys.
type Keys interface {
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]gatehouse.SigningKey, error)
	// InitKeys stores active and next as the first keys of algorithm
	// active.Algorithm, unless that algorithm already has an active key, in
	// which case it stores nothing and returns ErrConflict. Safe when several
	// processes race.
	InitKeys(ctx context.Context, active, next gatehouse.SigningKey) error
	// RotateKeys promotes the algorithm's next key to active, retires the
	// active key (NotAfter = retireUntil) and stores newNext as the next key,
	// atomically. It fails with ErrConflict unless the current active key is
	// expectActive, so of two concurrent rotations exactly one wins.
	RotateKeys(ctx context.Context, expectActive string, newNext gatehouse.SigningKey, at, retireUntil time.Time) error
	// RevokeKey withdraws key kid at once, atomically: its state becomes
	// revoked, its private part is erased, and the record is kept until
	// keepUntil (NotAfter). If kid was its algorithm's active key, the next
	// key becomes active (ActivatedAt = at); if it was the active or the
	// next key, newNext (same algorithm) becomes the next key; a retired
	// key is revoked alone (newNext unused, its RetiredAt and NotAfter
	// kept). It returns the key as it was. ErrNotFound for an unknown kid,
	// or an active key without a next key; ErrConflict when newNext's kid
	// is taken. Revoking a revoked key changes nothing.
	RevokeKey(ctx context.Context, kid string, newNext gatehouse.SigningKey, at, keepUntil time.Time) (gatehouse.SigningKey, error)
	// DeleteRetiredKeys removes retired and revoked keys whose NotAfter is
	// before t.
	DeleteRetiredKeys(ctx context.Context, before time.Time) (int, error)
}

// AuditFilter selects audit events. Empty fields do not filter.
type AuditFilter struct {
	Since time.Time
	Until time.Time
	// Action is a whole action name, which matches that action and the
	// actions under it ("lockout" matches lockout.start and lockout.end,
	// not lockouts), or a prefix ending in "." (e.g. "token."), which
	// matches only the actions under it.
	Action  string
	AfterID int64
	Limit   int // 0: no limit
	// Newest keeps the newest Limit matching events rather than the
	// oldest; they still come back in id order.
	Newest bool
}

// Audit keeps the audit trail.
type Audit interface {
	// AppendAudit stores events, assigning their ids. A Count below 1 is
	// stored as 1.
	AppendAudit(ctx context.Context, events ...gatehouse.AuditEvent) error
	// ListAudit returns events matching f in id order.
	ListAudit(ctx context.Context, f AuditFilter) ([]gatehouse.AuditEvent, error)
	// CountAudit stores events counted under keys, in one transaction: the
	// first event of a key is stored like AppendAudit would; a later one
	// adds its Count (at least 1) to that row's and changes nothing else,
	// whichever process writes it. A key lasts as long as its row.
	CountAudit(ctx context.Context, events ...CountedEvent) error
	// PruneAudit removes the events whose At is before t and returns how
	// many went. A large prune goes a chunk per transaction, so that other
	// writes interleave.
	PruneAudit(ctx context.Context, before time.Time) (int, error)
}

// CountedEvent is an audit event counted under Key (see Audit.CountAudit).
type CountedEvent struct {
	Key   string
	Event gatehouse.AuditEvent
}

// AuthFailures counts failed sign-ins per key (a lower-cased username), for
// lockout across replicas.
type AuthFailures interface {
	// RecordAuthFailure notes a failure at t and returns how many failures the
	// key has had in (t-window, t].
	RecordAuthFailure(ctx context.Context, key string, t time.Time, window time.Duration) (int, error)
	// CountAuthFailures returns the failures of key in (t-window, t].
	CountAuthFailures(ctx context.Context, key string, t time.Time, window time.Duration) (int, error)
	// ClearAuthFailures forgets the failures of key.
	ClearAuthFailures(ctx context.Context, key string) error
	// PruneAuthFailures forgets the failures at or before t of every key,
	// and returns how many went: keys that are not tried again would
	// otherwise be kept for ever.
	PruneAuthFailures(ctx context.Context, before time.Time) (int, error)
	// OpenLockout records that key is locked out from t, unless a lockout
	// of key is open already; opened reports whether this call opened it,
	// so that of several replicas seeing one lock, one audits its start.
	OpenLockout(ctx context.Context, key string, t time.Time) (opened bool, err error)
	// CloseLockouts closes the open lockouts that are over at t (their key
	// has fewer than threshold failures in (t-window, t]) and returns them,
	// each to one caller only, in key order. See [Lockout] for Until.
	CloseLockouts(ctx context.Context, t time.Time, window time.Duration, threshold int) ([]Lockout, error)
	// CloseLockout closes key's open lockout (an administrator's unlock)
	// and reports whether there was one.
	CloseLockout(ctx context.Context, key string) (bool, error)
}

// Lockout is a closed lockout of a key (a lower-cased username).
type Lockout struct {
	Key string
	// Since is when the lockout was opened.
	Since time.Time
	// Until is when it ended: when the threshold-th most recent failure
	// (at or before the close) left the window; the close's time when that
	// failure is no longer kept. Never before Since nor after the close.
	Until time.Time
}

// LockoutUntil computes Lockout.Until from the threshold-th most recent
// failure (zero when it is no longer kept), for the backends.
func LockoutUntil(since, nth, closed time.Time, window time.Duration) time.Time {
	if nth.IsZero() {
		return closed
	}
	u := nth.Add(window)
	if u.After(closed) {
		u = closed
	}
	if u.Before(since) {
		u = since
	}
	return u
}

// Feed is the change feed: every change to sessions, users, roles,
// consumers, keys or the catalog appends an entry with a growing revision, in
// the same transaction as the change itself. The creation of a session is
// the one change without an entry: no process acts on it (a session nobody
// has seen needs no cache dropped), and every token issued makes one.
type Feed interface {
	// LastRevision is the newest revision (0 for an empty feed).
	LastRevision(ctx context.Context) (int64, error)
	// Changes returns up to limit entries with Rev > after, in order.
	// ErrFeedGap if entries after `after` have been pruned.
	Changes(ctx context.Context, after int64, limit int) ([]gatehouse.Change, error)
	// PruneChanges drops entries older than t, keeping the newest one.
	PruneChanges(ctx context.Context, before time.Time) (int, error)
}
