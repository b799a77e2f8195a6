// Package scope parses, normalises and matches gatehouse scopes.
//
// A scope is entry(;entry)*. An entry is a path (/api, /p21sdk,
// /uiserver0, /api/.configuration), a path with an object list
// (/odata:price_page,supplier), or a plain name for OAuth-style
// deployments (access). Whitespace around separators is ignored; paths,
// object names and plain names match case-insensitively; duplicates
// collapse. The normal form is lower case, with entries in first-seen order
// and the object lists of one path merged.
package scope

import (
	"errors"
	"fmt"
	"strings"
)

// Entry is one scope entry.
type Entry struct {
	// Path is the lower-cased path ("/api") or plain name ("access").
	Path string
	// Objects is the object list of a path entry, lower-cased and without
	// duplicates; nil when the entry has none.
	Objects []string
}

// Plain reports whether the entry is a plain name rather than a path.
func (e Entry) Plain() bool { return !strings.HasPrefix(e.Path, "/") }

// String writes the entry in normal form.
func (e Entry) String() string {
	if len(e.Objects) == 0 {
		return e.Path
	}
	return e.Path + ":" + strings.Join(e.Objects, ",")
}

// Scope is a parsed scope: entries in normal form, each path at most once.
type Scope []Entry

// SDK is the entry consumers with SDK access get.
const SDK = "/p21sdk"

// ODataPath is the only path whose entries carry an object list.
const ODataPath = "/odata"

// Limits that keep a hostile scope string cheap to handle.
const (
	MaxLen     = 4096
	MaxEntries = 256
	maxName    = 128
)

// Error is a parse error naming the offending entry.
type Error struct {
	Entry  string
	Reason string
}

func (e *Error) Error() string {
	if e.Entry == "" {
		return e.Reason
	}
	return fmt.Sprintf("scope entry %q: %s", e.Entry, e.Reason)
}

// Parse reads a scope string. Empty entries (";;", a trailing ";") are
// skipped; an empty scope is an error.
func Parse(s string) (Scope, error) {
	if len(s) > MaxLen {
		return nil, &Error{Reason: fmt.Sprintf("scope is longer than %d bytes", MaxLen)}
	}
	var sc Scope
	n := 0
	for _, raw := range strings.Split(s, ";") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if n++; n > MaxEntries {
			return nil, &Error{Reason: fmt.Sprintf("scope has more than %d entries", MaxEntries)}
		}
		e, err := parseEntry(raw)
		if err != nil {
			return nil, err
		}
		sc = sc.add(e)
	}
	if len(sc) == 0 {
		return nil, &Error{Reason: "scope is empty"}
	}
	return sc, nil
}

func parseEntry(raw string) (Entry, error) {
	bad := func(format string, args ...any) (Entry, error) {
		return Entry{}, &Error{Entry: raw, Reason: fmt.Sprintf(format, args...)}
	}
	head, list, hasList := strings.Cut(raw, ":")
	head = strings.TrimSpace(head)
	if !strings.HasPrefix(head, "/") {
		// A plain name; colons are part of it (e.g. "orders:read").
		name := strings.ToLower(raw)
		if len(name) > maxName {
			return bad("name is longer than %d bytes", maxName)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-:", r)) {
				return bad("a plain name may hold only letters, digits and _ . - :")
			}
		}
		return Entry{Path: name}, nil
	}
	path, err := cleanPath(head)
	if err != nil {
		return bad("%v", err)
	}
	if !hasList {
		return Entry{Path: path}, nil
	}
	if path != ODataPath {
		return bad("only %s takes an object list", ODataPath)
	}
	e := Entry{Path: path}
	for _, o := range strings.Split(list, ",") {
		o = strings.ToLower(strings.TrimSpace(o))
		if o == "" {
			continue
		}
		if !validObject(o) {
			return bad("object %q is not a table or view name (letters, digits, _)", o)
		}
		e.Objects = addObject(e.Objects, o)
	}
	if len(e.Objects) == 0 {
		return bad("the object list is empty")
	}
	return e, nil
}

func validObject(o string) bool {
	if len(o) > maxName {
		return false
	}
	for i, r := range o {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// cleanPath lower-cases a scope path and drops a trailing slash; it refuses
// empty, "." and ".." segments and characters outside [a-z0-9._-].
func cleanPath(p string) (string, error) {
	p = strings.ToLower(p)
	if len(p) > maxName {
		return "", fmt.Errorf("path is longer than %d bytes", maxName)
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if p == "/" {
		return "", errors.New("the root path grants nothing; name an API path such as /api")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", errors.New("path has an empty, . or .. segment")
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
				return "", errors.New("a path may hold only letters, digits and _ . - /")
			}
		}
	}
	return p, nil
}

func addObject(list []string, o string) []string {
	for _, x := range list {
		if x == o {
			return list
		}
	}
	return append(list, o)
}

// add merges e into the scope: a path already present gains e's objects; a
// path without objects grants every object, so it absorbs the list.
func (s Scope) add(e Entry) Scope {
	for i := range s {
		if s[i].Path != e.Path {
			continue
		}
		if len(s[i].Objects) == 0 {
			return s
		}
		if len(e.Objects) == 0 {
			s[i].Objects = nil
			return s
		}
		for _, o := range e.Objects {
			s[i].Objects = addObject(s[i].Objects, o)
		}
		return s
	}
	return append(s, e)
}

// String writes the scope in normal form.
func (s Scope) String() string {
	parts := make([]string, len(s))
	for i, e := range s {
		parts[i] = e.String()
	}
	return strings.Join(parts, ";")
}

// Has reports whether the scope holds path (or plain name) as an entry,
// with or without an object list. name must be in normal (lower) case.
func (s Scope) Has(name string) bool {
	for _, e := range s {
		if e.Path == name {
			return true
		}
	}
	return false
}

// Grants reports whether the scope holds path without an object list (all
// objects), or with a list naming object. object must be lower case; ""
// asks for the path itself, which a list entry does not grant.
func (s Scope) Grants(path, object string) bool {
	for _, e := range s {
		if e.Path != path {
			continue
		}
		if len(e.Objects) == 0 {
			return true
		}
		if object == "" {
			return false
		}
		for _, o := range e.Objects {
			if o == object {
				return true
			}
		}
	}
	return false
}

// WithSDK returns s with the /p21sdk entry added (a copy; s is unchanged).
func WithSDK(s Scope) Scope {
	out := append(Scope(nil), s...)
	return out.add(Entry{Path: SDK})
}

// ValidateForConsumer applies the registration rules on top of the
// grammar: a bare /odata is refused, because OData scope must list tables.
func ValidateForConsumer(s Scope) error {
	for _, e := range s {
		if e.Path == ODataPath && len(e.Objects) == 0 {
			return &Error{Entry: ODataPath, Reason: "OData scope must list tables (/odata:table1,table2)"}
		}
	}
	return nil
}
