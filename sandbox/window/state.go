package window

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
)

// Row is a row of a datawindow: its values as codes ("" for none), which
// of them were changed, and whether it was retrieved from the database.
type Row struct {
	Values   map[string]string
	changed  map[string]bool
	Existing bool
}

// State is a window being edited.
type State struct {
	Service *Service
	// Key is the key of the retrieved record, "" for a new one.
	Key     string
	Tab     *Tab
	rows    map[*Datawindow][]*Row
	current map[*Datawindow]int
	// Changed says there are changes not saved.
	Changed bool
}

// New opens a window on a new record, its form fields at their defaults.
func New(s *Service) *State {
	st := &State{Service: s, Tab: s.Tabs[0], rows: map[*Datawindow][]*Row{}, current: map[*Datawindow]int{}}
	for _, t := range s.Tabs {
		for _, d := range t.Datawindows {
			if !d.List {
				st.rows[d] = []*Row{newRow(d)}
			}
		}
	}
	return st
}

func newRow(d *Datawindow) *Row {
	r := &Row{Values: map[string]string{}, changed: map[string]bool{}}
	for _, f := range d.Fields {
		r.Values[f.Name] = f.Default
	}
	return r
}

// Rows are the rows of a datawindow.
func (st *State) Rows(d *Datawindow) []*Row { return st.rows[d] }

// Current is the current row of a datawindow (-1 for a list without rows).
func (st *State) Current(d *Datawindow) int {
	if len(st.rows[d]) == 0 {
		return -1
	}
	return st.current[d]
}

// SelectRow makes row n current.
func (st *State) SelectRow(d *Datawindow, n int) error {
	if !d.List {
		return errf("Datawindow '%s' is a form: it has no rows to select", d.Name)
	}
	if n < 0 || n >= len(st.rows[d]) {
		return errf("Row %d does not exist in datawindow '%s' (it has %d rows, numbered from 0)", n, d.Name, len(st.rows[d]))
	}
	st.current[d] = n
	return nil
}

// AddRow adds a row to a list and makes it current.
func (st *State) AddRow(d *Datawindow) (int, error) {
	if !d.List {
		return 0, errf("Datawindow '%s' is a form: rows are added to lists", d.Name)
	}
	if len(st.rows[d]) >= maxRows {
		return 0, errf("Datawindow '%s' has %d rows, the sandbox's most", d.Name, maxRows)
	}
	st.rows[d] = append(st.rows[d], newRow(d))
	st.current[d] = len(st.rows[d]) - 1
	st.Changed = true
	return st.current[d], nil
}

const maxRows = 200

// Value is a field's code in the current row of its datawindow.
func (st *State) Value(d *Datawindow, field string) string {
	rows := st.rows[d]
	if len(rows) == 0 {
		return ""
	}
	return rows[st.Current(d)].Values[field]
}

// Set changes a field of a datawindow's current row (row -1) or of row n.
// value is what a client sent (a string, a JSON number or boolean, or
// nil); codes says it is a code rather than a display value. Giving the
// key of the window's main datawindow retrieves that record. It returns
// the question the change raised, if any.
func (st *State) Set(ctx context.Context, db *data.DB, d *Datawindow, row int, name string, value any, codes bool) (*Question, error) {
	f := d.Field(name)
	if f == nil {
		return nil, errf("Field '%s' not found in datawindow '%s'", gatehouse.Clip(name, 60), d.Name)
	}
	v, err := canonical(f, value, codes)
	if err != nil {
		return nil, err
	}
	if f.Key && d == st.Service.main() {
		return nil, st.retrieve(ctx, db, f, v)
	}
	if f.ReadOnly {
		return nil, errf("Column %s is disabled", f.Name)
	}
	rows := st.rows[d]
	if row < 0 {
		row = st.Current(d)
	}
	if row < 0 {
		return nil, errf("Datawindow '%s' has no rows: add one first", d.Name)
	}
	if row >= len(rows) {
		return nil, errf("Row %d does not exist in datawindow '%s'", row, d.Name)
	}
	r := rows[row]
	for _, a := range f.After {
		if r.Values[a] == "" {
			return nil, errf("%s must be set before %s", a, f.Name)
		}
	}
	if f.Lookup != nil && v != "" {
		ok, err := db.Exists(ctx, f.Lookup.Table, f.Lookup.Column, v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errf("%s '%s' does not exist", f.Label, gatehouse.Clip(v, 60))
		}
	}
	old := r.Values[f.Name]
	r.Values[f.Name] = v
	r.changed[f.Name] = true
	st.Changed = true
	if st.Service.ask != nil && v != old {
		return st.Service.ask(ctx, db, st, d, row, f, old), nil
	}
	return nil, nil
}

// retrieve loads the record whose key is v into the window.
func (st *State) retrieve(ctx context.Context, db *data.DB, f *Field, v string) error {
	if v == "" {
		return errf("%s is required to retrieve a record", f.Name)
	}
	if v == st.Key {
		return nil
	}
	if st.Changed {
		return errf("The window has changes that are not saved: save or clear them before retrieving %s %s", f.Name, v)
	}
	fresh := New(st.Service)
	if err := st.Service.load(ctx, db, fresh, v); err != nil {
		if errors.Is(err, data.ErrNotFound) {
			return errf("%s '%s' does not exist", f.Label, gatehouse.Clip(v, 60))
		}
		return err
	}
	fresh.Key = v
	fresh.Tab = st.Tab
	*st = *fresh
	return nil
}

