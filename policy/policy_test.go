package policy

import (
	"errors"
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

func TestClassify(t *testing.T) {
	tb := table(t)
	for raw, want := range map[string]string{
		"/odataservice/odata/table/supplier":             "odata supplier table",
		"/odataservice/odata/table/supplier(12)/name":    "odata supplier table",
		"/odataservice/odata/view/p21_view_order":        "odata p21_view_order view",
		"/ODataService/OData/Table/Supplier/":            "odata supplier table",
		"/odataservice/odata/table/":                     "odata  table",
		"/api/.configuration/settings":                   "configuration",
		"/api/ui/router/v1":                              "router",
		"/uiserver0/api/ui/interactive/sessions":         "interactive",
		"/api/ui/interactive/v2/window":                  "interactive",
		"/uiserver0/api/v2/transaction/get":              "transaction",
		"/api/v2/transaction":                            "transaction",
		"/api/inventory/parts":                           "inventory",
		"/p21sdk/anything":                               "sdk",
		"/api/entity/customers/":                         "api",
		"/api/sales/orders":                              "api",
		"/API":                                           "api",
		"/apix":                                          "",
		"/odataservice/odata/$metadata":                  "",
		"/other":                                         "",
		"/api/inventoryx":                                "api",
		"/odataservice/odata/table/../../../api/entity/": "api",
	} {
		clean, err := CleanPath(raw)
		if err != nil {
			t.Errorf("CleanPath(%q): %v", raw, err)
			continue
		}
		m, ok := tb.Classify(clean)
		got := ""
		if ok {
			got = m.Family.Name
			if m.Family.Objects {
				got += " " + m.Object + " " + m.Kind
			}
		}
		if got != want {
			t.Errorf("Classify(%q) = %q, want %q", raw, got, want)
		}
	}
}

// Spellings that must not move a request into another family or out of one.
func TestCleanPathCannotEscape(t *testing.T) {
	tb := table(t)
	for raw, want := range map[string]string{
		"/odataservice/odata/table/supplier/../customer": "customer",
		"/odataservice/odata/table/%2e%2e/view/x":        "x view",
		"/odataservice//odata///table/supplier":          "supplier table",
		"/odataservice/odata/table/./supplier":           "supplier table",
		"/odataservice/odata/table/%73upplier":           "supplier table",
		"/odataservice/odata/TABLE/SUPPLIER/":            "supplier table",
		"/odataservice/odata/table/supplier%2F..%2Fx":    "error",
		"/odataservice/odata/table/supplier%5c..":        "error",
		"/api/%00":      "error",
		"/api/%zz":      "error",
		"/api/a\\..\\b": "error",
		"/../../odataservice/odata/table/supplier": "supplier table",
	} {
		clean, err := CleanPath(raw)
		if err != nil {
			if want != "error" {
				t.Errorf("CleanPath(%q): %v", raw, err)
			} else if !errors.Is(err, ErrBadPath) {
				t.Errorf("CleanPath(%q) error %v is not ErrBadPath", raw, err)
			}
			continue
		}
		if want == "error" {
			t.Errorf("CleanPath(%q) = %q, want an error", raw, clean)
			continue
		}
		m, ok := tb.Classify(clean)
		got := ""
		if ok {
			got = m.Object + " " + m.Kind
		}
		if want == "customer" {
			want = "customer table"
		}
		if got != want {
			t.Errorf("%q → %q classified %q, want %q", raw, clean, got, want)
		}
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
		{"catalog kind wins over path", "/odataservice/odata/table/v1", userTok("api_user"), State{User: allowed, Role: allViews, Kind: gatehouse.KindView}, "", "api_user", ""},
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
		// Consumer keys bypass user permissions even when the user lacks them.
		{"consumer with user lacking permissions", "/odataservice/odata/table/supplier", consumer("/api", "plain_user"), State{User: noOData}, "", "plain_user", ""},
	}
	for _, tc := range cases {
		clean, err := CleanPath(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m, ok := tb.Classify(clean)
		if !ok {
			t.Fatalf("%s: %s has no family", tc.name, tc.path)
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

func FuzzCleanPath(f *testing.F) {
	tb := table(f)
	for _, s := range []string{"/api", "/odataservice/odata/table/%2e%2e/x", "//a//b/../c/", "/%", "/a%2fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CleanPath(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(c, "/") || strings.Contains(c, "//") || strings.Contains(c, "/../") || strings.HasSuffix(c, "/..") {
			t.Fatalf("CleanPath(%q) = %q is not clean", s, c)
		}
		// Cleaning is idempotent on the decoded form, and classification of
		// the cleaned path is stable.
		m1, ok1 := tb.Classify(c)
		if strings.Contains(c, "%") {
			return
		}
		c2, err := CleanPath(c)
		if err != nil {
			t.Fatalf("cleaned path %q does not clean again: %v", c, err)
		}
		m2, ok2 := tb.Classify(c2)
		if ok1 != ok2 || (ok1 && (m1.Family != m2.Family || m1.Object != m2.Object)) {
			t.Fatalf("classification of %q changed on re-cleaning", c)
		}
	})
}
