// Command floor measures gatehouse's HTTP flows against the cost of its
// HTTP stack alone: it builds and starts `gatehouse serve --dev` on a fresh
// data dir (durable: --sqlite-sync full), then sends, alternating in
// rounds, P21 consumer-token requests (HS256), /oauth/token client
// credentials (ES256), introspection, /auth/check and GET /healthz, each
// for a window at the same concurrency with gatehouse's own load generator,
// and the OAuth password grant next to raw argon2id with the same
// parameters at the same concurrency; with -algorithms (the default), also
// consumer tokens signed with ES256, EdDSA and RS256 (a server each), and,
// in its own process, the signing paths (token.Keyring.Sign) of RS256
// next to raw RSA-2048 signing and of ES256 and EdDSA next to RS256's;
// and, from a bare server of its own (this program run with
// -bare-durable, no gatehouse code), POST requests each answered only
// after an fsync covering its body, grouped as gatehouse's store groups
// its commits: the ceiling on this machine of any durable endpoint.
// It reports each flow's rate as a ratio to /healthz (the password
// grant's to argon2id, a signing path's to its reference), the server's CPU per
// request (user + system ticks of /proc/PID/stat over the flow's windows),
// the server's peak RSS (VmHWM) and its soft memory limit at the end (from
// /metrics), and the load average before and after; it
// exits 1 when a ratio is under its target or any response was not a 2xx.
//
//	go run ./tools/floor                      # 3 rounds of 3 s windows, 32 connections
//	go run ./tools/floor -rounds 5 -window 5s -json
//
// Linux only (it reads /proc). Loopback only; every run is bounded by
// rounds × windows.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
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

	"golang.org/x/crypto/argon2"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/load"
	"github.com/gatehouse/gatehouse/masterkey"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/token"
)

// A flow is one kind of request measured.
type flow struct {
	name   string
	target float64 // minimum ratio to its reference; 0: reported only
	ref    string  // the flow its rate is compared with
	conc   int
	req    func(ctx context.Context) (*http.Request, error)
	check  func(status int, body []byte) error
	raw    func()  // an in-process operation instead of an HTTP request
	srv    *server // the server the requests go to; nil: the main one

	requests, failed int64
	elapsed          time.Duration
	cpuTicks         int64
	faults           int64 // the server's minor page faults
	busy, all        int64 // machine-wide ticks from /proc/stat
	statuses         map[int]int64
	rates            []float64
}

func (f *flow) rate() float64 {
	if f.elapsed <= 0 {
		return 0
	}
	return float64(f.requests) / f.elapsed.Seconds()
}

