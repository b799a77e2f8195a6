package odata

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
)

// Query is a read of one table or view with its query options.
type Query struct {
	Table   *data.Table
	Select  []*data.Column // nil: every column
	Where   string         // SQL condition with ? parameters; "" for none
	Args    []any
	OrderBy string // SQL
	Top     int    // -1: none
	Skip    int
	Count   bool
	// Raw keeps the options as sent, to build the next page's link.
	Raw []Option
}

// Option is one query parameter as sent.
type Option struct{ Name, Value, Raw string }

// maxTop bounds $top and $skip.
const maxTop = 1 << 30

// ParseQuery reads the query string of a request for table t. Parameters
// are split at "&" and decoded once ("+" as a space); system query
// options ($filter, $select, …) are matched without regard to case;
// parameters that do not start with "$" are custom options and ignored.
func ParseQuery(t *data.Table, rawQuery string) (*Query, error) {
	q := &Query{Table: t, Top: -1}
	seen := map[string]bool{}
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, bad("The query parameter '%s' is not correctly percent-encoded", gatehouse.Clip(rawName, 60))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, bad("The value of %s is not correctly percent-encoded", gatehouse.Clip(name, 60))
		}
		q.Raw = append(q.Raw, Option{Name: name, Value: value, Raw: part})
		if !strings.HasPrefix(name, "$") {
			continue
		}
		lname := strings.ToLower(name)
		if seen[lname] {
			return nil, bad("The query option %s is given more than once", lname)
		}
		seen[lname] = true
		switch lname {
		case "$filter":
			e, err := ParseFilter(value)
			if err != nil {
				return nil, err
			}
			if q.Where, q.Args, err = SQL(e, t.Column); err != nil {
				return nil, err
			}
		case "$select":
			if q.Select, err = parseSelect(t, value); err != nil {
				return nil, err
			}
		case "$orderby":
			if q.OrderBy, err = parseOrderBy(t, value); err != nil {
				return nil, err
			}
		case "$top":
			if q.Top, err = parseCount("$top", value); err != nil {
				return nil, err
			}
		case "$skip":
			if q.Skip, err = parseCount("$skip", value); err != nil {
				return nil, err
			}
		case "$count":
			switch strings.ToLower(value) {
			case "true":
				q.Count = true
			case "false":
			default:
				return nil, bad("$count must be true or false, not '%s'", gatehouse.Clip(value, 40))
			}
		case "$format":
			if v := strings.ToLower(value); v != "json" && !strings.HasPrefix(v, "application/json") {
				return nil, bad("$format %s is not supported; the sandbox answers JSON", gatehouse.Clip(value, 40))
			}
		case "$expand", "$search", "$apply", "$compute", "$levels", "$skiptoken", "$deltatoken", "$index", "$schemaversion":
			return nil, bad("The query option %s is not supported by the sandbox", lname)
		default:
			return nil, bad("The query parameter '%s' is not supported", gatehouse.Clip(name, 60))
		}
	}
	// The key breaks ties, so that pages never overlap.
	keys := make([]string, 0, len(t.Key))
	for _, k := range t.Key {
		keys = append(keys, data.Ident(k))
	}
	if q.OrderBy == "" {
		q.OrderBy = strings.Join(keys, ", ")
	} else {
		q.OrderBy += ", " + strings.Join(keys, ", ")
	}
	return q, nil
}

func parseCount(name, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > maxTop {
		return 0, bad("%s must be a whole number from 0 to %d, not '%s'", name, maxTop, gatehouse.Clip(v, 40))
	}
	return n, nil
}

func parseSelect(t *data.Table, v string) ([]*data.Column, error) {
	var out []*data.Column
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "*" {
			return nil, nil
		}
		if item == "" {
			return nil, bad("$select has an empty item")
		}
		if strings.Contains(item, "/") {
			return nil, bad("$select '%s' navigates to another entity, which the sandbox does not support", gatehouse.Clip(item, 60))
		}
		col := t.Column(item)
		if col == nil {
			return nil, bad("Could not find a property named '%s' on type '%s'", gatehouse.Clip(item, 60), t.Name)
		}
		if !seen[col.Name] {
			seen[col.Name] = true
			out = append(out, col)
		}
	}
	return out, nil
}

