package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/server/render"
	"github.com/gatehouse/gatehouse/store"
)

// APIPrefix is where the admin REST API lives.
const APIPrefix = "/api/admin/v1"

// params are the named segments of a matched route.
type params map[string]string

// apiFunc serves one operation of the API for an authenticated actor.
type apiFunc func(w http.ResponseWriter, r *http.Request, p params, actor string) error

type route struct {
	method  string
	pattern []string // segments after APIPrefix; "{x}" matches one segment
	h       apiFunc
}

func (h *Handler) apiRoutes() []route {
	rt := func(method, pattern string, f apiFunc) route {
		return route{method: method, pattern: strings.Split(strings.Trim(pattern, "/"), "/"), h: f}
	}
	return []route{
		rt("GET", "/me", h.apiMe),
		rt("GET", "/dashboard", h.apiDashboard),
		rt("GET", "/users", h.apiListUsers),
		rt("POST", "/users", h.apiAddUser),
		rt("GET", "/users/{name}", h.apiGetUser),
		rt("PATCH", "/users/{name}", h.apiUpdateUser),
		rt("DELETE", "/users/{name}", h.apiDeleteUser),
		rt("PUT", "/users/{name}/password", h.apiSetPassword),
		rt("POST", "/users/{name}/unlock", h.apiUnlock),
		rt("GET", "/roles", h.apiListRoles),
		rt("POST", "/roles", h.apiAddRole),
		rt("GET", "/roles/{name}", h.apiGetRole),
		rt("PATCH", "/roles/{name}", h.apiUpdateRole),
		rt("GET", "/catalog", h.apiListCatalog),
		rt("POST", "/catalog", h.apiImportCatalog),
		rt("GET", "/consumers", h.apiListConsumers),
		rt("POST", "/consumers", h.apiAddConsumer),
		rt("GET", "/consumers/{ref}", h.apiGetConsumer),
		rt("PATCH", "/consumers/{ref}", h.apiUpdateConsumer),
		rt("DELETE", "/consumers/{ref}", h.apiDeleteConsumer),
		rt("POST", "/consumers/{ref}/rotate-key", h.apiRotateConsumer),
		rt("GET", "/sessions", h.apiListSessions),
		rt("POST", "/sessions/end", h.apiEndSessions),
		rt("DELETE", "/sessions/{id}", h.apiEndSession),
		rt("GET", "/keys", h.apiListKeys),
		rt("POST", "/keys/rotate", h.apiRotateKeys),
		rt("POST", "/keys/{kid}/retire", h.apiRetireKey),
		rt("GET", "/audit", h.apiAudit),
		rt("GET", "/audit/export", h.apiAuditExport),
	}
}

// match finds the route of a path (segments after APIPrefix) and method;
// allowed lists the methods of the path when the method does not match.
func (h *Handler) match(method string, segs []string) (*route, params, []string) {
	var allowed []string
	for i := range h.routes {
		rt := &h.routes[i]
		if len(rt.pattern) != len(segs) {
			continue
		}
		p := params{}
		ok := true
		for j, s := range rt.pattern {
			if strings.HasPrefix(s, "{") {
				if segs[j] == "" {
					ok = false
					break
				}
				p[strings.Trim(s, "{}")] = segs[j]
			} else if s != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if rt.method == method || (method == http.MethodHead && rt.method == http.MethodGet) {
			return rt, p, nil
		}
		allowed = append(allowed, rt.method)
	}
	return nil, nil, allowed
}

// serveAPI serves /api/admin/v1/….
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rest := strings.TrimPrefix(r.URL.Path, APIPrefix)
	if rest == "/openapi.json" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.fail(w, r, methodNotAllowed(r.Method, []string{"GET"}))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(openAPIDoc)
		return
	}
	// Who asks comes first: without a valid token nothing is told, not
	// even which paths exist.
	actor, err := h.bearerActor(r.Context(), r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rt, p, allowed := h.match(r.Method, strings.Split(strings.Trim(rest, "/"), "/"))
	if rt == nil {
		if len(allowed) > 0 {
			h.fail(w, r, methodNotAllowed(r.Method, allowed))
			return
		}
		h.fail(w, r, &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
			Description: "There is no admin API endpoint " + gatehouse.Clip(r.URL.Path, 200) + "; see " + APIPrefix + "/openapi.json"})
		return
	}
	if err := rt.h(w, r, p, actor); err != nil {
		h.fail(w, r, err)
	}
}

