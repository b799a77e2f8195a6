// Package data is the sandbox's shared data layer: a SQLite database of
// plausible P21 sample data (suppliers, customers, contacts, addresses,
// items and stock, orders, invoices, purchase orders, price pages), kept
// in its own file and restored from the sample shipped in the binary.
//
// Every simulated API reads and writes through it, so that a change made
// through one is seen through the others. The writes (SaveCustomer,
// SaveOrder, …) hold the business rules: required fields, references
// that must exist, defaults and derived values. Values come in as JSON or
// form values would give them and are checked against the schema.
package data

import (
	"context"
	"database/sql"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/gatehouse/gatehouse"
)

//go:generate go run gen_sample.go sample

//go:embed sample/*.csv
var sample embed.FS

// FileName is the sandbox database's file in the data directory.
const FileName = "sandbox.db"

// version is written in the database; a file of another version is
// replaced by the sample.
const version = 1

// DB is the sandbox database.
type DB struct {
	read  *sql.DB // a pool of read-only connections
	write *sql.DB // the one writing connection
	clock gatehouse.Clock

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// gen counts committed writes, so that readers can tell their
	// cached reads from current ones.
	gen atomic.Uint64
}

// Generation changes whenever a write commits.
func (db *DB) Generation() uint64 { return db.gen.Load() }

// Options tune Open.
type Options struct {
	// Reset replaces whatever the file holds by the sample data.
	Reset bool
	// Clock dates what is written; default the system clock.
	Clock gatehouse.Clock
	// Readers bounds the read connections (default 4).
	Readers int
}

// Open opens the sandbox database at path, loading the sample data into a
// new file (or, with Reset, over an existing one).
func Open(ctx context.Context, file string, o Options) (*DB, error) {
	if o.Clock == nil {
		o.Clock = gatehouse.SystemClock
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	fresh := o.Reset
	if !fresh {
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			fresh = true
		}
	}
	if fresh {
		for _, f := range []string{file, file + "-wal", file + "-shm", file + "-journal"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("sandbox: reset %s: %w", f, err)
			}
		}
	}
	u := (&url.URL{Scheme: "file", Path: file}).String()
	common := "_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)"
	w, err := sql.Open("sqlite", u+"?"+common)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open %s: %w", file, err)
	}
	w.SetMaxOpenConns(1)
	db := &DB{write: w, clock: o.Clock, stmts: map[string]*sql.Stmt{}}
	if err := db.prepare(ctx, fresh); err != nil {
		w.Close()
		return nil, err
	}
	if err := os.Chmod(file, 0o600); err != nil {
		w.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	r, err := sql.Open("sqlite", u+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sandbox: open %s: %w", file, err)
	}
	r.SetMaxOpenConns(o.Readers)
	r.SetMaxIdleConns(o.Readers)
	db.read = r
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = nil
	db.mu.Unlock()
	return errors.Join(db.read.Close(), db.write.Close())
}

