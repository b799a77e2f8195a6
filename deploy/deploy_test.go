// Package deploy holds the files that package and run gatehouse (the
// Dockerfile beside the module root, compose.yaml, nginx.conf and the
// systemd unit); its tests check them with the tools that read them.
package deploy

import (
	"bytes"
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/internal/testtime"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildDir  string
)

// gatehouseBinary builds the command as the Dockerfile does: static,
// without cgo.
func gatehouseBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gatehouse-deploy-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "gatehouse")
		goCmd, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build gatehouse: %w", err)
			return
		}
		cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "../cmd/gatehouse")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDockerfile checks what the image promises: a multi-stage build of a
// static CGO-free binary onto an empty image, a non-root user, /data as
// the volume and store, and a HEALTHCHECK with the binary's own
// healthcheck command (the image has no curl). The binary built the same
// way is static, and its healthcheck passes against it serving.
func TestDockerfile(t *testing.T) {
	df := read(t, "../Dockerfile")
	for _, want := range []string{
		"FROM golang:1.26 AS build", "CGO_ENABLED=0 go build", "FROM scratch",
		"USER 65532:65532", `VOLUME ["/data"]`, "GATEHOUSE_DATA=/data", "GATEHOUSE_ADDR=0.0.0.0:8080",
		`CMD ["/usr/local/bin/gatehouse", "healthcheck"]`, `ENTRYPOINT ["/usr/local/bin/gatehouse"]`,
		"--chown=65532:65532 /out/data /data",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := strings.Count(df, "\nFROM "); n != 2 {
		t.Errorf("Dockerfile has %d stages, want 2", n)
	}

	bin := gatehouseBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the binary is dynamically linked (%v): it cannot run on an empty image", p.Type)
		}
	}

	addr := freeAddr(t)
	dir := t.TempDir()
	srv := exec.Command(bin, "serve", "--dev")
	srv.Env = []string{"GATEHOUSE_ADDR=" + addr, "GATEHOUSE_DATA=" + filepath.Join(dir, "data"), "HOME=" + dir}
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	health := func() error {
		// As in the image: the serve setting, bound on every interface.
		cmd := exec.Command(bin, "healthcheck")
		cmd.Env = []string{"GATEHOUSE_ADDR=" + strings.Replace(addr, "127.0.0.1", "0.0.0.0", 1)}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("healthcheck: %v: %s", err, out)
		}
		return nil
	}
	testtime.Eventually(t, 10*time.Second, health)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "gatehouse ") {
		t.Errorf("version: %v %s", err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSystemdUnit runs systemd-analyze verify on deploy/gatehouse.service
// (with ExecStart pointing at a freshly built binary, and the man pages
// `gatehouse docs man` writes, which its Documentation= names), and holds
// its exposure score, as systemd-analyze security rates it, at "OK".
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Skip(t, "systemd-analyze", "apt-get install systemd")
	}
	if _, err := exec.LookPath("man"); err != nil {
		testenv.Skip(t, "man", "apt-get install man-db")
	}
	unit := read(t, "gatehouse.service")
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=gatehouse", "NoNewPrivileges=yes",
		"PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "Environment=GATEHOUSE_DATA=/var/lib/gatehouse"} {
		if !strings.Contains(unit, want) {
			t.Errorf("gatehouse.service lacks %q", want)
		}
	}
	bin := gatehouseBinary(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "docs", "man", filepath.Join(dir, "man", "man1")).CombinedOutput(); err != nil {
		t.Fatalf("docs man: %v %s", err, out)
	}
	path := filepath.Join(dir, "gatehouse.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/gatehouse", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command(sa, "verify", path)
	verify.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "man"))
	if out, err := verify.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for gatehouse.service: ([0-9.]+) (\w+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("exposure level %s %s, want at most 2.0 (OK)", m[1], m[2])
	}
}

// TestCompose checks deploy/compose.yaml's shape (PostgreSQL, a migration
// before two identical replicas, nginx after both are healthy, a sample
// upstream) and that nginx.conf holds the forward-auth snippet of
// docs/gateway.md unchanged but for the check's address; nginx -t accepts
// it.
func TestCompose(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Image       string
			Command     []string
			Environment map[string]string
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
			Volumes     []string
		}
	}
	if err := yaml.Unmarshal([]byte(read(t, "compose.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "migrate", "gatehouse-1", "gatehouse-2", "nginx", "upstream"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %s", name)
		}
	}
	g1, g2 := c.Services["gatehouse-1"], c.Services["gatehouse-2"]
	if fmt.Sprint(g1) != fmt.Sprint(g2) {
		t.Error("the two replicas differ")
	}
	if !strings.Contains(g1.Environment["GATEHOUSE_DB"], "@postgres:5432/") || !strings.HasPrefix(g1.Environment["GATEHOUSE_MASTER_KEY"], "${GATEHOUSE_MASTER_KEY") {
		t.Errorf("replica environment: %v", g1.Environment)
	}
	if g1.DependsOn["migrate"].Condition != "service_completed_successfully" || c.Services["migrate"].Command[0] != "migrate" {
		t.Error("the replicas do not wait for gatehouse migrate")
	}
	if n := c.Services["nginx"]; n.DependsOn["gatehouse-1"].Condition != "service_healthy" || n.DependsOn["gatehouse-2"].Condition != "service_healthy" {
		t.Error("nginx does not wait for healthy replicas")
	}

	conf := read(t, "nginx.conf")
	doc := read(t, "../docs/gateway.md")
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/gateway.md has no nginx snippet")
	}
	indent := func(s string) string {
		var b strings.Builder
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			if l != "" {
				l = "    " + l
			}
			b.WriteString(l + "\n")
		}
		return b.String()
	}
	want := indent(strings.ReplaceAll(m[1], "http://127.0.0.1:8080/auth/nginx", "http://gatehouse/auth/nginx"))
	if !strings.Contains(conf, want) {
		t.Errorf("nginx.conf does not hold the snippet of docs/gateway.md:\n%s", want)
	}

	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			testenv.Skip(t, "nginx", "apt-get install nginx-light")
		}
		nginx = "/usr/sbin/nginx"
	}
	// The compose hosts, which only Docker's DNS knows, as loopback.
	dir := t.TempDir()
	local := regexp.MustCompile(`server (gatehouse-[12]|upstream):[0-9]+;`).ReplaceAllString(conf, "server 127.0.0.1:9;")
	main := fmt.Sprintf("daemon off;\npid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n access_log off;\n client_body_temp_path %[1]s;\n proxy_temp_path %[1]s;\n%[2]s\n}\n",
		dir, strings.ReplaceAll(local, "listen 8080;", "listen 127.0.0.1:9;"))
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir).CombinedOutput(); err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}
