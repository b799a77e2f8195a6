package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The writer talks to its connection through the driver interfaces
// directly: it alone uses the connection, so database/sql's pooling,
// locking and argument conversion are pure cost on the hottest path.

// dconn is the writer's connection with its prepared statements.
type dconn struct {
	c     driver.Conn
	stmts map[string]*dstmt
}

type dstmt struct {
	st driver.Stmt
}

func (d *dconn) prepare(q string) (*dstmt, error) {
	if st, ok := d.stmts[q]; ok {
		return st, nil
	}
	var st driver.Stmt
	var err error
	if p, ok := d.c.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(context.Background(), q)
	} else {
		st, err = d.c.Prepare(q)
	}
	if err != nil {
		return nil, err
	}
	ds := &dstmt{st: st}
	d.stmts[q] = ds
	return ds, nil
}

func (d *dconn) close() {
	for _, st := range d.stmts {
		st.st.Close()
	}
	d.stmts = nil
}

// namedValues converts the argument types this package uses.
func namedValues(args []any) ([]driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		var v driver.Value
		switch x := a.(type) {
		case nil, int64, string, bool:
			v = x
		case []byte:
			if x != nil {
				v = x
			}
		case int:
			v = int64(x)
		default:
			return nil, fmt.Errorf("sqlite: argument %d: unsupported type %T", i+1, a)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv, nil
}

func (s *dstmt) exec(args []any) (driver.Result, error) {
	nv, err := namedValues(args)
	if err != nil {
		return nil, err
	}
	if e, ok := s.st.(driver.StmtExecContext); ok {
		return e.ExecContext(context.Background(), nv)
	}
	return nil, errors.New("sqlite: driver statement without ExecContext")
}

func (s *dstmt) query(args []any) (*drows, error) {
	nv, err := namedValues(args)
	if err != nil {
		return nil, err
	}
	q, ok := s.st.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("sqlite: driver statement without QueryContext")
	}
	r, err := q.QueryContext(context.Background(), nv)
	if err != nil {
		return nil, err
	}
	return &drows{r: r, vals: make([]driver.Value, len(r.Columns()))}, nil
}

// drows is driver.Rows with the Next/Scan/Err/Close of *sql.Rows.
type drows struct {
	r      driver.Rows
	vals   []driver.Value
	err    error
	closed bool
}

func (r *drows) Next() bool {
	if r.closed {
		return false
	}
	if err := r.r.Next(r.vals); err != nil {
		if err != io.EOF {
			r.err = err
		}
		r.Close()
		return false
	}
	return true
}

func (r *drows) Scan(dest ...any) error {
	if r.closed {
		return errors.New("sqlite: Scan on closed rows")
	}
	if len(dest) != len(r.vals) {
		return fmt.Errorf("sqlite: Scan of %d columns into %d values", len(r.vals), len(dest))
	}
	for i, d := range dest {
		if err := assign(d, r.vals[i]); err != nil {
			return fmt.Errorf("sqlite: column %d: %w", i, err)
		}
	}
	return nil
}

func (r *drows) Err() error { return r.err }

func (r *drows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.r.Close()
}

// assign stores a column value into dest, for the destination types this
// package scans into.
func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
			return nil
		case []byte:
			*d = string(x)
			return nil
		}
	case *int64:
		if x, ok := v.(int64); ok {
			*d = x
			return nil
		}
	case *int:
		if x, ok := v.(int64); ok {
			*d = int(x)
			return nil
		}
	case *bool:
		switch x := v.(type) {
		case int64:
			*d = x != 0
			return nil
		case bool:
			*d = x
			return nil
		}
	case *[]byte:
		switch x := v.(type) {
		case nil:
			*d = nil
			return nil
		case []byte:
			*d = slices.Clone(x)
			return nil
		case string:
			*d = []byte(x)
			return nil
		}
	case **string:
		return assignNullable(d, v)
	case **bool:
		return assignNullable(d, v)
	case sql.Scanner:
		return d.Scan(v)
	}
	return fmt.Errorf("cannot store %T in %T", v, dest)
}

// assignNullable stores NULL as a nil pointer, anything else as a pointer
// to the value.
func assignNullable[T any](d **T, v driver.Value) error {
	if v == nil {
		*d = nil
		return nil
	}
	x := new(T)
	if err := assign(x, v); err != nil {
		return err
	}
	*d = x
	return nil
}

// drow is the single-row form of drows.
type drow struct {
	r   *drows
	err error
}

func (r drow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.r.Close()
	if !r.r.Next() {
		if err := r.r.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	return r.r.Scan(dest...)
}
