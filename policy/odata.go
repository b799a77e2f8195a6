package policy

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// OData rules for object families (SPEC §4.2): which objects a request
// reaches, by its path and by its query.
//
//   - The segment after the family's prefix names the object: a table or
//     view name (letters, digits, _), optionally with a key in parentheses:
//     supplier, supplier(12), supplier('A-1').
//   - A segment starting with "$" ($metadata, $batch, $all, $crossjoin(…),
//     $entity, $root, any other) is a system resource, never an object: it
//     reaches every object of the family's kind.
//   - No segment after the prefix (the service root) reaches every object.
//   - Further path segments after the object are $count, $value or $ref,
//     or name another object (a navigation property, or a property that
//     cannot be told apart from one without the model): each is judged as
//     an object of the same kind.
//   - The query options $expand, $select, $filter, $orderby, $apply and
//     $compute (with or without "$", in any case) and parameter aliases
//     (@name) are read for the objects they name: every navigation path
//     names an object, "*" in $expand and $root anywhere reach every
//     object. $id names a resource by URL and cannot be judged. A query
//     that cannot be read is refused rather than guessed at.

// resolveObjects fills m.Objects and m.All for a path of an object family;
// rest is the decoded path after the family prefix.
func resolveObjects(m *Match, rest, rawQuery string) error {
	rest = strings.TrimPrefix(rest, "/")
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		m.All = "the service root"
	} else {
		segs := strings.Split(rest, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "$") {
				if i == 0 {
					m.All = systemResource(s)
					continue
				}
				switch strings.ToLower(s) {
				case "$count", "$value", "$ref":
					continue
				}
				return &BadRequestError{Reason: fmt.Sprintf("the OData path segment %q cannot be judged", gatehouse.Clip(s, 80))}
			}
			name, err := objectSegment(s)
			if err != nil {
				return err
			}
			m.addObject(name)
		}
	}
	if rawQuery == "" {
		return nil
	}
	return resolveQuery(m, rawQuery)
}

// systemResource names the system resource of a "$…" segment, for refusals.
func systemResource(s string) string {
	name := s
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = name[:i]
	}
	return gatehouse.Clip(name, 80)
}

// objectSegment reads "name" or "name(key)" and returns the lower-cased
// name.
func objectSegment(s string) (string, error) {
	name, key, hasKey := strings.Cut(s, "(")
	if hasKey && !strings.HasSuffix(key, ")") {
		return "", &BadRequestError{Reason: fmt.Sprintf("the OData path segment %q is not name or name(key)", gatehouse.Clip(s, 80))}
	}
	if !isIdent(name) {
		return "", &BadRequestError{Reason: fmt.Sprintf("the OData path segment %q does not name a table or view (letters, digits and _)", gatehouse.Clip(s, 80))}
	}
	return strings.ToLower(name), nil
}

// isIdent reports whether s is a table, view or property name: a letter or
// _, then letters, digits and _, at most 128 bytes.
func isIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// queryOption is a system query option the decision reads.
type queryOption int

const (
	optNone queryOption = iota
	optExpand
	optSelect
	optExpr // $filter, $orderby, $apply, $compute, parameter aliases
	optID
)

// optionOf classifies a decoded query parameter name. OData 4.01 allows
// system query options in any case and without the "$".
func optionOf(name string) queryOption {
	if strings.HasPrefix(name, "@") {
		return optExpr
	}
	switch strings.ToLower(strings.TrimPrefix(name, "$")) {
	case "expand":
		return optExpand
	case "select":
		return optSelect
	case "filter", "orderby", "apply", "compute":
		return optExpr
	case "id":
		return optID
	}
	return optNone
}

// maxQueryDepth bounds the nesting of $expand options.
const maxQueryDepth = 16