type config struct {
	bin        string
	rounds     int
	window     time.Duration
	conc       int
	pwConc     int
	addr       string
	jsonOut    bool
	keep       bool
	serveFlags string
	serverEnv  string
	only       *regexp.Regexp
	algorithms bool
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "gatehouse binary to measure (default: build ./cmd/gatehouse into a temporary dir)")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds; each round runs every flow once, in a rotated order")
	flag.DurationVar(&c.window, "window", 3*time.Second, "length of one flow's window in a round")
	flag.IntVar(&c.conc, "c", 32, "connections of the HTTP flows")
	flag.IntVar(&c.pwConc, "password-c", 2, "concurrency of the password grant and of raw argon2id")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:18790", "loopback address for the server")
	flag.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	flag.BoolVar(&c.keep, "keep", false, "keep the data dir")
	flag.BoolVar(&c.algorithms, "algorithms", true, "also measure consumer tokens signed with ES256, EdDSA and RS256 (a server each), the signing paths of the three and raw RSA-2048 signing")
	flag.StringVar(&c.serverEnv, "server-env", "", "more environment for the servers, space-separated NAME=VALUE (e.g. GOMEMLIMIT=80MiB)")
	flag.StringVar(&c.serveFlags, "serve-flags", "", "more flags for gatehouse serve, space-separated")
	only := flag.String("only", "", "measure only the flows whose name matches this regular expression (and /healthz)")
	bareAddr := flag.String("bare-durable", "", "(run by the floor itself) serve the bare durable append on this address")
	bareDir := flag.String("bare-dir", "", "(run by the floor itself) the bare durable server's data dir")
	flag.Parse()
	if *bareAddr != "" {
		if err := serveBare(*bareAddr, *bareDir); err != nil {
			fmt.Fprintln(os.Stderr, "floor: bare durable server:", err)
			os.Exit(2)
		}
		return
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor: -only:", err)
			os.Exit(2)
		}
		c.only = re
	}
	if c.rounds < 1 || c.window <= 0 || c.window > time.Minute || c.rounds > 20 {
		fmt.Fprintln(os.Stderr, "floor: -rounds 1..20 and -window up to 1m")
		os.Exit(2)
	}
	if host, _, err := net.SplitHostPort(c.addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "floor: -addr must be a loopback address with a port")
		os.Exit(2)
	}
	ok, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(c config) (bool, error) {
	dir, err := os.MkdirTemp("", "gatehouse-floor-")
	if err != nil {
		return false, err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	if c.bin == "" {
		c.bin = filepath.Join(dir, "gatehouse")
		build := exec.Command("go", "build", "-o", c.bin, "./cmd/gatehouse")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return false, fmt.Errorf("build: %w", err)
		}
	}
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	env := append(os.Environ(), "GATEHOUSE_MASTER_KEY="+base64.StdEncoding.EncodeToString(mk))
	main, err := startServer(c, env, filepath.Join(dir, "data"), c.addr, nil)
	if main != nil {
		defer main.stop()
	}
	if err != nil {
		return false, err
	}
	// One user per password client: the checks of one name take turns.
	users := make([]string, c.pwConc)
	for i := range users {
		users[i] = fmt.Sprintf("floor%d", i)
		add := exec.Command(c.bin, "user", "add", users[i], "--data", main.data, "--password-stdin", "--identity", "sql")
		add.Env, add.Stdin = env, strings.NewReader(main.demo.password+"\n")
		if b, err := add.CombinedOutput(); err != nil {
			return false, fmt.Errorf("user add: %v: %s", err, b)
		}
	}
	// The token checked is of a principal of its own (the consumer with a
	// user context), so that the issuance flows' session cap never ends it.
	tok, err := consumerToken(main.base, main.demo.key, "floor-check")
	if err != nil {
		return false, err
	}
	flows := makeFlows(c, main, users, tok)
	if c.only == nil || c.only.MatchString(bareFlowName) {
		bare, err := startBare(c, filepath.Join(dir, "data-bare"))
		if bare != nil {
			defer bare.stop()
		}
		if err != nil {
			return false, fmt.Errorf("bare durable server: %w", err)
		}
		flows = append(flows, bareFlow(c, bare))
	}
	if c.algorithms {
		// A server per signing algorithm of consumer tokens, on the next
		// ports; idle while the others are measured.
		host, port, _ := net.SplitHostPort(c.addr)
		p, _ := strconv.Atoi(port)
		for i, alg := range []string{"ES256", "EdDSA", "RS256"} {
			addr := net.JoinHostPort(host, strconv.Itoa(p+1+i))
			srv, err := startServer(c, env, filepath.Join(dir, "data-"+alg), addr, []string{"--consumer-token-alg", alg})
			if srv != nil {
				defer srv.stop()
			}
			if err != nil {
				return false, err
			}
			f := consumerFlow(c, srv, "p21 consumer token ("+alg+")")
			if alg != "RS256" {
				f.ref, f.target = "p21 consumer token (RS256)", 5
			} else {
				// Reported: through HTTP each token also costs its durable
				// session write, which the HS256 flow measures.
				f.ref = "rsa-2048 sign"
			}
			flows = append(flows, f)
		}
		paths := map[string]func(){}
		for _, alg := range []string{token.RS256, token.ES256, token.EdDSA} {
			if paths[alg], err = signingPath(alg); err != nil {
				return false, err
			}
		}
		flows = append(flows,
			&flow{name: "rs256 signing path", ref: "rsa-2048 sign", target: 0.9, conc: c.conc, raw: paths[token.RS256]},
			&flow{name: "rsa-2048 sign", conc: c.conc, raw: rsaSigner()},
			&flow{name: "es256 signing path", ref: "rs256 signing path", target: 5, conc: c.conc, raw: paths[token.ES256]},
			&flow{name: "eddsa signing path", ref: "rs256 signing path", target: 5, conc: c.conc, raw: paths[token.EdDSA]})
	}
	if c.only != nil {
		// The flows named, and those they are compared with.
		keep := map[string]bool{"healthz": true}
		for _, f := range flows {
			if c.only.MatchString(f.name) {
				keep[f.name], keep[f.ref] = true, true
			}
		}
		flows = slices.DeleteFunc(flows, func(f *flow) bool { return !keep[f.name] })
	}
	pid := main.pid
	load0 := loadAvg()
	start := time.Now()
	for r := range c.rounds {
		for i := range flows {
			f := flows[(i+r)%len(flows)]
			fpid := pid
			if f.srv != nil {
				fpid = f.srv.pid
			}
			if err := measure(c, f, fpid); err != nil {
				return false, err
			}
		}
	}
	took := time.Since(start)
	load1 := loadAvg()
	hwm, _ := procStatusKiB(pid, "VmHWM")
	rss, _ := procStatusKiB(pid, "VmRSS")
	limit, _ := memoryLimit(c.addr)
	return report(c, flows, load0, load1, hwm, rss, limit, took), nil
}

