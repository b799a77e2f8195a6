package odata_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
	"github.com/gatehouse/gatehouse/sandbox/odata"
)

// FuzzQuery sends any query string to the handler: the answer is a 200
// with JSON or a 4xx with an OData error, never a 5xx or a panic; and
// every value of a parsed filter reaches SQL as a parameter.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"$filter=supplier_id eq 21274",
		"$filter=" + url.QueryEscape("startswith(supplier_name,'ABC') and not (row_status_flag ne 704)"),
		"$select=supplier_id,supplier_name&$orderby=supplier_name desc,supplier_id&$top=10&$skip=5&$count=true",
		"$filter=" + url.QueryEscape("date_created ge 2024-01-01T00:00:00.000Z or email_address eq null"),
		"$filter=" + url.QueryEscape("supplier_name eq 'O''Brien'"),
		"$filter=((((", "$top=x", "$filter=now()", "$expand=*", "%zz", "$filter=" + url.QueryEscape("contains(supplier_name,'%_\\')"),
	} {
		f.Add("supplier", s)
	}
	f.Add("oe_hdr", "$filter="+url.QueryEscape("order_date lt 2025-01-01 and customer_id gt -5.5"))
	db := sandboxtest.DB(f)
	h := &odata.Handler{DB: db, BaseURL: sandboxtest.BaseURL}
	f.Fuzz(func(t *testing.T, table, query string) {
		if strings.ContainsAny(table, "/?#%") {
			table = "supplier"
		}
		path := "/odataservice/odata/table/" + url.PathEscape(table) + "?" + query
		if _, err := url.ParseRequestURI(path); err != nil || strings.ContainsFunc(path, func(r rune) bool { return r < 0x21 && r != ' ' || r == 0x7f }) {
			return
		}
		r := sandboxtest.Do(h, sandboxtest.Request{Path: path})
		if r.Status >= 500 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		m, ok := r.JSON(t).(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object: %s", path, r.Body)
		}
		if r.Status != 200 {
			e, _ := m["error"].(map[string]any)
			if e == nil || e["message"] == "" || e["code"] == "" {
				t.Fatalf("%s: %d without an OData error: %s", path, r.Status, r.Body)
			}
		}
	})
}

// FuzzFilter parses any filter: an error is a QueryError, and the SQL of
// a filter that compiles has no quote of its own but the LIKE escape.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"a eq 1", "supplier_name eq 'x'' or ''1''=''1'", "not(contains(supplier_name,'x'))", "supplier_id ge -1e3 and row_status_flag eq 704"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := odata.ParseFilter(s)
		if err == nil {
			var sql string
			sql, _, err = odata.SQL(e, func(name string) *odataColumn { return lookup(name) })
			if err == nil && strings.Count(strings.ReplaceAll(sql, `ESCAPE '\'`, ""), "'") != 0 {
				t.Fatalf("%q compiled to SQL with a quote: %s", s, sql)
			}
		}
		var qe *odata.QueryError
		if err != nil && !errors.As(err, &qe) {
			t.Fatalf("%q: %T %v", s, err, err)
		}
	})
}
