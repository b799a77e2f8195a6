package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMaskDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"postgres://u:SECRET@db:5432/gh?sslmode=require", "postgres://u:xxxxx@db:5432/gh?sslmode=require"},
		{"postgresql://u@db/gh", "postgresql://u@db/gh"},
		{"POSTGRES://u:SECRET@db/gh", "postgres://u:xxxxx@db/gh"},
		{"postgres://u@db/gh?password=SECRET&sslmode=disable", "postgres://u@db/gh?password=xxxxx&sslmode=disable"},
		{"postgres://u@db/gh?sslpassword=SECRET", "postgres://u@db/gh?sslpassword=xxxxx"},
		{"host=127.0.0.1 port=5432 user=u password=SECRET dbname=gh", "host=127.0.0.1 port=5432 user=u password=xxxxx dbname=gh"},
		{"host=db password = SECRET", "host=db password=xxxxx"},
		{"host=db password='SE CR\\'ET' sslpassword=SECRET2 dbname=x", "host=db password=xxxxx sslpassword=xxxxx dbname=x"},
		{"host=db\tpassword=SECRET\n", "host=db password=xxxxx"},
		{"password='SECRET", "(set; not shown)"},         // unterminated quote
		{"host=db SECRET", "(set; not shown)"},           // a word without =
		{"postgres://u:SECRET@[::1", "(set; not shown)"}, // not a URL
	} {
		got := maskDSN(c.in)
		if got != c.want {
			t.Errorf("maskDSN(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "SECRET") {
			t.Errorf("maskDSN(%q) shows the password: %q", c.in, got)
		}
	}
}

// FuzzMaskDSN: whatever the password, in either form, it is never shown.
func FuzzMaskDSN(f *testing.F) {
	f.Add("s3cr3t-pw", "host=db user=u")
	f.Add("a b'c\\d", "dbname=gh")
	f.Add("p@ss:w/rd?&=", "")
	f.Fuzz(func(t *testing.T, pw, rest string) {
		if len(pw) < 4 || strings.Contains(rest, pw) || strings.Contains("postgres://u:xxxxx@db/gh host=db user=u password=sslpassword=(set; not shown)", pw) {
			return
		}
		quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
		for _, dsn := range []string{
			// x=y absorbs what rest may leave open (a trailing "key=").
			rest + " x=y password=" + quoted,
			"password=" + quoted + " " + rest,
			"postgres://" + url.UserPassword("u", pw).String() + "@db/gh",
			"postgres://u@db/gh?password=" + url.QueryEscape(pw),
		} {
			got := maskDSN(dsn)
			if strings.Contains(got, pw) || strings.Contains(got, url.QueryEscape(pw)) || strings.Contains(got, url.PathEscape(pw)) {
				t.Fatalf("maskDSN(%q) = %q shows the password", dsn, got)
			}
		}
	})
}

