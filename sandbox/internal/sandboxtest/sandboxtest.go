// Package sandboxtest helps the sandbox's tests: a database with the
// sample data and a fixed clock, requests with the identity headers the
// gateway sets, and golden files of responses.
package sandboxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// Now is the tests' fixed time.
var Now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Clock always tells Now.
var Clock = gatehouse.ClockFunc(func() time.Time { return Now })

// BaseURL is the public URL the tests' handlers are given.
const BaseURL = "https://play.p21server.com"

// DB opens a fresh sandbox database with the sample data.
func DB(t testing.TB) *data.DB {
	t.Helper()
	db, err := data.Open(context.Background(), filepath.Join(t.TempDir(), data.FileName), data.Options{Clock: Clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Request is a request to a sandbox handler.
type Request struct {
	Method, Path string
	Body         string
	// User is the acting user (X-Gatehouse-User); Session the middleware
	// session (X-Gatehouse-Session-Id, default "session-1").
	User, Session string
	Header        map[string]string
}

// Response is what a handler answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r to h.
func Do(h http.Handler, r Request) Response {
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	// Spaces are sent encoded, as clients do.
	req := httptest.NewRequest(r.Method, "http://in-process.invalid"+strings.ReplaceAll(r.Path, " ", "%20"), strings.NewReader(r.Body))
	if r.Session == "" {
		r.Session = "session-1"
	}
	req.Header.Set(wire.HeaderUser, r.User)
	req.Header.Set(wire.HeaderSessionID, r.Session)
	req.Header.Set(wire.HeaderConsumerUID, "")
	req.Header.Set(wire.HeaderScope, "/api")
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return Response{Status: rec.Code, Header: rec.Header(), Body: b}
}

// JSON decodes the body into a generic value; the test fails if it is not JSON.
func (r Response) JSON(t testing.TB) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, r.Body)
	}
	return v
}

// Golden compares a response (status and body, JSON indented) with
// testdata/NAME.golden, or writes it with -update.
func Golden(t testing.TB, name string, r Response) {
	t.Helper()
	body := r.Body
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "json") {
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(r.Body), "", "  "); err == nil {
			body = buf.Bytes()
		}
	}
	got := []byte(fmt.Sprintf("%d %s\n%s\n", r.Status, r.Header.Get("Content-Type"), bytes.TrimRight(body, "\n")))
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", file, clip(got), clip(want))
	}
}

func clip(b []byte) string {
	if len(b) > 3000 {
		return string(b[:3000]) + "…"
	}
	return string(b)
}
