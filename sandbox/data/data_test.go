package data_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
	"github.com/gatehouse/gatehouse/sandbox/data/samplegen"
)

var fixed = gatehouse.ClockFunc(func() time.Time { return time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC) })

func open(t *testing.T) *data.DB {
	t.Helper()
	db, err := data.Open(context.Background(), filepath.Join(t.TempDir(), data.FileName), data.Options{Clock: fixed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The committed sample is what the generator writes.
func TestSampleIsGenerated(t *testing.T) {
	for name, rows := range samplegen.Generate() {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		if err := w.WriteAll(rows); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("sample", name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("sample/%s.csv differs from the generator's output: go generate ./sandbox/data", name)
		}
	}
}

func count(t *testing.T, db *data.DB, table string) int {
	t.Helper()
	recs, err := db.Select(context.Background(), data.Lookup("table", table), "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

func TestOpenLoadsSampleAndReset(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), data.FileName)
	db, err := data.Open(ctx, file, data.Options{Clock: fixed})
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"supplier": 60, "customer": 120, "oe_hdr": 90, "inv_mast": 180, "price_page": 40} {
		if n := count(t, db, table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
	if _, err := db.SaveCustomer(ctx, "ann", data.Record{"customer_name": "Kept Co"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Reopened: the change is kept.
	db, err = data.Open(ctx, file, data.Options{Clock: fixed})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "customer"); n != 121 {
		t.Errorf("after reopening: %d customers", n)
	}
	db.Close()
	// Reset: the sample again.
	db, err = data.Open(ctx, file, data.Options{Clock: fixed, Reset: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(t, db, "customer"); n != 120 {
		t.Errorf("after reset: %d customers", n)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v %v", fi.Mode(), err)
	}
}

func TestSaveOrder(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	o, err := db.SaveOrder(ctx, "ann", data.Record{"customer_id": "100101", "po_no": "PO-1"},
		[]data.LineInput{{"item_id": "FA5-1000", "qty_ordered": "3"}, {"item_id": "fa5-1084", "qty_ordered": 2.0, "unit_price": "10.5"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Header["order_no"] != "1001091" || o.Header["taker"] != "ann" || o.Header["order_date"] != "2026-03-14T00:00:00Z" || len(o.Lines) != 2 {
		t.Fatalf("order %v lines %v", o.Header, o.Lines)
	}
	if o.Lines[1]["extended_price"] != 21.0 || o.Lines[1]["line_no"] != int64(2) {
		t.Fatalf("line 2: %v", o.Lines[1])
	}
	// Change a line and add one.
	o, err = db.SaveOrder(ctx, "bob", data.Record{"order_no": "1001091"}, []data.LineInput{{"line_no": "1", "qty_ordered": "5"}, {"inv_mast_uid": 1002, "qty_ordered": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Lines) != 3 || o.Lines[0]["qty_ordered"] != 5.0 || o.Lines[0]["last_maintained_by"] != "bob" {
		t.Fatalf("lines %v", o.Lines)
	}
	for _, tc := range []struct {
		hdr   data.Record
		lines []data.LineInput
		want  string
	}{
		{data.Record{}, nil, "customer_id is required; an order needs at least one line item"},
		{data.Record{"customer_id": "x"}, []data.LineInput{{"item_id": "nope", "qty_ordered": 1}}, "customer_id: 'x' is not a valid integer; line 1: item 'nope' does not exist"},
		{data.Record{"customer_id": 100101, "bogus": 1}, []data.LineInput{{"item_id": "FA5-1000", "qty_ordered": 0}}, "bogus is not a field of oe_hdr; line 1: qty_ordered must be greater than 0"},
		{data.Record{"order_no": "1001001"}, nil, "order 1001001 is completed and cannot be changed"},
	} {
		_, err := db.SaveOrder(ctx, "ann", tc.hdr, tc.lines)
		var ve *data.ValidationError
		if !errors.As(err, &ve) || err.Error() != tc.want {
			t.Errorf("SaveOrder(%v, %v) = %v, want %q", tc.hdr, tc.lines, err, tc.want)
		}
	}
	if _, err := db.SaveOrder(ctx, "ann", data.Record{"order_no": "999"}, nil); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("unknown order: %v", err)
	}
}

func TestSaveCustomerContactPricePage(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	c, err := db.SaveCustomer(ctx, "ann", data.Record{"customer_name": "New Co", "mail_state": "ia", "credit_limit": "2500"})
	if err != nil {
		t.Fatal(err)
	}
	if c["customer_id"] != int64(100221) || c["mail_state"] != "IA" || c["credit_limit"] != 2500.0 || c["taxable"] != true {
		t.Fatalf("customer %v", c)
	}
	if _, err := db.SaveCustomer(ctx, "ann", data.Record{"customer_id": 100221, "customer_name": "Renamed Co"}); err != nil {
		t.Fatal(err)
	}
	a, err := db.Get(ctx, "address", int64(100221))
	if err != nil || a["name"] != "Renamed Co" {
		t.Fatalf("address %v %v", a, err)
	}
	if _, err := db.SaveCustomer(ctx, "ann", data.Record{"mail_state": "Iowa"}); err == nil || err.Error() != "customer_name is required; mail_state must be a 2-letter state code" {
		t.Errorf("bad customer: %v", err)
	}
	ct, err := db.SaveContact(ctx, "ann", data.Record{"first_name": "Ada", "last_name": "Byron", "address_id": 100221})
	if err != nil || ct["address_id"] != int64(100221) {
		t.Fatalf("contact %v %v", ct, err)
	}
	if _, err := db.SaveContact(ctx, "ann", data.Record{"first_name": "Ada", "last_name": "Byron", "address_id": 1}); err == nil {
		t.Error("contact of no address saved")
	}
	p, err := db.SavePricePage(ctx, "ann", data.Record{"price_page_type_cd": 214, "supplier_id": 21201, "product_group_id": "FA5",
		"description": "Test", "effective_date": "2026-01-01", "expiration_date": "2030-12-31"})
	if err != nil || p["price_page_uid"] != int64(45041) || p["effective_date"] != "2026-01-01T00:00:00Z" {
		t.Fatalf("price page %v %v", p, err)
	}
}
