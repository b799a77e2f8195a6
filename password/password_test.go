package password

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// fast parameters keep tests quick; the format and logic are the same.
func fast() Params { return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32} }

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(fast())
	hash, err := h.Hash(ctx, "s3cret: %+=/@$!")
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("Hash: %q %v", hash, err)
	}
	if ok, rehash, err := h.Verify(ctx, hash, "s3cret: %+=/@$!"); !ok || rehash || err != nil {
		t.Fatalf("Verify right password: %v %v %v", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, hash, "wrong"); ok || err != nil {
		t.Fatalf("Verify wrong password: %v %v", ok, err)
	}
	other, _ := h.Hash(ctx, "s3cret: %+=/@$!")
	if other == hash {
		t.Fatal("same salt twice")
	}
	// Parameters changed: still verifies, asks for an upgrade.
	h2 := NewHasher(Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if ok, rehash, _ := h2.Verify(ctx, hash, "s3cret: %+=/@$!"); !ok || !rehash {
		t.Fatalf("old params: ok=%v rehash=%v", ok, rehash)
	}
	if _, err := h.Hash(ctx, ""); err == nil {
		t.Fatal("empty password hashed")
	}
	if _, err := h.Hash(ctx, strings.Repeat("x", MaxLen+1)); err == nil {
		t.Fatal("overlong password hashed")
	}
	if ok, _, _ := h.Verify(ctx, hash, strings.Repeat("x", MaxLen+1)); ok {
		t.Fatal("overlong password verified")
	}
	if ok, _, _ := h.Verify(ctx, "", "anything"); ok {
		t.Fatal("empty hash verified")
	}
}

func TestBcrypt(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(fast())
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if !IsHash(string(b)) {
		t.Fatal("bcrypt hash not recognised")
	}
	if ok, rehash, err := h.Verify(ctx, string(b), "pw"); !ok || !rehash || err != nil {
		t.Fatalf("bcrypt right: %v %v %v", ok, rehash, err)
	}
	if ok, rehash, err := h.Verify(ctx, string(b), "nope"); ok || rehash || err != nil {
		t.Fatalf("bcrypt wrong: %v %v %v", ok, rehash, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5",
	} {
		if _, _, _, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) accepted", s)
		}
	}
	h := NewHasher(fast())
	if _, _, err := h.Verify(context.Background(), "$argon2id$garbage", "pw"); err == nil {
		t.Fatal("garbage hash verified without error")
	}
}

func TestContextCancelled(t *testing.T) {
	h := NewHasher(fast())
	ctx, cancel := context.WithCancel(context.Background())
	// Fill every slot, then a cancelled caller must not wait forever.
	for i := 0; i < cap(h.slots); i++ {
		h.slots <- struct{}{}
	}
	cancel()
	if _, err := h.Hash(ctx, "pw"); err == nil {
		t.Fatal("Hash did not honour cancellation")
	}
}

func FuzzDecode(f *testing.F) {
	h := NewHasher(fast())
	good, _ := h.Hash(context.Background(), "pw")
	f.Add(good)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$2a$10$abcdefghijklmnopqrstuv")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := Decode(s)
		if err != nil {
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || len(key) > maxKeyLen || len(salt) < 8 {
			t.Fatalf("accepted out-of-range hash %q: %+v", s, p)
		}
		if re := Encode(p, salt, key); re != s {
			// Decode accepts only the canonical form Encode writes.
			if _, _, _, err := Decode(re); err != nil {
				t.Fatalf("re-encoded hash %q does not decode: %v", re, err)
			}
		}
	})
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams())
	hash, _ := h.Hash(context.Background(), "correct horse")
	b.ResetTimer()
	for b.Loop() {
		h.Verify(context.Background(), hash, "correct horse")
	}
}

func TestIsHash(t *testing.T) {
	good, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(fast())
	argon, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	for s, want := range map[string]bool{
		g:                    true,
		"$2y$" + g[4:]:       true,
		argon:                true,
		"":                   false,
		"plain-password":     false,
		"$2b$99$" + g[7:]:    false, // cost out of range
		"$2b$03$" + g[7:]:    false,
		"$2b$15$" + g[7:]:    false, // over MaxBcryptCost
		"$2b$14$" + g[7:]:    true,
		"$2b$10x" + g[7:]:    false,
		g[:59] + "!":         false, // not bcrypt's base64
		"$2c$" + g[4:]:       false,
		"$argon2i$v=19$x":    false,
		"$argon2id$v=19$m=1": false,
	} {
		if got := IsHash(s); got != want {
			t.Errorf("IsHash(%q) = %t, want %t", s, got, want)
		}
	}
}
