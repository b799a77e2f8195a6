package guard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/guard/local"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/wire"
)

// decisionCase is one request of the side-by-side table: its path and
// token, the status every decider and /auth/check must give, and the
// acting user of an allowed request.
type decisionCase struct {
	path, tok string
	want      int
	user      string
}

// decisionTable registers a role, users and consumers on e and returns the
// side-by-side table, and a consumer token with a user context.
func decisionTable(t *testing.T, e *apptest.Env) (cases []decisionCase, api string) {
	t.Helper()
	e.AddRole("clerk")
	e.AddUser("api_user", "pw-one-two", true, "clerk")
	e.AddUser("plain", "pw-one-two", false, "")
	_, odataKey := e.AddConsumer(admin.NewConsumer{Name: "reports", Scope: "/odata:supplier"})
	_, apiKey := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
	tok := e.Token
	odata := tok(`{"GrantType":"client_credentials","ClientSecret":"` + odataKey + `"}`)
	api = tok(`{"GrantType":"client_credentials","ClientSecret":"` + apiKey + `","username":"api_user"}`)
	apiNoUser := tok(`{"GrantType":"client_credentials","ClientSecret":"` + apiKey + `"}`)
	user := tok(`{"username":"api_user","password":"pw-one-two"}`)
	plain := tok(`{"username":"plain","password":"pw-one-two"}`)
	return []decisionCase{
		{"/odataservice/odata/table/supplier?$top=5", odata, 200, ""},
		{"/odataservice/odata/table/customer", odata, 403, ""},
		{"/api/entity/customers/", odata, 403, ""},
		{"/api/entity/customers/", api, 200, "api_user"},
		{"/uiserver0/api/ui/interactive/sessions", api, 200, "api_user"},
		{"/uiserver0/api/ui/interactive/sessions", apiNoUser, 403, ""},
		{"/uiserver0/api/v2/transaction/x", apiNoUser, 200, "admin"},
		{"/odataservice/odata/table/supplier", user, 403, ""}, // role allows nothing
		{"/api/entity/x", user, 200, "api_user"},
		{"/api/entity/x", plain, 403, ""},
		{"/api/entity/x", "", 401, ""},
		{"/api/entity/x", "garbage", 401, ""},
		{"/nowhere", api, 404, ""},
		// Not canonical, or reaching other objects: judged the same everywhere.
		{"/odataservice/odata/table/supplier/..;/customer", odata, 400, ""},
		{"/odataservice/odata/table/customer;x", odata, 400, ""},
		{"/odataservice/odata/table/%2e%2e/table/customer", odata, 400, ""},
		{"/odataservice/odata/table/$batch", odata, 403, ""},
		{"/odataservice/odata/table/supplier?$expand=customer", odata, 403, ""},
		{"/api/a/../b", "", 401, ""},
	}, api
}

// forwardStatus is what forward-auth answers for a decision: only 200, 401
// and 403 (and 503), since proxies pass nothing else on.
func forwardStatus(st int) int {
	if st == 400 || st == 404 {
		return 403
	}
	return st
}

// sameAnswers checks that every decider answers each case as the case
// wants and as /auth/check does: the same error, and the same status but
// where forward-auth answers 403 for a 400 or 404 (Remote, which asks
// /auth/check, gives the gateway's 400 and 404 again, by the error code).
func sameAnswers(t *testing.T, e *apptest.Env, deciders map[string]guard.Decider, cases []decisionCase) {
	t.Helper()
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.tok != "" {
			req.Header.Set("Authorization", "Bearer "+tc.tok)
		}
		// gatehouse's own answer
		chk, _ := http.NewRequest(http.MethodGet, e.URL+"/auth/check", nil)
		chk.Header.Set("X-Forwarded-Uri", tc.path)
		if tc.tok != "" {
			chk.Header.Set("Authorization", "Bearer "+tc.tok)
		}
		resp, body := e.Do(chk)
		for name, d := range deciders {
			id, err := d.Decide(req)
			got := 200
			if err != nil {
				rf, ok := err.(*guard.Refusal)
				if !ok {
					t.Fatalf("%s %s: %v", name, tc.path, err)
				}
				got = rf.Status
				var want struct{ Error string }
				json.Unmarshal(body, &want)
				if rf.Code != want.Error {
					t.Errorf("%s %s: error %q, /auth/check %q", name, tc.path, rf.Code, want.Error)
				}
			}
			want := tc.want
			if got != want || forwardStatus(got) != resp.StatusCode {
				t.Errorf("%s %s: %d, /auth/check %d, want %d", name, tc.path, got, resp.StatusCode, want)
			}
			if got == 200 && (id.User != tc.user || id.User != resp.Header.Get("X-Gatehouse-User") || id.Family == "" ||
				id.Family != resp.Header.Get("X-Gatehouse-Family") || id.ConsumerUID != resp.Header.Get("X-Gatehouse-Consumer-Uid") ||
				id.SessionID != resp.Header.Get("X-Gatehouse-Session-Id") || id.Scope != resp.Header.Get("X-Gatehouse-Scope")) {
				t.Errorf("%s %s: identity %+v, want user %q and /auth/check's headers %v", name, tc.path, id, tc.user, resp.Header)
			}
		}
	}
}

