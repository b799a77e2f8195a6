package policy

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/scope"
)

// Subject is what the decision needs of a verified token.
type Subject struct {
	// Username is the token's user context ("" when none).
	Username string
	// Consumer is true for tokens issued through a consumer key or an OAuth
	// client: they bypass user permissions.
	Consumer bool
	// Scope is the token's scope (its aud claim), parsed.
	Scope scope.Scope
}

// State is the current state of the user named by the token, looked up by
// the caller (from memory) when Needs says so.
type State struct {
	// User is nil when no such user exists.
	User *gatehouse.User
	// Role is the user's role, nil when the user has none (or it is gone).
	Role *gatehouse.Role
	// Kinds holds the catalog's kind ("table" or "view") of the objects the
	// request names; for an object the catalog does not know, the path's
	// kind applies.
	Kinds map[string]gatehouse.ObjectKind
}

// Needs tells the caller which state to look up for a request.
func Needs(m Match, s Subject) (user, role, catalog bool) {
	if s.Username == "" {
		return false, false, false
	}
	if m.Family.Users == CheckRealUser {
		return true, false, false
	}
	if s.Consumer || m.Family.Users == CheckNone {
		return false, false, false
	}
	// A path without an object (the service root, a bare /table/) still
	// needs the role: only one that allows every object may list them.
	objFamily := m.Family.Users == CheckODataObject
	return true, objFamily, objFamily && len(m.Objects) > 0
}

// Decision is the outcome: Allow, or a refusal ready to render.
type Decision struct {
	Allow bool
	// ActingUser is the user the upstream should act as ("" for none): the
	// token's user context, or the install user for families that fall back
	// to it.
	ActingUser string
	// Refusal is set when Allow is false.
	Refusal *gatehouse.Error
}

// Descriptions clients see; fixed strings as P21 sends them.
const (
	DescScope         = "Consumer key does not have access to this API."
	DescNotAuthorized = "You are not authorized to access API"
	DescInvalidUser   = "Error retrieving/validating user"
)

// ErrInsufficientScope is the refusal when the token's scope does not grant the family.
func ErrInsufficientScope() *gatehouse.Error {
	e := &gatehouse.Error{Status: http.StatusForbidden, Code: gatehouse.CodeInsufficientScope, Description: DescScope}
	return e.WithHeader("WWW-Authenticate", `Bearer error="insufficient_scope"`)
}

func errNotAuthorized(object string) *gatehouse.Error {
	d := DescNotAuthorized
	if object != "" {
		d += ": the role does not allow " + object
	}
	return &gatehouse.Error{Status: http.StatusForbidden, Code: gatehouse.CodeAccessDenied, Description: d}
}

func errInvalidUser() *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusForbidden, Code: gatehouse.CodeInvalidUser, Description: DescInvalidUser}
}

// Decide applies SPEC §4.3–4.4: scope first; consumer tokens stop there
// (apart from the real-user rule of the Interactive API); user tokens then
// need a live user with "Allow OData API Service" and, for objects, a role
// that allows the object. installUser is the acting user of families that
// fall back to it.
func Decide(m Match, s Subject, st State, installUser string) Decision {
	f := m.Family
	if !grants(f, m, s.Scope) {
		return Decision{Refusal: ErrInsufficientScope()}
	}
	acting := s.Username
	if acting == "" && f.InstallUser {
		acting = installUser
	}
	if f.Users == CheckRealUser {
		if s.Username == "" || !live(st.User) {
			return Decision{Refusal: errInvalidUser()}
		}
		return Decision{Allow: true, ActingUser: st.User.Name}
	}
	if s.Consumer || f.Users == CheckNone {
		// A consumer token's user context may be any string (SPEC §2.1); it
		// is validated where it is used: one that cannot travel in a header
		// (control characters) names no P21 user.
		if !headerSafe(acting) {
			return Decision{Refusal: errInvalidUser()}
		}
		return Decision{Allow: true, ActingUser: acting}
	}
	// A user-credential token.
	if !live(st.User) || !st.User.AllowODataAPI {
		return Decision{Refusal: errNotAuthorized("")}
	}
	if f.Users == CheckODataObject {
		// A request that reaches every object of its kind (the service
		// root, a system resource such as $batch, $expand=*) needs a role
		// that allows them all.
		if m.All != "" && !roleAllowsEvery(st.Role, gatehouse.ObjectKind(m.Kind)) {
			return Decision{Refusal: errNotAuthorized("every object (" + m.All + ")")}
		}
		for _, o := range m.Objects {
			kind := gatehouse.ObjectKind(m.Kind)
			if k := st.Kinds[o]; k != "" {
				kind = k
			}
			if !RoleAllows(st.Role, o, kind) {
				return Decision{Refusal: errNotAuthorized(o)}
			}
		}
	}
	return Decision{Allow: true, ActingUser: st.User.Name}
}

// roleAllowsEvery reports whether r allows every object of kind ("" for
// tables and views alike) whatever its entries: Allow All, or Allow All
// Tables / Views for that kind, with no entry denying one.
func roleAllowsEvery(r *gatehouse.Role, kind gatehouse.ObjectKind) bool {
	if r == nil {
		return false
	}
	for _, e := range r.Entries {
		if !e.Allow && (kind == "" || e.Kind == "" || e.Kind == kind) {
			return false
		}
	}
	switch {
	case r.AllowAll:
		return true
	case kind == gatehouse.KindTable:
		return r.AllowAllTables
	case kind == gatehouse.KindView:
		return r.AllowAllViews
	}
	return r.AllowAllTables && r.AllowAllViews
}

func live(u *gatehouse.User) bool { return u != nil && !u.Deleted }

// grants reports whether the scope holds an entry granting the family; for
// object families, an entry with an object list must name every object the
// request names, and cannot grant a request that reaches every object.
func grants(f *Family, m Match, sc scope.Scope) bool {
	if !f.Objects || m.All != "" || len(m.Objects) == 0 {
		return grantsObject(f, sc, "")
	}
	for _, o := range m.Objects {
		if !grantsObject(f, sc, o) {
			return false
		}
	}
	return true
}

// grantsObject reports whether one of the family's grants in sc covers
// object ("" for none or all: only an entry without an object list).
func grantsObject(f *Family, sc scope.Scope, object string) bool {
	for _, g := range f.GrantedBy {
		if sc.Grants(g, object) {
			return true
		}
	}
	return false
}

// RoleAllows is the Dataservice Permission rule: an explicit entry for the
// object wins; else Allow All Tables / Allow All Views for its kind; else
// Allow All; else deny. No role denies everything.
func RoleAllows(r *gatehouse.Role, object string, kind gatehouse.ObjectKind) bool {
	if r == nil {
		return false
	}
	if e, ok := r.Entry(strings.ToLower(object)); ok {
		return e.Allow
	}
	switch {
	case kind == gatehouse.KindTable && r.AllowAllTables:
		return true
	case kind == gatehouse.KindView && r.AllowAllViews:
		return true
	}
	return r.AllowAll
}

// headerSafe reports whether s can be an HTTP header value as it is: no
// control characters but tab, and no leading or trailing space or tab,
// which HTTP would strip, naming another user upstream (RFC 9110 §5.5).
func headerSafe(s string) bool {
	if s != strings.Trim(s, " \t") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
