// Package odata simulates P21's read-only OData v4 service over the
// sandbox's data: GET /odataservice/odata/table/{table} and
// /odataservice/odata/view/{view} with $filter, $select, $orderby, $top,
// $skip and $count, and $metadata in CSDL.
//
// A $filter is parsed into a syntax tree (ParseFilter) and compiled into
// SQL whose values are all parameters and whose names all come from the
// table's columns (SQL): no part of a request is ever pasted into SQL.
// A query that cannot be read, or that names what does not exist, is a
// 400 with a message; an unknown table or view is a 404.
package odata

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
)

// Prefix is where the service lives.
const Prefix = "/odataservice/odata"

// Page sizes: a response holds at most MaxPageSize rows unless the
// client's Prefer: odata.maxpagesize asks for fewer; more rows are behind
// @odata.nextLink.
const (
	MaxPageSize = 1000
)

// Handler serves the OData API.
type Handler struct {
	DB *data.DB

	rows rowCache
	// BaseURL is the URL clients reach the server at (for @odata.context
	// and @odata.nextLink).
	BaseURL string
}

// Error writes an OData error: {"error":{"code":"400","message":"…"}}.
func Error(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": strconv.Itoa(status), "message": message}})
	w.Write(append(b, '\n'))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		Error(w, http.StatusMethodNotAllowed, "The OData service is read-only: use GET.")
		return
	}
	rest, ok := cutPrefixFold(r.URL.Path, Prefix+"/")
	if !ok {
		Error(w, http.StatusNotFound, "Resource not found: "+gatehouse.Clip(r.URL.Path, 200))
		return
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if len(segs) == 1 && segs[0] == "$metadata" {
		h.metadata(w, "")
		return
	}
	if len(segs) < 2 || len(segs) > 3 {
		Error(w, http.StatusNotFound, "Resource not found: "+gatehouse.Clip(rest, 200))
		return
	}
	kind := strings.ToLower(segs[0])
	if kind != "table" && kind != "view" {
		Error(w, http.StatusNotFound, "Resource not found: "+gatehouse.Clip(rest, 200))
		return
	}
	if segs[1] == "$metadata" && len(segs) == 2 {
		h.metadata(w, kind)
		return
	}
	name, key, hasKey := strings.Cut(segs[1], "(")
	t := data.Lookup(kind, name)
	if t == nil {
		Error(w, http.StatusNotFound, "Resource not found: "+kind+"/"+gatehouse.Clip(segs[1], 100))
		return
	}
	countOnly := false
	if len(segs) == 3 {
		if segs[2] != "$count" || hasKey {
			Error(w, http.StatusNotFound, "Resource not found: "+gatehouse.Clip(rest, 200)+" (the sandbox has no navigation properties)")
			return
		}
		countOnly = true
	}
	q, err := ParseQuery(t, r.URL.RawQuery)
	if err != nil {
		h.queryError(w, err)
		return
	}
	if hasKey {
		h.single(w, r, q, key)
		return
	}
	if countOnly {
		h.count(w, r, q)
		return
	}
	h.collection(w, r, q)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func (h *Handler) queryError(w http.ResponseWriter, err error) {
	var qe *QueryError
	if errors.As(err, &qe) {
		Error(w, qe.Status, qe.Message)
		return
	}
	h.internal(w, err)
}

func (h *Handler) internal(w http.ResponseWriter, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		Error(w, http.StatusServiceUnavailable, "The request was cancelled.")
		return
	}
	Error(w, http.StatusInternalServerError, "The sandbox could not read its data: "+gatehouse.Clip(err.Error(), 200))
}

func (h *Handler) contextURL(q *Query, entity bool) string {
	s := h.BaseURL + Prefix + "/$metadata#" + q.Table.Name
	if q.Select != nil {
		names := make([]string, len(q.Select))
		for i, c := range q.Select {
			names[i] = c.Name
		}
		s += "(" + strings.Join(names, ",") + ")"
	}
	if entity {
		s += "/$entity"
	}
	return s
}

// pageSize reads Prefer: odata.maxpagesize=N.
func pageSize(r *http.Request) (int, bool) {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "odata.maxpagesize") {
				if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
					return min(n, MaxPageSize), true
				}
			}
		}
	}
	return MaxPageSize, false
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

func (h *Handler) collection(w http.ResponseWriter, r *http.Request, q *Query) {
	ctx := r.Context()
	page, preferred := pageSize(r)
	want := page
	if q.Top >= 0 && q.Top < want {
		want = q.Top
	}
	total := -1
	if q.Count {
		s, args := q.CountSQL()
		if err := h.scalar(ctx, s, args, &total); err != nil {
			h.internal(w, err)
			return
		}
	}
	bp := bufs.Get().(*[]byte)
	defer func() { *bp = (*bp)[:0]; bufs.Put(bp) }()
	b := append((*bp)[:0], `{"@odata.context":`...)
	b = appendString(b, h.contextURL(q, false))
	if total >= 0 {
		b = append(b, `,"@odata.count":`...)
		b = strconv.AppendInt(b, int64(total), 10)
	}
	b = append(b, `,"value":[`...)
	// One row more than the page tells whether there is a next one.
	var n int
	var more bool
	if q.Table.Kind == "table" {
		objs, m, err := h.tableRows(ctx, q, want)
		more = m
		if err != nil {
			h.internal(w, err)
			return
		}
		for i, o := range objs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, o...)
		}
		n = len(objs)
	} else {
		s, args := q.SelectSQL(want+1, q.Skip)
		rows, err := h.DB.Query(ctx, s, args...)
		if err != nil {
			h.internal(w, err)
			return
		}
		b, n, more, err = appendRows(b, rows, want)
		rows.Close()
		if err != nil {
			h.internal(w, err)
			return
		}
	}
	b = append(b, ']')
	if more && n == page && (q.Top < 0 || q.Top > n) {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, h.nextLink(r, q, n))
	}
	b = append(b, "}\n"...)
	*bp = b
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	if preferred {
		w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(page))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

