package token

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

func testRing(t testing.TB, mk *masterkey.Key, algs ...string) (*Keyring, []gatehouse.SigningKey) {
	t.Helper()
	now := time.Now()
	var keys []gatehouse.SigningKey
	for _, alg := range algs {
		k, err := NewSigningKey(alg, mk, now)
		if err != nil {
			t.Fatal(err)
		}
		k.State = gatehouse.KeyActive
		keys = append(keys, k)
	}
	kr, err := NewKeyring(keys, mk)
	if err != nil {
		t.Fatal(err)
	}
	return kr, keys
}

func claimsAt(now time.Time) Claims {
	return Claims{Issuer: "P21.Soa", Subject: "api_user", Audience: "/api", IssuedAt: now, NotBefore: now,
		ExpiresAt: now.Add(time.Hour), ID: RandomToken(16), SessionID: "07113e5c-3431-4164-aecb-aeeb8b6753ba"}
}

func TestSignVerifyEveryAlgorithm(t *testing.T) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(t, mk, Algorithms...)
	now := time.Now()
	for _, alg := range Algorithms {
		c := claimsAt(now)
		c.ConsumerUID = "8"
		tok, err := kr.Sign(alg, c)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		got, err := kr.Verify(tok, VerifyOptions{Issuer: "P21.Soa", Now: now})
		if err != nil {
			t.Fatalf("%s verify: %v", alg, err)
		}
		if got.Subject != "api_user" || got.Audience != "/api" || got.SessionID != c.SessionID || got.ConsumerUID != "8" ||
			got.Algorithm != alg || got.KeyID != kr.ActiveKID(alg) || got.ExpiresAt.Unix() != c.ExpiresAt.Unix() {
			t.Fatalf("%s claims: %+v", alg, got)
		}
	}
}

func TestWireShape(t *testing.T) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(t, mk, RS256)
	c := claimsAt(time.Unix(1700000000, 0))
	c.Subject = ""
	tok, _ := kr.Sign(RS256, c)
	parts := strings.Split(tok, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h, p map[string]any
	json.Unmarshal(hb, &h)
	json.Unmarshal(pb, &p)
	if h["alg"] != "RS256" || h["typ"] != "JWT" || h["kid"] != kr.ActiveKID(RS256) {
		t.Fatalf("header %v", h)
	}
	if sub, ok := p["sub"]; !ok || sub != "" {
		t.Fatalf("sub must be present and empty: %v", p)
	}
	if _, ok := p["P21.ConsumerUid"]; ok {
		t.Fatalf("user token carries P21.ConsumerUid: %v", p)
	}
	if p["aud"] != "/api" || p["iss"] != "P21.Soa" || p["exp"].(float64) != 1700003600 {
		t.Fatalf("payload %v", p)
	}
}

