package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// allowAll authorizes every request as user "ann" of family odata.
type allowAll struct{}

func (allowAll) Authorize(_ context.Context, req policy.Request) (*verify.Authorization, error) {
	return &verify.Authorization{
		Identity:   &verify.Identity{Claims: &token.Claims{Subject: "ann", Audience: "/api", SessionID: "s-1"}},
		Match:      policy.Match{Family: &policy.Family{Name: "odata"}},
		ActingUser: "ann", Path: req.Path, EscapedPath: req.Path,
	}, nil
}

func TestInProcessHandler(t *testing.T) {
	var seen *http.Request
	var body string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"ok":true}`)
	})
	g := NewGateway(allowAll{}, Options{Handlers: map[string]http.Handler{"odata": h}})
	if got := g.Families(); !reflect.DeepEqual(got, []string{"odata"}) {
		t.Fatalf("Families = %v", got)
	}
	req := httptest.NewRequest(http.MethodPost, "/odataservice/odata/table/Supplier?$filter=a%20eq%201;x", strings.NewReader("payload"))
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("X_Gatehouse_User", "mallory")
	req.Header.Set("X-Original-URL", "/admin")
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated || rec.Body.String() != `{"ok":true}` || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if seen == nil {
		t.Fatal("handler not called")
	}
	if seen.URL.EscapedPath() != "/odataservice/odata/table/Supplier" || seen.URL.RawQuery != "$filter=a%20eq%201;x" ||
		seen.RequestURI != "/odataservice/odata/table/Supplier?$filter=a%20eq%201;x" || seen.Method != http.MethodPost || body != "payload" {
		t.Fatalf("handler saw %s %s (%s) body %q", seen.Method, seen.URL, seen.RequestURI, body)
	}
	for k, want := range map[string]string{"X-Gatehouse-User": "ann", "X-Gatehouse-Session-Id": "s-1", "X-Gatehouse-Scope": "/api",
		"X-Gatehouse-Family": "odata", "X-Gatehouse-Consumer-Uid": "", "Authorization": "Bearer t"} {
		if v, ok := seen.Header[k]; !ok || v[0] != want {
			t.Errorf("header %s = %v, want %q", k, v, want)
		}
	}
	for _, k := range []string{"X_gatehouse_user", "X-Original-Url"} {
		if _, ok := seen.Header[k]; ok {
			t.Errorf("client header %s reached the handler", k)
		}
	}
	if seen.Header.Get("X-Forwarded-Host") != "example.com" {
		t.Errorf("X-Forwarded-Host = %q", seen.Header.Get("X-Forwarded-Host"))
	}
}

func TestInProcessHandlerDefaultStatus(t *testing.T) {
	g := NewGateway(allowAll{}, Options{Handlers: map[string]http.Handler{"odata": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	})}})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/odataservice/odata/table/x", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"/odataservice/odata/table/x"`) {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
}

func TestConflicts(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	got := Conflicts(map[string]*url.URL{"odata": u, "sdk": u}, map[string]http.Handler{"odata": http.NotFoundHandler(), "api": http.NotFoundHandler()})
	if !reflect.DeepEqual(got, []string{"odata"}) {
		t.Fatalf("Conflicts = %v", got)
	}
}
