package guard_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/golang-jwt/jwt/v5"
)

// tally counts the JWKS decider's requests by path, and makes paths
// unreachable on demand; everything else goes to the real server.
type tally struct {
	mu   sync.Mutex
	n    map[string]int
	down map[string]bool
}

func newWire() *tally { return &tally{n: map[string]int{}, down: map[string]bool{}} }

func (w *tally) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.n[r.URL.Path]++
	down := w.down[r.URL.Path]
	w.mu.Unlock()
	if down {
		return nil, errors.New("connection refused (test)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (w *tally) count(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[path]
}

func (w *tally) setDown(path string, down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down[path] = down
}

const (
	pathJWKS       = "/.well-known/jwks.json"
	pathIntrospect = "/oauth/introspect"
	pathCheck      = "/auth/check"
)

// testClock is the real time plus an offset the test moves forward.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

var resourceServers atomic.Int64

// newJWKS registers a consumer for a resource server on e and starts a JWKS
// decider that introspects as it; c's BaseURL and credentials are filled in.
func newJWKS(t *testing.T, e *apptest.Env, c guard.JWKSConfig) *guard.JWKS {
	t.Helper()
	name := fmt.Sprintf("resource-server-%d", resourceServers.Add(1))
	_, key := e.AddConsumer(admin.NewConsumer{Name: name, Scope: "/api"})
	// Families stay nil: the decider takes the server's table.
	c.BaseURL, c.ClientID, c.ClientSecret = e.URL, name, key
	j, err := guard.NewJWKS(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// decide returns the status a decider gives a request with a token.
func decide(t *testing.T, d guard.Decider, path, tok string) (int, *guard.Identity, *guard.Refusal) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	id, err := d.Decide(req)
	if err == nil {
		return 200, id, nil
	}
	var rf *guard.Refusal
	if !errors.As(err, &rf) {
		t.Fatalf("%s: not a refusal: %v", path, err)
	}
	return rf.Status, nil, rf
}

// TestJWKSLocalDecisions runs the side-by-side table with asymmetric
// consumer tokens, plus a scope-only family, and checks which requests the
// JWKS decider decides alone and which it hands to /auth/check.
func TestJWKSLocalDecisions(t *testing.T) {
	fams := append(policy.DefaultFamilies(), policy.Family{Name: "things", Paths: []string{"/v1"},
		GrantedBy: []string{"/api"}, Users: policy.CheckNone})
	e := apptest.New(t, func(c *app.Config) {
		c.Auth.ConsumerTokenAlg = "ES256"
		c.Families = fams
	})
	cases, api := decisionTable(t, e)
	user := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	_, otherKey := e.AddConsumer(admin.NewConsumer{Name: "sdk-only", Scope: "/p21sdk"})
	_, apiKey := e.AddConsumer(admin.NewConsumer{Name: "svc-2", Scope: "/api"})
	sdk := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + otherKey + `"}`)
	cases = append(cases,
		decisionCase{"/v1/things", user, 200, "api_user"},
		decisionCase{"/v1/things", sdk, 403, ""},
	)
	w := newWire()
	jwks := newJWKS(t, e, guard.JWKSConfig{Client: &http.Client{Transport: w}})
	remote := guard.NewRemote(e.URL, guard.RemoteOptions{})
	sameAnswers(t, e, map[string]guard.Decider{"remote": remote, "jwks": jwks}, cases)

	for _, tc := range []struct {
		path, tok string
		want      int
		delegated bool
	}{
		{"/api/entity/customers/", api, 200, false},                // consumer token: scope alone
		{"/uiserver0/api/v2/transaction/x", sdk, 403, false},       // scope refuses
		{"/v1/things", user, 200, false},                           // users: none
		{"/api/entity/x", user, 200, true},                         // allow_odata_api is in the store
		{"/odataservice/odata/table/supplier", user, 403, true},    // so is the role
		{"/uiserver0/api/ui/interactive/sessions", api, 200, true}, // a real user is required
	} {
		checks, intros := w.count(pathCheck), w.count(pathIntrospect)
		// A new token each time, so that no cache answers.
		tok := tc.tok
		switch tok {
		case api:
			tok = e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + apiKey + `","username":"api_user"}`)
		case user:
			tok = e.Token(`{"username":"api_user","password":"pw-one-two"}`)
		case sdk:
			tok = e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + otherKey + `"}`)
		}
		got, _, _ := decide(t, jwks, tc.path, tok)
		dc, di := w.count(pathCheck)-checks, w.count(pathIntrospect)-intros
		switch {
		case got != tc.want:
			t.Errorf("%s: %d, want %d", tc.path, got, tc.want)
		case tc.delegated && (dc != 1 || di != 0):
			t.Errorf("%s: %d /auth/check and %d introspection requests, want the decision delegated", tc.path, dc, di)
		case !tc.delegated && (dc != 0 || di != 1):
			t.Errorf("%s: %d /auth/check and %d introspection requests, want a local decision after one introspection", tc.path, dc, di)
		}
	}
}

