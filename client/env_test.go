package client_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/client"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadEnvPicksTheFlow(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		opts []client.Option
		want client.Config
	}{
		{"user", map[string]string{"P21_BASE_URL": "https://p21", "P21_USERNAME": "u", "P21_PASSWORD": "p"}, nil,
			client.Config{Flow: client.FlowP21User, BaseURL: "https://p21", Username: "u", Password: "p"}},
		{"consumer with user context", map[string]string{"P21_BASE_URL": "https://p21", "P21_USERNAME": "u", "P21_PASSWORD": "p", "P21_CONSUMER_KEY": "k"}, nil,
			client.Config{Flow: client.FlowP21Consumer, BaseURL: "https://p21", Username: "u", ConsumerKey: "k"}},
		{"consumer", map[string]string{"P21_BASE_URL": "https://p21", "P21_CONSUMER_KEY": "k", "P21_VERIFY_SSL": "false"}, nil,
			client.Config{Flow: client.FlowP21Consumer, BaseURL: "https://p21", ConsumerKey: "k", InsecureSkipVerify: true}},
		{"apx", map[string]string{"P21_CONSUMER_KEY": "k", "APX_CLIENT_ID": "c", "APX_CLIENT_SECRET": "s", "APX_USERNAME": "au", "APX_PASSWORD": "ap"},
			[]client.Option{client.WithAPX()},
			client.Config{Flow: client.FlowAPX, TokenURL: client.APXProduction, ClientID: "c", ClientSecret: "s", Username: "au", Password: "ap"}},
		{"apx uat", map[string]string{}, []client.Option{client.WithAPXUAT()},
			client.Config{Flow: client.FlowAPX, TokenURL: client.APXUAT}},
		{"apx url", map[string]string{"APX_TOKEN_URL": "http://127.0.0.1:8080/oauth/token"}, []client.Option{client.WithAPXUAT()},
			client.Config{Flow: client.FlowAPX, TokenURL: "http://127.0.0.1:8080/oauth/token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.LoadEnv(envOf(tt.env), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFromEnvNamesTheMissingVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		opts []client.Option
		want string
	}{
		{map[string]string{}, nil, "P21_BASE_URL"},
		{map[string]string{"P21_BASE_URL": "https://p21"}, nil, "P21_USERNAME"},
		{map[string]string{"P21_BASE_URL": "https://p21", "P21_USERNAME": "u"}, nil, "P21_PASSWORD"},
		{map[string]string{"P21_BASE_URL": "ftp://p21", "P21_CONSUMER_KEY": "k"}, nil, "P21_BASE_URL"},
		{map[string]string{"P21_BASE_URL": "https://p21", "P21_VERIFY_SSL": "maybe"}, nil, "P21_VERIFY_SSL"},
		{map[string]string{}, []client.Option{client.WithAPX()}, "APX_CLIENT_ID"},
		{map[string]string{"APX_CLIENT_ID": "c"}, []client.Option{client.WithAPX()}, "APX_CLIENT_SECRET"},
		{map[string]string{"APX_CLIENT_ID": "c", "APX_CLIENT_SECRET": "s"}, []client.Option{client.WithAPX()}, "APX_USERNAME"},
		{map[string]string{"APX_CLIENT_ID": "c", "APX_CLIENT_SECRET": "s", "APX_USERNAME": "u"}, []client.Option{client.WithAPX()}, "APX_PASSWORD"},
	}
	for _, tt := range tests {
		_, err := client.FromEnv(envOf(tt.env), tt.opts...)
		var ce *client.ConfigError
		if !errors.As(err, &ce) || ce.Var != tt.want || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want one naming %s", tt.env, err, tt.want)
		}
	}
}

func TestFromEnvAgainstServer(t *testing.T) {
	srv := newP21Server(t)
	c, err := client.FromEnv(envOf(map[string]string{"P21_BASE_URL": srv.URL, "P21_CONSUMER_KEY": srv.key, "P21_USERNAME": testUser}))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	if r := client.ResponseOf(tok); r.UserName != testUser || r.ConsumerUID != srv.uid {
		t.Fatalf("response = %+v", r)
	}
}

// P21_VERIFY_SSL=false turns verification off, with a loud warning; the
// default verifies.
func TestVerifySSL(t *testing.T) {
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"AccessToken":"tls-token","ExpiresIn":60}`)
	}))
	defer tls.Close()
	env := map[string]string{"P21_BASE_URL": tls.URL, "P21_USERNAME": "u", "P21_PASSWORD": "p"}

	var warn bytes.Buffer
	c, err := client.FromEnv(envOf(env), client.WithWarnings(&warn))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Source.Token(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unverified certificate was accepted: %v", err)
	}
	if warn.Len() != 0 {
		t.Fatalf("warning without P21_VERIFY_SSL=false: %s", warn.String())
	}

	env["P21_VERIFY_SSL"] = "false"
	c, err = client.FromEnv(envOf(env), client.WithWarnings(&warn))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Source.Token()
	if err != nil || tok.AccessToken != "tls-token" {
		t.Fatalf("got %v, %v", tok, err)
	}
	if n := strings.Count(warn.String(), "WARNING"); n < 2 || !strings.Contains(warn.String(), "TLS certificate verification is OFF") {
		t.Fatalf("warning = %q", warn.String())
	}
	if strings.Count(warn.String(), "is OFF") != 1 {
		t.Errorf("the warning was written more than once")
	}
}

// TestVerifySSLErrorNamesTheFlow: a bad P21_VERIFY_SSL names the flow the
// environment selects.
func TestVerifySSLErrorNamesTheFlow(t *testing.T) {
	_, err := client.LoadEnv(envOf(map[string]string{"P21_BASE_URL": "https://p21", "P21_CONSUMER_KEY": "k", "P21_VERIFY_SSL": "maybe"}))
	var ce *client.ConfigError
	if !errors.As(err, &ce) || ce.Var != "P21_VERIFY_SSL" || ce.Flow != client.FlowP21Consumer {
		t.Fatalf("err = %v, want P21_VERIFY_SSL for the consumer flow", err)
	}
}
