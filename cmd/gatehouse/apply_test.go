package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/store/sqlite"
)

const setupYAML = `
catalog:
  - {name: supplier, kind: table}
  - {name: price_page, kind: table}
  - {name: p21_view_inv, kind: view}
roles:
  - name: clerk
    allow_all_tables: true
    allow: [p21_view_inv]
    deny: [price_page]
users:
  - {name: api_user, role: clerk, allow_odata_api: true, password_env: API_USER_PASSWORD}
  - {name: ops, admin: true}
consumers:
  - name: MY_SERVICE_APP
    type: service
    sdk_access: true
    expires: never
    scope: /odata:supplier,price_page
    key_env: APP_KEY
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gatehouse.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestApply: a dry run changes nothing; apply creates everything; a
// second apply changes nothing; a changed scope changes the scope and
// keeps the key; every change is audited under the operator's name.
func TestApply(t *testing.T) {
	dir := t.TempDir()
	const key = "0f8fad5b-d9cb-469f-a165-70867728950e"
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey, "API_USER_PASSWORD": "pw-of-api-user", "APP_KEY": key}
	mustCLI(t, "", env, "--data", dir, "migrate")
	file := writeFile(t, "setup.yaml", setupYAML)

	out := mustCLI(t, "", env, "--data", dir, "apply", file, "--dry-run")
	for _, want := range []string{"+ catalog supplier (table)", "+ role clerk", "~ role clerk: allow_all_tables false → true",
		"~ role clerk: deny table:price_page", "~ role clerk: allow view:p21_view_inv", "+ user api_user", "password from $API_USER_PASSWORD",
		"+ consumer MY_SERVICE_APP", "key from $APP_KEY", "dry run: nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, key) || strings.Contains(out, "pw-of-api-user") {
		t.Error("a secret was printed")
	}
	if got := mustCLI(t, "", env, "--data", dir, "consumer", "list", "--json"); strings.TrimSpace(got) != "[]" {
		t.Fatalf("the dry run changed the store: %s", got)
	}

	out = mustCLI(t, "", env, "--data", dir, "apply", file)
	if !strings.Contains(out, "changes made") {
		t.Fatalf("apply: %s", out)
	}
	out = mustCLI(t, "", env, "--data", dir, "apply", file)
	if strings.TrimSpace(out) != "nothing to change" {
		t.Fatalf("second apply: %s", out)
	}

	// A changed scope keeps the key.
	st := openStore(t, dir)
	ctx := context.Background()
	before, err := st.GetConsumerByName(ctx, "MY_SERVICE_APP")
	if err != nil {
		t.Fatal(err)
	}
	changed := writeFile(t, "setup2.yaml", strings.Replace(setupYAML, "/odata:supplier,price_page", "/odata:supplier", 1))
	out = mustCLI(t, "", env, "--data", dir, "apply", changed)
	if !strings.Contains(out, `~ consumer MY_SERVICE_APP: scope "/odata:supplier,price_page" → "/odata:supplier"`) || !strings.Contains(out, "1 changes made") {
		t.Fatalf("apply with a changed scope: %s", out)
	}
	c, err := st.GetConsumerByName(ctx, "MY_SERVICE_APP")
	if err != nil || c.Scope != "/odata:supplier" || string(c.KeyHash) != string(before.KeyHash) {
		t.Fatalf("consumer: %+v %v", c, err)
	}
	u, err := st.GetUser(ctx, "api_user")
	if err != nil || u.Role != "clerk" || !u.AllowODataAPI || u.PasswordHash == "" {
		t.Fatalf("user: %+v %v", u, err)
	}
	evs, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, ev := range evs {
		if strings.HasPrefix(ev.Actor, "cli") {
			actions[ev.Action] = true
		}
	}
	for _, a := range []string{"catalog.import", "role.add", "role.set", "role.allow", "role.deny", "user.add", "consumer.add", "consumer.update"} {
		if !actions[a] {
			t.Errorf("no %s audited by the operator (%v)", a, actions)
		}
	}
}

// TestApplyRefusals: secrets are never inline, variables must be set, and
// mistakes are told in plain words with exit status 2.
func TestApplyRefusals(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	mustCLI(t, "", env, "--data", dir, "migrate")
	for _, c := range []struct{ yaml, want string }{
		{"consumers:\n  - {name: a, scope: /api, key: 0f8fad5b-d9cb-469f-a165-70867728950e}\n", "a key is never written in the file"},
		{"consumers:\n  - {name: a, scope: /api, key_env: NOT_SET}\n", "NOT_SET (key_env) is empty or not set"},
		{"users:\n  - {name: a, password_env: NOPE}\n", "NOPE (password_env) is empty or not set"},
		{"userz: []\n", "unknown setting userz"},
		{"users:\n  - {name: a, admin: maybe}\n", "the value maybe is not what this setting takes"},
		{"roles:\n  - {name: r}\n  - {name: R}\n", `role "R" is given twice`},
		{"consumers:\n  - {name: a}\n", "give it a scope"},
		{"consumers:\n  - {name: a, scope: /odata}\n", "OData scope must list tables"},
	} {
		code, out, errs := cli(t, "", env, "--data", dir, "apply", writeFile(t, "s.yaml", c.yaml))
		if code != 2 || !strings.Contains(errs, c.want) || strings.Contains(errs, "main.") || strings.Contains(errs, "*bool") {
			t.Errorf("%q: exit %d, %q %q; want 2 and %q", c.yaml, code, out, errs, c.want)
		}
	}
}

// TestServeBootstrap: serve --bootstrap applies the file at start.
func TestServeBootstrap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	file := writeFile(t, "setup.yaml", setupYAML)
	env := map[string]string{"API_USER_PASSWORD": "pw-of-api-user", "APP_KEY": "0f8fad5b-d9cb-469f-a165-70867728950e"}
	base := serveInProcess(t, env, "--dev", "--data", dir, "--bootstrap", file).base
	st, r := postJSON(t, base+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+env["APP_KEY"]+`"}`)
	if st != 200 || r["Scope"] != "/odata:supplier,price_page;/p21sdk" {
		t.Fatalf("token with the bootstrapped key: %d %v", st, r)
	}
}

func FuzzReadSetup(f *testing.F) {
	f.Add(setupYAML)
	f.Add("consumers:\n  - {name: a, key: x}\n")
	f.Add("roles: [{name: r, allow: [view:x]}]\n")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := readSetup([]byte(s), "f.yaml"); err != nil && !strings.HasPrefix(err.Error(), "f.yaml: ") {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
