package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	adminhttp "github.com/gatehouse/gatehouse/server/admin"
)

// apiClient calls the admin API and validates every request and response
// against the OpenAPI document, recording which operations it exercised.
type apiClient struct {
	t      *testing.T
	e      *apptest.Env
	token  string
	router routers.Router
	seen   map[string]bool
}

func newAPIClient(t *testing.T, e *apptest.Env, token string) *apiClient {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(adminhttp.OpenAPI())
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("the OpenAPI document is %s, not 3.1", doc.OpenAPI)
	}
	doc.Servers = openapi3.Servers{{URL: e.URL + adminhttp.APIPrefix}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t: t, e: e, token: token, router: r, seen: map[string]bool{}}
}

func init() {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
}

// do sends a request (body: a JSON-encodable value, a string sent as
// text/csv, or nil) with header pairs, checks both sides against the
// document, and returns the status, headers and body.
func (c *apiClient) do(method, path string, body any, headers ...string) (int, http.Header, []byte) {
	c.t.Helper()
	var raw []byte
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		raw, ctype = []byte(b), "text/csv"
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
		ctype = "application/json"
	}
	newReq := func() *http.Request {
		req, err := http.NewRequest(method, c.e.URL+adminhttp.APIPrefix+path, bytes.NewReader(raw))
		if err != nil {
			c.t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	}
	req := newReq()
	resp, out := c.e.Do(newReq())
	route, pathParams, err := c.router.FindRoute(req)
	if err != nil {
		// Only a refused request may be outside the document (405).
		if resp.StatusCode < 400 {
			c.t.Fatalf("%s %s is not in the OpenAPI document: %v", method, path, err)
		}
		return resp.StatusCode, resp.Header, out
	}
	c.seen[route.Operation.OperationID] = true
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
	// Requests the server accepts must be documented ones.
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && resp.StatusCode < 400 {
		c.t.Errorf("request %s %s does not match the document: %v", method, path, err)
	}
	vin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(out)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), vin); err != nil {
		c.t.Errorf("response to %s %s (%d %s) does not match the document: %v", method, path, resp.StatusCode, out, err)
	}
	return resp.StatusCode, resp.Header, out
}

// want is do that fails unless the status is status, and decodes the body into v.
func (c *apiClient) want(status int, v any, method, path string, body any, headers ...string) http.Header {
	c.t.Helper()
	got, h, out := c.do(method, path, body, headers...)
	if got != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, got, out, status)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, out)
		}
	}
	return h
}

// adminEnv starts a server with an administrator alice (and her token)
// and a plain user bob.
func adminEnv(t *testing.T) (*apptest.Env, string) {
	t.Helper()
	e := apptest.New(t)
	ctx := context.Background()
	if _, err := e.App.Admin.AddUser(ctx, "test", admin.NewUser{Name: "alice", Password: "alice-pw-123", Admin: true}); err != nil {
		t.Fatal(err)
	}
	e.AddUser("bob", "bob-pw-123", true, "")
	tok := e.Token(`{"username":"alice","password":"alice-pw-123"}`)
	return e, tok
}

