package admin_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
)

var update = flag.Bool("update", false, "rewrite the console screenshots in docs/console/")

// chromium starts Debian's chromium, headless, for one test. Where it is
// missing the test is skipped (in CI it fails: .ci/run installs it). No
// browser is ever downloaded.
func chromium(t *testing.T, width, height int) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		testenv.Skip(t, "chromium", "apt-get install chromium to run the console's browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(width, height), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// signInAs signs in through the form with the keyboard alone: the user
// name field has the focus, Tab moves to the password, Enter submits.
func signInAs(t *testing.T, ctx context.Context, base, user, pw string) {
	t.Helper()
	run(t, ctx, "sign in as "+user,
		chromedp.Navigate(base+"/api/admin/signin"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.KeyEvent(user),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent(pw),
		chromedp.KeyEvent("\r"),
		// The sign-in page has a heading too: wait for what only a
		// signed-in page (or a refusal) shows, so that the next navigation
		// does not cut the sign-in short.
		chromedp.WaitVisible(chromedp.CSS("#who, #error")),
	)
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// js runs a script in the page for its effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	a := chromedp.Evaluate[any](expr)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(get(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

func check(t *testing.T, e *apptest.Env, token, uri string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", e.URL+"/auth/check", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Original-URI", uri)
	resp, _ := e.Do(req)
	return resp.StatusCode
}

// consoleEnv is a server with an administrator alice, a user bob who is
// not one, a clerk role and a catalog.
func consoleEnv(t *testing.T) *apptest.Env {
	t.Helper()
	e, _ := adminEnv(t)
	ctx := context.Background()
	if _, err := e.App.Admin.ImportCatalog(ctx, "test", strings.NewReader("supplier,table\nprice_page,table\np21_view_inv_mast,view\n"), "test"); err != nil {
		t.Fatal(err)
	}
	e.AddRole("clerk")
	e.AddUser("carol", "carol-pw-123", true, "clerk")
	return e
}

// TestBrowserConsole drives the console in a real browser: sign in,
// register a consumer and read its key from the page, use the key, end
// its session and see the token refused, edit a role and see the decision
// change, a POST without its CSRF token refused, a non-administrator
// refused.
func TestBrowserConsole(t *testing.T) {
	ctx := chromium(t, 1280, 900)
	e := consoleEnv(t)
	base := e.URL

	// Sign in.
	signInAs(t, ctx, base, "alice", "alice-pw-123")
	if who := text(t, ctx, "#who"); who != "alice" {
		t.Fatalf("signed in as %q", who)
	}

	// Register a consumer with two OData tables picked from the catalog,
	// read its key from the page and copy it.
	run(t, ctx, "register a consumer",
		chromedp.Click(chromedp.CSS("#tab-consumers")),
		chromedp.WaitVisible(chromedp.CSS("#register")),
		chromedp.SendKeys(chromedp.CSS("#c-name"), "REPORTS_APP"),
		chromedp.SetValue(chromedp.CSS("#c-type"), "web"),
		chromedp.Click(chromedp.CSS("#c-sdk")),
		chromedp.SendKeys(chromedp.CSS("#odata-filter"), "sup"),
		js(`for (const o of document.querySelectorAll('#odata option')) { o.selected = ['supplier','p21_view_inv_mast'].includes(o.value) }`),
		chromedp.Submit(chromedp.CSS("#register")),
		chromedp.WaitVisible(chromedp.CSS("#consumer-key")),
		// The copy button copies the key (or, where the clipboard is not
		// granted, selects it for Ctrl+C) and says which.
		chromedp.Click(chromedp.CSS("#copy-key")),
		chromedp.WaitVisible(chromedp.CSS("#copy-status:not(:empty)")),
	)
	key := text(t, ctx, "#consumer-key")
	if len(key) != 36 {
		t.Fatalf("key %q", key)
	}
	if st := text(t, ctx, "#copy-status"); st != "Copied." && !strings.HasPrefix(st, "Selected") {
		t.Errorf("copy status %q", st)
	}
	if sc := text(t, ctx, "#consumer-scope"); sc != "/odata:supplier,p21_view_inv_mast;/p21sdk" {
		t.Errorf("scope %q", sc)
	}

	// Use the key on the token endpoint.
	resp, b := e.Post("/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("token with the console's key: %d %s", resp.StatusCode, b)
	}
	var tok struct {
		AccessToken string
		SessionID   string `json:"SessionId"`
	}
	json.Unmarshal(b, &tok)
	if c := check(t, e, tok.AccessToken, "/odataservice/odata/table/supplier"); c != 200 {
		t.Fatalf("/auth/check before the end: %d", c)
	}

	// End that session on the dashboard: the token is refused.
	run(t, ctx, "end the session",
		chromedp.Click(chromedp.CSS("#tab-dashboard")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-session="`+tok.SessionID+`"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-session="`+tok.SessionID+`"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	if c := check(t, e, tok.AccessToken, "/odataservice/odata/table/supplier"); c != 401 {
		t.Errorf("/auth/check after the end: %d", c)
	}

	// Edit a role in the permission grid: carol's decision changes.
	carol := e.Token(`{"username":"carol","password":"carol-pw-123"}`)
	if c := check(t, e, carol, "/odataservice/odata/table/supplier"); c != 403 {
		t.Fatalf("carol before the grant: %d", c)
	}
	run(t, ctx, "allow supplier to clerk",
		chromedp.Click(chromedp.CSS("#tab-roles")),
		chromedp.Click(chromedp.CSS(`a[href="/api/admin/roles/clerk"]`)),
		chromedp.WaitVisible(chromedp.CSS("#role-grid")),
		chromedp.Click(chromedp.CSS(`input[aria-label="Allow supplier"]`)),
		chromedp.Submit(chromedp.CSS("#role-grid")),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	testtime.Eventually(t, 5*time.Second, func() error {
		if c := check(t, e, carol, "/odataservice/odata/table/supplier"); c != 200 {
			return fmt.Errorf("carol after the grant: %d", c)
		}
		return nil
	})

	// A form sent without its CSRF token is refused, and changes nothing.
	run(t, ctx, "POST without the CSRF token",
		chromedp.Click(chromedp.CSS("#tab-roles")),
		chromedp.WaitVisible(chromedp.CSS(`#r-name`)),
		chromedp.SendKeys(chromedp.CSS("#r-name"), "forged"),
		js(`document.querySelector('#r-name').form.querySelector('input[name=csrf]').remove()`),
		chromedp.Submit(chromedp.CSS("#r-name")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	if msg := text(t, ctx, "#error"); !strings.Contains(msg, "CSRF") {
		t.Errorf("refusal: %q", msg)
	}
	if _, err := e.App.Store.GetRole(context.Background(), "forged"); err == nil {
		t.Error("the forged role was created")
	}

	// Sign out; a non-administrator is refused.
	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	signInAs(t, ctx, base, "bob", "bob-pw-123")
	if msg := text(t, ctx, "#error"); !strings.Contains(msg, "not an administrator") {
		t.Errorf("non-admin: %q", msg)
	}

	// Every change made in the console is audited with the acting admin.
	evs, err := e.App.Store.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Actor == "admin:alice" {
			seen[ev.Action] = true
		}
	}
	for _, a := range []string{"consumer.add", "session.end", "role.allow", "console.signin"} {
		if !seen[a] {
			t.Errorf("no %s by admin:alice", a)
		}
	}
}

// TestBrowserAcceptance is the acceptance, as a new administrator
// tries it: sign in with the demo administrator --dev prints, register a
// consumer with an OData table list picked from the catalog, copy its
// key, get a token with the seed's own get_consumer_token, see that
// session on the dashboard and end it.
func TestBrowserAcceptance(t *testing.T) {
	py := testenv.Python(t, "python3-httpx", "httpx")
	ctx := chromium(t, 1280, 900)
	e := apptest.New(t)
	d, err := e.App.SeedDemo(context.Background())
	if err != nil || d == nil {
		t.Fatalf("demo: %v", err)
	}
	var printed strings.Builder
	d.Print(&printed, e.URL)
	if !strings.Contains(printed.String(), e.URL+"/api/admin") {
		t.Fatalf("--dev does not print the console URL:\n%s", printed.String())
	}
	if _, err := e.App.Admin.ImportCatalog(context.Background(), "test", strings.NewReader("supplier,table\nprice_page,table\n"), "test"); err != nil {
		t.Fatal(err)
	}
	signInAs(t, ctx, e.URL, d.Username, d.Password)
	run(t, ctx, "register",
		chromedp.Click(chromedp.CSS("#tab-consumers")),
		chromedp.SendKeys(chromedp.CSS("#c-name"), "MY_SERVICE_APP"),
		js(`for (const o of document.querySelectorAll('#odata option')) { o.selected = o.value === 'supplier' || o.value === 'price_page' }`),
		chromedp.Submit(chromedp.CSS("#register")),
		chromedp.WaitVisible(chromedp.CSS("#consumer-key")),
	)
	key := text(t, ctx, "#consumer-key")
	cmd := exec.Command(py, "testdata/get_consumer_token.py")
	cmd.Env = append(os.Environ(), "GATEHOUSE_URL="+e.URL, "P21_CONSUMER_KEY="+strings.TrimSpace(key))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("get_consumer_token: %v\n%s", err, out)
	}
	var tok struct {
		AccessToken, Scope string
		SessionID          string `json:"SessionId"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Scope != "/odata:price_page,supplier" && tok.Scope != "/odata:supplier,price_page" {
		t.Fatalf("token response %s: %v", out, err)
	}
	run(t, ctx, "end it on the dashboard",
		chromedp.Click(chromedp.CSS("#tab-dashboard")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-session="`+tok.SessionID+`"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-session="`+tok.SessionID+`"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	)
	s, err := e.App.Store.GetSession(context.Background(), tok.SessionID)
	if err != nil || s.EndedAt.IsZero() {
		t.Fatalf("session not ended: %+v %v", s, err)
	}
	evs, _ := e.App.Store.ListAudit(context.Background(), store.AuditFilter{Action: "session.end"})
	if len(evs) != 1 || evs[0].Actor != "admin:"+d.Username {
		t.Errorf("session.end audit: %+v", evs)
	}
}

// TestBrowserScreenshots renders every console page at desktop and phone
// width; no page may need horizontal scrolling of the whole page on a
// phone. With -update it writes the screenshots of docs/console.md:
//
//	go test ./server/admin -run Screenshots -update
func TestBrowserScreenshots(t *testing.T) {
	e := consoleEnv(t)
	ctx0 := context.Background()
	e.AddConsumer(admin.NewConsumer{Name: "MY_SERVICE_APP", Scope: "/api", SDK: true})
	e.Token(`{"username":"carol","password":"carol-pw-123"}`)
	e.App.Admin.SetRoleEntries(ctx0, "test", "clerk", true, []string{"supplier"})
	e.App.Admin.SetRoleEntries(ctx0, "test", "clerk", false, []string{"price_page"})
	pages := []struct{ name, path string }{
		{"signin", "/api/admin/signin"}, {"dashboard", "/api/admin"}, {"users", "/api/admin/users"}, {"user", "/api/admin/users/carol"},
		{"roles", "/api/admin/roles"}, {"role", "/api/admin/roles/clerk"}, {"consumers", "/api/admin/consumers"},
		{"consumer", "/api/admin/consumers/MY_SERVICE_APP"}, {"sessions", "/api/admin/sessions"}, {"keys", "/api/admin/keys"},
		{"catalog", "/api/admin/catalog"}, {"audit", "/api/admin/audit"},
	}
	for _, size := range []struct {
		name string
		w, h int
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		ctx := chromium(t, size.w, size.h)
		signInAs(t, ctx, e.URL, "alice", "alice-pw-123")
		for _, p := range pages {
			if p.name == "signin" {
				continue
			}
			run(t, ctx, p.name, chromedp.Navigate(e.URL+p.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
			overflow := get(t, ctx, p.name, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
			png := get(t, ctx, p.name, chromedp.CaptureScreenshot())
			if overflow {
				t.Errorf("%s at %s width needs horizontal scrolling", p.name, size.name)
			}
			if *update && (size.name == "desktop" || p.name == "consumers" || p.name == "dashboard") {
				write(t, filepath.Join("..", "..", "docs", "console", p.name+"-"+size.name+".png"), png)
			}
		}
		if *update && size.name == "desktop" {
			ctx := chromium(t, size.w, size.h)
			run(t, ctx, "signin", chromedp.Navigate(e.URL+"/api/admin/signin"), chromedp.WaitVisible(chromedp.CSS("#signin")))
			png := get(t, ctx, "signin", chromedp.CaptureScreenshot())
			write(t, filepath.Join("..", "..", "docs", "console", "signin-desktop.png"), png)
		}
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
