package admin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/scope"
)

// one segment after the page's own, or "".
func seg(segs []string, i int) string {
	if i < len(segs) {
		return segs[i]
	}
	return ""
}

func isPost(r *http.Request) bool { return r.Method == http.MethodPost }

// formTag makes a change fail unless the resource still has the ETag the
// form was rendered with (field etag), so that two administrators do not
// overwrite each other.
func formTag(r *http.Request) *http.Request {
	if t := r.PostFormValue("etag"); t != "" {
		r2 := r.Clone(r.Context())
		r2.Header.Set("If-Match", t)
		return r2
	}
	return r
}

func checked(r *http.Request, name string) bool { return r.PostFormValue(name) != "" }

// — dashboard —

func (h *Handler) pageDashboard(w http.ResponseWriter, r *http.Request, a *actx) error {
	if isPost(r) {
		return errNoPage(r)
	}
	d, err := h.dashboard(r.Context())
	if err != nil {
		return err
	}
	peak := 1
	for _, m := range d.Minutes {
		peak = max(peak, m.Issued, m.Refused)
	}
	type bar struct {
		Minute
		X, HI, HR, YI, YR int
	}
	bars := make([]bar, len(d.Minutes))
	for i, m := range d.Minutes {
		hi, hr := m.Issued*100/peak, m.Refused*100/peak
		bars[i] = bar{Minute: m, X: i * 10, HI: hi, HR: hr, YI: 100 - hi, YR: 100 - hr}
	}
	total := [2]int{}
	for _, m := range d.Minutes {
		total[0] += m.Issued
		total[1] += m.Refused
	}
	return h.page(w, a, "dashboard", "Dashboard", map[string]any{"D": d, "Bars": bars, "Peak": peak, "Issued": total[0], "Refused": total[1]})
}

// — users —

func (h *Handler) pageUsers(w http.ResponseWriter, r *http.Request, a *actx, segs []string) error {
	ctx := r.Context()
	name := seg(segs, 0)
	if name == "" {
		if isPost(r) {
			u, err := h.o.Admin.AddUser(ctx, a.actor, admin.NewUser{Name: strings.TrimSpace(r.PostFormValue("name")),
				Identity: gatehouse.IdentityType(r.PostFormValue("identity")), Role: r.PostFormValue("role"),
				AllowOData: checked(r, "allow_odata_api"), Admin: checked(r, "admin"), Password: r.PostFormValue("password")})
			if err != nil {
				return err
			}
			return h.done(w, r, a, "/users/"+u.Name, "User %s created.", u.Name)
		}
		us, err := h.o.Store.ListUsers(ctx)
		if err != nil {
			return err
		}
		q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
		var out []User
		for _, u := range us {
			if q == "" || strings.Contains(strings.ToLower(u.Name), q) || strings.EqualFold(u.Role, q) {
				out = append(out, toUser(u))
			}
		}
		roles, err := h.o.Store.ListRoles(ctx)
		if err != nil {
			return err
		}
		return h.page(w, a, "users", "Users", map[string]any{"Users": out, "Q": q, "Roles": roles})
	}
	if isPost(r) {
		var msg string
		var err error
		switch r.PostFormValue("action") {
		case "update":
			id := gatehouse.IdentityType(r.PostFormValue("identity"))
			role := r.PostFormValue("role")
			allow, adm := checked(r, "allow_odata_api"), checked(r, "admin")
			_, err = h.o.Admin.UpdateUser(precondition(ctx, formTag(r), userTag), a.actor, name,
				admin.UserChange{Identity: &id, Role: &role, AllowOData: &allow, Admin: &adm})
			msg = "User " + name + " saved."
		case "password":
			var ended []string
			ended, err = h.o.Admin.ChangePassword(ctx, a.actor, name, admin.PasswordChange{Password: r.PostFormValue("password"),
				KeepSessions: checked(r, "keep_sessions")})
			msg = "Password of " + name + " replaced; " + strconv.Itoa(len(ended)) + " sessions ended."
		case "unlock":
			err = h.o.Admin.UnlockUser(ctx, a.actor, name)
			msg = "Failed sign-ins of " + name + " forgotten."
		case "delete":
			var ended []string
			ended, err = h.o.Admin.DeleteUser(ctx, a.actor, name)
			if err == nil {
				h.sessions.endUser(name)
				return h.done(w, r, a, "/users", "User %s deleted; %d sessions ended.", name, len(ended))
			}
		default:
			return gatehouse.ErrInvalidRequest("unknown action")
		}
		if err != nil {
			return err
		}
		return h.done(w, r, a, "/users/"+name, "%s", msg)
	}
	u, err := h.o.Store.GetUser(ctx, name)
	if err != nil {
		return notFound(err, "user", name)
	}
	j := toUser(u)
	tag := etag(j)
	l, err := h.o.Admin.LockoutState(ctx, u.Name)
	if err != nil {
		return err
	}
	j.Lockout = toLockout(l)
	roles, err := h.o.Store.ListRoles(ctx)
	if err != nil {
		return err
	}
	return h.page(w, a, "user", "User "+u.Name, map[string]any{"U": j, "ETag": tag, "Roles": roles,
		"Identities": []string{"windows", "aad", "sql"}})
}

