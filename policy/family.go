// Package policy decides whether a verified bearer token may call an API:
// it maps a request path to its API family, and applies the scope and user
// permission rules of P21 to the token, the family, the object named in the
// path and the current state of the user and role. It never touches the
// store: callers hand it what it needs.
package policy

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/scope"
)

// UserCheck is what a family requires of user-credential tokens.
type UserCheck string

// The user checks a family can ask for.
const (
	// CheckODataAPI: the user must exist, not be deleted, and have "Allow
	// OData API Service".
	CheckODataAPI UserCheck = "odata_api"
	// CheckODataObject: as CheckODataAPI, then the user's role must allow
	// the table or view named in the path.
	CheckODataObject UserCheck = "odata_object"
	// CheckRealUser: the token's user context (for consumer tokens too) must
	// be a real, non-deleted user (the Interactive API).
	CheckRealUser UserCheck = "real_user"
	// CheckNone: the scope alone decides.
	CheckNone UserCheck = "none"
)

// Family is a group of API paths with one access rule.
type Family struct {
	Name string `yaml:"name"`
	// Paths are path prefixes, matched on segment boundaries,
	// case-insensitively. A prefix ending in "/" wants a further segment
	// (the object of odata families).
	Paths []string `yaml:"paths"`
	// GrantedBy lists the scope entries (paths or plain names) that grant
	// the family. For object families, an entry with an object list grants
	// only the objects it names.
	GrantedBy []string `yaml:"granted_by"`
	// Users is the check applied to user-credential tokens.
	Users UserCheck `yaml:"users"`
	// Objects says the segment after the prefix names a table or view
	// (the odata family); the prefix's last segment ("table"/"view") gives
	// its kind when the catalog does not.
	Objects bool `yaml:"objects"`
	// InstallUser: requests without a user context act as the install user
	// (the Transaction API).
	InstallUser bool `yaml:"install_user"`
}

// DefaultFamilies is the table of SPEC §4.2, mirroring P21.
func DefaultFamilies() []Family {
	return []Family{
		{Name: "odata", Paths: []string{"/odataservice/odata/table/", "/odataservice/odata/view/"},
			GrantedBy: []string{"/api", "/odata"}, Users: CheckODataObject, Objects: true},
		{Name: "configuration", Paths: []string{"/api/.configuration"},
			GrantedBy: []string{"/api", "/api/.configuration"}, Users: CheckODataAPI},
		{Name: "router", Paths: []string{"/api/ui/router"},
			GrantedBy: []string{"/api", "/uiserver0", "/ui"}, Users: CheckODataAPI},
		{Name: "interactive", Paths: []string{"/uiserver0/api/ui/interactive", "/api/ui/interactive"},
			GrantedBy: []string{"/api", "/uiserver0", "/ui"}, Users: CheckRealUser},
		{Name: "transaction", Paths: []string{"/uiserver0/api/v2/transaction", "/api/v2/transaction"},
			GrantedBy: []string{"/api", "/uiserver0"}, Users: CheckODataAPI, InstallUser: true},
		{Name: "inventory", Paths: []string{"/api/inventory"},
			GrantedBy: []string{"/api"}, Users: CheckODataAPI},
		{Name: "sdk", Paths: []string{"/p21sdk"},
			GrantedBy: []string{"/p21sdk"}, Users: CheckODataAPI},
		{Name: "api", Paths: []string{"/api"},
			GrantedBy: []string{"/api"}, Users: CheckODataAPI},
	}
}

// Table maps paths to families, longest prefix first.
type Table struct {
	families map[string]*Family
	prefixes []prefix
}

type prefix struct {
	p      string // lower case, no trailing slash
	object bool   // a further segment names the object
	kind   string // "table", "view" or "" (the prefix's last segment)
	fam    *Family
}

