package gatehouse_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestValidRequestID(t *testing.T) {
	for _, ok := range []string{"a", "0af7651916cd43dd8448eb211c80319c", "req-1_2.3:4+5/6=7@8", strings.Repeat("x", gatehouse.MaxRequestIDLen)} {
		if !gatehouse.ValidRequestID(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "a b", "a\r\nX-Evil: 1", `a"b`, "a\x00", "é", "a;b", "a,b", strings.Repeat("x", gatehouse.MaxRequestIDLen+1)} {
		if gatehouse.ValidRequestID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	a, b := gatehouse.NewRequestID(), gatehouse.NewRequestID()
	if a == b || len(a) != 32 || !gatehouse.ValidRequestID(a) {
		t.Errorf("new ids %q %q", a, b)
	}
}

func TestLogRequestIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(gatehouse.LogRequestIDs(slog.NewTextHandler(&buf, nil))).With("component", "x")
	log.InfoContext(gatehouse.WithRequestID(context.Background(), "rid-1"), "served")
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "request_id=rid-1") || strings.Contains(lines[1], "request_id") {
		t.Errorf("log:\n%s", buf.String())
	}
	if gatehouse.LogRequestIDs(gatehouse.LogRequestIDs(slog.DiscardHandler)) == nil {
		t.Fatal("nil handler")
	}
}

// FuzzValidRequestID: what is accepted is safe in a header and a log line.
func FuzzValidRequestID(f *testing.F) {
	f.Add("req-1")
	f.Add("a\r\nb")
	f.Fuzz(func(t *testing.T, s string) {
		if gatehouse.ValidRequestID(s) && (strings.ContainsAny(s, " \t\r\n\"\\,;") || len(s) > gatehouse.MaxRequestIDLen || s == "") {
			t.Fatalf("%q accepted", s)
		}
	})
}