// — roles —

// gridRow is one object of a role's permission grid.
type gridRow struct {
	Name, Kind, Access string // access: allow, deny or "" (the flags decide)
}

func (h *Handler) pageRoles(w http.ResponseWriter, r *http.Request, a *actx, segs []string) error {
	ctx := r.Context()
	name := seg(segs, 0)
	if name == "" {
		if isPost(r) {
			x, err := h.o.Admin.AddRole(ctx, a.actor, strings.TrimSpace(r.PostFormValue("name")))
			if err != nil {
				return err
			}
			return h.done(w, r, a, "/roles/"+x.Name, "Role %s created; it allows nothing until told to.", x.Name)
		}
		rs, err := h.o.Store.ListRoles(ctx)
		if err != nil {
			return err
		}
		out := make([]Role, len(rs))
		for i, x := range rs {
			out[i] = toRole(x)
		}
		return h.page(w, a, "roles", "Roles", map[string]any{"Roles": out})
	}
	cur, err := h.o.Store.GetRole(ctx, name)
	if err != nil {
		return notFound(err, "role", name)
	}
	cat, err := h.o.Store.ListCatalog(ctx)
	if err != nil {
		return err
	}
	rows := make([]gridRow, 0, len(cat)+len(cur.Entries))
	for _, c := range cat {
		rows = append(rows, gridRow{Name: c.Name, Kind: string(c.Kind)})
	}
	for _, e := range cur.Entries {
		if !slices.ContainsFunc(rows, func(g gridRow) bool { return strings.EqualFold(g.Name, e.Object) }) {
			rows = append(rows, gridRow{Name: e.Object, Kind: string(e.Kind)})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return strings.ToLower(rows[i].Name) < strings.ToLower(rows[j].Name) })
	for i := range rows {
		if e, ok := cur.Entry(rows[i].Name); ok {
			rows[i].Access = map[bool]string{true: "allow", false: "deny"}[e.Allow]
		}
	}
	if isPost(r) {
		in := RoleUpdate{}
		all, tables, views := checked(r, "allow_all"), checked(r, "allow_all_tables"), checked(r, "allow_all_views")
		if all != cur.AllowAll {
			in.AllowAll = &all
		}
		if tables != cur.AllowAllTables {
			in.AllowAllTables = &tables
		}
		if views != cur.AllowAllViews {
			in.AllowAllViews = &views
		}
		for _, row := range rows {
			want := r.PostFormValue("o." + row.Name)
			if want == row.Access || (want == "" && row.Access == "") {
				continue
			}
			obj := row.Kind + ":" + row.Name
			switch want {
			case "allow":
				in.Allow = append(in.Allow, obj)
			case "deny":
				in.Deny = append(in.Deny, obj)
			case "", "inherit":
				if row.Access != "" {
					in.Clear = append(in.Clear, row.Name)
				}
			default:
				return gatehouse.ErrInvalidRequest("object %s: %q is not allow, deny or inherit", row.Name, gatehouse.Clip(want, 20))
			}
		}
		if in.AllowAll == nil && in.AllowAllTables == nil && in.AllowAllViews == nil && len(in.Allow)+len(in.Deny)+len(in.Clear) == 0 {
			return h.done(w, r, a, "/roles/"+cur.Name, "Nothing to change.")
		}
		if _, err := h.updateRole(precondition(ctx, formTag(r), roleTag), a.actor, cur.Name, in); err != nil {
			return err
		}
		return h.done(w, r, a, "/roles/"+cur.Name, "Role %s saved.", cur.Name)
	}
	return h.page(w, a, "role", "Role "+cur.Name, map[string]any{"R": toRole(cur), "ETag": etag(toRole(cur)), "Rows": rows})
}

