package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/tools/walpages/wal"
)

// A log SQLite wrote itself: a database in WAL mode with checkpoints off,
// six transactions, the log copied while the writer is still open.
func TestRealLogByBTree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := db.ExecContext(ctx, "INSERT INTO t (v) VALUES (?)", strings.Repeat("x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	l, err := wal.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.Commits != 6 || l.PageSize != 4096 {
		t.Fatalf("commits %d, page size %d; want 6 and 4096", l.Commits, l.PageSize)
	}
	owners, err := pageOwners(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range l.Frames {
		seen[owners[f.Page]] = true
	}
	for _, want := range []string{"t", "sqlite_autoindex_t_1", "sqlite_schema"} {
		if !seen[want] {
			t.Errorf("no frame of %s among %v", want, seen)
		}
	}
	// A changed byte in the third frame fails its checksum: the log ends
	// before it, with the transactions committed until then.
	frameSize := wal.FrameHeaderSize + l.PageSize
	b[wal.HeaderSize+2*frameSize+wal.FrameHeaderSize+100] ^= 1
	if cut, err := wal.Parse(b); err != nil || len(cut.Frames) > 2 || cut.Commits >= l.Commits {
		t.Fatalf("with a bad third frame: %+v, %v", cut, err)
	}
}
