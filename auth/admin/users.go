package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/store"
)

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
	ev := a.with(ctx, actor, "user.add", "user:"+u.Name,
		fmt.Sprintf("identity=%s role=%q allow_odata=%t admin=%t password=%s", u.Identity, u.Role, u.AllowODataAPI, u.Admin, passwordSource(in)))
	if err := a.store.CreateUser(ev, u); err != nil {
		if errors.Is(err, gatehouse.ErrConflict) {
			return gatehouse.User{}, conflictErr("user %q already exists (names are case-insensitive; deleted users keep their name)", in.Name)
		}
		return gatehouse.User{}, err
	}
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
	var stored string
	ev := a.audited(ctx, func([]gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "user.update", "user:"+stored, strings.Join(changes, " "))
	})
	u, err := a.store.UpdateUser(ev, name, func(u *gatehouse.User) error {
		stored = u.Name
		if u.Deleted {
			return inputErr("user %q is deleted", u.Name)
		}
		if err := checkPrecondition(ctx, *u); err != nil {
			return err
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
	return u, nil
}

// DeleteUser marks a user deleted and ends every session acting as that user.
func (a *Admin) DeleteUser(ctx context.Context, actor, name string) ([]string, error) {
	var stored string
	ev := a.audited(ctx, func([]gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "user.delete", "user:"+stored, "")
	})
	u, err := a.store.UpdateUser(ev, name, func(u *gatehouse.User) error {
		stored = u.Name
		if u.Deleted {
			return inputErr("user %q is already deleted", u.Name)
		}
		if err := checkPrecondition(ctx, *u); err != nil {
			return err
		}
		u.Deleted = true
		u.UpdatedAt = a.clock.Now()
		return nil
	})
	if err != nil {
		return nil, notFound(err, "user", name)
	}
	ended, err := a.store.EndSessions(a.sessionsEndedEvent(ctx, actor, "user:"+u.Name, "user deleted"),
		store.SessionFilter{Username: u.Name}, gatehouse.EndUserDeleted, a.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("user %s was deleted, but its sessions could not be ended (run `gatehouse session end --user %s`): %w",
			u.Name, u.Name, err)
	}
	a.sessionsEnded(ended)
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
// that raced with the change is refused (see issue.Service.PasswordToken).
func (a *Admin) ChangePassword(ctx context.Context, actor, name string, ch PasswordChange) ([]string, error) {
	var h, detail string
	switch {
	case ch.Password != "" && ch.Hash != "":
		return nil, inputErr("give a password or a password hash, not both")
	case ch.Hash != "":
		if err := checkImportedHash(ch.Hash); err != nil {
			return nil, err
		}
		h, detail = ch.Hash, "imported hash"
	case ch.Password == "":
		return nil, inputErr("the password is empty")
	default:
		var err error
		if h, err = a.passwords.Hash(ctx, ch.Password); err != nil {
			return nil, inputErr("password: %v", err)
		}
	}
	var stored string
	if ch.KeepSessions {
		detail = strings.TrimPrefix(detail+"; sessions kept", "; ")
	}
	ev := a.audited(ctx, func([]gatehouse.Change) gatehouse.AuditEvent {
		return a.event(actor, "user.set-password", "user:"+stored, detail)
	})
	u, err := a.store.UpdateUser(ev, name, func(u *gatehouse.User) error {
		stored = u.Name
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
		return nil, nil
	}
	ended, err := a.store.EndSessions(a.sessionsEndedEvent(ctx, actor, "user:"+u.Name, "password changed"),
		store.SessionFilter{Username: u.Name}, gatehouse.EndPasswordChanged, a.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("the password of %s was replaced, but its sessions could not be ended (run `gatehouse session end --user %s`): %w",
			u.Name, u.Name, err)
	}
	a.sessionsEnded(ended)
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
	// The lockout's end (or the unlock) is audited with the write that
	// closes it; the failed sign-ins are forgotten after.
	_, err := a.store.CloseLockout(a.audited(ctx, func(ch []gatehouse.Change) gatehouse.AuditEvent {
		for _, c := range ch {
			if c.Kind == gatehouse.ChangeLockout {
				return a.event(actor, "lockout.end", "user:"+name, "unlocked by an administrator")
			}
		}
		return a.event(actor, "user.unlock", "user:"+name, "no lockout was open; failed sign-ins forgotten")
	}), key)
	if err != nil {
		return err
	}
	return a.store.ClearAuthFailures(ctx, key)
}

// Lockout is a user's lockout state as the token endpoints judge it.
type Lockout struct {
	// Failures counts the failed sign-ins within the lockout window.
	Failures int
	// Threshold is the number of failures that locks (0: lockout is off).
	Threshold int
	Window    time.Duration
	// Locked: the next sign-in is refused whatever the password.
	Locked bool
}

// LockoutState reports how close a user name is to a lockout, counting its
// failed sign-ins as the token endpoints do.
func (a *Admin) LockoutState(ctx context.Context, name string) (Lockout, error) {
	l := Lockout{Threshold: a.cfg.LockoutThreshold, Window: a.cfg.LockoutWindow}
	n, err := a.store.CountAuthFailures(ctx, strings.ToLower(name), a.clock.Now(), a.cfg.LockoutWindow)
	if err != nil {
		return l, err
	}
	l.Failures = n
	l.Locked = l.Threshold > 0 && n >= l.Threshold
	return l, nil
}
