// Package entity simulates P21's Entity API: business objects (customers,
// orders, invoices, quotes, parts, warehouses, stock locations,
// suppliers, purchase orders, contacts, addresses) as JSON domain objects
// with PascalCase properties, listed, read one by one, filtered with
// $query (the OData filter grammar over the objects' properties), and —
// for customers, orders and contacts — created (POST without a key) and
// updated (POST with a key, or PUT), with validation errors in P21's
// {"Message", "Errors"} shape.
package entity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/odata"
	"github.com/gatehouse/gatehouse/wire"
)

// Prop maps a property of an object to a column.
type Prop struct {
	Name, Column string
	ReadOnly     bool
}

// Entity is a kind of object and where it lives.
type Entity struct {
	Name  string // Customer
	Path  string // sales/customers
	Table string
	Where string // a fixed condition (quotes are orders with projected_order 'Y')
	Props []Prop
	// save writes an object given by column; nil: read-only.
	save func(h *Handler, r *http.Request, rec data.Record, lines []data.LineInput) (any, error)
}

func (e *Entity) key() Prop { return e.Props[0] }

func (e *Entity) prop(name string) *Prop {
	for i := range e.Props {
		if strings.EqualFold(e.Props[i].Name, name) {
			return &e.Props[i]
		}
	}
	return nil
}

func p(name, col string) Prop  { return Prop{Name: name, Column: col} }
func ro(name, col string) Prop { return Prop{Name: name, Column: col, ReadOnly: true} }

var auditProps = []Prop{ro("DateCreated", "date_created"), ro("DateLastModified", "date_last_modified"), ro("LastMaintainedBy", "last_maintained_by")}

func withAudit(ps ...Prop) []Prop { return append(ps, auditProps...) }

var customer = &Entity{Name: "Customer", Path: "sales/customers", Table: "customer", Props: withAudit(
	p("CustomerCode", "customer_id"), p("CustomerName", "customer_name"), p("CompanyId", "company_id"), p("Address1", "mail_address1"),
	p("City", "mail_city"), p("State", "mail_state"), p("PostalCode", "mail_postal_code"), p("Phone", "phone_number"),
	p("Email", "email_address"), p("CreditLimit", "credit_limit"), p("SalesrepId", "salesrep_id"), p("TermsId", "terms_id"),
	p("Taxable", "taxable"), ro("DeleteFlag", "delete_flag")),
	save: func(h *Handler, r *http.Request, rec data.Record, _ []data.LineInput) (any, error) {
		return h.DB.SaveCustomer(r.Context(), user(r), rec)
	}}

var orderProps = withAudit(p("OrderNumber", "order_no"), p("CustomerCode", "customer_id"), p("CompanyId", "company_id"),
	p("OrderDate", "order_date"), p("RequestedDate", "requested_date"), p("PoNumber", "po_no"), p("ShipToName", "ship2_name"),
	p("LocationId", "location_id"), ro("Taker", "taker"), p("Approved", "approved"), ro("Completed", "completed"),
	p("Cancelled", "cancel_flag"), ro("Quote", "projected_order"))

var order = &Entity{Name: "Order", Path: "sales/orders", Table: "oe_hdr", Where: `"projected_order" = 'N'`, Props: orderProps,
	save: func(h *Handler, r *http.Request, rec data.Record, lines []data.LineInput) (any, error) {
		return h.DB.SaveOrder(r.Context(), user(r), rec, lines)
	}}

var lineProps = []Prop{p("LineNumber", "line_no"), p("ItemId", "item_id"), p("Quantity", "qty_ordered"), p("UnitOfMeasure", "unit_of_measure"),
	p("UnitPrice", "unit_price"), ro("ExtendedPrice", "extended_price"), ro("InvMastUid", "inv_mast_uid")}

var contact = &Entity{Name: "Contact", Path: "contacts", Table: "contacts", Props: withAudit(
	p("ContactId", "contact_id"), p("AddressId", "address_id"), p("FirstName", "first_name"), p("LastName", "last_name"),
	p("Title", "title"), p("Email", "email_address"), p("DirectPhone", "direct_phone")),
	save: func(h *Handler, r *http.Request, rec data.Record, _ []data.LineInput) (any, error) {
		return h.DB.SaveContact(r.Context(), user(r), rec)
	}}

