package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkJWTLibraries measures why gatehouse uses two JOSE libraries:
// golang-jwt signs and verifies tokens (the hot path of every token
// request and first-seen bearer check), go-jose reads and writes JWK sets,
// which golang-jwt cannot. go-jose's own JWT layer is several times slower
// at the same work (docs/benchmarks.md).
func BenchmarkJWTLibraries(b *testing.B) {
	c := benchClaims{Iss: "P21.Soa", Aud: "/api;/p21sdk", Exp: 2147483647, Iat: 1796000000, Nbf: 1796000000,
		Jti: "RphupLFECgpdzr6PuNGrlQ", Sid: "07113e5c-3431-4164-aecb-aeeb8b6753ba", Cu: "8"}
	hkey := []byte("0123456789abcdef0123456789abcdef")
	ekey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, alg := range []struct {
		name string
		m    jwt.SigningMethod
		j    jose.SignatureAlgorithm
		key  any
	}{{"HS256", jwt.SigningMethodHS256, jose.HS256, hkey}, {"ES256", jwt.SigningMethodES256, jose.ES256, ekey}} {
		b.Run("sign/"+alg.name+"/golang-jwt", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				t := jwt.NewWithClaims(alg.m, &c)
				t.Header["kid"] = "k1"
				if _, err := t.SignedString(alg.key); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("sign/"+alg.name+"/go-jose", func(b *testing.B) {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg.j, Key: alg.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := josejwt.Signed(s).Claims(&c).Serialize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, &c)
	t.Header["kid"] = "k1"
	tok, _ := t.SignedString(hkey)
	b.Run("verify/HS256/golang-jwt", func(b *testing.B) {
		p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var out benchClaims
			if _, err := p.ParseWithClaims(tok, &out, func(*jwt.Token) (any, error) { return hkey, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify/HS256/go-jose", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			pt, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
			if err != nil {
				b.Fatal(err)
			}
			var out benchClaims
			if err := pt.Claims(hkey, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type benchClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat"`
	Nbf int64  `json:"nbf"`
	Jti string `json:"jti"`
	Sid string `json:"P21.SessionId"`
	Cu  string `json:"P21.ConsumerUid,omitempty"`
}

func (c *benchClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Exp, 0)), nil
}
func (c *benchClaims) GetIssuedAt() (*jwt.NumericDate, error)  { return nil, nil }
func (c *benchClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *benchClaims) GetIssuer() (string, error)              { return c.Iss, nil }
func (c *benchClaims) GetSubject() (string, error)             { return c.Sub, nil }
func (c *benchClaims) GetAudience() (jwt.ClaimStrings, error)  { return jwt.ClaimStrings{c.Aud}, nil }
