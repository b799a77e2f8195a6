package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/store"
)

func decodeReport(t *testing.T, out string) loadReport {
	t.Helper()
	var r loadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return r
}

// TestLoadTokenConsumer: every request of the run is a token request that
// creates a session; the report counts them all.
func TestLoadTokenConsumer(t *testing.T) {
	te := newTokenEnv(t)
	out := te.must(t, te.key+"\n", "load", "token", "--consumer-key-stdin", "-n", "300", "-c", "8", "--json")
	r := decodeReport(t, out)
	if r.Requests != 300 || r.Status["200"] != 300 || !r.OK || r.Failed != 0 || r.LatencyMeasured != 300 {
		t.Fatalf("report: %+v", r)
	}
	if r.Method != http.MethodPost || r.URL != te.URL+"/api/security/token/v2" || r.Concurrency != 8 {
		t.Errorf("report names %s %s with %d connections", r.Method, r.URL, r.Concurrency)
	}
	if n := te.requests.Load(); n != 300 {
		t.Errorf("server saw %d token requests, want 300", n)
	}
	if n := te.sessions(t, store.SessionFilter{}); n != 300 {
		t.Errorf("%d sessions stored, want 300 (ended by the cap or not)", n)
	}
	if l := r.LatencyMillis; !(l["min"] > 0 && l["min"] <= l["p50"] && l["p50"] <= l["p99"] && l["p99"] <= l["max"]) {
		t.Errorf("latencies out of order: %v", l)
	}
	if len(te.cacheFiles(t)) != 0 {
		t.Error("load token wrote the token cache")
	}
	if strings.Contains(out, te.key) {
		t.Error("the report shows the consumer key")
	}
}

func TestLoadTokenUserV1(t *testing.T) {
	te := newTokenEnv(t).set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	code, out, errs := te.run(t, "", "load", "token", "--v1", "-n", "4", "-c", "2")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "status     200: 4") || !strings.Contains(errs, "POST "+te.URL+"/api/security/token: 2 connections, 4 requests or 10s") {
		t.Errorf("report:\n%s%s", errs, out)
	}
	if n := te.sessions(t, store.SessionFilter{Username: tokUser}); n != 4 {
		t.Errorf("%d sessions for the user, want 4", n)
	}
	if strings.Contains(out+errs, tokPassword) {
		t.Error("the output shows the password")
	}
}

// TestLoadTokenRefused: a wrong key fails every request; the run says how
// many and exits 1, without the key anywhere.
func TestLoadTokenRefused(t *testing.T) {
	te := newTokenEnv(t)
	bad := "00000000-1111-4222-8333-444444444444"
	code, out, errs := te.run(t, bad, "load", "token", "--consumer-key-stdin", "-n", "20")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "401: 20") || !strings.Contains(errs, "20 of 20 requests failed") {
		t.Errorf("report:\n%s\n%s", out, errs)
	}
	if strings.Contains(out+errs, bad) {
		t.Error("the output shows the consumer key")
	}
}