// memoryLimit reads the server's soft memory limit in force from its
// /metrics (go_gc_gomemlimit_bytes).
func memoryLimit(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gomemlimit_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("go_gc_gomemlimit_bytes %q: %w", v, err)
			}
			return int64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no go_gc_gomemlimit_bytes in /metrics")
}

type demoCreds struct{ consumer, key, password string }

// A server is a gatehouse serve process of the run.
type server struct {
	cmd  *exec.Cmd
	pid  int
	base string
	data string
	demo demoCreds
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// startServer starts `gatehouse serve --dev` on a new data dir, durable
// (--sqlite-sync full), and waits until it is ready.
func startServer(c config, env []string, data, addr string, flags []string) (*server, error) {
	args := []string{"serve", "--dev", "--data", data, "--addr", addr, "--rate-limit", "0",
		"--log-level", "warn", "--sqlite-sync", "full"}
	args = append(args, flags...)
	args = append(args, strings.Fields(c.serveFlags)...)
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(env, strings.Fields(c.serverEnv)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, data: data}
	if s.demo, err = readDemo(out); err != nil {
		return s, err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return s, waitReady(s.base)
}

// rsaSigner signs a token-sized message with a fresh RSA-2048 key, as
// RS256 does (rsa.SignPKCS1v15 of its SHA-256).
func rsaSigner() func() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(make([]byte, 400))
	return func() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
			panic(err)
		}
	}
}

// signingPath signs a consumer token's claims the way gatehouse does
// (token.Keyring.Sign: the claims, the header, the signature) with a key
// of its own for alg (RSA-2048, P-256 or Ed25519).
func signingPath(alg string) (func(), error) {
	mk, err := masterkey.Parse(masterkey.Generate())
	if err != nil {
		return nil, err
	}
	k, err := token.NewSigningKey(alg, mk, time.Now())
	if err != nil {
		return nil, err
	}
	k.State = gatehouse.KeyActive
	kr, err := token.NewKeyring([]gatehouse.SigningKey{k}, mk)
	if err != nil {
		return nil, err
	}
	return func() {
		now := time.Now()
		c := token.Claims{Issuer: "P21.Soa", Audience: "/api;/p21sdk", IssuedAt: now, NotBefore: now,
			ExpiresAt: now.Add(time.Hour), ID: token.RandomToken(16), SessionID: "07113e5c-3431-4164-aecb-aeeb8b6753ba",
			ConsumerUID: "1"}
		if _, err := kr.Sign(alg, c); err != nil {
			panic(err)
		}
	}, nil
}

var (
	reConsumer = regexp.MustCompile(`consumer\s+(\S+), uid \S+, .* key (\S+)`)
	reUser     = regexp.MustCompile(`user\s+demo / (\S+)`)
)

