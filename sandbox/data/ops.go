package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The sample's company and defaults for new records.
const (
	DefaultCompany  = "ACME"
	DefaultLocation = int64(10)
	// RowActive and RowInactive are P21's row_status_flag values.
	RowActive   = int64(704)
	RowInactive = int64(705)
)

// input checks the values given for a table's columns: every name must
// be a column (ignoring case) that callers may write, every value of its
// type. It returns the values keyed by the columns' names.
func input(t *Table, in Record, errs *ValidationError) Record {
	out := Record{}
	for _, k := range sortedInput(in) {
		col := t.Column(k)
		if col == nil || isAudit(col.Name) {
			errs.Errors = append(errs.Errors, FieldError{Field: k, Message: fmt.Sprintf("%s is not a field of %s", k, t.Name)})
			continue
		}
		v, err := Coerce(col, in[k])
		if err != nil {
			var fe *FieldError
			errors.As(err, &fe)
			errs.Errors = append(errs.Errors, *fe)
			continue
		}
		if v == nil && !col.Nullable {
			errs.Errors = append(errs.Errors, FieldError{Field: col.Name, Message: col.Name + " cannot be empty"})
			continue
		}
		if s, ok := v.(string); ok && col.Type == String {
			v = strings.TrimSpace(s)
		}
		out[col.Name] = v
	}
	return out
}

func sortedInput(in Record) []string {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func isAudit(name string) bool {
	return name == "date_created" || name == "date_last_modified" || name == "last_maintained_by"
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Errors = append(e.Errors, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) err() error {
	if len(e.Errors) == 0 {
		return nil
	}
	return e
}

func (db *DB) now() string { return db.clock.Now().UTC().Truncate(time.Second).Format(time.RFC3339) }

// inTx runs f in a write transaction.
func (db *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	err = tx.Commit()
	// Counted even when the commit failed: it may have reached the file.
	db.gen.Add(1)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

func insertRow(ctx context.Context, tx *sql.Tx, t *Table, rec Record) error {
	keys := sortedKeys(t, rec)
	names := make([]string, len(keys))
	args := make([]any, len(keys))
	for i, k := range keys {
		names[i], args[i] = Ident(k), rec[k]
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", Ident(t.Name), strings.Join(names, ", "),
		strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", "))
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sandbox: insert into %s: %w", t.Name, err)
	}
	return nil
}

func updateRow(ctx context.Context, tx *sql.Tx, t *Table, rec Record, key ...any) error {
	keys := sortedKeys(t, rec)
	if len(keys) == 0 {
		return nil
	}
	sets := make([]string, len(keys))
	args := make([]any, 0, len(keys)+len(key))
	for i, k := range keys {
		sets[i] = Ident(k) + " = ?"
		args = append(args, rec[k])
	}
	args = append(args, key...)
	q := fmt.Sprintf("UPDATE %s SET %s WHERE %s", Ident(t.Name), strings.Join(sets, ", "), keyWhere(t))
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sandbox: update %s: %w", t.Name, err)
	}
	return nil
}

func nextInt(ctx context.Context, tx *sql.Tx, table, col string, floor int64) (int64, error) {
	var n sql.NullInt64
	if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT max(CAST(%s AS INTEGER)) FROM %s", Ident(col), Ident(table))).Scan(&n); err != nil {
		return 0, fmt.Errorf("sandbox: %w", err)
	}
	if !n.Valid || n.Int64 < floor {
		return floor, nil
	}
	return n.Int64 + 1, nil
}

// existingID reads the key column of a record to save: update is false
// when the record names no row (a create). For an update it returns the
// id, refusing one that is not a valid key (a ValidationError) or names no
// row of t (ErrNotFound, named as what).
func existingID(ctx context.Context, tx *sql.Tx, t *Table, in Record, keyCol, what string) (id int64, update bool, err error) {
	idv, update := keyOf(in, keyCol)
	if !update {
		return 0, false, nil
	}
	v, cerr := Coerce(t.Column(keyCol), idv)
	if cerr != nil {
		return 0, true, &ValidationError{Errors: []FieldError{*cerr.(*FieldError)}}
	}
	id = v.(int64)
	ok, err := exists(ctx, tx, t.Name, Ident(keyCol)+" = ?", id)
	if err != nil {
		return id, true, err
	}
	if !ok {
		return id, true, fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	return id, true, nil
}

func exists(ctx context.Context, tx *sql.Tx, table, where string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT 1 FROM %s WHERE %s", Ident(table), where), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sandbox: %w", err)
	}
	return true, nil
}

