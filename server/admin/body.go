package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server/render"
)

// maxBody caps admin request bodies; a catalog import may be large.
const (
	maxBody        = 64 << 10
	maxCatalogBody = 8 << 20
)

// decodeJSON reads a JSON object body into v: the content type must be
// JSON, unknown fields, duplicate keys and anything after the object are
// refused, each with a message naming what is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) *gatehouse.Error {
	if e := needJSON(r); e != nil {
		return e
	}
	b, e := render.ReadBody(w, r, maxBody)
	if e != nil {
		return e
	}
	return parseJSON(b, v)
}

// needJSON refuses a body that is not declared as JSON.
func needJSON(r *http.Request) *gatehouse.Error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return gatehouse.ErrInvalidRequest("the request body must be JSON: set Content-Type: application/json (got %q)", gatehouse.Clip(ct, 100))
	}
	return nil
}

// parseJSON is decodeJSON's parser, for a body already read.
func parseJSON(b []byte, v any) *gatehouse.Error {
	if err := checkDuplicateKeys(b); err != nil {
		return gatehouse.ErrInvalidRequest("the request body is not valid: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return gatehouse.ErrInvalidRequest("the request body is not valid: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return gatehouse.ErrInvalidRequest("the request body holds something after its JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return "the body must be a JSON object"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF):
		return "the body is empty; send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "malformed JSON"
}

func jsonKind(k string) string {
	switch k {
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "ptr":
		return "a value of another type"
	}
	if strings.HasPrefix(k, "int") || strings.HasPrefix(k, "float") {
		return "a number"
	}
	return "a " + k
}

// checkDuplicateKeys refuses a JSON document in which an object names a
// key twice (compared case-insensitively, as encoding/json matches fields):
// which of the two counts would be up to the parser.
func checkDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]bool
		expKey bool
	}
	var stack []*frame
	for depth := 0; ; {
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // syntax errors are reported by the decoder proper
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expKey {
			if s, ok := t.(string); ok {
				k := strings.ToLower(s)
				if top.keys[k] {
					return fmt.Errorf("key %q appears twice", gatehouse.Clip(s, 100))
				}
				top.keys[k] = true
				top.expKey = false
				continue
			}
		}
		switch t {
		case json.Delim('{'):
			depth++
			if depth > 32 {
				return errors.New("nested too deeply")
			}
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, expKey: true})
			continue
		case json.Delim('['):
			depth++
			if depth > 32 {
				return errors.New("nested too deeply")
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			stack = stack[:len(stack)-1]
		}
		// A value ends: the enclosing object expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].expKey = true
		}
	}
}

// etag is the entity tag of a resource's representation.
func etag(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return `"` + hex.EncodeToString(h[:12]) + `"`
}

// ifMatch returns the If-Match header's tags; nil when absent.
func ifMatch(r *http.Request) []string {
	h := r.Header.Values("If-Match")
	if len(h) == 0 {
		return nil
	}
	var tags []string
	for _, v := range h {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, strings.TrimPrefix(t, "W/"))
			}
		}
	}
	return tags
}

// matches reports whether tag is among the If-Match tags (or they hold *).
func matches(tags []string, tag string) bool {
	for _, t := range tags {
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// page is one page of a listing and the cursor of the next ("" at the end).
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// Paging bounds.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// pageParams reads ?limit and ?cursor. The cursor is opaque to clients: the
// sort key of the last item of the previous page.
func pageParams(r *http.Request) (limit int, after string, e *gatehouse.Error) {
	q := r.URL.Query()
	limit = defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return 0, "", gatehouse.ErrInvalidRequest("limit %q is not a whole number from 1 to %d", gatehouse.Clip(s, 40), maxLimit)
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			return 0, "", gatehouse.ErrInvalidRequest("cursor is not one this server gave out; start again without it")
		}
		after = string(b)
	}
	return limit, after, nil
}

// paginate returns the items whose key sorts after `after`, at most limit,
// and the cursor of the next page. items must be sorted by key.
func paginate[T any](items []T, key func(T) string, limit int, after string) page[T] {
	start := 0
	if after != "" {
		for start < len(items) && key(items[start]) <= after {
			start++
		}
	}
	end := min(start+limit, len(items))
	p := page[T]{Items: items[start:end]}
	if p.Items == nil {
		p.Items = []T{}
	}
	if end < len(items) && end > start {
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1])))
	}
	return p
}
