// Command walpages tells which tables and indexes the transactions in a
// SQLite write-ahead log wrote: it reads the committed frames of the log
// (as SQLite recovers them) and names each frame's page by its b-tree,
// from SQLite's dbstat table of the database. Every page a transaction
// changes is one frame, written to the log (two write calls) and later
// copied to the database by a checkpoint, so frames per commit are the
// store's cost per transaction.
//
//	go run ./tools/walpages -db DATA/gatehouse.db
//
// Run it while or right after the server writes: a checkpoint starts the
// log over. It opens the database read-only and does not checkpoint.
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/gatehouse/gatehouse/tools/walpages/wal"
	_ "modernc.org/sqlite"
)

func main() {
	db := flag.String("db", "gatehouse.db", "the SQLite database")
	walPath := flag.String("wal", "", "its write-ahead log (default: the database's name with -wal)")
	flag.Parse()
	if *walPath == "" {
		*walPath = *db + "-wal"
	}
	if err := run(*db, *walPath); err != nil {
		fmt.Fprintln(os.Stderr, "walpages:", err)
		os.Exit(1)
	}
}

func run(dbPath, walPath string) error {
	// The log first: the database, opened after, sees at least these pages.
	b, err := os.ReadFile(walPath)
	if err != nil {
		return err
	}
	l, err := wal.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", walPath, err)
	}
	if _, err := os.Stat(dbPath); err != nil {
		return err
	}
	owners, err := pageOwners(dbPath)
	if err != nil {
		return err
	}
	fmt.Printf("%s: page size %d, %d committed transactions, %d frames", walPath, l.PageSize, l.Commits, len(l.Frames))
	if l.Commits == 0 {
		fmt.Println()
		return nil
	}
	fmt.Printf(", %.1f per transaction\n\n", float64(len(l.Frames))/float64(l.Commits))
	count := map[string]int{}
	for _, f := range l.Frames {
		name, ok := owners[f.Page]
		if !ok {
			name = "(page not in use now)"
		}
		count[name]++
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if count[names[i]] != count[names[j]] {
			return count[names[i]] > count[names[j]]
		}
		return names[i] < names[j]
	})
	fmt.Printf("%-36s %8s %16s\n", "b-tree", "frames", "per transaction")
	for _, n := range names {
		fmt.Printf("%-36s %8d %16.2f\n", n, count[n], float64(count[n])/float64(l.Commits))
	}
	return nil
}

// pageOwners maps each page of the database in use to the table or index
// whose b-tree holds it (page 1, the file's header, is sqlite_schema's).
func pageOwners(path string) (map[uint32]string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT name, pageno FROM dbstat")
	if err != nil {
		return nil, fmt.Errorf("%s: reading dbstat: %w", path, err)
	}
	defer rows.Close()
	owners := map[uint32]string{}
	for rows.Next() {
		var name string
		var page uint32
		if err := rows.Scan(&name, &page); err != nil {
			return nil, err
		}
		owners[page] = name
	}
	return owners, rows.Err()
}
