// Package gatehouse holds the domain of the gatehouse token server: the
// things it stores (users, roles, consumers, sessions, signing keys, audit
// events, changes), the errors shared between its parts, and the Clock they
// all read the time from. It depends on nothing outside the standard library.
// The interfaces between the parts live with the parts that define them
// (store.Store, for one).
package gatehouse

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// IdentityType says how a P21 user is backed: a Windows account, an Azure AD
// account or a SQL login.
type IdentityType string

// The identity types a user can have.
const (
	IdentityWindows IdentityType = "windows"
	IdentityAAD     IdentityType = "aad"
	IdentitySQL     IdentityType = "sql"
)

// Valid reports whether t is one of the known identity types.
func (t IdentityType) Valid() bool {
	switch t {
	case IdentityWindows, IdentityAAD, IdentitySQL:
		return true
	}
	return false
}

// User is a P21 user who can sign in with a password.
type User struct {
	// Name is the user name as created; lookups match it case-insensitively.
	Name     string
	Identity IdentityType
	// Role names the role whose dataservice permissions apply; "" for none.
	Role string
	// AllowODataAPI is P21's "Allow OData API Service" application-security flag.
	AllowODataAPI bool
	Admin         bool
	// Deleted users are kept (soft delete) but can never authenticate or be
	// used as token context.
	Deleted bool
	// PasswordHash is a PHC-format argon2id hash or a bcrypt hash; "" means
	// the user cannot sign in with a password.
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ObjectKind tells a table from a view.
type ObjectKind string

// The kinds of dataservice objects.
const (
	KindTable ObjectKind = "table"
	KindView  ObjectKind = "view"
)

// Valid reports whether k is a known object kind.
func (k ObjectKind) Valid() bool { return k == KindTable || k == KindView }

// Role is a set of dataservice permissions.
type Role struct {
	Name           string
	AllowAll       bool
	AllowAllTables bool
	AllowAllViews  bool
	// Entries are explicit per-object decisions, at most one per object name
	// (compared case-insensitively).
	Entries   []RoleEntry
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RoleEntry allows or denies one table or view.
type RoleEntry struct {
	Object string
	Kind   ObjectKind
	Allow  bool
}

// Entry returns the role's explicit entry for object, matched case-insensitively.
func (r *Role) Entry(object string) (RoleEntry, bool) {
	for _, e := range r.Entries {
		if strings.EqualFold(e.Object, object) {
			return e, true
		}
	}
	return RoleEntry{}, false
}

// SetEntry adds or replaces the entry for e.Object.
func (r *Role) SetEntry(e RoleEntry) {
	for i := range r.Entries {
		if strings.EqualFold(r.Entries[i].Object, e.Object) {
			r.Entries[i] = e
			return
		}
	}
	r.Entries = append(r.Entries, e)
}

// NormalEntries keeps one entry per object name (case-insensitively): a
// later entry replaces an earlier one in its place.
func NormalEntries(in []RoleEntry) []RoleEntry {
	r := Role{}
	for _, e := range in {
		r.SetEntry(e)
	}
	return r.Entries
}

// CatalogEntry is a known table or view.
type CatalogEntry struct {
	Name string
	Kind ObjectKind
}

// ConsumerType is the kind of application a consumer key was registered for.
type ConsumerType string

// The consumer types of the SOA Admin "Register Consumer Key" form.
const (
	ConsumerDesktop ConsumerType = "desktop"
	ConsumerMobile  ConsumerType = "mobile"
	ConsumerWeb     ConsumerType = "web"
	ConsumerService ConsumerType = "service"
)

// Valid reports whether t is a known consumer type.
func (t ConsumerType) Valid() bool {
	switch t {
	case ConsumerDesktop, ConsumerMobile, ConsumerWeb, ConsumerService:
		return true
	}
	return false
}

// OAuth grant names a consumer may be allowed to use.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
)

// Consumer is a registered application holding a consumer key; it is also
// the OAuth2 client.
type Consumer struct {
	// UID is assigned by the store, sequentially from 1. On the wire it is a
	// string ("8").
	UID  int64
	Name string
	Type ConsumerType
	// SDKAccess adds /p21sdk to the effective scope.
	SDKAccess bool
	// Lifetime is how long its tokens live; 0 means never expire.
	Lifetime time.Duration
	// Scope is the configured scope string in normal form (see package scope),
	// without the /p21sdk that SDKAccess adds.
	Scope string
	// Grants lists the opt-in OAuth grants (password, refresh_token);
	// client_credentials is always allowed and never listed.
	Grants   []string
	Disabled bool
	// KeyHash is HMAC-SHA-256 of the consumer key under a key derived from the
	// master key. The plain key is never stored.
	KeyHash   []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UIDString is the consumer uid as it appears on the wire.
func (c *Consumer) UIDString() string { return strconv.FormatInt(c.UID, 10) }

// AllowsGrant reports whether the consumer may use the OAuth grant g.
func (c *Consumer) AllowsGrant(g string) bool {
	if g == GrantClientCredentials {
		return true
	}
	for _, x := range c.Grants {
		if x == g {
			return true
		}
	}
	return false
}

// NeverExpires reports whether the consumer's tokens never expire.
func (c *Consumer) NeverExpires() bool { return c.Lifetime <= 0 }

// Session flows: how a session was started.
const (
	FlowUser          = "user"           // P21 user credentials (V1 or V2)
	FlowConsumer      = "consumer"       // P21 consumer key (V1 or V2)
	FlowOAuthPassword = "oauth_password" // OAuth2 password grant
	FlowOAuthClient   = "oauth_client"   // OAuth2 client_credentials grant
)

// Reasons a session ends.
const (
	EndAdmin            = "admin"             // ended by an administrator
	EndCap              = "cap"               // the principal went over --max-sessions
	EndRefreshReuse     = "refresh_reuse"     // a spent refresh token was presented again
	EndRevoked          = "revoked"           // OAuth2 revocation
	EndUserDeleted      = "user_deleted"      // the user was deleted
	EndConsumerDisabled = "consumer_disabled" // the consumer was disabled or deleted
	EndKeyRotated       = "key_rotated"       // the consumer's key was replaced
	EndPasswordChanged  = "password_changed"  // the user's password was replaced
)

// Session is the "middleware session" every successful token request
// creates. An access token is valid only while its session is.
type Session struct {
	ID string // UUID v4
	// Username is the user context ("" when none). For consumer sessions it is
	// whatever string the client sent; it need not name a real user.
	Username string
	// ConsumerUID is the consumer that obtained the session, 0 for none.
	ConsumerUID int64
	Flow        string
	// Scope is the token's scope string (its aud claim).
	Scope     string
	CreatedAt time.Time
	// ExpiresAt is the last instant any token of the session can be used,
	// refresh tokens included.
	ExpiresAt time.Time
	// EndedAt is zero while the session has not been ended.
	EndedAt   time.Time
	EndReason string
	// RemoteAddr is the client address that started the session.
	RemoteAddr string
}

// Principal is the key that --max-sessions counts under: a user, or a
// consumer+username pair.
func (s *Session) Principal() string { return PrincipalKey(s.ConsumerUID, s.Username) }

// PrincipalKey builds the principal key for a consumer uid (0 for none) and
// a username.
func PrincipalKey(consumerUID int64, username string) string {
	if consumerUID == 0 {
		return "u:" + strings.ToLower(username)
	}
	return "c:" + strconv.FormatInt(consumerUID, 10) + ":" + strings.ToLower(username)
}

// Active reports whether the session can still be used at t.
func (s *Session) Active(t time.Time) bool {
	return s.EndedAt.IsZero() && t.Before(s.ExpiresAt)
}

// KeyState is the life stage of a signing key.
type KeyState string

// Signing key states: a next key is published (JWKS) but does not sign yet;
// the active key signs; retired keys only verify until NotAfter; a revoked
// key (withdrawn at once, e.g. compromised) neither signs nor verifies, and
// is kept without its private part until NotAfter only so that its tokens
// are refused with a reason.
const (
	KeyNext    KeyState = "next"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
	KeyRevoked KeyState = "revoked"
)

// SigningKey is a JOSE key that signs tokens.
type SigningKey struct {
	KID       string
	Algorithm string // RS256, ES256, EdDSA or HS256
	// Public is the PKIX DER public key; nil for HS256.
	Public []byte
	// Private is the private key (PKCS#8 DER, or the raw HMAC secret for
	// HS256), sealed with the master key.
	Private     []byte
	State       KeyState
	CreatedAt   time.Time
	ActivatedAt time.Time // zero until active
	RetiredAt   time.Time // zero until retired
	// NotAfter is when a retired key may be deleted: no token it signed
	// outlives it. Zero for next and active keys.
	NotAfter time.Time
}

// AuditEvent is one line of the audit trail: who did what, when, from where,
// and how it ended. It never holds a secret.
type AuditEvent struct {
	ID      int64 // assigned by the store
	At      time.Time
	Actor   string // "user:NAME", "consumer:UID", "cli:OSUSER", "system"
	Action  string // e.g. token.issue, token.refuse, session.end, user.add
	Target  string // what it acted on, e.g. "session:ID", "user:NAME"
	Outcome string // "success" or "failure"
	Remote  string // client address, "" for local actions
	Detail  string // short free text, never a secret
	// RequestID is the X-Request-Id of the HTTP request that caused the
	// event; "" for commands, background work and counted rows.
	RequestID string
	// Count is how many events of one kind this row stands for: 1 for an
	// ordinary event; more for refusals counted together (one row per
	// client network, kind and minute; see auth). The store keeps at least 1.
	Count int
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// ChangeKind names what a change-feed entry is about.
type ChangeKind string

// The kinds of change the feed reports.
const (
	ChangeSession  ChangeKind = "session"
	ChangeUser     ChangeKind = "user"
	ChangeRole     ChangeKind = "role"
	ChangeConsumer ChangeKind = "consumer"
	ChangeKey      ChangeKind = "key"
	ChangeCatalog  ChangeKind = "catalog"
	// ChangeLockout (Op "end") is never in the feed: it only tells a
	// write's audit (store.AuditFunc) that the write ended a lockout.
	ChangeLockout ChangeKind = "lockout"
)

// Change is one entry of the change feed. Rev grows with every change.
type Change struct {
	Rev  int64
	Kind ChangeKind
	// Key identifies the thing that changed: a session id, a lower-cased user
	// or role name, a consumer uid, a key id; "" for the catalog.
	Key string
	// Op is "create", "update", "end" or "delete".
	Op string
	At time.Time
}

// Change-feed operations.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpEnd    = "end"
	OpDelete = "delete"
)

// Errors shared by all stores. Stores wrap them with context; test with errors.Is.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique name is taken, or a compare-and-swap lost a race.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the store cannot be reached or read right now. Callers
	// answer 503, never a false "no".
	ErrUnavailable = errors.New("store unavailable")
	// ErrRefreshReused: a spent refresh token was presented again; the store
	// has ended its session.
	ErrRefreshReused = errors.New("refresh token reused")
	// ErrSessionEnded: the session behind a refresh token has ended or expired.
	ErrSessionEnded = errors.New("session ended")
	// ErrFeedGap: the change feed no longer holds the revisions asked for;
	// followers must drop everything they cached.
	ErrFeedGap = errors.New("change feed gap")
	// ErrSchemaTooNew: the store was migrated by a newer gatehouse.
	ErrSchemaTooNew = errors.New("store schema is newer than this binary")
	// ErrSchemaOld: the store was written by an older gatehouse and must be
	// upgraded with `gatehouse migrate` before this binary uses it.
	ErrSchemaOld = errors.New("store schema is older than this binary")
	// ErrNoStore: there is no gatehouse store where one was named, and the
	// caller may not create one.
	ErrNoStore = errors.New("no gatehouse store")
)

// Clock tells the time. Everything that reads the time takes one, so tests
// control it.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// SystemClock is the real clock.
var SystemClock Clock = ClockFunc(time.Now)

// NeverExpiresUnix is the exp claim of tokens that never expire, as P21 sends it.
const NeverExpiresUnix = 2147483647

// NeverExpiresIn is the ExpiresIn (seconds) P21 reports for never-expiring
// consumer tokens: 20 years.
const NeverExpiresIn = 630720000

// Defaults shared by the server and the programs that decide as it does
// (package guard): one place each.
const (
	// DefaultIssuer is the iss claim of P21 tokens (--issuer).
	DefaultIssuer = "P21.Soa"
	// DefaultInstallUser is the acting user of Transaction API calls
	// without a user context (--install-user).
	DefaultInstallUser = "admin"
)
