package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
)

// servedIdentity runs serve --dev with addr and publicURL and reports what
// it calls itself: in the --dev output, the start-up log, the metadata, the
// iss of an OAuth2 token and the UI router's answer.
type servedIdentity struct {
	devOutput, log         string
	issuer, tokenEndpoint  string
	tokenIss, p21Iss       string
	routerURL, port, local string
}

func serveIdentity(t *testing.T, addr, publicURL string) servedIdentity {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.Addr, cfg.PublicURL, cfg.Dev = addr, publicURL, true
	cfg.DataDir = filepath.Join(t.TempDir(), "data") // created by serve
	cfg.MasterKey = apptest.TestMasterKey
	cfg.SQLiteSync = "normal"
	var out, errb syncBuf
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	log := slog.New(slog.NewTextHandler(&errb, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serveWith(ctx, e, cfg, log, ready) }()
	var bound string
	select {
	case bound = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	_, port, _ := net.SplitHostPort(bound)
	local := "http://127.0.0.1:" + port
	id := servedIdentity{port: port, local: local}

	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, local+"/.well-known/oauth-authorization-server", "", &md)
	id.issuer, id.tokenEndpoint = md.Issuer, md.TokenEndpoint

	key := regexp.MustCompile(`key ([0-9a-f-]{36})`).FindStringSubmatch(out.String())
	if key == nil {
		t.Fatalf("no demo consumer key in the --dev output:\n%s", out.String())
	}
	resp, err := http.PostForm(local+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"demo-service"}, "client_secret": {key[1]}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	_, claims := decodeJWT(t, tok.AccessToken)
	id.tokenIss, _ = claims["iss"].(string)

	_, p21 := postJSON(t, local+"/api/security/token/v2", `{"GrantType":"client_credentials","ClientSecret":"`+key[1]+`"}`)
	_, claims = decodeJWT(t, p21["AccessToken"].(string))
	id.p21Iss, _ = claims["iss"].(string)

	var router struct {
		URL string `json:"Url"`
	}
	getJSON(t, local+"/api/ui/router/v1", tok.AccessToken, &router)
	id.routerURL = router.URL
	id.devOutput, id.log = out.String(), errb.String()
	return id
}

func getJSON(t *testing.T, u, bearer string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, v) != nil {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
}

// TestServeIdentityFromBoundAddress: with --addr :PORT (every interface)
// and no --public-url, the server calls itself http://localhost:PORT
// everywhere — never http://:PORT or http://0.0.0.0:PORT — and its OAuth2
// tokens carry the metadata's issuer; P21 tokens keep P21.Soa.
func TestServeIdentityFromBoundAddress(t *testing.T) {
	id := serveIdentity(t, ":0", "")
	want := "http://localhost:" + id.port
	if id.issuer != want || id.tokenEndpoint != want+"/oauth/token" || id.tokenIss != want ||
		id.routerURL != want+"/uiserver0" || id.p21Iss != "P21.Soa" {
		t.Fatalf("issuer %q, token endpoint %q, OAuth2 iss %q, P21 iss %q, router %q; want %s", id.issuer, id.tokenEndpoint,
			id.tokenIss, id.p21Iss, id.routerURL, want)
	}
	if !strings.Contains(id.devOutput, "curl -s "+want+"/api/security/token/v2") {
		t.Errorf("--dev output does not use %s:\n%s", want, id.devOutput)
	}
	if !strings.Contains(id.log, "url="+want) || !strings.Contains(id.log, "no --public-url") {
		t.Errorf("start-up log lacks url=%s or the --public-url warning:\n%s", want, id.log)
	}
	if strings.Contains(id.log, "accessible to group or others") {
		t.Errorf("a fresh data dir was reported as open to others:\n%s", id.log)
	}
	for _, bad := range []string{"http://:", "0.0.0.0", "[::]"} {
		if strings.Contains(id.devOutput, bad) || strings.Contains(id.log, "url=http://"+bad) {
			t.Errorf("%q in the output:\n%s\n%s", bad, id.devOutput, id.log)
		}
	}
}

// TestServeIdentityPublicURL: --public-url is the identity, everywhere.
func TestServeIdentityPublicURL(t *testing.T) {
	const pub = "https://auth.example.test"
	id := serveIdentity(t, "127.0.0.1:0", pub+"/")
	if id.issuer != pub || id.tokenIss != pub || id.routerURL != pub+"/uiserver0" || id.p21Iss != "P21.Soa" ||
		!strings.Contains(id.devOutput, "curl -s "+pub+"/api/security/token/v2") || !strings.Contains(id.log, "url="+pub) {
		t.Fatalf("issuer %q, OAuth2 iss %q, P21 iss %q, router %q\n%s\n%s", id.issuer, id.tokenIss, id.p21Iss, id.routerURL,
			id.devOutput, id.log)
	}
	if strings.Contains(id.log, "no --public-url") {
		t.Errorf("warned about --public-url although it was given:\n%s", id.log)
	}
}