// TestSameDecisionEverywhere checks that Local, Remote, JWKS and
// /auth/check give the same answer for a table of requests.
func TestSameDecisionEverywhere(t *testing.T) {
	e := apptest.New(t)
	cases, api := decisionTable(t, e)

	local, err := local.Open(context.Background(), local.Config{DataDir: e.Cfg.DataDir, MasterKey: apptest.TestMasterKey,
		FeedInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote := guard.NewRemote(e.URL, guard.RemoteOptions{})
	jwks := newJWKS(t, e, guard.JWKSConfig{TTL: 100 * time.Millisecond})
	sameAnswers(t, e, map[string]guard.Decider{"local": local, "remote": remote, "jwks": jwks}, cases)

	// Ending a session: Local follows the feed, Remote's cache lasts ≤ 1 s,
	// JWKS's introspection cache 100 ms.
	h := guard.Middleware(local)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := guard.FromContext(r.Context())
		fmt.Fprint(w, id.User)
	}))
	req := httptest.NewRequest(http.MethodGet, "/api/entity/x", nil)
	req.Header.Set("Authorization", "Bearer "+api)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "api_user" {
		t.Fatalf("middleware: %d %s", rec.Code, rec.Body)
	}
	remote.Decide(req) // cache it
	jwks.Decide(req)
	id, _ := e.App.Verifier.Verify(context.Background(), api)
	if err := e.App.Store.EndSession(context.Background(), id.Session.ID, gatehouse.EndAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []guard.Decider{local, remote, jwks} {
		testtime.Eventually(t, 1500*time.Millisecond, func() error {
			_, err := d.Decide(req)
			if rf, ok := err.(*guard.Refusal); ok && rf.Status == 401 {
				return nil
			}
			return fmt.Errorf("ended session still allowed: %v", err)
		})
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("middleware after end: %d %v", rec.Code, rec.Header())
	}
}

// TestMiddlewareHeaders: the handler never sees a client-sent header that
// could pass for an identity header, and a request with two Authorization
// headers is refused by every decider.
func TestMiddlewareHeaders(t *testing.T) {
	e := apptest.New(t)
	local, err := local.Open(context.Background(), local.Config{DataDir: e.Cfg.DataDir, MasterKey: apptest.TestMasterKey})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	_, key := e.AddConsumer(admin.NewConsumer{Name: "mw", Scope: "/api"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	var seen http.Header
	h := guard.Middleware(local)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header }))
	req := httptest.NewRequest(http.MethodGet, "/api/entity/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	for _, k := range []string{"X-Gatehouse-User", "X_Gatehouse_User", "x-gatehouse_scope", "X-GATEHOUSE-FAMILY"} {
		req.Header[k] = []string{"admin"}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	for k := range seen {
		if wire.IsIdentityHeader(k) {
			t.Errorf("the handler saw %s", k)
		}
	}
	if len(req.Header) != 5 {
		t.Errorf("the caller's request was changed: %v", req.Header)
	}
	remote := guard.NewRemote(e.URL, guard.RemoteOptions{})
	jwks := newJWKS(t, e, guard.JWKSConfig{})
	two := httptest.NewRequest(http.MethodGet, "/api/entity/x", nil)
	two.Header.Add("Authorization", "Bearer "+tok)
	two.Header.Add("Authorization", "Bearer other")
	for name, d := range map[string]guard.Decider{"local": local, "remote": remote, "jwks": jwks} {
		_, err := d.Decide(two)
		if rf, ok := err.(*guard.Refusal); !ok || rf.Status != 400 || rf.Code != "invalid_request" {
			t.Errorf("%s: two Authorization headers: %v", name, err)
		}
	}
}
