package data

import (
	"fmt"
	"sort"
	"strings"
)

// Type is the type of a column, as OData and the other APIs see it.
type Type int

// The column types of the sample database.
const (
	String Type = iota
	Int
	Decimal
	DateTime
	Bool
)

// Edm is the OData (CSDL) name of the type.
func (t Type) Edm() string {
	switch t {
	case Int:
		return "Edm.Int32"
	case Decimal:
		return "Edm.Decimal"
	case DateTime:
		return "Edm.DateTimeOffset"
	case Bool:
		return "Edm.Boolean"
	}
	return "Edm.String"
}

func (t Type) String() string {
	switch t {
	case Int:
		return "integer"
	case Decimal:
		return "decimal"
	case DateTime:
		return "date"
	case Bool:
		return "boolean"
	}
	return "string"
}

func (t Type) sql() string {
	switch t {
	case Int, Bool:
		return "INTEGER"
	case Decimal:
		return "REAL"
	}
	return "TEXT"
}

// Column is a column of a table or view.
type Column struct {
	Name     string
	Type     Type
	Nullable bool
}

// Table is a table or view of the sample database. Its columns are the
// only names a query may use.
type Table struct {
	Name    string
	Kind    string // "table" or "view"
	Key     []string
	Columns []Column
	// Doc says what the table holds ($metadata documentation).
	Doc string

	view  string // the view's SELECT
	index map[string]int
}

// Column finds a column by name, ignoring case (SQL Server's default
// collation, which P21 uses); nil when there is none.
func (t *Table) Column(name string) *Column {
	i, ok := t.index[strings.ToLower(name)]
	if !ok {
		return nil
	}
	return &t.Columns[i]
}

// Ident is a column or table name quoted for SQL. Names come only from
// the schema, never from a request.
func Ident(name string) string { return `"` + name + `"` }

func c(name string, t Type) Column  { return Column{Name: name, Type: t} }
func cn(name string, t Type) Column { return Column{Name: name, Type: t, Nullable: true} }

// audit columns every maintained table carries, as P21's do.
func audit(cols ...Column) []Column {
	return append(cols, c("date_created", DateTime), c("date_last_modified", DateTime), c("last_maintained_by", String))
}