func TestVerifyRefuses(t *testing.T) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, keys := testRing(t, mk, RS256, HS256)
	now := time.Now()
	good, _ := kr.Sign(RS256, claimsAt(now))
	opts := VerifyOptions{Issuer: "P21.Soa", Now: now, Leeway: 30 * time.Second}

	other, _ := testRing(t, mk, RS256)
	foreign, _ := other.Sign(RS256, claimsAt(now))

	// alg confusion: an HS256 token whose HMAC secret is the RSA public key,
	// naming the RSA key's kid.
	rsaKID := kr.ActiveKID(RS256)
	pubDER := keys[0].Public
	conf := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(now).wire())
	conf.Header["kid"] = rsaKID
	confused, _ := conf.SignedString(pubDER)

	none := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt(now).wire())
	none.Header["kid"] = rsaKID
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"P21.Soa","sub":"admin","aud":"/api","exp":9999999999,"jti":"x","P21.SessionId":"y"}`)) + "." + parts[2]

	expired := claimsAt(now.Add(-2 * time.Hour))
	expiredTok, _ := kr.Sign(RS256, expired)
	future := claimsAt(now.Add(time.Hour))
	futureTok, _ := kr.Sign(RS256, future)
	wrongIss := claimsAt(now)
	wrongIss.Issuer = "someone"
	wrongIssTok, _ := kr.Sign(RS256, wrongIss)
	noSession := claimsAt(now)
	noSession.SessionID = ""
	noSessionTok, _ := kr.Sign(HS256, noSession)

	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"foreign key":   {foreign, ErrUnknownKey},
		"alg confusion": {confused, ErrAlgorithm},
		"alg none":      {noneTok, ErrAlgorithm},
		"tampered":      {tampered, ErrSignature},
		"expired":       {expiredTok, ErrExpired},
		"not yet valid": {futureTok, ErrNotYetValid},
		"wrong issuer":  {wrongIssTok, ErrIssuer},
		"no session":    {noSessionTok, ErrMissingClaim},
		"garbage":       {"a.b.c", ErrMalformed},
		"empty":         {"", ErrMalformed},
	} {
		if _, err := kr.Verify(tc.tok, opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
	// Leeway: just expired is still fine within it.
	edge := claimsAt(now.Add(-time.Hour).Add(-10 * time.Second))
	edgeTok, _ := kr.Sign(RS256, edge)
	if _, err := kr.Verify(edgeTok, opts); err != nil {
		t.Errorf("within leeway: %v", err)
	}
}

func TestKeyringRefusesOtherMasterKey(t *testing.T) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	mk2, _ := masterkey.Parse(masterkey.Generate())
	_, keys := testRing(t, mk, RS256)
	if _, err := NewKeyring(keys, mk2); err == nil {
		t.Fatal("keys opened with another master key")
	}
	// A sealed blob moved to another kid does not open either.
	keys[0].KID = "other"
	if _, err := NewKeyring(keys, mk); err == nil {
		t.Fatal("sealed key accepted under another kid")
	}
}

func TestJWKS(t *testing.T) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(t, mk, RS256, ES256, EdDSA, HS256)
	b, err := kr.JWKSJSON()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 3 {
		t.Fatalf("want 3 public keys, got %d: %s", len(set.Keys), b)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.KeyID == "" || k.Algorithm == HS256 {
			t.Fatalf("bad key %+v", k)
		}
	}
	// A token verifies with the published key alone.
	tok, _ := kr.Sign(RS256, claimsAt(time.Now()))
	jk := set.Key(kr.ActiveKID(RS256))
	if len(jk) != 1 {
		t.Fatal("RS256 key not published")
	}
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return jk[0].Key.(*rsa.PublicKey), nil }, jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		t.Fatalf("verify with JWKS key: %v", err)
	}
	if strings.Contains(string(b), `"d"`) {
		t.Fatal("private parameter published")
	}
}

func TestRandom(t *testing.T) {
	if a, b := RandomToken(32), RandomToken(32); len(a) != 43 || a == b {
		t.Fatalf("RandomToken: %q %q", a, b)
	}
}

func BenchmarkSign(b *testing.B) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(b, mk, Algorithms...)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			c := claimsAt(time.Now())
			for b.Loop() {
				if _, err := kr.Sign(alg, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(b, mk, Algorithms...)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			now := time.Now()
			tok, _ := kr.Sign(alg, claimsAt(now))
			o := VerifyOptions{Issuer: "P21.Soa", Now: now}
			for b.Loop() {
				if _, err := kr.Verify(tok, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(f, mk, RS256, HS256)
	good, _ := kr.Sign(HS256, claimsAt(time.Now()))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := kr.Verify(tok, VerifyOptions{Issuer: "P21.Soa", Now: time.Now()})
		if err == nil && (c.SessionID == "" || c.KeyID == "") {
			t.Fatalf("accepted token without session or key: %q", tok)
		}
	})
}

// TestClaimsJSON: the claims' MarshalJSON, which golang-jwt uses when it
// signs, writes byte for byte what encoding/json writes for them.
func TestClaimsJSON(t *testing.T) {
	type plain wireClaims // the same fields, without MarshalJSON
	now := time.Now()
	for _, sub := range []string{"api_user", "", `<a href="x">&é` + "\u2028\x01\xff"} {
		c := claimsAt(now)
		c.Subject = sub
		if sub == "" {
			c.ConsumerUID = "8"
		}
		w := c.wire()
		got, err := w.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(plain(*w))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("sub %q:\n got %s\nwant %s", sub, got, want)
		}
	}
}

// BenchmarkRS256Path measures the RS256 signing path (Keyring.Sign: the
// claims, the header and the signature) beside raw RSA-2048 signing
// (rsa.SignPKCS1v15 of a SHA-256) with the same key, at the same
// concurrency (GOMAXPROCS goroutines each):
//
//	go test -run '^$' -bench RS256Path -benchtime 3s ./token/
func BenchmarkRS256Path(b *testing.B) {
	mk, _ := masterkey.Parse(masterkey.Generate())
	kr, _ := testRing(b, mk, RS256)
	priv := kr.active[RS256].signer.(*rsa.PrivateKey)
	sum := sha256.Sum256([]byte("a token's header and claims"))
	b.Run("keyring", func(b *testing.B) {
		c := claimsAt(time.Now())
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := kr.Sign(RS256, c); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("rsa.SignPKCS1v15", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, sum[:]); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
