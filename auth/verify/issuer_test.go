package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/auth/verify"
	"github.com/gatehouse/gatehouse/token"
)

// TestIssuerPerKind: OAuth2 tokens carry --oauth-issuer and P21 tokens
// P21.Soa; each issuer is accepted only on its own kind of session, and any
// other issuer not at all.
func TestIssuerPerKind(t *testing.T) {
	const oauthIss = "https://issuer.example.test"
	e := apptest.New(t, func(c *app.Config) { c.Auth.OAuthIssuer = oauthIss })
	_, key := e.AddConsumer(admin.NewConsumer{Name: "svc", Scope: "/api"})
	ctx := context.Background()
	v := e.App.Verifier

	p21 := e.Token(`{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`)
	resp, b := e.Post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+key)))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &tr); resp.StatusCode != 200 {
		t.Fatalf("oauth token: %d %s", resp.StatusCode, b)
	}
	_, b = e.Do(mustReq(t, e.URL+"/.well-known/oauth-authorization-server"))
	var md struct{ Issuer string }
	json.Unmarshal(b, &md)
	if md.Issuer != oauthIss {
		t.Fatalf("metadata issuer %q, want %q", md.Issuer, oauthIss)
	}

	oauthID, err := v.Verify(ctx, tr.AccessToken)
	if err != nil || oauthID.Claims.Issuer != oauthIss {
		t.Fatalf("OAuth2 token: %+v, %v", oauthID, err)
	}
	p21ID, err := v.Verify(ctx, p21)
	if err != nil || p21ID.Claims.Issuer != "P21.Soa" {
		t.Fatalf("P21 token: %+v, %v", p21ID, err)
	}

	// The same claims signed with the wrong issuer for their session.
	kr := e.App.Keys.Ring().Load()
	resign := func(id *verify.Identity, iss string) string {
		c := *id.Claims
		c.Issuer, c.ID = iss, token.RandomToken(8)
		c.ExpiresAt = time.Now().Add(time.Hour)
		tok, err := kr.Sign(id.Claims.Algorithm, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	wantStatus(t, errOnly(v.Verify(ctx, resign(oauthID, "P21.Soa"))), 401, "does not match its session")
	wantStatus(t, errOnly(v.Verify(ctx, resign(p21ID, oauthIss))), 401, "does not match its session")
	wantStatus(t, errOnly(v.Verify(ctx, resign(p21ID, "https://elsewhere.example"))), 401, "issued by someone else")
	if _, err := v.Verify(ctx, resign(oauthID, oauthIss)); err != nil {
		t.Fatalf("re-signed with its own issuer: %v", err)
	}
}

func mustReq(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
