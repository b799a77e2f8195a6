package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
)

var consumers atomic.Int64

// env is a whole gatehouse with --sandbox.
type env struct {
	*apptest.Env
}

func start(t testing.TB, mutate ...func(*app.Config)) *env {
	t.Helper()
	m := append([]func(*app.Config){func(c *app.Config) { c.Sandbox = true }}, mutate...)
	return &env{apptest.New(t, m...)}
}

func (e *env) consumerToken(scope, username string) string {
	e.T.Helper()
	_, key := e.AddConsumer(admin.NewConsumer{Name: fmt.Sprintf("consumer-%d", consumers.Add(1)), Scope: scope})
	body := `{"GrantType":"client_credentials","ClientSecret":"` + key + `"`
	if username != "" {
		body += `,"username":"` + username + `"`
	}
	return e.Token(body + "}")
}

func (e *env) call(method, path, tok, body string, headers ...string) (int, []byte) {
	e.T.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, b := e.Do(req)
	return resp.StatusCode, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	return m
}

func TestScopesAndRoles(t *testing.T) {
	e := start(t)
	// A consumer scoped /odata:supplier reads suppliers, not customers.
	sup := e.consumerToken("/odata:supplier", "")
	if st, b := e.call("GET", "/odataservice/odata/table/supplier?$top=2", sup, ""); st != 200 || len(decode(t, b)["value"].([]any)) != 2 {
		t.Fatalf("suppliers: %d %s", st, b)
	}
	st, b := e.call("GET", "/odataservice/odata/table/customer", sup, "")
	if st != 403 || decode(t, b)["error"] != "insufficient_scope" {
		t.Fatalf("customers: %d %s", st, b)
	}
	if st, _ := e.call("GET", "/api/sales/customers", sup, ""); st != 403 {
		t.Fatalf("entity API with an /odata scope: %d", st)
	}
	// A user whose role denies customer: 403 naming it; suppliers still allowed.
	e.AddRole("clerk")
	all := true
	if _, err := e.App.Admin.SetRoleFlags(context.Background(), "test", "clerk", admin.RoleFlags{AllowAll: &all}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.App.Admin.SetRoleEntries(context.Background(), "test", "clerk", false, []string{"customer"}); err != nil {
		t.Fatal(err)
	}
	e.AddUser("clerk_user", "pw-clerk-1", true, "clerk")
	tok := e.Token(`{"username":"clerk_user","password":"pw-clerk-1"}`)
	st, b = e.call("GET", "/odataservice/odata/table/customer?$top=1", tok, "")
	if m := decode(t, b); st != 403 || m["error"] != "access_denied" || !strings.Contains(m["error_description"].(string), "customer") {
		t.Fatalf("denied table: %d %s", st, b)
	}
	if st, b := e.call("GET", "/odataservice/odata/table/supplier?$top=1", tok, ""); st != 200 {
		t.Fatalf("allowed table: %d %s", st, b)
	}
	// $metadata reaches every table: /api, not an /odata list.
	if st, _ := e.call("GET", "/odataservice/odata/table/$metadata", sup, ""); st != 403 {
		t.Fatalf("$metadata with /odata:supplier: %d", st)
	}
	if st, b := e.call("GET", "/odataservice/odata/table/$metadata", e.consumerToken("/api", ""), ""); st != 200 || !strings.Contains(string(b), `<EntitySet Name="supplier"`) {
		t.Fatalf("$metadata with /api: %d %s", st, b)
	}
	// No token: 401 before the sandbox is reached.
	if st, _ := e.call("GET", "/odataservice/odata/table/supplier", "", ""); st != 401 {
		t.Fatalf("no token: %d", st)
	}
}

func TestInteractiveNeedsUser(t *testing.T) {
	e := start(t)
	noUser := e.consumerToken("/api", "")
	st, b := e.call("POST", "/uiserver0/api/ui/interactive/sessions/", noUser, `{"ResponseWindowHandlingEnabled":false}`)
	if st != 403 || decode(t, b)["error"] != "invalid_user" {
		t.Fatalf("%d %s", st, b)
	}
	// A client's own identity header changes nothing.
	st, _ = e.call("POST", "/uiserver0/api/ui/interactive/sessions/", noUser, `{}`, "X-Gatehouse-User", "admin", "X_Gatehouse_User", "admin")
	if st != 403 {
		t.Fatalf("with a forged header: %d", st)
	}
	e.AddUser("api_user", "pw-api-1", false, "")
	withUser := e.consumerToken("/api", "api_user")
	if st, b := e.call("POST", "/uiserver0/api/ui/interactive/sessions/", withUser, `{}`); st != 200 || decode(t, b)["UserName"] != "api_user" {
		t.Fatalf("%d %s", st, b)
	}
}

// A change through any API is seen through the others, and is made as
// the token's user.
func TestOneDatabase(t *testing.T) {
	e := start(t)
	e.AddUser("api_user", "pw-api-1", true, "")
	tok := e.consumerToken("/api", "api_user")
	st, b := e.call("POST", "/uiserver0/api/v2/transaction", tok, `{"Name":"Order","Transactions":[{"Status":"New","DataElements":[
		{"Name":"TABPAGE_1.order","Type":"Form","Rows":[{"Edits":[{"Name":"customer_id","Value":"100150"},{"Name":"po_no","Value":"ONE-DB"}]}]},
		{"Name":"TP_ITEMS.items","Type":"List","Rows":[{"Edits":[{"Name":"oe_order_item_id","Value":"FA5-1000"},{"Name":"unit_quantity","Value":"2"}]}]}]}]}`,
		"X-Gatehouse-User", "mallory")
	if st != 200 || !strings.Contains(string(b), `"Succeeded":1`) {
		t.Fatalf("transaction: %d %s", st, b)
	}
	st, b = e.call("GET", "/odataservice/odata/table/oe_hdr?$filter="+url.QueryEscape("po_no eq 'ONE-DB'")+"&$select=order_no,taker", tok, "")
	v := decode(t, b)["value"].([]any)
	if st != 200 || len(v) != 1 || v[0].(map[string]any)["taker"] != "api_user" {
		t.Fatalf("odata: %d %s", st, b)
	}
	orderNo := v[0].(map[string]any)["order_no"].(string)
	// The Entity API changes the PO number; the Interactive API sees it and changes a line.
	if st, b := e.call("PUT", "/api/sales/orders/"+orderNo, tok, `{"PoNumber":"ONE-DB-2"}`); st != 200 {
		t.Fatalf("entity: %d %s", st, b)
	}
	e.call("POST", "/uiserver0/api/ui/interactive/sessions/", tok, `{}`)
	_, b = e.call("POST", "/uiserver0/api/ui/interactive/v2/window", tok, `{"ServiceName":"Order"}`)
	win := decode(t, b)["WindowId"].(string)
	steps := []struct{ method, path, body string }{
		{"PUT", "/v2/change", `{"WindowId":"` + win + `","List":[{"TabName":"TABPAGE_1","FieldName":"order_no","Value":"` + orderNo + `"}]}`},
		{"PUT", "/v2/tab", `{"WindowId":"` + win + `","PageName":"TP_ITEMS"}`},
		{"PUT", "/v2/row", `{"WindowId":"` + win + `","DatawindowName":"items","Row":0}`},
		{"PUT", "/v2/change", `{"WindowId":"` + win + `","List":[{"TabName":"TP_ITEMS","FieldName":"unit_quantity","Value":"6"}]}`},
		{"PUT", "/v2/data", `"` + win + `"`},
	}
	for _, s := range steps {
		st, b := e.call(s.method, "/uiserver0/api/ui/interactive"+s.path, tok, s.body)
		if st != 200 || decode(t, b)["Status"] != 1.0 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, st, b)
		}
	}
	st, b = e.call("GET", "/api/sales/orders/"+orderNo+"?extendedproperties=Lines", tok, "")
	if st != 200 || !strings.Contains(string(b), `"PoNumber":"ONE-DB-2"`) || !strings.Contains(string(b), `"Quantity":6`) {
		t.Fatalf("entity read: %d %s", st, b)
	}
	st, b = e.call("POST", "/api/v2/transaction/get", tok, `{"ServiceName":"Order","TransactionStates":[{"DataElementName":"TABPAGE_1.order","Keys":[{"Name":"order_no","Value":"`+orderNo+`"}]}]}`)
	if st != 200 || !strings.Contains(string(b), `{"Name":"unit_quantity","Value":"6"}`) {
		t.Fatalf("transaction get: %d %s", st, b)
	}
}