func parseOrderBy(t *data.Table, v string) (string, error) {
	var parts []string
	for _, item := range strings.Split(v, ",") {
		f := strings.Fields(item)
		if len(f) == 0 || len(f) > 2 {
			return "", bad("$orderby '%s' is not 'property [asc|desc]'", gatehouse.Clip(strings.TrimSpace(item), 60))
		}
		col := t.Column(f[0])
		if col == nil {
			return "", bad("Could not find a property named '%s' on type '%s'", gatehouse.Clip(f[0], 60), t.Name)
		}
		dir := "ASC"
		if len(f) == 2 {
			switch strings.ToLower(f[1]) {
			case "asc":
			case "desc":
				dir = "DESC"
			default:
				return "", bad("$orderby direction must be asc or desc, not '%s'", gatehouse.Clip(f[1], 20))
			}
		}
		parts = append(parts, data.Ident(col.Name)+" "+dir)
	}
	return strings.Join(parts, ", "), nil
}

// Columns lists the columns the query returns.
func (q *Query) Columns() []*data.Column {
	if q.Select != nil {
		return q.Select
	}
	out := make([]*data.Column, len(q.Table.Columns))
	for i := range q.Table.Columns {
		out[i] = &q.Table.Columns[i]
	}
	return out
}

// SelectSQL is the query of up to limit rows from offset, each row one
// column: the row as a JSON object, built by SQLite's json_object (one
// value per row to read keeps the cost per row low).
func (q *Query) SelectSQL(limit, offset int) (string, []any) {
	return q.sql(q.rowJSON(), limit, offset)
}

// RowIDSQL is the query of the rowids of up to limit rows from offset
// (tables only: views have no rowid).
func (q *Query) RowIDSQL(limit, offset int) (string, []any) {
	return q.sql("rowid", limit, offset)
}

// RowsByIDSQL reads the rows of n rowids (given as n parameters) as
// rowid and JSON object.
func (q *Query) RowsByIDSQL(n int) string {
	return "SELECT rowid, " + q.rowJSON() + " FROM " + data.Ident(q.Table.Name) +
		" WHERE rowid IN (" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

// signature names the columns a row's JSON holds, in order.
func (q *Query) signature() string {
	if q.Select == nil {
		return q.Table.Name + "|*"
	}
	names := make([]string, len(q.Select))
	for i, c := range q.Select {
		names[i] = c.Name
	}
	return q.Table.Name + "|" + strings.Join(names, ",")
}

// rowJSON is the json_object expression of a row's selected columns.
func (q *Query) rowJSON() string {
	cols := q.Columns()
	var b strings.Builder
	b.WriteString("json_object(")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		// Keys are the schema's column names: letters, digits and _.
		b.WriteString("'" + c.Name + "', ")
		if c.Type == data.Bool {
			id := data.Ident(c.Name)
			b.WriteString("json(CASE WHEN " + id + " IS NULL THEN NULL WHEN " + id + " = 0 THEN 'false' ELSE 'true' END)")
		} else {
			b.WriteString(data.Ident(c.Name))
		}
	}
	b.WriteString(")")
	return b.String()
}

func (q *Query) sql(what string, limit, offset int) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(what)
	b.WriteString(" FROM ")
	b.WriteString(data.Ident(q.Table.Name))
	if q.Where != "" {
		b.WriteString(" WHERE ")
		b.WriteString(q.Where)
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(q.OrderBy)
	b.WriteString(" LIMIT ? OFFSET ?")
	args := append(append([]any(nil), q.Args...), limit, offset)
	return b.String(), args
}

// CountSQL counts the rows the filter matches.
func (q *Query) CountSQL() (string, []any) {
	s := "SELECT count(*) FROM " + data.Ident(q.Table.Name)
	if q.Where != "" {
		s += " WHERE " + q.Where
	}
	return s, q.Args
}
