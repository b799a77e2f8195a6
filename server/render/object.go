package render

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/gatehouse/gatehouse/wire"
)

// Object writes a JSON object field by field, byte for byte as
// encoding/json writes a struct with the same fields in the same order,
// without reflection: the bodies of the token endpoints, written on every
// token issued. Field names are the caller's constants and are written as
// given.
type Object struct{ b []byte }

var objects = sync.Pool{New: func() any { return &Object{b: make([]byte, 0, 1024)} }}

// NewObject starts an object; Write (or Free) hands it back.
func NewObject() *Object {
	o := objects.Get().(*Object)
	o.b = append(o.b[:0], '{')
	return o
}

func (o *Object) name(n string) {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = append(o.b, '"')
	o.b = append(o.b, n...)
	o.b = append(o.b, '"', ':')
}

// String adds a string field.
func (o *Object) String(name, v string) {
	o.name(name)
	o.b = AppendString(o.b, v)
}

// StringOmitEmpty adds a string field unless v is "" (`json:",omitempty"`).
func (o *Object) StringOmitEmpty(name, v string) {
	if v != "" {
		o.String(name, v)
	}
}

// Int adds an integer field.
func (o *Object) Int(name string, v int64) {
	o.name(name)
	o.b = strconv.AppendInt(o.b, v, 10)
}

// IntOmitEmpty adds an integer field unless v is 0.
func (o *Object) IntOmitEmpty(name string, v int64) {
	if v != 0 {
		o.Int(name, v)
	}
}

// Bool adds a boolean field.
func (o *Object) Bool(name string, v bool) {
	o.name(name)
	o.b = strconv.AppendBool(o.b, v)
}

// Null adds a field whose value is null.
func (o *Object) Null(name string) {
	o.name(name)
	o.b = append(o.b, "null"...)
}

// Bytes closes the object and returns it; valid until Free.
func (o *Object) Bytes() []byte {
	o.b = append(o.b, '}')
	return o.b
}

// Free hands the object back for reuse.
func (o *Object) Free() {
	if cap(o.b) <= 16<<10 {
		objects.Put(o)
	}
}

// AppendString appends s as a JSON string, as encoding/json writes it.
func AppendString(b []byte, s string) []byte { return wire.AppendJSONString(b, s) }

// WriteObject writes o as a token endpoint's JSON body (the headers of
// Write) and frees it.
func WriteObject(w http.ResponseWriter, status int, o *Object) {
	b := append(o.Bytes(), '\n')
	h := w.Header()
	// Canonical names, set directly: Set would canonicalise them again.
	h["Cache-Control"] = []string{"no-store"}
	h["Pragma"] = []string{"no-cache"}
	h["Content-Type"] = []string{contentJSON}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
	o.Free()
}
