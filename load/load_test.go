package load

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []time.Duration{0, 1, 31, 32, 33, 63, 64, 65, 1000, time.Millisecond, time.Hour, 1<<63 - 1}
	for range 10000 {
		vals = append(vals, time.Duration(r.Int64N(int64(time.Minute))))
	}
	for _, v := range vals {
		i := bucket(v)
		if i < 0 || i >= nBuckets {
			t.Fatalf("bucket(%d) = %d, outside [0, %d)", v, i, nBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("%d is in bucket %d, whose range is [%d, %d]", v, i, lo, hi)
		}
		if hi-lo > lo/subCount {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its start", i, lo, hi, subCount)
		}
	}
	// Consecutive buckets tile the line.
	for i := 1; i < nBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h, a, b Histogram
	var samples []time.Duration
	for i := range 50000 {
		// A long-tailed mix: mostly around 2 ms, some up to 200 ms.
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		if i%100 == 0 {
			d *= 50
		}
		samples = append(samples, d)
		h.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	for _, x := range []*Histogram{&h, &a} {
		if x.Count() != int64(len(samples)) || x.Min() != samples[0] || x.Max() != samples[len(samples)-1] {
			t.Fatalf("count %d min %s max %s; want %d %s %s", x.Count(), x.Min(), x.Max(), len(samples), samples[0], samples[len(samples)-1])
		}
		if want := sum / time.Duration(len(samples)); x.Mean() != want {
			t.Errorf("mean %s, want %s", x.Mean(), want)
		}
		for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999} {
			want := samples[int(q*float64(len(samples))+0.5)-1]
			got := x.Quantile(q)
			if diff := (got - want).Abs(); diff > want/subCount+1 {
				t.Errorf("q%.3f = %s, want %s within 1/%d", q, got, want, subCount)
			}
		}
		if x.Quantile(0) != x.Min() || x.Quantile(1) != x.Max() {
			t.Errorf("q0 %s q1 %s, want min and max", x.Quantile(0), x.Quantile(1))
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 || empty.Count() != 0 {
		t.Error("an empty histogram reports samples")
	}
	empty.Merge(&Histogram{})
	empty.Record(-5)
	if empty.Min() != 0 || empty.Max() != 0 || empty.Count() != 1 {
		t.Errorf("a negative sample: min %s max %s count %d, want 0 0 1", empty.Min(), empty.Max(), empty.Count())
	}
}

// get returns an Options.Request for a GET of u.
func get(u string) func(context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
}

func TestRunCountsEveryRequest(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		switch n % 10 {
		case 0:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 1:
			io.WriteString(w, "no token here")
		default:
			io.WriteString(w, `{"AccessToken":"x"}`+strings.Repeat(" ", 100<<10))
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{
		Request:     get(srv.URL),
		Concurrency: 8,
		Requests:    1000,
		Check: func(status int, body []byte) error {
			if status == http.StatusOK && !strings.Contains(string(body), "AccessToken") {
				return errors.New("no token in the body")
			}
			return nil
		},
		MaxBody: 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1000 || served.Load() != 1000 {
		t.Fatalf("result counts %d requests, server saw %d; want 1000 each", res.Requests, served.Load())
	}
	if res.Status[200] != 900 || res.Status[503] != 100 || len(res.Status) != 2 {
		t.Errorf("statuses %v, want 900×200 and 100×503", res.Status)
	}
	if res.CheckFailures["no token in the body"] != 100 {
		t.Errorf("check failures %v, want 100", res.CheckFailures)
	}
	if res.Latency.Count() != 1000 || len(res.Errors) != 0 {
		t.Errorf("latency samples %d, errors %v", res.Latency.Count(), res.Errors)
	}
	if res.OK() || res.Failed() != 200 {
		t.Errorf("OK %t, Failed %d; want false, 200", res.OK(), res.Failed())
	}
	if got := res.Statuses(); !slices.Equal(got, []int{200, 503}) {
		t.Errorf("Statuses %v", got)
	}
	if res.Rate() <= 0 || res.Elapsed <= 0 {
		t.Errorf("rate %g over %s", res.Rate(), res.Elapsed)
	}
}

func TestRunWorkerIndex(t *testing.T) {
	const conc = 4
	var inFlight [conc]atomic.Int32
	var seen [conc]atomic.Int64
	var overlaps, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.Header.Get("X-Worker"))
		if err != nil || i < 0 || i >= conc {
			bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if inFlight[i].Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(100 * time.Microsecond) // widen the window an overlap would show in
		seen[i].Add(1)
		inFlight[i].Add(-1)
	}))
	defer srv.Close()
	var probes atomic.Int64
	res, err := Run(context.Background(), Options{
		Concurrency: conc,
		Requests:    400,
		Request: func(ctx context.Context) (*http.Request, error) {
			r, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if err != nil {
				return nil, err
			}
			if i, ok := Worker(ctx); ok {
				r.Header.Set("X-Worker", strconv.Itoa(i))
			} else {
				probes.Add(1)
			}
			return r, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Requests != 400 || bad.Load() != 0 {
		t.Fatalf("requests %d, statuses %v, without a worker index %d", res.Requests, res.Status, bad.Load())
	}
	if probes.Load() != 1 {
		t.Errorf("%d requests built without a worker index, want 1 (the probe)", probes.Load())
	}
	if overlaps.Load() != 0 {
		t.Errorf("%d requests of one worker overlapped another of the same worker", overlaps.Load())
	}
	var total int64
	for i := range seen {
		total += seen[i].Load()
	}
	if total != 400 {
		t.Errorf("server saw %d requests by worker, want 400", total)
	}
	if _, ok := Worker(context.Background()); ok {
		t.Error("Worker reports an index for a context Run did not make")
	}
}

func TestRunAllOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{Request: get(srv.URL), Concurrency: 50, Requests: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Requests != 7 || res.Status[204] != 7 || res.Failed() != 0 {
		t.Errorf("OK %t requests %d statuses %v", res.OK(), res.Requests, res.Status)
	}
}

func TestRunDurationBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond) // a slow server: each request takes a while
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{Request: get(srv.URL), Concurrency: 4, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed < 200*time.Millisecond || res.Elapsed > 20*time.Second {
		t.Errorf("a 200 ms run took %s", res.Elapsed)
	}
	if res.Requests == 0 || !res.OK() {
		t.Errorf("requests %d, statuses %v, errors %v", res.Requests, res.Status, res.Errors)
	}
}

func TestRunRatePaces(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	// 21 requests at 100/s: the last is due 200 ms after the first.
	res, err := Run(context.Background(), Options{Request: get(srv.URL), Concurrency: 4, Requests: 21, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 21 || res.Elapsed < 200*time.Millisecond {
		t.Errorf("%d requests in %s; want 21, no sooner than 200 ms", res.Requests, res.Elapsed)
	}
}

func TestRunTransportErrors(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Run(context.Background(), Options{Request: get("http://user:pw@" + addr + "/x?secret=1"), Concurrency: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 10 || res.Latency.Count() != 0 || len(res.Status) != 0 {
		t.Fatalf("requests %d, latency samples %d, statuses %v", res.Requests, res.Latency.Count(), res.Status)
	}
	var total int64
	for msg, n := range res.Errors {
		total += n
		if strings.Contains(msg, "secret") || strings.Contains(msg, "pw@") {
			t.Errorf("error message shows the URL: %q", msg)
		}
		if !strings.Contains(msg, "refused") {
			t.Errorf("error %q does not say the connection was refused", msg)
		}
	}
	if total != 10 || res.OK() {
		t.Errorf("errors %v, OK %t", res.Errors, res.OK())
	}

	// A server that drops every connection.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer srv.Close()
	res, err = Run(context.Background(), Options{Request: get(srv.URL), Concurrency: 3, Requests: 9})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 9 || res.Failed() != 9 {
		t.Errorf("requests %d failed %d errors %v", res.Requests, res.Failed(), res.Errors)
	}
}

func TestRunTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	res, err := Run(context.Background(), Options{Request: get(srv.URL), Concurrency: 2, Requests: 2, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["timeout"] != 2 {
		t.Errorf("errors %v, want 2 timeouts", res.Errors)
	}
}

func TestRunCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := Run(ctx, Options{Request: get(srv.URL), Concurrency: 4, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Elapsed > 30*time.Second {
		t.Fatalf("a cancelled run took %s", res.Elapsed)
	}
	if len(res.Errors) != 0 {
		t.Errorf("cancelled requests counted as errors: %v", res.Errors)
	}
}

func TestRunErrorsCapped(t *testing.T) {
	var n atomic.Int64
	res, err := Run(context.Background(), Options{
		Request: func(ctx context.Context) (*http.Request, error) {
			if n.Add(1) == 1 {
				return http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/", nil)
			}
			return nil, errors.New("request " + strings.Repeat("x", int(n.Load()%50)))
		},
		Requests: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > maxDistinct+1 || res.Errors[otherErrors] == 0 || res.Requests != 200 {
		t.Errorf("%d distinct errors (other: %d), %d requests", len(res.Errors), res.Errors[otherErrors], res.Requests)
	}
}

func TestOptionsRefused(t *testing.T) {
	req := get("http://127.0.0.1:1/")
	for name, o := range map[string]Options{
		"no request":        {Requests: 1},
		"unbounded":         {Request: req},
		"negative count":    {Request: req, Requests: -1},
		"negative duration": {Request: req, Duration: -time.Second},
		"negative conc":     {Request: req, Requests: 1, Concurrency: -2},
		"negative rate":     {Request: req, Requests: 1, Rate: -1},
		"negative timeout":  {Request: req, Requests: 1, Timeout: -1},
		"unbuildable": {Requests: 1, Request: func(context.Context) (*http.Request, error) {
			return nil, errors.New("no URL")
		}},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