var entities = []*Entity{
	customer, order, contact,
	{Name: "Customer", Path: "entity/customers", Table: "customer", Props: customer.Props, save: customer.save},
	{Name: "Invoice", Path: "sales/invoices", Table: "invoice_hdr", Props: withAudit(p("InvoiceNumber", "invoice_no"), p("OrderNumber", "order_no"),
		p("CustomerCode", "customer_id"), p("InvoiceDate", "invoice_date"), p("TotalAmount", "total_amount"), p("AmountPaid", "amount_paid"),
		p("PaidInFull", "paid_in_full_flag"))},
	{Name: "Quote", Path: "sales/quotes", Table: "oe_hdr", Where: `"projected_order" = 'Y'`, Props: orderProps},
	{Name: "Part", Path: "inventory/parts", Table: "inv_mast", Props: withAudit(p("ItemId", "item_id"), p("InvMastUid", "inv_mast_uid"),
		p("ItemDesc", "item_desc"), p("DefaultSellingUnit", "default_selling_unit"), p("ProductGroupId", "product_group_id"),
		p("DefaultSupplierId", "default_supplier_id"), p("ListPrice", "list_price"), p("StandardCost", "standard_cost"),
		p("Weight", "weight"), p("Stockable", "stockable"))},
	{Name: "Warehouse", Path: "inventory/warehouses", Table: "location", Props: withAudit(p("LocationId", "location_id"),
		p("LocationName", "location_name"), p("CompanyId", "company_id"), p("City", "mail_city"), p("State", "mail_state"))},
	{Name: "Location", Path: "inventory/locations", Table: "p21_view_inv_loc", Props: []Prop{p("LocationId", "location_id"),
		p("LocationName", "location_name"), p("InvMastUid", "inv_mast_uid"), p("ItemId", "item_id"), p("ItemDesc", "item_desc"),
		p("QtyOnHand", "qty_on_hand"), p("QtyAllocated", "qty_allocated"), p("QtyAvailable", "qty_available")}},
	{Name: "Supplier", Path: "purchasing/suppliers", Table: "supplier", Props: withAudit(p("SupplierId", "supplier_id"),
		p("SupplierName", "supplier_name"), p("Phone", "phone_number"), p("Email", "email_address"), p("Address1", "mail_address1"),
		p("City", "mail_city"), p("State", "mail_state"), p("PostalCode", "mail_postal_code"), p("TermsId", "default_terms_id"),
		p("RowStatusFlag", "row_status_flag"))},
	{Name: "PurchaseOrder", Path: "purchasing/purchaseorders", Table: "po_hdr", Props: withAudit(p("PoNumber", "po_no"),
		p("SupplierId", "supplier_id"), p("LocationId", "location_id"), p("OrderDate", "order_date"), p("Description", "po_desc"),
		p("TotalAmount", "total_amount"), p("Complete", "complete"))},
	{Name: "Address", Path: "addresses", Table: "address", Props: withAudit(p("Id", "id"), p("Name", "name"), p("Address1", "mail_address1"),
		p("Address2", "mail_address2"), p("City", "mail_city"), p("State", "mail_state"), p("PostalCode", "mail_postal_code"),
		p("Country", "mail_country"), p("Phone", "central_phone_number"), p("Email", "email_address"))},
}

func table(e *Entity) *data.Table {
	if t := data.Lookup("table", e.Table); t != nil {
		return t
	}
	return data.Lookup("view", e.Table)
}

// Handler serves the Entity API.
type Handler struct {
	DB *data.DB
}

const maxBody = 1 << 20