// readDemo reads the demo credentials --dev prints.
func readDemo(r io.Reader) (demoCreds, error) {
	var d demoCreds
	sc := bufio.NewScanner(r)
	deadline := time.AfterFunc(30*time.Second, func() {})
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if m := reUser.FindStringSubmatch(line); m != nil {
			d.password = m[1]
		}
		if m := reConsumer.FindStringSubmatch(line); m != nil {
			d.consumer, d.key = m[1], m[2]
		}
		if d.key != "" && d.password != "" {
			return d, nil
		}
	}
	return d, errors.New("the server did not print the demo credentials (is the data dir new?)")
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
	return errors.New("the server did not become ready in 10 s")
}

func consumerToken(base, key, username string) (string, error) {
	resp, err := http.Post(base+"/api/security/token/v2", "application/json",
		strings.NewReader(`{"GrantType":"client_credentials","ClientSecret":"`+key+`","username":"`+username+`"}`))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct{ AccessToken string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.AccessToken == "" {
		return "", fmt.Errorf("consumer token: status %d, %v", resp.StatusCode, err)
	}
	return v.AccessToken, nil
}

// consumerFlow is P21 consumer-token issuance from srv.
func consumerFlow(c config, srv *server, name string) *flow {
	body := `{"GrantType":"client_credentials","ClientSecret":"` + srv.demo.key + `"}`
	return &flow{name: name, conc: c.conc, srv: srv,
		req: func(ctx context.Context) (*http.Request, error) {
			r, err := http.NewRequestWithContext(ctx, "POST", srv.base+"/api/security/token/v2", strings.NewReader(body))
			if err == nil {
				r.Header.Set("Content-Type", "application/json")
			}
			return r, err
		},
		check: hasToken("AccessToken")}
}

func hasToken(field string) func(int, []byte) error {
	return func(_ int, b []byte) error {
		if !bytes.Contains(b, []byte(`"`+field+`":"ey`)) {
			return errors.New("no token in the answer")
		}
		return nil
	}
}

func makeFlows(c config, srv *server, users []string, tok string) []*flow {
	base, d := srv.base, srv.demo
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(d.consumer)+":"+url.QueryEscape(d.key)))
	req := func(method, path, ctype, body string, hdr ...string) func(context.Context) (*http.Request, error) {
		return func(ctx context.Context) (*http.Request, error) {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			r, err := http.NewRequestWithContext(ctx, method, base+path, rd)
			if err != nil {
				return nil, err
			}
			if ctype != "" {
				r.Header.Set("Content-Type", ctype)
			}
			for i := 0; i+1 < len(hdr); i += 2 {
				r.Header.Set(hdr[i], hdr[i+1])
			}
			return r, nil
		}
	}
	pwForms := make([]string, len(users))
	for i, u := range users {
		pwForms[i] = url.Values{"grant_type": {"password"}, "username": {u}, "password": {d.password}}.Encode()
	}
	// Each password client keeps to a user of its own, as a real client
	// would: the server checks one name's passwords one at a time, so
	// clients taking turns over the users would sometimes wait for each
	// other (the probe request, from no worker, takes the first user).
	pwReq := func(ctx context.Context) (*http.Request, error) {
		i, _ := load.Worker(ctx)
		return req("POST", "/oauth/token", "application/x-www-form-urlencoded", pwForms[i%len(pwForms)], "Authorization", basic)(ctx)
	}
	p := password.DefaultParams()
	salt := []byte("0123456789abcdef")
	pw := []byte(d.password)
	return []*flow{
		{name: "healthz", req: req("GET", "/healthz", "", ""), conc: c.conc},
		withRef(consumerFlow(c, srv, "p21 consumer token (HS256)"), "healthz", 0.6),
		{name: "oauth client_credentials (ES256)", ref: "healthz", conc: c.conc,
			req: req("POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
				"Authorization", basic),
			check: hasToken("access_token")},
		{name: "introspection", ref: "healthz", target: 0.8, conc: c.conc,
			req: req("POST", "/oauth/introspect", "application/x-www-form-urlencoded", "token="+tok, "Authorization", basic),
			check: func(_ int, b []byte) error {
				if !bytes.Contains(b, []byte(`"active":true`)) {
					return errors.New("token not active")
				}
				return nil
			}},
		{name: "/auth/check", ref: "healthz", target: 0.8, conc: c.conc,
			req: req("GET", "/auth/check", "", "", "Authorization", "Bearer "+tok, "X-Forwarded-Uri", "/api/entity/customers")},
		{name: "oauth password grant", ref: "argon2id", target: 0.9, conc: c.pwConc, req: pwReq, check: hasToken("access_token")},
		{name: "argon2id", conc: c.pwConc, raw: func() { argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen) }},
	}
}

