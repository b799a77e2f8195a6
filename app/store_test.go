package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// TestRemovedStoreAnswers503: with gatehouse.db removed under a running
// server, token requests that would write get 503 with Retry-After (not a
// 200 whose session a restart would not find), /readyz fails, and admin
// changes fail.
func TestRemovedStoreAnswers503(t *testing.T) {
	e := apptest.New(t)
	e.AddUser("api_user", "pw-one-two", true, "")
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
	e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+key))
	_, b := e.Post("/api/security/token/v2", "application/json", `{"username":"api_user","password":"pw-one-two"}`)
	var user struct{ RefreshToken string }
	json.Unmarshal(b, &user)
	_, b = e.Post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", "Authorization", basic)
	var oauth struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(b, &oauth)
	if user.RefreshToken == "" || oauth.AccessToken == "" {
		t.Fatal("no tokens before the removal")
	}

	if err := os.Remove(filepath.Join(e.Cfg.DataDir, app.StoreFile)); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct {
		name, path, ctype, body string
		headers                 []string
	}{
		{"P21 consumer", "/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`, nil},
		{"P21 user", "/api/security/token/v2", "application/json", `{"username":"api_user","password":"pw-one-two"}`, nil},
		{"OAuth2 client credentials", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", []string{"Authorization", basic}},
		{"P21 refresh", "/api/security/token/v2", "application/json", `{"GrantType":"refresh_token","RefreshToken":"` + user.RefreshToken + `"}`, nil},
		{"OAuth2 revocation", "/oauth/revoke", "application/x-www-form-urlencoded", "token=" + oauth.AccessToken, []string{"Authorization", basic}},
		{"a failed sign-in (counted for lockout)", "/api/security/token/v2", "application/json", `{"username":"api_user","password":"wrong"}`, nil},
	} {
		resp, b := e.Post(req.path, req.ctype, req.body, req.headers...)
		var body map[string]any
		json.Unmarshal(b, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			body["error"] != gatehouse.CodeTemporarilyUnavail {
			t.Errorf("%s with the store removed: %d Retry-After %q %s; want 503 temporarily_unavailable with Retry-After",
				req.name, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	resp, b := e.Do(mustRequest(t, http.MethodGet, e.URL+"/readyz"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "unreachable") {
		t.Errorf("/readyz with the store removed: %d %s", resp.StatusCode, b)
	}
	if _, err := e.App.Admin.AddRole(context.Background(), "test", "r"); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("admin change with the store removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.Cfg.DataDir, app.StoreFile)); err == nil {
		t.Error("an empty store was created in place of the removed one")
	}
}

// TestServeCreatesNothingWithoutMasterKey: a server that cannot start (no
// master key) leaves no empty store behind.
func TestServeCreatesNothingWithoutMasterKey(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Dev, cfg.MasterKey = false, ""
	cfg.DataDir = filepath.Join(cfg.DataDir, "data")
	if _, err := app.New(context.Background(), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_MASTER_KEY") {
		t.Fatalf("app.New without a master key: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); err == nil {
		t.Fatal("the data dir was created")
	}
}

// TestServeCreatesPrivateDataDir: serve creates a missing data dir 0700
// and the store in it 0600, with or without --dev.
func TestServeCreatesPrivateDataDir(t *testing.T) {
	for _, dev := range []bool{true, false} {
		cfg := apptest.Config(t)
		cfg.Dev = dev
		cfg.DataDir = filepath.Join(cfg.DataDir, "a", "data")
		a, err := app.New(context.Background(), cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		for p, want := range map[string]os.FileMode{cfg.DataDir: 0o700, filepath.Join(cfg.DataDir, app.StoreFile): 0o600} {
			fi, err := os.Stat(p)
			if err != nil || fi.Mode().Perm() != want {
				t.Errorf("dev=%t: %s: %v %v, want mode %o", dev, p, fi.Mode(), err, want)
			}
		}
	}
}

// TestServeRefusesLeftoverWAL: a write-ahead log without its database is
// what a removed store leaves; serve does not start an empty store over it.
func TestServeRefusesLeftoverWAL(t *testing.T) {
	cfg := apptest.Config(t)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, app.StoreFile+"-wal"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := app.New(context.Background(), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "restore it") {
		t.Fatalf("app.New over a leftover WAL: %v", err)
	}
}
