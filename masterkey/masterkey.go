// Package masterkey holds the master key: 32 random bytes that seal the
// private parts of signing keys at rest and from which other secrets (the
// consumer-key HMAC secret) are derived. It comes from GATEHOUSE_MASTER_KEY
// (base64) or, in a development data dir, from a master.key file.
package masterkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Size is the length of a master key in bytes.
const Size = 32

// FileName is the master key file inside a data dir.
const FileName = "master.key"

// Key is a master key. Its bytes never leave the package except as derived
// secrets; its String form hides them.
type Key struct {
	k    [Size]byte
	aead cipher.AEAD
}

// Where a key was found.
const (
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceCreated = "created"
)

// Parse decodes a base64 (standard or URL alphabet, padded or not) master key.
func Parse(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("master key is not valid base64")
	}
	if len(b) != Size {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", Size, len(b))
	}
	return fromBytes(b)
}

func fromBytes(b []byte) (*Key, error) {
	k := &Key{}
	copy(k.k[:], b)
	block, err := aes.NewCipher(k.Derive("gatehouse seal v1", 32))
	if err != nil {
		return nil, err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return k, nil
}

// Generate returns a new random master key in base64.
func Generate() string {
	b := make([]byte, Size)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b)
}

// Load finds the master key: env (the value of GATEHOUSE_MASTER_KEY) when
// set, else dataDir/master.key, else — when create is true — a new
// master.key written with mode 0600. It reports where the key came from.
func Load(env, dataDir string, create bool) (*Key, string, error) {
	if strings.TrimSpace(env) != "" {
		k, err := Parse(env)
		if err != nil {
			return nil, "", fmt.Errorf("GATEHOUSE_MASTER_KEY: %w", err)
		}
		return k, SourceEnv, nil
	}
	if dataDir == "" {
		return nil, "", errors.New("no master key: set GATEHOUSE_MASTER_KEY")
	}
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := Parse(string(b))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return k, SourceFile, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("read master key: %w", err)
	case !create:
		return nil, "", fmt.Errorf("no master key: set GATEHOUSE_MASTER_KEY, or keep %s from the first `serve --dev`", path)
	}
	s := Generate()
	if err := writeNew(path, s+"\n"); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use theirs.
			return Load("", dataDir, false)
		}
		return nil, "", fmt.Errorf("create master key: %w", err)
	}
	k, err := Parse(s)
	return k, SourceCreated, err
}

// writeNew creates path with mode 0600, failing if it exists. The content
// is written to a temporary file first and linked into place, so a reader
// never sees a half-written key.
func writeNew(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".master.key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// Derive returns n bytes derived from the master key for the purpose named
// by info (HKDF-SHA-256). Different infos give independent secrets.
func (k *Key) Derive(info string, n int) []byte {
	b, err := hkdf.Key(sha256.New, k.k[:], nil, info, n)
	if err != nil {
		panic("masterkey: derive: " + err.Error()) // only for n > 255*32, a programming error
	}
	return b
}

// Seal encrypts plaintext (AES-256-GCM under a derived key, random nonce),
// binding it to ad: Open with another ad fails.
func (k *Key) Seal(plaintext, ad []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, plaintext, ad)
}

// ErrOpen means sealed data could not be decrypted: it was sealed under
// another master key, with other associated data, or was altered.
var ErrOpen = errors.New("sealed data cannot be opened with this master key")

// Open decrypts what Seal produced with the same ad.
func (k *Key) Open(sealed, ad []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, ErrOpen
	}
	p, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}

// String hides the key.
func (k *Key) String() string { return "masterkey.Key(****)" }

// GoString hides the key from %#v.
func (k *Key) GoString() string { return k.String() }
