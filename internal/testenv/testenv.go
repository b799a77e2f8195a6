// Package testenv lets a test say that it needs something from outside the
// repository: a PostgreSQL server, a Python interpreter with some modules,
// nginx. Where that is missing, the test is skipped, except in CI (CI=true),
// where it fails, because there the dependency is part of the test
// environment.
//
// Every such skip is announced on a line that go test shows without -v. A
// package whose tests call Skip runs them through Main, which prints one line
// per missing dependency when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// go test hides what a passing package prints (unless -v), so the line goes
// to the go command's own standard error where that can be found (Linux),
// else to the terminal.
package testenv

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

var (
	mu      sync.Mutex
	inMain  bool
	order   []string           // dependencies, in the order first missed
	missing map[string]*missed // by dependency
)

type missed struct {
	why   string // the first reason given
	tests int
}

// Skip skips t because dependency (e.g. "PostgreSQL") is missing, saying why
// and how to get it; in CI it fails t instead.
func Skip(t testing.TB, dependency, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI: %s", dependency, why)
	}
	mu.Lock()
	if missing == nil {
		missing = map[string]*missed{}
	}
	s := missing[dependency]
	if s == nil {
		s = &missed{why: why}
		missing[dependency] = s
		order = append(order, dependency)
	}
	s.tests++
	announceNow := !inMain
	mu.Unlock()
	if announceNow {
		announce(fmt.Sprintf("%s skipped: needs %s: %s", t.Name(), dependency, why))
	}
	t.Skipf("skipped: needs %s: %s", dependency, why)
}

// Main runs the tests of m and announces those skipped for want of a
// dependency. Its result is the exit code for os.Exit.
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if len(order) > 0 {
		keepOutOfTestCache()
	}
	for _, dep := range order {
		s := missing[dep]
		tests := "tests"
		if s.tests == 1 {
			tests = "test"
		}
		announce(fmt.Sprintf("%d %s skipped: needs %s: %s", s.tests, tests, dep, s.why))
	}
	return code
}

// keepOutOfTestCache keeps go test from caching this run, so that the next
// run looks for the missing dependency again (and says so again) instead of
// replaying "ok (cached)". go test caches a result only when it understands
// every entry of the run's input log; this adds one it does not know. The
// log is closed once m.Run returns.
func keepOutOfTestCache() {
	f := flag.Lookup("test.testlogfile")
	if f == nil || f.Value.String() == "" {
		return
	}
	log, err := os.OpenFile(f.Value.String(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer log.Close()
	fmt.Fprintln(log, "testenv-skipped for want of a dependency")
}

// announce prints one line about this package where the person or CI log
// running go test sees it.
func announce(line string) {
	w, closeW := visible()
	defer closeW()
	fmt.Fprintf(w, "skip\t%s\t%s\n", packagePath(), line)
}

// packagePath is the import path of the package under test.
func packagePath() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" {
		return strings.TrimSuffix(bi.Path, ".test")
	}
	return os.Args[0]
}

// visible returns a writer whose output is shown even when go test keeps a
// passing package's output to itself, and a function to call when done.
func visible() (io.Writer, func()) {
	none := func() {}
	if testing.Verbose() {
		return os.Stdout, none
	}
	// The go command's standard error, when it is a terminal or a pipe. A
	// regular file is left alone: writing through a second descriptor would
	// overwrite what the go command writes after.
	if parent, err := os.Stat(fmt.Sprintf("/proc/%d/fd/2", os.Getppid())); err == nil {
		if own, err := os.Stdout.Stat(); err == nil && os.SameFile(own, parent) {
			return os.Stdout, none // our output is streamed there already
		}
		if parent.Mode()&(os.ModeCharDevice|os.ModeNamedPipe) != 0 {
			if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", os.Getppid()), os.O_WRONLY|os.O_APPEND, 0); err == nil {
				return f, func() { f.Close() }
			}
		}
	}
	if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		return f, func() { f.Close() }
	}
	return os.Stdout, none
}

// Python returns a python3 interpreter that can import every module of
// imports (e.g. "httpx", "authlib.jose"), preferring Debian's
// /usr/bin/python3; where there is none, t is skipped (failed in CI),
// naming the Debian packages that provide them (packages).
func Python(t testing.TB, packages string, imports ...string) string {
	t.Helper()
	check := "import sys"
	if len(imports) > 0 {
		check = "import " + strings.Join(imports, ", ")
	}
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", check).Run() == nil {
			return path
		}
	}
	what := "python3"
	if len(imports) > 0 {
		what += " with " + strings.Join(imports, ", ")
	}
	Skip(t, what, "apt-get install "+packages+" to run it")
	return ""
}