// — consumers (the API Console tab) —

// scopePaths are the scope entries the scope builder offers as boxes.
var scopePaths = []struct{ Entry, Label string }{
	{"/api", "/api: every API"},
	{"/uiserver0", "/uiserver0: Interactive and Transaction APIs"},
	{"/ui", "/ui: UI sessions"},
	{"/api/.configuration", "/api/.configuration: configuration endpoints"},
	{"admin", "admin: this admin API, for automation"},
}

// scopeFromForm builds a scope from the scope builder: the boxes, the
// OData tables and views picked, and any other entries typed in.
func scopeFromForm(r *http.Request) string {
	var parts []string
	for _, p := range scopePaths {
		if slices.Contains(r.PostForm["scope_path"], p.Entry) {
			parts = append(parts, p.Entry)
		}
	}
	var objs []string
	for _, o := range r.PostForm["odata"] {
		if o = strings.TrimSpace(o); o != "" && !slices.Contains(objs, o) {
			objs = append(objs, o)
		}
	}
	if len(objs) > 0 {
		parts = append(parts, "/odata:"+strings.Join(objs, ","))
	}
	if extra := strings.TrimSpace(r.PostFormValue("scope_extra")); extra != "" {
		parts = append(parts, extra)
	}
	return strings.Join(parts, ";")
}

// scopeForm is what the scope builder shows for a scope.
type scopeForm struct {
	Paths  []struct{ Entry, Label string }
	Picked map[string]bool // entries and OData objects (lower case) picked
	Extra  string
}

func toScopeForm(s string) scopeForm {
	f := scopeForm{Paths: scopePaths, Picked: map[string]bool{}}
	sc, err := scope.Parse(s)
	if err != nil {
		f.Extra = s
		return f
	}
	var extra []string
	for _, e := range sc {
		switch {
		case e.Path == scope.ODataPath && len(e.Objects) > 0:
			for _, o := range e.Objects {
				f.Picked["odata:"+o] = true
			}
		case slices.ContainsFunc(scopePaths, func(p struct{ Entry, Label string }) bool { return p.Entry == e.Path }) && len(e.Objects) == 0:
			f.Picked[e.Path] = true
		default:
			extra = append(extra, e.String())
		}
	}
	f.Extra = strings.Join(extra, ";")
	return f
}

func lifetimeFromForm(r *http.Request) (time.Duration, error) {
	if r.PostFormValue("expire") == "never" {
		return 0, nil
	}
	d := strings.TrimSpace(r.PostFormValue("duration"))
	if d == "" {
		return 0, &admin.InputError{Msg: "Token Expire: give a duration (90m, 24h, 30d) or choose Never Expire"}
	}
	return admin.ParseLifetime(d)
}

