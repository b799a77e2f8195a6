package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/auth/admin"
	"github.com/gatehouse/gatehouse/client"
	"github.com/gatehouse/gatehouse/load"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// loadFlags bound and shape a load run.
type loadFlags struct {
	concurrency int
	duration    time.Duration
	requests    int64
	rate        float64
	timeout     time.Duration
	asJSON      bool
}

func (l *loadFlags) register(fs *pflag.FlagSet) {
	fs.IntVarP(&l.concurrency, "concurrency", "c", 32, "requests in flight at once, each on its own connection")
	fs.DurationVarP(&l.duration, "duration", "d", 10*time.Second, "stop sending after this long (0: only --requests bounds the run)")
	fs.Int64VarP(&l.requests, "requests", "n", 0, "stop after this many requests (0: only --duration bounds the run)")
	fs.Float64Var(&l.rate, "rate", 0, "send at most this many requests per second in all (0: as fast as the server answers)")
	fs.DurationVar(&l.timeout, "timeout", 30*time.Second, "give up on one request after this long")
	fs.BoolVar(&l.asJSON, "json", false, "print the report as JSON")
}

func (l *loadFlags) options() (load.Options, error) {
	switch {
	case l.concurrency < 1:
		return load.Options{}, &admin.InputError{Msg: fmt.Sprintf("--concurrency %d: must be at least 1", l.concurrency)}
	case l.duration < 0:
		return load.Options{}, &admin.InputError{Msg: fmt.Sprintf("--duration %s is negative", l.duration)}
	case l.requests < 0:
		return load.Options{}, &admin.InputError{Msg: fmt.Sprintf("--requests %d is negative", l.requests)}
	case l.duration == 0 && l.requests == 0:
		return load.Options{}, &admin.InputError{Msg: "--duration 0 needs --requests: a run must be bounded"}
	case l.rate < 0:
		return load.Options{}, &admin.InputError{Msg: fmt.Sprintf("--rate %g is negative", l.rate)}
	case l.timeout <= 0:
		return load.Options{}, &admin.InputError{Msg: fmt.Sprintf("--timeout %s: must be positive", l.timeout)}
	}
	return load.Options{Concurrency: l.concurrency, Duration: l.duration, Requests: l.requests, Rate: l.rate, Timeout: l.timeout}, nil
}

func newLoadCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Measure a server: token issuance or API calls under load",
		Long: `Send the same request over and over from many connections at once and report
the rate, the latency distribution, and every status and error seen. A run
is bounded by --duration (default 10s), --requests, or both.

The command exits with status 1 when any request failed (no response, a
status outside 2xx, or for "load token" a 2xx without a token), so it can
gate a script or a CI job.`,
	}
	cmd.AddCommand(newLoadTokenCmd(e), newLoadCallCmd(e))
	return cmd
}

