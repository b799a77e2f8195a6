package window

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/gatehouse/gatehouse/sandbox/data"
)

var yesNo = []string{"&Yes", "&No"}

// Order is the Order service: the Order Entry window.
var Order = register(&Service{
	Name: "Order", Title: "Order Entry", WindowName: "w_order_entry",
	Tabs: []*Tab{
		{Name: "TABPAGE_1", Title: "Order", Datawindows: []*Datawindow{{Name: "order", Fields: []*Field{
			{Name: "order_no", Label: "Order No", Type: Char, Key: true},
			{Name: "customer_id", Label: "Customer ID", Type: Long, Required: true, Lookup: &Lookup{"customer", "customer_id"}},
			{Name: "order_date", Label: "Order Date", Type: Datetime},
			{Name: "requested_date", Label: "Requested Date", Type: Datetime},
			{Name: "po_no", Label: "PO No", Type: Char},
			{Name: "ship2_name", Label: "Ship To Name", Type: Char},
			{Name: "location_id", Label: "Sales Location", Type: Long, Default: "10", Lookup: &Lookup{"location", "location_id"}},
			{Name: "taker", Label: "Taker", Type: Char, ReadOnly: true},
			{Name: "approved", Label: "Approved", Type: Checkbox, Default: "Y"},
			{Name: "completed", Label: "Completed", Type: Checkbox, ReadOnly: true},
		}}}},
		{Name: "TP_ITEMS", Title: "Items", Datawindows: []*Datawindow{{Name: "items", List: true, Fields: []*Field{
			{Name: "line_no", Label: "Line No", Type: Long, Key: true, ReadOnly: true},
			{Name: "oe_order_item_id", Label: "Item ID", Type: Char, Required: true, Lookup: &Lookup{"inv_mast", "item_id"}},
			{Name: "unit_quantity", Label: "Quantity", Type: Decimal, Required: true},
			{Name: "unit_of_measure", Label: "UOM", Type: Char},
			{Name: "unit_price", Label: "Unit Price", Type: Decimal},
			{Name: "extended_price", Label: "Extended Price", Type: Decimal, ReadOnly: true},
		}}}},
	},
	load: func(ctx context.Context, db *data.DB, st *State, key string) error {
		o, err := db.GetOrder(ctx, key)
		if err != nil {
			return err
		}
		hdr, items := st.Service.main(), st.Service.Tabs[1].Datawindows[0]
		fromRecord(hdr, st.rows[hdr][0], o.Header, nil)
		for _, l := range o.Lines {
			item, err := db.Get(ctx, "inv_mast", l["inv_mast_uid"])
			if err != nil {
				return err
			}
			l["item_id"] = item["item_id"]
			r := newRow(items)
			fromRecord(items, r, l, map[string]string{"oe_order_item_id": "item_id", "unit_quantity": "qty_ordered"})
			st.rows[items] = append(st.rows[items], r)
		}
		return nil
	},
	save: func(ctx context.Context, db *data.DB, user string, st *State) (string, error) {
		hdrDW, items := st.Service.main(), st.Service.Tabs[1].Datawindows[0]
		hdr := data.Record{}
		r := st.rows[hdrDW][0]
		for k, v := range r.changes() {
			hdr[k] = v
		}
		if !r.Existing {
			// A new order: the defaults count as given.
			for _, f := range hdrDW.Fields {
				if v := r.Values[f.Name]; v != "" && !f.ReadOnly && !f.Key {
					hdr[f.Name] = v
				}
			}
		} else {
			hdr["order_no"] = st.Key
		}
		var lines []data.LineInput
		for _, row := range st.rows[items] {
			ch := row.changes()
			if row.Existing && len(ch) == 0 {
				continue
			}
			l := data.LineInput{}
			for k, v := range ch {
				switch k {
				case "oe_order_item_id":
					l["item_id"] = v
				case "unit_quantity":
					l["qty_ordered"] = v
				default:
					l[k] = v
				}
			}
			if row.Existing {
				l["line_no"] = row.Values["line_no"]
				if _, ok := l["item_id"]; ok {
					return "", errf("Item ID of line %s cannot be changed: add a new line", row.Values["line_no"])
				}
			}
			lines = append(lines, l)
		}
		o, err := db.SaveOrder(ctx, user, hdr, lines)
		if err != nil {
			return "", err
		}
		return o.Header["order_no"].(string), nil
	},
	ask: func(ctx context.Context, db *data.DB, st *State, d *Datawindow, row int, f *Field, old string) *Question {
		if d.Name != "items" || f.Name != "unit_quantity" {
			return nil
		}
		r := st.rows[d][row]
		qty, err := strconv.ParseFloat(r.Values["unit_quantity"], 64)
		if err != nil || r.Values["oe_order_item_id"] == "" {
			return nil
		}
		item, err := db.Item(ctx, r.Values["oe_order_item_id"])
		if err != nil {
			return nil
		}
		loc := st.Value(st.Service.main(), "location_id")
		if loc == "" {
			loc = "10"
		}
		var avail float64
		if stock, err := db.Get(ctx, "p21_view_inv_loc", mustInt(loc), item["inv_mast_uid"]); err == nil {
			avail = stock["qty_available"].(float64)
		} else if !errors.Is(err, data.ErrNotFound) {
			return nil
		}
		if qty <= avail {
			return nil
		}
		return &Question{Name: "w_message", Title: "Epicor Prophet 21 - Order Entry",
			Message: fmt.Sprintf("Quantity ordered (%s) of item %s exceeds the quantity available (%s) at location %s. Do you want to continue?",
				r.Values["unit_quantity"], r.Values["oe_order_item_id"], strconv.FormatFloat(avail, 'f', -1, 64), loc),
			Buttons: yesNo,
			Answer: func(st *State, button int) {
				if button != 0 {
					r.Values["unit_quantity"] = old
				}
			}}
	},
})

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

