// Command replicas measures gatehouse on PostgreSQL with three replicas
// behind nginx (an upstream of three servers), on loopback, in a fresh
// schema of its own (dropped at the end):
//
//   - throughput: consumer-token issuance through nginx with hey (-c 64),
//     without a session cap (--max-sessions 0) and for one capped principal
//     (--max-sessions 20), each response's status counted;
//
//   - propagation: under that load, sessions ended on one replica
//     (revocation) while another is asked about their token until it
//     refuses it; the time from the end's answer to the first refusal,
//     over -ends ends;
//
//   - failover: tokens issued through nginx while one replica is killed
//     (SIGKILL) and PostgreSQL is restarted; every token answered 200 is
//     looked up in the database afterwards (lost: answered but not
//     stored), and the window of refusals (non-200 answers) is reported.
//
//     go run ./tools/replicas -phases throughput,propagation,failover
//
// Needs PostgreSQL (-dsn; trust auth on 127.0.0.1), nginx and hey; the
// failover phase restarts the local cluster with pg_ctlcluster and leaves
// it running.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

type config struct {
	dsn      string
	bin      string
	port     int
	conc     int
	dur      time.Duration
	ends     int
	phases   string
	cluster  string
	feedPoll time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.dsn, "dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database to make a schema in")
	flag.StringVar(&c.bin, "bin", "", "gatehouse binary (default: build ./cmd/gatehouse)")
	flag.IntVar(&c.port, "port", 18800, "nginx listens here, the replicas on the next three ports")
	flag.IntVar(&c.conc, "c", 64, "hey's connections")
	flag.DurationVar(&c.dur, "d", 10*time.Second, "length of each throughput run")
	flag.IntVar(&c.ends, "ends", 1000, "sessions ended in the propagation phase")
	flag.StringVar(&c.phases, "phases", "throughput,propagation,failover", "phases to run, comma-separated")
	flag.StringVar(&c.cluster, "cluster", "", "PostgreSQL version of the local cluster `main` to restart in the failover phase (default: the only one in /etc/postgresql)")
	flag.DurationVar(&c.feedPoll, "feed-interval", 0, "--feed-interval of the replicas (0: their default)")
	flag.Parse()
	if c.dur <= 0 || c.dur > 2*time.Minute || c.ends < 1 || c.ends > 100000 {
		fmt.Fprintln(os.Stderr, "replicas: -d up to 2m, -ends 1..100000")
		os.Exit(2)
	}
	ok, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

type env struct {
	c      config
	dir    string
	dsn    string // with the schema
	envv   []string
	key    string // the consumer's key
	name   string
	nginx  *exec.Cmd
	reps   []*exec.Cmd
	ok     bool
	schema string
}

func run(c config) (bool, error) {
	dir, err := os.MkdirTemp("", "gatehouse-replicas-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	if c.bin == "" {
		c.bin = filepath.Join(dir, "gatehouse")
		b := exec.Command("go", "build", "-o", c.bin, "./cmd/gatehouse")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return false, fmt.Errorf("build: %w", err)
		}
	}
	e := &env{c: c, dir: dir, ok: true}
	sfx := make([]byte, 4)
	_, _ = rand.Read(sfx)
	e.schema = "gh_replicas_" + hex.EncodeToString(sfx)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+e.schema); err != nil {
		return false, err
	}
	conn.Close(ctx)
	defer func() {
		if conn, err := pgx.Connect(ctx, c.dsn); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+e.schema+" CASCADE")
			conn.Close(ctx)
		}
	}()
	u, err := url.Parse(c.dsn)
	if err != nil {
		return false, err
	}
	q := u.Query()
	q.Set("search_path", e.schema)
	u.RawQuery = q.Encode()
	e.dsn = u.String()
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	e.envv = append(os.Environ(), "GATEHOUSE_MASTER_KEY="+base64.StdEncoding.EncodeToString(mk))
	if out, err := e.gh("migrate", "--db", e.dsn); err != nil {
		return false, fmt.Errorf("migrate: %v: %s", err, out)
	}
	e.name = "bench"
	out, err := e.gh("consumer", "add", e.name, "--scope", "/api", "--db", e.dsn)
	if err != nil {
		return false, fmt.Errorf("consumer add: %v: %s", err, out)
	}
	m := regexp.MustCompile(`consumer key \(shown once[^)]*\): (\S+)`).FindSubmatch(out)
	if m == nil {
		return false, fmt.Errorf("no consumer key in %q", out)
	}
	e.key = string(m[1])
	if err := e.startNginx(); err != nil {
		return false, err
	}
	defer e.stopNginx()
	defer e.stopReplicas()
	fmt.Printf("gatehouse replicas: %s, schema %s, load average %s\n", time.Now().UTC().Format(time.RFC3339), e.schema, loadAvg())
	for _, p := range strings.Split(c.phases, ",") {
		var err error
		switch strings.TrimSpace(p) {
		case "throughput":
			err = e.throughput()
		case "propagation":
			err = e.propagation()
		case "failover":
			err = e.failover()
		default:
			err = fmt.Errorf("unknown phase %q", p)
		}
		if err != nil {
			return false, err
		}
	}
	fmt.Printf("load average at the end %s\n", loadAvg())
	return e.ok, nil
}

