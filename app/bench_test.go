package app_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/app"
	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth/admin"
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

// postForm posts a form to path with the Authorization header given, from loopback.
func postForm(h http.Handler, path, authorization, form string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", authorization)
	req.RemoteAddr = "127.0.0.1:1234"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// BenchmarkIssueConsumerToken measures consumer-key token issuance through
// the HTTP handler (no network): key check, signing, one durable session write.
func BenchmarkIssueConsumerToken(b *testing.B) {
	e := benchEnv(b)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "/api"})
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
	_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "/api"})
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
	_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "/api"})
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

// BenchmarkRefusalTiming measures how long a refused sign-in takes, through
// HTTP on loopback, for an unknown user, a user with an imported cost-4
// bcrypt hash, an argon2id user (all three with a wrong password) and a
// locked-out user, in turn, each name tried once (so none but the locked
// one reaches the lockout threshold). It reports the median of each kind
// and the largest difference between the medians of the first three:
//
//	go test -run '^$' -bench RefusalTiming -benchtime 200x ./app/
func BenchmarkRefusalTiming(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	cheap, _ := bcrypt.GenerateFromPassword([]byte("their old password"), 4)
	for i := range b.N {
		if _, err := e.App.Admin.AddUser(ctx, "bench", admin.NewUser{Name: fmt.Sprintf("bcrypt%d", i), PasswordHash: string(cheap)}); err != nil {
			b.Fatal(err)
		}
		e.AddUser(fmt.Sprintf("argon%d", i), "correct horse battery", true, "")
	}
	e.AddUser("locked", "correct horse battery", true, "")
	signIn := func(user string) time.Duration {
		start := time.Now()
		resp, _ := e.Post("/api/security/token/v2", "application/json", `{"username":"`+user+`","password":"wrong password"}`)
		d := time.Since(start)
		if resp.StatusCode != http.StatusUnauthorized {
			b.Fatalf("%s: %d", user, resp.StatusCode)
		}
		return d
	}
	for range e.Cfg.Auth.LockoutThreshold {
		signIn("locked")
	}
	kinds := []string{"unknown", "bcrypt4", "argon2id", "locked"}
	took := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		// Each round starts with another kind, so that none is always first.
		for k := range kinds {
			kind := kinds[(i+k)%len(kinds)]
			user := map[string]string{"unknown": fmt.Sprintf("nobody%d", i), "bcrypt4": fmt.Sprintf("bcrypt%d", i),
				"argon2id": fmt.Sprintf("argon%d", i), "locked": "locked"}[kind]
			took[kind] = append(took[kind], signIn(user))
		}
	}
	b.StopTimer()
	median := func(ds []time.Duration) float64 {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / 1e6
	}
	lo, hi := 1e9, 0.0
	for _, kind := range kinds {
		m := median(took[kind])
		b.ReportMetric(m, "ms-p50-"+kind)
		if kind != "locked" {
			lo, hi = min(lo, m), max(hi, m)
		}
	}
	b.ReportMetric(hi-lo, "ms-p50-spread")
}

// BenchmarkPasswordGrantRate measures OAuth password grants through the
// HTTP handler (no network), each client goroutine signing in as a user of
// its own, next to raw argon2id computations with the same parameters and
// no limit on how many run at once, at the same concurrency. The two
// alternate in windows of 40 operations, b.N rounds, so that both see the
// same machine; it reports the rate of each over all rounds and their
// ratio:
//
//	go test -run '^$' -bench PasswordGrantRate -benchtime 5x ./app/
func BenchmarkPasswordGrantRate(b *testing.B) {
	e := benchEnv(b)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "access", Grants: []string{"password"}})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:"+key))
	const maxConcurrency, window = 8, 40
	for i := range maxConcurrency {
		e.AddUser(fmt.Sprintf("user%d", i), "correct horse battery", true, "")
	}
	p := password.DefaultParams()
	salt := []byte("0123456789abcdef")
	grant := func(user int) {
		form := url.Values{"grant_type": {"password"}, "username": {fmt.Sprintf("user%d", user)},
			"password": {"correct horse battery"}}.Encode()
		if rec := postForm(e.App.Handler, "/oauth/token", basic, form); rec.Code != 200 {
			b.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	}
	hash := func(int) { argon2.IDKey([]byte("correct horse battery"), salt, p.Time, p.Memory, p.Threads, p.KeyLen) }
	// run does n operations on c goroutines and returns how long they took.
	run := func(c, n int, op func(worker int)) time.Duration {
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		start := time.Now()
		for w := range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					op(w)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	for _, c := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			var tg, th time.Duration
			for range b.N {
				tg += run(c, window, grant)
				th += run(c, window, hash)
			}
			grants, hashes := float64(b.N*window)/tg.Seconds(), float64(b.N*window)/th.Seconds()
			b.ReportMetric(grants, "grants/s")
			b.ReportMetric(hashes, "argon2id/s")
			b.ReportMetric(grants/hashes, "ratio")
		})
	}
}

