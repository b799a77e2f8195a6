package admin

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/issue"
)

//go:embed templates/*.html static/*
var consoleFS embed.FS

// Cookie names: the session id, and the sign-in form's CSRF token (the
// form is sent before there is a session).
const (
	sessionCookie = "gatehouse_console"
	signinCookie  = "gatehouse_console_signin"
)

// contentSecurityPolicy allows the console's own script and style only:
// no inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// tabs are the console's tabs, named as on P21's SOA Admin page where it
// has them; the API Console tab holds "Register Consumer Key".
var tabs = []struct{ ID, Name, Path string }{
	{"dashboard", "Dashboard", ""},
	{"users", "Users", "/users"},
	{"roles", "Roles", "/roles"},
	{"consumers", "API Console", "/consumers"},
	{"sessions", "Sessions", "/sessions"},
	{"keys", "Keys", "/keys"},
	{"catalog", "Catalog", "/catalog"},
	{"audit", "Audit", "/audit"},
}

// pages are the console's templates, one per page, each with the layout.
type pages struct {
	t map[string]*template.Template
}

var funcs = template.FuncMap{
	"join":  strings.Join,
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"mul":   func(a, b int) int { return a * b },
	"sub":   func(a, b int) int { return a - b },
	"short": func(s string) string {
		if len(s) > 19 {
			return s[:19]
		}
		return s
	},
	"q": url.QueryEscape,
	"p": url.PathEscape,
}

func mustPages() *pages {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(consoleFS, "templates/layout.html"))
	files, err := fs.Glob(consoleFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, f := range files {
		name := path.Base(f)
		if name == "layout.html" {
			continue
		}
		p.t[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(consoleFS, f))
	}
	return p
}

// view is what every page template gets.
type view struct {
	Title  string
	Tab    string
	Tabs   any
	Prefix string
	User   string
	CSRF   string
	Flash  string
	Error  string
	Data   any
}

// render writes a page. A template failure is logged and answered 500
// without the half-written page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, v view) {
	v.Tabs, v.Prefix = tabs, Prefix
	var buf bytes.Buffer
	t := h.pages.t[name]
	if t == nil {
		h.o.Log.Error("console page missing", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		h.o.Log.Error("console page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// consoleHeaders are set on every console answer.
func consoleHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// actx is a console request by a signed-in administrator.
type actx struct {
	id    string // the session id
	sess  consoleSession
	actor string
}

func (h *Handler) serveConsole(w http.ResponseWriter, r *http.Request) {
	consoleHeaders(w)
	rest := strings.TrimPrefix(r.URL.Path, Prefix)
	if strings.HasPrefix(rest, "/static/") {
		h.serveStatic(w, r, strings.TrimPrefix(rest, "/static/"))
		return
	}
	switch rest {
	case "/signin":
		h.signIn(w, r)
		return
	case "/signout":
		h.signOut(w, r)
		return
	}
	a, ok := h.consoleAuth(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodPost {
		if err := h.checkForm(w, r, a); err != nil {
			h.consoleError(w, r, a, err)
			return
		}
	} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.consoleError(w, r, a, methodNotAllowed(r.Method, []string{"GET", "POST"}))
		return
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	var err error
	switch segs[0] {
	case "":
		err = h.pageDashboard(w, r, a)
	case "users":
		err = h.pageUsers(w, r, a, segs[1:])
	case "roles":
		err = h.pageRoles(w, r, a, segs[1:])
	case "consumers":
		err = h.pageConsumers(w, r, a, segs[1:])
	case "sessions":
		err = h.pageSessions(w, r, a, segs[1:])
	case "keys":
		err = h.pageKeys(w, r, a, segs[1:])
	case "catalog":
		err = h.pageCatalog(w, r, a, segs[1:])
	case "audit":
		err = h.pageAudit(w, r, a, segs[1:])
	default:
		err = errNoPage(r)
	}
	if err != nil {
		h.consoleError(w, r, a, err)
	}
}

func errNoPage(r *http.Request) error {
	return &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
		Description: "There is no console page " + gatehouse.Clip(r.URL.Path, 200)}
}

// consoleError shows an error page (or, after a form, the message on the
// page the form came from would need its data: the error page links back).
func (h *Handler) consoleError(w http.ResponseWriter, r *http.Request, a *actx, err error) {
	e := h.errorOf(err)
	v := view{Title: "Error", Error: e.Description, Data: r.Referer()}
	if a != nil {
		v.User, v.CSRF = a.sess.user, a.sess.csrf
	}
	h.render(w, e.Status, "error", v)
}

// consoleAuth finds the request's console session and checks that its user
// is still an administrator; else it sends the browser to sign in.
func (h *Handler) consoleAuth(w http.ResponseWriter, r *http.Request) (*actx, bool) {
	c, _ := r.Cookie(sessionCookie)
	id := ""
	if c != nil {
		id = c.Value
	}
	sess, ok, expired := h.sessions.get(id)
	if !ok {
		msg := ""
		if expired {
			msg = "?expired=1"
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, Prefix+"/signin"+msg, http.StatusSeeOther)
		} else {
			h.render(w, http.StatusUnauthorized, "signin", view{Title: "Sign in", Error: "Your console session has ended; sign in again.",
				Data: h.signinData(w, r)})
		}
		return nil, false
	}
	name, err := h.adminUser(r.Context(), sess.user)
	if err != nil {
		h.sessions.end(id)
		e := h.errorOf(err)
		h.render(w, e.Status, "signin", view{Title: "Sign in", Error: "You are no longer an administrator: " + e.Description, Data: h.signinData(w, r)})
		return nil, false
	}
	return &actx{id: id, sess: sess, actor: "admin:" + name}, true
}

// maxForm caps a console form; a catalog upload may be larger.
const maxForm = 1 << 20

// checkForm parses a POST form and checks its CSRF token.
func (h *Handler) checkForm(w http.ResponseWriter, r *http.Request, a *actx) error {
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "multipart/form-data"):
		r.Body = http.MaxBytesReader(w, r.Body, maxCatalogBody+maxForm)
		if err := r.ParseMultipartForm(maxForm); err != nil {
			return gatehouse.ErrInvalidRequest("the form could not be read: %v", plainFormError(err))
		}
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			return gatehouse.ErrInvalidRequest("the form could not be read: %v", plainFormError(err))
		}
	default:
		return gatehouse.ErrInvalidRequest("send the console's forms as forms")
	}
	if !sameToken(r.PostFormValue("csrf"), a.sess.csrf) {
		return &gatehouse.Error{Status: http.StatusForbidden, Code: gatehouse.CodeAccessDenied,
			Description: "This form was not sent by this console page (its CSRF token is missing or out of date); reload the page and try again."}
	}
	return nil
}

