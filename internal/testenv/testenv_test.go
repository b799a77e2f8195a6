package testenv

import (
	"strings"
	"testing"
)

func TestPackagePath(t *testing.T) {
	if got := packagePath(); !strings.HasSuffix(got, "/internal/testenv") {
		t.Fatalf("packagePath() = %q", got)
	}
}