func (h *Handler) pageConsumers(w http.ResponseWriter, r *http.Request, a *actx, segs []string) error {
	ctx := r.Context()
	ref := seg(segs, 0)
	cat, err := h.o.Store.ListCatalog(ctx)
	if err != nil {
		return err
	}
	if ref == "" {
		if isPost(r) {
			lt, err := lifetimeFromForm(r)
			if err != nil {
				return err
			}
			c, key, err := h.o.Admin.AddConsumer(ctx, a.actor, admin.NewConsumer{Name: strings.TrimSpace(r.PostFormValue("name")),
				Type: gatehouse.ConsumerType(strings.ToLower(r.PostFormValue("type"))), SDK: checked(r, "sdk_access"), Lifetime: lt,
				Scope: scopeFromForm(r), Grants: r.PostForm["grant"]})
			if err != nil {
				return err
			}
			// The key is shown on this answer only: never stored, never redirected.
			return h.page(w, a, "consumer_key", "Consumer key of "+c.Name, map[string]any{"C": toConsumer(c), "Key": key, "Verb": "registered"})
		}
		cs, err := h.o.Store.ListConsumers(ctx)
		if err != nil {
			return err
		}
		out := make([]Consumer, len(cs))
		for i, c := range cs {
			out[i] = toConsumer(c)
		}
		return h.page(w, a, "consumers", "API Console", map[string]any{"Consumers": out, "Catalog": cat, "Scope": toScopeForm("")})
	}
	c, err := h.o.Admin.FindConsumer(ctx, ref)
	if err != nil {
		return err
	}
	if isPost(r) {
		uid := c.UIDString()
		switch r.PostFormValue("action") {
		case "update":
			lt, err := lifetimeFromForm(r)
			if err != nil {
				return err
			}
			sc, typ, sdk, grants := scopeFromForm(r), strings.ToLower(r.PostFormValue("type")), checked(r, "sdk_access"), r.PostForm["grant"]
			if grants == nil {
				grants = []string{}
			}
			exp := admin.FormatLifetime(lt)
			if _, err := h.updateConsumer(precondition(ctx, formTag(r), consumerTag), a.actor, uid,
				ConsumerUpdate{Scope: &sc, Type: &typ, SDKAccess: &sdk, Expires: &exp, Grants: &grants}); err != nil {
				return err
			}
			return h.done(w, r, a, "/consumers/"+uid, "Consumer %s saved; its key is unchanged.", c.Name)
		case "disable", "enable":
			dis := r.PostFormValue("action") == "disable"
			_, ended, err := h.o.Admin.SetConsumerDisabled(ctx, a.actor, uid, dis)
			if err != nil {
				return err
			}
			if dis {
				return h.done(w, r, a, "/consumers/"+uid, "Consumer %s disabled; %d sessions ended.", c.Name, len(ended))
			}
			return h.done(w, r, a, "/consumers/"+uid, "Consumer %s enabled.", c.Name)
		case "rotate":
			c2, key, err := h.o.Admin.RotateConsumerKey(ctx, a.actor, uid)
			if key == "" {
				return err
			}
			return h.page(w, a, "consumer_key", "Consumer key of "+c.Name, map[string]any{"C": toConsumer(c2), "Key": key, "Verb": "has a new key"})
		case "delete":
			if _, err := h.o.Admin.DeleteConsumer(ctx, a.actor, uid); err != nil {
				return err
			}
			return h.done(w, r, a, "/consumers", "Consumer %s deleted; its sessions ended.", c.Name)
		}
		return gatehouse.ErrInvalidRequest("unknown action")
	}
	j := toConsumer(c)
	return h.page(w, a, "consumer", "Consumer "+c.Name, map[string]any{"C": j, "ETag": etag(j), "Catalog": cat,
		"Scope": toScopeForm(c.Scope), "Grants": c.Grants, "Duration": durationField(c.Lifetime)})
}

func durationField(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return admin.FormatLifetime(d)
}

// — sessions —

func (h *Handler) pageSessions(w http.ResponseWriter, r *http.Request, a *actx, segs []string) error {
	ctx := r.Context()
	if isPost(r) {
		switch {
		case seg(segs, 0) == "end-user":
			ended, err := h.o.Admin.EndUserSessions(ctx, a.actor, r.PostFormValue("user"))
			if err != nil {
				return err
			}
			return h.done(w, r, a, "/sessions", "%d sessions of %s ended.", len(ended), r.PostFormValue("user"))
		case seg(segs, 0) != "" && seg(segs, 1) == "end":
			if err := h.o.Admin.EndSession(ctx, a.actor, segs[0]); err != nil {
				return err
			}
			back := "/sessions"
			if r.PostFormValue("back") == "dashboard" {
				back = ""
			}
			return h.done(w, r, a, back, "Session %s ended: its tokens are refused from now on.", segs[0])
		}
		return errNoPage(r)
	}
	if len(segs) > 0 {
		return errNoPage(r)
	}
	f, err := h.sessionFilter(r)
	if err != nil {
		return err
	}
	f.Limit = 500
	ss, err := h.o.Store.ListSessions(ctx, f)
	if err != nil {
		return err
	}
	now := h.o.Clock.Now()
	out := make([]Session, len(ss))
	for i, s := range ss {
		out[i] = toSession(s, now)
	}
	q := r.URL.Query()
	return h.page(w, a, "sessions", "Sessions", map[string]any{"Sessions": out, "User": q.Get("user"), "Consumer": q.Get("consumer"), "All": q.Get("all") == "true"})
}

// — keys —

