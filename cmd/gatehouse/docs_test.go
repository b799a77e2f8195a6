package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/app/apptest"
)

// TestCLIDocIsCurrent fails when docs/cli.md is not what the commands
// say of themselves (gatehouse docs markdown docs/cli.md rewrites it).
func TestCLIDocIsCurrent(t *testing.T) {
	got, err := cliMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("docs/cli.md is out of date: run go run ./cmd/gatehouse docs markdown docs/cli.md")
	}
	for _, cmd := range []string{"serve", "token inspect", "probe", "healthcheck", "docs man"} {
		if !bytes.Contains(got, []byte("### gatehouse "+cmd+"\n")) {
			t.Errorf("docs/cli.md has no section for gatehouse %s", cmd)
		}
	}
}

func TestDocsMan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	mustCLI(t, "", nil, "docs", "man", dir)
	for _, page := range []string{"gatehouse.1", "gatehouse-serve.1", "gatehouse-user-add.1", "gatehouse-healthcheck.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(".nh\n.TH \"GATEHOUSE\" \"1\"")) {
			t.Errorf("%s is not a man page: %.80q", page, b)
		}
	}
	if code, _, errs := cli(t, "", nil, "docs", "markdown", filepath.Join(dir, "cli.txt")); code != 2 || !strings.Contains(errs, ".md") {
		t.Errorf("markdown to a .txt file: exit %d %s", code, errs)
	}
}

func TestHealthcheck(t *testing.T) {
	e := apptest.New(t)
	addr := strings.TrimPrefix(e.URL, "http://")
	if out := mustCLI(t, "", nil, "healthcheck", "--url", e.URL+"/healthz"); out != "ok\n" {
		t.Errorf("--url: %q", out)
	}
	// The serve setting, from the environment, as in the container image.
	if out := mustCLI(t, "", map[string]string{"GATEHOUSE_ADDR": addr}, "healthcheck"); out != "ok\n" {
		t.Errorf("GATEHOUSE_ADDR: %q", out)
	}
	_, port, _ := strings.Cut(addr, ":")
	if got, err := healthURL("0.0.0.0:"+port, "", false); err != nil || got != "http://127.0.0.1:"+port+"/healthz" {
		t.Errorf("every interface: %q %v", got, err)
	}
	if got, _ := healthURL("[::]:8443", "", true); got != "https://[::1]:8443/healthz" {
		t.Errorf("IPv6, TLS: %q", got)
	}
	// Not a health answer, nothing listening, bad input.
	if code, _, errs := cli(t, "", nil, "healthcheck", "--url", e.URL+"/metrics"); code != 1 || !strings.Contains(errs, "answered") {
		t.Errorf("not /healthz: exit %d %s", code, errs)
	}
	if code, _, _ := cli(t, "", nil, "healthcheck", "--addr", freeAddr(t)); code != 1 {
		t.Errorf("nothing listening: exit %d", code)
	}
	for _, args := range [][]string{{"--url", "ftp://x/"}, {"--addr", "nohost"}} {
		if code, _, errs := cli(t, "", nil, append([]string{"healthcheck"}, args...)...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d %s", args, code, errs)
		}
	}
}
