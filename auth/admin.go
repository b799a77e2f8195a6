package auth

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/scope"
	"github.com/gatehouse/gatehouse/store"
)

// Admin is the administration service behind the CLI (and, later, the
// admin API): every change is validated, stored, and audited under the
// actor's name.
type Admin struct {
	store     store.Store
	passwords *password.Hasher
	ckeys     *ConsumerKeys
	keys      *KeyManager
	cfg       Config
	clock     gatehouse.Clock
	// ended is told the sessions a change ends (see OnSessionsEnded).
	ended func(ids ...string)
}

// NewAdmin builds the administration service.
func NewAdmin(st store.Store, pw *password.Hasher, ck *ConsumerKeys, km *KeyManager, cfg Config, clock gatehouse.Clock) *Admin {
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
type InputError struct{ Msg string }

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

func (a *Admin) audit(ctx context.Context, actor, action, target, detail string) {
	_ = a.store.AppendAudit(ctx, gatehouse.AuditEvent{
		At: a.clock.Now(), Actor: actor, Action: action, Target: target,
		Outcome: gatehouse.OutcomeSuccess, Detail: detail,
	})
}

// notFound turns a store ErrNotFound into a message naming the thing.
func notFound(err error, what, name string) error {
	if errors.Is(err, gatehouse.ErrNotFound) {
		return inputErr("%s %q does not exist", what, name)
	}
	return err
}

// NewUser is what AddUser needs.
type NewUser struct {
	Name       string
	Identity   gatehouse.IdentityType // default windows
	Role       string
	AllowOData bool
	Admin      bool
	Password   string // "" for a user who cannot sign in with a password
	// PasswordHash imports an existing hash instead of Password: bcrypt
	// ($2a$, $2b$, $2y$) or an argon2id PHC string. A bcrypt hash is
	// replaced by argon2id at the user's first successful sign-in.
	PasswordHash string
}

// checkImportedHash refuses what is not a hash gatehouse can verify,
// without repeating the value.
func checkImportedHash(h string) error {
	if !password.IsHash(h) {
		return inputErr("the password hash is not a bcrypt ($2a$, $2b$, $2y$; cost 4 to %d) or argon2id PHC ($argon2id$v=19$…; at most 64 MiB, 3 passes over 64 MiB, 8 lanes) hash", password.MaxBcryptCost)
	}
	return nil
}

// AddUser creates a user.
func (a *Admin) AddUser(ctx context.Context, actor string, in NewUser) (gatehouse.User, error) {
	if !userNameRE.MatchString(in.Name) {
		return gatehouse.User{}, inputErr("user name %q is not valid: use 1-128 letters, digits, _ . @ - (not starting with . @ -)", in.Name)
	}
	if in.Identity == "" {
		in.Identity = gatehouse.IdentityWindows
	}
	if !in.Identity.Valid() {
		return gatehouse.User{}, inputErr("identity %q is not one of windows, aad, sql", in.Identity)
	}
	role, err := a.checkRole(ctx, in.Role)
	if err != nil {
		return gatehouse.User{}, err
	}
	now := a.clock.Now()
	u := gatehouse.User{Name: in.Name, Identity: in.Identity, Role: role, AllowODataAPI: in.AllowOData,
		Admin: in.Admin, CreatedAt: now, UpdatedAt: now}
	switch {
	case in.Password != "" && in.PasswordHash != "":
		return gatehouse.User{}, inputErr("give a password or a password hash, not both")
	case in.PasswordHash != "":
		if err := checkImportedHash(in.PasswordHash); err != nil {
			return gatehouse.User{}, err
		}
		u.PasswordHash = in.PasswordHash
	case in.Password != "":
		if u.PasswordHash, err = a.passwords.Hash(ctx, in.Password); err != nil {
			return gatehouse.User{}, inputErr("password: %v", err)
		}
	}
	if err := a.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, gatehouse.ErrConflict) {
			return gatehouse.User{}, inputErr("user %q already exists (names are case-insensitive; deleted users keep their name)", in.Name)
		}
		return gatehouse.User{}, err
	}
	a.audit(ctx, actor, "user.add", "user:"+u.Name,
		fmt.Sprintf("identity=%s role=%q allow_odata=%t admin=%t password=%s", u.Identity, u.Role, u.AllowODataAPI, u.Admin, passwordSource(in)))
	return u, nil
}

