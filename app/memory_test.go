package app

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestLimitMemory(t *testing.T) {
	oldLimit, oldGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() {
		debug.SetMemoryLimit(oldLimit)
		debug.SetGCPercent(oldGC)
	})
	unset := func(name string) {
		t.Setenv(name, "") // restored at the end
		os.Unsetenv(name)
	}
	for _, tc := range []struct {
		name       string
		env        map[string]string // "" value: unset
		startLimit int64
		limit      int64
		gcPercent  int
	}{
		{"defaults", map[string]string{"GOMEMLIMIT": "", "GOGC": ""}, math.MaxInt64, DefaultMemoryLimit, -1},
		{"GOGC set", map[string]string{"GOMEMLIMIT": "", "GOGC": "100"}, math.MaxInt64, DefaultMemoryLimit, 100},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "200MiB", "GOGC": ""}, 200 << 20, 200 << 20, -1},
		// No limit: the collector keeps its pacing, or the heap would grow without bound.
		{"GOMEMLIMIT=off", map[string]string{"GOMEMLIMIT": "off", "GOGC": ""}, math.MaxInt64, math.MaxInt64, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				if v == "" {
					unset(k)
				} else {
					t.Setenv(k, v)
				}
			}
			// The runtime reads the variables at start; this process's start is the test's.
			debug.SetMemoryLimit(tc.startLimit)
			debug.SetGCPercent(100)
			if got := LimitMemory(); got != tc.limit {
				t.Errorf("limit %d, want %d", got, tc.limit)
			}
			if got := debug.SetGCPercent(100); got != tc.gcPercent {
				t.Errorf("GC percent %d, want %d", got, tc.gcPercent)
			}
		})
	}
}