// Without a user, the Transaction API acts as the install user.
func TestTransactionInstallUser(t *testing.T) {
	e := start(t, func(c *app.Config) { c.InstallUser = "p21_install" })
	tok := e.consumerToken("/uiserver0;/odata:customer", "")
	st, b := e.call("POST", "/uiserver0/api/v2/transaction", tok, `{"Name":"Customer","Transactions":[{"DataElements":[
		{"Name":"TABPAGE_1.customer","Rows":[{"Edits":[{"Name":"customer_name","Value":"Installed Co"}]}]}]}]}`)
	if st != 200 || !strings.Contains(string(b), `"Succeeded":1`) {
		t.Fatalf("%d %s", st, b)
	}
	st, b = e.call("GET", "/odataservice/odata/table/customer?$filter="+url.QueryEscape("customer_name eq 'installed co'")+"&$select=last_maintained_by", tok, "")
	if st != 200 || !strings.Contains(string(b), `"last_maintained_by":"p21_install"`) {
		t.Fatalf("%d %s", st, b)
	}
}

func TestConfiguration(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Sandbox = true
	cfg.Upstreams = []string{"sdk=http://127.0.0.1:9", "odata=http://127.0.0.1:9"}
	if _, err := app.New(context.Background(), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "--upstream also names odata") {
		t.Fatalf("sandbox and upstream for odata: %v", err)
	}
	cfg = apptest.Config(t)
	cfg.SandboxReset = true
	if _, err := app.New(context.Background(), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "needs --sandbox") {
		t.Fatalf("reset without sandbox: %v", err)
	}
	// Other families keep their upstreams beside the sandbox.
	cfg = apptest.Config(t)
	cfg.Sandbox = true
	cfg.Upstreams = []string{"sdk=http://127.0.0.1:9"}
	a, err := app.New(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := strings.Join(a.Gateway.Families(), ","); got != "api,interactive,inventory,odata,sdk,transaction" {
		t.Fatalf("families %s", got)
	}
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	run := func(reset bool) int {
		cfg := apptest.Config(t)
		cfg.DataDir, cfg.Sandbox, cfg.SandboxReset = dir, true, reset
		e := &env{apptest.Start(t, cfg)}
		defer e.Close()
		tok := e.consumerToken("/api", "")
		e.call("POST", "/api/sales/customers", tok, `{"CustomerName":"Another"}`)
		_, b := e.call("GET", "/odataservice/odata/table/customer/$count", tok, "")
		var n int
		fmt.Sscan(string(b), &n)
		return n
	}
	if n := run(false); n != 121 {
		t.Fatalf("first run: %d customers", n)
	}
	if n := run(false); n != 122 {
		t.Fatalf("second run keeps the data: %d customers", n)
	}
	if n := run(true); n != 121 {
		t.Fatalf("reset: %d customers", n)
	}
}

// Reads and writes through several APIs at once: every write is counted,
// every read answers.
func TestConcurrentUse(t *testing.T) {
	e := start(t)
	tok := e.consumerToken("/api", "")
	const writers, each = 4, 5
	errs := make(chan error, 2*writers)
	for w := 0; w < writers; w++ {
		go func(w int) {
			for i := 0; i < each; i++ {
				req, _ := http.NewRequest("POST", e.URL+"/api/sales/customers", strings.NewReader(fmt.Sprintf(`{"CustomerName":"Concurrent %d-%d"}`, w, i)))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.Server.Client().Do(req)
				if err == nil && resp.StatusCode != 201 {
					err = fmt.Errorf("create: %d", resp.StatusCode)
				}
				if resp != nil {
					resp.Body.Close()
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
		go func() {
			for i := 0; i < each; i++ {
				req, _ := http.NewRequest("GET", e.URL+"/odataservice/odata/table/customer?$filter="+url.QueryEscape("startswith(customer_name,'Concurrent')")+"&$count=true", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.Server.Client().Do(req)
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("read: %d", resp.StatusCode)
				}
				if resp != nil {
					resp.Body.Close()
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < 2*writers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, b := e.call("GET", "/odataservice/odata/table/customer/$count?$filter="+url.QueryEscape("startswith(customer_name,'Concurrent')"), tok, "")
	if st != 200 || string(b) != fmt.Sprint(writers*each) {
		t.Fatalf("%d %s", st, b)
	}
}