var terms = []Choice{{"NET30", "Net 30 Days"}, {"NET45", "Net 45 Days"}, {"2/10N30", "2% 10 Net 30"}, {"COD", "Cash On Delivery"}}

// Customer is the Customer service: the Customer Maintenance window.
var Customer = register(&Service{
	Name: "Customer", Title: "Customer Maintenance", WindowName: "w_customer_master",
	Tabs: []*Tab{
		{Name: "TABPAGE_1", Title: "Customer", Datawindows: []*Datawindow{{Name: "customer", Fields: []*Field{
			{Name: "customer_id", Label: "Customer ID", Type: Long, Key: true},
			{Name: "customer_name", Label: "Customer Name", Type: Char, Required: true},
			{Name: "company_id", Label: "Company ID", Type: Char, Default: data.DefaultCompany},
			{Name: "mail_address1", Label: "Address", Type: Char},
			{Name: "mail_city", Label: "City", Type: Char},
			{Name: "mail_state", Label: "State", Type: Char},
			{Name: "mail_postal_code", Label: "Postal Code", Type: Char},
			{Name: "phone_number", Label: "Phone", Type: Char},
			{Name: "email_address", Label: "E-mail", Type: Char},
		}}}},
		{Name: "TABPAGE_2", Title: "Credit", Datawindows: []*Datawindow{{Name: "credit", Fields: []*Field{
			{Name: "credit_limit", Label: "Credit Limit", Type: Decimal},
			{Name: "terms_id", Label: "Terms", Type: Dropdown, Choices: terms, Default: "NET30"},
			{Name: "salesrep_id", Label: "Salesrep ID", Type: Char, Default: "1001"},
			{Name: "taxable", Label: "Taxable", Type: Checkbox, Default: "Y"},
		}}}},
	},
	load: loadForms("customer"),
	save: saveForms("customer_id", (*data.DB).SaveCustomer),
})

// loadForms loads the row of table the key names into every form of a
// window (the record windows: one row, no grid).
func loadForms(table string) func(ctx context.Context, db *data.DB, st *State, key string) error {
	return func(ctx context.Context, db *data.DB, st *State, key string) error {
		rec, err := db.Get(ctx, table, mustInt(key))
		if err != nil {
			return err
		}
		for _, t := range st.Service.Tabs {
			for _, d := range t.Datawindows {
				fromRecord(d, st.rows[d][0], rec, nil)
			}
		}
		return nil
	}
}

// saveForms saves the changes of a record window's forms with save, the
// record keyed by keyCol (a new record without it), and returns its key.
func saveForms(keyCol string, save func(*data.DB, context.Context, string, data.Record) (data.Record, error)) func(ctx context.Context, db *data.DB, user string, st *State) (string, error) {
	return func(ctx context.Context, db *data.DB, user string, st *State) (string, error) {
		rec := formChanges(st)
		if st.Key != "" {
			rec[keyCol] = st.Key
		}
		out, err := save(db, ctx, user, rec)
		if err != nil {
			return "", err
		}
		return strconv.FormatInt(out[keyCol].(int64), 10), nil
	}
}

// formChanges gathers the changed fields of every form of a window (for a
// new record, the defaults too).
func formChanges(st *State) data.Record {
	rec := data.Record{}
	for _, t := range st.Service.Tabs {
		for _, d := range t.Datawindows {
			if d.List {
				continue
			}
			r := st.rows[d][0]
			for k, v := range r.changes() {
				rec[k] = v
			}
			if !r.Existing {
				for _, f := range d.Fields {
					if v := r.Values[f.Name]; v != "" && !f.Key && !f.ReadOnly {
						rec[f.Name] = v
					}
				}
			}
		}
	}
	return rec
}