func methodNotAllowed(method string, allowed []string) *gatehouse.Error {
	e := gatehouse.ErrInvalidRequest("method %s is not allowed here; use %s", gatehouse.Clip(method, 20), strings.Join(allowed, " or "))
	e.Status = http.StatusMethodNotAllowed
	return e.WithHeader("Allow", strings.Join(allowed, ", "))
}

// errPrecondition is the 412 of a change based on a stale read.
func errPrecondition(desc string) *gatehouse.Error {
	return &gatehouse.Error{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Description: desc}
}

// errorOf turns an error of the services into the API's answer.
func (h *Handler) errorOf(err error) *gatehouse.Error {
	var ge *gatehouse.Error
	var ie *admin.InputError
	var pe *admin.PreconditionError
	switch {
	case errors.As(err, &ge):
		return ge
	case errors.As(err, &pe):
		return errPrecondition(pe.Msg)
	case errors.As(err, &ie):
		switch {
		case ie.NotFound:
			return &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound, Description: ie.Msg}
		case ie.Conflict:
			return &gatehouse.Error{Status: http.StatusConflict, Code: "conflict", Description: ie.Msg}
		}
		return gatehouse.ErrInvalidRequest("%s", ie.Msg)
	case errors.Is(err, gatehouse.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return gatehouse.ErrStoreDown(err)
	}
	h.o.Log.Error("admin request failed", "err", err)
	return &gatehouse.Error{Status: http.StatusInternalServerError, Code: gatehouse.CodeServerError, Description: "internal error"}
}

func (h *Handler) fail(w http.ResponseWriter, _ *http.Request, err error) {
	render.JSONError(w, h.errorOf(err))
}

// writeEntity writes a resource with its ETag.
func writeEntity(w http.ResponseWriter, status int, v any, tag string) {
	if tag != "" {
		w.Header().Set("ETag", tag)
	}
	render.WriteJSON(w, status, v)
}

// precondition makes ctx refuse a change unless the stored resource still
// has one of the request's If-Match tags (see admin.WithPrecondition). A
// request without If-Match changes whatever is stored.
func precondition(ctx context.Context, r *http.Request, tagOf func(stored any) string) context.Context {
	tags := ifMatch(r)
	if tags == nil {
		return ctx
	}
	return admin.WithPrecondition(ctx, func(stored any) error {
		if !matches(tags, tagOf(stored)) {
			return errors.New("the resource changed since it was read (its ETag is no longer the If-Match one); read it again and retry")
		}
		return nil
	})
}

func userTag(v any) string {
	if u, ok := v.(gatehouse.User); ok {
		return etag(toUser(u))
	}
	return ""
}

func roleTag(v any) string {
	if r, ok := v.(gatehouse.Role); ok {
		return etag(toRole(r))
	}
	return ""
}

func consumerTag(v any) string {
	if c, ok := v.(gatehouse.Consumer); ok {
		return etag(toConsumer(c))
	}
	return ""
}

// — who am I —

type me struct {
	Actor string `json:"actor"`
}

func (h *Handler) apiMe(w http.ResponseWriter, _ *http.Request, _ params, actor string) error {
	render.WriteJSON(w, http.StatusOK, me{Actor: actor})
	return nil
}

// — users —

