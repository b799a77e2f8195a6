package odata

import (
	"context"
	"database/sql"
	"sync"
)

// rowCache keeps rows of tables as JSON objects, by table, selected
// columns and rowid, for as long as nothing is written: a query still
// runs its filter, order and paging in SQL for the rowids, and only the
// rows' JSON comes from here. Every write empties it (data.Generation).
type rowCache struct {
	mu   sync.Mutex
	gen  uint64
	sets map[string]map[int64][]byte
	n    int
}

// maxCachedRows bounds the cache; past it, it starts again.
const maxCachedRows = 50_000

func (c *rowCache) lookup(gen uint64, sig string, ids []int64, out [][]byte) (missing []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.sets == nil {
		c.gen, c.sets, c.n = gen, map[string]map[int64][]byte{}, 0
	}
	set := c.sets[sig]
	for i, id := range ids {
		if b, ok := set[id]; ok {
			out[i] = b
		} else {
			missing = append(missing, id)
		}
	}
	return missing
}

func (c *rowCache) store(gen uint64, sig string, rows map[int64][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return // written meanwhile: these rows may be old already
	}
	if c.n+len(rows) > maxCachedRows {
		c.sets, c.n = map[string]map[int64][]byte{}, 0
	}
	set := c.sets[sig]
	if set == nil {
		set = map[int64][]byte{}
		c.sets[sig] = set
	}
	for id, b := range rows {
		if _, ok := set[id]; !ok {
			c.n++
		}
		set[id] = b
	}
}

// tableRows reads up to want rows of a table's query (and whether more
// follow): rowids from SQL, their JSON from the cache or SQL.
func (h *Handler) tableRows(ctx context.Context, q *Query, want int) ([][]byte, bool, error) {
	gen := h.DB.Generation()
	s, args := q.RowIDSQL(want+1, q.Skip)
	rows, err := h.DB.Query(ctx, s, args...)
	if err != nil {
		return nil, false, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, false, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(ids) > want
	if more {
		ids = ids[:want]
	}
	out := make([][]byte, len(ids))
	sig := q.signature()
	missing := h.rows.lookup(gen, sig, ids, out)
	if len(missing) == 0 {
		return out, more, nil
	}
	found := make(map[int64][]byte, len(missing))
	for len(missing) > 0 {
		// SQLite takes a bounded number of parameters per statement.
		batch := missing[:min(len(missing), 500)]
		missing = missing[len(batch):]
		bargs := make([]any, len(batch))
		for i, id := range batch {
			bargs[i] = id
		}
		rows, err := h.DB.Query(ctx, q.RowsByIDSQL(len(batch)), bargs...)
		if err != nil {
			return nil, false, err
		}
		for rows.Next() {
			var id int64
			var obj sql.RawBytes
			if err := rows.Scan(&id, &obj); err != nil {
				rows.Close()
				return nil, false, err
			}
			found[id] = append([]byte(nil), obj...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
	}
	for i, id := range ids {
		if out[i] == nil {
			out[i] = found[id]
		}
	}
	h.rows.store(gen, sig, found)
	// A row deleted between the two queries is left out.
	kept := out[:0]
	for _, b := range out {
		if b != nil {
			kept = append(kept, b)
		}
	}
	return kept, more, nil
}
