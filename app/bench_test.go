package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/token"
)

// benchEnv is a server with production durability (synchronous=full) and
// the default password parameters.
func benchEnv(b *testing.B) *apptest.Env {
	return apptest.New(b, func(c *app.Config) { c.SQLiteSync = "full" })
}

func post(b *testing.B, h http.Handler, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/security/token/v2", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.1:1234"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkIssueConsumerToken measures consumer-key token issuance through
// the HTTP handler (no network): key check, signing, one durable session write.
func BenchmarkIssueConsumerToken(b *testing.B) {
	e := benchEnv(b)
	_, key := e.AddConsumer(auth.NewConsumer{Name: "bench", Scope: "/api"})
	body := `{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`
	// Many clients at once, as in production: their session writes share commits.
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, e.App.Handler, body)
		}
	})
}

// BenchmarkIssueUserToken measures password sign-in, one at a time, next
// to the password check alone: the difference is gatehouse's own overhead.
func BenchmarkIssueUserToken(b *testing.B) {
	e := benchEnv(b)
	e.AddUser("bench", "correct horse battery", true, "")
	body := `{"username":"bench","password":"correct horse battery"}`
	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			post(b, e.App.Handler, body)
		}
	})
	b.Run("password-only", func(b *testing.B) {
		h := password.NewHasher(password.DefaultParams())
		hash, _ := h.Hash(context.Background(), "correct horse battery")
		for b.Loop() {
			h.Verify(context.Background(), hash, "correct horse battery")
		}
	})
}

// BenchmarkBearerCheck measures the decision of the gateway and
// /auth/check for a token seen before: answered from memory.
func BenchmarkBearerCheck(b *testing.B) {
	e := benchEnv(b)
	e.AddRole("clerk")
	e.AddUser("bench", "correct horse battery", true, "clerk")
	e.App.Admin.SetRoleEntries(context.Background(), "bench", "clerk", true, []string{"supplier"})
	_, key := e.AddConsumer(auth.NewConsumer{Name: "bench", Scope: "/api"})
	consumerTok := accessToken(post(b, e.App.Handler, `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`))
	userTok := accessToken(post(b, e.App.Handler, `{"username":"bench","password":"correct horse battery"}`))
	for _, c := range []struct{ name, tok, path string }{
		{"consumer-entity", consumerTok, "/api/entity/customers"},
		{"user-odata-role", userTok, "/odataservice/odata/table/supplier"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := policy.Request{Path: c.path, Authorization: []string{"Bearer " + c.tok}}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.App.Authorizer.Authorize(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkVerifyToken measures verifying an issued token with the server's key ring.
func BenchmarkVerifyToken(b *testing.B) {
	e := benchEnv(b)
	_, key := e.AddConsumer(auth.NewConsumer{Name: "bench", Scope: "/api"})
	e.AddUser("bench", "correct horse battery", true, "")
	consumerTok := accessToken(post(b, e.App.Handler, `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`))
	userTok := accessToken(post(b, e.App.Handler, `{"username":"bench","password":"correct horse battery"}`))
	kr := e.App.Keys.Ring().Load()
	for name, tok := range map[string]string{"consumer-HS256": consumerTok, "user-RS256": userTok} {
		b.Run(name, func(b *testing.B) {
			o := token.VerifyOptions{Issuer: "P21.Soa", Now: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kr.Verify(tok, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func accessToken(rec *httptest.ResponseRecorder) string {
	s := rec.Body.String()
	i := strings.Index(s, `"AccessToken":"`) + len(`"AccessToken":"`)
	return s[i : i+strings.Index(s[i:], `"`)]
}
