package compat

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/app/apptest"
	"github.com/gatehouse/gatehouse/auth"
)

// TestNginxAuthRequest runs nginx with the auth_request snippet of
// docs/gateway.md, taken from the page itself, in front of a backend, with
// gatehouse's /auth/check deciding.
func TestNginxAuthRequest(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx"} {
			if _, e := os.Stat(p); e == nil {
				nginx, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx is required in CI (apt-get install nginx-light)")
		}
		t.Skip("skipped: nginx is not installed (apt-get install nginx-light to run it)")
	}
	doc, err := os.ReadFile("../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/gateway.md has no nginx snippet")
	}
	snippet := string(m[1])

	e := apptest.New(t)
	_, key := e.AddConsumer(auth.NewConsumer{Name: "reports", Scope: "/odata:supplier"})
	resp, body := e.Post("/api/security/token/v2", "application/json", `{"GrantType":"client_credentials","ClientSecret":"`+key+`","username":"api_user"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %s", body)
	}
	var tok struct{ AccessToken string }
	json.Unmarshal(body, &tok)

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.URL.Path, r.Header.Get("X-Gatehouse-User"), r.Header.Get("X-Gatehouse-Family"))
	}))
	defer backend.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	snippet = strings.ReplaceAll(snippet, "http://127.0.0.1:8080", e.URL)
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s;
    proxy_temp_path %[1]s;
    upstream p21_backend { server %[2]s; }
    server {
        listen 127.0.0.1:%[3]d;
%[4]s
    }
}
`, dir, strings.TrimPrefix(backend.URL, "http://"), port, snippet)
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(conf), 0o600)
	cmd := exec.Command(nginx, "-c", confPath, "-p", dir)
	out, _ := os.Create(filepath.Join(dir, "stderr"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			s, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			t.Fatalf("nginx did not start: %s %s", b, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	get := func(path, bearer string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		req.Header.Set("X-Gatehouse-User", "spoofed")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/odataservice/odata/table/supplier?$top=5", tok.AccessToken); st != 200 || body != "/odataservice/odata/table/supplier|api_user|odata" {
		t.Fatalf("allowed: %d %q", st, body)
	}
	if st, _ := get("/odataservice/odata/table/customer", tok.AccessToken); st != 403 {
		t.Fatalf("other table: %d", st)
	}
	if st, _ := get("/odataservice/odata/table/supplier", ""); st != 401 {
		t.Fatalf("no token: %d", st)
	}
}