func newLoadTokenCmd(e *env) *cobra.Command {
	var f identityFlags
	var l loadFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Request new tokens over and over",
		Long: `Request a new token over and over, with the flow and credentials that
"gatehouse token" would use (same flags and environment variables): P21 V2 or
V1 with a user or a consumer key, or the APX password grant (--apx, against
APX_TOKEN_URL: gatehouse's /oauth/token). No token is cached: every request
is a token request.

On a P21 server each token request creates a middleware session (a consumer
without a username is capped by the server's --max-sessions; a user is not).
Point it at gatehouse or a test server, not at a production P21 server.`,
		Example: `  export P21_BASE_URL=http://127.0.0.1:8080
  gatehouse load token --consumer-key-stdin -c 32 -d 10s < consumer.key
  P21_CONSUMER_KEY=… gatehouse load token -n 50000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := l.options()
			if err != nil {
				return err
			}
			cfg, err := f.config(e)
			if err != nil {
				return err
			}
			hc := loadClient(l.concurrency, cfg.InsecureSkipVerify && (cfg.Flow == client.FlowP21User || cfg.Flow == client.FlowP21Consumer))
			src, err := cfg.NewSource(client.WithLogger(e.clientLogger()), client.WithWarnings(e.stderr), client.WithUserAgent("gatehouse-load"), client.WithHTTPClient(hc))
			if err != nil {
				return &admin.InputError{Msg: err.Error()}
			}
			tr, ok := src.(client.TokenRequester)
			if !ok {
				return fmt.Errorf("the %s flow cannot be load tested", cfg.Flow)
			}
			base, err := tr.NewTokenRequest(cmd.Context())
			if err != nil {
				return &admin.InputError{Msg: err.Error()}
			}
			opts.Client = hc
			opts.Request = replay(base)
			opts.Check = hasToken
			return runLoad(cmd.Context(), e, l, opts, base)
		},
	}
	f.register(cmd.Flags())
	_ = cmd.Flags().MarkHidden("no-cache") // every request is a new token
	l.register(cmd.Flags())
	return cmd
}

func newLoadCallCmd(e *env) *cobra.Command {
	var f callFlags
	var l loadFlags
	cmd := &cobra.Command{
		Use:   "call METHOD PATH",
		Short: "Send an API request over and over with one token",
		Long: `Send METHOD PATH over and over, as "gatehouse call" would send it once (same
flags and environment variables: --data, -H, --ui), all with the one token
that "gatehouse call" would use (cached, or obtained once). Before the run
one request checks the token: a token that expires within the run, or that
the server refuses with 401, is renewed first. It is not renewed during the
run: a 401 then counts as a failure like any other status. When every
request fails, the command says why.

With the gateway this measures checked API calls end to end; with PATH
/auth/check and -H 'X-Forwarded-Uri: /api/…' it measures the forward-auth
decision alone.`,
		Example: `  gatehouse load call GET /api/entity/customers -c 32 -d 10s
  gatehouse load call GET /auth/check -H 'X-Forwarded-Uri: /api/entity/customers' --rate 5000 -d 30s`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := l.options()
			if err != nil {
				return err
			}
			cl, base, tok, err := f.request(cmd, e, args)
			if err != nil {
				return err
			}
			if base.GetBody == nil && base.Body != http.NoBody && base.Body != nil {
				return errors.New("the request body cannot be sent more than once")
			}
			opts.Client = loadClient(l.concurrency, false)
			if f.bearerEnv != "" {
				cl = nil // a token from the environment cannot be renewed
			}
			probe, err := checkToken(cmd.Context(), e, cl, opts.Client, base, tok, l.duration)
			if err != nil {
				return err
			}
			opts.Request = replay(base)
			err = runLoad(cmd.Context(), e, l, opts, base)
			if err != nil && lastResult != nil && lastResult.Requests > 0 && lastResult.Failed() == lastResult.Requests {
				return fmt.Errorf("%w: %s", err, explainFailures(lastResult, probe))
			}
			return err
		},
	}
	f.register(cmd.Flags())
	l.register(cmd.Flags())
	return cmd
}

// loadClient is the HTTP client of a run: as many idle connections as
// requests in flight, no compression (it would cost the client CPU the
// server's figures then lose).
func loadClient(concurrency int, insecure bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = concurrency
	tr.MaxIdleConnsPerHost = concurrency
	tr.DisableCompression = true
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // P21_VERIFY_SSL=false, warned about
	}
	return &http.Client{Transport: tr}
}

// replay returns copies of base, each with its own copy of the body.
func replay(base *http.Request) func(context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		r := base.Clone(ctx)
		if base.GetBody != nil {
			b, err := base.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = b
		}
		return r, nil
	}
}

// hasToken refuses a 2xx token response without a token in it (P21 sends
// errors with status 200 in some configurations).
func hasToken(status int, body []byte) error {
	if status < 200 || status > 299 {
		return nil
	}
	if bytes.Contains(body, []byte("AccessToken")) || bytes.Contains(body, []byte(`"access_token"`)) {
		return nil
	}
	return errors.New("a 2xx response without a token in it")
}

// loadReport is the JSON form of a run's result.
type loadReport struct {
	Method          string             `json:"method"`
	URL             string             `json:"url"`
	Concurrency     int                `json:"concurrency"`
	Rate            float64            `json:"rate_limit,omitempty"`
	Requests        int64              `json:"requests"`
	Failed          int64              `json:"failed"`
	ElapsedSeconds  float64            `json:"elapsed_seconds"`
	RequestsPerSec  float64            `json:"requests_per_second"`
	LatencyMillis   map[string]float64 `json:"latency_ms"`
	Status          map[string]int64   `json:"status"`
	Errors          map[string]int64   `json:"errors"`
	CheckFailures   map[string]int64   `json:"check_failures"`
	OK              bool               `json:"ok"`
	LatencyMeasured int64              `json:"latency_samples"`
}

// quantiles are the latency points a report shows.
var quantiles = []struct {
	name string
	q    float64
}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}}

func runLoad(ctx context.Context, e *env, l loadFlags, opts load.Options, base *http.Request) error {
	target := displayURL(base.URL.String())
	if !l.asJSON {
		bound := l.duration.String()
		switch {
		case l.requests > 0 && l.duration > 0:
			bound = fmt.Sprintf("%d requests or %s", l.requests, l.duration)
		case l.requests > 0:
			bound = fmt.Sprintf("%d requests", l.requests)
		}
		fmt.Fprintf(e.stderr, "%s %s: %d connections, %s\n", base.Method, target, opts.Concurrency, bound)
	}
	res, err := load.Run(ctx, opts)
	if err != nil {
		return err
	}
	lastResult = res
	if l.asJSON {
		writeLoadJSON(e.stdout, base.Method, target, opts, res)
	} else {
		writeLoadText(e.stdout, res)
	}
	if !res.OK() {
		if res.Requests == 0 {
			return errors.New("no request was sent")
		}
		return fmt.Errorf("%d of %d requests failed", res.Failed(), res.Requests)
	}
	return nil
}

func writeLoadJSON(w io.Writer, method, target string, opts load.Options, res *load.Result) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	lat := map[string]float64{"min": ms(res.Latency.Min()), "mean": ms(res.Latency.Mean()), "max": ms(res.Latency.Max())}
	for _, q := range quantiles {
		lat[q.name] = ms(res.Latency.Quantile(q.q))
	}
	st := map[string]int64{}
	for s, n := range res.Status {
		st[strconv.Itoa(s)] = n
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(loadReport{
		Method: method, URL: target, Concurrency: opts.Concurrency, Rate: opts.Rate,
		Requests: res.Requests, Failed: res.Failed(), ElapsedSeconds: res.Elapsed.Seconds(), RequestsPerSec: res.Rate(),
		LatencyMillis: lat, Status: st, Errors: res.Errors, CheckFailures: res.CheckFailures, OK: res.OK(),
		LatencyMeasured: res.Latency.Count(),
	})
}

func writeLoadText(w io.Writer, res *load.Result) {
	fmt.Fprintf(w, "  requests   %s in %.2fs: %s/s\n", group(res.Requests), res.Elapsed.Seconds(), groupFloat(res.Rate()))
	if res.Latency.Count() > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "mean %s", round(res.Latency.Mean()))
		for _, q := range quantiles {
			fmt.Fprintf(&b, "  %s %s", q.name, round(res.Latency.Quantile(q.q)))
		}
		fmt.Fprintf(&b, "  max %s", round(res.Latency.Max()))
		fmt.Fprintf(w, "  latency    %s\n", b.String())
	}
	if len(res.Status) > 0 {
		parts := make([]string, 0, len(res.Status))
		for _, s := range res.Statuses() {
			parts = append(parts, fmt.Sprintf("%d: %s", s, group(res.Status[s])))
		}
		fmt.Fprintf(w, "  status     %s\n", strings.Join(parts, ", "))
	}
	for _, part := range []struct {
		name string
		m    map[string]int64
	}{{"errors", res.Errors}, {"refused", res.CheckFailures}} {
		for _, msg := range sortedKeys(part.m) {
			fmt.Fprintf(w, "  %-10s %s × %s\n", part.name, group(part.m[msg]), msg)
		}
	}
}

// sortedKeys lists m's messages, most frequent first, then by message.
func sortedKeys(m map[string]int64) []string {
	out := slices.Collect(maps.Keys(m))
	slices.SortFunc(out, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

// round shows a latency to three significant digits.
func round(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func groupFloat(f float64) string {
	whole := int64(f)
	return fmt.Sprintf("%s.%d", group(whole), int64((f-float64(whole))*10))
}
