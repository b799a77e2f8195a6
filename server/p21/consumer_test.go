package p21_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/internal/testtime"
)

func TestFiniteConsumerLifetime(t *testing.T) {
	f := newFixture(t)
	_, key := f.AddConsumer(admin.NewConsumer{Name: "short", Scope: "/api", Lifetime: 2 * time.Hour})
	resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+key+`","GrantType":"client_credentials"}`)
	var r struct {
		ExpiresIn   int64
		AccessToken string
	}
	json.Unmarshal(body, &r)
	if resp.StatusCode != 200 || r.ExpiresIn != 7200 {
		t.Fatalf("status %d ExpiresIn %d: %s", resp.StatusCode, r.ExpiresIn, body)
	}
	_, c := claims(t, r.AccessToken)
	exp, _ := c["exp"].(json.Number).Int64()
	iat, _ := c["iat"].(json.Number).Int64()
	if exp-iat != 7200 {
		t.Fatalf("exp-iat = %d", exp-iat)
	}
}

func TestScopeInRequestIsIgnored(t *testing.T) {
	f := newFixture(t)
	_, plain := f.consumerV2("")
	resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+f.key+`","GrantType":"client_credentials","Scope":"/odata:supplier"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var a, b struct{ Scope, AccessToken string }
	json.Unmarshal(plain, &a)
	json.Unmarshal(body, &b)
	_, c := claims(t, b.AccessToken)
	if a.Scope != "/api;/p21sdk" || b.Scope != a.Scope || c["aud"] != a.Scope {
		t.Fatalf("scope changed: %q vs %q (aud %v)", a.Scope, b.Scope, c["aud"])
	}
	// The user flow too.
	resp, body = f.Post("/api/security/token/v2", jsonCT, `{"username":"api_user","password":"your_password","scope":"/p21sdk"}`)
	var u struct{ AccessToken string }
	json.Unmarshal(body, &u)
	_, c = claims(t, u.AccessToken)
	if resp.StatusCode != 200 || c["aud"] != "/api" {
		t.Fatalf("user scope changed: %v", c["aud"])
	}
}

func TestBadConsumerKey(t *testing.T) {
	f := newFixture(t)
	want := `{"error":"invalid_client","error_description":"Client authentication failed."}` + "\n"
	for _, key := range []string{"00000000-0000-4000-8000-000000000000", "not-a-uuid", f.key + "x", strings.ToUpper(f.key)} {
		resp, body := f.Post("/api/security/token/v2", jsonCT, `{"ClientSecret":"`+key+`","GrantType":"client_credentials"}`)
		if resp.StatusCode != 401 || string(body) != want {
			t.Errorf("key %q: %d %s", key, resp.StatusCode, body)
		}
	}
	resp, body := f.Post("/api/security/token", "", "", "appkey", "00000000-0000-4000-8000-000000000000")
	if resp.StatusCode != 401 || string(body) != want {
		t.Errorf("V1 bad appkey: %d %s", resp.StatusCode, body)
	}
	// Disabled consumers get the same answer, within the feed interval.
	if _, _, err := f.App.Admin.SetConsumerDisabled(context.Background(), "test", "MY_SERVICE_APP", true); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, time.Second, func() error {
		resp, body := f.consumerV2("")
		if resp.StatusCode != 401 || string(body) != want {
			return fmt.Errorf("a disabled consumer still gets %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// TestConsumerUsernameIsAnyString: the consumer flow takes any string as the
// user context (SPEC §2.1) and echoes it; the user is validated where used.
func TestConsumerUsernameIsAnyString(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"a\u0001b", strings.Repeat("u", 300), "tab\there", "Jürgen <x&y>"} {
		body, _ := json.Marshal(map[string]string{"GrantType": "client_credentials", "ClientSecret": f.key, "username": name})
		resp, out := f.Post("/api/security/token/v2", jsonCT, string(body))
		var got struct{ UserName string }
		if resp.StatusCode != 200 || json.Unmarshal(out, &got) != nil || got.UserName != name {
			t.Errorf("username %q: %d %s", name, resp.StatusCode, out)
		}
	}
	// What no store can keep is a malformed request.
	for name, u := range map[string]string{"NUL": "a\u0000b", "too long": strings.Repeat("u", 1025)} {
		body, _ := json.Marshal(map[string]string{"GrantType": "client_credentials", "ClientSecret": f.key, "username": u})
		resp, out := f.Post("/api/security/token/v2", jsonCT, string(body))
		if resp.StatusCode != 400 || !strings.Contains(string(out), "invalid_request") {
			t.Errorf("%s username: %d %s", name, resp.StatusCode, out)
		}
	}
	// Not text at all is a malformed request.
	resp, out := f.Post("/api/security/token/v2", "application/x-www-form-urlencoded", "GrantType=client_credentials&ClientSecret="+f.key+"&username=%FF")
	if resp.StatusCode != 400 || !strings.Contains(string(out), "UTF-8") {
		t.Errorf("invalid UTF-8 username: %d %s", resp.StatusCode, out)
	}
}

// TestScopeEchoedAsConfigured: Scope is the consumer's scope string as the
// administrator wrote it (plus /p21sdk for SDK access), and still matches
// case-insensitively.
func TestScopeEchoedAsConfigured(t *testing.T) {
	f := newFixture(t)
	for i, c := range []struct {
		scope string
		sdk   bool
		want  string
	}{
		{" /odata:Price_Page, supplier ,Product_Group ", false, "/odata:Price_Page, supplier ,Product_Group"},
		{"/API", true, "/API;/p21sdk"},
		{"/api;/P21SDK", true, "/api;/P21SDK"},
	} {
		_, key := f.AddConsumer(admin.NewConsumer{Name: "c" + strconv.Itoa(i), Scope: c.scope, SDK: c.sdk})
		resp, body := f.Post("/api/security/token/v2", jsonCT, `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`)
		var got struct{ Scope, AccessToken string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Scope != c.want {
			t.Errorf("scope %q: %d %s; want Scope %q", c.scope, resp.StatusCode, body, c.want)
		}
	}
}
