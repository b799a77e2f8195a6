package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --sandbox and --sandbox-reset are settings like every other: flag,
// GATEHOUSE_SANDBOX, YAML key.
func TestSandboxSettings(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
	os.WriteFile(cfg, []byte("sandbox-reset: true\n"), 0o600)
	code, out, errs := runCmd(t, map[string]string{"GATEHOUSE_SANDBOX": "true"}, "serve", "--config", cfg, "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"sandbox: true", "sandbox-reset: true"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
}

func TestSandboxUpstreamConflict(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runCmd(t, nil, "serve", "--dev", "--sandbox", "--data", dir, "--addr", "127.0.0.1:0",
		"--upstream", "odata=http://127.0.0.1:9")
	if code == 0 || !strings.Contains(errs, "--upstream also names odata") {
		t.Fatalf("exit %d, stderr %q; want the family named", code, errs)
	}
}