// stamp sets the audit columns of a written record.
func (db *DB) stamp(rec Record, user string, created bool) {
	now := db.now()
	if created {
		rec["date_created"] = now
	}
	rec["date_last_modified"] = now
	rec["last_maintained_by"] = user
}

func setDefault(rec Record, col string, v any) {
	if _, ok := rec[col]; !ok {
		rec[col] = v
	}
}

func keyOf(in Record, col string) (any, bool) {
	for k, v := range in {
		if strings.EqualFold(k, col) {
			if v == nil {
				return nil, false
			}
			if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
				return nil, false
			}
			if f, ok := v.(float64); ok && f == 0 {
				return nil, false
			}
			return v, true
		}
	}
	return nil, false
}

func without(in Record, col string) Record {
	out := Record{}
	for k, v := range in {
		if !strings.EqualFold(k, col) {
			out[k] = v
		}
	}
	return out
}

var customerAddress = map[string]string{"customer_name": "name", "mail_address1": "mail_address1", "mail_city": "mail_city",
	"mail_state": "mail_state", "mail_postal_code": "mail_postal_code", "phone_number": "central_phone_number", "email_address": "email_address"}

// SaveCustomer creates a customer (no customer_id given) or changes the
// columns given of an existing one, keeping its address (whose id is the
// customer's) in step. It returns the customer as saved.
func (db *DB) SaveCustomer(ctx context.Context, user string, in Record) (Record, error) {
	t := Lookup("table", "customer")
	var out Record
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		errs := &ValidationError{}
		id, update, err := existingID(ctx, tx, t, in, "customer_id", "customer")
		if err != nil {
			return err
		}
		rec := input(t, without(in, "customer_id"), errs)
		if s, ok := rec["customer_name"].(string); !update && (!ok || s == "") {
			errs.add("customer_name", "customer_name is required")
		}
		if s, ok := rec["mail_state"].(string); ok && s != "" && (len(s) != 2 || strings.ToUpper(s) != s && strings.ToLower(s) != s) {
			errs.add("mail_state", "mail_state must be a 2-letter state code")
		}
		if v, ok := rec["credit_limit"].(float64); ok && v < 0 {
			errs.add("credit_limit", "credit_limit cannot be negative")
		}
		if s, ok := rec["email_address"].(string); ok && s != "" && !strings.Contains(s, "@") {
			errs.add("email_address", "email_address '%s' is not an e-mail address", s)
		}
		if err := errs.err(); err != nil {
			return err
		}
		if s, ok := rec["mail_state"].(string); ok {
			rec["mail_state"] = strings.ToUpper(s)
		}
		if !update {
			var err error
			if id, err = nextInt(ctx, tx, "customer", "customer_id", 100101); err != nil {
				return err
			}
			rec["customer_id"] = id
			for col, v := range map[string]any{"company_id": DefaultCompany, "mail_address1": "", "mail_city": "", "mail_state": "",
				"mail_postal_code": "", "phone_number": "", "credit_limit": 0.0, "salesrep_id": "1001", "terms_id": "NET30",
				"taxable": true, "delete_flag": "N"} {
				setDefault(rec, col, v)
			}
			db.stamp(rec, user, true)
			if err := insertRow(ctx, tx, t, rec); err != nil {
				return err
			}
			addr := Record{"id": id, "mail_country": "USA", "delete_flag": "N"}
			for from, to := range customerAddress {
				addr[to] = rec[from]
			}
			db.stamp(addr, user, true)
			if err := insertRow(ctx, tx, Lookup("table", "address"), addr); err != nil {
				return err
			}
		} else {
			db.stamp(rec, user, false)
			if err := updateRow(ctx, tx, t, rec, id); err != nil {
				return err
			}
			addr := Record{}
			for from, to := range customerAddress {
				if v, ok := rec[from]; ok {
					addr[to] = v
				}
			}
			if len(addr) > 0 {
				db.stamp(addr, user, false)
				if err := updateRow(ctx, tx, Lookup("table", "address"), addr, id); err != nil {
					return err
				}
			}
		}
		out, err = db.getIn(ctx, tx, t, id)
		return err
	})
	return out, err
}

