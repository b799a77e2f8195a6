package oauth2_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/store"
)

// TestSecretsNeverLogged runs every OAuth flow, successful and failing,
// with debug logging and access logs on, then checks that no secret used or
// issued appears in the server's log, in the audit trail, or in any error
// description.
func TestSecretsNeverLogged(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.AccessLog = true
		c.Auth.LockoutThreshold = 2
	})
	addSpecialClient(t, f.Env, "special", specialSecret, gatehouse.GrantPassword, gatehouse.GrantRefreshToken)
	const wrongPass, wrongSecret = "wrong-Pa55word!", "Wrong-Client-Secret-42"
	secrets := []string{apxPass, f.apxKey, f.richKey, f.svcKey, specialSecret, url.QueryEscape(specialSecret),
		wrongPass, wrongSecret, apptest.TestMasterKey}
	mk, _ := base64.StdEncoding.DecodeString(apptest.TestMasterKey)
	secrets = append(secrets, string(mk))

	var errorBodies []string
	send := func(path, body string, headers ...string) map[string]any {
		resp, b := f.form(path, body, headers...)
		var m map[string]any
		json.Unmarshal(b, &m)
		for _, k := range []string{"access_token", "refresh_token"} {
			if s, ok := m[k].(string); ok && s != "" {
				secrets = append(secrets, s)
			}
		}
		if resp.StatusCode >= 400 {
			errorBodies = append(errorBodies, string(b))
		}
		return m
	}
	pw := func(p string) string {
		return url.Values{"Username": {apxUser}, "Password": {p}, "grant_type": {"password"}}.Encode()
	}
	apx, rich, special := basic("apx_client", f.apxKey), basic(richName, f.richKey), basic("special", specialSecret)

	send("/oauth/token", pw(apxPass), "Authorization", apx)
	send("/oauth/token", "grant_type=password&username="+apxUser+"&password="+url.QueryEscape(apxPass)+
		"&client_id=apx_client&client_secret="+f.apxKey)
	rt := send("/oauth/token", pw(apxPass), "Authorization", rich)
	send("/oauth/token", pw(apxPass), "Authorization", special)
	send("/oauth/token", pw(apxPass), "Authorization", basic("special", url.QueryEscape(specialSecret)))
	send("/oauth/token", "grant_type=client_credentials", "Authorization", basic("svc", f.svcKey))
	send("/oauth/token", "grant_type=client_credentials&client_id=svc&client_secret="+f.svcKey)
	// Failures: wrong password (twice: locks), locked, wrong secrets, malformed bodies carrying secrets.
	send("/oauth/token", pw(wrongPass), "Authorization", apx)
	send("/oauth/token", pw(wrongPass), "Authorization", apx)
	send("/oauth/token", pw(apxPass), "Authorization", apx)
	send("/oauth/token", pw(apxPass), "Authorization", basic("apx_client", wrongSecret))
	send("/oauth/token", pw(apxPass), "Authorization", basic(wrongSecret, f.apxKey))
	send("/oauth/token", pw(apxPass)+"&client_secret="+wrongSecret, "Authorization", apx)
	send("/oauth/token", "grant_type=client_credentials&client_id=svc&client_secret="+wrongSecret)
	send("/oauth/token", "grant_type=password&Username=a&Password="+wrongPass+"%zz", "Authorization", apx)
	send("/oauth/token", "grant_type=password&Username=a&Password="+wrongPass+"&Password="+wrongPass, "Authorization", apx)
	send("/oauth/token", "grant_type=password&Username=a&Password="+wrongPass+"&password=other", "Authorization", apx)
	send("/oauth/token", wrongSecret+"&"+wrongSecret, "Authorization", apx)
	send("/oauth/token", "grant_type="+wrongSecret, "Authorization", apx)
	send("/oauth/token", pw(apxPass), "Authorization", "Basic "+wrongSecret+"!!")
	send("/oauth/token", pw(apxPass), "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(wrongSecret)))
	// Refresh, then reuse.
	if s, ok := rt["refresh_token"].(string); ok {
		next := send("/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(s), "Authorization", rich)
		send("/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(s), "Authorization", rich)
		send("/oauth/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(s), "Authorization", apx)
		if n, ok := next["refresh_token"].(string); ok {
			send("/oauth/introspect", "token="+url.QueryEscape(n), "Authorization", rich)
		}
	} else {
		t.Fatal("no refresh token issued")
	}
	// Introspection and revocation of every token seen.
	for _, s := range append([]string(nil), secrets...) {
		send("/oauth/introspect", "token="+url.QueryEscape(s), "Authorization", basic("svc", f.svcKey))
		send("/oauth/introspect", "token="+url.QueryEscape(s), "Authorization", basic("svc", wrongSecret))
	}
	for _, s := range append([]string(nil), secrets...) {
		send("/oauth/revoke", "token="+url.QueryEscape(s), "Authorization", rich)
	}
	// Secrets in the query string and other headers are not logged either.
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/oauth/token?client_secret="+f.svcKey+"&password="+apxPass, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", formCT)
	req.Header.Set("Authorization", basic("svc", f.svcKey))
	f.Do(req)

	log := f.Log.String()
	if !strings.Contains(log, "request") || !strings.Contains(log, "/oauth/token") {
		t.Fatalf("no access log lines were written; the test checks nothing:\n%s", log)
	}
	evs, err := f.App.Store.ListAudit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 10 {
		t.Fatalf("only %d audit events", len(evs))
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(log, s) {
			t.Errorf("secret %.6s… appears in the log", s)
		}
		for _, b := range errorBodies {
			if strings.Contains(b, s) {
				t.Errorf("secret %.6s… appears in an error response: %s", s, b)
			}
		}
		for _, ev := range evs {
			line, _ := json.Marshal(ev)
			if strings.Contains(string(line), s) {
				t.Errorf("secret %.6s… appears in audit event %s", s, ev.Action)
			}
		}
	}
}