// Load retrieves the record with key into a new state.
func Load(ctx context.Context, db *data.DB, s *Service, key string) (*State, error) {
	st := New(s)
	if err := s.load(ctx, db, st, key); err != nil {
		return nil, err
	}
	st.Key = key
	return st, nil
}

// Save writes the window through the data layer and retrieves the saved
// record back into it. Validation failures are *data.ValidationError or
// *Error values.
func (st *State) Save(ctx context.Context, db *data.DB, user string) error {
	var errs []string
	for _, t := range st.Service.Tabs {
		for _, d := range t.Datawindows {
			for i, r := range st.rows[d] {
				for _, f := range d.Fields {
					if f.Required && !f.Key && !f.ReadOnly && r.Values[f.Name] == "" && !r.Existing {
						if d.List {
							errs = append(errs, fmt.Sprintf("%s row %d: %s is required", d.Name, i+1, f.Name))
						} else {
							errs = append(errs, f.Name+" is required")
						}
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return &Error{Message: strings.Join(errs, "; ")}
	}
	key, err := st.Service.save(ctx, db, user, st)
	if err != nil {
		return err
	}
	fresh, err := Load(ctx, db, st.Service, key)
	if err != nil {
		return err
	}
	fresh.Tab = st.Tab
	*st = *fresh
	return nil
}

// changes lists the changed values of a row, keyed by field.
func (r *Row) changes() data.Record {
	out := data.Record{}
	for k := range r.changed {
		if v := r.Values[k]; v != "" {
			out[k] = v
		} else {
			out[k] = nil
		}
	}
	return out
}

// canonical reads a value given for f as its code.
func canonical(f *Field, value any, codes bool) (string, error) {
	var s string
	switch x := value.(type) {
	case nil:
		s = ""
	case string:
		s = strings.TrimSpace(x)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = map[bool]string{true: "Y", false: "N"}[x]
	default:
		return "", errf("Invalid value for %s: %v", f.Name, gatehouse.Clip(fmt.Sprint(value), 60))
	}
	if s == "" {
		return "", nil
	}
	invalid := func() error { return errf("Invalid value for %s: '%s'", f.Name, gatehouse.Clip(s, 60)) }
	switch f.Type {
	case Long:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fl, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || fl != float64(int64(fl)) {
				return "", invalid()
			}
			n = int64(fl)
		}
		return strconv.FormatInt(n, 10), nil
	case Decimal:
		fl, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return "", invalid()
		}
		return strconv.FormatFloat(fl, 'f', -1, 64), nil
	case Datetime:
		t, ok := data.ParseDateTime(s)
		if !ok {
			return "", invalid()
		}
		return t.Format(time.RFC3339), nil
	case Checkbox:
		switch strings.ToUpper(s) {
		case "Y", "ON", "TRUE", "1", "YES":
			return "Y", nil
		case "N", "OFF", "FALSE", "0", "NO":
			return "N", nil
		}
		return "", invalid()
	case Dropdown:
		for _, c := range f.Choices {
			if codes && strings.EqualFold(c.Code, s) || !codes && strings.EqualFold(c.Display, s) {
				return c.Code, nil
			}
		}
		return "", invalid()
	}
	return s, nil
}

// Display is a code as the window shows it.
func Display(f *Field, code string) string {
	switch f.Type {
	case Checkbox:
		switch code {
		case "Y":
			return "ON"
		case "N":
			return "OFF"
		}
	case Dropdown:
		for _, c := range f.Choices {
			if c.Code == code {
				return c.Display
			}
		}
	}
	return code
}

// fromRecord sets a row's values from a database record.
func fromRecord(d *Datawindow, r *Row, rec data.Record, names map[string]string) {
	for _, f := range d.Fields {
		col := f.Name
		if n, ok := names[f.Name]; ok {
			col = n
		}
		v, ok := rec[col]
		if !ok {
			continue
		}
		r.Values[f.Name] = codeOf(f, v)
	}
	r.Existing = true
}

func codeOf(f *Field, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "Y"
		}
		return "N"
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// Edit is a field and its value in the Transaction API's shape.
type Edit struct {
	Name  string
	Value any
}

// RowOut is a row in the Transaction API's shape.
type RowOut struct {
	Edits             []Edit
	RelativeDateEdits []any
}

// Element is a datawindow in the Transaction API's shape.
type Element struct {
	Name  string
	Type  string
	Keys  []string
	Rows  []RowOut
	Table string `json:",omitempty"`
}

// Elements renders the window's datawindows, every field of every row,
// as codes or as display values.
func (st *State) Elements(codes bool) []Element {
	var out []Element
	for _, t := range st.Service.Tabs {
		for _, d := range t.Datawindows {
			out = append(out, st.element(t, d, codes))
		}
	}
	return out
}

func (st *State) element(t *Tab, d *Datawindow, codes bool) Element {
	e := Element{Name: ElementName(t, d), Type: "Form", Keys: []string{}, Rows: []RowOut{}}
	if d.List {
		e.Type = "List"
	}
	if k := d.KeyField(); k != nil {
		e.Keys = append(e.Keys, k.Name)
	}
	for _, r := range st.rows[d] {
		ro := RowOut{Edits: []Edit{}, RelativeDateEdits: []any{}}
		for _, f := range d.Fields {
			var v any
			if c := r.Values[f.Name]; c != "" {
				if codes {
					v = c
				} else {
					v = Display(f, c)
				}
			}
			ro.Edits = append(ro.Edits, Edit{Name: f.Name, Value: v})
		}
		e.Rows = append(e.Rows, ro)
	}
	return e
}
