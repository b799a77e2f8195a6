package p21_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
)

// TestSecretsNeverLogged runs every token flow, successful and failing,
// with debug logging and access logs on, then checks that no secret used
// or issued appears anywhere in the server's log output.
func TestSecretsNeverLogged(t *testing.T) {
	f := newFixture(t, func(c *app.Config) {
		c.AccessLog = true
		c.Auth.LockoutThreshold = 2
	})
	secrets := []string{userPassword, f.key, apptest.TestMasterKey, "wrong-Pa55word!", "Basic-Secret-XYZ"}
	mk, _ := base64.StdEncoding.DecodeString(apptest.TestMasterKey)
	secrets = append(secrets, string(mk))

	collect := func(body []byte) {
		var r map[string]any
		if json.Unmarshal(body, &r) != nil {
			return
		}
		for _, k := range []string{"AccessToken", "RefreshToken"} {
			if s, ok := r[k].(string); ok && s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	post := func(path, ct, body string, headers ...string) {
		_, b := f.Post(path, ct, body, headers...)
		collect(b)
	}
	post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`)
	post("/api/security/token/v2", "application/x-www-form-urlencoded", "username=api_user&password=your_password")
	post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong-Pa55word!"}`)
	post("/api/security/token/v2", jsonCT, `{"username":"nobody","password":"wrong-Pa55word!"}`)
	post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"wrong-Pa55word!"}`) // locks
	post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password"}`)   // locked
	post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials"}`)
	post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials","username":"api_user"}`)
	post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`x","GrantType":"client_credentials"}`)
	post("/api/security/token/v2", jsonCT, `{"password": wrong-Pa55word!}`)
	post("/api/security/token/v2", "application/x-www-form-urlencoded", "password=wrong-Pa55word!%zz")
	post("/api/security/token", "", "", "username", "api_user", "password", "wrong-Pa55word!")
	post("/api/security/token", "", "", "appkey", f.key)
	post("/api/security/token", "", "", "appkey", f.key, "username", "api_user")
	post("/api/security/token", "", "", "appkey", f.key+"x")
	post("/api/security/token/v2", jsonCT, `{}`, "Authorization", "Basic-Secret-XYZ")
	// Refresh with every refresh token seen so far, twice (reuse).
	for _, s := range append([]string(nil), secrets...) {
		if !strings.HasPrefix(s, "eyJ") && len(s) == 43 {
			post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+s+`"}`)
			post("/api/security/token/v2", jsonCT, `{"GrantType":"refresh_token","RefreshToken":"`+s+`"}`)
		}
	}
	// Token-bearing requests to other routes are logged too.
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/nothing?access_token="+f.key, nil)
	req.Header.Set("Authorization", "Bearer "+secrets[len(secrets)-1])
	f.Do(req)

	log := f.Log.String()
	if !strings.Contains(log, "request") {
		t.Fatalf("no access log lines were written; the test checks nothing:\n%s", log)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("secret %.6s… appears in the log", s)
		}
	}
	// The audit trail holds no secrets either.
	evs, err := f.App.Store.ListAudit(t.Context(), storeFilter(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		line, _ := json.Marshal(ev)
		for _, s := range secrets {
			if strings.Contains(string(line), s) {
				t.Errorf("secret %.6s… appears in audit event %s", s, ev.Action)
			}
		}
	}
}