// NewTable checks and indexes families. Names must be unique; a path may
// belong to one family only; scope entries must parse.
func NewTable(fams []Family) (*Table, error) {
	t := &Table{families: map[string]*Family{}}
	seen := map[string]string{}
	for i := range fams {
		f := fams[i]
		f.Name = strings.ToLower(strings.TrimSpace(f.Name))
		if f.Name == "" {
			return nil, fmt.Errorf("API family %d has no name", i+1)
		}
		if _, dup := t.families[f.Name]; dup {
			return nil, fmt.Errorf("API family %q is defined twice", f.Name)
		}
		switch f.Users {
		case "":
			f.Users = CheckODataAPI
		case CheckODataAPI, CheckODataObject, CheckRealUser, CheckNone:
		default:
			return nil, fmt.Errorf("API family %q: users %q is not one of odata_api, odata_object, real_user, none", f.Name, f.Users)
		}
		if f.Users == CheckODataObject && !f.Objects {
			return nil, fmt.Errorf("API family %q: users odata_object needs objects: true", f.Name)
		}
		if len(f.Paths) == 0 {
			return nil, fmt.Errorf("API family %q has no paths", f.Name)
		}
		if len(f.GrantedBy) == 0 {
			return nil, fmt.Errorf("API family %q has no granted_by scope entries", f.Name)
		}
		grants := make([]string, 0, len(f.GrantedBy))
		for _, g := range f.GrantedBy {
			sc, err := scope.Parse(g)
			if err != nil || len(sc) != 1 || len(sc[0].Objects) > 0 {
				return nil, fmt.Errorf("API family %q: granted_by entry %q is not a single scope path or name", f.Name, g)
			}
			grants = append(grants, sc[0].Path)
		}
		f.GrantedBy = grants
		fam := &f
		t.families[f.Name] = fam
		for _, p := range f.Paths {
			clean, err := CleanPath(p)
			if err != nil {
				return nil, fmt.Errorf("API family %q: path %q: %v", f.Name, p, err)
			}
			key := strings.ToLower(clean)
			if key != "/" {
				key = strings.TrimSuffix(key, "/")
			}
			if key == "/" {
				return nil, fmt.Errorf("API family %q: path / would take every request", f.Name)
			}
			if other, dup := seen[key]; dup {
				return nil, fmt.Errorf("path %s belongs to both %q and %q", key, other, f.Name)
			}
			seen[key] = f.Name
			pr := prefix{p: key, fam: fam, object: f.Objects}
			if f.Objects {
				pr.kind = key[strings.LastIndexByte(key, '/')+1:]
			}
			t.prefixes = append(t.prefixes, pr)
		}
	}
	sort.SliceStable(t.prefixes, func(i, j int) bool { return len(t.prefixes[i].p) > len(t.prefixes[j].p) })
	return t, nil
}

// Family returns a family by name.
func (t *Table) Family(name string) *Family { return t.families[strings.ToLower(name)] }

// Families lists the family names.
func (t *Table) Families() []string {
	out := make([]string, 0, len(t.families))
	for n := range t.families {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Match is a classified request path.
type Match struct {
	Family *Family
	// Object is the lower-cased table or view name for object families ("" when
	// the path names none); Kind is "table" or "view" as the path says.
	Object string
	Kind   string
}

// Classify finds the family of a cleaned path (see CleanPath). ok is false
// when no family claims it.
func (t *Table) Classify(clean string) (m Match, ok bool) {
	lower := strings.ToLower(clean)
	for _, pr := range t.prefixes {
		if !hasPrefixSegment(lower, pr.p) {
			continue
		}
		m.Family = pr.fam
		if pr.object {
			m.Kind = pr.kind
			rest := strings.TrimPrefix(lower[len(pr.p):], "/")
			seg, _, _ := strings.Cut(rest, "/")
			// OData addresses an entity as name(key) and functions as name/...
			seg, _, _ = strings.Cut(seg, "(")
			m.Object = seg
		}
		return m, true
	}
	return m, false
}

// hasPrefixSegment reports whether p equals prefix or continues it with "/".
func hasPrefixSegment(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// ErrBadPath is returned by CleanPath for paths that cannot be served.
var ErrBadPath = errors.New("bad request path")

// CleanPath turns an escaped request path (URL.EscapedPath) into the path
// that is both classified and forwarded: percent-decoded once, with "." and
// ".." segments resolved and repeated slashes collapsed. Case and a trailing
// slash are kept (classification ignores both). Encoded slashes and
// backslashes, NUL and control characters, and paths that are not absolute
// are refused, so that no spelling can make the classified path differ from
// what an upstream server would see.
func CleanPath(escaped string) (string, error) {
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "", fmt.Errorf("%w: encoded slash or backslash", ErrBadPath)
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return "", fmt.Errorf("%w: invalid percent-encoding", ErrBadPath)
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: not absolute", ErrBadPath)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "", fmt.Errorf("%w: control character or backslash", ErrBadPath)
		}
	}
	trailing := strings.HasSuffix(p, "/") && len(p) > 1
	c := path.Clean(p)
	if trailing && c != "/" {
		c += "/"
	}
	return c, nil
}
