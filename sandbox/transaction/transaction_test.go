package transaction_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
	"github.com/gatehouse/gatehouse/sandbox/transaction"
)

const orderSet = `{"Name":"Order","UseCodeValues":false,"Transactions":[{"Status":"New","DataElements":[
 {"Name":"TABPAGE_1.order","Type":"Form","Keys":[],"Rows":[{"Edits":[{"Name":"customer_id","Value":"100101"},{"Name":"po_no","Value":"PO-TEST"}],"RelativeDateEdits":[]}]},
 {"Name":"TP_ITEMS.items","Type":"List","Keys":[],"Rows":[
  {"Edits":[{"Name":"oe_order_item_id","Value":"FA5-1000"},{"Name":"unit_quantity","Value":"2"}],"RelativeDateEdits":[]},
  {"Edits":[{"Name":"oe_order_item_id","Value":"HYD1-1007"},{"Name":"unit_quantity","Value":1},{"Name":"unit_price","Value":"9.99"}],"RelativeDateEdits":[]}]}]}]}`

const pricePageSet = `{"Name":"SalesPricePage","UseCodeValues":false,"Transactions":[{"Status":"New","DataElements":[
 {"Name":"FORM.form","Type":"Form","Keys":[],"Rows":[{"Edits":[
  {"Name":"price_page_type_cd","Value":"Supplier / Product Group"},{"Name":"company_id","Value":"ACME"},{"Name":"supplier_id","Value":21201.0},
  {"Name":"product_group_id","Value":"FA5"},{"Name":"description","Value":"API-TEST"},{"Name":"pricing_method_cd","Value":"Source"},
  {"Name":"source_price_cd","Value":"Supplier List Price"},{"Name":"effective_date","Value":"2026-03-14"},{"Name":"expiration_date","Value":"2030-12-31"},
  {"Name":"totaling_method_cd","Value":"Item"},{"Name":"totaling_basis_cd","Value":"Supplier List Price"},{"Name":"row_status_flag","Value":"Active"}],"RelativeDateEdits":[]}]},
 {"Name":"VALUES.values","Type":"Form","Keys":[],"Rows":[{"Edits":[{"Name":"calculation_method_cd","Value":"Multiplier"},{"Name":"calculation_value1","Value":"0.75"}],"RelativeDateEdits":[]}]}]}]}`

func TestGolden(t *testing.T) {
	h := &transaction.Handler{DB: sandboxtest.DB(t), Clock: sandboxtest.Clock}
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"services", "GET", "/api/v2/services", ""},
		{"definition_order", "GET", "/api/v2/definition/Order", ""},
		{"definition_salespricepage", "GET", "/api/v2/definition/salespricepage", ""},
		{"definition_customer", "GET", "/api/v2/definition/Customer", ""},
		{"definition_contact", "GET", "/api/v2/definition/Contact", ""},
		{"defaults_order", "GET", "/api/v2/defaults/Order", ""},
		{"definition_unknown", "GET", "/api/v2/definition/Nope", ""},
		{"create_order", "POST", "/api/v2/transaction", orderSet},
		{"get_order", "POST", "/api/v2/transaction/get", `{"ServiceName":"Order","TransactionStates":[{"DataElementName":"TABPAGE_1.order","Keys":[{"Name":"order_no","Value":"1001091"}]}]}`},
		{"update_order_line", "POST", "/api/v2/transaction", `{"Name":"Order","Transactions":[{"Status":"New","DataElements":[
			{"Name":"TABPAGE_1.order","Type":"Form","Rows":[{"Edits":[{"Name":"order_no","Value":"1001091"},{"Name":"po_no","Value":"PO-CHANGED"}]}]},
			{"Name":"TP_ITEMS.items","Type":"List","Rows":[{"Edits":[{"Name":"line_no","Value":1},{"Name":"unit_quantity","Value":"3"}]}]}]}]}`},
		{"create_price_page", "POST", "/api/v2/transaction", pricePageSet},
		{"create_customer_and_contact_codes", "POST", "/api/v2/transaction", `{"Name":"Customer","UseCodeValues":true,"Transactions":[
			{"Status":"New","DataElements":[{"Name":"TABPAGE_1.customer","Type":"Form","Rows":[{"Edits":[{"Name":"customer_name","Value":"Sandbox Test Co"},{"Name":"mail_state","Value":"IA"}]}]},
			 {"Name":"TABPAGE_2.credit","Type":"Form","Rows":[{"Edits":[{"Name":"terms_id","Value":"COD"},{"Name":"taxable","Value":"N"},{"Name":"credit_limit","Value":"1500"}]}]}]},
			{"Status":"New","DataElements":[{"Name":"TABPAGE_1.customer","Type":"Form","Rows":[{"Edits":[{"Name":"mail_state","Value":"IA"}]}]}]}]}`},
		{"failures", "POST", "/api/v2/transaction", `{"Name":"Order","Transactions":[
			{"Status":"New","DataElements":[{"Name":"TABPAGE_1.order","Type":"Form","Rows":[{"Edits":[{"Name":"po_no","Value":"x"}]}]}]},
			{"Status":"New","DataElements":[{"Name":"TABPAGE_1.order","Type":"Form","Rows":[{"Edits":[{"Name":"customer_id","Value":"1"}]}]}]},
			{"Status":"New","DataElements":[{"Name":"TABPAGE_1.order","Type":"Form","Rows":[{"Edits":[{"Name":"customer_id","Value":"100101"}]}]},
			 {"Name":"TP_ITEMS.items","Type":"List","Rows":[{"Edits":[{"Name":"oe_order_item_id","Value":"FA5-1000"},{"Name":"unit_quantity","Value":"100000"}]}]}]},
			{"Status":"New","DataElements":[{"Name":"TABPAGE_9.nope","Type":"Form","Rows":[]}]},
			{"Status":"New","DataElements":[{"Name":"TABPAGE_1.order","Type":"Form","Rows":[{"Edits":[{"Name":"order_no","Value":"1001001"},{"Name":"po_no","Value":"late"}]}]}]}]}`},
		{"price_page_order_rule", "POST", "/api/v2/transaction", `{"Name":"SalesPricePage","Transactions":[{"DataElements":[{"Name":"FORM.form","Rows":[{"Edits":[
			{"Name":"price_page_type_cd","Value":"Supplier / Product Group"},{"Name":"product_group_id","Value":"FA5"}]}]}]},
			{"DataElements":[{"Name":"FORM.form","Rows":[{"Edits":[{"Name":"price_page_type_cd","Value":"214"}]}]}]}]}`},
		{"unknown_service", "POST", "/api/v2/transaction", `{"Name":"Nope","Transactions":[{}]}`},
		{"bad_json", "POST", "/api/v2/transaction", `{"Name":`},
		{"get_not_found", "POST", "/api/v2/transaction/get", `{"ServiceName":"SalesPricePage","TransactionStates":[{"DataElementName":"FORM.form","Keys":[{"Name":"price_page_uid","Value":"1"}]}]}`},
		{"wrong_method", "GET", "/api/v2/transaction", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sandboxtest.Do(h, sandboxtest.Request{Method: tc.method, Path: tc.path, Body: tc.body, User: "api_user"})
			if r.Status >= 500 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			sandboxtest.Golden(t, tc.name, r)
		})
	}
}