func user(r *http.Request) string { return r.Header.Get(wire.HeaderUser) }

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func message(w http.ResponseWriter, status int, msg string, errs ...string) {
	b, _ := json.Marshal(struct {
		Message string
		Errors  []string `json:",omitempty"`
	}{msg, errs})
	writeJSON(w, status, b)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/"), "/")
	var e *Entity
	var id string
	for _, cand := range entities {
		if strings.EqualFold(rest, cand.Path) {
			e = cand
			break
		}
		if len(rest) > len(cand.Path)+1 && strings.EqualFold(rest[:len(cand.Path)+1], cand.Path+"/") {
			e, id = cand, rest[len(cand.Path)+1:]
			break
		}
	}
	if e == nil || strings.Contains(id, "/") {
		message(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '"+gatehouse.Clip(r.URL.Path, 200)+"'.")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case strings.EqualFold(id, "new") && e.save != nil:
			h.template(w, e)
		case id != "":
			h.one(w, r, e, id)
		default:
			h.list(w, r, e)
		}
	case http.MethodPost, http.MethodPut:
		if e.save == nil {
			w.Header().Set("Allow", "GET")
			message(w, http.StatusMethodNotAllowed, fmt.Sprintf("The sandbox's %s objects are read-only.", e.Name))
			return
		}
		if r.Method == http.MethodPost && id != "" {
			message(w, http.StatusMethodNotAllowed, "POST goes to the collection ("+e.Path+"); PUT updates "+e.Path+"/{id}.")
			return
		}
		h.write(w, r, e, id)
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		message(w, http.StatusMethodNotAllowed, fmt.Sprintf("The requested resource does not support http method '%s'.", r.Method))
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, e *Entity) {
	t := table(e)
	where, args := e.Where, []any(nil)
	for k, v := range r.URL.Query() {
		if !strings.EqualFold(k, "$query") && !strings.EqualFold(k, "$filter") {
			continue
		}
		expr, err := odata.ParseFilter(v[0])
		if err == nil {
			var cond string
			cond, args, err = odata.SQL(expr, func(name string) *data.Column {
				if pr := e.prop(name); pr != nil {
					return t.Column(pr.Column)
				}
				return nil
			})
			if err == nil {
				if where != "" {
					where = "(" + where + ") AND " + cond
				} else {
					where = cond
				}
			}
		}
		if err != nil {
			var qe *odata.QueryError
			if errors.As(err, &qe) {
				message(w, http.StatusBadRequest, "The request is invalid.", strings.Replace(qe.Message, "Invalid filter expression", "Invalid $query", 1))
				return
			}
			message(w, http.StatusInternalServerError, "The sandbox could not read its data.")
			return
		}
	}
	recs, err := h.DB.Select(r.Context(), t, where, args, "")
	if err != nil {
		message(w, http.StatusInternalServerError, "The sandbox could not read its data.")
		return
	}
	b := []byte{'['}
	for i, rec := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = object(b, e.Props, rec)
	}
	writeJSON(w, http.StatusOK, append(b, ']'))
}

// object writes rec as e's object, its properties in order.
func object(b []byte, props []Prop, rec data.Record) []byte {
	b = append(b, '{')
	for i, pr := range props {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(pr.Name)
		v, _ := json.Marshal(rec[pr.Column])
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}')
}

func (h *Handler) find(r *http.Request, e *Entity, id string) (data.Record, error) {
	t := table(e)
	col := t.Column(e.key().Column)
	v, err := data.Coerce(col, id)
	if err != nil {
		return nil, data.ErrNotFound
	}
	where := data.Ident(col.Name) + " = ?"
	if e.Where != "" {
		where += " AND " + e.Where
	}
	recs, err := h.DB.Select(r.Context(), t, where, []any{v}, "")
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, data.ErrNotFound
	}
	return recs[0], nil
}

func (h *Handler) one(w http.ResponseWriter, r *http.Request, e *Entity, id string) {
	rec, err := h.find(r, e, id)
	if errors.Is(err, data.ErrNotFound) {
		message(w, http.StatusNotFound, fmt.Sprintf("%s %s was not found.", e.Name, gatehouse.Clip(id, 60)))
		return
	}
	if err != nil {
		message(w, http.StatusInternalServerError, "The sandbox could not read its data.")
		return
	}
	b := object(nil, e.Props, rec)
	if e.Table == "oe_hdr" && wantsLines(r) {
		b, err = h.withLines(r, b, rec)
		if err != nil {
			message(w, http.StatusInternalServerError, "The sandbox could not read its data.")
			return
		}
	}
	writeJSON(w, http.StatusOK, b)
}

// wantsLines reads extendedproperties=Lines or *.
func wantsLines(r *http.Request) bool {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, "extendedproperties") {
			for _, x := range strings.Split(v[0], ",") {
				if x = strings.TrimSpace(x); x == "*" || strings.EqualFold(x, "Lines") {
					return true
				}
			}
		}
	}
	return false
}

func (h *Handler) withLines(r *http.Request, obj []byte, hdr data.Record) ([]byte, error) {
	o, err := h.DB.GetOrder(r.Context(), hdr["order_no"].(string))
	if err != nil {
		return nil, err
	}
	b := append(obj[:len(obj)-1], `,"Lines":[`...)
	for i, l := range o.Lines {
		item, err := h.DB.Get(r.Context(), "inv_mast", l["inv_mast_uid"])
		if err != nil {
			return nil, err
		}
		l["item_id"] = item["item_id"]
		if i > 0 {
			b = append(b, ',')
		}
		b = object(b, lineProps, l)
	}
	return append(b, "]}"...), nil
}

func (h *Handler) template(w http.ResponseWriter, e *Entity) {
	rec := data.Record{}
	b := object(nil, e.Props, rec)
	if e == order {
		b = append(b[:len(b)-1], `,"Lines":[`...)
		b = object(b, lineProps, data.Record{})
		b = append(b, "]}"...)
	}
	writeJSON(w, http.StatusOK, b)
}

