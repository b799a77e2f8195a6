package admin_test

import (
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
)

// TestMain announces tests skipped for want of chromium or Python (see testenv).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
