package compat

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/policy"
)

// TestDifferentialPaths reads a corpus of tricky request targets
// (testdata/paths.txt) and checks that every one gatehouse allows to be
// judged reaches the same API family and object, and the same decoded path,
// once read by three other parsers an upstream might use: Go's net/http
// with path.Clean, Python's urllib with posixpath.normpath, and a
// servlet-style parser that strips ";" path parameters (resolving "..;").
func TestDifferentialPaths(t *testing.T) {
	py := testenv.Python(t, "python3")
	table, err := policy.NewTable(policy.DefaultFamilies())
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	f, err := os.Open("testdata/paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "# ") {
			targets = append(targets, l)
		}
	}
	f.Close()
	if len(targets) < 300 {
		t.Fatalf("the corpus has %d targets, want at least 300", len(targets))
	}
	cmd := exec.Command(py, "urllib_paths.py")
	cmd.Stdin = strings.NewReader(strings.Join(targets, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v %s", err, stderr.Bytes())
	}
	var pyPaths []string
	if err := json.Unmarshal(out, &pyPaths); err != nil || len(pyPaths) != len(targets) {
		t.Fatalf("python answered %d paths for %d targets: %v", len(pyPaths), len(targets), err)
	}
	allowed := 0
	for i, target := range targets {
		p, q, _ := strings.Cut(target, "?")
		m, err := table.Resolve(p, q)
		if err != nil {
			continue // refused: nothing reaches an upstream
		}
		allowed++
		want := describePath(table, m.Path)
		b, _ := hex.DecodeString(pyPaths[i])
		readers := map[string]string{
			"net/http+path.Clean": goPath(target),
			"urllib+normpath":     string(b),
			"servlet-style":       servletPath(target),
		}
		for name, got := range readers {
			if got != m.Path {
				t.Errorf("%s: gatehouse judged %q, %s reads %q", target, m.Path, name, got)
			}
			if d := describePath(table, got); d != want {
				t.Errorf("%s: gatehouse judged %s, %s reads %s", target, want, name, d)
			}
		}
	}
	t.Logf("%d targets, %d allowed to be judged, %d refused", len(targets), allowed, len(targets)-allowed)
	if allowed < 60 {
		t.Errorf("only %d targets were allowed; the corpus must exercise allowed paths too", allowed)
	}
}

// describePath is the family and object (the segment after an object
// family's prefix) of a decoded path, "" for none.
func describePath(t *policy.Table, p string) string {
	m, ok := t.Classify(p)
	if !ok {
		return "no family"
	}
	return m.Family.Name + " " + m.Object
}

// goPath reads a request target as Go's net/http server does, then
// path.Clean (a trailing slash kept).
func goPath(target string) string {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
	if err != nil {
		return "(refused: " + err.Error() + ")"
	}
	return cleanKeepSlash(r.URL.Path)
}

// servletPath reads a request target as a servlet container does: path
// parameters (";…" up to the next "/") are stripped from each segment
// before decoding, so "..;" is "..", then the path is decoded once and
// normalised.
func servletPath(target string) string {
	p, _, _ := strings.Cut(target, "?")
	p, _, _ = strings.Cut(p, "#")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	d, err := url.PathUnescape(strings.Join(segs, "/"))
	if err != nil {
		return "(refused: " + err.Error() + ")"
	}
	return cleanKeepSlash(d)
}

func cleanKeepSlash(p string) string {
	if p == "" {
		return ""
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