// TestJWKSHS256ViaIntrospection: HS256 consumer tokens cannot be verified
// from the JWKS; the server verifies them by introspection, and the claims
// it reports decide, not the token's payload.
func TestJWKSHS256ViaIntrospection(t *testing.T) {
	e := apptest.New(t)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "odata-app", Scope: "/odata:supplier"})
	tok := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	if h := jwtHeader(t, tok); h["alg"] != "HS256" {
		t.Fatalf("consumer token header %v, want HS256", h)
	}
	w := newWire()
	jwks := newJWKS(t, e, guard.JWKSConfig{Client: &http.Client{Transport: w}})
	start := w.count(pathIntrospect)

	if got, id, _ := decide(t, jwks, "/odataservice/odata/table/supplier", tok); got != 200 || id.Scope != "/odata:supplier" || id.ConsumerUID == "" {
		t.Fatalf("HS256 consumer token: %d %+v", got, id)
	}
	if got, _, rf := decide(t, jwks, "/odataservice/odata/table/customer", tok); got != 403 || rf.Code != "insufficient_scope" {
		t.Fatalf("HS256 token outside its scope: %d %+v", got, rf)
	}
	if n := w.count(pathIntrospect) - start; n != 1 {
		t.Fatalf("%d introspection requests for one token, want 1 (then cached)", n)
	}

	// A payload widened to /api keeps its signature: the server says
	// inactive, and the forged scope is never read.
	parts := strings.Split(tok, ".")
	var payload map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(b, &payload)
	payload["aud"] = "/api"
	b, _ = json.Marshal(payload)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	if got, _, rf := decide(t, jwks, "/api/entity/x", forged); got != 401 || rf.Code != "invalid_token" || rf.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged HS256 payload: %d %+v", got, rf)
	}

	// HS256 with the kid of a published RSA key, "signed" with that public
	// key as the HMAC secret: refused here, without asking.
	kid, pubPEM := publishedRSAKey(t, e)
	confused := sign(t, jwt.SigningMethodHS256, kid, claimsOf(t, tok), pubPEM)
	before := w.count(pathIntrospect)
	if got, _, _ := decide(t, jwks, "/odataservice/odata/table/supplier", confused); got != 401 {
		t.Fatalf("RS/HS key confusion: %d", got)
	}
	if w.count(pathIntrospect) != before {
		t.Fatal("a key-confusion token was sent to introspection")
	}
	// alg none is refused too.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`"}`)) + "." + parts[1] + "."
	if got, _, _ := decide(t, jwks, "/odataservice/odata/table/supplier", none); got != 401 {
		t.Fatalf("alg none: %d", got)
	}
}

// TestJWKSUnknownKey: a token signed by a key gatehouse never published is
// refused; unknown kids cause at most one JWKS fetch per KeysMinInterval.
func TestJWKSUnknownKey(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	real := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	clock := &testClock{}
	w := newWire()
	jwks := newJWKS(t, e, guard.JWKSConfig{Client: &http.Client{Transport: w}, Clock: clock})
	if w.count(pathJWKS) != 1 {
		t.Fatalf("%d JWKS fetches at start, want 1", w.count(pathJWKS))
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, real)
	clock.Advance(31 * time.Second)
	for i, tok := range []string{
		sign(t, jwt.SigningMethodRS256, "stranger-1", c, stranger),
		sign(t, jwt.SigningMethodRS256, "stranger-2", c, stranger), // within 30 s of the refetch: none
		sign(t, jwt.SigningMethodRS256, jwtHeader(t, real)["kid"].(string), c, stranger),
	} {
		got, _, rf := decide(t, jwks, "/api/entity/x", tok)
		if got != 401 || rf.Code != "invalid_token" {
			t.Fatalf("token %d signed by a stranger: %d %+v", i, got, rf)
		}
	}
	if n := w.count(pathJWKS); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (start, one refetch for the unknown kids)", n)
	}
	if n := w.count(pathCheck) + w.count(pathIntrospect); n != 1 { // the credentials check at start
		t.Fatalf("%d requests to /auth/check or introspection for forged tokens", n-1)
	}
	if got, _, _ := decide(t, jwks, "/api/entity/x", real); got != 200 {
		t.Fatalf("real token: %d", got)
	}
}