// resolveQuery reads the query options that name objects. Parameters are
// separated by "&" (as ASP.NET, servlet containers and Python read them);
// since some servers also split at ";", every ";"-separated part outside
// parentheses and quotes is read as a parameter too — reading more can
// only refuse more. Names and values are percent-decoded once, "+" as a
// space.
func resolveQuery(m *Match, rawQuery string) error {
	for _, p := range strings.Split(rawQuery, "&") {
		if p == "" {
			continue
		}
		if err := resolveParam(m, p); err != nil {
			return err
		}
		if !strings.Contains(p, ";") {
			continue
		}
		parts, err := splitTop(p, ';')
		if err != nil {
			// The parameter itself was read; a ";" reading of it that does
			// not split cleanly names nothing more than its first part.
			continue
		}
		for _, q := range parts[1:] {
			if err := resolveParam(m, q); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolveParam reads one name=value parameter.
func resolveParam(m *Match, p string) error {
	rawName, rawValue, _ := strings.Cut(p, "=")
	name, err := url.QueryUnescape(rawName)
	if err != nil {
		return &BadRequestError{Reason: fmt.Sprintf("the query parameter %q has an invalid percent-escape", gatehouse.Clip(rawName, 80))}
	}
	opt := optionOf(name)
	if opt == optNone {
		return nil
	}
	value, err := url.QueryUnescape(rawValue)
	if err != nil {
		return &BadRequestError{Reason: fmt.Sprintf("the query option %s has an invalid percent-escape", gatehouse.Clip(name, 80))}
	}
	switch opt {
	case optExpand:
		err = readExpand(m, value, 0)
	case optSelect:
		err = readSelect(m, value, 0)
	case optExpr:
		err = readExpr(m, value)
	case optID:
		err = fmt.Errorf("%s names a resource by URL", gatehouse.Clip(name, 80))
	}
	if err != nil {
		return &BadRequestError{Reason: fmt.Sprintf("the query option %s cannot be judged: %v", gatehouse.Clip(name, 80), err)}
	}
	return nil
}

// splitTop splits s at sep outside parentheses and quoted strings.
func splitTop(s string, sep byte) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			j, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced parentheses")
			}
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parentheses")
	}
	return append(out, s[start:]), nil
}

// skipString returns the index of the quote closing the string literal
// that starts at s[i] ("”" is an escaped quote).
func skipString(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\'' {
			if j+1 < len(s) && s[j+1] == '\'' {
				j++
				continue
			}
			return j, nil
		}
	}
	return 0, fmt.Errorf("a string literal is not closed")
}

// cutOptions splits "path(options)" into its path and the options inside
// the parentheses ("" when there are none).
func cutOptions(item string) (path, opts string, err error) {
	i := strings.IndexByte(item, '(')
	if i < 0 {
		return item, "", nil
	}
	if !strings.HasSuffix(item, ")") {
		return "", "", fmt.Errorf("%q has text after its options", gatehouse.Clip(item, 80))
	}
	return item[:i], item[i+1 : len(item)-1], nil
}