// schema lists the sample database's tables and views.
var schema = []*Table{
	{Name: "supplier", Kind: "table", Key: []string{"supplier_id"}, Doc: "Suppliers (vendors).", Columns: audit(
		c("supplier_id", Int), c("supplier_name", String), c("phone_number", String), cn("email_address", String),
		c("mail_address1", String), c("mail_city", String), c("mail_state", String), c("mail_postal_code", String),
		c("default_terms_id", String), c("row_status_flag", Int))},
	{Name: "customer", Kind: "table", Key: []string{"customer_id"}, Doc: "Customers.", Columns: audit(
		c("customer_id", Int), c("customer_name", String), c("company_id", String),
		c("mail_address1", String), c("mail_city", String), c("mail_state", String), c("mail_postal_code", String),
		c("phone_number", String), cn("email_address", String), c("credit_limit", Decimal), c("salesrep_id", String),
		c("terms_id", String), c("taxable", Bool), c("delete_flag", String))},
	{Name: "contacts", Kind: "table", Key: []string{"contact_id"}, Doc: "Contacts of customers and suppliers (address_id).", Columns: audit(
		c("contact_id", Int), c("address_id", Int), c("first_name", String), c("last_name", String), cn("title", String),
		cn("email_address", String), cn("direct_phone", String), c("delete_flag", String))},
	{Name: "address", Kind: "table", Key: []string{"id"}, Doc: "Addresses; a customer's or supplier's id is its address id.", Columns: audit(
		c("id", Int), c("name", String), c("mail_address1", String), cn("mail_address2", String), c("mail_city", String),
		c("mail_state", String), c("mail_postal_code", String), c("mail_country", String), c("central_phone_number", String),
		cn("email_address", String), c("delete_flag", String))},
	{Name: "product_group", Kind: "table", Key: []string{"product_group_id"}, Doc: "Product groups.", Columns: audit(
		c("product_group_id", String), c("product_group_desc", String), c("company_id", String), c("delete_flag", String))},
	{Name: "inv_mast", Kind: "table", Key: []string{"inv_mast_uid"}, Doc: "Inventory items.", Columns: audit(
		c("inv_mast_uid", Int), c("item_id", String), c("item_desc", String), c("default_selling_unit", String),
		c("product_group_id", String), c("default_supplier_id", Int), c("list_price", Decimal), c("standard_cost", Decimal),
		c("weight", Decimal), c("stockable", Bool), c("delete_flag", String))},
	{Name: "location", Kind: "table", Key: []string{"location_id"}, Doc: "Locations (warehouses).", Columns: audit(
		c("location_id", Int), c("location_name", String), c("company_id", String), c("mail_city", String),
		c("mail_state", String), c("delete_flag", String))},
	{Name: "inv_loc", Kind: "table", Key: []string{"location_id", "inv_mast_uid"}, Doc: "Stock of each item at each location.", Columns: audit(
		c("location_id", Int), c("inv_mast_uid", Int), c("bin", String), c("qty_on_hand", Decimal), c("qty_allocated", Decimal),
		c("moving_average_cost", Decimal))},
	{Name: "oe_hdr", Kind: "table", Key: []string{"order_no"}, Doc: "Sales orders and quotes (projected_order = 'Y').", Columns: audit(
		c("order_no", String), c("customer_id", Int), c("company_id", String), c("order_date", DateTime),
		cn("requested_date", DateTime), cn("po_no", String), c("ship2_name", String), c("location_id", Int), c("taker", String),
		c("approved", String), c("completed", String), c("cancel_flag", String), c("projected_order", String), c("delete_flag", String))},
	{Name: "oe_line", Kind: "table", Key: []string{"oe_line_uid"}, Doc: "Sales order lines.", Columns: audit(
		c("oe_line_uid", Int), c("order_no", String), c("line_no", Int), c("inv_mast_uid", Int), c("qty_ordered", Decimal),
		c("unit_of_measure", String), c("unit_price", Decimal), c("extended_price", Decimal), c("delete_flag", String))},
	{Name: "invoice_hdr", Kind: "table", Key: []string{"invoice_no"}, Doc: "Invoices.", Columns: audit(
		c("invoice_no", String), c("order_no", String), c("customer_id", Int), c("invoice_date", DateTime),
		c("total_amount", Decimal), c("amount_paid", Decimal), c("paid_in_full_flag", String))},
	{Name: "po_hdr", Kind: "table", Key: []string{"po_no"}, Doc: "Purchase orders.", Columns: audit(
		c("po_no", Int), c("supplier_id", Int), c("location_id", Int), c("order_date", DateTime), cn("po_desc", String),
		c("total_amount", Decimal), c("complete", String), c("delete_flag", String))},
	{Name: "price_page", Kind: "table", Key: []string{"price_page_uid"}, Doc: "Sales price pages.", Columns: audit(
		c("price_page_uid", Int), c("price_page_type_cd", Int), c("company_id", String), cn("supplier_id", Int),
		cn("product_group_id", String), cn("discount_group_id", String), cn("customer_id", Int), cn("inv_mast_uid", Int),
		c("description", String), c("pricing_method_cd", Int), c("source_price_cd", Int), c("effective_date", DateTime),
		c("expiration_date", DateTime), c("totaling_method_cd", Int), c("totaling_basis_cd", Int),
		c("calculation_method_cd", Int), c("calculation_value1", Decimal), c("row_status_flag", Int))},

	{Name: "p21_view_oe_hdr", Kind: "view", Key: []string{"order_no"}, Doc: "Orders with their customer's name and total.",
		Columns: []Column{c("order_no", String), c("customer_id", Int), c("customer_name", String), c("order_date", DateTime),
			cn("po_no", String), c("location_id", Int), c("taker", String), c("line_count", Int), c("order_total", Decimal),
			c("completed", String), c("projected_order", String)},
		view: `SELECT h.order_no, h.customer_id, c.customer_name, h.order_date, h.po_no, h.location_id, h.taker,
  (SELECT count(*) FROM oe_line l WHERE l.order_no = h.order_no AND l.delete_flag = 'N') AS line_count,
  (SELECT round(coalesce(sum(l.extended_price), 0), 2) FROM oe_line l WHERE l.order_no = h.order_no AND l.delete_flag = 'N') AS order_total,
  h.completed, h.projected_order
FROM oe_hdr h JOIN customer c ON c.customer_id = h.customer_id WHERE h.delete_flag = 'N'`},
	{Name: "p21_view_inv_loc", Kind: "view", Key: []string{"location_id", "inv_mast_uid"}, Doc: "Stock by item and location, with names.",
		Columns: []Column{c("location_id", Int), c("location_name", String), c("inv_mast_uid", Int), c("item_id", String),
			c("item_desc", String), c("qty_on_hand", Decimal), c("qty_allocated", Decimal), c("qty_available", Decimal)},
		view: `SELECT l.location_id, loc.location_name, l.inv_mast_uid, m.item_id, m.item_desc, l.qty_on_hand, l.qty_allocated,
  l.qty_on_hand - l.qty_allocated AS qty_available
FROM inv_loc l JOIN inv_mast m ON m.inv_mast_uid = l.inv_mast_uid JOIN location loc ON loc.location_id = l.location_id`},
}

var byName = func() map[string]*Table {
	m := map[string]*Table{}
	for _, t := range schema {
		t.index = map[string]int{}
		for i, col := range t.Columns {
			t.index[col.Name] = i
		}
		m[t.Name] = t
	}
	return m
}()

// Lookup finds a table (kind "table") or view (kind "view") by name,
// ignoring case; nil when there is none of that kind.
func Lookup(kind, name string) *Table {
	t := byName[strings.ToLower(name)]
	if t == nil || t.Kind != kind {
		return nil
	}
	return t
}

// Tables lists the tables and views, sorted by name.
func Tables() []*Table {
	out := append([]*Table(nil), schema...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ddl is the schema as SQL.
func ddl() []string {
	var out []string
	for _, t := range schema {
		if t.Kind == "view" {
			out = append(out, fmt.Sprintf("CREATE VIEW %s AS %s", Ident(t.Name), t.view))
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE TABLE %s (", Ident(t.Name))
		for i, col := range t.Columns {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s", Ident(col.Name), col.Type.sql())
			if !col.Nullable {
				b.WriteString(" NOT NULL")
			}
			if col.Type == String {
				// Strings compare as SQL Server's default collation does:
				// without regard to case.
				b.WriteString(" COLLATE NOCASE")
			}
		}
		keys := make([]string, len(t.Key))
		for i, k := range t.Key {
			keys[i] = Ident(k)
		}
		fmt.Fprintf(&b, ", PRIMARY KEY (%s))", strings.Join(keys, ", "))
		out = append(out, b.String())
	}
	out = append(out,
		`CREATE UNIQUE INDEX inv_mast_item_id ON inv_mast (item_id)`,
		`CREATE INDEX oe_line_order ON oe_line (order_no, line_no)`,
		`CREATE INDEX oe_hdr_customer ON oe_hdr (customer_id)`,
		`CREATE INDEX contacts_address ON contacts (address_id)`)
	return out
}