func (h *Handler) apiListUsers(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	limit, after, e := pageParams(r)
	if e != nil {
		return e
	}
	us, err := h.o.Store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	out := make([]User, 0, len(us))
	for _, u := range us {
		if q == "" || strings.Contains(strings.ToLower(u.Name), q) || strings.EqualFold(u.Role, q) {
			out = append(out, toUser(u))
		}
	}
	key := func(u User) string { return strings.ToLower(u.Name) }
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	render.WriteJSON(w, http.StatusOK, paginate(out, key, limit, after))
	return nil
}

// NewUserRequest is the body of POST /users.
type NewUserRequest struct {
	Name          string `json:"name"`
	Identity      string `json:"identity"`
	Role          string `json:"role"`
	AllowODataAPI bool   `json:"allow_odata_api"`
	Admin         bool   `json:"admin"`
	Password      string `json:"password"`
	PasswordHash  string `json:"password_hash"`
}

func (h *Handler) apiAddUser(w http.ResponseWriter, r *http.Request, _ params, actor string) error {
	var in NewUserRequest
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	u, err := h.o.Admin.AddUser(r.Context(), actor, admin.NewUser{Name: in.Name, Identity: gatehouse.IdentityType(in.Identity),
		Role: in.Role, AllowOData: in.AllowODataAPI, Admin: in.Admin, Password: in.Password, PasswordHash: in.PasswordHash})
	if err != nil {
		return err
	}
	j := toUser(u)
	w.Header().Set("Location", APIPrefix+"/users/"+u.Name)
	writeEntity(w, http.StatusCreated, j, etag(j))
	return nil
}

func (h *Handler) apiGetUser(w http.ResponseWriter, r *http.Request, p params, _ string) error {
	u, err := h.o.Store.GetUser(r.Context(), p["name"])
	if err != nil {
		return notFound(err, "user", p["name"])
	}
	j := toUser(u)
	tag := etag(j)
	l, err := h.o.Admin.LockoutState(r.Context(), u.Name)
	if err != nil {
		return err
	}
	j.Lockout = toLockout(l)
	writeEntity(w, http.StatusOK, j, tag)
	return nil
}

// UserUpdate is the body of PATCH /users/{name}; absent fields stay.
type UserUpdate struct {
	AllowODataAPI *bool   `json:"allow_odata_api"`
	Role          *string `json:"role"`
	Identity      *string `json:"identity"`
	Admin         *bool   `json:"admin"`
}

func (h *Handler) apiUpdateUser(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	var in UserUpdate
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	ch := admin.UserChange{AllowOData: in.AllowODataAPI, Role: in.Role, Admin: in.Admin}
	if in.Identity != nil {
		id := gatehouse.IdentityType(*in.Identity)
		ch.Identity = &id
	}
	if ch == (admin.UserChange{}) {
		return gatehouse.ErrInvalidRequest("nothing to change: give allow_odata_api, role, identity or admin")
	}
	u, err := h.o.Admin.UpdateUser(precondition(r.Context(), r, userTag), actor, p["name"], ch)
	if err != nil {
		return err
	}
	j := toUser(u)
	writeEntity(w, http.StatusOK, j, etag(j))
	return nil
}

// Ended is the answer of a change that ended sessions.
type Ended struct {
	SessionsEnded int `json:"sessions_ended"`
}

func (h *Handler) apiDeleteUser(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	ended, err := h.o.Admin.DeleteUser(precondition(r.Context(), r, userTag), actor, p["name"])
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, Ended{SessionsEnded: len(ended)})
	return nil
}

// PasswordRequest is the body of PUT /users/{name}/password: a password or
// an existing bcrypt or argon2id hash.
type PasswordRequest struct {
	Password     string `json:"password"`
	PasswordHash string `json:"password_hash"`
	KeepSessions bool   `json:"keep_sessions"`
}

func (h *Handler) apiSetPassword(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	var in PasswordRequest
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	if in.Password == "" && in.PasswordHash == "" {
		return gatehouse.ErrInvalidRequest("give password or password_hash")
	}
	ended, err := h.o.Admin.ChangePassword(r.Context(), actor, p["name"],
		admin.PasswordChange{Password: in.Password, Hash: in.PasswordHash, KeepSessions: in.KeepSessions})
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, Ended{SessionsEnded: len(ended)})
	return nil
}

