// Package window is the sandbox's data-driven model of P21 windows: each
// service (Order, Customer, Contact, SalesPricePage) is a window of tabs,
// each tab holds datawindows (a form, or a list of rows), each datawindow
// fields with a type, a label, valid values and rules. A State is a
// window being edited: the Transaction API fills one from a request and
// saves it; the Interactive API keeps one open across requests. Both save
// through the shared data layer, with its business rules.
package window

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/sandbox/data"
)

// FieldType is a field's type, as service definitions name it.
type FieldType string

// The field types.
const (
	Char     FieldType = "Char"
	Long     FieldType = "Long"
	Decimal  FieldType = "Decimal"
	Datetime FieldType = "Datetime"
	// Checkbox takes Y/N as codes and ON/OFF as display values.
	Checkbox FieldType = "Checkbox"
	// Dropdown takes one of its Choices.
	Dropdown FieldType = "Dropdown"
)

// Choice is a valid value of a dropdown: its code and what the window
// shows.
type Choice struct {
	Code    string
	Display string
}

// Field is a field of a datawindow.
type Field struct {
	Name     string
	Label    string
	Type     FieldType
	Required bool
	// Key identifies an existing record: giving it retrieves the record.
	Key bool
	// ReadOnly fields are computed or assigned; changing one is refused.
	ReadOnly bool
	Choices  []Choice
	// Default is the value of a new record (a code).
	Default string
	// After lists fields that must be set before this one, as P21's
	// windows require for some fields.
	After []string
	// Lookup names the table and column a value must exist in.
	Lookup *Lookup
}

// Lookup is a reference a field's value must satisfy.
type Lookup struct{ Table, Column string }

// Datawindow is a form (one row) or a list (rows) of fields.
type Datawindow struct {
	Name   string
	List   bool
	Fields []*Field
}

// Field finds a field by name, ignoring case.
func (d *Datawindow) Field(name string) *Field {
	for _, f := range d.Fields {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// Tab is a tab page of a window.
type Tab struct {
	Name        string
	Title       string
	Datawindows []*Datawindow
}

// Question is a response window a service can open: a message and its
// buttons (tools cb_1, cb_2, …), the first the default answer.
type Question struct {
	Name    string // "w_message"
	Title   string
	Message string
	Buttons []string // texts: "&Yes", "&No"
	// Answer applies the button chosen (0 for the first) to the window.
	Answer func(st *State, button int)
}

// Service is a window and what it saves to.
type Service struct {
	Name       string // the service name: Order
	Title      string // the window title: Order Entry
	WindowName string // w_order_entry
	Tabs       []*Tab
	// load retrieves an existing record into a new state by its key.
	load func(ctx context.Context, db *data.DB, st *State, key string) error
	// save writes the state and returns the saved record's key.
	save func(ctx context.Context, db *data.DB, user string, st *State) (string, error)
	// ask may open a question after a field changed.
	ask func(ctx context.Context, db *data.DB, st *State, dw *Datawindow, row int, f *Field, old string) *Question
}

// Tab finds a tab by name, ignoring case.
func (s *Service) Tab(name string) *Tab {
	for _, t := range s.Tabs {
		if strings.EqualFold(t.Name, name) {
			return t
		}
	}
	return nil
}

// Datawindow finds a datawindow by name, ignoring case and a "d_" prefix
// (v1 clients name d_form what v2 clients name form), with its tab.
func (s *Service) Datawindow(name string) (*Tab, *Datawindow) {
	name = strings.ToLower(name)
	for _, t := range s.Tabs {
		for _, d := range t.Datawindows {
			if n := strings.ToLower(d.Name); n == name || "d_"+n == name {
				return t, d
			}
		}
	}
	return nil, nil
}

// Element finds a datawindow by its Transaction API name, TAB.datawindow.
func (s *Service) Element(name string) (*Tab, *Datawindow) {
	tab, dw, ok := strings.Cut(name, ".")
	if !ok {
		return nil, nil
	}
	t := s.Tab(tab)
	if t == nil {
		return nil, nil
	}
	for _, d := range t.Datawindows {
		if strings.EqualFold(d.Name, dw) {
			return t, d
		}
	}
	return nil, nil
}

// ElementName is a datawindow's Transaction API name.
func ElementName(t *Tab, d *Datawindow) string { return t.Name + "." + d.Name }

// KeyField is the datawindow's key field, nil when it has none.
func (d *Datawindow) KeyField() *Field {
	for _, f := range d.Fields {
		if f.Key {
			return f
		}
	}
	return nil
}

// main is the service's first datawindow, the one its key is in.
func (s *Service) main() *Datawindow { return s.Tabs[0].Datawindows[0] }

var services = map[string]*Service{}
var serviceOrder []*Service

func register(s *Service) *Service {
	services[strings.ToLower(s.Name)] = s
	serviceOrder = append(serviceOrder, s)
	return s
}

// LookupService finds a service by name, ignoring case.
func LookupService(name string) *Service { return services[strings.ToLower(strings.TrimSpace(name))] }

// ByTitle finds a service by its window title, ignoring case.
func ByTitle(title string) *Service {
	for _, s := range serviceOrder {
		if strings.EqualFold(s.Title, strings.TrimSpace(title)) {
			return s
		}
	}
	return nil
}

// Services lists the services in the order they are defined.
func Services() []*Service { return serviceOrder }

// Error is a value or an action the window refuses, in the words P21
// uses.
type Error struct{ Message string }

func (e *Error) Error() string { return e.Message }

func errf(format string, args ...any) error { return &Error{Message: fmt.Sprintf(format, args...)} }