func withRef(f *flow, ref string, target float64) *flow {
	f.ref, f.target = ref, target
	return f
}

// measure runs one window of f and adds it to f's totals.
func measure(c config, f *flow, pid int) error {
	t0, f0, err := procStat(pid)
	if err != nil {
		return err
	}
	b0, a0 := machineTicks()
	var n int64
	var el time.Duration
	var failed int64
	if f.raw != nil {
		n, el = runRaw(f.raw, f.conc, c.window)
	} else {
		res, err := load.Run(context.Background(), load.Options{Request: f.req, Concurrency: f.conc,
			Duration: c.window, Timeout: 10 * time.Second, Check: f.check, MaxBody: 4 << 10})
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		n, el, failed = res.Requests, res.Elapsed, res.Failed()
		if f.statuses == nil {
			f.statuses = map[int]int64{}
		}
		for s, k := range res.Status {
			f.statuses[s] += k
		}
		for m, k := range res.Errors {
			fmt.Fprintf(os.Stderr, "floor: %s: %d× %s\n", f.name, k, m)
		}
		for m, k := range res.CheckFailures {
			fmt.Fprintf(os.Stderr, "floor: %s: %d× %s\n", f.name, k, m)
		}
	}
	t1, f1, err := procStat(pid)
	if err != nil {
		return err
	}
	f.faults += f1 - f0
	b1, a1 := machineTicks()
	f.busy += b1 - b0
	f.all += a1 - a0
	f.requests += n
	f.failed += failed
	f.elapsed += el
	f.cpuTicks += t1 - t0
	f.rates = append(f.rates, float64(n)/el.Seconds())
	return nil
}