func (h *Handler) apiUnlock(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	if _, err := h.o.Store.GetUser(r.Context(), p["name"]); err != nil {
		return notFound(err, "user", p["name"])
	}
	if err := h.o.Admin.UnlockUser(r.Context(), actor, p["name"]); err != nil {
		return err
	}
	l, err := h.o.Admin.LockoutState(r.Context(), p["name"])
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, toLockout(l))
	return nil
}

// notFound names a missing resource.
func notFound(err error, what, name string) error {
	if errors.Is(err, gatehouse.ErrNotFound) {
		return &gatehouse.Error{Status: http.StatusNotFound, Code: gatehouse.CodeNotFound,
			Description: fmt.Sprintf("%s %q does not exist", what, gatehouse.Clip(name, 200))}
	}
	return err
}

// — roles —

func (h *Handler) apiListRoles(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	limit, after, e := pageParams(r)
	if e != nil {
		return e
	}
	rs, err := h.o.Store.ListRoles(r.Context())
	if err != nil {
		return err
	}
	out := make([]Role, len(rs))
	for i, x := range rs {
		out[i] = toRole(x)
	}
	key := func(r Role) string { return strings.ToLower(r.Name) }
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	render.WriteJSON(w, http.StatusOK, paginate(out, key, limit, after))
	return nil
}

// NewRoleRequest is the body of POST /roles.
type NewRoleRequest struct {
	Name string `json:"name"`
}

func (h *Handler) apiAddRole(w http.ResponseWriter, r *http.Request, _ params, actor string) error {
	var in NewRoleRequest
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	x, err := h.o.Admin.AddRole(r.Context(), actor, in.Name)
	if err != nil {
		return err
	}
	j := toRole(x)
	w.Header().Set("Location", APIPrefix+"/roles/"+x.Name)
	writeEntity(w, http.StatusCreated, j, etag(j))
	return nil
}

func (h *Handler) apiGetRole(w http.ResponseWriter, r *http.Request, p params, _ string) error {
	x, err := h.o.Store.GetRole(r.Context(), p["name"])
	if err != nil {
		return notFound(err, "role", p["name"])
	}
	j := toRole(x)
	writeEntity(w, http.StatusOK, j, etag(j))
	return nil
}

// RoleUpdate is the body of PATCH /roles/{name}: flags to set, and objects
// (NAME, table:NAME or view:NAME) to allow, deny or clear (back to the
// flags). Absent fields stay.
type RoleUpdate struct {
	AllowAll       *bool    `json:"allow_all"`
	AllowAllTables *bool    `json:"allow_all_tables"`
	AllowAllViews  *bool    `json:"allow_all_views"`
	Allow          []string `json:"allow"`
	Deny           []string `json:"deny"`
	Clear          []string `json:"clear"`
}

func (h *Handler) apiUpdateRole(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	var in RoleUpdate
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	x, err := h.updateRole(precondition(r.Context(), r, roleTag), actor, p["name"], in)
	if err != nil {
		return err
	}
	j := toRole(x)
	writeEntity(w, http.StatusOK, j, etag(j))
	return nil
}

