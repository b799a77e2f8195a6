package issue

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/masterkey"
)

// NameTags stands in for user names that must not be stored: a sign-in
// with a name no user has may carry a password typed into the username
// field. Such a name is recorded (in the audit trail and the lockout
// counts) only as its tag, an HMAC-SHA-256 of the lower-cased name under a
// secret derived from the master key, plus its length. Attempts with one
// name share a tag, in every process with the same master key; a copy of
// the store without the master key does not let anyone test guesses.
type NameTags struct {
	secret []byte
}

// NewNameTags derives the tag secret from the master key.
func NewNameTags(mk *masterkey.Key) *NameTags {
	return &NameTags{secret: mk.Derive("gatehouse unknown-username tag v1", 32)}
}

// newProcessNameTags keys tags with a random secret, for a Service built
// without a master key (tests): tags then correlate within the process only.
func newProcessNameTags() *NameTags {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return &NameTags{secret: b}
}

// tagHexLen is the number of hex digits of the HMAC a tag keeps: 64 bits,
// plenty to tell apart the names one deployment sees.
const tagHexLen = 16

// Tag returns the tag of name: "unknown:h=<16 hex digits>:len=<characters>".
func (n *NameTags) Tag(name string) string {
	m := hmac.New(sha256.New, n.secret)
	m.Write([]byte(strings.ToLower(name)))
	sum := hex.EncodeToString(m.Sum(nil))
	return "unknown:h=" + sum[:tagHexLen] + ":len=" + strconv.Itoa(utf8.RuneCountInString(name))
}
