package admin

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// ImportCatalog reads `name,kind` lines (an optional header line
// "name,kind" is skipped) and stores them. It returns how many entries it read.
func (a *Admin) ImportCatalog(ctx context.Context, actor string, r io.Reader, source string) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var entries []gatehouse.CatalogEntry
	seen := map[string]int{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, inputErr("%s: %v", source, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != 2 {
			return 0, inputErr("%s line %d: want 2 fields (name,kind), got %d", source, line, len(rec))
		}
		name, kind := strings.TrimSpace(rec[0]), gatehouse.ObjectKind(strings.ToLower(strings.TrimSpace(rec[1])))
		if line == 1 && strings.EqualFold(name, "name") && kind == "kind" {
			continue
		}
		if !objectNameRE.MatchString(name) {
			return 0, inputErr("%s line %d: %q is not a valid table or view name", source, line, name)
		}
		if !kind.Valid() {
			return 0, inputErr("%s line %d: kind %q is not table or view", source, line, kind)
		}
		if prev, dup := seen[strings.ToLower(name)]; dup {
			return 0, inputErr("%s line %d: %q already given on line %d", source, line, name, prev)
		}
		seen[strings.ToLower(name)] = line
		entries = append(entries, gatehouse.CatalogEntry{Name: name, Kind: kind})
	}
	if len(entries) == 0 {
		return 0, inputErr("%s holds no catalog entries", source)
	}
	ev := a.with(ctx, actor, "catalog.import", "catalog", fmt.Sprintf("%d entries from %s", len(entries), source))
	if err := a.store.ImportCatalog(ev, entries); err != nil {
		return 0, err
	}
	return len(entries), nil
}
