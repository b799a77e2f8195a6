package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

// TestWarnFileModes: serve warns when the data dir or a store file is
// open to group or others, naming each, and is quiet when all are private.
func TestWarnFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{app.StoreFile, app.StoreFile + "-wal", app.StoreFile + "-shm", "master.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	warned := func() string {
		var b strings.Builder
		warnFileModes(slog.New(slog.NewTextHandler(&b, nil)), dir)
		return b.String()
	}
	if got := warned(); got != "" {
		t.Fatalf("private files warned: %s", got)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, app.StoreFile+"-wal"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := warned()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, dir+" (0755)") ||
		!strings.Contains(got, app.StoreFile+"-wal (0644)") || strings.Contains(got, app.StoreFile+" (") {
		t.Fatalf("warning: %s", got)
	}
}
