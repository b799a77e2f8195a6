package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// ErrBadPath is the error of a request path that is not canonical, or of a
// request that cannot be judged (an OData query naming objects that cannot
// be known). Enforcement points refuse such requests: 400 at the gateway,
// 403 at forward-auth.
var ErrBadPath = errors.New("the request cannot be judged")

// ErrUnclaimed is returned by Resolve for a canonical path no family claims.
var ErrUnclaimed = errors.New("no API family claims the path")

// BadRequestError says why a request cannot be judged. It wraps ErrBadPath.
type BadRequestError struct {
	// Reason is a sentence fragment naming what is wrong ("the path has a
	// dot segment").
	Reason string
}

func (e *BadRequestError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrBadPath) hold.
func (e *BadRequestError) Unwrap() error { return ErrBadPath }

func badPath(format string, args ...any) error {
	return &BadRequestError{Reason: "the path " + fmt.Sprintf(format, args...)}
}

// MaxPathLen bounds the request paths judged (and forwarded).
const MaxPathLen = 8 << 10

// Canonical checks that an escaped request path (as sent on the request
// line, or as a proxy reports it) is canonical, and returns it
// percent-decoded. A canonical path is one that every server decodes and
// resolves to the same segments, so that what gatehouse judges is what
// any upstream serves:
//
//   - it is absolute and holds only characters RFC 3986 allows in a path
//     (everything else percent-encoded), with valid percent-escapes;
//   - no segment is empty ("//"), "." or ".." (in any encoding), or ends in
//     a dot or a space, or starts with a space (Windows servers drop
//     those);
//   - it has no ";" (servlet containers strip path parameters, and resolve
//     "..;"), raw or encoded;
//   - it has no encoded "/" or "\" (%2F, %5C), no raw "\", no encoded "%"
//     (%25: a second decoding would give another path), no NUL or other
//     control character, and no Unicode character that some servers fold
//     into a dot, slash or backslash (fullwidth forms and the like);
//   - it decodes to valid UTF-8.
//
// The decoded path keeps the case and a trailing slash as sent; family and
// object matching ignore both.
func Canonical(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", badPath("is not absolute (it must start with /)")
	}
	if len(escaped) > MaxPathLen {
		return "", badPath("is longer than %d bytes", MaxPathLen)
	}
	var b strings.Builder
	decode := strings.IndexByte(escaped, '%') >= 0
	if decode {
		b.Grow(len(escaped))
	}
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", badPath("has an invalid percent-escape")
			}
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			switch {
			case d == '%':
				return "", badPath("has an encoded percent sign (%%25), which a second decoding would change")
			case d == '/' || d == '\\':
				return "", badPath("has an encoded slash or backslash (%%2F, %%5C)")
			case d == ';':
				return "", badPath("has an encoded semicolon (%%3B)")
			case d < 0x20 || d == 0x7f:
				return "", badPath("has an encoded NUL or control character")
			}
			b.WriteByte(d)
			i += 2
		case c == ';':
			return "", badPath("has a path parameter (;), which servlet containers strip")
		case c == '/' || pathChar(c):
			if decode {
				b.WriteByte(c)
			}
		case c < 0x20 || c == 0x7f:
			return "", badPath("has a control character")
		case c == '\\':
			return "", badPath("has a backslash")
		default:
			return "", badPath("has a character that must be percent-encoded (%q)", rune(c))
		}
	}
	p := escaped
	if decode {
		p = b.String()
		if !utf8.ValidString(p) {
			return "", badPath("does not decode to UTF-8")
		}
	}
	for rest := p[1:]; ; {
		s, after, more := strings.Cut(rest, "/")
		rest = after
		switch {
		case s == "" && more:
			return "", badPath("has an empty segment (//)")
		case s == "." || s == "..":
			return "", badPath("has a dot segment (. or ..)")
		case strings.HasSuffix(s, ".") || strings.HasSuffix(s, " ") || strings.HasPrefix(s, " "):
			return "", badPath("has a segment that ends in a dot or a space, or starts with a space (%q)", gatehouse.Clip(s, 80))
		}
		if decode {
			for _, r := range s {
				if confusable(r) {
					return "", badPath("has a character that some servers read as a dot, slash or backslash (%q)", r)
				}
			}
		}
		if !more {
			break
		}
	}
	return p, nil
}

// pathChar reports whether c may appear unencoded in a path segment (RFC
// 3986 pchar: unreserved, sub-delims, ":" and "@"), ";" excepted.
func pathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,=:@", c) >= 0
}

// confusable reports characters that Unicode normalisation (NFKC) or
// Windows "best fit" mapping turns into ".", "/" or "\".
func confusable(r rune) bool {
	switch r {
	case '\uFF0E', '\u2024', '\uFE52', '\u3002', '\uFF61', // dots
		'\uFF0F', '\u2215', '\u2044', '\u29F8', '\uFE68', // slashes
		'\uFF3C', '\u2216', '\u29F9', '\uFE69', // backslashes
		'\uFF05', '\uFE6A', // percent signs
		'\uFF1B', '\uFE54', '\u037E': // semicolons
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
