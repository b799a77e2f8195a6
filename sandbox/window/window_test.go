package window_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
	"github.com/gatehouse/gatehouse/sandbox/window"
)

func TestSetValues(t *testing.T) {
	ctx := context.Background()
	db := sandboxtest.DB(t)
	st := window.New(window.SalesPricePage)
	form := window.SalesPricePage.Tabs[0].Datawindows[0]
	for _, tc := range []struct {
		field string
		value any
		codes bool
		want  string // the code kept, or the error
	}{
		{"company_id", "ACME", false, "price_page_type_cd must be set before company_id"},
		{"price_page_type_cd", "supplier / product group", false, "214"},
		{"price_page_type_cd", "214", false, "Invalid value for price_page_type_cd: '214'"},
		{"price_page_type_cd", "215", true, "215"},
		{"product_group_id", "FA5", false, "company_id must be set before product_group_id"},
		{"company_id", "ACME", false, "ACME"},
		{"product_group_id", "NOPE", false, "Product Group 'NOPE' does not exist"},
		{"product_group_id", "fa5", false, "fa5"},
		{"supplier_id", 21201.0, false, "21201"},
		{"supplier_id", "21201.5", false, "Invalid value for supplier_id: '21201.5'"},
		{"effective_date", "2026-01-31", false, "2026-01-31T00:00:00Z"},
		{"effective_date", "31/01/2026", false, "Invalid value for effective_date: '31/01/2026'"},
		{"price_page_uid", "1", false, "The window has changes that are not saved: save or clear them before retrieving price_page_uid 1"},
		{"nope", "1", false, "Field 'nope' not found in datawindow 'form'"},
	} {
		_, err := st.Set(ctx, db, form, -1, tc.field, tc.value, tc.codes)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = st.Value(form, tc.field)
		}
		if got != tc.want {
			t.Errorf("Set(%s, %v, codes %v) = %q, want %q", tc.field, tc.value, tc.codes, got, tc.want)
		}
	}
	if _, err := window.New(window.SalesPricePage).Set(ctx, db, form, -1, "price_page_uid", "1", false); err == nil || err.Error() != "Price Page UID '1' does not exist" {
		t.Errorf("retrieving a missing record: %v", err)
	}
	if d := window.Display(form.Field("price_page_type_cd"), "215"); d != "Supplier / Discount Group" {
		t.Errorf("Display = %q", d)
	}
	// Read-only fields refuse changes; a list needs a row first.
	o := window.New(window.Order)
	hdr, items := window.Order.Tabs[0].Datawindows[0], window.Order.Tabs[1].Datawindows[0]
	if _, err := o.Set(ctx, db, hdr, -1, "taker", "x", false); err == nil || err.Error() != "Column taker is disabled" {
		t.Errorf("read-only: %v", err)
	}
	if _, err := o.Set(ctx, db, items, -1, "unit_quantity", "1", false); err == nil {
		t.Error("a change to a list without rows was accepted")
	}
	// Retrieving another record with unsaved changes is refused.
	if _, err := o.Set(ctx, db, hdr, -1, "po_no", "x", false); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Set(ctx, db, hdr, -1, "order_no", "1001001", false); err == nil {
		t.Error("retrieved over unsaved changes")
	}
}