// BenchmarkSigningPaths measures P21 consumer-token issuance through the
// HTTP handler (no network: key check, signing, one durable session write)
// with each signing algorithm, next to raw RSA-2048 signing
// (rsa.SignPKCS1v15 of a SHA-256, what RS256 costs alone), at the same
// concurrency. They alternate in windows of 256 operations (64 for the RSA
// ones), b.N rounds; it reports each rate, ES256 and EdDSA against RS256,
// and RS256 against raw RSA:
//
//	go test -run '^$' -bench SigningPaths -benchtime 20x ./app/
func BenchmarkSigningPaths(b *testing.B) {
	algs := []string{token.HS256, token.ES256, token.EdDSA, token.RS256}
	issue := map[string]func(int){}
	for _, alg := range algs {
		e := apptest.New(b, func(c *app.Config) { c.SQLiteSync = "full"; c.Auth.ConsumerTokenAlg = alg })
		_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "/api"})
		body := `{"GrantType":"client_credentials","ClientSecret":"` + key + `"}`
		issue[alg] = func(int) { post(b, e.App.Handler, body) }
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a token's header and claims"))
	rawRSA := func(int) {
		if _, err := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, sum[:]); err != nil {
			b.Error(err)
		}
	}
	run := func(c, n int, op func(int)) time.Duration {
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		start := time.Now()
		for w := range c {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					op(w)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	c := 4 * runtime.GOMAXPROCS(0)
	took := map[string]time.Duration{}
	count := map[string]int{}
	b.ResetTimer()
	for i := range b.N {
		kinds := append(slices.Clone(algs), "rsa")
		for k := range kinds {
			kind := kinds[(i+k)%len(kinds)]
			n, op := 256, issue[kind]
			if kind == "rsa" {
				op = rawRSA
			}
			if kind == "rsa" || kind == token.RS256 {
				n = 64
			}
			took[kind] += run(c, n, op)
			count[kind] += n
		}
	}
	b.StopTimer()
	rate := func(kind string) float64 { return float64(count[kind]) / took[kind].Seconds() }
	for _, alg := range algs {
		b.ReportMetric(rate(alg), alg+"/s")
	}
	b.ReportMetric(rate("rsa"), "raw-rsa/s")
	b.ReportMetric(rate(token.ES256)/rate(token.RS256), "ES256/RS256")
	b.ReportMetric(rate(token.EdDSA)/rate(token.RS256), "EdDSA/RS256")
	b.ReportMetric(rate(token.RS256)/rate("rsa"), "RS256/raw-rsa")
}

// BenchmarkIntrospect measures RFC 7662 introspection of a live token by an
// authenticated client, through the HTTP handler (no network).
func BenchmarkIntrospect(b *testing.B) {
	e := benchEnv(b)
	_, key := e.AddConsumer(admin.NewConsumer{Name: "bench", Scope: "/api"})
	tok := accessToken(post(b, e.App.Handler, `{"GrantType":"client_credentials","ClientSecret":"`+key+`"}`))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:"+key))
	form := "token=" + tok
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := postForm(e.App.Handler, "/oauth/introspect", basic, form)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"active":true`) {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