// SaveContact creates a contact (no contact_id) or changes one.
func (db *DB) SaveContact(ctx context.Context, user string, in Record) (Record, error) {
	t := Lookup("table", "contacts")
	var out Record
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		errs := &ValidationError{}
		id, update, err := existingID(ctx, tx, t, in, "contact_id", "contact")
		if err != nil {
			return err
		}
		rec := input(t, without(in, "contact_id"), errs)
		if !update {
			for _, f := range []string{"first_name", "last_name"} {
				if s, _ := rec[f].(string); s == "" {
					errs.add(f, "%s is required", f)
				}
			}
			if _, ok := rec["address_id"]; !ok {
				errs.add("address_id", "address_id is required (the customer or supplier the contact belongs to)")
			}
		}
		if a, ok := rec["address_id"]; ok {
			ok, err := exists(ctx, tx, "address", "id = ?", a)
			if err != nil {
				return err
			}
			if !ok {
				errs.add("address_id", "address_id %v is not a customer or supplier", a)
			}
		}
		if s, ok := rec["email_address"].(string); ok && s != "" && !strings.Contains(s, "@") {
			errs.add("email_address", "email_address '%s' is not an e-mail address", s)
		}
		if err := errs.err(); err != nil {
			return err
		}
		if !update {
			var err error
			if id, err = nextInt(ctx, tx, "contacts", "contact_id", 1); err != nil {
				return err
			}
			rec["contact_id"] = id
			setDefault(rec, "delete_flag", "N")
			db.stamp(rec, user, true)
			if err := insertRow(ctx, tx, t, rec); err != nil {
				return err
			}
		} else {
			db.stamp(rec, user, false)
			if err := updateRow(ctx, tx, t, rec, id); err != nil {
				return err
			}
		}
		out, err = db.getIn(ctx, tx, t, id)
		return err
	})
	return out, err
}

// Order is a sales order: its header (oe_hdr) and lines (oe_line).
type Order struct {
	Header Record
	Lines  []Record
}

// LineInput is a line given to SaveOrder: line_no (to change an existing
// line; absent to add one), item_id or inv_mast_uid, qty_ordered,
// unit_price (default the item's list price), unit_of_measure (default
// the item's selling unit).
type LineInput = Record

