package openapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth/admin"
)

// TestGeneratedClientGetsTokens is the document's acceptance test: the
// client oapi-codegen generates from it for the token endpoints
// (client_gen_test.go, tag "tokens") gets tokens from gatehouse on every
// flow, reads errors and XML as the document types them, and the tokens
// it gets are accepted by the server.
func TestGeneratedClientGetsTokens(t *testing.T) {
	e, key := p21Fixture(t)
	_, apxKey := e.AddConsumer(admin.NewConsumer{Name: "apx_client", Scope: "/api", Lifetime: time.Hour,
		Grants: []string{gatehouse.GrantPassword}})
	c, err := NewClientWithResponses(e.URL, WithHTTPClient(e.Server.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	str := func(s string) *string { return &s }
	var tokens []string

	v2, err := c.P21TokenV2WithResponse(ctx, P21TokenV2JSONRequestBody{Username: str("api_user"), Password: str("your_password")})
	if err != nil || v2.JSON200 == nil {
		t.Fatalf("V2 user: %v %s", err, v2.Body)
	}
	user, err := v2.JSON200.AsP21UserToken()
	if err != nil || user.AccessToken == "" || user.RefreshToken == "" || user.ExpiresInSeconds != 86400 {
		t.Fatalf("V2 user token: %+v %v", user, err)
	}
	tokens = append(tokens, user.AccessToken)

	v2c, err := c.P21TokenV2WithFormdataBodyWithResponse(ctx, P21TokenV2FormdataRequestBody{ClientSecret: str(key), GrantType: str("client_credentials"), Username: str("api_user")})
	if err != nil || v2c.JSON200 == nil {
		t.Fatalf("V2 consumer (form): %v %s", err, v2c.Body)
	}
	consumer, err := v2c.JSON200.AsP21ConsumerToken()
	if err != nil || consumer.ConsumerUid != "8" || consumer.UserName != "api_user" || consumer.Scope != "/api;/p21sdk" {
		t.Fatalf("V2 consumer token: %+v %v", consumer, err)
	}
	tokens = append(tokens, consumer.AccessToken)

	v1, err := c.P21TokenV1WithResponse(ctx, &P21TokenV1Params{Appkey: str(key)})
	if err != nil || v1.JSON200 == nil || v1.HTTPResponse.Header.Get("Deprecation") == "" {
		t.Fatalf("V1 consumer: %v %s", err, v1.Body)
	}
	v1c, _ := v1.JSON200.AsP21ConsumerToken()
	tokens = append(tokens, v1c.AccessToken)

	xml, err := c.P21TokenV2WithResponse(ctx, P21TokenV2JSONRequestBody{Username: str("api_user"), Password: str("your_password")},
		func(_ context.Context, r *http.Request) error { r.Header.Set("Accept", "application/xml"); return nil })
	if err != nil || xml.XML200 == nil || xml.XML200.AccessToken == "" || xml.XML200.ExpiresIn != 86400 {
		t.Fatalf("V2 XML: %v %s", err, xml.Body)
	}
	tokens = append(tokens, xml.XML200.AccessToken)

	bad, err := c.P21TokenV2WithResponse(ctx, P21TokenV2JSONRequestBody{Username: str("api_user"), Password: str("wrong")})
	if err != nil || bad.JSON401 == nil || bad.JSON401.Error != "invalid_grant" {
		t.Fatalf("V2 wrong password: %v %s", err, bad.Body)
	}

	cc, err := c.OauthTokenWithFormdataBodyWithResponse(ctx, OauthTokenFormdataRequestBody{GrantType: ClientCredentials,
		ClientId: str("apx_client"), ClientSecret: str(apxKey)})
	if err != nil || cc.JSON200 == nil || cc.JSON200.TokenType != "bearer" {
		t.Fatalf("OAuth2 client credentials: %v %s", err, cc.Body)
	}
	tokens = append(tokens, cc.JSON200.AccessToken)

	pw, err := c.OauthTokenWithFormdataBodyWithResponse(ctx, OauthTokenFormdataRequestBody{GrantType: Password,
		APXUsername: str("api_user"), APXPassword: str("your_password")},
		func(_ context.Context, r *http.Request) error { r.SetBasicAuth("apx_client", apxKey); return nil })
	if err != nil || pw.JSON200 == nil || pw.JSON200.ExpiresIn != 3600 {
		t.Fatalf("OAuth2 APX password grant: %v %s", err, pw.Body)
	}
	tokens = append(tokens, pw.JSON200.AccessToken)

	unauth, err := c.OauthTokenWithFormdataBodyWithResponse(ctx, OauthTokenFormdataRequestBody{GrantType: ClientCredentials,
		ClientId: str("apx_client"), ClientSecret: str("wrong")})
	if err != nil || unauth.JSON401 == nil || unauth.JSON401.Error != "invalid_client" {
		t.Fatalf("OAuth2 wrong secret: %v %s", err, unauth.Body)
	}

	// Every token it got opens the API its scope grants.
	for i, tok := range tokens {
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/auth/check", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Original-URI", "/api/entity/customer")
		if resp, body := e.Do(req); resp.StatusCode != http.StatusOK {
			t.Errorf("token %d: /auth/check %d %s", i, resp.StatusCode, body)
		}
	}
}
