package odata_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
	"github.com/gatehouse/gatehouse/sandbox/odata"
)

func q(s string) string { return strings.ReplaceAll(url.PathEscape(s), "&", "%26") }

// Requests and their golden responses (testdata/*.golden; go test -update
// rewrites them).
func TestGolden(t *testing.T) {
	h := &odata.Handler{DB: sandboxtest.DB(t), BaseURL: sandboxtest.BaseURL}
	for _, tc := range []struct{ name, path string }{
		{"supplier_page", "/odataservice/odata/table/supplier?$top=3&$skip=2&$select=supplier_id,supplier_name,row_status_flag&$count=true"},
		{"supplier_filter", "/odataservice/odata/table/supplier?$filter=" + q("row_status_flag eq 704 and (startswith(supplier_name,'acme') or contains(supplier_name,'Hydraulics'))") + "&$select=supplier_id,supplier_name&$orderby=supplier_name desc&$top=4"},
		{"customer_not_endswith", "/odataservice/odata/table/customer?$filter=" + q("not endswith(customer_name,'Inc') and credit_limit ge 90000 and taxable eq false") + "&$select=customer_id,customer_name,credit_limit,taxable"},
		{"customer_null", "/odataservice/odata/table/customer?$filter=" + q("email_address eq null and mail_state eq 'IL'") + "&$select=customer_id,email_address,mail_state&$top=2"},
		{"orders_dates", "/odataservice/odata/table/oe_hdr?$filter=" + q("order_date ge 2025-06-01 and order_date lt 2025-06-20T00:00:00Z and po_no ne null") + "&$select=order_no,order_date,po_no&$orderby=order_date desc,order_no"},
		{"inv_mast_decimal", "/odataservice/odata/table/inv_mast?$filter=" + q("list_price le 25.5 and stockable") + "&$select=item_id,list_price&$orderby=list_price"},
		{"view_order_total", "/odataservice/odata/view/p21_view_oe_hdr?$filter=" + q("customer_id eq 100101") + "&$select=order_no,customer_name,line_count,order_total"},
		{"single_entity", "/odataservice/odata/table/supplier(21201)?$select=supplier_id,supplier_name"},
		{"single_compound_key", "/odataservice/odata/table/inv_loc(location_id=10,inv_mast_uid=1001)"},
		{"count_segment", "/odataservice/odata/table/customer/$count?$filter=" + q("mail_state eq 'IA'")},
		{"escaped_quote", "/odataservice/odata/table/contacts?$filter=" + q("last_name eq 'O''Brien'") + "&$select=contact_id,last_name&$top=2"},
		{"unknown_table", "/odataservice/odata/table/no_such_table"},
		{"view_as_table", "/odataservice/odata/table/p21_view_oe_hdr"},
		{"bad_property", "/odataservice/odata/table/supplier?$filter=" + q("supplier eq 21274")},
		{"bad_syntax", "/odataservice/odata/table/supplier?$filter=" + q("supplier_id = 21274")},
		{"bad_type", "/odataservice/odata/table/supplier?$filter=" + q("supplier_id eq 'x'")},
		{"unclosed_string", "/odataservice/odata/table/supplier?$filter=" + q("supplier_name eq 'x")},
		{"now_unsupported", "/odataservice/odata/table/price_page?$filter=" + q("expiration_date ge now()")},
		{"bad_top", "/odataservice/odata/table/supplier?$top=-1"},
		{"bad_select", "/odataservice/odata/table/supplier?$select=supplier_id,nope"},
		{"bad_orderby", "/odataservice/odata/table/supplier?$orderby=supplier_name sideways"},
		{"expand_unsupported", "/odataservice/odata/table/supplier?$expand=contacts"},
		{"metadata_tables", "/odataservice/odata/table/$metadata"},
		{"metadata_views", "/odataservice/odata/view/$metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sandboxtest.Do(h, sandboxtest.Request{Path: tc.path})
			if r.Status >= 500 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			sandboxtest.Golden(t, tc.name, r)
		})
	}
}

func TestPaging(t *testing.T) {
	h := &odata.Handler{DB: sandboxtest.DB(t), BaseURL: sandboxtest.BaseURL}
	// Server-driven paging: Prefer: odata.maxpagesize, nextLink until the end.
	path := "/odataservice/odata/table/supplier?$filter=" + q("row_status_flag eq 704") + "&$select=supplier_id&$count=true"
	var ids []float64
	pages := 0
	for path != "" {
		r := sandboxtest.Do(h, sandboxtest.Request{Path: path, Header: map[string]string{"Prefer": "odata.maxpagesize=20"}})
		if r.Status != 200 || r.Header.Get("Preference-Applied") != "odata.maxpagesize=20" {
			t.Fatalf("%d %v %s", r.Status, r.Header, r.Body)
		}
		m := r.JSON(t).(map[string]any)
		if m["@odata.count"] != 55.0 {
			t.Fatalf("count %v", m["@odata.count"])
		}
		for _, v := range m["value"].([]any) {
			ids = append(ids, v.(map[string]any)["supplier_id"].(float64))
		}
		path = ""
		if next, ok := m["@odata.nextLink"].(string); ok {
			path = strings.TrimPrefix(next, sandboxtest.BaseURL)
		}
		if pages++; pages > 10 {
			t.Fatal("no end")
		}
	}
	if len(ids) != 55 || pages != 3 {
		t.Fatalf("%d rows in %d pages", len(ids), pages)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("not in key order at %d: %v", i, ids)
		}
	}
	// Client paging with $top/$skip: no nextLink.
	r := sandboxtest.Do(h, sandboxtest.Request{Path: "/odataservice/odata/table/supplier?$top=10&$skip=50"})
	m := r.JSON(t).(map[string]any)
	if len(m["value"].([]any)) != 10 || m["@odata.nextLink"] != nil {
		t.Fatalf("%v", m)
	}
}

