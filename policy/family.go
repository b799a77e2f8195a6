// Package policy decides whether a verified bearer token may call an API:
// it maps a request path to its API family, and applies the scope and user
// permission rules of P21 to the token, the family, the object named in the
// path and the current state of the user and role. It never touches the
// store: callers hand it what it needs.
package policy

import (
	"fmt"
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
	Name string `yaml:"name" json:"name"`
	// Paths are path prefixes, matched on segment boundaries,
	// case-insensitively. A prefix ending in "/" wants a further segment
	// (the object of odata families).
	Paths []string `yaml:"paths" json:"paths"`
	// GrantedBy lists the scope entries (paths or plain names) that grant
	// the family. For object families, an entry with an object list grants
	// only the objects it names.
	GrantedBy []string `yaml:"granted_by" json:"granted_by"`
	// Users is the check applied to user-credential tokens.
	Users UserCheck `yaml:"users" json:"users"`
	// Objects says the segment after the prefix names a table or view
	// (the odata family); the prefix's last segment ("table"/"view") gives
	// its kind when the catalog does not.
	Objects bool `yaml:"objects" json:"objects"`
	// InstallUser: requests without a user context act as the install user
	// (the Transaction API).
	InstallUser bool `yaml:"install_user" json:"install_user"`
	// OData applies the OData rules to an object family's paths and
	// queries (system resources, navigation, $expand/$select/$filter…);
	// on by default. Set false for an object API that is not OData, whose
	// object is just the segment after the prefix and whose query is
	// not read.
	OData *bool `yaml:"odata,omitempty" json:"odata,omitempty"`
}

func (f *Family) odata() bool { return f.OData == nil || *f.OData }

// Configuration is what a server publishes at wire.PathConfiguration, so
// that resource servers deciding in-process (guard.NewJWKS) decide as it
// does: its API family table and install user.
type Configuration struct {
	Families    []Family `json:"families"`
	InstallUser string   `json:"install_user"`
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
		{Name: "transaction", Paths: []string{
			"/uiserver0/api/v2/transaction", "/uiserver0/api/v2/services", "/uiserver0/api/v2/definition", "/uiserver0/api/v2/defaults",
			"/api/v2/transaction", "/api/v2/services", "/api/v2/definition", "/api/v2/defaults"},
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
		if f.OData != nil && !f.Objects {
			return nil, fmt.Errorf("API family %q: odata applies only to families with objects: true", f.Name)
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
			clean, err := Canonical(p)
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

// Match is a classified request: its family and, for object families,
// every object it reaches.
type Match struct {
	Family *Family
	// Path is the decoded canonical path (see Canonical).
	Path string
	// Kind is "table" or "view" as the path's prefix says (object families).
	Kind string
	// Object is the first object the request names, lower-cased ("" when it
	// names none); Objects lists every object it names, Object first:
	// navigation segments of the path and the objects its OData query
	// options name.
	Object  string
	Objects []string
	// All is set when the request reaches every object of Kind, saying how
	// ("the service root", "$batch", "$expand=*"): a system resource, a
	// path naming no object, or a query that expands everything.
	All string
}

func (m *Match) addObject(o string) {
	for _, x := range m.Objects {
		if x == o {
			return
		}
	}
	if m.Object == "" {
		m.Object = o
	}
	m.Objects = append(m.Objects, o)
}

// Resolve judges a request as sent: its escaped path (as on the request
// line, without the query) and its raw query. The path must be canonical
// (see Canonical); for object families with OData rules, the objects it
// reaches are read from the path and the query. Errors wrap ErrBadPath (the
// request cannot be judged) or are ErrUnclaimed.
func (t *Table) Resolve(escapedPath, rawQuery string) (Match, error) {
	p, err := Canonical(escapedPath)
	if err != nil {
		return Match{}, err
	}
	m, ok := t.classify(p)
	if !ok {
		return Match{}, ErrUnclaimed
	}
	switch {
	case m.Family.Objects && m.Family.odata():
		if err := resolveObjects(&m.Match, m.rest, rawQuery); err != nil {
			return Match{}, err
		}
	case m.Family.Objects:
		m.firstSegmentObject()
	}
	return m.Match, nil
}

// Classify finds the family of a decoded canonical path without reading
// an OData query: the object is the segment after an object family's
// prefix, up to a key in parentheses. ok is false when no family claims it.
func (t *Table) Classify(p string) (m Match, ok bool) {
	c, ok := t.classify(p)
	if !ok {
		return Match{}, false
	}
	if c.Family.Objects {
		c.firstSegmentObject()
	}
	return c.Match, true
}

// firstSegmentObject takes the segment after the prefix, up to a key in
// parentheses, as the object.
func (c *classified) firstSegmentObject() {
	seg, _, _ := strings.Cut(strings.TrimPrefix(strings.ToLower(c.rest), "/"), "/")
	seg, _, _ = strings.Cut(seg, "(")
	if seg != "" {
		c.addObject(seg)
	} else {
		c.All = "the service root"
	}
}

type classified struct {
	Match
	rest string // the decoded path after the family prefix
}

func (t *Table) classify(p string) (classified, bool) {
	lower := strings.ToLower(p)
	for _, pr := range t.prefixes {
		if !hasPrefixSegment(lower, pr.p) {
			continue
		}
		c := classified{Match: Match{Family: pr.fam, Path: p}, rest: p[len(pr.p):]}
		if pr.object {
			c.Kind = pr.kind
		}
		return c, true
	}
	return classified{}, false
}

// hasPrefixSegment reports whether p equals prefix or continues it with "/".
func hasPrefixSegment(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}
