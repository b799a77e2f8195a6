package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestJSONLogDurations: JSON logs give durations as numbers of
// milliseconds (key suffixed _ms); text logs keep Go's form.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	log, err := (&globals{logLevel: "info", logFormat: "json"}).logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("request", "duration", 1500*time.Microsecond, "status", 200)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["duration_ms"] != 1.5 || line["duration"] != nil || line["status"] != 200.0 {
		t.Errorf("JSON line: %s", buf.Bytes())
	}
	buf.Reset()
	text, _ := (&globals{logLevel: "info", logFormat: "text"}).logger(&buf)
	text.Info("request", "duration", 1500*time.Microsecond)
	if !bytes.Contains(buf.Bytes(), []byte("duration=1.5ms")) {
		t.Errorf("text line: %s", buf.Bytes())
	}
}