// updateRole applies a RoleUpdate: each part is its own audited change.
// The precondition holds for the first; the later ones follow from it.
func (h *Handler) updateRole(ctx context.Context, actor, name string, in RoleUpdate) (gatehouse.Role, error) {
	flags := admin.RoleFlags{AllowAll: in.AllowAll, AllowAllTables: in.AllowAllTables, AllowAllViews: in.AllowAllViews}
	hasFlags := flags != (admin.RoleFlags{})
	if !hasFlags && len(in.Allow)+len(in.Deny)+len(in.Clear) == 0 {
		return gatehouse.Role{}, gatehouse.ErrInvalidRequest("nothing to change: give allow_all, allow_all_tables, allow_all_views, allow, deny or clear")
	}
	for _, o := range in.Allow {
		if slices.ContainsFunc(append(slices.Clone(in.Deny), in.Clear...), func(x string) bool { return strings.EqualFold(x, o) }) {
			return gatehouse.Role{}, gatehouse.ErrInvalidRequest("object %q is named twice; name each object in one of allow, deny and clear", gatehouse.Clip(o, 100))
		}
	}
	var x gatehouse.Role
	var err error
	steps := []func(context.Context) (gatehouse.Role, error){}
	if hasFlags {
		steps = append(steps, func(c context.Context) (gatehouse.Role, error) { return h.o.Admin.SetRoleFlags(c, actor, name, flags) })
	}
	if len(in.Allow) > 0 {
		steps = append(steps, func(c context.Context) (gatehouse.Role, error) {
			return h.o.Admin.SetRoleEntries(c, actor, name, true, in.Allow)
		})
	}
	if len(in.Deny) > 0 {
		steps = append(steps, func(c context.Context) (gatehouse.Role, error) {
			return h.o.Admin.SetRoleEntries(c, actor, name, false, in.Deny)
		})
	}
	if len(in.Clear) > 0 {
		steps = append(steps, func(c context.Context) (gatehouse.Role, error) {
			return h.o.Admin.ClearRoleEntries(c, actor, name, in.Clear)
		})
	}
	for i, step := range steps {
		c := ctx
		if i > 0 {
			c = admin.WithPrecondition(ctx, nil)
		}
		if x, err = step(c); err != nil {
			return x, err
		}
	}
	return x, nil
}

// — catalog —

func (h *Handler) apiListCatalog(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	limit, after, e := pageParams(r)
	if e != nil {
		return e
	}
	cs, err := h.o.Store.ListCatalog(r.Context())
	if err != nil {
		return err
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != "table" && kind != "view" {
		return gatehouse.ErrInvalidRequest("kind %q is not table or view", gatehouse.Clip(kind, 40))
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	out := make([]CatalogEntry, 0, len(cs))
	for _, c := range cs {
		if (kind == "" || string(c.Kind) == kind) && (q == "" || strings.Contains(strings.ToLower(c.Name), q)) {
			out = append(out, CatalogEntry{Name: c.Name, Kind: string(c.Kind)})
		}
	}
	key := func(c CatalogEntry) string { return strings.ToLower(c.Name) }
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	render.WriteJSON(w, http.StatusOK, paginate(out, key, limit, after))
	return nil
}

// Imported is the answer of a catalog import.
type Imported struct {
	Imported int `json:"imported"`
}

// apiImportCatalog takes CSV (text/csv) of name,kind lines.
func (h *Handler) apiImportCatalog(w http.ResponseWriter, r *http.Request, _ params, actor string) error {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "text/csv") && !strings.HasPrefix(ct, "text/plain") {
		return gatehouse.ErrInvalidRequest("send the catalog as CSV lines name,kind with Content-Type: text/csv")
	}
	b, e := render.ReadBody(w, r, maxCatalogBody)
	if e != nil {
		return e
	}
	n, err := h.o.Admin.ImportCatalog(r.Context(), actor, bytes.NewReader(b), "the CSV body")
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, Imported{Imported: n})
	return nil
}

// — consumers —

func (h *Handler) apiListConsumers(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	limit, after, e := pageParams(r)
	if e != nil {
		return e
	}
	cs, err := h.o.Store.ListConsumers(r.Context())
	if err != nil {
		return err
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	out := make([]Consumer, 0, len(cs))
	for _, c := range cs {
		if q == "" || strings.Contains(strings.ToLower(c.Name), q) {
			out = append(out, toConsumer(c))
		}
	}
	key := func(c Consumer) string { return fmt.Sprintf("%020s", c.UID) }
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	render.WriteJSON(w, http.StatusOK, paginate(out, key, limit, after))
	return nil
}

// NewConsumerRequest is the body of POST /consumers ("Register Consumer Key").
type NewConsumerRequest struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	SDKAccess bool     `json:"sdk_access"`
	Expires   string   `json:"expires"`
	Scope     string   `json:"scope"`
	Grants    []string `json:"grants"`
}