// TestJWKSKeyRotation: a token signed by a key newer than the fetched set
// triggers one refetch, shared by concurrent requests; the set is also
// refetched once it is KeysMaxAge old.
func TestJWKSKeyRotation(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	clock := &testClock{}
	w := newWire()
	jwks := newJWKS(t, e, guard.JWKSConfig{Client: &http.Client{Transport: w}, Clock: clock})
	old := e.Token(`{"username":"api_user","password":"pw-one-two"}`)

	// One rotation signs with the key published as next: no refetch.
	rotate(t, e)
	tok := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	if got, _, _ := decide(t, jwks, "/api/entity/x", tok); got != 200 || w.count(pathJWKS) != 1 {
		t.Fatalf("after one rotation: %d, %d JWKS fetches", got, w.count(pathJWKS))
	}
	// A second one signs with a key this decider has never seen.
	rotate(t, e)
	tok = e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	if jwtHeader(t, tok)["kid"] == jwtHeader(t, old)["kid"] {
		t.Fatal("rotation did not change the kid")
	}
	// Within KeysMinInterval of the last fetch, the unknown kid is refused.
	if got, _, _ := decide(t, jwks, "/api/entity/x", tok); got != 401 || w.count(pathJWKS) != 1 {
		t.Fatalf("new kid within the rate limit: %d, %d JWKS fetches", got, w.count(pathJWKS))
	}
	clock.Advance(31 * time.Second)
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "/api/entity/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			codes[i] = 200
			if _, err := jwks.Decide(req); err != nil {
				codes[i] = err.(*guard.Refusal).Status
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d with the new kid: %d", i, c)
		}
	}
	if n := w.count(pathJWKS); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (start, one refetch for 20 concurrent requests)", n)
	}
	// Tokens of the retired key still verify.
	if got, _, _ := decide(t, jwks, "/api/entity/x", old); got != 200 {
		t.Fatalf("token of a retired key: %d", got)
	}

	// Periodic refresh: a set older than KeysMaxAge is fetched again in
	// the background while the old one keeps answering.
	clock.Advance(5 * time.Minute)
	if got, _, _ := decide(t, jwks, "/api/entity/x", tok); got != 200 {
		t.Fatalf("with a stale set: %d", got)
	}
	testtime.Eventually(t, time.Second, func() error {
		if n := w.count(pathJWKS); n != 3 {
			return fmt.Errorf("%d JWKS fetches, want 3 after KeysMaxAge", n)
		}
		return nil
	})
}

func rotate(t *testing.T, e *apptest.Env) {
	t.Helper()
	if _, err := e.App.Admin.RotateKeys(context.Background(), "test", []string{"RS256"}); err != nil {
		t.Fatal(err)
	}
}

// TestJWKSSessionEnd: an ended session is refused once the cached answer
// is TTL old, for decisions made here (an HS256 consumer token verified by
// introspection; an ES256 OAuth password-grant token verified locally) and
// for those handed to /auth/check (a P21 user token).
func TestJWKSSessionEnd(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api", Grants: []string{"password"}})
	consumer := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `","username":"api_user"}`)
	user := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	resp, b := e.Post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=password&username=api_user&password=pw-one-two",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+key)))
	var oauth struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &oauth); resp.StatusCode != 200 || jwtHeader(t, oauth.AccessToken)["alg"] != "ES256" {
		t.Fatalf("password grant: %d %s", resp.StatusCode, b)
	}
	clock := &testClock{}
	const ttl = 10 * time.Second
	w := newWire()
	jwks := newJWKS(t, e, guard.JWKSConfig{Client: &http.Client{Transport: w}, Clock: clock, TTL: ttl})
	toks := []string{consumer, oauth.AccessToken, user}
	for _, tok := range toks {
		if got, _, _ := decide(t, jwks, "/api/entity/x", tok); got != 200 {
			t.Fatalf("before the end: %d", got)
		}
	}
	ctx := context.Background()
	for _, tok := range toks {
		id, err := e.App.Verifier.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.App.Store.EndSession(ctx, id.Session.ID, gatehouse.EndAdmin, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until gatehouse itself refuses them (it follows its feed).
	for _, tok := range toks {
		testtime.Eventually(t, time.Second, func() error {
			if _, err := e.App.Verifier.Verify(ctx, tok); err != nil {
				return nil
			}
			return errors.New("gatehouse still accepts an ended session")
		})
	}
	// Within TTL the cached answers stand; that is the documented bound.
	clock.Advance(ttl - time.Second)
	for _, tok := range toks {
		if got, _, _ := decide(t, jwks, "/api/entity/x", tok); got != 200 {
			t.Fatalf("within TTL: %d, want the cached answer", got)
		}
	}
	clock.Advance(time.Second)
	for i, tok := range toks {
		got, _, rf := decide(t, jwks, "/api/entity/x", tok)
		if got != 401 || rf.Code != "invalid_token" || rf.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %d after TTL: %d %+v", i, got, rf)
		}
	}
}

