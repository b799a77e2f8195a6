package guard_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/guard/local"
)

// TestDecidersAcceptBothIssuers: P21 tokens carry P21.Soa, tokens of
// /oauth/token the server's OAuth2 issuer (its public URL); the JWKS and
// Local deciders accept each.
func TestDecidersAcceptBothIssuers(t *testing.T) {
	e := apptest.New(t)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
	p21 := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	resp, b := e.Post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+key)))
	var oauth struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &oauth); resp.StatusCode != 200 {
		t.Fatalf("client credentials: %d %s", resp.StatusCode, b)
	}
	loc, err := local.Open(context.Background(), local.Config{DataDir: e.Cfg.DataDir, MasterKey: apptest.TestMasterKey,
		OAuthIssuer: e.URL, FeedInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	jwks := newJWKS(t, e, guard.JWKSConfig{})
	for name, d := range map[string]guard.Decider{"local": loc, "jwks": jwks} {
		for kind, tok := range map[string]string{"P21": p21, "OAuth2": oauth.AccessToken} {
			if got, _, rf := decide(t, d, "/api/entity/x", tok); got != 200 {
				t.Errorf("%s, %s token: %d %+v", name, kind, got, rf)
			}
		}
	}
}
