package admin_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/store"
)

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t *testing.T
	e *apptest.Env
	c *http.Client
}

func newBrowser(t *testing.T, e *apptest.Env) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, e: e, c: c}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.e.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.e.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in through the form and returns the CSRF token of the
// console's pages.
func (b *browser) signIn(user, pw string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.get("/api/admin/signin")
	return b.post("/api/admin/signin", url.Values{"csrf": {csrfOf(b.t, page)}, "username": {user}, "password": {pw}})
}

func TestConsoleSignIn(t *testing.T) {
	clock := testtime.NewClock(time.Now())
	cfg := apptest.Config(t)
	cfg.ConsoleIdle, cfg.ConsoleMax = 10*time.Minute, time.Hour
	cfg.Auth.LockoutThreshold = 3
	e := apptest.StartWithClock(t, cfg, clock)
	ctx := context.Background()
	if _, err := e.App.Admin.AddUser(ctx, "test", admin.NewUser{Name: "alice", Password: "alice-pw-123", Admin: true}); err != nil {
		t.Fatal(err)
	}
	e.AddUser("bob", "bob-pw-123", true, "")
	b := newBrowser(t, e)

	resp, _ := b.get("/api/admin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api/admin/signin" {
		t.Fatalf("unsigned GET /api/admin: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.get("/api/admin/signin")
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "//cdn") {
		t.Error("inline script or style, or a CDN")
	}

	// The sign-in form needs its CSRF token.
	resp, _ = b.post("/api/admin/signin", url.Values{"username": {"alice"}, "password": {"alice-pw-123"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d", resp.StatusCode)
	}
	resp, page = b.signIn("alice", "wrong")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "The user name or password is incorrect.") {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	// A non-administrator is refused after a right password.
	resp, page = b.signIn("bob", "bob-pw-123")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not an administrator") {
		t.Errorf("non-admin: %d %s", resp.StatusCode, page)
	}

	resp, _ = b.signIn("alice", "alice-pw-123")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_console" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/api/admin" {
		t.Fatalf("session cookie: %+v", sc)
	}
	resp, page = b.get("/api/admin")
	if resp.StatusCode != 200 || !strings.Contains(page, "active sessions") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	csrf := csrfOf(t, page)

	// A change without the CSRF token is refused, with it it is made and
	// audited as admin:alice.
	resp, _ = b.post("/api/admin/roles", url.Values{"name": {"clerk"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d", resp.StatusCode)
	}
	resp, _ = b.post("/api/admin/roles", url.Values{"name": {"clerk"}, "csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token: %d", resp.StatusCode)
	}
	resp, _ = b.post("/api/admin/roles", url.Values{"name": {"clerk"}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST with the CSRF token: %d", resp.StatusCode)
	}
	evs, _ := e.App.Store.ListAudit(ctx, store.AuditFilter{Action: "role.add"})
	if len(evs) != 1 || evs[0].Actor != "admin:alice" {
		t.Errorf("role.add audit: %+v", evs)
	}

	// Idle timeout.
	clock.Advance(11 * time.Minute)
	resp, _ = b.get("/api/admin/users")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "expired") {
		t.Errorf("after the idle timeout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Absolute timeout, however busy.
	if resp, page := b.signIn("alice", "alice-pw-123"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in again: %d %s", resp.StatusCode, page)
	}
	for i := range 6 {
		clock.Advance(9 * time.Minute)
		if resp, _ := b.get("/api/admin/keys"); resp.StatusCode != 200 {
			t.Fatalf("busy session ended early (%d): %d %s", i, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	clock.Advance(9 * time.Minute)
	resp, _ = b.get("/api/admin/keys")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after the absolute timeout: %d", resp.StatusCode)
	}

	// Sign-out ends the session.
	b.signIn("alice", "alice-pw-123")
	_, page = b.get("/api/admin")
	resp, _ = b.post("/api/admin/signout", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/api/admin"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out: %d", resp.StatusCode)
	}

	// Failed console sign-ins count toward the token endpoints' lockout.
	for range 3 {
		b.signIn("alice", "wrong")
	}
	resp, _ = b.signIn("alice", "alice-pw-123")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("locked out, right password: %d", resp.StatusCode)
	}
	if r, _ := e.Post("/api/security/token/v2", "application/json", `{"username":"alice","password":"alice-pw-123"}`); r.StatusCode != 401 {
		t.Errorf("token endpoint while locked out by console failures: %d", r.StatusCode)
	}
}

// TestConsoleRateLimit: console sign-ins share the token endpoints'
// per-address rate limit.
func TestConsoleRateLimit(t *testing.T) {
	e := apptest.New(t, func(c *app.Config) {
		c.RateLimit, c.RateBurst, c.RateExempt = 0.001, 2, nil
	})
	b := newBrowser(t, e)
	e.Post("/api/security/token/v2", "application/json", `{"username":"x","password":"y"}`)
	b.signIn("x", "y")
	resp, page := b.signIn("x", "y")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many sign-in attempts") {
		t.Errorf("third attempt: %d", resp.StatusCode)
	}
}

// TestConsolePages renders every page for an administrator.
func TestConsolePages(t *testing.T) {
	e, _ := adminEnv(t)
	b := newBrowser(t, e)
	b.signIn("alice", "alice-pw-123")
	e.AddRole("clerk")
	e.AddConsumer(admin.NewConsumer{Name: "app", Scope: "/api"})
	for _, p := range []string{"", "/users", "/users/alice", "/roles", "/roles/clerk", "/consumers", "/consumers/app", "/sessions",
		"/keys", "/catalog", "/audit", "/audit?since=7d&action=user.", "/static/console.css", "/static/console.js"} {
		resp, page := b.get("/api/admin" + p)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, page)
		}
	}
	for _, p := range []string{"/nosuch", "/users/nosuch", "/static/nosuch.css", "/audit?since=never"} {
		if resp, _ := b.get("/api/admin" + p); resp.StatusCode != 404 && resp.StatusCode != 400 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}