func TestAPIAccess(t *testing.T) {
	e, aliceTok := adminEnv(t)
	ctx := context.Background()
	// No token, a bad token: 401 with the usual JSON error.
	for _, tok := range []string{"", "not-a-token"} {
		c := newAPIClient(t, e, tok)
		var er struct{ Error, ErrorDescription string }
		c.want(http.StatusUnauthorized, &er, "GET", "/users", nil)
		if er.Error != "invalid_token" {
			t.Errorf("token %q: error %q, want invalid_token", tok, er.Error)
		}
	}
	// A user who is not an administrator, a consumer without the admin
	// scope: 403.
	bob := newAPIClient(t, e, e.Token(`{"username":"bob","password":"bob-pw-123"}`))
	bob.want(http.StatusForbidden, nil, "GET", "/users", nil)
	_, plainKey := e.AddConsumer(admin.NewConsumer{Name: "plain", Scope: "/api"})
	plain := newAPIClient(t, e, e.Token(`{"GrantType":"client_credentials","ClientSecret":"`+plainKey+`"}`))
	plain.want(http.StatusForbidden, nil, "POST", "/roles", map[string]string{"name": "x"})

	// An administrator; a consumer granted admin, for automation.
	var m struct{ Actor string }
	newAPIClient(t, e, aliceTok).want(http.StatusOK, &m, "GET", "/me", nil)
	if m.Actor != "admin:alice" {
		t.Errorf("actor %q, want admin:alice", m.Actor)
	}
	robot, robotKey := e.AddConsumer(admin.NewConsumer{Name: "robot", Scope: "admin"})
	resp, b := e.Post("/oauth/token", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {"robot"}, "client_secret": {robotKey}}.Encode())
	if resp.StatusCode != 200 {
		t.Fatalf("oauth token: %d %s", resp.StatusCode, b)
	}
	var ot struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(b, &ot)
	rc := newAPIClient(t, e, ot.AccessToken)
	rc.want(http.StatusOK, &m, "GET", "/me", nil)
	if m.Actor != "consumer:"+robot.UIDString() {
		t.Errorf("actor %q, want consumer:%s", m.Actor, robot.UIDString())
	}
	rc.want(http.StatusCreated, nil, "POST", "/roles", map[string]string{"name": "made-by-robot"})
	evs, err := e.App.Store.ListAudit(ctx, store.AuditFilter{Action: "role.add"})
	if err != nil || len(evs) != 1 || evs[0].Actor != "consumer:"+robot.UIDString() {
		t.Errorf("role.add audit: %+v %v", evs, err)
	}

	// Losing the admin flag, or the admin scope, stops old tokens too.
	yes, no := true, false
	_ = yes
	if _, err := e.App.Admin.UpdateConsumer(ctx, "test", "robot", admin.ConsumerChange{Scope: ptr("/api")}); err != nil {
		t.Fatal(err)
	}
	rc.want(http.StatusForbidden, nil, "GET", "/me", nil)
	if _, err := e.App.Admin.UpdateUser(ctx, "test", "alice", admin.UserChange{Admin: &no}); err != nil {
		t.Fatal(err)
	}
	newAPIClient(t, e, aliceTok).want(http.StatusForbidden, nil, "GET", "/me", nil)
}

func ptr[T any](v T) *T { return &v }

