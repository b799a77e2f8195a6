package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/store/postgres/pgtest"
)

// TestStoreCopy: a dev store copied into PostgreSQL serves on: its consumer
// key authenticates, a token issued before the copy is still accepted, and
// its refresh token still works.
func TestStoreCopy(t *testing.T) {
	dsn, _ := pgtest.Schema(t)

	// A dev server on SQLite, with a consumer, a user and live sessions.
	cfg := apptest.Config(t)
	dir := cfg.DataDir
	dev := apptest.Start(t, cfg)
	_, key := dev.AddConsumer(admin.NewConsumer{Name: "reports", Scope: "/api"})
	dev.AddUser("alice", "alice-password-1", true, "")
	resp, body := dev.Post("/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("consumer token: %d %s", resp.StatusCode, body)
	}
	var consumerTok struct{ AccessToken string }
	json.Unmarshal(body, &consumerTok)
	resp, body = dev.Post("/api/security/token/v2", "application/json", `{"username":"alice","password":"alice-password-1"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("user token: %d %s", resp.StatusCode, body)
	}
	var userTok struct{ AccessToken, RefreshToken string }
	json.Unmarshal(body, &userTok)
	dev.Close()

	env := map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey}
	code, _, errs := cli(t, "", env, "store", "copy", "--from", dir)
	if code != 2 || !strings.Contains(errs, "--to") {
		t.Fatalf("copy without a target: exit %d: %s", code, errs)
	}
	code, _, errs = cli(t, "", env, "store", "copy", "--from", t.TempDir(), "--to", dsn)
	if code != 2 || !strings.Contains(errs, "holds no gatehouse store") {
		t.Fatalf("copy of an empty dir: exit %d: %s", code, errs)
	}
	code, _, errs = cli(t, "", map[string]string{"GATEHOUSE_MASTER_KEY": masterkey.Generate()}, "store", "copy", "--from", dir, "--to", dsn)
	if code != 2 || !strings.Contains(errs, "does not open the signing keys") {
		t.Fatalf("copy checked with another master key: exit %d: %s", code, errs)
	}

	out := mustCLI(t, "", map[string]string{"GATEHOUSE_MASTER_KEY": apptest.TestMasterKey, "GATEHOUSE_DB": dsn}, "store", "copy", "--from", dir)
	for _, want := range []string{"1 users", "1 consumers", "6 signing keys", "2 active sessions with 1 refresh tokens", "same master key"} {
		if !strings.Contains(out, want) {
			t.Fatalf("copy output lacks %q:\n%s", want, out)
		}
	}
	code, _, errs = cli(t, "", env, "store", "copy", "--from", dir, "--to", dsn)
	if code != 2 || !strings.Contains(errs, "not empty") {
		t.Fatalf("second copy into the same store: exit %d: %s", code, errs)
	}

	// A server on the copy, with the same master key.
	pcfg := apptest.Config(t)
	pcfg.DB = dsn
	srv := apptest.Start(t, pcfg)
	for name, tok := range map[string]string{"consumer": consumerTok.AccessToken, "user": userTok.AccessToken} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/auth/check", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-Uri", "/api/entity/x")
		if resp, body := srv.Do(req); resp.StatusCode != 200 {
			t.Fatalf("%s token from before the copy: %d %s", name, resp.StatusCode, body)
		}
	}
	if resp, body := srv.Post("/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`); resp.StatusCode != 200 {
		t.Fatalf("consumer key after the copy: %d %s", resp.StatusCode, body)
	}
	if resp, body := srv.Post("/api/security/token/v2", "application/json", `{"GrantType":"refresh_token","RefreshToken":"`+userTok.RefreshToken+`"}`); resp.StatusCode != 200 {
		t.Fatalf("refresh token after the copy: %d %s", resp.StatusCode, body)
	}
	c, err := srv.App.Store.GetConsumerByName(context.Background(), "reports")
	if err != nil || c.UIDString() != "1" {
		t.Fatalf("copied consumer: %+v, %v", c, err)
	}
}