// SaveOrder creates an order (no order_no in hdr; at least one line) or
// changes one that is not completed: the header columns given, the lines
// given by line_no, and new lines. It returns the order as saved.
func (db *DB) SaveOrder(ctx context.Context, user string, hdr Record, lines []LineInput) (*Order, error) {
	ht, lt := Lookup("table", "oe_hdr"), Lookup("table", "oe_line")
	var out *Order
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		errs := &ValidationError{}
		nov, update := keyOf(hdr, "order_no")
		rec := input(ht, without(hdr, "order_no"), errs)
		var orderNo string
		if update {
			orderNo = strings.TrimSpace(fmt.Sprint(nov))
			if f, ok := nov.(float64); ok {
				orderNo = strconv.FormatInt(int64(f), 10)
			}
			cur, err := db.getIn(ctx, tx, ht, orderNo)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("order %s: %w", orderNo, ErrNotFound)
			}
			if err != nil {
				return err
			}
			if cur["completed"] == "Y" {
				errs.add("order_no", "order %s is completed and cannot be changed", orderNo)
				return errs
			}
		} else {
			if _, ok := keyOf(hdr, "customer_id"); !ok {
				errs.add("customer_id", "customer_id is required")
			}
			if len(lines) == 0 {
				errs.add("items", "an order needs at least one line item")
			}
		}
		if c, ok := rec["customer_id"]; ok {
			var del string
			err := tx.QueryRowContext(ctx, `SELECT delete_flag FROM customer WHERE customer_id = ?`, c).Scan(&del)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				errs.add("customer_id", "customer_id %v is not a customer", c)
			case err != nil:
				return fmt.Errorf("sandbox: %w", err)
			case del == "Y":
				errs.add("customer_id", "customer %v is deleted", c)
			}
		}
		if l, ok := rec["location_id"]; ok {
			ok, err := exists(ctx, tx, "location", "location_id = ?", l)
			if err != nil {
				return err
			}
			if !ok {
				errs.add("location_id", "location_id %v is not a location", l)
			}
		}
		for _, f := range []string{"approved", "completed", "cancel_flag", "projected_order", "delete_flag"} {
			if s, ok := rec[f].(string); ok {
				s = strings.ToUpper(s)
				if s != "Y" && s != "N" {
					errs.add(f, "%s must be Y or N", f)
				}
				rec[f] = s
			}
		}
		// Lines: checked before anything is written.
		type line struct {
			no  int64
			rec Record
		}
		var checked []line
		for i, in := range lines {
			lerrs := &ValidationError{}
			itemID, hasItem := keyOf(in, "item_id")
			lrec := input(lt, without(without(without(in, "item_id"), "line_no"), "order_no"), lerrs)
			var no int64
			if v, ok := keyOf(in, "line_no"); ok {
				n, err := Coerce(lt.Column("line_no"), v)
				if err != nil {
					lerrs.add("line_no", "line %d: line_no %s is not a number", i+1, describe(v))
				} else {
					no = n.(int64)
				}
			}
			if hasItem {
				var uid int64
				var price float64
				var unit string
				err := tx.QueryRowContext(ctx, `SELECT inv_mast_uid, list_price, default_selling_unit FROM inv_mast WHERE item_id = ? AND delete_flag = 'N'`,
					strings.TrimSpace(fmt.Sprint(itemID))).Scan(&uid, &price, &unit)
				switch {
				case errors.Is(err, sql.ErrNoRows):
					lerrs.add("item_id", "line %d: item %s does not exist", i+1, describe(itemID))
				case err != nil:
					return fmt.Errorf("sandbox: %w", err)
				default:
					lrec["inv_mast_uid"] = uid
					setDefault(lrec, "unit_price", price)
					setDefault(lrec, "unit_of_measure", unit)
				}
			} else if uid, ok := lrec["inv_mast_uid"]; ok {
				var price float64
				var unit string
				err := tx.QueryRowContext(ctx, `SELECT list_price, default_selling_unit FROM inv_mast WHERE inv_mast_uid = ?`, uid).Scan(&price, &unit)
				switch {
				case errors.Is(err, sql.ErrNoRows):
					lerrs.add("inv_mast_uid", "line %d: inv_mast_uid %v does not exist", i+1, uid)
				case err != nil:
					return fmt.Errorf("sandbox: %w", err)
				default:
					setDefault(lrec, "unit_price", price)
					setDefault(lrec, "unit_of_measure", unit)
				}
			} else if no == 0 {
				lerrs.add("item_id", "line %d: an item is required", i+1)
			}
			if q, ok := lrec["qty_ordered"].(float64); ok && q <= 0 {
				lerrs.add("qty_ordered", "line %d: qty_ordered must be greater than 0", i+1)
			} else if !ok && no == 0 {
				lerrs.add("qty_ordered", "line %d: qty_ordered is required", i+1)
			}
			if p, ok := lrec["unit_price"].(float64); ok && p < 0 {
				lerrs.add("unit_price", "line %d: unit_price cannot be negative", i+1)
			}
			if no != 0 {
				if !update {
					lerrs.add("line_no", "line %d: line_no is given for a new order", i+1)
				} else if ok, err := exists(ctx, tx, "oe_line", "order_no = ? AND line_no = ?", orderNo, no); err != nil {
					return err
				} else if !ok {
					lerrs.add("line_no", "line %d: order %s has no line %d", i+1, orderNo, no)
				}
			}
			errs.Errors = append(errs.Errors, lerrs.Errors...)
			checked = append(checked, line{no, lrec})
		}
		if err := errs.err(); err != nil {
			return err
		}
		if !update {
			n, err := nextInt(ctx, tx, "oe_hdr", "order_no", 1001001)
			if err != nil {
				return err
			}
			orderNo = strconv.FormatInt(n, 10)
			rec["order_no"] = orderNo
			var name string
			if err := tx.QueryRowContext(ctx, `SELECT customer_name FROM customer WHERE customer_id = ?`, rec["customer_id"]).Scan(&name); err != nil {
				return fmt.Errorf("sandbox: %w", err)
			}
			for col, v := range map[string]any{"company_id": DefaultCompany, "order_date": db.now()[:10] + "T00:00:00Z",
				"ship2_name": name, "location_id": DefaultLocation, "taker": user, "approved": "Y", "completed": "N",
				"cancel_flag": "N", "projected_order": "N", "delete_flag": "N"} {
				setDefault(rec, col, v)
			}
			db.stamp(rec, user, true)
			if err := insertRow(ctx, tx, ht, rec); err != nil {
				return err
			}
		} else if len(rec) > 0 {
			db.stamp(rec, user, false)
			if err := updateRow(ctx, tx, ht, rec, orderNo); err != nil {
				return err
			}
		}
		for _, l := range checked {
			if l.no != 0 {
				var cur Record
				recs, err := db.selectIn(ctx, tx, lt, "order_no = ? AND line_no = ?", []any{orderNo, l.no}, "")
				if err != nil {
					return err
				}
				cur = recs[0]
				for k, v := range l.rec {
					cur[k] = v
				}
				l.rec["extended_price"] = round2(cur["qty_ordered"].(float64) * cur["unit_price"].(float64))
				db.stamp(l.rec, user, false)
				if err := updateRow(ctx, tx, lt, l.rec, cur["oe_line_uid"]); err != nil {
					return err
				}
				continue
			}
			uid, err := nextInt(ctx, tx, "oe_line", "oe_line_uid", 1)
			if err != nil {
				return err
			}
			no, err := nextLine(ctx, tx, orderNo)
			if err != nil {
				return err
			}
			l.rec["oe_line_uid"], l.rec["order_no"], l.rec["line_no"] = uid, orderNo, no
			l.rec["extended_price"] = round2(l.rec["qty_ordered"].(float64) * l.rec["unit_price"].(float64))
			setDefault(l.rec, "delete_flag", "N")
			db.stamp(l.rec, user, true)
			if err := insertRow(ctx, tx, lt, l.rec); err != nil {
				return err
			}
		}
		var err error
		out, err = db.order(ctx, tx, orderNo)
		return err
	})
	return out, err
}