func (h *Handler) apiAddConsumer(w http.ResponseWriter, r *http.Request, _ params, actor string) error {
	var in NewConsumerRequest
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	lt, err := admin.ParseLifetime(in.Expires)
	if err != nil {
		return err
	}
	c, key, err := h.o.Admin.AddConsumer(r.Context(), actor, admin.NewConsumer{Name: in.Name,
		Type: gatehouse.ConsumerType(strings.ToLower(in.Type)), SDK: in.SDKAccess, Lifetime: lt, Scope: in.Scope, Grants: in.Grants})
	if err != nil {
		return err
	}
	j := toConsumer(c)
	tag := etag(j)
	j.ConsumerKey = key
	w.Header().Set("Location", APIPrefix+"/consumers/"+c.UIDString())
	writeEntity(w, http.StatusCreated, j, tag)
	return nil
}

func (h *Handler) apiGetConsumer(w http.ResponseWriter, r *http.Request, p params, _ string) error {
	c, err := h.o.Admin.FindConsumer(r.Context(), p["ref"])
	if err != nil {
		return err
	}
	j := toConsumer(c)
	writeEntity(w, http.StatusOK, j, etag(j))
	return nil
}

// ConsumerUpdate is the body of PATCH /consumers/{ref}; absent fields
// stay. The key is kept.
type ConsumerUpdate struct {
	Type      *string   `json:"type"`
	SDKAccess *bool     `json:"sdk_access"`
	Expires   *string   `json:"expires"`
	Scope     *string   `json:"scope"`
	Grants    *[]string `json:"grants"`
	Disabled  *bool     `json:"disabled"`
}

func (h *Handler) apiUpdateConsumer(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	var in ConsumerUpdate
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	c, err := h.updateConsumer(precondition(r.Context(), r, consumerTag), actor, p["ref"], in)
	if err != nil {
		return err
	}
	j := toConsumer(c)
	writeEntity(w, http.StatusOK, j, etag(j))
	return nil
}