// nextLink is the request's URL with $skip moved past this page and $top
// lowered by it.
func (h *Handler) nextLink(r *http.Request, q *Query, n int) string {
	var parts []string
	for _, o := range q.Raw {
		switch strings.ToLower(o.Name) {
		case "$skip":
			continue
		case "$top":
			parts = append(parts, "$top="+strconv.Itoa(q.Top-n))
			continue
		}
		parts = append(parts, o.Raw)
	}
	parts = append(parts, "$skip="+strconv.Itoa(q.Skip+n))
	return h.BaseURL + r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
}

func (h *Handler) scalar(ctx context.Context, s string, args []any, out *int) error {
	rows, err := h.DB.Query(ctx, s, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no count")
	}
	return rows.Scan(out)
}

func (h *Handler) count(w http.ResponseWriter, r *http.Request, q *Query) {
	s, args := q.CountSQL()
	var n int
	if err := h.scalar(r.Context(), s, args, &n); err != nil {
		h.internal(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	fmt.Fprint(w, n)
}

// single answers table(key) and table(k1=v1,k2=v2).
func (h *Handler) single(w http.ResponseWriter, r *http.Request, q *Query, key string) {
	key, ok := strings.CutSuffix(key, ")")
	if !ok {
		Error(w, http.StatusBadRequest, "The key segment is not closed with ')'")
		return
	}
	t := q.Table
	vals := map[string]string{}
	for _, part := range strings.Split(key, ",") {
		k, v, named := strings.Cut(part, "=")
		if !named {
			if len(t.Key) != 1 || len(vals) > 0 {
				Error(w, http.StatusBadRequest, fmt.Sprintf("The key of %s is %s: name each part (k=v)", t.Name, strings.Join(t.Key, ", ")))
				return
			}
			k, v = t.Key[0], part
		}
		col := t.Column(strings.TrimSpace(k))
		if col == nil {
			Error(w, http.StatusBadRequest, fmt.Sprintf("'%s' is not a key property of %s", gatehouse.Clip(k, 60), t.Name))
			return
		}
		vals[col.Name] = strings.TrimSpace(v)
	}
	var where []string
	var args []any
	for _, k := range t.Key {
		raw, ok := vals[k]
		if !ok || len(vals) != len(t.Key) {
			Error(w, http.StatusBadRequest, fmt.Sprintf("The key of %s is %s", t.Name, strings.Join(t.Key, ", ")))
			return
		}
		col := t.Column(k)
		var v any = raw
		if strings.HasPrefix(raw, "'") && strings.HasSuffix(raw, "'") && len(raw) >= 2 {
			v = strings.ReplaceAll(raw[1:len(raw)-1], "''", "'")
		} else if col.Type == data.String {
			Error(w, http.StatusBadRequest, fmt.Sprintf("The key %s is a string: quote it ('%s')", k, gatehouse.Clip(raw, 40)))
			return
		}
		cv, err := data.Coerce(col, v)
		if err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		where = append(where, data.Ident(k)+" = ?")
		args = append(args, cv)
	}
	if q.Where != "" {
		Error(w, http.StatusBadRequest, "$filter does not apply to a single entity")
		return
	}
	q.Where, q.Args = strings.Join(where, " AND "), args
	s, qargs := q.SelectSQL(1, 0)
	rows, err := h.DB.Query(r.Context(), s, qargs...)
	if err != nil {
		h.internal(w, err)
		return
	}
	b := []byte(`{"@odata.context":`)
	b = appendString(b, h.contextURL(q, true))
	b = append(b, ',')
	mark := len(b)
	b, n, _, err := appendRows(b, rows, 1)
	rows.Close()
	if err != nil {
		h.internal(w, err)
		return
	}
	if n == 0 {
		Error(w, http.StatusNotFound, fmt.Sprintf("Resource not found: %s(%s)", t.Name, gatehouse.Clip(key, 100)))
		return
	}
	// The row's object, merged into the one that has the context.
	b = append(b[:mark], b[mark+1:]...)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.Write(b)
}

// appendRows writes up to limit rows (each a JSON object in one column)
// separated by commas; more reports that another row followed.
func appendRows(b []byte, rows *sql.Rows, limit int) ([]byte, int, bool, error) {
	var obj sql.RawBytes
	n := 0
	for rows.Next() {
		if n == limit {
			return b, n, true, rows.Err()
		}
		if err := rows.Scan(&obj); err != nil {
			return b, n, false, err
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, obj...)
		n++
	}
	return b, n, false, rows.Err()
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string, escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