func nextLine(ctx context.Context, tx *sql.Tx, orderNo string) (int64, error) {
	var n sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(line_no) FROM oe_line WHERE order_no = ?`, orderNo).Scan(&n); err != nil {
		return 0, fmt.Errorf("sandbox: %w", err)
	}
	return n.Int64 + 1, nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// GetOrder reads an order with its lines; ErrNotFound when there is none.
func (db *DB) GetOrder(ctx context.Context, orderNo string) (*Order, error) {
	return db.order(ctx, db.read, orderNo)
}

func (db *DB) order(ctx context.Context, q querier, orderNo string) (*Order, error) {
	h, err := db.getIn(ctx, q, Lookup("table", "oe_hdr"), orderNo)
	if err != nil {
		return nil, err
	}
	lines, err := db.selectIn(ctx, q, Lookup("table", "oe_line"), "order_no = ? AND delete_flag = 'N'", []any{orderNo}, `"line_no"`)
	if err != nil {
		return nil, err
	}
	return &Order{Header: h, Lines: lines}, nil
}

// SavePricePage creates a price page (no price_page_uid) or changes one.
func (db *DB) SavePricePage(ctx context.Context, user string, in Record) (Record, error) {
	t := Lookup("table", "price_page")
	var out Record
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		errs := &ValidationError{}
		idv, update := keyOf(in, "price_page_uid")
		rec := input(t, without(in, "price_page_uid"), errs)
		var id int64
		var cur Record
		if update {
			v, err := Coerce(t.Column("price_page_uid"), idv)
			if err != nil {
				return &ValidationError{Errors: []FieldError{*err.(*FieldError)}}
			}
			id = v.(int64)
			if cur, err = db.getIn(ctx, tx, t, id); errors.Is(err, ErrNotFound) {
				return fmt.Errorf("price page %d: %w", id, ErrNotFound)
			} else if err != nil {
				return err
			}
		} else {
			cur = Record{}
			for _, f := range []string{"price_page_type_cd", "description", "effective_date", "expiration_date"} {
				if _, ok := rec[f]; !ok {
					errs.add(f, "%s is required", f)
				}
			}
		}
		merged := Record{}
		for k, v := range cur {
			merged[k] = v
		}
		for k, v := range rec {
			merged[k] = v
		}
		if s, ok := merged["supplier_id"]; ok && s != nil {
			if ok, err := exists(ctx, tx, "supplier", "supplier_id = ?", s); err != nil {
				return err
			} else if !ok {
				errs.add("supplier_id", "supplier_id %v is not a supplier", s)
			}
		}
		if g, ok := merged["product_group_id"]; ok && g != nil {
			if ok, err := exists(ctx, tx, "product_group", "product_group_id = ?", g); err != nil {
				return err
			} else if !ok {
				errs.add("product_group_id", "product_group_id %v is not a product group", g)
			}
		}
		if merged["price_page_type_cd"] == int64(214) {
			if merged["supplier_id"] == nil {
				errs.add("supplier_id", "supplier_id is required for a Supplier / Product Group page")
			}
			if merged["product_group_id"] == nil {
				errs.add("product_group_id", "product_group_id is required for a Supplier / Product Group page")
			}
		}
		if e, ok := merged["effective_date"].(string); ok {
			if x, ok := merged["expiration_date"].(string); ok && x < e {
				errs.add("expiration_date", "expiration_date is before effective_date")
			}
		}
		if err := errs.err(); err != nil {
			return err
		}
		if !update {
			var err error
			if id, err = nextInt(ctx, tx, "price_page", "price_page_uid", 45001); err != nil {
				return err
			}
			rec["price_page_uid"] = id
			for col, v := range map[string]any{"company_id": DefaultCompany, "pricing_method_cd": int64(221), "source_price_cd": int64(200),
				"totaling_method_cd": int64(1300), "totaling_basis_cd": int64(200), "calculation_method_cd": int64(211),
				"calculation_value1": 1.0, "row_status_flag": RowActive} {
				setDefault(rec, col, v)
			}
			db.stamp(rec, user, true)
			if err := insertRow(ctx, tx, t, rec); err != nil {
				return err
			}
		} else {
			db.stamp(rec, user, false)
			if err := updateRow(ctx, tx, t, rec, id); err != nil {
				return err
			}
		}
		var err error
		out, err = db.getIn(ctx, tx, t, id)
		return err
	})
	return out, err
}

// Exists reports whether table has a row whose column equals v (tables
// and columns come from the sandbox's own models, never from a request).
func (db *DB) Exists(ctx context.Context, table, column string, v any) (bool, error) {
	t := Lookup("table", table)
	if t == nil || t.Column(column) == nil {
		return false, fmt.Errorf("sandbox: Exists: no %s.%s", table, column)
	}
	recs, err := db.Select(ctx, t, Ident(t.Column(column).Name)+" = ?", []any{v}, "")
	if err != nil {
		return false, err
	}
	return len(recs) > 0, nil
}

// Item finds an item by item_id (ignoring case); ErrNotFound when none.
func (db *DB) Item(ctx context.Context, itemID string) (Record, error) {
	recs, err := db.Select(ctx, Lookup("table", "inv_mast"), `"item_id" = ? AND "delete_flag" = 'N'`, []any{strings.TrimSpace(itemID)}, "")
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	return recs[0], nil
}
