package sqlite

import (
	"strings"

	"github.com/gatehouse/gatehouse"
)

// appends are the feed entries and audit events of a batch's appendOnly
// ops, waiting to be written together: one multi-row INSERT per table
// (a chunk of at most appendChunk rows each) costs the writer far less than
// a statement per row.
type appends struct {
	changes []pendingChange
	audit   []gatehouse.AuditEvent
	args    []any
	queries map[[2]int]string // by table and rows
}

type pendingChange struct {
	kind    gatehouse.ChangeKind
	key, op string
	at      int64
}

// appendChunk bounds the rows of one INSERT (9 columns at most: well within
// SQLite's limit on bound parameters).
const appendChunk = 64

func (a *appends) reset() {
	clear(a.changes)
	clear(a.audit)
	a.changes, a.audit = a.changes[:0], a.audit[:0]
}

const (
	tableChanges = iota
	tableAudit
)

// query is the INSERT of n rows into table.
func (a *appends) query(table, n int) string {
	k := [2]int{table, n}
	if q, ok := a.queries[k]; ok {
		return q
	}
	var head, row string
	switch table {
	case tableChanges:
		head, row = "INSERT INTO changes (kind, key, op, at) VALUES ", "(?, ?, ?, ?)"
	case tableAudit:
		head, row = "INSERT INTO audit (at, actor, action, target, outcome, remote, detail, count, request_id) VALUES ", "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
	}
	q := head + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	if a.queries == nil {
		a.queries = map[[2]int]string{}
	}
	a.queries[k] = q
	return q
}

// flush writes what the batch's ops appended so far, in the order they
// appended it, so that an op that reads the feed or the audit trail sees it.
func (t *wtx) flush() error {
	a := t.pending
	if a == nil || len(a.changes)+len(a.audit) == 0 {
		return nil
	}
	defer a.reset()
	for rest := a.changes; len(rest) > 0; {
		n := min(len(rest), appendChunk)
		args := a.args[:0]
		for _, c := range rest[:n] {
			args = append(args, string(c.kind), c.key, c.op, c.at)
		}
		a.args = args
		if _, err := t.exec(a.query(tableChanges, n), args...); err != nil {
			return err
		}
		rest = rest[n:]
	}
	for rest := a.audit; len(rest) > 0; {
		n := min(len(rest), appendChunk)
		args := a.args[:0]
		for _, e := range rest[:n] {
			args = append(args, dbTime(e.At), e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail, max(e.Count, 1), e.RequestID)
		}
		a.args = args
		if _, err := t.exec(a.query(tableAudit, n), args...); err != nil {
			return err
		}
		rest = rest[n:]
	}
	clear(a.args)
	return nil
}