// Contact is the Contact service: Contact Maintenance.
var Contact = register(&Service{
	Name: "Contact", Title: "Contact Maintenance", WindowName: "w_contact_maint",
	Tabs: []*Tab{
		{Name: "TABPAGE_1", Title: "Contact", Datawindows: []*Datawindow{{Name: "contact", Fields: []*Field{
			{Name: "contact_id", Label: "Contact ID", Type: Long, Key: true},
			{Name: "address_id", Label: "Address ID", Type: Long, Required: true, Lookup: &Lookup{"address", "id"}},
			{Name: "first_name", Label: "First Name", Type: Char, Required: true},
			{Name: "last_name", Label: "Last Name", Type: Char, Required: true},
			{Name: "title", Label: "Title", Type: Char},
			{Name: "email_address", Label: "E-mail", Type: Char},
			{Name: "direct_phone", Label: "Direct Phone", Type: Char},
		}}}},
	},
	load: loadForms("contacts"),
	save: saveForms("contact_id", (*data.DB).SaveContact),
})

// SalesPricePage is the SalesPricePage service: Sales Price Page Entry. Its dropdowns take
// the display values of P21's codes (price_page_type_cd "Supplier /
// Product Group" is 214), and some fields must be set in order.
var SalesPricePage = register(&Service{
	Name: "SalesPricePage", Title: "Sales Price Page Entry", WindowName: "w_sales_price_page",
	Tabs: []*Tab{
		{Name: "FORM", Title: "Form", Datawindows: []*Datawindow{{Name: "form", Fields: []*Field{
			{Name: "price_page_uid", Label: "Price Page UID", Type: Long, Key: true},
			{Name: "price_page_type_cd", Label: "Page Type", Type: Dropdown, Required: true, Choices: []Choice{
				{"210", "Customer"}, {"211", "Customer / Item"}, {"214", "Supplier / Product Group"}, {"215", "Supplier / Discount Group"}}},
			{Name: "company_id", Label: "Company ID", Type: Char, Required: true, After: []string{"price_page_type_cd"}},
			{Name: "product_group_id", Label: "Product Group", Type: Char, After: []string{"price_page_type_cd", "company_id"},
				Lookup: &Lookup{"product_group", "product_group_id"}},
			{Name: "discount_group_id", Label: "Discount Group", Type: Char, After: []string{"price_page_type_cd", "company_id"}},
			{Name: "supplier_id", Label: "Supplier ID", Type: Long, After: []string{"price_page_type_cd"}, Lookup: &Lookup{"supplier", "supplier_id"}},
			{Name: "customer_id", Label: "Customer ID", Type: Long, After: []string{"price_page_type_cd"}, Lookup: &Lookup{"customer", "customer_id"}},
			{Name: "description", Label: "Description", Type: Char, Required: true},
			{Name: "pricing_method_cd", Label: "Pricing Method", Type: Dropdown, Default: "221", Choices: []Choice{{"220", "Value"}, {"221", "Source"}, {"222", "Order"}}},
			{Name: "source_price_cd", Label: "Source Price", Type: Dropdown, Default: "200", Choices: []Choice{
				{"200", "Supplier List Price"}, {"201", "Replacement Cost"}, {"202", "Average Cost"}}},
			{Name: "effective_date", Label: "Effective Date", Type: Datetime, Required: true},
			{Name: "expiration_date", Label: "Expiration Date", Type: Datetime, Required: true},
			{Name: "totaling_method_cd", Label: "Totaling Method", Type: Dropdown, Default: "1300", Choices: []Choice{{"1300", "Item"}, {"1301", "Order"}}},
			{Name: "totaling_basis_cd", Label: "Totaling Basis", Type: Dropdown, Default: "200", Choices: []Choice{
				{"200", "Supplier List Price"}, {"201", "Replacement Cost"}, {"202", "Average Cost"}}},
			{Name: "row_status_flag", Label: "Status", Type: Dropdown, Default: "704", Choices: []Choice{{"704", "Active"}, {"705", "Inactive"}, {"706", "Expired"}}},
		}}}},
		{Name: "VALUES", Title: "Values", Datawindows: []*Datawindow{{Name: "values", Fields: []*Field{
			{Name: "calculation_method_cd", Label: "Calculation Method", Type: Dropdown, Default: "211", Choices: []Choice{
				{"211", "Multiplier"}, {"228", "Difference"}, {"229", "Mark Up"}, {"230", "Percentage"}, {"1292", "Fixed Price"}}},
			{Name: "calculation_value1", Label: "Value 1", Type: Decimal},
		}}}},
	},
	load: loadForms("price_page"),
	save: saveForms("price_page_uid", (*data.DB).SavePricePage),
})
