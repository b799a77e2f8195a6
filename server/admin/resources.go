package admin

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// The resources as the API shows them: never a password hash, a consumer
// key (but once, at creation or rotation) or a key's private part. Field
// names are those of the CLI's --json output.

// User is a user as the API shows it.
type User struct {
	Name          string `json:"name"`
	Identity      string `json:"identity"`
	Role          string `json:"role"`
	AllowODataAPI bool   `json:"allow_odata_api"`
	Admin         bool   `json:"admin"`
	Deleted       bool   `json:"deleted"`
	HasPassword   bool   `json:"has_password"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	// Lockout is filled in by the single-user read only.
	Lockout *Lockout `json:"lockout,omitempty"`
}

// Lockout is a user's lockout state.
type Lockout struct {
	Locked    bool   `json:"locked"`
	Failures  int    `json:"failures"`
	Threshold int    `json:"threshold"`
	Window    string `json:"window"`
}

func toUser(u gatehouse.User) User {
	return User{Name: u.Name, Identity: string(u.Identity), Role: u.Role, AllowODataAPI: u.AllowODataAPI,
		Admin: u.Admin, Deleted: u.Deleted, HasPassword: u.PasswordHash != "", CreatedAt: ts(u.CreatedAt), UpdatedAt: ts(u.UpdatedAt)}
}

func toLockout(l admin.Lockout) *Lockout {
	return &Lockout{Locked: l.Locked, Failures: l.Failures, Threshold: l.Threshold, Window: l.Window.String()}
}

// RoleEntry is one explicit allow or deny of a role.
type RoleEntry struct {
	Object string `json:"object"`
	Kind   string `json:"kind"`
	Access string `json:"access"` // allow or deny
}

// Role is a role as the API shows it.
type Role struct {
	Name           string      `json:"name"`
	AllowAll       bool        `json:"allow_all"`
	AllowAllTables bool        `json:"allow_all_tables"`
	AllowAllViews  bool        `json:"allow_all_views"`
	Entries        []RoleEntry `json:"entries"`
	CreatedAt      string      `json:"created_at"`
	UpdatedAt      string      `json:"updated_at"`
}

func toRole(r gatehouse.Role) Role {
	j := Role{Name: r.Name, AllowAll: r.AllowAll, AllowAllTables: r.AllowAllTables, AllowAllViews: r.AllowAllViews,
		Entries: []RoleEntry{}, CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt)}
	for _, e := range r.Entries {
		acc := "deny"
		if e.Allow {
			acc = "allow"
		}
		j.Entries = append(j.Entries, RoleEntry{Object: e.Object, Kind: string(e.Kind), Access: acc})
	}
	sort.Slice(j.Entries, func(a, b int) bool {
		return strings.ToLower(j.Entries[a].Object) < strings.ToLower(j.Entries[b].Object)
	})
	return j
}

// Consumer is a consumer as the API shows it.
type Consumer struct {
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

func toConsumer(c gatehouse.Consumer) Consumer {
	grants := append([]string{gatehouse.GrantClientCredentials}, c.Grants...)
	return Consumer{UID: c.UIDString(), Name: c.Name, Type: string(c.Type), SDKAccess: c.SDKAccess,
		Expires: admin.FormatLifetime(c.Lifetime), Scope: auth.EffectiveScope(&c), ConfiguredScope: c.Scope,
		Grants: grants, Disabled: c.Disabled, CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt)}
}

// Session is a middleware session as the API shows it.
type Session struct {
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

func toSession(s gatehouse.Session, now time.Time) Session {
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
	return Session{ID: s.ID, State: state, Username: s.Username, ConsumerUID: uid, Flow: s.Flow, Scope: s.Scope,
		CreatedAt: ts(s.CreatedAt), ExpiresAt: ts(s.ExpiresAt), EndedAt: ts(s.EndedAt), EndReason: s.EndReason, Remote: s.RemoteAddr}
}

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
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