// updateConsumer applies a ConsumerUpdate: the settings, then the
// disabled flag, each its own audited change.
func (h *Handler) updateConsumer(ctx context.Context, actor, ref string, in ConsumerUpdate) (gatehouse.Consumer, error) {
	ch := admin.ConsumerChange{Scope: in.Scope, SDK: in.SDKAccess, Grants: in.Grants}
	if in.Type != nil {
		t := gatehouse.ConsumerType(strings.ToLower(*in.Type))
		ch.Type = &t
	}
	if in.Expires != nil {
		lt, err := admin.ParseLifetime(*in.Expires)
		if err != nil {
			return gatehouse.Consumer{}, err
		}
		ch.Lifetime = &lt
	}
	settings := ch != (admin.ConsumerChange{})
	if !settings && in.Disabled == nil {
		return gatehouse.Consumer{}, gatehouse.ErrInvalidRequest("nothing to change: give type, sdk_access, expires, scope, grants or disabled")
	}
	var c gatehouse.Consumer
	var err error
	if settings {
		if c, err = h.o.Admin.UpdateConsumer(ctx, actor, ref, ch); err != nil {
			return c, err
		}
		ctx = admin.WithPrecondition(ctx, nil)
	}
	if in.Disabled != nil {
		if c, _, err = h.o.Admin.SetConsumerDisabled(ctx, actor, ref, *in.Disabled); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (h *Handler) apiDeleteConsumer(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	if tags := ifMatch(r); tags != nil {
		c, err := h.o.Admin.FindConsumer(r.Context(), p["ref"])
		if err != nil {
			return err
		}
		if !matches(tags, consumerTag(c)) {
			return errPrecondition("the consumer changed since it was read; read it again and retry")
		}
	}
	c, err := h.o.Admin.DeleteConsumer(r.Context(), actor, p["ref"])
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, toConsumer(c))
	return nil
}

func (h *Handler) apiRotateConsumer(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	c, key, err := h.o.Admin.RotateConsumerKey(r.Context(), actor, p["ref"])
	if err != nil && key == "" {
		return err
	}
	j := toConsumer(c)
	tag := etag(j)
	j.ConsumerKey = key
	writeEntity(w, http.StatusOK, j, tag)
	return nil
}

// — sessions —

func (h *Handler) apiListSessions(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	limit, after, e := pageParams(r)
	if e != nil {
		return e
	}
	f, err := h.sessionFilter(r)
	if err != nil {
		return err
	}
	ss, err := h.o.Store.ListSessions(r.Context(), f)
	if err != nil {
		return err
	}
	now := h.o.Clock.Now()
	out := make([]Session, len(ss))
	for i, s := range ss {
		out[i] = toSession(s, now)
	}
	sort.Slice(out, func(i, j int) bool { return sessionKey(out[i]) < sessionKey(out[j]) })
	render.WriteJSON(w, http.StatusOK, paginate(out, sessionKey, limit, after))
	return nil
}

// sessionFilter reads ?user, ?consumer (name or uid) and ?all.
func (h *Handler) sessionFilter(r *http.Request) (store.SessionFilter, error) {
	q := r.URL.Query()
	f := store.SessionFilter{Username: q.Get("user")}
	switch q.Get("all") {
	case "", "false":
		f.ActiveAt = h.o.Clock.Now()
	case "true":
	default:
		return f, gatehouse.ErrInvalidRequest("all is true or false")
	}
	if c := q.Get("consumer"); c != "" {
		cons, err := h.o.Admin.FindConsumer(r.Context(), c)
		if err != nil {
			return f, err
		}
		f.ConsumerUID = cons.UID
	}
	return f, nil
}

// EndSessionsRequest is the body of POST /sessions/end.
type EndSessionsRequest struct {
	User string `json:"user"`
}

func (h *Handler) apiEndSessions(w http.ResponseWriter, r *http.Request, _ params, actor string) error {
	var in EndSessionsRequest
	if e := decodeJSON(w, r, &in); e != nil {
		return e
	}
	ended, err := h.o.Admin.EndUserSessions(r.Context(), actor, in.User)
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, Ended{SessionsEnded: len(ended)})
	return nil
}

func (h *Handler) apiEndSession(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	if err := h.o.Admin.EndSession(r.Context(), actor, p["id"]); err != nil {
		return err
	}
	s, err := h.o.Store.GetSession(r.Context(), p["id"])
	if err != nil {
		return err
	}
	render.WriteJSON(w, http.StatusOK, toSession(s, h.o.Clock.Now()))
	return nil
}

// — keys —

func (h *Handler) apiListKeys(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	ks, err := h.o.Store.ListKeys(r.Context())
	if err != nil {
		return err
	}
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = toKey(k)
	}
	render.WriteJSON(w, http.StatusOK, page[Key]{Items: out})
	return nil
}

// RotateKeysRequest is the body of POST /keys/rotate: the algorithms to
// rotate (none: every algorithm with an active key).
type RotateKeysRequest struct {
	Algorithms []string `json:"algorithms"`
}

func (h *Handler) apiRotateKeys(w http.ResponseWriter, r *http.Request, _ params, actor string) error {
	var in RotateKeysRequest
	if r.ContentLength != 0 {
		if e := decodeJSON(w, r, &in); e != nil {
			return e
		}
	}
	next, err := h.o.Admin.RotateKeys(r.Context(), actor, in.Algorithms)
	if err != nil {
		return err
	}
	out := make([]Key, len(next))
	for i, k := range next {
		out[i] = toKey(k)
	}
	render.WriteJSON(w, http.StatusOK, page[Key]{Items: out})
	return nil
}

