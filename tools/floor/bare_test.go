package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Every acknowledged record is in the file, whole and once, however the
// appends of many goroutines were grouped.
func TestGroupLogKeepsEveryAcknowledgedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openGroupLog(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(fmt.Appendf(nil, "record %d/%d", w, i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var want []string
	for w := range writers {
		for i := range each {
			want = append(want, fmt.Sprintf("record %d/%d", w, i))
		}
	}
	slices.Sort(lines)
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Fatalf("the log holds %d lines, want the %d records appended, each once", len(lines), len(want))
	}
}

func TestGroupLogRefusesAfterClose(t *testing.T) {
	l, err := openGroupLog(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]byte("after")); !errors.Is(err, errLogClosed) {
		t.Fatalf("append after close: %v, want %v", err, errLogClosed)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestBareHandler(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openGroupLog(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bareHandler(l))
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/append", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := post(bareRecord); code != 200 || body != `{"ok":true}` {
		t.Fatalf("append: %d %q", code, body)
	}
	if code, body := post(""); code != 400 || !strings.Contains(body, "empty record") {
		t.Fatalf("empty append: %d %q", code, body)
	}
	if code, body := post(strings.Repeat("x", maxBareRecord+1)); code != 413 || !strings.Contains(body, "record over") {
		t.Fatalf("oversized append: %d %q", code, body)
	}
	resp, err := http.Get(srv.URL + "/append")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /append: %d", resp.StatusCode)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	// Closed: the appends still arriving are refused, not lost silently.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := post(bareRecord); code != 503 || !strings.Contains(body, errLogClosed.Error()) {
		t.Fatalf("append to a closed log: %d %q", code, body)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != bareRecord+"\n" {
		t.Fatalf("the log holds %q, want the one record accepted", b)
	}
}