func (db *DB) prepare(ctx context.Context, fresh bool) error {
	if !fresh {
		var v int
		err := db.write.QueryRowContext(ctx, `SELECT version FROM sandbox_meta`).Scan(&v)
		if err == nil && v == version {
			return nil
		}
		if err == nil {
			return fmt.Errorf("sandbox: the database holds version %d of the sample, this gatehouse writes %d: start with --sandbox-reset", v, version)
		}
		return fmt.Errorf("sandbox: the database cannot be read (%v): start with --sandbox-reset", err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer tx.Rollback()
	stmts := append(ddl(), `CREATE TABLE sandbox_meta (version INTEGER NOT NULL)`)
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("sandbox: schema: %w", err)
		}
	}
	if err := loadSample(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_meta (version) VALUES (?)`, version); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// nullField is how a sample CSV field says NULL.
const nullField = `\N`

func loadSample(ctx context.Context, tx *sql.Tx) error {
	files, err := sample.ReadDir("sample")
	if err != nil {
		return err
	}
	for _, f := range files {
		name := strings.TrimSuffix(f.Name(), ".csv")
		t := Lookup("table", name)
		if t == nil {
			return fmt.Errorf("sandbox: sample %s: no such table", f.Name())
		}
		rf, err := sample.Open(path.Join("sample", f.Name()))
		if err != nil {
			return err
		}
		rd := csv.NewReader(rf)
		header, err := rd.Read()
		if err != nil {
			rf.Close()
			return fmt.Errorf("sandbox: sample %s: %w", f.Name(), err)
		}
		cols := make([]*Column, len(header))
		names := make([]string, len(header))
		for i, h := range header {
			if cols[i] = t.Column(h); cols[i] == nil {
				rf.Close()
				return fmt.Errorf("sandbox: sample %s: no column %q", f.Name(), h)
			}
			names[i] = Ident(cols[i].Name)
		}
		st, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", Ident(t.Name),
			strings.Join(names, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")))
		if err != nil {
			rf.Close()
			return fmt.Errorf("sandbox: sample %s: %w", f.Name(), err)
		}
		for {
			row, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rf.Close()
				return fmt.Errorf("sandbox: sample %s: %w", f.Name(), err)
			}
			args := make([]any, len(row))
			for i, v := range row {
				if v == nullField {
					continue
				}
				if args[i], err = Coerce(cols[i], v); err != nil {
					rf.Close()
					return fmt.Errorf("sandbox: sample %s: %w", f.Name(), err)
				}
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				rf.Close()
				return fmt.Errorf("sandbox: sample %s: %w", f.Name(), err)
			}
		}
		st.Close()
		rf.Close()
	}
	return nil
}

// Query runs a read-only query with arguments, through statements
// prepared once per query text.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return db.read.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// maxStmts bounds the prepared statements kept: query texts depend on the
// shape of a request (never on its values), but requests can have many
// shapes. Past the bound, queries are prepared for each use; a kept
// statement is never closed while the database is open, so no request
// finds its statement closed under it.
const maxStmts = 512

// stmt finds or prepares the statement of a query; nil when the cache is
// full.
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.mu.Lock()
	st, full := db.stmts[query], len(db.stmts) >= maxStmts
	db.mu.Unlock()
	if st != nil || full {
		return st, nil
	}
	st, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if old := db.stmts[query]; old != nil {
		st.Close()
		return old, nil
	}
	if db.stmts == nil {
		// Closed meanwhile.
		st.Close()
		return nil, errors.New("sandbox: the database is closed")
	}
	db.stmts[query] = st
	return st, nil
}

// Record is a row: column names to values (string, int64, float64, bool
// or nil).
type Record map[string]any

// Coerce converts a value given for col (a string, a JSON number or
// boolean, an integer) to the column's type; nil stays nil.
func Coerce(col *Column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func() error {
		return &FieldError{Field: col.Name, Message: fmt.Sprintf("%s: %s is not a valid %s", col.Name, describe(v), col.Type)}
	}
	switch col.Type {
	case String:
		switch x := v.(type) {
		case string:
			return x, nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case int:
			return strconv.Itoa(x), nil
		}
	case Int:
		switch x := v.(type) {
		case string:
			s := strings.TrimSpace(x)
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
			// "10.0", as some clients send ids.
			if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
				return int64(f), nil
			}
		case float64:
			if x == float64(int64(x)) {
				return int64(x), nil
			}
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		}
	case Decimal:
		switch x := v.(type) {
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		}
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "1", "true", "y", "yes", "on":
				return true, nil
			case "0", "false", "n", "no", "off":
				return false, nil
			}
		case float64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		}
	case DateTime:
		if s, ok := v.(string); ok {
			if t, ok := ParseDateTime(s); ok {
				return t.Format(time.RFC3339), nil
			}
		}
	}
	return nil, bad()
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + gatehouse.Clip(x, 60) + "'"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// ParseDateTime reads a date (2025-01-31) or a date and time (RFC 3339,
// with or without fraction and offset; without an offset it is UTC), as
// OData literals and form values give them. Times are kept in UTC to the
// second.
func ParseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02", time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Second), true
		}
	}
	return time.Time{}, false
}

// Scan reads the current row of rows, whose columns are cols, as a Record.
func Scan(rows *sql.Rows, cols []*Column) (Record, error) {
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	rec := make(Record, len(cols))
	for i, col := range cols {
		rec[col.Name] = Normalize(col, vals[i])
	}
	return rec, nil
}

// Normalize converts a value read from SQLite to the column's Go type.
func Normalize(col *Column, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		switch col.Type {
		case Bool:
			return x != 0
		case Decimal:
			return float64(x)
		}
		return x
	case float64:
		if col.Type == Int {
			return int64(x)
		}
		return x
	case []byte:
		return string(x)
	}
	return v
}

// Get reads one row of a table by its key values (in Key order);
// ErrNotFound when there is none.
func (db *DB) Get(ctx context.Context, table string, key ...any) (Record, error) {
	t := Lookup("table", table)
	if t == nil {
		t = Lookup("view", table)
	}
	if t == nil || len(key) != len(t.Key) {
		return nil, fmt.Errorf("sandbox: Get %s: bad table or key", table)
	}
	return db.getIn(ctx, db.read, t, key...)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) getIn(ctx context.Context, q querier, t *Table, key ...any) (Record, error) {
	recs, err := db.selectIn(ctx, q, t, keyWhere(t), key, "")
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	return recs[0], nil
}

func keyWhere(t *Table) string {
	parts := make([]string, len(t.Key))
	for i, k := range t.Key {
		parts[i] = Ident(k) + " = ?"
	}
	return strings.Join(parts, " AND ")
}

// Select reads the rows of a table or view matching where (SQL over the
// schema's columns with ? parameters; "" for all), in order (SQL; ""
// for the key's order).
func (db *DB) Select(ctx context.Context, t *Table, where string, args []any, order string) ([]Record, error) {
	return db.selectIn(ctx, db.read, t, where, args, order)
}

func (db *DB) selectIn(ctx context.Context, q querier, t *Table, where string, args []any, order string) ([]Record, error) {
	cols := make([]*Column, len(t.Columns))
	names := make([]string, len(t.Columns))
	for i := range t.Columns {
		cols[i] = &t.Columns[i]
		names[i] = Ident(t.Columns[i].Name)
	}
	if order == "" {
		keys := make([]string, len(t.Key))
		for i, k := range t.Key {
			keys[i] = Ident(k)
		}
		order = strings.Join(keys, ", ")
	}
	query := "SELECT " + strings.Join(names, ", ") + " FROM " + Ident(t.Name)
	if where != "" {
		query += " WHERE " + where
	}
	query += " ORDER BY " + order
	var rows *sql.Rows
	var err error
	if q == db.read {
		rows, err = db.Query(ctx, query, args...)
	} else {
		rows, err = q.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		rec, err := Scan(rows, cols)
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// ErrNotFound says there is no such record.
var ErrNotFound = errors.New("not found")

// FieldError is a value refused for a field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Message }

// ValidationError lists the reasons a write was refused.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Message
	}
	return strings.Join(msgs, "; ")
}

// Messages lists the reasons.
func (e *ValidationError) Messages() []string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Message
	}
	return msgs
}

// sortedKeys lists a record's columns in the table's order.
func sortedKeys(t *Table, rec Record) []string {
	out := make([]string, 0, len(rec))
	for k := range rec {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return t.index[out[i]] < t.index[out[j]] })
	return out
}