// TestJWKSUnavailable: when session state cannot be read (introspection or
// /auth/check unreachable, or gatehouse's store down) the answer is 503
// with Retry-After, as Local and Remote give it: never 200, never 401.
func TestJWKSUnavailable(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
	consumerTok := func() string {
		return e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	}
	user := e.Token(`{"username":"api_user","password":"pw-one-two"}`)
	w := newWire()
	jwks := newJWKS(t, e, guard.JWKSConfig{Client: &http.Client{Transport: w}, TTL: -1})
	unavailable := func(what string, tok string) {
		t.Helper()
		got, _, rf := decide(t, jwks, "/api/entity/x", tok)
		if got != 503 || rf.Code != "temporarily_unavailable" || rf.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %+v, want 503 temporarily_unavailable with Retry-After", what, got, rf)
		}
		// The middleware answers it as such.
		req := httptest.NewRequest(http.MethodGet, "/api/entity/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		guard.Middleware(jwks)(http.NotFoundHandler()).ServeHTTP(rec, req)
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
			t.Fatalf("%s through the middleware: %d %v %s", what, rec.Code, rec.Header(), rec.Body)
		}
	}

	w.setDown(pathIntrospect, true)
	unavailable("introspection unreachable", consumerTok())
	w.setDown(pathIntrospect, false)
	w.setDown(pathCheck, true)
	unavailable("/auth/check unreachable", user)
	w.setDown(pathCheck, false)
	if got, _, _ := decide(t, jwks, "/api/entity/x", user); got != 200 {
		t.Fatalf("back up: %d", got)
	}

	// gatehouse's store goes down: its introspection and /auth/check answer
	// 503 (once its feed poll notices), and so does the decider.
	tok := consumerTok()
	remote := guard.NewRemote(e.URL, guard.RemoteOptions{TTL: -1})
	if err := e.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d   guard.Decider
		tok string
	}{{jwks, tok}, {jwks, user}, {remote, user}} {
		testtime.Eventually(t, time.Second, func() error {
			got, _, rf := decide(t, tc.d, "/api/entity/x", tc.tok)
			switch {
			case got == 503 && (rf.Code != "temporarily_unavailable" || rf.Header.Get("Retry-After") == ""):
				t.Fatalf("store down: %+v", rf)
			case got == 503:
				return nil
			case got != 200:
				t.Fatalf("store down: %d %+v, want 503", got, rf)
			}
			return fmt.Errorf("store down: still %d, want 503", got)
		})
	}
}

// TestNewJWKSChecksConfiguration: a wrong secret or URL fails at start.
func TestNewJWKSChecksConfiguration(t *testing.T) {
	e := apptest.New(t)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "rs", Scope: "/api"})
	ctx := context.Background()
	for name, c := range map[string]guard.JWKSConfig{
		"no base URL":  {ClientID: "rs", ClientSecret: key},
		"no secret":    {BaseURL: e.URL, ClientID: "rs"},
		"wrong secret": {BaseURL: e.URL, ClientID: "rs", ClientSecret: "00000000-0000-4000-8000-000000000000"},
		"wrong JWKS":   {BaseURL: e.URL, JWKSURL: e.URL + "/nothing-here", ClientID: "rs", ClientSecret: key},
	} {
		if _, err := guard.NewJWKS(ctx, c); err == nil {
			t.Errorf("%s: NewJWKS succeeded", name)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
	if _, err := guard.NewJWKS(ctx, guard.JWKSConfig{BaseURL: e.URL, ClientID: "rs", ClientSecret: key}); err != nil {
		t.Fatal(err)
	}
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	first, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// claimsOf returns a token's claims, unverified.
func claimsOf(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, c)
	tk.Header["kid"] = kid
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// publishedRSAKey returns the kid of an RSA key in e's JWKS and the key in
// PEM, as a key-confusion attacker would use it.
func publishedRSAKey(t *testing.T, e *apptest.Env) (string, []byte) {
	t.Helper()
	for _, k := range e.App.Keys.Ring().Load().JWKS().Keys {
		if k.Algorithm == "RS256" {
			der, err := x509.MarshalPKIXPublicKey(k.Key)
			if err != nil {
				t.Fatal(err)
			}
			return k.KeyID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
	}
	t.Fatal("no RS256 key published")
	return "", nil
}
