package app

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestLimitMemory(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	for _, tc := range []struct {
		env        string // GOMEMLIMIT; "" unset
		startLimit int64  // what the runtime read from it at start
		want       int64
	}{
		{"", math.MaxInt64, DefaultMemoryLimit},
		{"200MiB", 200 << 20, 200 << 20},
		{"off", math.MaxInt64, math.MaxInt64},
	} {
		t.Run("GOMEMLIMIT="+tc.env, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env) // restored at the end
			if tc.env == "" {
				os.Unsetenv("GOMEMLIMIT")
			}
			debug.SetMemoryLimit(tc.startLimit)
			if got := LimitMemory(); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
		})
	}
}