// Retired is the answer of POST /keys/{kid}/retire.
type Retired struct {
	Key Key `json:"key"`
	// Already: it had been retired at once before; nothing changed.
	Already bool   `json:"already"`
	Active  string `json:"active"`
	Next    string `json:"next"`
	// Consumers may hold tokens it signed: their clients need new ones.
	Consumers    []Consumer `json:"consumers"`
	UserSessions int        `json:"user_sessions"`
}

func (h *Handler) apiRetireKey(w http.ResponseWriter, r *http.Request, p params, actor string) error {
	res, err := h.o.Admin.RetireKey(r.Context(), actor, p["kid"])
	if err != nil {
		return err
	}
	out := Retired{Key: toKey(res.Key), Already: res.Already, Active: res.Active, Next: res.Next,
		Consumers: []Consumer{}, UserSessions: res.UserSessions}
	for _, c := range res.Consumers {
		out.Consumers = append(out.Consumers, toConsumer(c))
	}
	render.WriteJSON(w, http.StatusOK, out)
	return nil
}

// — audit —

// auditFilter reads ?since, ?until (RFC 3339 times), ?action and ?cursor.
func auditFilter(r *http.Request) (store.AuditFilter, int, error) {
	q := r.URL.Query()
	var f store.AuditFilter
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, 0, gatehouse.ErrInvalidRequest("%s %q is not an RFC 3339 time (2031-03-04T05:06:07Z)", p.name, gatehouse.Clip(s, 60))
			}
			*p.t = t
		}
	}
	f.Action = strings.ToLower(strings.TrimSpace(q.Get("action")))
	if f.Action != "" && !actionPattern(f.Action) {
		return f, 0, gatehouse.ErrInvalidRequest(`action %q: give a whole action name (lockout, token.refuse) or a prefix ending in "." (token.)`, gatehouse.Clip(f.Action, 60))
	}
	limit, after, e := pageParams(r)
	if e != nil {
		return f, 0, e
	}
	if after != "" {
		id, err := strconv.ParseInt(after, 10, 64)
		if err != nil || id < 0 {
			return f, 0, gatehouse.ErrInvalidRequest("cursor is not one this server gave out; start again without it")
		}
		f.AfterID = id
	}
	return f, limit, nil
}

// actionPattern is a whole action name (token.refuse) or a prefix ending in "." (token.).
func actionPattern(a string) bool {
	if a == "" || len(a) > 100 || strings.HasPrefix(a, ".") || strings.Contains(a, "..") {
		return false
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (h *Handler) apiAudit(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	f, limit, err := auditFilter(r)
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	evs, err := h.o.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	p := page[AuditEvent]{Items: []AuditEvent{}}
	for i, ev := range evs {
		if i == limit {
			p.NextCursor = cursorOf(strconv.FormatInt(evs[i-1].ID, 10))
			break
		}
		p.Items = append(p.Items, toAudit(ev))
	}
	render.WriteJSON(w, http.StatusOK, p)
	return nil
}

// apiAuditExport writes every matching event as JSON lines, oldest first,
// a chunk at a time.
func (h *Handler) apiAuditExport(w http.ResponseWriter, r *http.Request, _ params, _ string) error {
	f, _, err := auditFilter(r)
	if err != nil {
		return err
	}
	f.Limit = 1000
	evs, err := h.o.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="gatehouse-audit.jsonl"`)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for len(evs) > 0 {
		for _, ev := range evs {
			if err := enc.Encode(toAudit(ev)); err != nil {
				return nil // the client went away
			}
		}
		f.AfterID = evs[len(evs)-1].ID
		if evs, err = h.o.Store.ListAudit(r.Context(), f); err != nil {
			h.o.Log.Warn("audit export stopped early", "err", err)
			return nil
		}
	}
	return nil
}