// runRaw calls op on conc goroutines for d and counts the calls.
func runRaw(op func(), conc int, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	t := time.AfterFunc(d, func() { stop.Store(true) })
	defer t.Stop()
	for range conc {
		wg.Go(func() {
			for !stop.Load() {
				op()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

// procStat reads the process's user + system ticks and minor page faults.
func procStat(pid int) (ticks, minflt int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	fs := strings.Fields(string(b[i+1:]))
	// fs[0] is field 3 (state); minflt is field 10, utime and stime 14 and 15.
	f, err0 := strconv.ParseInt(fs[7], 10, 64)
	u, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("reading /proc/%d/stat", pid)
	}
	return u + st, f, nil
}

// machineTicks is the machine's busy and total ticks (the first line of
// /proc/stat; idle and iowait are not busy).
func machineTicks() (busy, all int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		all += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, all
}

// ticksPerSecond is USER_HZ, 100 on every Linux this runs on.
const ticksPerSecond = 100

func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// peakRSSTarget is the bound on the server's peak RSS over the run.
const peakRSSTarget = 96 << 10 // KiB

type row struct {
	Flow         string    `json:"flow"`
	Requests     int64     `json:"requests"`
	Rate         float64   `json:"rate"`
	Rates        []float64 `json:"window_rates"`
	CPUPerReqUS  float64   `json:"server_cpu_us_per_request,omitempty"`
	Ref          string    `json:"ratio_to,omitempty"`
	Ratio        float64   `json:"ratio,omitempty"`
	Target       float64   `json:"target,omitempty"`
	Failed       int64     `json:"non_2xx"`
	MachineBusy  float64   `json:"machine_busy"`
	FaultsPerReq float64   `json:"server_page_faults_per_request,omitempty"`
	OK           bool      `json:"ok"`
}

func report(c config, flows []*flow, load0, load1 string, hwm, rss, limit int64, took time.Duration) bool {
	byName := map[string]*flow{}
	for _, f := range flows {
		byName[f.name] = f
	}
	ok := true
	var rows []row
	for _, f := range flows {
		r := row{Flow: f.name, Requests: f.requests, Rate: f.rate(), Rates: f.rates, Failed: f.failed, OK: f.failed == 0, Target: f.target}
		if f.all > 0 {
			r.MachineBusy = float64(f.busy) / float64(f.all)
		}
		if f.raw == nil && f.requests > 0 {
			r.CPUPerReqUS = float64(f.cpuTicks) / ticksPerSecond * 1e6 / float64(f.requests)
			r.FaultsPerReq = float64(f.faults) / float64(f.requests)
		}
		if ref := byName[f.ref]; ref != nil && ref.rate() > 0 {
			r.Ref, r.Ratio = f.ref, f.rate()/ref.rate()
			if r.Ratio < f.target {
				r.OK = false
			}
		}
		if f.raw == nil && f.requests == 0 {
			r.OK = false
		}
		ok = ok && r.OK
		rows = append(rows, r)
	}
	rssOK := hwm <= peakRSSTarget
	ok = ok && rssOK
	if c.jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"date": time.Now().UTC().Format(time.RFC3339), "rounds": c.rounds, "window_seconds": c.window.Seconds(),
			"concurrency": c.conc, "password_concurrency": c.pwConc, "load_before": load0, "load_after": load1,
			"seconds": took.Seconds(), "flows": rows, "peak_rss_kib": hwm, "rss_end_kib": rss, "memory_limit_bytes": limit, "ok": ok,
		})
		return ok
	}
	fmt.Printf("gatehouse floor: %s, %d rounds of %s windows, -c %d (password -c %d), %.0f s\n",
		time.Now().UTC().Format(time.RFC3339), c.rounds, c.window, c.conc, c.pwConc, took.Seconds())
	fmt.Printf("load average (1, 5, 15 min): before %s, after %s\n\n", load0, load1)
	fmt.Printf("%-34s %10s %10s %8s %9s %9s %8s %5s %s\n", "flow", "req/s", "cpu µs/req", "faults", "ratio", "target", "non-2xx", "busy", "")
	for _, r := range rows {
		ratio, target := "", ""
		if r.Ref != "" {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
			if r.Target > 0 {
				target = fmt.Sprintf("≥ %.2f", r.Target)
			}
		}
		cpu := ""
		if r.CPUPerReqUS > 0 {
			cpu = fmt.Sprintf("%.0f", r.CPUPerReqUS)
		}
		mark := ""
		if !r.OK {
			mark = "FAIL"
		}
		faults := ""
		if r.FaultsPerReq > 0 {
			faults = fmt.Sprintf("%.1f", r.FaultsPerReq)
		}
		fmt.Printf("%-34s %10.1f %10s %8s %9s %9s %8d %4.0f%% %s\n", r.Flow, r.Rate, cpu, faults, ratio, target, r.Failed, 100*r.MachineBusy, mark)
	}
	mark := ""
	if !rssOK {
		mark = " FAIL"
	}
	lim := ""
	if limit > 0 {
		lim = fmt.Sprintf("; its soft memory limit at the end %.0f MiB", float64(limit)/(1<<20))
	}
	fmt.Printf("\nserver peak RSS %.1f MiB (target ≤ %d MiB), at the end %.1f MiB%s%s\n",
		float64(hwm)/1024, peakRSSTarget>>10, float64(rss)/1024, lim, mark)
	fmt.Println("ratios: each flow's rate over all its windows to its reference's at the same concurrency: /healthz's; the password grant's to raw argon2id; RS256's (tokens, signing path) to raw RSA-2048 signing; ES256's and EdDSA's to RS256's of the same kind")
	fmt.Println("cpu µs/req: the server's user + system time per request; faults: its minor page faults per request; busy: the whole machine's CPU in use during the flow's windows")
	return ok
}