// readExpand reads a $expand value: comma-separated navigation paths, each
// with optional nested options in parentheses.
func readExpand(m *Match, v string, depth int) error {
	if depth > maxQueryDepth {
		return fmt.Errorf("options are nested too deeply")
	}
	items, err := splitTop(v, ',')
	if err != nil {
		return err
	}
	for _, it := range items {
		it = strings.TrimSpace(it)
		path, opts, err := cutOptions(it)
		if err != nil {
			return err
		}
		if path == "" {
			return fmt.Errorf("an item is empty")
		}
		for _, seg := range strings.Split(path, "/") {
			switch {
			case seg == "*":
				m.All = "$expand=*"
			case strings.HasPrefix(seg, "$"):
				switch strings.ToLower(seg) {
				case "$ref", "$count", "$value":
				default:
					return fmt.Errorf("%q is not a navigation path", gatehouse.Clip(path, 80))
				}
			case isQualified(seg):
				// A type cast: names no object.
			case isIdent(seg):
				m.addObject(strings.ToLower(seg))
			default:
				return fmt.Errorf("%q is not a navigation path", gatehouse.Clip(path, 80))
			}
		}
		if opts != "" {
			if err := readOptions(m, opts, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// readOptions reads the ";"-separated options nested in $expand or $select.
func readOptions(m *Match, opts string, depth int) error {
	parts, err := splitTop(opts, ';')
	if err != nil {
		return err
	}
	for _, p := range parts {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			// $expand=Nav($levels) style shorthands are not OData; refuse.
			return fmt.Errorf("nested option %q has no value", gatehouse.Clip(p, 80))
		}
		switch optionOf(name) {
		case optExpand:
			err = readExpand(m, value, depth)
		case optSelect:
			err = readSelect(m, value, depth)
		case optExpr:
			err = readExpr(m, value)
		case optID:
			err = fmt.Errorf("$id names a resource by URL")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readSelect reads a $select value: a path with more than one segment
// passes through navigation or complex properties, each judged as an
// object; an item with nested options selects from a collection, judged
// too.
func readSelect(m *Match, v string, depth int) error {
	if depth > maxQueryDepth {
		return fmt.Errorf("options are nested too deeply")
	}
	items, err := splitTop(v, ',')
	if err != nil {
		return err
	}
	for _, it := range items {
		path, opts, err := cutOptions(strings.TrimSpace(it))
		if err != nil {
			return err
		}
		segs := strings.Split(path, "/")
		judged := segs[:len(segs)-1]
		if opts != "" {
			judged = segs
		}
		for i, seg := range segs {
			switch {
			case seg == "*" && i == len(segs)-1:
			case isQualified(seg):
			case isIdent(seg):
			case seg == "" && len(segs) == 1 && len(items) == 1:
				// An empty $select selects the default.
			default:
				return fmt.Errorf("%q is not a property path", gatehouse.Clip(path, 80))
			}
		}
		for _, seg := range judged {
			if isIdent(seg) {
				m.addObject(strings.ToLower(seg))
			}
		}
		if opts != "" {
			if err := readOptions(m, opts, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// isQualified reports a namespace-qualified name (a type cast or a
// function): identifiers joined by dots, or ending in ".*".
func isQualified(s string) bool {
	if !strings.Contains(s, ".") {
		return false
	}
	parts := strings.Split(s, ".")
	for i, p := range parts {
		if p == "*" && i == len(parts)-1 && i > 0 {
			continue
		}
		if !isIdent(p) {
			return false
		}
	}
	return true
}

// readExpr reads an expression ($filter, $orderby, $apply, $compute, an
// alias value): every member path that continues with "/" starts at a
// navigation or complex property, judged as an object; a lambda variable
// (any(x: x/…)), $it and $this name none; $root reaches every object.
func readExpr(m *Match, v string) error {
	lambda := map[string]bool{}
	// First pass: lambda variables ("x:" inside any/all).
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\'' {
			j, err := skipString(v, i)
			if err != nil {
				return err
			}
			i = j
			continue
		}
		if identStart(c) && (i == 0 || !identPart(v[i-1])) {
			j := i
			for j < len(v) && identPart(v[j]) {
				j++
			}
			if j < len(v) && v[j] == ':' {
				lambda[strings.ToLower(v[i:j])] = true
			}
			i = j - 1
		}
	}
	prevSlash, expectNav := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\'':
			j, err := skipString(v, i)
			if err != nil {
				return err
			}
			i = j
			prevSlash = false
		case c == '/':
			prevSlash = true
		case identStart(c) || c == '$':
			j := i + 1
			for j < len(v) && identPart(v[j]) {
				j++
			}
			word := v[i:j]
			next := byte(0)
			if j < len(v) {
				next = v[j]
			}
			lw := strings.ToLower(word)
			switch {
			case lw == "$root":
				m.All = "$root"
			case strings.HasPrefix(lw, "$"), lambda[lw], isQualified(word):
			case next == '/' || (prevSlash && next == '('):
				// Starts or continues a path: a navigation or complex
				// property (any/all after a slash are lambda operators).
				if !(prevSlash && (lw == "any" || lw == "all")) && isIdent(word) {
					m.addObject(lw)
				}
			case expectNav && isIdent(word):
				// $apply's expand(Nav, …): the first argument is a path.
				m.addObject(lw)
			}
			expectNav = lw == "expand" && next == '('
			prevSlash = false
			i = j - 1
		case c == ' ' || c == '\t' || c == ',' || c == '(' || c == ')':
			prevSlash = false
		default:
			prevSlash = false
		}
	}
	return nil
}

func identStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

func identPart(c byte) bool {
	return identStart(c) || '0' <= c && c <= '9' || c == '.'
}
