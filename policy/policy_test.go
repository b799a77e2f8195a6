package policy

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/scope"
)

func table(t testing.TB) *Table {
	t.Helper()
	tb, err := NewTable(DefaultFamilies())
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// resolve is Resolve for a path whose query, if any, follows a "?".
func resolve(tb *Table, uri string) (Match, error) {
	p, q, _ := strings.Cut(uri, "?")
	return tb.Resolve(p, q)
}

// describe sums up a match as "family object,object kind [all]".
func describe(m Match) string {
	got := m.Family.Name
	if m.Family.Objects {
		got += " " + strings.Join(m.Objects, ",") + " " + m.Kind
		if m.All != "" {
			got += " all"
		}
	}
	return got
}

func TestResolveFamilies(t *testing.T) {
	tb := table(t)
	for raw, want := range map[string]string{
		"/odataservice/odata/table/supplier":        "odata supplier table",
		"/odataservice/odata/table/supplier(12)":    "odata supplier table",
		"/odataservice/odata/table/supplier('a-1')": "odata supplier table",
		"/odataservice/odata/table/supplier/$count": "odata supplier table",
		"/odataservice/odata/view/p21_view_order":   "odata p21_view_order view",
		"/ODataService/OData/Table/Supplier/":       "odata supplier table",
		"/odataservice/odata/table/%73upplier":      "odata supplier table",
		"/odataservice/odata/table/":                "odata  table all",
		"/odataservice/odata/table":                 "odata  table all",
		"/api/.configuration/settings":              "configuration",
		"/api/ui/router/v1":                         "router",
		"/api/entity/customers/":                    "api",
		"/API":                                      "api",
		"/api/inventoryx":                           "api",
		"/apix":                                     "",
		"/odataservice/odata/$metadata":             "",
		"/other":                                    "",
		"/api/inventory/parts":                      "inventory",
		"/p21sdk/anything":                          "sdk",
	} {
		m, err := resolve(tb, raw)
		got := ""
		switch {
		case errors.Is(err, ErrUnclaimed):
		case err != nil:
			t.Errorf("Resolve(%q): %v", raw, err)
			continue
		default:
			got = describe(m)
		}
		if got != want {
			t.Errorf("Resolve(%q) = %q, want %q", raw, got, want)
		}
	}
}

// The Transaction, Interactive and Entity API endpoints, under both
// prefixes where P21 has two.
func TestResolveP21Endpoints(t *testing.T) {
	tb := table(t)
	want := map[string][]string{
		"transaction": {
			"/api/v2/services", "/api/v2/definition/Order", "/api/v2/defaults/Order",
			"/api/v2/transaction", "/api/v2/transaction/get", "/api/v2/transaction/async",
			"/api/v2/transaction/async?id=8f14e45f", "/api/v2/transaction/async/callback",
		},
		"interactive": {
			"/api/ui/interactive/sessions", "/api/ui/interactive/sessions/",
		},
		"api": {
			"/api/sales/customers", "/api/sales/customers/100198", "/api/sales/orders", "/api/sales/orders/1001",
			"/api/sales/invoices", "/api/sales/quotes", "/api/purchasing/suppliers", "/api/purchasing/purchaseorders",
			"/api/contacts", "/api/addresses", "/api/entity/customers/",
		},
		"inventory": {"/api/inventory/parts", "/api/inventory/parts/P-100", "/api/inventory/warehouses", "/api/inventory/locations"},
	}
	for _, v := range []string{"v1", "v2"} {
		for _, ep := range []string{"window", "data", "change", "tab", "row", "tools"} {
			want["interactive"] = append(want["interactive"], "/api/ui/interactive/"+v+"/"+ep)
		}
	}
	for fam, paths := range want {
		for _, p := range paths {
			uris := []string{p}
			if fam == "transaction" || fam == "interactive" {
				uris = append(uris, "/uiserver0"+p)
			}
			for _, uri := range uris {
				m, err := resolve(tb, uri)
				if err != nil || m.Family.Name != fam {
					t.Errorf("%s: %v %v, want family %s", uri, m.Family, err, fam)
				}
			}
		}
	}
	for _, uri := range []string{"/uiserver0/api/v2/other", "/uiserver0/api/ui/router/v1", "/uiserver0"} {
		if _, err := resolve(tb, uri); !errors.Is(err, ErrUnclaimed) {
			t.Errorf("%s: %v, want no family", uri, err)
		}
	}
}

// TestCanonical: every spelling that some server resolves to another path
// is refused; canonical spellings decode once.
func TestCanonical(t *testing.T) {
	for raw, want := range map[string]string{
		"/api/entity/customers":                 "/api/entity/customers",
		"/api/entity/customers/":                "/api/entity/customers/",
		"/API/Entity/a%2Bb":                     "/API/Entity/a+b",
		"/api/a%2eb":                            "/api/a.b",
		"/api/%c3%a9t%C3%A9":                    "/api/été",
		"/api/.configuration/x":                 "/api/.configuration/x",
		"/odataservice/odata/table/x('a,b')":    "/odataservice/odata/table/x('a,b')",
		"/api/x:y@z!$&'()*+,=~-_":               "/api/x:y@z!$&'()*+,=~-_",
		"/":                                     "/",
		"/odataservice/odata/table/supplier/..": "error",
		"/odataservice/odata/table/supplier/../customer":  "error",
		"/odataservice/odata/table/%2e%2e/view/x":         "error",
		"/odataservice/odata/table/%2E%2e/x":              "error",
		"/odataservice/odata/table/.%2e/x":                "error",
		"/odataservice/odata/table/./supplier":            "error",
		"/odataservice/odata/table/%2e/supplier":          "error",
		"/odataservice//odata/table/supplier":             "error",
		"//odataservice/odata/table/supplier":             "error",
		"/odataservice/odata/table/customer;x":            "error",
		"/odataservice/odata/table/supplier/..;/customer": "error",
		"/api/.configuration/..;/entity/customers":        "error",
		"/odataservice/odata/table/customer%3bx":          "error",
		"/odataservice/odata/table/supplier%2F..%2Fx":     "error",
		"/odataservice/odata/table/supplier%2f":           "error",
		"/odataservice/odata/table/supplier%5c..":         "error",
		"/odataservice/odata/table/%252e%252e/customer":   "error",
		"/odataservice/odata/table/customer%2500":         "error",
		"/odataservice/odata/table/customer%20":           "error",
		"/odataservice/odata/table/customer.":             "error",
		"/odataservice/odata/table/customer%2e":           "error",
		"/odataservice/odata/table/%20customer":           "error",
		"/odataservice/odata/table/customer%EF%BC%8E":     "error",
		"/api/%EF%BC%8E%EF%BC%8E/x":                       "error",
		"/api/a%EF%BC%8Fb":                                "error",
		"/api/%C0%AE%C0%AE/x":                             "error",
		"/api/%ff":                                        "error",
		"/api/%00":                                        "error",
		"/api/%0a":                                        "error",
		"/api/%7F":                                        "error",
		"/api/%zz":                                        "error",
		"/api/%4":                                         "error",
		"/api/a\\..\\b":                                   "error",
		"/api/a b":                                        "error",
		"/api/a\x00":                                      "error",
		"/api/\u00e9":                                     "error",
		"/api/{x}":                                        "error",
		"/api/a|b":                                        "error",
		"/api/a\"b":                                       "error",
		"api/x":                                           "error",
		"":                                                "error",
		"*":                                               "error",
		"/" + strings.Repeat("a", MaxPathLen):             "error",
	} {
		got, err := Canonical(raw)
		if err != nil {
			if want != "error" {
				t.Errorf("Canonical(%q): %v", raw, err)
			} else if !errors.Is(err, ErrBadPath) || !strings.HasPrefix(err.Error(), "the path ") {
				t.Errorf("Canonical(%q) error %q is not a BadRequestError about the path", raw, err)
			}
			continue
		}
		if got != want {
			t.Errorf("Canonical(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestODataObjects: system resources, navigation and query options are
// judged for the objects they reach.
func TestODataObjects(t *testing.T) {
	tb := table(t)
	const tbl = "/odataservice/odata/table/"
	for uri, want := range map[string]string{
		tbl + "$metadata":                     "all",
		tbl + "$batch":                        "all",
		tbl + "%24batch":                      "all",
		tbl + "$BATCH":                        "all",
		tbl + "$all":                          "all",
		tbl + "$crossjoin(customer,supplier)": "all",
		tbl + "$entity":                       "all",
		tbl + "$root":                         "all",
		tbl + "$whatever":                     "all",
		tbl + "supplier/$count":               "supplier",
		tbl + "supplier(1)/$value":            "supplier",
		tbl + "supplier(1)/contacts":          "supplier,contacts",
		tbl + "supplier(1)/contacts(2)/$ref":  "supplier,contacts",
		tbl + "supplier/$batch":               "error",
		tbl + "supplier/NS.Type":              "error",
		tbl + "supp-lier":                     "error",
		tbl + "1supplier":                     "error",
		tbl + "supplier(1":                    "error",
		tbl + "supplier(1)x":                  "error",
		tbl + "supplier?$top=5&$skip=10&$count=true&$format=json":                                    "supplier",
		tbl + "supplier?$select=name,city":                                                           "supplier",
		tbl + "supplier?$select=*":                                                                   "supplier",
		tbl + "supplier?$select=":                                                                    "supplier",
		tbl + "supplier?$select=address/city":                                                        "supplier,address",
		tbl + "supplier?$select=contacts($select=name)":                                              "supplier,contacts",
		tbl + "supplier?$expand=customer":                                                            "supplier,customer",
		tbl + "supplier?%24expand=customer":                                                          "supplier,customer",
		tbl + "supplier?$EXPAND=customer":                                                            "supplier,customer",
		tbl + "supplier?expand=customer":                                                             "supplier,customer",
		tbl + "supplier?$expand=*":                                                                   "supplier all",
		tbl + "supplier?$expand=*/$ref":                                                              "supplier all",
		tbl + "supplier?$expand=customer/$ref":                                                       "supplier,customer",
		tbl + "supplier?$expand=NS.Special/customer":                                                 "supplier,customer",
		tbl + "supplier?$expand=contacts($expand=customer;$select=name;$top=2)":                      "supplier,contacts,customer",
		tbl + "supplier?$expand=contacts($filter=customer/id%20eq%201)":                              "supplier,contacts,customer",
		tbl + "supplier?$expand=a,b":                                                                 "supplier,a,b",
		tbl + "supplier?$expand=a&$expand=b":                                                         "supplier,a,b",
		tbl + "supplier?$expand=a(":                                                                  "error",
		tbl + "supplier?$expand=":                                                                    "error",
		tbl + "supplier?$expand=a%2":                                                                 "error",
		tbl + "supplier?$expand=a-b":                                                                 "error",
		tbl + "supplier?$expand=$levels":                                                             "error",
		tbl + "supplier?$filter=name%20eq%20'x'":                                                     "supplier",
		tbl + "supplier?$filter=name%20eq%20'customer/x'":                                            "supplier",
		tbl + "supplier?$filter=name%20eq%20'it''s/x'":                                               "supplier",
		tbl + "supplier?$filter=customer/name%20eq%20'x'":                                            "supplier,customer",
		tbl + "supplier?$filter=contacts/any(c:c/email%20ne%20null)":                                 "supplier,contacts",
		tbl + "supplier?$filter=contacts/any(c:c/orders/any(o:o/total%20gt%205))":                    "supplier,contacts,orders",
		tbl + "supplier?$filter=$it/name%20eq%20'x'":                                                 "supplier",
		tbl + "supplier?$filter=$root/customer(1)/name%20eq%20name":                                  "supplier,customer all",
		tbl + "supplier?$filter=contains(name,'a')%20and%20date%20gt%202024-01-01T10:00:00Z":         "supplier",
		tbl + "supplier?$filter=name%20eq%20'open":                                                   "error",
		tbl + "supplier?$filter=@p&@p=customer/name":                                                 "supplier,customer",
		tbl + "supplier?$orderby=customer/name%20desc,id":                                            "supplier,customer",
		tbl + "supplier?$apply=groupby((customer/name))":                                             "supplier,customer",
		tbl + "supplier?$apply=expand(orders,filter(total%20gt%205))":                                "supplier,orders",
		tbl + "supplier?$id=../customer(1)":                                                          "error",
		tbl + "supplier?$search=customer/x&custom=a/b&x=%zz":                                         "supplier",
		tbl + "supplier?$top=%zz":                                                                    "supplier",
		tbl + "supplier?$filter=%zz":                                                                 "error",
		tbl + "supplier?$expand=" + strings.Repeat("a($expand=", 20) + "b" + strings.Repeat(")", 20): "error",
	} {
		m, err := resolve(tb, uri)
		got := ""
		switch {
		case err != nil:
			got = "error"
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("%s: error %v is not ErrBadPath", uri, err)
			}
		default:
			got = strings.Join(m.Objects, ",")
			if m.All != "" {
				got = strings.TrimSpace(got + " all")
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q (%v)", uri, got, want, err)
		}
	}
}

// A family may opt out of the OData rules (odata: false): its object is the
// segment after the prefix and its query is not read.
func TestNonODataObjectFamily(t *testing.T) {
	off := false
	fams := append(DefaultFamilies(), Family{Name: "docs", Paths: []string{"/docs/"}, GrantedBy: []string{"/api"},
		Users: CheckODataObject, Objects: true, OData: &off})
	tb, err := NewTable(fams)
	if err != nil {
		t.Fatal(err)
	}
	m, err := resolve(tb, "/docs/$batch/x?$expand=*")
	if err != nil || describe(m) != "docs $batch docs" {
		t.Fatalf("non-OData object family: %q %v", describe(m), err)
	}
	bad := []Family{{Name: "x", Paths: []string{"/x"}, GrantedBy: []string{"/api"}, OData: &off}}
	if _, err := NewTable(bad); err == nil {
		t.Fatal("odata on a family without objects was accepted")
	}
}

func mustScope(t testing.TB, s string) scope.Scope {
	sc, err := scope.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestDecide covers the seeds' "API-Specific Behavior" and "Permission
// Requirements by Auth Method" tables and SPEC §4.3–4.4.
func TestDecide(t *testing.T) {
	tb := table(t)
	allowed := &gatehouse.User{Name: "api_user", AllowODataAPI: true, Role: "clerk"}
	noOData := &gatehouse.User{Name: "plain_user", Role: "clerk"}
	deleted := &gatehouse.User{Name: "gone", AllowODataAPI: true, Deleted: true, Role: "clerk"}
	denySupplier := &gatehouse.Role{Name: "clerk", AllowAllTables: true, Entries: []gatehouse.RoleEntry{{Object: "supplier", Kind: gatehouse.KindTable, Allow: false}}}
	allTables := &gatehouse.Role{Name: "clerk", AllowAllTables: true}
	allViews := &gatehouse.Role{Name: "clerk", AllowAllViews: true}
	allowAll := &gatehouse.Role{Name: "clerk", AllowAll: true}
	onlyPrice := &gatehouse.Role{Name: "clerk", Entries: []gatehouse.RoleEntry{{Object: "price_page", Kind: gatehouse.KindTable, Allow: true}}}
	explicitAllowOverFlags := &gatehouse.Role{Name: "clerk", Entries: []gatehouse.RoleEntry{{Object: "secret_view", Kind: gatehouse.KindView, Allow: true}}}
	denyEvenWithAll := &gatehouse.Role{Name: "clerk", AllowAll: true, Entries: []gatehouse.RoleEntry{{Object: "customer", Kind: gatehouse.KindTable, Allow: false}}}

	consumer := func(sc, user string) Subject { return Subject{Consumer: true, Username: user, Scope: mustScope(t, sc)} }
	userTok := func(name string) Subject { return Subject{Username: name, Scope: mustScope(t, "/api")} }

	cases := []struct {
		name   string
		path   string
		sub    Subject
		st     State
		code   string // "" for allow
		acting string
		desc   string
	}{
		// API-Specific Behavior, consumer key without / with username.
		{"odata consumer no user", "/odataservice/odata/table/supplier", consumer("/api", ""), State{}, "", "", ""},
		{"odata consumer with user (ignored for data)", "/odataservice/odata/table/supplier", consumer("/api", "whoever"), State{}, "", "whoever", ""},
		{"entity consumer no user", "/api/entity/customers", consumer("/api", ""), State{}, "", "", ""},
		{"entity consumer with user", "/api/entity/customers", consumer("/api", "api_user"), State{}, "", "api_user", ""},
		{"inventory consumer no user", "/api/inventory/parts", consumer("/api", ""), State{}, "", "", ""},
		{"transaction consumer no user runs as install user", "/uiserver0/api/v2/transaction/get", consumer("/api", ""), State{}, "", "admin", ""},
		{"transaction consumer with user", "/uiserver0/api/v2/transaction/get", consumer("/api", "api_user"), State{}, "", "api_user", ""},
		{"interactive consumer no user", "/uiserver0/api/ui/interactive/sessions", consumer("/api", ""), State{}, "invalid_user", "", "Error retrieving/validating user"},
		{"interactive consumer unknown user", "/uiserver0/api/ui/interactive/sessions", consumer("/api", "nobody"), State{}, "invalid_user", "", "Error retrieving/validating user"},
		{"interactive consumer deleted user", "/uiserver0/api/ui/interactive/sessions", consumer("/api", "gone"), State{User: deleted}, "invalid_user", "", ""},
		{"interactive consumer real user without odata flag", "/uiserver0/api/ui/interactive/sessions", consumer("/api", "PLAIN_USER"), State{User: noOData}, "", "plain_user", ""},
		{"interactive with /uiserver0 scope", "/uiserver0/api/ui/interactive/sessions", consumer("/uiserver0", "api_user"), State{User: allowed}, "", "api_user", ""},
		{"interactive with /ui scope", "/api/ui/interactive/x", consumer("/ui", "api_user"), State{User: allowed}, "", "api_user", ""},

		// Scope.
		{"odata list grants named table", "/odataservice/odata/table/supplier", consumer("/odata:supplier,price_page", ""), State{}, "", "", ""},
		{"odata list case-insensitive", "/odataservice/odata/table/SUPPLIER", consumer("/odata:Supplier", ""), State{}, "", "", ""},
		{"odata list refuses other table", "/odataservice/odata/table/customer", consumer("/odata:supplier,price_page", ""), State{}, "insufficient_scope", "", "Consumer key does not have access to this API."},
		{"odata list refuses entity api", "/api/entity/customers/", consumer("/odata:supplier,price_page", ""), State{}, "insufficient_scope", "", ""},
		{"odata list refuses bare listing", "/odataservice/odata/table/", consumer("/odata:supplier", ""), State{}, "insufficient_scope", "", ""},
		{"uiserver0 refuses odata", "/odataservice/odata/table/supplier", consumer("/uiserver0", ""), State{}, "insufficient_scope", "", ""},
		{"uiserver0 refuses entity", "/api/entity/customers", consumer("/uiserver0", ""), State{}, "insufficient_scope", "", ""},
		{"configuration scope", "/api/.configuration/x", consumer("/api/.configuration", ""), State{}, "", "", ""},
		{"configuration scope refuses api", "/api/entity/x", consumer("/api/.configuration", ""), State{}, "insufficient_scope", "", ""},
		{"sdk needs /p21sdk", "/p21sdk/x", consumer("/api", ""), State{}, "insufficient_scope", "", ""},
		{"sdk granted", "/p21sdk/x", consumer("/api;/p21sdk", ""), State{}, "", "", ""},
		{"router with /ui", "/api/ui/router/v1", consumer("/ui", ""), State{}, "", "", ""},
		{"plain-name scope refuses P21 families", "/api/entity/x", consumer("access", ""), State{}, "insufficient_scope", "", ""},

		// User credentials: Application Security and Dataservice Permission.
		{"user without allow_odata", "/odataservice/odata/table/supplier", userTok("plain_user"), State{User: noOData, Role: allTables}, "access_denied", "", "You are not authorized to access API"},
		{"user without allow_odata on entity", "/api/entity/customers", userTok("plain_user"), State{User: noOData}, "access_denied", "", ""},
		{"user with allow_odata on entity", "/api/entity/customers", userTok("api_user"), State{User: allowed}, "", "api_user", ""},
		{"deleted user", "/api/entity/customers", userTok("gone"), State{User: deleted}, "access_denied", "", ""},
		{"user that no longer exists", "/api/entity/customers", userTok("ghost"), State{}, "access_denied", "", ""},
		{"role denies supplier explicitly", "/odataservice/odata/table/supplier", userTok("api_user"), State{User: allowed, Role: denySupplier}, "access_denied", "", "supplier"},
		{"role all tables allows other", "/odataservice/odata/table/customer", userTok("api_user"), State{User: allowed, Role: denySupplier}, "", "api_user", ""},
		{"all tables", "/odataservice/odata/table/supplier", userTok("api_user"), State{User: allowed, Role: allTables}, "", "api_user", ""},
		{"all tables is not all views", "/odataservice/odata/view/v1", userTok("api_user"), State{User: allowed, Role: allTables}, "access_denied", "", "v1"},
		{"all views", "/odataservice/odata/view/v1", userTok("api_user"), State{User: allowed, Role: allViews}, "", "api_user", ""},
		{"catalog kind wins over path", "/odataservice/odata/table/v1", userTok("api_user"), State{User: allowed, Role: allViews, Kinds: map[string]gatehouse.ObjectKind{"v1": gatehouse.KindView}}, "", "api_user", ""},
		{"allow all", "/odataservice/odata/view/v1", userTok("api_user"), State{User: allowed, Role: allowAll}, "", "api_user", ""},
		{"explicit deny beats allow all", "/odataservice/odata/table/customer", userTok("api_user"), State{User: allowed, Role: denyEvenWithAll}, "access_denied", "", "customer"},
		{"explicit allow without flags", "/odataservice/odata/view/secret_view", userTok("api_user"), State{User: allowed, Role: explicitAllowOverFlags}, "", "api_user", ""},
		{"entry for one table only", "/odataservice/odata/table/supplier", userTok("api_user"), State{User: allowed, Role: onlyPrice}, "access_denied", "", ""},
		{"no role denies objects", "/odataservice/odata/table/supplier", userTok("api_user"), State{User: allowed}, "access_denied", "", ""},
		{"no role still reaches non-object APIs", "/api/inventory/x", userTok("api_user"), State{User: allowed}, "", "api_user", ""},
		// No object named: the request reaches every object of its kind.
		{"bare table listing, one entry only", "/odataservice/odata/table/", userTok("api_user"), State{User: allowed, Role: onlyPrice}, "access_denied", "", "every object"},
		{"bare table listing without slash", "/odataservice/odata/table", userTok("api_user"), State{User: allowed, Role: onlyPrice}, "access_denied", "", ""},
		{"bare table listing, no role", "/odataservice/odata/table/", userTok("api_user"), State{User: allowed}, "access_denied", "", ""},
		{"bare table listing, all tables", "/odataservice/odata/table/", userTok("api_user"), State{User: allowed, Role: allTables}, "", "api_user", ""},
		{"bare view listing, all tables only", "/odataservice/odata/view/", userTok("api_user"), State{User: allowed, Role: allTables}, "access_denied", "", ""},
		{"bare table listing, allow all", "/odataservice/odata/table/", userTok("api_user"), State{User: allowed, Role: allowAll}, "", "api_user", ""},
		{"bare table listing, allow all with a denied table", "/odataservice/odata/table/", userTok("api_user"), State{User: allowed, Role: denyEvenWithAll}, "access_denied", "", ""},
		{"bare table listing, consumer /api", "/odataservice/odata/table/", consumer("/api", ""), State{}, "", "", ""},
		{"user token lacks /p21sdk", "/p21sdk/x", userTok("api_user"), State{User: allowed}, "insufficient_scope", "", ""},
		{"user token interactive", "/api/ui/interactive/x", userTok("api_user"), State{User: allowed}, "", "api_user", ""},
		{"user token transaction acts as the user", "/api/v2/transaction/x", userTok("api_user"), State{User: allowed}, "", "api_user", ""},
		// A consumer token's user context is any string; one with control
		// characters names no user wherever a user is used.
		{"consumer user context with a newline", "/api/entity/customers", consumer("/api", "a\nX-Evil: 1"), State{}, "invalid_user", "", ""},
		{"consumer user context with a tab is fine", "/api/entity/customers", consumer("/api", "a\tb"), State{}, "", "a\tb", ""},
		{"consumer user context with a leading space", "/api/entity/customers", consumer("/api", " lead"), State{}, "invalid_user", "", ""},
		{"consumer user context with a trailing tab", "/api/entity/customers", consumer("/api", "trail\t"), State{}, "invalid_user", "", ""},
		{"consumer long user context", "/api/entity/customers", consumer("/api", strings.Repeat("u", 5000)), State{}, "", strings.Repeat("u", 5000), ""},
		// OData system resources and navigation reach other objects.
		{"$batch with a table list", "/odataservice/odata/table/$batch", consumer("/odata:supplier", ""), State{}, "insufficient_scope", "", ""},
		{"$metadata with a table list", "/odataservice/odata/table/$metadata", consumer("/odata:supplier", ""), State{}, "insufficient_scope", "", ""},
		{"$crossjoin with a table list", "/odataservice/odata/table/$crossjoin(supplier)", consumer("/odata:supplier", ""), State{}, "insufficient_scope", "", ""},
		{"$batch with /api", "/odataservice/odata/table/$batch", consumer("/api", ""), State{}, "", "", ""},
		{"$expand of a listed table", "/odataservice/odata/table/supplier?$expand=customer", consumer("/odata:supplier,customer", ""), State{}, "", "", ""},
		{"$expand of an unlisted table", "/odataservice/odata/table/supplier?$expand=customer", consumer("/odata:supplier", ""), State{}, "insufficient_scope", "", ""},
		{"$expand=* with a table list", "/odataservice/odata/table/supplier?$expand=*", consumer("/odata:supplier,customer", ""), State{}, "insufficient_scope", "", ""},
		{"navigation to an unlisted table", "/odataservice/odata/table/supplier(1)/customer", consumer("/odata:supplier", ""), State{}, "insufficient_scope", "", ""},
		{"role deny reached through $expand", "/odataservice/odata/table/customer?$expand=supplier", userTok("api_user"), State{User: allowed, Role: denySupplier}, "access_denied", "", "supplier"},
		{"role deny reached through $select", "/odataservice/odata/table/customer?$select=supplier/name", userTok("api_user"), State{User: allowed, Role: denySupplier}, "access_denied", "", "supplier"},
		{"role deny reached through $filter", "/odataservice/odata/table/customer?$filter=supplier/name%20eq%20'x'", userTok("api_user"), State{User: allowed, Role: denySupplier}, "access_denied", "", "supplier"},
		{"$batch for all tables", "/odataservice/odata/table/$batch", userTok("api_user"), State{User: allowed, Role: allTables}, "", "api_user", ""},
		{"$batch when a table is denied", "/odataservice/odata/table/$batch", userTok("api_user"), State{User: allowed, Role: denySupplier}, "access_denied", "", "$batch"},
		{"$metadata when only one table is allowed", "/odataservice/odata/table/$metadata", userTok("api_user"), State{User: allowed, Role: onlyPrice}, "access_denied", "", "$metadata"},
		// Consumer keys bypass user permissions even when the user lacks them.
		{"consumer with user lacking permissions", "/odataservice/odata/table/supplier", consumer("/api", "plain_user"), State{User: noOData}, "", "plain_user", ""},
	}
	for _, tc := range cases {
		m, err := resolve(tb, tc.path)
		if err != nil {
			t.Fatalf("%s: %s: %v", tc.name, tc.path, err)
		}
		d := Decide(m, tc.sub, tc.st, "admin")
		switch {
		case tc.code == "" && !d.Allow:
			t.Errorf("%s: refused %v", tc.name, d.Refusal)
		case tc.code == "" && d.ActingUser != tc.acting:
			t.Errorf("%s: acting user %q, want %q", tc.name, d.ActingUser, tc.acting)
		case tc.code != "" && d.Allow:
			t.Errorf("%s: allowed, want %s", tc.name, tc.code)
		case tc.code != "" && (d.Refusal.Code != tc.code || d.Refusal.Status != 403 || !strings.Contains(d.Refusal.Description, tc.desc)):
			t.Errorf("%s: refusal %d %s %q, want 403 %s mentioning %q", tc.name, d.Refusal.Status, d.Refusal.Code, d.Refusal.Description, tc.code, tc.desc)
		}
	}
}

func TestNeeds(t *testing.T) {
	tb := table(t)
	m, _ := tb.Classify("/odataservice/odata/table/supplier")
	if u, r, c := Needs(m, Subject{Username: "x"}); !u || !r || !c {
		t.Error("user token on odata object needs user, role and catalog")
	}
	m, _ = resolve(tb, "/odataservice/odata/table/$batch")
	if u, r, c := Needs(m, Subject{Username: "x"}); !u || !r || c {
		t.Errorf("user token on $batch needs user and role, not the catalog: %t %t %t", u, r, c)
	}
	m, _ = resolve(tb, "/odataservice/odata/table/supplier")
	if u, r, c := Needs(m, Subject{Username: "x"}); !u || !r || !c {
		t.Error("user token on odata object needs user, role and catalog")
	}
	if u, _, _ := Needs(m, Subject{Username: "x", Consumer: true}); u {
		t.Error("consumer token on odata needs no user")
	}
	m, _ = tb.Classify("/odataservice/odata/table/")
	if u, r, c := Needs(m, Subject{Username: "x"}); !u || !r || c {
		t.Errorf("user token on a bare odata listing needs user and role, not the catalog: %t %t %t", u, r, c)
	}
	m, _ = tb.Classify("/api/ui/interactive/x")
	if u, _, _ := Needs(m, Subject{Username: "x", Consumer: true}); !u {
		t.Error("interactive needs the user")
	}
}

func TestCustomFamilies(t *testing.T) {
	fams := append(DefaultFamilies(), Family{Name: "apx", Paths: []string{"/apx/v1"}, GrantedBy: []string{"access"}, Users: CheckNone})
	tb, err := NewTable(fams)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := tb.Classify("/APX/v1/orders")
	if !ok || m.Family.Name != "apx" {
		t.Fatalf("apx path: %v %v", ok, m.Family)
	}
	if d := Decide(m, Subject{Consumer: true, Scope: mustScope(t, "access")}, State{}, "admin"); !d.Allow {
		t.Fatalf("access scope refused: %v", d.Refusal)
	}
	if d := Decide(m, Subject{Scope: mustScope(t, "/api")}, State{}, "admin"); d.Allow {
		t.Fatal("/api granted the apx family")
	}
	for _, bad := range [][]Family{
		{{Name: "a", Paths: []string{"/x"}, GrantedBy: []string{"/api"}}, {Name: "a", Paths: []string{"/y"}, GrantedBy: []string{"/api"}}},
		{{Name: "a", Paths: []string{"/x"}, GrantedBy: []string{"/api"}}, {Name: "b", Paths: []string{"/X/"}, GrantedBy: []string{"/api"}}},
		{{Name: "a", Paths: []string{"/"}, GrantedBy: []string{"/api"}}},
		{{Name: "a", Paths: []string{"/x"}}},
		{{Name: "a", Paths: []string{"/x"}, GrantedBy: []string{"/bad path"}}},
		{{Name: "a", Paths: []string{"/x"}, GrantedBy: []string{"/api"}, Users: "sometimes"}},
		{{Name: "", Paths: []string{"/x"}, GrantedBy: []string{"/api"}}},
	} {
		if _, err := NewTable(bad); err == nil {
			t.Errorf("NewTable accepted %+v", bad)
		}
	}
}

// FuzzResolve checks what the canonical rule promises: an accepted path
// is already in the form every server resolves it to (no dot or empty
// segment, no parameter, decoding once is final), and the match is stable.
func FuzzResolve(f *testing.F) {
	tb := table(f)
	for _, s := range []string{"/api", "/odataservice/odata/table/%2e%2e/x", "//a//b/../c/", "/%", "/a%2fb",
		"/odataservice/odata/table/x;y", "/odataservice/odata/table/s?$expand=a($expand=b;$select=c)",
		"/odataservice/odata/table/s?$filter=a/any(x:x/b eq 'q''/')", "/odataservice/odata/table/$crossjoin(a,b)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, q, _ := strings.Cut(s, "?")
		c, err := Canonical(p)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Canonical(%q): %v is not ErrBadPath", p, err)
			}
			return
		}
		if strings.Contains(c, "//") || strings.Contains(c, ";") || strings.Contains(c, "\\") {
			t.Fatalf("Canonical(%q) = %q is not canonical", p, c)
		}
		for _, seg := range strings.Split(c, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Canonical(%q) = %q has a dot segment", p, c)
			}
		}
		if path.Clean(c) != strings.TrimSuffix(c, "/") && c != "/" {
			t.Fatalf("Canonical(%q) = %q is not clean", p, c)
		}
		m, err := tb.Resolve(p, q)
		if err != nil {
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrUnclaimed) {
				t.Fatalf("Resolve(%q): unexpected error %v", s, err)
			}
			return
		}
		// A path naming objects names valid ones.
		for _, o := range m.Objects {
			if !isIdent(o) || o != strings.ToLower(o) {
				t.Fatalf("Resolve(%q): object %q", s, o)
			}
		}
		m2, ok := tb.Classify(c)
		if !ok || m2.Family != m.Family {
			t.Fatalf("Resolve and Classify disagree on %q", s)
		}
	})
}