func (e *env) gh(args ...string) ([]byte, error) {
	cmd := exec.Command(e.c.bin, args...)
	cmd.Env = e.envv
	return cmd.CombinedOutput()
}

func (e *env) replicaURL(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", e.c.port+1+i) }
func (e *env) front() string           { return fmt.Sprintf("http://127.0.0.1:%d", e.c.port) }

// startReplicas starts three replicas with the extra flags.
func (e *env) startReplicas(flags ...string) error {
	e.stopReplicas()
	e.reps = make([]*exec.Cmd, 3)
	for i := range e.reps {
		if err := e.startReplica(i, flags...); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) startReplica(i int, flags ...string) error {
	args := []string{"serve", "--db", e.dsn, "--addr", strings.TrimPrefix(e.replicaURL(i), "http://"),
		"--rate-limit", "0", "--log-level", "error"}
	if e.c.feedPoll > 0 {
		args = append(args, "--feed-interval", e.c.feedPoll.String())
	}
	cmd := exec.Command(e.c.bin, append(args, flags...)...)
	cmd.Env = e.envv
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	e.reps[i] = cmd
	return waitReady(e.replicaURL(i))
}

func (e *env) stopReplicas() {
	for i, r := range e.reps {
		if r != nil && r.Process != nil {
			_ = r.Process.Signal(os.Interrupt)
			_ = r.Wait()
			e.reps[i] = nil
		}
	}
}

func (e *env) startNginx() error {
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
error_log %[1]s/nginx-error.log;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream gatehouse {
    server 127.0.0.1:%[3]d max_fails=0;
    server 127.0.0.1:%[4]d max_fails=0;
    server 127.0.0.1:%[5]d max_fails=0;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_pass http://gatehouse;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
    }
  }
}
`, e.dir, e.c.port, e.c.port+1, e.c.port+2, e.c.port+3)
	path := filepath.Join(e.dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	e.nginx = exec.Command("nginx", "-c", path, "-p", e.dir)
	e.nginx.Stderr = os.Stderr
	return e.nginx.Start()
}

func (e *env) stopNginx() {
	if e.nginx != nil && e.nginx.Process != nil {
		_ = e.nginx.Process.Signal(os.Interrupt)
		_ = e.nginx.Wait()
	}
}

func waitReady(base string) error {
	for range 200 {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // a process starting
	}
	return fmt.Errorf("%s did not become ready in 10 s", base)
}

func tokenBody(key, username string) string {
	return `{"GrantType":"client_credentials","ClientSecret":"` + key + `","username":"` + username + `"}`
}

var (
	reRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reStatus = regexp.MustCompile(`\[(\d+)\]\s+(\d+) responses`)
	reP99    = regexp.MustCompile(`99% in ([0-9.]+) secs`)
)

// hey runs hey against the front for d (or until stop is closed, when it
// is interrupted and reports) and returns the rate and the responses by
// status.
func (e *env) hey(d time.Duration, body string, stop <-chan struct{}) (float64, map[int]int, string, error) {
	cmd := exec.Command("hey", "-z", d.String(), "-c", strconv.Itoa(e.c.conc), "-m", "POST", "-T", "application/json",
		"-d", body, e.front()+"/api/security/token/v2")
	var buf bytes.Buffer
	cmd.Stdout = &buf
	if err := cmd.Start(); err != nil {
		return 0, nil, "", fmt.Errorf("hey: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-stop:
		_ = cmd.Process.Signal(os.Interrupt)
		err = <-done
	}
	out := buf.Bytes()
	if err != nil && !bytes.Contains(out, []byte("Requests/sec")) {
		return 0, nil, "", fmt.Errorf("hey: %w", err)
	}
	m := reRate.FindSubmatch(out)
	if m == nil {
		return 0, nil, "", fmt.Errorf("hey printed no rate: %s", out)
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	st := map[int]int{}
	for _, s := range reStatus.FindAllSubmatch(out, -1) {
		code, _ := strconv.Atoi(string(s[1]))
		n, _ := strconv.Atoi(string(s[2]))
		st[code] += n
	}
	p99 := ""
	if m := reP99.FindSubmatch(out); m != nil {
		p99 = string(m[1]) + " s"
	}
	return rate, st, p99, nil
}

func (e *env) throughput() error {
	for _, run := range []struct {
		name, flag, username string
		target               float64
	}{
		{"uncapped (--max-sessions 0)", "0", "", 5000},
		{"one capped principal (--max-sessions 20)", "20", "", 2500},
	} {
		if err := e.startReplicas("--max-sessions", run.flag); err != nil {
			return err
		}
		l0 := loadAvg()
		rate, st, p99, err := e.hey(e.c.dur, tokenBody(e.key, run.username), nil)
		if err != nil {
			return err
		}
		bad := 0
		for code, n := range st {
			if code != 200 {
				bad += n
			}
		}
		mark := ""
		if rate < run.target || bad > 0 {
			mark, e.ok = " FAIL", false
		}
		fmt.Printf("throughput %-42s %8.0f tokens/s (target ≥ %.0f), p99 %s, statuses %v, load %s → %s%s\n",
			run.name, rate, run.target, p99, st, l0, loadAvg(), mark)
	}
	return nil
}

// propagation ends sessions on replica 0 under load and times until
// replica 1 refuses their tokens.
func (e *env) propagation() error {
	if err := e.startReplicas("--max-sessions", "0"); err != nil {
		return err
	}
	stop := make(chan struct{})
	loadDone := make(chan string, 1)
	go func() {
		// Background load through nginx: token issuance, bounded in time.
		rate, st, _, err := e.hey(2*time.Minute, tokenBody(e.key, "load"), stop)
		if err != nil {
			loadDone <- err.Error()
			return
		}
		loadDone <- fmt.Sprintf("%.0f tokens/s, statuses %v", rate, st)
	}()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(e.name+":"+e.key))
	const workers = 8
	var mu sync.Mutex
	var lat, rtts []time.Duration
	var failures atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	l0 := loadAvg()
	time.Sleep(2 * time.Second) // let the load start
	for range workers {
		wg.Go(func() {
			for int(next.Add(1)) <= e.c.ends {
				d, rtt, err := e.endOnce(hc, basic)
				if err != nil {
					failures.Add(1)
					fmt.Fprintln(os.Stderr, "propagation:", err)
					continue
				}
				mu.Lock()
				lat, rtts = append(lat, d), append(rtts, rtt)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	l1 := loadAvg()
	close(stop)
	load := <-loadDone
	e.stopReplicas()
	slices.Sort(lat)
	slices.Sort(rtts)
	quantile := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
	q := func(p float64) time.Duration { return quantile(lat, p) }
	mark := ""
	if q(0.99) > 100*time.Millisecond || failures.Load() > 0 {
		mark, e.ok = " FAIL", false
	}
	fmt.Printf("propagation: %d ends on replica 1, refused on replica 2 after p50 %s, p90 %s, p99 %s, max %s (target p99 ≤ 100ms); "+
		"one check's round trip meanwhile p50 %s, p99 %s; %d failed; load %s → %s; background load %s%s\n",
		len(lat), q(0.5).Round(time.Microsecond), q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond),
		q(1).Round(time.Microsecond), quantile(rtts, 0.5).Round(time.Microsecond), quantile(rtts, 0.99).Round(time.Microsecond),
		failures.Load(), l0, l1, load, mark)
	return nil
}

// endOnce gets a token from replica 0 (its own principal), has replica 1
// accept it, revokes it on replica 0 and asks replica 1 until it refuses.
func (e *env) endOnce(hc *http.Client, basic string) (time.Duration, time.Duration, error) {
	user := make([]byte, 6)
	_, _ = rand.Read(user)
	resp, err := hc.Post(e.replicaURL(0)+"/api/security/token/v2", "application/json",
		strings.NewReader(tokenBody(e.key, "prop-"+hex.EncodeToString(user))))
	if err != nil {
		return 0, 0, err
	}
	var tok struct{ AccessToken string }
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		return 0, 0, fmt.Errorf("token: status %d", resp.StatusCode)
	}
	check := func() (int, error) {
		req, _ := http.NewRequest("GET", e.replicaURL(1)+"/auth/check", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("X-Forwarded-Uri", "/api/entity/customers")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	t0 := time.Now()
	if code, err := check(); err != nil || code != 200 {
		return 0, 0, fmt.Errorf("replica 2 did not accept a new token: %d %v", code, err)
	}
	rtt := time.Since(t0)
	req, _ := http.NewRequest("POST", e.replicaURL(0)+"/oauth/revoke", strings.NewReader("token="+tok.AccessToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic)
	resp, err = hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, 0, fmt.Errorf("revoke: status %d", resp.StatusCode)
	}
	ended := time.Now()
	for time.Since(ended) < 10*time.Second {
		code, err := check()
		if err != nil {
			return 0, 0, err
		}
		if code == 401 {
			return time.Since(ended), rtt, nil
		}
		time.Sleep(time.Millisecond) // polling another process
	}
	return 0, 0, errors.New("replica 2 still accepts a revoked token after 10 s")
}

// failover issues tokens through nginx (from 32 clients) while replica 3
// is killed and PostgreSQL restarted, and checks every token answered 200.
func (e *env) failover() error {
	if err := e.startReplicas("--max-sessions", "0"); err != nil {
		return err
	}
	cluster := e.c.cluster
	if cluster == "" {
		ents, err := os.ReadDir("/etc/postgresql")
		if err != nil || len(ents) != 1 {
			return errors.New("failover: give -cluster (the PostgreSQL version of cluster main)")
		}
		cluster = ents[0].Name()
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		mu         sync.Mutex
		acked      []string
		refused    int
		bads       []time.Duration
		statuses   = map[string]int{}
		stop       atomic.Bool
		wg         sync.WaitGroup
		start      = time.Now()
		killAt     time.Duration
		restartAt  time.Duration
		restartErr error
	)
	body := tokenBody(e.key, "")
	for range 32 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := hc.Post(e.front()+"/api/security/token/v2", "application/json", strings.NewReader(body))
				st := ""
				var sid string
				if err != nil {
					st = "error"
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					st = strconv.Itoa(resp.StatusCode)
					if resp.StatusCode == 200 {
						var v struct {
							SessionID string `json:"SessionId"`
						}
						if json.Unmarshal(b, &v) == nil {
							sid = v.SessionID
						}
					}
				}
				now := time.Now()
				mu.Lock()
				statuses[st]++
				if sid != "" {
					acked = append(acked, sid)
				} else {
					refused++
					bads = append(bads, now.Sub(start))
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(3 * time.Second) // load before the failures
	killAt = time.Since(start)
	_ = e.reps[2].Process.Kill()
	_ = e.reps[2].Wait()
	e.reps[2] = nil
	time.Sleep(3 * time.Second) // load on two replicas
	restartAt = time.Since(start)
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart").CombinedOutput()
	if err != nil {
		restartErr = fmt.Errorf("pg_ctlcluster: %v: %s", err, out)
	}
	restarted := time.Since(start)
	time.Sleep(5 * time.Second) // load after the restart
	if err := e.startReplica(2, "--max-sessions", "0"); err != nil {
		restartErr = errors.Join(restartErr, err)
	}
	time.Sleep(2 * time.Second) // load on three replicas again
	stop.Store(true)
	wg.Wait()
	total := time.Since(start)
	if restartErr != nil {
		return restartErr
	}
	// Every acknowledged session must be in the database.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var found int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE id = ANY($1)", acked).Scan(&found); err != nil {
		return err
	}
	lost := len(acked) - found
	// The refusals around each failure: the kill, and the restart.
	window := func(from, to time.Duration) string {
		var n int
		var first, last time.Duration
		for _, d := range bads {
			if d >= from && d < to {
				if n == 0 {
					first = d
				}
				n, last = n+1, d
			}
		}
		if n == 0 {
			return "none"
		}
		return fmt.Sprintf("%d from %s to %s (%s)", n, first.Round(time.Millisecond), last.Round(time.Millisecond), (last - first).Round(time.Millisecond))
	}
	mark := ""
	if lost != 0 {
		mark, e.ok = " FAIL", false
	}
	var b bytes.Buffer
	for _, k := range slices.Sorted(mapsKeys(statuses)) {
		fmt.Fprintf(&b, " %s:%d", k, statuses[k])
	}
	fmt.Printf("failover: %s of load from 32 clients through nginx; replica 3 killed at %s, PostgreSQL restart from %s to %s; "+
		"%d tokens acknowledged, %d of them lost; %d not answered 200: after the kill %s, after the restart began %s; statuses%s%s\n",
		total.Round(time.Millisecond), killAt.Round(time.Millisecond), restartAt.Round(time.Millisecond), restarted.Round(time.Millisecond),
		len(acked), lost, refused, window(killAt, restartAt), window(restartAt, total), b.String(), mark)
	return nil
}

func mapsKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