func TestAsync(t *testing.T) {
	h := &transaction.Handler{DB: sandboxtest.DB(t), Clock: sandboxtest.Clock}
	r := sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: "/api/v2/transaction/async", Body: orderSet, User: "api_user"})
	var sub struct{ RequestID, Status string }
	if err := json.Unmarshal(r.Body, &sub); err != nil || r.Status != 200 || sub.Status != "Active" || len(sub.RequestID) != 36 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var st struct{ RequestID, Status, Messages, CompletedDate string }
	testtime.Eventually(t, 10*time.Second, func() error {
		r = sandboxtest.Do(h, sandboxtest.Request{Path: "/api/v2/transaction/async?id=" + sub.RequestID, User: "api_user"})
		json.Unmarshal(r.Body, &st)
		if st.Status == "Active" {
			return fmt.Errorf("still active")
		}
		return nil
	})
	if st.Status != "Complete" || st.CompletedDate != "2026-03-14T15:09:26" || !strings.Contains(st.Messages, `"Succeeded":1`) {
		t.Fatalf("%+v", st)
	}
	// Another user cannot see it.
	r = sandboxtest.Do(h, sandboxtest.Request{Path: "/api/v2/transaction/async?id=" + sub.RequestID, User: "someone_else"})
	if r.Status != 404 {
		t.Fatalf("other user: %d %s", r.Status, r.Body)
	}
}

func TestAsyncCallback(t *testing.T) {
	h := &transaction.Handler{DB: sandboxtest.DB(t), Clock: sandboxtest.Clock}
	got := make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Status string }
		json.NewDecoder(r.Body).Decode(&b)
		got <- r.Method + " " + r.Header.Get("X-API-Key") + " " + b.Status
	}))
	defer cb.Close()
	body := fmt.Sprintf(`{"Content":%s,"Callback":{"Url":%q,"Method":"POST","ContentType":"application/json","Headers":[{"Name":"X-API-Key","Value":"k1"}]}}`, orderSet, cb.URL+"/hook")
	r := sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: "/api/v2/transaction/async/callback", Body: body, User: "api_user"})
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	select {
	case s := <-got:
		if s != "POST k1 Complete" {
			t.Fatalf("callback: %s", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	h.Wait()
	// Callbacks go to this machine only.
	body = fmt.Sprintf(`{"Content":%s,"Callback":{"Url":"http://10.1.2.3/hook"}}`, orderSet)
	r = sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: "/api/v2/transaction/async/callback", Body: body, User: "api_user"})
	if r.Status != 400 || !strings.Contains(string(r.Body), "only to this machine") {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}
