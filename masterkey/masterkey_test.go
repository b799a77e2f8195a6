package masterkey

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, Size)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		"  " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Load("", dir, false); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_MASTER_KEY") {
		t.Fatalf("missing key without create: %v", err)
	}
	k1, src, err := Load("", dir, true)
	if err != nil || src != SourceCreated {
		t.Fatalf("create: %v %s", err, src)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	k2, src, err := Load("", dir, true)
	if err != nil || src != SourceFile {
		t.Fatalf("reload: %v %s", err, src)
	}
	if !bytes.Equal(k1.Derive("x", 16), k2.Derive("x", 16)) {
		t.Fatal("reloaded key differs")
	}
	env := Generate()
	k3, src, err := Load(env, dir, true)
	if err != nil || src != SourceEnv {
		t.Fatalf("env: %v %s", err, src)
	}
	if bytes.Equal(k1.Derive("x", 16), k3.Derive("x", 16)) {
		t.Fatal("env key not used")
	}
	if _, _, err := Load("short", dir, true); err == nil {
		t.Fatal("bad env key accepted")
	}
}

func TestSealOpen(t *testing.T) {
	k, _ := Parse(Generate())
	other, _ := Parse(Generate())
	s := k.Seal([]byte("private"), []byte("kid1"))
	if p, err := k.Open(s, []byte("kid1")); err != nil || string(p) != "private" {
		t.Fatalf("open: %q %v", p, err)
	}
	if _, err := k.Open(s, []byte("kid2")); err == nil {
		t.Fatal("opened with other associated data")
	}
	if _, err := other.Open(s, []byte("kid1")); err == nil {
		t.Fatal("opened with other key")
	}
	if _, err := k.Open(s[:5], nil); err == nil {
		t.Fatal("opened truncated data")
	}
	if bytes.Equal(k.Derive("a", 32), k.Derive("b", 32)) {
		t.Fatal("derive ignores info")
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	raw := bytes.Repeat([]byte{0xAB}, Size)
	k, _ := fromBytes(raw)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(strings.ToLower(s), "abab") || strings.Contains(s, base64.StdEncoding.EncodeToString(raw)) {
			t.Fatalf("key printed: %s", s)
		}
	}
}