func TestReadOnly(t *testing.T) {
	h := &odata.Handler{DB: sandboxtest.DB(t), BaseURL: sandboxtest.BaseURL}
	r := sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: "/odataservice/odata/table/supplier", Body: "{}"})
	if r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("%d %v", r.Status, r.Header)
	}
}

func TestFilterSQL(t *testing.T) {
	tab := data.Lookup("table", "customer")
	for _, tc := range []struct {
		filter, sql string
		args        []any
	}{
		{"customer_id eq 5", `("customer_id" = ?)`, []any{int64(5)}},
		{"5 lt customer_id", `(? < "customer_id")`, []any{int64(5)}},
		{"not (mail_state eq 'IA' or mail_state eq 'IL') and taxable", `((NOT (("mail_state" = ?) OR ("mail_state" = ?))) AND ("taxable" = 1))`, []any{"IA", "IL"}},
		{"contains(customer_name,'50%_\\')", `("customer_name" LIKE ? ESCAPE '\')`, []any{`%50\%\_\\%`}},
		{"substringof('acme', customer_name)", `("customer_name" LIKE ? ESCAPE '\')`, []any{"%acme%"}},
		{"date_created gt '2024-05-01'", `("date_created" > ?)`, []any{"2024-05-01T00:00:00Z"}},
		{"date_created le 2024-05-01T10:00:00+02:00", `("date_created" <= ?)`, []any{"2024-05-01T08:00:00Z"}},
		{"email_address ne null", `("email_address" IS NOT NULL)`, nil},
		{"credit_limit gt -1.5e3", `("credit_limit" > ?)`, []any{-1500.0}},
		{"customer_name eq 'x'' OR 1=1 --'", `("customer_name" = ?)`, []any{"x' OR 1=1 --"}},
	} {
		e, err := odata.ParseFilter(tc.filter)
		if err != nil {
			t.Errorf("%s: %v", tc.filter, err)
			continue
		}
		sql, args, err := odata.SQL(e, tab.Column)
		if err != nil || sql != tc.sql || len(args) != len(tc.args) {
			t.Errorf("%s: %q %v %v, want %q %v", tc.filter, sql, args, err, tc.sql, tc.args)
			continue
		}
		for i := range args {
			if args[i] != tc.args[i] {
				t.Errorf("%s: arg %d = %#v, want %#v", tc.filter, i, args[i], tc.args[i])
			}
		}
	}
	for filter, msg := range map[string]string{
		"":                               "ends too early",
		"customer_id":                    "is a number, not a condition",
		"customer_id eq":                 "ends too early",
		"customer_id EQ 1":               "operators are lower case",
		"customer_id eq 1 and":           "ends too early",
		"(customer_id eq 1":              "ends too early",
		"customer_id eq 1)":              "unexpected ')'",
		"contains(customer_id,'1')":      "needs a string property",
		"contains(customer_name)":        "takes 2 arguments",
		"tolower(customer_name) eq 'x'":  "unknown function",
		"customer/name eq 'x'":           "navigates to another entity",
		"customer_name eq null eq null":  "unexpected 'eq'",
		"taxable gt null":                "null can only be compared with eq or ne",
		"customer_id eq 1.5.5":           "is not a number",
		"date_created eq 2024-13-45":     "is not a date",
		"customer_name eq customer_id":   "compares a string with a number",
		"customer_id eq 1 # x":           "unexpected \"#\"",
		strings.Repeat("(", 40) + "x":    "nested deeper",
		strings.Repeat("not ", 40) + "x": "nested deeper",
	} {
		e, err := odata.ParseFilter(filter)
		if err == nil {
			_, _, err = odata.SQL(e, tab.Column)
		}
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want an error saying %q", filter, err, msg)
		}
	}
}

// Rows served from the handler's row cache are never older than the last
// write.
func TestCacheSeesWrites(t *testing.T) {
	db := sandboxtest.DB(t)
	h := &odata.Handler{DB: db, BaseURL: sandboxtest.BaseURL}
	path := "/odataservice/odata/table/customer?$filter=" + q("customer_id le 100102") + "&$select=customer_id,customer_name"
	read := func() string {
		r := sandboxtest.Do(h, sandboxtest.Request{Path: path})
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		return string(r.Body)
	}
	first := read()
	if read() != first {
		t.Fatal("the same read answered differently")
	}
	if _, err := db.SaveCustomer(context.Background(), "ann", data.Record{"customer_id": 100102, "customer_name": "Renamed Between Reads"}); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.Contains(got, `"Renamed Between Reads"`) || got == first {
		t.Fatalf("after the write: %s", got)
	}
}