// TestAPI drives every operation of the document against a real server and
// validates each request and response against it.
func TestAPI(t *testing.T) {
	e, tok := adminEnv(t)
	c := newAPIClient(t, e, tok)
	ctx := context.Background()

	c.want(200, nil, "GET", "/me", nil)

	// Catalog.
	var imp struct{ Imported int }
	c.want(200, &imp, "POST", "/catalog", "name,kind\nsupplier,table\nprice_page,table\np21_view_inv,view\n")
	if imp.Imported != 3 {
		t.Errorf("imported %d", imp.Imported)
	}
	var cat struct {
		Items      []adminhttp.CatalogEntry
		NextCursor string `json:"next_cursor"`
	}
	c.want(200, &cat, "GET", "/catalog?limit=2", nil)
	if len(cat.Items) != 2 || cat.NextCursor == "" {
		t.Fatalf("first catalog page: %+v", cat)
	}
	c.want(200, &cat, "GET", "/catalog?limit=2&cursor="+cat.NextCursor, nil)
	if len(cat.Items) != 1 || cat.Items[0].Name != "supplier" || cat.NextCursor != "" {
		t.Fatalf("second catalog page: %+v", cat)
	}
	c.want(400, nil, "GET", "/catalog?cursor=bad!cursor", nil)
	c.want(400, nil, "POST", "/catalog", "supplier,chair\n")

	// Roles.
	var role adminhttp.Role
	c.want(201, &role, "POST", "/roles", map[string]string{"name": "clerk"})
	c.want(409, nil, "POST", "/roles", map[string]string{"name": "clerk"})
	h := c.want(200, &role, "GET", "/roles/clerk", nil)
	tag := h.Get("ETag")
	h = c.want(200, &role, "PATCH", "/roles/clerk", map[string]any{"allow_all_tables": true, "allow": []string{"p21_view_inv"}, "deny": []string{"price_page"}}, "If-Match", tag)
	if !role.AllowAllTables || len(role.Entries) != 2 || role.Entries[0].Object != "p21_view_inv" || role.Entries[0].Kind != "view" {
		t.Errorf("role after patch: %+v", role)
	}
	// A change based on the old ETag is refused: someone else changed it.
	c.want(412, nil, "PATCH", "/roles/clerk", map[string]any{"allow_all": true}, "If-Match", tag)
	c.want(200, &role, "PATCH", "/roles/clerk", map[string]any{"clear": []string{"price_page"}}, "If-Match", h.Get("ETag"))
	if len(role.Entries) != 1 {
		t.Errorf("role after clear: %+v", role)
	}
	var roles struct{ Items []adminhttp.Role }
	c.want(200, &roles, "GET", "/roles", nil)
	c.want(404, nil, "GET", "/roles/nosuch", nil)

	// Users.
	var u adminhttp.User
	c.want(201, &u, "POST", "/users", map[string]any{"name": "carol", "password": "carol-pw-123", "role": "clerk", "allow_odata_api": true})
	c.want(409, nil, "POST", "/users", map[string]any{"name": "CAROL"})
	c.want(400, nil, "POST", "/users", map[string]any{"name": "bad name!"})
	c.want(400, nil, "POST", "/users", map[string]any{"name": "dave", "extra": 1})
	h = c.want(200, &u, "GET", "/users/carol", nil)
	if u.Lockout == nil || u.Lockout.Locked || u.Role != "clerk" {
		t.Errorf("user: %+v", u)
	}
	c.want(412, nil, "PATCH", "/users/carol", map[string]any{"admin": true}, "If-Match", `"stale"`)
	c.want(200, &u, "PATCH", "/users/carol", map[string]any{"identity": "sql"}, "If-Match", h.Get("ETag"))
	c.want(400, nil, "PATCH", "/users/carol", map[string]any{})
	var users struct {
		Items      []adminhttp.User
		NextCursor string `json:"next_cursor"`
	}
	c.want(200, &users, "GET", "/users?q=car", nil)
	if len(users.Items) != 1 {
		t.Errorf("search: %+v", users)
	}
	e.Token(`{"username":"carol","password":"carol-pw-123"}`)
	var ended adminhttp.Ended
	c.want(200, &ended, "PUT", "/users/carol/password", map[string]any{"password": "carol-new-456"})
	if ended.SessionsEnded != 1 {
		t.Errorf("password change ended %d sessions", ended.SessionsEnded)
	}
	var lo adminhttp.Lockout
	c.want(200, &lo, "POST", "/users/carol/unlock", nil)
	c.want(404, nil, "POST", "/users/nosuch/unlock", nil)

	// Consumers: the key is shown once, and works.
	var cons adminhttp.Consumer
	c.want(201, &cons, "POST", "/consumers", map[string]any{"name": "MY_SERVICE_APP", "type": "Service", "sdk_access": true,
		"expires": "never", "scope": "/odata:supplier,price_page"})
	if cons.ConsumerKey == "" || cons.Scope != "/odata:supplier,price_page;/p21sdk" {
		t.Fatalf("consumer: %+v", cons)
	}
	c.want(400, nil, "POST", "/consumers", map[string]any{"name": "x1", "scope": "/odata"})
	key := cons.ConsumerKey
	e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	cons = adminhttp.Consumer{}
	h = c.want(200, &cons, "GET", "/consumers/MY_SERVICE_APP", nil)
	if cons.ConsumerKey != "" {
		t.Error("the key is shown again")
	}
	c.want(200, &cons, "PATCH", "/consumers/"+cons.UID, map[string]any{"scope": "/api", "expires": "30d", "type": "web"}, "If-Match", h.Get("ETag"))
	if cons.ConfiguredScope != "/api" || cons.Expires != "30d" || cons.Type != "web" {
		t.Errorf("consumer after update: %+v", cons)
	}
	c.want(412, nil, "PATCH", "/consumers/"+cons.UID, map[string]any{"disabled": true}, "If-Match", h.Get("ETag"))
	// The key is kept.
	e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	var consumers struct{ Items []adminhttp.Consumer }
	c.want(200, &consumers, "GET", "/consumers", nil)

	// Sessions.
	var sessions struct {
		Items      []adminhttp.Session
		NextCursor string `json:"next_cursor"`
	}
	c.want(200, &sessions, "GET", "/sessions?consumer=MY_SERVICE_APP", nil)
	if len(sessions.Items) != 2 {
		t.Fatalf("sessions: %+v", sessions)
	}
	var s adminhttp.Session
	c.want(200, &s, "DELETE", "/sessions/"+sessions.Items[0].ID, nil)
	if s.State != "ended" || s.EndReason != gatehouse.EndAdmin {
		t.Errorf("ended session: %+v", s)
	}
	c.want(404, nil, "DELETE", "/sessions/nosuch", nil)
	e.Token(`{"username":"carol","password":"carol-new-456"}`)
	c.want(200, &ended, "POST", "/sessions/end", map[string]string{"user": "carol"})
	if ended.SessionsEnded != 1 {
		t.Errorf("end user sessions: %+v", ended)
	}
	c.want(200, &sessions, "GET", "/sessions?all=true&limit=1", nil)
	if sessions.NextCursor == "" {
		t.Error("no next page of sessions")
	}
	c.want(200, &sessions, "GET", "/sessions?all=true&limit=1&cursor="+sessions.NextCursor, nil)

	var rotated adminhttp.Consumer
	c.want(200, &rotated, "POST", "/consumers/MY_SERVICE_APP/rotate-key", nil)
	if rotated.ConsumerKey == "" || rotated.ConsumerKey == key {
		t.Error("no new key")
	}
	c.want(200, &cons, "PATCH", "/consumers/MY_SERVICE_APP", map[string]any{"disabled": true})
	if !cons.Disabled {
		t.Error("not disabled")
	}
	c.want(200, &cons, "DELETE", "/consumers/MY_SERVICE_APP", nil)
	c.want(404, nil, "GET", "/consumers/MY_SERVICE_APP", nil)

	// Keys.
	var keys struct{ Items []adminhttp.Key }
	c.want(200, &keys, "GET", "/keys", nil)
	c.want(200, &keys, "POST", "/keys/rotate", map[string]any{"algorithms": []string{"HS256"}})
	if len(keys.Items) != 1 || keys.Items[0].State != "next" {
		t.Errorf("rotate: %+v", keys)
	}
	var ret adminhttp.Retired
	c.want(200, &ret, "POST", "/keys/"+keys.Items[0].KID+"/retire", nil)
	c.want(400, nil, "POST", "/keys/nosuch/retire", nil)

	// Dashboard and audit.
	var d adminhttp.Dashboard
	c.want(200, &d, "GET", "/dashboard", nil)
	if len(d.Minutes) != 60 {
		t.Errorf("dashboard: %+v", d)
	}
	var audit struct {
		Items      []adminhttp.AuditEvent
		NextCursor string `json:"next_cursor"`
	}
	c.want(200, &audit, "GET", "/audit?action=role.&limit=2", nil)
	if len(audit.Items) != 2 || audit.NextCursor == "" {
		t.Fatalf("audit page: %+v", audit)
	}
	c.want(200, &audit, "GET", "/audit?action=role.&limit=2&cursor="+audit.NextCursor, nil)
	c.want(400, nil, "GET", "/audit?since=yesterday", nil)
	_, hdr, out := c.do("GET", "/audit/export?action=user.", nil)
	if hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("export content type %q", hdr.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		var ev adminhttp.AuditEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || !strings.HasPrefix(ev.Action, "user.") {
			t.Errorf("export line %q: %v", l, err)
		}
	}

	// Users are deleted last: their sessions end.
	c.want(412, nil, "DELETE", "/users/carol", nil, "If-Match", `"stale"`)
	c.want(200, &ended, "DELETE", "/users/carol", nil)

	// Unknown paths and methods.
	c.want(405, nil, "PUT", "/roles", nil)
	got, _, _ := c.do("DELETE", "/keys", nil)
	if got != 405 {
		t.Errorf("DELETE /keys: %d", got)
	}

	// Every change above was audited with the acting administrator.
	evs, err := e.App.Store.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byAlice := map[string]bool{}
	for _, ev := range evs {
		if ev.Actor == "admin:alice" {
			byAlice[ev.Action] = true
		}
	}
	for _, a := range []string{"catalog.import", "role.add", "role.set", "role.allow", "role.deny", "role.clear", "user.add", "user.update",
		"user.set-password", "user.unlock", "user.delete", "consumer.add", "consumer.update", "consumer.rotate-key", "consumer.disable",
		"consumer.delete", "session.end", "keys.rotate", "keys.retire"} {
		if !byAlice[a] {
			t.Errorf("no %s event by admin:alice", a)
		}
	}

	// Every operation of the document was exercised.
	loader := openapi3.NewLoader()
	doc, _ := loader.LoadFromData(adminhttp.OpenAPI())
	for p, item := range doc.Paths.Map() {
		for m, op := range item.Operations() {
			if !c.seen[op.OperationID] {
				t.Errorf("%s %s (%s) was not exercised", m, p, op.OperationID)
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := apptest.New(t)
	resp, b := e.Do(must(http.NewRequest("GET", e.URL+adminhttp.APIPrefix+"/openapi.json", nil)))
	if resp.StatusCode != 200 || !bytes.Equal(b, adminhttp.OpenAPI()) {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
	// Not proxied as the api family, even with an upstream for it.
	resp, _ = e.Do(must(http.NewRequest("GET", e.URL+"/api/admin/v1/users", nil)))
	if resp.StatusCode != 401 {
		t.Errorf("/api/admin/v1/users without a token: %d", resp.StatusCode)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