func passwordSource(in NewUser) string {
	switch {
	case in.PasswordHash != "":
		return "imported-hash"
	case in.Password != "":
		return "true"
	}
	return "false"
}

func (a *Admin) checkRole(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	r, err := a.store.GetRole(ctx, name)
	if err != nil {
		return "", notFound(err, "role", name)
	}
	return r.Name, nil
}

// UserChange lists the fields UpdateUser changes; nil fields stay.
type UserChange struct {
	AllowOData *bool
	Role       *string
	Identity   *gatehouse.IdentityType
	Admin      *bool
}

// UpdateUser changes a user's flags, role or identity.
func (a *Admin) UpdateUser(ctx context.Context, actor, name string, ch UserChange) (gatehouse.User, error) {
	if ch.Identity != nil && !ch.Identity.Valid() {
		return gatehouse.User{}, inputErr("identity %q is not one of windows, aad, sql", *ch.Identity)
	}
	var role string
	if ch.Role != nil {
		var err error
		if role, err = a.checkRole(ctx, *ch.Role); err != nil {
			return gatehouse.User{}, err
		}
	}
	var changes []string
	u, err := a.store.UpdateUser(ctx, name, func(u *gatehouse.User) error {
		if u.Deleted {
			return inputErr("user %q is deleted", u.Name)
		}
		if ch.AllowOData != nil {
			u.AllowODataAPI = *ch.AllowOData
			changes = append(changes, fmt.Sprintf("allow_odata=%t", *ch.AllowOData))
		}
		if ch.Role != nil {
			u.Role = role
			changes = append(changes, fmt.Sprintf("role=%q", role))
		}
		if ch.Identity != nil {
			u.Identity = *ch.Identity
			changes = append(changes, "identity="+string(*ch.Identity))
		}
		if ch.Admin != nil {
			u.Admin = *ch.Admin
			changes = append(changes, fmt.Sprintf("admin=%t", *ch.Admin))
		}
		u.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return u, notFound(err, "user", name)
	}
	a.audit(ctx, actor, "user.update", "user:"+u.Name, strings.Join(changes, " "))
	return u, nil
}

// DeleteUser marks a user deleted and ends every session acting as that user.
func (a *Admin) DeleteUser(ctx context.Context, actor, name string) ([]string, error) {
	u, err := a.store.UpdateUser(ctx, name, func(u *gatehouse.User) error {
		if u.Deleted {
			return inputErr("user %q is already deleted", u.Name)
		}
		u.Deleted = true
		u.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return nil, notFound(err, "user", name)
	}
	ended, err := a.store.EndSessions(ctx, store.SessionFilter{Username: u.Name}, gatehouse.EndUserDeleted, a.clock.Now())
	if err != nil {
		return nil, err
	}
	a.sessionsEnded(ended)
	a.audit(ctx, actor, "user.delete", "user:"+u.Name, fmt.Sprintf("%d sessions ended", len(ended)))
	return ended, nil
}

// PasswordChange is a new credential for ChangePassword: a password, or an
// imported hash (see NewUser.PasswordHash).
type PasswordChange struct {
	Password string
	Hash     string
	// KeepSessions keeps the user's sessions. By default a new credential
	// ends every session acting as the user: whoever held the old one may
	// hold its tokens too.
	KeepSessions bool
}

// ChangePassword replaces a user's password (or imports a hash) and, unless
// ch.KeepSessions, ends every session acting as the user, reason
// password_changed, and returns their ids. The password is stored first
// and the sessions ended after, so that a sign-in with the old password
// that raced with the change is refused (see Service.PasswordToken).
func (a *Admin) ChangePassword(ctx context.Context, actor, name string, ch PasswordChange) ([]string, error) {
	var h, detail string
	switch {
	case ch.Password != "" && ch.Hash != "":
		return nil, inputErr("give a password or a password hash, not both")
	case ch.Hash != "":
		if err := checkImportedHash(ch.Hash); err != nil {
			return nil, err
		}
		h, detail = ch.Hash, "imported-hash; "
	case ch.Password == "":
		return nil, inputErr("the password is empty")
	default:
		var err error
		if h, err = a.passwords.Hash(ctx, ch.Password); err != nil {
			return nil, inputErr("password: %v", err)
		}
	}
	u, err := a.store.UpdateUser(ctx, name, func(u *gatehouse.User) error {
		if u.Deleted {
			return inputErr("user %q is deleted", u.Name)
		}
		u.PasswordHash = h
		u.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return nil, notFound(err, "user", name)
	}
	if ch.KeepSessions {
		a.audit(ctx, actor, "user.set-password", "user:"+u.Name, detail+"sessions kept")
		return nil, nil
	}
	ended, err := a.store.EndSessions(ctx, store.SessionFilter{Username: u.Name}, gatehouse.EndPasswordChanged, a.clock.Now())
	if err != nil {
		a.audit(ctx, actor, "user.set-password", "user:"+u.Name, detail+"sessions not ended: store failure")
		return nil, fmt.Errorf("the password of %s was replaced, but its sessions could not be ended (run `gatehouse session end --user %s`): %w",
			u.Name, u.Name, err)
	}
	a.sessionsEnded(ended)
	a.audit(ctx, actor, "user.set-password", "user:"+u.Name, fmt.Sprintf("%s%d sessions ended", detail, len(ended)))
	return ended, nil
}

// SetPassword replaces a user's password and ends the user's sessions (see
// ChangePassword).
func (a *Admin) SetPassword(ctx context.Context, actor, name, pw string) error {
	if pw == "" {
		return inputErr("the password is empty")
	}
	_, err := a.ChangePassword(ctx, actor, name, PasswordChange{Password: pw})
	return err
}

// SetPasswordHash replaces a user's password with an imported hash (see
// NewUser.PasswordHash) and ends the user's sessions (see ChangePassword).
func (a *Admin) SetPasswordHash(ctx context.Context, actor, name, hash string) error {
	if hash == "" {
		return inputErr("the password hash is empty")
	}
	_, err := a.ChangePassword(ctx, actor, name, PasswordChange{Hash: hash})
	return err
}

// UnlockUser forgets a user's failed sign-ins, ending a lockout.
func (a *Admin) UnlockUser(ctx context.Context, actor, name string) error {
	key := strings.ToLower(name)
	if err := a.store.ClearAuthFailures(ctx, key); err != nil {
		return err
	}
	closed, err := a.store.CloseLockout(ctx, key)
	if err != nil {
		return err
	}
	if closed {
		a.audit(ctx, actor, "lockout.end", "user:"+name, "unlocked by an administrator")
	} else {
		a.audit(ctx, actor, "user.unlock", "user:"+name, "no lockout was open; failed sign-ins forgotten")
	}
	return nil
}

// AddRole creates an empty role.
func (a *Admin) AddRole(ctx context.Context, actor, name string) (gatehouse.Role, error) {
	if !roleNameRE.MatchString(name) {
		return gatehouse.Role{}, inputErr("role name %q is not valid: use 1-128 letters, digits, spaces, _ . -", name)
	}
	now := a.clock.Now()
	r := gatehouse.Role{Name: name, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateRole(ctx, r); err != nil {
		if errors.Is(err, gatehouse.ErrConflict) {
			return r, inputErr("role %q already exists", name)
		}
		return r, err
	}
	a.audit(ctx, actor, "role.add", "role:"+name, "")
	return r, nil
}

// SetRoleEntries allows (allow=true) or denies objects in a role. An object
// is NAME, table:NAME or view:NAME; without a kind, the catalog's kind is
// used, else table.
func (a *Admin) SetRoleEntries(ctx context.Context, actor, role string, allow bool, objects []string) (gatehouse.Role, error) {
	if len(objects) == 0 {
		return gatehouse.Role{}, inputErr("name at least one table or view")
	}
	entries := make([]gatehouse.RoleEntry, 0, len(objects))
	for _, o := range objects {
		e, err := a.parseObject(ctx, o)
		if err != nil {
			return gatehouse.Role{}, err
		}
		e.Allow = allow
		entries = append(entries, e)
	}
	r, err := a.store.UpdateRole(ctx, role, func(r *gatehouse.Role) error {
		for _, e := range entries {
			r.SetEntry(e)
		}
		r.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return r, notFound(err, "role", role)
	}
	verb := "deny"
	if allow {
		verb = "allow"
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = string(e.Kind) + ":" + e.Object
	}
	a.audit(ctx, actor, "role."+verb, "role:"+r.Name, strings.Join(names, " "))
	return r, nil
}

func (a *Admin) parseObject(ctx context.Context, o string) (gatehouse.RoleEntry, error) {
	kind := gatehouse.ObjectKind("")
	name := strings.TrimSpace(o)
	if k, n, ok := strings.Cut(name, ":"); ok {
		kind, name = gatehouse.ObjectKind(strings.ToLower(k)), n
		if !kind.Valid() {
			return gatehouse.RoleEntry{}, inputErr("object %q: kind %q is not table or view", o, k)
		}
	}
	if !objectNameRE.MatchString(name) {
		return gatehouse.RoleEntry{}, inputErr("object %q is not a valid table or view name (letters, digits, _)", o)
	}
	if kind == "" {
		kind = gatehouse.KindTable
		if c, err := a.store.LookupCatalog(ctx, name); err == nil {
			kind, name = c.Kind, c.Name
		} else if !errors.Is(err, gatehouse.ErrNotFound) {
			return gatehouse.RoleEntry{}, err
		}
	}
	return gatehouse.RoleEntry{Object: name, Kind: kind}, nil
}

// RoleFlags lists the blanket permissions SetRoleFlags changes; nil fields stay.
type RoleFlags struct {
	AllowAll, AllowAllTables, AllowAllViews *bool
}

// SetRoleFlags changes a role's Allow All / Allow All Tables / Allow All Views.
func (a *Admin) SetRoleFlags(ctx context.Context, actor, role string, f RoleFlags) (gatehouse.Role, error) {
	if f.AllowAll == nil && f.AllowAllTables == nil && f.AllowAllViews == nil {
		return gatehouse.Role{}, inputErr("give at least one of --all, --all-tables, --all-views")
	}
	var changes []string
	r, err := a.store.UpdateRole(ctx, role, func(r *gatehouse.Role) error {
		if f.AllowAll != nil {
			r.AllowAll = *f.AllowAll
			changes = append(changes, fmt.Sprintf("allow_all=%t", *f.AllowAll))
		}
		if f.AllowAllTables != nil {
			r.AllowAllTables = *f.AllowAllTables
			changes = append(changes, fmt.Sprintf("allow_all_tables=%t", *f.AllowAllTables))
		}
		if f.AllowAllViews != nil {
			r.AllowAllViews = *f.AllowAllViews
			changes = append(changes, fmt.Sprintf("allow_all_views=%t", *f.AllowAllViews))
		}
		r.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return r, notFound(err, "role", role)
	}
	a.audit(ctx, actor, "role.set", "role:"+r.Name, strings.Join(changes, " "))
	return r, nil
}

// ImportCatalog reads `name,kind` lines (an optional header line
// "name,kind" is skipped) and stores them. It returns how many entries it read.
func (a *Admin) ImportCatalog(ctx context.Context, actor string, r io.Reader, source string) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var entries []gatehouse.CatalogEntry
	seen := map[string]int{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, inputErr("%s: %v", source, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != 2 {
			return 0, inputErr("%s line %d: want 2 fields (name,kind), got %d", source, line, len(rec))
		}
		name, kind := strings.TrimSpace(rec[0]), gatehouse.ObjectKind(strings.ToLower(strings.TrimSpace(rec[1])))
		if line == 1 && strings.EqualFold(name, "name") && kind == "kind" {
			continue
		}
		if !objectNameRE.MatchString(name) {
			return 0, inputErr("%s line %d: %q is not a valid table or view name", source, line, name)
		}
		if !kind.Valid() {
			return 0, inputErr("%s line %d: kind %q is not table or view", source, line, kind)
		}
		if prev, dup := seen[strings.ToLower(name)]; dup {
			return 0, inputErr("%s line %d: %q already given on line %d", source, line, name, prev)
		}
		seen[strings.ToLower(name)] = line
		entries = append(entries, gatehouse.CatalogEntry{Name: name, Kind: kind})
	}
	if len(entries) == 0 {
		return 0, inputErr("%s holds no catalog entries", source)
	}
	if err := a.store.ImportCatalog(ctx, entries); err != nil {
		return 0, err
	}
	a.audit(ctx, actor, "catalog.import", "catalog", fmt.Sprintf("%d entries from %s", len(entries), source))
	return len(entries), nil
}

// ParseLifetime reads a token lifetime: "never", a Go duration ("90m",
// "24h") or a number of days ("30d").
func ParseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "never" || s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, inputErr("lifetime %q: days must be a whole number from 1 to 36500", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, inputErr("lifetime %q is not \"never\", a duration like 90m or 24h, or days like 30d", s)
	}
	if d < time.Minute {
		return 0, inputErr("lifetime %q is shorter than one minute", s)
	}
	return d, nil
}

// FormatLifetime is the inverse of ParseLifetime.
func FormatLifetime(d time.Duration) string {
	if d <= 0 {
		return "never"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// NewConsumer is what AddConsumer needs.
type NewConsumer struct {
	Name     string
	Type     gatehouse.ConsumerType // default service
	SDK      bool
	Lifetime time.Duration // 0: never
	Scope    string
	Grants   []string
}

// AddConsumer registers a consumer and returns it with its key. The key is
// shown this once; only its hash is kept.
func (a *Admin) AddConsumer(ctx context.Context, actor string, in NewConsumer) (gatehouse.Consumer, string, error) {
	if !consumerNameRE.MatchString(in.Name) {
		return gatehouse.Consumer{}, "", inputErr("consumer name %q is not valid: use 1-128 letters, digits, _ . @ - (not starting with . @ -)", in.Name)
	}
	if _, err := strconv.ParseInt(in.Name, 10, 64); err == nil {
		return gatehouse.Consumer{}, "", inputErr("consumer name %q is all digits: it would be mistaken for a consumer uid", in.Name)
	}
	if in.Type == "" {
		in.Type = gatehouse.ConsumerService
	}
	if !in.Type.Valid() {
		return gatehouse.Consumer{}, "", inputErr("consumer type %q is not one of desktop, mobile, web, service", in.Type)
	}
	sc, err := ConsumerScope(in.Scope)
	if err != nil {
		return gatehouse.Consumer{}, "", err
	}
	grants, err := checkGrants(in.Grants)
	if err != nil {
		return gatehouse.Consumer{}, "", err
	}
	key, err := a.ckeys.New()
	if err != nil {
		return gatehouse.Consumer{}, "", err
	}
	now := a.clock.Now()
	c, err := a.store.CreateConsumer(ctx, gatehouse.Consumer{
		Name: in.Name, Type: in.Type, SDKAccess: in.SDK, Lifetime: in.Lifetime, Scope: sc,
		Grants: grants, KeyHash: a.ckeys.Hash(key), CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		if errors.Is(err, gatehouse.ErrConflict) {
			return c, "", inputErr("consumer %q already exists (names are case-insensitive)", in.Name)
		}
		return c, "", err
	}
	a.audit(ctx, actor, "consumer.add", "consumer:"+c.UIDString(),
		fmt.Sprintf("name=%s type=%s scope=%q sdk=%t expires=%s grants=%s", c.Name, c.Type, c.Scope, c.SDKAccess,
			FormatLifetime(c.Lifetime), strings.Join(c.Grants, ",")))
	return c, key, nil
}

// ConsumerScope validates a scope for a consumer registration and returns
// it as it will be stored and echoed: as the administrator wrote it, without
// surrounding white space (matching is case-insensitive all the same).
func ConsumerScope(s string) (string, error) {
	sc, err := scope.Parse(s)
	if err != nil {
		return "", inputErr("scope: %v", err)
	}
	if err := scope.ValidateForConsumer(sc); err != nil {
		return "", inputErr("scope: %v", err)
	}
	// It travels in headers (X-Gatehouse-Scope) as written: no line breaks.
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != ' ' || r == 0x7f }) {
		return "", inputErr("scope: contains a control character (write entries on one line, separated by ;)")
	}
	return strings.TrimSpace(s), nil
}

func checkGrants(gs []string) ([]string, error) {
	var out []string
	for _, g := range gs {
		g = strings.ToLower(strings.TrimSpace(g))
		switch g {
		case gatehouse.GrantClientCredentials:
			continue // always allowed
		case gatehouse.GrantPassword, gatehouse.GrantRefreshToken:
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		default:
			return nil, inputErr("grant %q is not one of password, refresh_token, client_credentials", g)
		}
	}
	slices.Sort(out)
	return out, nil
}

// FindConsumer finds a consumer by uid ("8") or name.
func (a *Admin) FindConsumer(ctx context.Context, ref string) (gatehouse.Consumer, error) {
	if uid, err := strconv.ParseInt(ref, 10, 64); err == nil {
		c, err := a.store.GetConsumer(ctx, uid)
		return c, notFound(err, "consumer", ref)
	}
	c, err := a.store.GetConsumerByName(ctx, ref)
	return c, notFound(err, "consumer", ref)
}

// SetConsumerDisabled disables or enables a consumer. Disabling ends its sessions.
func (a *Admin) SetConsumerDisabled(ctx context.Context, actor, ref string, disabled bool) (gatehouse.Consumer, []string, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, nil, err
	}
	c, err = a.store.UpdateConsumer(ctx, c.UID, func(c *gatehouse.Consumer) error {
		c.Disabled = disabled
		c.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return c, nil, notFound(err, "consumer", ref)
	}
	var ended []string
	action := "consumer.enable"
	if disabled {
		action = "consumer.disable"
		if ended, err = a.store.EndSessions(ctx, store.SessionFilter{ConsumerUID: c.UID}, gatehouse.EndConsumerDisabled, a.clock.Now()); err != nil {
			return c, nil, err
		}
		a.sessionsEnded(ended)
	}
	a.audit(ctx, actor, action, "consumer:"+c.UIDString(), fmt.Sprintf("%d sessions ended", len(ended)))
	return c, ended, nil
}

// RotateConsumerKey gives a consumer a new key and ends the sessions
// obtained with the old one. The new key is returned this once.
func (a *Admin) RotateConsumerKey(ctx context.Context, actor, ref string) (gatehouse.Consumer, string, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, "", err
	}
	key, err := a.ckeys.New()
	if err != nil {
		return c, "", err
	}
	c, err = a.store.UpdateConsumer(ctx, c.UID, func(c *gatehouse.Consumer) error {
		c.KeyHash = a.ckeys.Hash(key)
		c.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return c, "", notFound(err, "consumer", ref)
	}
	ended, err := a.store.EndSessions(ctx, store.SessionFilter{ConsumerUID: c.UID}, gatehouse.EndKeyRotated, a.clock.Now())
	if err != nil {
		return c, "", err
	}
	a.sessionsEnded(ended)
	a.audit(ctx, actor, "consumer.rotate-key", "consumer:"+c.UIDString(), fmt.Sprintf("%d sessions ended", len(ended)))
	return c, key, nil
}

// DeleteConsumer removes a consumer; its sessions end.
func (a *Admin) DeleteConsumer(ctx context.Context, actor, ref string) (gatehouse.Consumer, error) {
	c, err := a.FindConsumer(ctx, ref)
	if err != nil {
		return c, err
	}
	if err := a.store.DeleteConsumer(ctx, c.UID); err != nil {
		return c, notFound(err, "consumer", ref)
	}
	a.audit(ctx, actor, "consumer.delete", "consumer:"+c.UIDString(), "name="+c.Name)
	return c, nil
}

// EndSession ends one session.
func (a *Admin) EndSession(ctx context.Context, actor, id string) error {
	if err := a.store.EndSession(ctx, id, gatehouse.EndAdmin, a.clock.Now()); err != nil {
		return notFound(err, "session", id)
	}
	a.sessionsEnded([]string{id})
	a.audit(ctx, actor, "session.end", "session:"+id, "")
	return nil
}

// EndUserSessions ends every active session acting as a user.
func (a *Admin) EndUserSessions(ctx context.Context, actor, username string) ([]string, error) {
	if username == "" {
		return nil, inputErr("name a user")
	}
	ended, err := a.store.EndSessions(ctx, store.SessionFilter{Username: username}, gatehouse.EndAdmin, a.clock.Now())
	if err != nil {
		return nil, err
	}
	a.sessionsEnded(ended)
	a.audit(ctx, actor, "session.end", "user:"+username, fmt.Sprintf("%d sessions ended", len(ended)))
	return ended, nil
}

// RotateKeys rotates the signing keys of the given algorithms (every
// algorithm that has an active key when none are given). Retired keys stay
// verifiable until the longest-lived token they may have signed expires.
func (a *Admin) RotateKeys(ctx context.Context, actor string, algs []string) ([]gatehouse.SigningKey, error) {
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(algs) == 0 {
		for _, k := range keys {
			if k.State == gatehouse.KeyActive && !slices.Contains(algs, k.Algorithm) {
				algs = append(algs, k.Algorithm)
			}
		}
	}
	if len(algs) == 0 {
		return nil, inputErr("there are no signing keys yet; start the server once to create them")
	}
	var out []gatehouse.SigningKey
	for _, alg := range algs {
		until, err := a.retireHorizon(ctx, alg)
		if err != nil {
			return out, err
		}
		next, err := a.keys.Rotate(ctx, alg, until)
		if err != nil {
			if errors.Is(err, gatehouse.ErrConflict) {
				return out, inputErr("%s keys were rotated by someone else at the same moment; list them and retry if needed", alg)
			}
			if errors.Is(err, gatehouse.ErrNotFound) {
				return out, inputErr("there is no active %s key", alg)
			}
			return out, err
		}
		out = append(out, next)
		a.audit(ctx, actor, "keys.rotate", "keys:"+alg, "new next key "+next.KID+"; retired keys verify until "+until.UTC().Format(time.RFC3339))
	}
	return out, nil
}

// retireHorizon is when every token a key of alg has signed up to now has
// expired, counting only the kinds of token alg signs (Config.Signing):
// P21 user tokens and OAuth2 password-grant tokens live at most
// UserTokenTTL; P21 consumer tokens and OAuth2 client-credentials tokens
// the longest lifetime of an enabled consumer (a disabled consumer's
// sessions have ended), and a never-expiring one until 2038. So a
// never-expiring consumer keeps its own algorithm's retired keys, not
// those of user tokens. An algorithm this configuration does not sign
// with gets the longest horizon of all, as it may have signed anything
// under another configuration.
func (a *Admin) retireHorizon(ctx context.Context, alg string) (time.Time, error) {
	now := a.clock.Now()
	inUse := slices.Contains(a.cfg.Algorithms(), alg)
	users := !inUse || alg == a.cfg.UserTokenAlg || alg == a.cfg.OAuthTokenAlg
	consumers := !inUse || alg == a.cfg.ConsumerTokenAlg || alg == a.cfg.OAuthTokenAlg
	var longest time.Duration
	if users {
		longest = a.cfg.UserTokenTTL
	}
	if consumers {
		cs, err := a.store.ListConsumers(ctx)
		if err != nil {
			return time.Time{}, err
		}
		for _, c := range cs {
			if c.Disabled {
				continue
			}
			if c.NeverExpires() {
				return time.Unix(gatehouse.NeverExpiresUnix, 0), nil
			}
			longest = max(longest, c.Lifetime)
		}
	}
	return now.Add(longest + a.cfg.Leeway), nil
}

// RetiredKey is what RetireKey did and whom it affects.
type RetiredKey struct {
	// Key is the key as it was before.
	Key gatehouse.SigningKey
	// Already: the key had been retired at once before; nothing changed.
	Already bool
	// Active and Next are its algorithm's active and next keys now.
	Active, Next string
	// Consumers have active sessions that may hold tokens the key signed;
	// UserSessions counts such P21 user sessions (without a consumer).
	Consumers    []gatehouse.Consumer
	UserSessions int
}

// RetireKey withdraws a signing key at once, for a key that is compromised:
// unlike a rotation it does not wait for the key's tokens to expire. Every
// token it signed is refused from now on (here at once, on every other
// process within a feed poll) with DescKeyRevoked; if it was the active
// key, the next key (already published) signs from now on, and a new next
// key is made. It reports the consumers whose clients must get new
// tokens.
func (a *Admin) RetireKey(ctx context.Context, actor, kid string) (RetiredKey, error) {
	var out RetiredKey
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return out, err
	}
	i := slices.IndexFunc(keys, func(k gatehouse.SigningKey) bool { return k.KID == kid })
	if i < 0 {
		return out, inputErr("there is no signing key %q (gatehouse keys list shows them)", kid)
	}
	out.Key = keys[i]
	if out.Key.State == gatehouse.KeyRevoked {
		out.Already = true
		return out, nil
	}
	alg := out.Key.Algorithm
	// The record stays while its tokens could have lived, so that they are
	// refused with a reason rather than as unknown.
	keep := out.Key.NotAfter
	if out.Key.State != gatehouse.KeyRetired {
		if keep, err = a.retireHorizon(ctx, alg); err != nil {
			return out, err
		}
	}
	now := a.clock.Now()
	if _, err := a.keys.Revoke(ctx, kid, keep); err != nil {
		switch {
		case errors.Is(err, gatehouse.ErrNotFound):
			return out, inputErr("key %q cannot be retired: %v", kid, err)
		case errors.Is(err, gatehouse.ErrConflict):
			return out, inputErr("the %s keys changed at the same moment; list them and retry", alg)
		}
		return out, err
	}
	a.audit(ctx, actor, "keys.retire", "key:"+kid, alg+" key retired at once (was "+string(out.Key.State)+")")
	if keys, err = a.store.ListKeys(ctx); err != nil {
		return out, err
	}
	for _, k := range keys {
		if k.Algorithm == alg && k.State == gatehouse.KeyActive {
			out.Active = k.KID
		}
		if k.Algorithm == alg && k.State == gatehouse.KeyNext {
			out.Next = k.KID
		}
	}
	if out.Key.State == gatehouse.KeyNext {
		return out, nil // it never signed
	}
	end := out.Key.RetiredAt
	if end.IsZero() {
		end = now
	}
	sessions, err := a.store.ListSessions(ctx, store.SessionFilter{ActiveAt: now})
	if err != nil {
		return out, err
	}
	uids := map[int64]bool{}
	for _, s := range sessions {
		// A session begun before the key stopped signing may hold a token of
		// it (its first, or one from a refresh), if its kind uses alg.
		if sa, _ := a.cfg.Signing(s.Flow); sa != alg || s.CreatedAt.After(end) {
			continue
		}
		if s.ConsumerUID == 0 {
			out.UserSessions++
		} else {
			uids[s.ConsumerUID] = true
		}
	}
	if len(uids) > 0 {
		cs, err := a.store.ListConsumers(ctx)
		if err != nil {
			return out, err
		}
		for _, c := range cs {
			if uids[c.UID] {
				out.Consumers = append(out.Consumers, c)
			}
		}
	}
	return out, nil
}