// TestLoadTokenWithoutToken: a 2xx that carries an error instead of a
// token is a failure.
func TestLoadTokenWithoutToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"error":"invalid_client","error_description":"Unknown consumer."}`)
	}))
	defer srv.Close()
	te := newTokenEnv(t).set("P21_BASE_URL", srv.URL, "P21_CONSUMER_KEY", "62ccc18a-25e2-440c-bf6d-749c117fa9db")
	code, out, errs := te.run(t, "", "load", "token", "-n", "5", "--json")
	r := decodeReport(t, out)
	if code != 1 || r.OK || r.CheckFailures["a 2xx response without a token in it"] != 5 || r.Failed != 5 {
		t.Fatalf("exit %d, report %+v, stderr %s", code, r, errs)
	}
}

func TestLoadTokenAPX(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("svc", "apx-pw-1", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "apx-client", Scope: "access", Grants: []string{"password"}})
	te := &tokenEnv{env: map[string]string{"XDG_CACHE_HOME": t.TempDir(), "APX_TOKEN_URL": e.URL + "/oauth/token",
		"APX_CLIENT_ID": "apx-client", "APX_USERNAME": "svc", "APX_PASSWORD": "apx-pw-1"}}
	out := te.must(t, key, "load", "token", "--apx", "--consumer-key-stdin", "-n", "6", "-c", "3", "--json")
	if r := decodeReport(t, out); !r.OK || r.Status["200"] != 6 || r.URL != e.URL+"/oauth/token" {
		t.Fatalf("report %+v", r)
	}
}

// TestLoadCall: one token for the whole run, sent with every request, the
// body too.
func TestLoadCall(t *testing.T) {
	te := newTokenEnv(t).set("P21_CONSUMER_KEY", "")
	te.set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	var seen, withToken, withBody atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
			withToken.Add(1)
		}
		if b, _ := io.ReadAll(r.Body); string(b) == `{"a":1}` && r.Header.Get("X-Test") == "yes" {
			withBody.Add(1)
		}
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer upstream.Close()
	out := te.must(t, "", "load", "call", "POST", upstream.URL+"/x", "--data", `{"a":1}`, "-H", "X-Test: yes", "-n", "40", "-c", "4", "--json")
	if r := decodeReport(t, out); !r.OK || r.Requests != 40 {
		t.Fatalf("report %+v", r)
	}
	// 40, and the one that checks the token before the run.
	if seen.Load() != 41 || withToken.Load() != 41 || withBody.Load() != 41 {
		t.Errorf("upstream saw %d requests, %d with the token, %d with the body; want 41 each", seen.Load(), withToken.Load(), withBody.Load())
	}
	if n := te.requests.Load(); n != 1 {
		t.Errorf("%d token requests for the run, want 1", n)
	}
	// A second run takes the cached token.
	code, out, errs := te.run(t, "", "load", "call", "GET", upstream.URL+"/x?fail=1", "-n", "10")
	if code != 1 || !strings.Contains(out, "502: 10") || !strings.Contains(errs, "10 of 10 requests failed: the gateway's upstream is down (502)") {
		t.Errorf("exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(errs, "fail=1") {
		t.Error("the query string is shown")
	}
	if n := te.requests.Load(); n != 1 {
		t.Errorf("%d token requests after two runs, want 1", n)
	}
}

// TestLoadCallRenewsToken: a cached token whose session has ended is
// renewed before the run; a run in which everything fails says why.
func TestLoadCallRenewsToken(t *testing.T) {
	te := newTokenEnv(t).set("P21_CONSUMER_KEY", "")
	te.set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	te.must(t, "", "token")
	if _, err := te.App.Admin.EndUserSessions(context.Background(), "test", tokUser); err != nil {
		t.Fatal(err)
	}
	_, _, errs := te.run(t, "", "load", "call", "GET", "/auth/check", "-H", "X-Original-URI: /api/entity/customers", "-n", "5")
	if !strings.Contains(errs, "was refused with 401") || !strings.Contains(errs, "renewed it before the run") {
		t.Errorf("stderr %q", errs)
	}
	if n := te.requests.Load(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first, the renewal)", n)
	}
	code, _, errs := te.run(t, "", "load", "call", "GET", "/auth/check", "-H", "X-Original-URI: /nowhere/at/all", "-n", "3")
	if code != 1 || !strings.Contains(errs, "3 of 3 requests failed: ") || !strings.Contains(errs, "(403)") {
		t.Errorf("all refused: exit %d %q", code, errs)
	}
}

// TestLoadCallAuthCheck measures gatehouse's forward-auth decision.
func TestLoadCallAuthCheck(t *testing.T) {
	te := newTokenEnv(t).set("P21_CONSUMER_KEY", "")
	te.set("P21_USERNAME", tokUser, "P21_PASSWORD", tokPassword)
	out := te.must(t, "", "load", "call", "GET", "/auth/check", "-H", "X-Forwarded-Uri: /api/entity/customers", "-n", "200", "--json")
	if r := decodeReport(t, out); !r.OK || r.Status["200"] != 200 {
		t.Fatalf("report %+v", r)
	}
}

func TestLoadFlagsRefused(t *testing.T) {
	te := newTokenEnv(t).set("P21_CONSUMER_KEY", "62ccc18a-25e2-440c-bf6d-749c117fa9db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"load", "token", "-d", "0"}, "--duration 0 needs --requests"},
		{[]string{"load", "token", "-c", "0"}, "--concurrency 0"},
		{[]string{"load", "token", "-n", "-3"}, "--requests -3 is negative"},
		{[]string{"load", "token", "--rate", "-1"}, "--rate -1 is negative"},
		{[]string{"load", "token", "--timeout", "0s"}, "--timeout 0s"},
		{[]string{"load", "token", "extra"}, "unknown command"},
		{[]string{"load", "call", "g!t", "/x"}, `"g!t" is not an HTTP method`},
		{[]string{"load", "call", "GET"}, "takes 2 argument(s), got 1"},
	} {
		code, _, errs := te.run(t, "", c.args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", c.args, code, errs, c.want)
		}
	}
	if n := te.requests.Load(); n != 0 {
		t.Errorf("refused command lines sent %d token requests", n)
	}
}

// TestLoadCallBearerEnv: a token from the environment, no credentials and
// no token request.
func TestLoadCallBearerEnv(t *testing.T) {
	var withToken atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-from-env" {
			withToken.Add(1)
		}
	}))
	defer upstream.Close()
	te := &tokenEnv{env: map[string]string{"XDG_CACHE_HOME": t.TempDir(), "P21_BASE_URL": upstream.URL, "MY_TOKEN": "tok-from-env"}}
	out := te.must(t, "", "load", "call", "GET", "/x", "--bearer-env", "MY_TOKEN", "-n", "25", "--json")
	if r := decodeReport(t, out); !r.OK || r.Requests != 25 || withToken.Load() != 26 { // and the check before the run
		t.Fatalf("report %+v, %d with the token", r, withToken.Load())
	}
	if code, _, errs := te.run(t, "", "load", "call", "GET", "/x", "--bearer-env", "UNSET", "-n", "1"); code != 2 || !strings.Contains(errs, "UNSET is empty or not set") {
		t.Errorf("unset variable: exit %d %q", code, errs)
	}
	if strings.Contains(out, "tok-from-env") {
		t.Error("the report shows the token")
	}
}