func (h *Handler) pageKeys(w http.ResponseWriter, r *http.Request, a *actx, segs []string) error {
	ctx := r.Context()
	if isPost(r) {
		switch {
		case seg(segs, 0) == "rotate":
			var algs []string
			if alg := r.PostFormValue("alg"); alg != "" {
				algs = []string{alg}
			}
			next, err := h.o.Admin.RotateKeys(ctx, a.actor, algs)
			if err != nil {
				return err
			}
			var kids []string
			for _, k := range next {
				kids = append(kids, k.Algorithm+" "+k.KID)
			}
			return h.done(w, r, a, "/keys", "Rotated; new next keys: %s.", strings.Join(kids, ", "))
		case seg(segs, 1) == "retire":
			res, err := h.o.Admin.RetireKey(ctx, a.actor, segs[0])
			if err != nil {
				return err
			}
			if res.Already {
				return h.done(w, r, a, "/keys", "Key %s was already retired.", segs[0])
			}
			var who []string
			for _, c := range res.Consumers {
				who = append(who, c.Name)
			}
			msg := "Key %s retired at once: every token it signed is refused from now on."
			if len(who) > 0 {
				msg += " Consumers whose clients need new tokens: " + strings.Join(who, ", ") + "."
			}
			return h.done(w, r, a, "/keys", msg, segs[0])
		}
		return errNoPage(r)
	}
	ks, err := h.o.Store.ListKeys(ctx)
	if err != nil {
		return err
	}
	out := make([]Key, len(ks))
	var algs []string
	for i, k := range ks {
		out[i] = toKey(k)
		if k.State == gatehouse.KeyActive && !slices.Contains(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	return h.page(w, a, "keys", "Keys", map[string]any{"Keys": out, "Algs": algs})
}

// — catalog —

func (h *Handler) pageCatalog(w http.ResponseWriter, r *http.Request, a *actx, _ []string) error {
	ctx := r.Context()
	if isPost(r) {
		var src io.Reader = strings.NewReader(r.PostFormValue("csv"))
		name := "the pasted CSV"
		if f, fh, err := r.FormFile("file"); err == nil {
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxCatalogBody+1))
			if err != nil || len(b) > maxCatalogBody {
				return gatehouse.ErrInvalidRequest("the CSV file is larger than %d MiB", maxCatalogBody>>20)
			}
			if len(bytes.TrimSpace(b)) > 0 {
				src, name = bytes.NewReader(b), gatehouse.Clip(fh.Filename, 100)
			}
		} else if !errors.Is(err, http.ErrMissingFile) && !errors.Is(err, http.ErrNotMultipart) {
			return gatehouse.ErrInvalidRequest("the CSV file could not be read")
		}
		n, err := h.o.Admin.ImportCatalog(ctx, a.actor, src, name)
		if err != nil {
			return err
		}
		return h.done(w, r, a, "/catalog", "Imported %d catalog entries.", n)
	}
	cs, err := h.o.Store.ListCatalog(ctx)
	if err != nil {
		return err
	}
	return h.page(w, a, "catalog", "Catalog", map[string]any{"Catalog": cs})
}

// — audit —

func (h *Handler) pageAudit(w http.ResponseWriter, r *http.Request, a *actx, segs []string) error {
	if isPost(r) {
		return errNoPage(r)
	}
	// Form values: since as an age or a date, as the CLI takes them.
	q := r.URL.Query()
	r2 := r.Clone(r.Context())
	v := r2.URL.Query()
	now := h.o.Clock.Now()
	sinceIn := q.Get("since")
	if sinceIn == "" {
		sinceIn = "24h"
	}
	since, err := consoleWhen(sinceIn, now)
	if err != nil {
		return err
	}
	v.Set("since", since.UTC().Format(time.RFC3339))
	v.Del("until")
	if v.Get("limit") == "" {
		v.Set("limit", "50")
	}
	r2.URL.RawQuery = v.Encode()
	if seg(segs, 0) == "export" {
		return h.apiAuditExport(w, r2, nil, a.actor)
	}
	if len(segs) > 0 {
		return errNoPage(r)
	}
	f, limit, err := auditFilter(r2)
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	evs, err := h.o.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := []AuditEvent{}
	next := ""
	for i, ev := range evs {
		if i == limit {
			next = cursorOf(strconv.FormatInt(evs[i-1].ID, 10))
			break
		}
		out = append(out, toAudit(ev))
	}
	return h.page(w, a, "audit", "Audit", map[string]any{"Events": out, "Since": sinceIn, "Action": q.Get("action"), "Next": next,
		"Export": "since=" + sinceIn + "&action=" + q.Get("action")})
}

// consoleWhen reads an age (1h, 7d) or a date or RFC 3339 time.
func consoleWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= 36500 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, gatehouse.ErrInvalidRequest("since %q is neither an age (24h, 7d), a date (2031-03-04) nor an RFC 3339 time", gatehouse.Clip(s, 60))
}
