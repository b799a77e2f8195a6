package admin

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
)

// The views of users, roles, consumers and sessions that every
// administration interface shows — the CLI's --json output and the REST
// API alike: never a password hash, a consumer key (but once, at creation
// or rotation) or a key's private part. Times are RFC 3339 in UTC, "" for
// none.

// UserView is a user as administration shows it.
type UserView struct {
	Name          string `json:"name"`
	Identity      string `json:"identity"`
	Role          string `json:"role"`
	AllowODataAPI bool   `json:"allow_odata_api"`
	Admin         bool   `json:"admin"`
	Deleted       bool   `json:"deleted"`
	HasPassword   bool   `json:"has_password"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	// Lockout is shown for a single user only.
	Lockout *LockoutView `json:"lockout,omitempty"`
}

// LockoutView is a user's lockout state, as the token endpoints judge it.
type LockoutView struct {
	Locked    bool   `json:"locked"`
	Failures  int    `json:"failures"`
	Threshold int    `json:"threshold"`
	Window    string `json:"window"`
}

// ViewUser is the view of u.
func ViewUser(u gatehouse.User) UserView {
	return UserView{Name: u.Name, Identity: string(u.Identity), Role: u.Role, AllowODataAPI: u.AllowODataAPI,
		Admin: u.Admin, Deleted: u.Deleted, HasPassword: u.PasswordHash != "", CreatedAt: Time(u.CreatedAt), UpdatedAt: Time(u.UpdatedAt)}
}

// ViewLockout is the view of l.
func ViewLockout(l Lockout) *LockoutView {
	return &LockoutView{Locked: l.Locked, Failures: l.Failures, Threshold: l.Threshold, Window: l.Window.String()}
}

// RoleEntryView is one explicit allow or deny of a role.
type RoleEntryView struct {
	Object string `json:"object"`
	Kind   string `json:"kind"`
	Access string `json:"access"` // allow or deny
}

// RoleView is a role as administration shows it, its entries by object.
type RoleView struct {
	Name           string          `json:"name"`
	AllowAll       bool            `json:"allow_all"`
	AllowAllTables bool            `json:"allow_all_tables"`
	AllowAllViews  bool            `json:"allow_all_views"`
	Entries        []RoleEntryView `json:"entries"`
	CreatedAt      string          `json:"created_at"`
	UpdatedAt      string          `json:"updated_at"`
}

// ViewRole is the view of r.
func ViewRole(r gatehouse.Role) RoleView {
	v := RoleView{Name: r.Name, AllowAll: r.AllowAll, AllowAllTables: r.AllowAllTables, AllowAllViews: r.AllowAllViews,
		Entries: []RoleEntryView{}, CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt)}
	for _, e := range r.Entries {
		acc := "deny"
		if e.Allow {
			acc = "allow"
		}
		v.Entries = append(v.Entries, RoleEntryView{Object: e.Object, Kind: string(e.Kind), Access: acc})
	}
	sort.Slice(v.Entries, func(a, b int) bool {
		return strings.ToLower(v.Entries[a].Object) < strings.ToLower(v.Entries[b].Object)
	})
	return v
}

// ConsumerView is a consumer as administration shows it.
type ConsumerView struct {
	UID             string   `json:"uid"`
	Name            string   `json:"name"`
	Type            string   `json:"type"`
	SDKAccess       bool     `json:"sdk_access"`
	Expires         string   `json:"expires"`
	Scope           string   `json:"scope"`
	ConfiguredScope string   `json:"configured_scope"`
	Grants          []string `json:"grants"`
	Disabled        bool     `json:"disabled"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
	// ConsumerKey is set only when a consumer is registered or its key
	// rotated, the one time it is shown.
	ConsumerKey string `json:"consumer_key,omitempty"`
}

// ViewConsumer is the view of c: its effective scope, and every grant it
// may use (client_credentials always).
func ViewConsumer(c gatehouse.Consumer) ConsumerView {
	grants := append([]string{gatehouse.GrantClientCredentials}, c.Grants...)
	return ConsumerView{UID: c.UIDString(), Name: c.Name, Type: string(c.Type), SDKAccess: c.SDKAccess,
		Expires: FormatLifetime(c.Lifetime), Scope: auth.EffectiveScope(&c), ConfiguredScope: c.Scope,
		Grants: grants, Disabled: c.Disabled, CreatedAt: Time(c.CreatedAt), UpdatedAt: Time(c.UpdatedAt)}
}

// SessionView is a middleware session as administration shows it.
type SessionView struct {
	ID          string `json:"id"`
	State       string `json:"state"` // active, ended or expired
	Username    string `json:"username"`
	ConsumerUID string `json:"consumer_uid"`
	Flow        string `json:"flow"`
	Scope       string `json:"scope"`
	CreatedAt   string `json:"created_at"`
	ExpiresAt   string `json:"expires_at"`
	EndedAt     string `json:"ended_at,omitempty"`
	EndReason   string `json:"end_reason,omitempty"`
	Remote      string `json:"remote"`
}

// ViewSession is the view of s at now.
func ViewSession(s gatehouse.Session, now time.Time) SessionView {
	state := "active"
	switch {
	case !s.EndedAt.IsZero():
		state = "ended"
	case !now.Before(s.ExpiresAt):
		state = "expired"
	}
	uid := ""
	if s.ConsumerUID != 0 {
		uid = strconv.FormatInt(s.ConsumerUID, 10)
	}
	return SessionView{ID: s.ID, State: state, Username: s.Username, ConsumerUID: uid, Flow: s.Flow, Scope: s.Scope,
		CreatedAt: Time(s.CreatedAt), ExpiresAt: Time(s.ExpiresAt), EndedAt: Time(s.EndedAt), EndReason: s.EndReason, Remote: s.RemoteAddr}
}

// Time is how the views write a time: RFC 3339 in UTC, "" for none.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