// write creates or updates an object: the presence of its key (in the
// body, or the path for PUT) means an update.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, e *Entity, id string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		message(w, http.StatusBadRequest, "The request body could not be read (at most 1 MiB).")
		return
	}
	var in map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil || dec.More() || in == nil {
		message(w, http.StatusBadRequest, "The request is invalid.", "The body must be one JSON object of "+e.Name+" properties.")
		return
	}
	rec := data.Record{}
	var errs []string
	var lines []data.LineInput
	for k, v := range in {
		if e == order && strings.EqualFold(k, "Lines") {
			ls, ok := v.([]any)
			if !ok && v != nil {
				errs = append(errs, "Lines must be a list of lines")
				continue
			}
			for _, x := range ls {
				lm, ok := x.(map[string]any)
				if !ok {
					errs = append(errs, "each of Lines must be an object")
					continue
				}
				li := data.LineInput{}
				for lk, lv := range lm {
					pr := findProp(lineProps, lk)
					switch {
					case pr == nil:
						errs = append(errs, fmt.Sprintf("%s is not a property of an order line", gatehouse.Clip(lk, 60)))
					case pr.ReadOnly:
					default:
						li[pr.Column] = lv
					}
				}
				lines = append(lines, li)
			}
			continue
		}
		pr := e.prop(k)
		switch {
		case pr == nil:
			errs = append(errs, fmt.Sprintf("%s is not a property of %s", gatehouse.Clip(k, 60), e.Name))
		case pr.ReadOnly:
			// Read-only properties (dates, taker) are ignored, as in a
			// template sent back.
		default:
			rec[pr.Column] = v
		}
	}
	if len(errs) > 0 {
		sortStrings(errs)
		message(w, http.StatusBadRequest, "The request is invalid.", errs...)
		return
	}
	key := e.key()
	if id != "" {
		if v, ok := rec[key.Column]; ok && fmt.Sprint(v) != id && !numEqual(v, id) {
			message(w, http.StatusBadRequest, "The request is invalid.", fmt.Sprintf("%s %v in the body is not the %s of the path (%s)", key.Name, v, key.Name, gatehouse.Clip(id, 40)))
			return
		}
		rec[key.Column] = id
	} else if v, ok := rec[key.Column]; ok && isZero(v) {
		delete(rec, key.Column)
	}
	_, update := rec[key.Column]
	if r.Method == http.MethodPut && !update {
		message(w, http.StatusBadRequest, "The request is invalid.", "PUT updates an existing "+e.Name+": give its "+key.Name)
		return
	}
	saved, err := e.save(h, r, rec, lines)
	var ve *data.ValidationError
	switch {
	case errors.As(err, &ve):
		msgs := make([]string, len(ve.Errors))
		for i, fe := range ve.Errors {
			msgs[i] = rename(e, fe.Message)
		}
		message(w, http.StatusBadRequest, "The request is invalid.", msgs...)
		return
	case errors.Is(err, data.ErrNotFound):
		message(w, http.StatusNotFound, fmt.Sprintf("%s %v was not found.", e.Name, rec[key.Column]))
		return
	case err != nil:
		message(w, http.StatusInternalServerError, "The sandbox could not save the "+e.Name+".")
		return
	}
	var b []byte
	if o, ok := saved.(*data.Order); ok {
		b, err = h.withLines(r, object(nil, e.Props, o.Header), o.Header)
		if err != nil {
			message(w, http.StatusInternalServerError, "The sandbox could not read its data.")
			return
		}
	} else {
		b = object(nil, e.Props, saved.(data.Record))
	}
	status := http.StatusOK
	if !update {
		status = http.StatusCreated
	}
	writeJSON(w, status, b)
}

func findProp(ps []Prop, name string) *Prop {
	for i := range ps {
		if strings.EqualFold(ps[i].Name, name) {
			return &ps[i]
		}
	}
	return nil
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case float64:
		return x == 0
	}
	return false
}

func numEqual(v any, id string) bool {
	f, ok := v.(float64)
	n, err := strconv.ParseFloat(id, 64)
	return ok && err == nil && f == n
}

// rename speaks of properties where the data layer speaks of columns.
func rename(e *Entity, msg string) string {
	props := append(append([]Prop(nil), e.Props...), lineProps...)
	words := strings.Fields(msg)
	for i, w := range words {
		trimmed := strings.TrimRight(w, ":,;")
		for _, pr := range props {
			if trimmed == pr.Column {
				words[i] = pr.Name + w[len(trimmed):]
				break
			}
		}
	}
	return strings.Join(words, " ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