func plainFormError(err error) string {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "it is too large"
	}
	return "it is malformed"
}

// done ends a form: a message for the next page, and a redirect to it.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, a *actx, to, format string, args ...any) error {
	h.sessions.setFlash(a.id, fmt.Sprintf(format, args...))
	http.Redirect(w, r, Prefix+to, http.StatusSeeOther)
	return nil
}

// page renders a page for a signed-in administrator.
func (h *Handler) page(w http.ResponseWriter, a *actx, name, title string, data any) error {
	h.render(w, http.StatusOK, name, view{Title: title, Tab: name, User: a.sess.user, CSRF: a.sess.csrf, Flash: a.sess.flash, Data: data})
	return nil
}

func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := consoleFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".svg":
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// — sign-in —

type signinData struct {
	Token    string
	Username string
	Notice   string
}

// signinData sets the sign-in form's CSRF cookie and returns its token.
func (h *Handler) signinData(w http.ResponseWriter, r *http.Request) signinData {
	tok := randomToken()
	http.SetCookie(w, h.cookie(signinCookie, tok, 0))
	d := signinData{Token: tok}
	if r.URL.Query().Get("expired") == "1" {
		d.Notice = "Your console session timed out; sign in again."
	}
	return d
}

func (h *Handler) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, Secure: h.o.TLS,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.render(w, http.StatusOK, "signin", view{Title: "Sign in", Data: h.signinData(w, r)})
		return
	case http.MethodPost:
	default:
		h.consoleError(w, r, nil, methodNotAllowed(r.Method, []string{"GET", "POST"}))
		return
	}
	remote := h.o.Remote(r)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	fail := func(status int, msg string) {
		d := h.signinData(w, r)
		d.Username = r.PostFormValue("username")
		h.render(w, status, "signin", view{Title: "Sign in", Error: msg, Data: d})
	}
	if h.o.Allow != nil {
		if ok, wait := h.o.Allow(r); !ok {
			if h.o.Limited != nil {
				h.o.Limited(r.Context(), issue.Meta{Remote: remote, Via: "console"})
			}
			w.Header().Set("Retry-After", fmt.Sprint(int(max(wait, time.Second).Seconds())))
			fail(http.StatusTooManyRequests, "Too many sign-in attempts from this address; wait a little and try again.")
			return
		}
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	c, _ := r.Cookie(signinCookie)
	if c == nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		fail(http.StatusForbidden, "This sign-in form is out of date (its CSRF token is missing or does not match); try again.")
		return
	}
	u, err := h.o.Issuer.SignIn(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"), issue.Meta{Remote: remote, Via: "console"})
	if err != nil {
		e := h.errorOf(err)
		msg := e.Description
		if e.Status == http.StatusUnauthorized {
			msg = gatehouse.DescBadCredentials
		}
		fail(e.Status, msg)
		return
	}
	if u.Deleted || !u.Admin {
		h.audit(r.Context(), gatehouse.AuditEvent{Actor: "user:" + u.Name, Action: "console.refuse", Target: "user:" + u.Name,
			Outcome: gatehouse.OutcomeFailure, Remote: remote, Detail: "not an administrator"})
		fail(http.StatusForbidden, "The account "+u.Name+" is not an administrator. An administrator can make it one (gatehouse user update "+u.Name+" --admin).")
		return
	}
	h.audit(r.Context(), gatehouse.AuditEvent{Actor: "admin:" + u.Name, Action: "console.signin", Target: "user:" + u.Name,
		Outcome: gatehouse.OutcomeSuccess, Remote: remote})
	id := h.sessions.start(u.Name)
	http.SetCookie(w, h.cookie(sessionCookie, id, 0))
	http.SetCookie(w, h.cookie(signinCookie, "", -1))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.consoleError(w, r, nil, methodNotAllowed(r.Method, []string{"POST"}))
		return
	}
	a, ok := h.consoleAuth(w, r)
	if !ok {
		return
	}
	if err := h.checkForm(w, r, a); err != nil {
		h.consoleError(w, r, a, err)
		return
	}
	h.sessions.end(a.id)
	h.audit(r.Context(), gatehouse.AuditEvent{Actor: a.actor, Action: "console.signout", Target: "user:" + a.sess.user,
		Outcome: gatehouse.OutcomeSuccess, Remote: h.o.Remote(r)})
	http.SetCookie(w, h.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// audit records a console sign-in or sign-out (not a change: changes are
// audited by the administration service, in their own transaction).
func (h *Handler) audit(ctx context.Context, ev gatehouse.AuditEvent) {
	ev.At = h.o.Clock.Now()
	if err := h.o.Store.AppendAudit(ctx, ev); err != nil {
		h.o.Log.Warn("audit write failed", "action", ev.Action, "err", err)
	}
}