func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// TestPrintConfig: the effective configuration, YAML sections included,
// with every secret masked.
func TestPrintConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(cfg, []byte(`
max-sessions: 7
rate-limit: 3
gateway:
  upstreams:
    odata: http://svc:YAMLSECRET@127.0.0.1:9001
families:
  - name: access
    paths: [/access/]
    granted_by: [access]
`), 0o600)
	env := map[string]string{"GATEHOUSE_MASTER_KEY": "MASTERSECRETMASTERSECRET", "GATEHOUSE_RATE_LIMIT": "5"}
	code, out, errs := runCmd(t, env, "serve", "--config", cfg, "--db", "host=db user=u password=DBSECRET dbname=gh",
		"--upstream", "api=http://svc:FLAGSECRET@127.0.0.1:9002", "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, secret := range []string{"YAMLSECRET", "FLAGSECRET", "DBSECRET", "MASTERSECRET"} {
		if strings.Contains(out, secret) {
			t.Errorf("--print-config shows %s:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"db: host=db user=u password=xxxxx dbname=gh",
		"- api=http://svc:xxxxx@127.0.0.1:9002",
		"- odata=http://svc:xxxxx@127.0.0.1:9001",
		"- name: access",
		"- name: odata", // the defaults are part of the effective families
		"# master key: GATEHOUSE_MASTER_KEY is set (not shown)",
		"max-sessions: 7", // from the file, a number
		"rate-limit: 5",   // the environment wins over the file
		"v1: true",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
}

// TestPrintConfigRoundTrip: what --print-config prints, fed back as
// --config, gives the same configuration; and it refuses what serve
// refuses.
func TestPrintConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": "x"}
	_, first, errs := runCmd(t, env, "serve", "--max-sessions", "7", "--rate-limit", "2.5", "--v1=false", "--audit-retention", "30d",
		"--upstream", "odata=http://127.0.0.1:9001", "--trusted-proxies", "10.0.0.0/8", "--print-config")
	if first == "" {
		t.Fatalf("no output: %s", errs)
	}
	file := filepath.Join(dir, "printed.yaml")
	os.WriteFile(file, []byte(first), 0o600)
	code, second, errs := runCmd(t, env, "serve", "--config", file, "--print-config")
	if code != 0 || second != first {
		t.Fatalf("fed back: exit %d %s\nfirst:\n%s\nsecond:\n%s", code, errs, first, second)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-format", "yaml"}, "token format"},
		{[]string{"--upstream", "nosuch=http://x"}, "nosuch"},
		{[]string{"--user-token-alg", "none"}, "token algorithm"},
		{[]string{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", filepath.Join(dir, "missing.key")}, "missing.pem does not exist"},
	} {
		code, _, errs := runCmd(t, env, append(append([]string{"serve"}, c.args...), "--print-config")...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d %q, want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// TestPlainConfigErrors: values that do not parse are told in plain words,
// wherever they come from; unknown GATEHOUSE_* variables are warned about.
func TestPlainConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("max-sessions: many\n"), 0o600)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"GATEHOUSE_MAX_SESSIONS": "abc"}, nil, `GATEHOUSE_MAX_SESSIONS: "abc" is not a whole number`},
		{map[string]string{"GATEHOUSE_V1": "maybe"}, nil, `GATEHOUSE_V1: "maybe" is not true or false`},
		{map[string]string{"GATEHOUSE_READ_TIMEOUT": "5 minutes"}, nil, `is not a duration such as 90s, 15m or 24h`},
		{map[string]string{"GATEHOUSE_RATE_LIMIT": "fast"}, nil, `"fast" is not a number`},
		{nil, []string{"--config", file}, `max-sessions: "many" is not a whole number`},
		{nil, []string{"--max-sessions", "x"}, `"x" is not a whole number`},
	} {
		code, _, errs := runCmd(t, c.env, append([]string{"serve", "--print-config"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) || strings.Contains(errs, "strconv") || strings.Contains(errs, "ParseInt") {
			t.Errorf("%v %v: exit %d %q, want 2 and %q", c.env, c.args, code, errs, c.want)
		}
	}
	old := environ
	defer func() { environ = old }()
	environ = func() []string { return []string{"GATEHOUSE_MAX_SESSION=5", "GATEHOUSE_DATA=x", "PATH=/bin"} }
	_, _, errs := runCmd(t, nil, "serve", "--print-config")
	if !strings.Contains(errs, "warning: GATEHOUSE_MAX_SESSION is set but no setting reads it (did you mean GATEHOUSE_MAX_SESSIONS?)") ||
		strings.Contains(errs, "GATEHOUSE_DATA ") {
		t.Errorf("warnings: %q", errs)
	}
}

// TestRefreshReuseGraceSetting: --refresh-reuse-grace is read like every
// other setting (flag, environment, YAML) and shown by --print-config.
func TestRefreshReuseGraceSetting(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
	os.WriteFile(cfg, []byte("refresh-reuse-grace: 20s\n"), 0o600)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, `refresh-reuse-grace: 0s`},
		{nil, []string{"--config", cfg}, `refresh-reuse-grace: 20s`},
		{map[string]string{"GATEHOUSE_REFRESH_REUSE_GRACE": "15s"}, []string{"--config", cfg}, `refresh-reuse-grace: 15s`},
		{map[string]string{"GATEHOUSE_REFRESH_REUSE_GRACE": "15s"}, []string{"--refresh-reuse-grace", "5s"}, `refresh-reuse-grace: 5s`},
	} {
		code, out, errs := runCmd(t, tc.env, append([]string{"serve", "--print-config"}, tc.args...)...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v %v: exit %d, want %q in:\n%s%s", tc.env, tc.args, code, tc.want, out, errs)
		}
	}
}

func TestConfigFileMisspeltSectionKey(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "gatehouse.yaml")
	os.WriteFile(cfg, []byte("addr: 127.0.0.1:0\nfamilies:\n  - name: access\n    prefixes: [/access/]\n"), 0o600)
	code, _, errs := runCmd(t, nil, "serve", "--config", cfg, "--print-config")
	if code == 0 || !strings.Contains(errs, "line 4: field prefixes not found") {
		t.Errorf("exit %d, stderr %q; want the misspelt key and its line", code, errs)
	}
}

func TestTableCellsAreSafe(t *testing.T) {
	for in, want := range map[string]string{
		"api_user":               "api_user",
		"Jürgen":                 "Jürgen",
		"a b":                    "a b",
		"\x1b[31mred":            `"\x1b[31mred"`,
		"a\tb":                   `"a\tb"`,
		"line\nbreak":            `"line\nbreak"`,
		strings.Repeat("u", 201): `"` + strings.Repeat("u", 200) + `…"`,
		"\u202eevil":             `"\u202eevil"`,
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
	var out bytes.Buffer
	table(&out, "A\tB", [][]string{{"x\ty", "z"}})
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || strings.Count(lines[1], "\t") != 0 || !strings.Contains(lines[1], `"x\ty"`) {
		t.Errorf("table with a tab in a cell:\n%s", out.String())
	}
}
