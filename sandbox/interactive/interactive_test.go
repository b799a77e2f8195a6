package interactive_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/sandbox/interactive"
	"github.com/gatehouse/gatehouse/sandbox/internal/sandboxtest"
)

func newHandler(t *testing.T) *interactive.Handler {
	n := 0
	return &interactive.Handler{DB: sandboxtest.DB(t), Clock: sandboxtest.Clock, NewID: func() string {
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}}
}

const base = "/api/ui/interactive"

type step struct{ name, method, path, body string }

func run(t *testing.T, h http.Handler, user string, steps []step) {
	t.Helper()
	for _, s := range steps {
		r := sandboxtest.Do(h, sandboxtest.Request{Method: s.method, Path: base + s.path, Body: s.body, User: user})
		if r.Status >= 500 {
			t.Fatalf("%s: %d %s", s.name, r.Status, r.Body)
		}
		sandboxtest.Golden(t, s.name, r)
	}
}

// Order Entry: retrieve an order, change a line on the items tab (v2
// forms), add a line, save; the response window when a quantity exceeds
// the stock, answered No; the v1 forms.
func TestOrderEntry(t *testing.T) {
	h := newHandler(t)
	w1 := "00000000-0000-4000-8000-000000000002"
	run(t, h, "api_user", []step{
		{"no_session", "POST", "/v2/window", `{"ServiceName":"Order"}`},
		{"session_start", "POST", "/sessions/", `{"ResponseWindowHandlingEnabled":true}`},
		{"sessions_list", "GET", "/sessions/", ""},
		{"order_open", "POST", "/v2/window", `{"ServiceName":"Order"}`},
		{"order_retrieve", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TABPAGE_1","FieldName":"order_no","Value":"1001065","DatawindowName":"order"}]}`},
		{"order_tab", "PUT", "/v2/tab", `{"WindowId":"` + w1 + `","PageName":"TP_ITEMS"}`},
		{"order_row", "PUT", "/v2/row", `{"WindowId":"` + w1 + `","DatawindowName":"items","Row":0}`},
		{"order_change_qty", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TP_ITEMS","FieldName":"unit_quantity","Value":"7","DatawindowName":"items"}]}`},
		{"order_add_row", "POST", "/v2/row", `{"WindowId":"` + w1 + `","DatawindowName":"items"}`},
		{"order_new_line", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TP_ITEMS","FieldName":"oe_order_item_id","Value":"FA5-1000"},{"TabName":"TP_ITEMS","FieldName":"unit_quantity","Value":"5000"}]}`},
		{"order_blocked_save", "PUT", "/v2/data", `"` + w1 + `"`},
		{"response_window", "GET", "/v2/window?id=00000000-0000-4000-8000-000000000003", ""},
		{"response_tools", "GET", "/v2/tools?windowId=00000000-0000-4000-8000-000000000003", ""},
		{"response_no", "POST", "/v2/tools", `{"WindowId":"00000000-0000-4000-8000-000000000003","ToolName":"cb_2"}`},
		{"order_qty_ok", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TP_ITEMS","FieldName":"unit_quantity","Value":"4"}]}`},
		{"order_save_object_body", "PUT", "/v2/data", `{"WindowId":"` + w1 + `"}`},
		{"order_save", "PUT", "/v2/data", `"` + w1 + `"`},
		{"order_data", "GET", "/v2/data?id=" + w1, ""},
		{"order_bad_field", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TP_ITEMS","FieldName":"nope","Value":"1"}]}`},
		{"v1_tab", "PUT", "/v1/tab", `{"WindowId":"` + w1 + `","PagePath":{"PageName":"TABPAGE_1"}}`},
		{"v1_change_wrong_tab", "PUT", "/v1/change", `{"WindowId":"` + w1 + `","ChangeRequests":[{"DataWindowName":"d_items","FieldName":"unit_quantity","Value":"2"}]}`},
		{"v1_change", "PUT", "/v1/change", `{"WindowId":"` + w1 + `","ChangeRequests":[{"DataWindowName":"d_order","FieldName":"po_no","Value":"PO-IAPI"}]}`},
		{"v1_save", "PUT", "/v1/data", `{"WindowId":"` + w1 + `"}`},
		{"window_close", "DELETE", "/v2/window?windowId=" + w1, ""},
		{"window_gone", "GET", "/v2/data?id=" + w1, ""},
		{"session_end", "DELETE", "/sessions/", ""},
	})
}

// Customer Maintenance: a new customer over two tabs, saved with the
// Save tool; then retrieved and changed. Without response window
// handling, questions take their default answer.
func TestCustomerMaintenance(t *testing.T) {
	h := newHandler(t)
	w1 := "00000000-0000-4000-8000-000000000002"
	run(t, h, "api_user", []step{
		{"cust_session", "POST", "/sessions", `{"ResponseWindowHandlingEnabled":false}`},
		{"cust_open_by_title", "POST", "/v2/window", `{"Title":"Customer Maintenance"}`},
		{"cust_name", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TABPAGE_1","FieldName":"customer_name","Value":"Interactive Test Co"},{"TabName":"TABPAGE_1","FieldName":"mail_state","Value":"WI"}]}`},
		{"cust_credit", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TABPAGE_2","FieldName":"credit_limit","Value":"12000"},{"TabName":"TABPAGE_2","FieldName":"terms_id","Value":"Net 45 Days"}]}`},
		{"cust_bad_choice", "PUT", "/v2/change", `{"WindowId":"` + w1 + `","List":[{"TabName":"TABPAGE_2","FieldName":"terms_id","Value":"NET45"}]}`},
		{"cust_tools", "GET", "/v2/tools?windowId=" + w1, ""},
		{"cust_save_tool", "POST", "/v2/tools", `{"WindowId":"` + w1 + `","ToolName":"cb_save","ToolText":"Save"}`},
		{"cust_window", "GET", "/v2/window?windowId=" + w1, ""},
		{"cust_open_order", "POST", "/v2/window", `{"ServiceName":"Order"}`},
		{"cust_default_answer", "PUT", "/v2/change", `{"WindowId":"00000000-0000-4000-8000-000000000003","List":[{"TabName":"TABPAGE_1","FieldName":"customer_id","Value":"100221"},{"TabName":"TP_ITEMS","FieldName":"nope","Value":"1"}]}`},
		{"cust_items_tab", "PUT", "/v2/tab", `{"WindowId":"00000000-0000-4000-8000-000000000003","PageName":"TP_ITEMS"}`},
		{"cust_add_line", "POST", "/v2/row", `{"WindowId":"00000000-0000-4000-8000-000000000003","DatawindowName":"items"}`},
		{"cust_line", "PUT", "/v2/change", `{"WindowId":"00000000-0000-4000-8000-000000000003","List":[{"TabName":"TP_ITEMS","FieldName":"oe_order_item_id","Value":"FA5-1000"},{"TabName":"TP_ITEMS","FieldName":"unit_quantity","Value":"5000"}]}`},
		{"cust_order_save", "PUT", "/v2/data", `"00000000-0000-4000-8000-000000000003"`},
		{"cust_order_data", "GET", "/v1/data?windowId=00000000-0000-4000-8000-000000000003", ""},
	})
}

func TestNeedsUser(t *testing.T) {
	h := newHandler(t)
	r := sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: base + "/sessions", Body: `{}`})
	if r.Status != 403 || string(r.Body) != `{"error":"invalid_user","error_description":"Error retrieving/validating user"}`+"\n" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	// A session belongs to its token: another token of the same user has none.
	sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: base + "/sessions", Body: `{}`, User: "ann", Session: "s1"})
	r = sandboxtest.Do(h, sandboxtest.Request{Method: "POST", Path: base + "/v2/window", Body: `{"ServiceName":"Order"}`, User: "ann", Session: "s2"})
	if r.Status != 404 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}
