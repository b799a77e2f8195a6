// Package load sends one HTTP request over and over, from many connections
// at once, and reports the rate, the latency distribution, and every status
// and error seen: the engine of "gatehouse load". A run is always bounded,
// by a duration, a number of requests, or both.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe a run.
type Options struct {
	// Request returns the request to send; it is called once per request,
	// from several goroutines at once, with the context the request must
	// carry. Worker(ctx) tells which worker the request is for (each
	// sends one request at a time), so that each can keep to credentials
	// of its own.
	Request func(ctx context.Context) (*http.Request, error)
	// Concurrency is the number of requests in flight at once, each on its
	// own connection (default 1).
	Concurrency int
	// Duration stops the run after this long: no request starts later, and
	// the ones in flight are waited for (0: no time limit).
	Duration time.Duration
	// Requests stops the run after this many requests (0: no limit).
	// Duration or Requests must be set.
	Requests int64
	// Rate paces the run at this many requests per second over all
	// connections (0: as fast as the server answers).
	Rate float64
	// Timeout bounds each request (default 30 s).
	Timeout time.Duration
	// Client sends the requests (default: one made for the run, with
	// Concurrency idle connections, redirects not followed).
	Client *http.Client
	// Check, when set, is given the status and the start of the body
	// (MaxBody bytes) of every response; its errors are counted, by
	// message, in Result.CheckFailures.
	Check func(status int, body []byte) error
	// MaxBody is how much of each body is kept for Check (default 64 KiB);
	// the rest is read and dropped.
	MaxBody int
}

// maxDistinct bounds how many different error messages a result keeps.
const maxDistinct = 20

// otherErrors is the key under which messages beyond maxDistinct count.
const otherErrors = "(other errors)"

// Result is what a run saw.
type Result struct {
	// Requests is the number of requests that got a response or failed.
	Requests int64
	// Elapsed runs from the first request sent to the last one finished.
	Elapsed time.Duration
	// Status counts the responses by HTTP status.
	Status map[int]int64
	// Errors counts the requests that got no response, by message.
	Errors map[string]int64
	// CheckFailures counts the responses Options.Check refused, by message.
	CheckFailures map[string]int64
	// Latency is the distribution of the time to a whole response (body
	// read), over the requests that got one.
	Latency Histogram
}

// Rate is the number of requests per second over the run.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// OK reports whether every request got a 2xx response that passed the
// check, and there was at least one.
func (r *Result) OK() bool {
	if r.Requests == 0 || len(r.Errors) > 0 || len(r.CheckFailures) > 0 {
		return false
	}
	for s := range r.Status {
		if s < 200 || s > 299 {
			return false
		}
	}
	return true
}

// Failed is the number of requests that were not a checked 2xx.
func (r *Result) Failed() int64 {
	var n int64
	for s, c := range r.Status {
		if s < 200 || s > 299 {
			n += c
		}
	}
	for _, c := range r.Errors {
		n += c
	}
	for _, c := range r.CheckFailures {
		n += c
	}
	return n
}

// Statuses lists the statuses seen, in order.
func (r *Result) Statuses() []int {
	out := make([]int, 0, len(r.Status))
	for s := range r.Status {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

func (o *Options) validate() error {
	switch {
	case o.Request == nil:
		return errors.New("load: no request to send")
	case o.Concurrency < 0:
		return fmt.Errorf("load: concurrency %d is negative", o.Concurrency)
	case o.Duration < 0:
		return fmt.Errorf("load: duration %s is negative", o.Duration)
	case o.Requests < 0:
		return fmt.Errorf("load: request count %d is negative", o.Requests)
	case o.Duration == 0 && o.Requests == 0:
		return errors.New("load: a run needs a duration or a request count")
	case o.Rate < 0:
		return fmt.Errorf("load: rate %g is negative", o.Rate)
	case o.Timeout < 0:
		return fmt.Errorf("load: timeout %s is negative", o.Timeout)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.Requests > 0 && int64(o.Concurrency) > o.Requests {
		o.Concurrency = int(o.Requests)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	return nil
}

// Run makes the run that o describes. Its error is about o itself (or the
// first request failing to build); what the server answers is in the
// result. Cancelling ctx ends the run early, with the result so far.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	// A request that cannot be built would fail every time: say so once.
	probe, err := o.Request(ctx)
	if err != nil {
		return nil, fmt.Errorf("load: building the request: %w", err)
	}
	if probe.Body != nil {
		probe.Body.Close()
	}
	hc := o.Client
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.Concurrency
		tr.MaxIdleConns = o.Concurrency
		tr.DisableCompression = true
		hc = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	c := *hc
	c.Timeout = o.Timeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// Requests in flight when the duration ends are waited for; ctx (the
	// caller's) cancels them.
	stop := make(chan struct{})
	var stopOnce sync.Once
	end := func() { stopOnce.Do(func() { close(stop) }) }
	start := time.Now()
	if o.Duration > 0 {
		t := time.AfterFunc(o.Duration, end)
		defer t.Stop()
	}
	go func() {
		select {
		case <-ctx.Done():
			end()
		case <-stop:
		}
	}()

	var claimed atomic.Int64
	workers := make([]*worker, o.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{o: &o, c: &c, buf: make([]byte, 32<<10), status: map[int]int64{}}
		workers[i] = w
		wctx := context.WithValue(ctx, workerKey{}, i)
		wg.Go(func() { w.run(wctx, stop, start, &claimed) })
	}
	wg.Wait()
	end()

	r := &Result{Elapsed: time.Since(start), Status: map[int]int64{}, Errors: map[string]int64{}, CheckFailures: map[string]int64{}}
	for _, w := range workers {
		r.Requests += w.n
		for s, n := range w.status {
			r.Status[s] += n
		}
		for m, n := range w.errors {
			addCapped(r.Errors, m, n)
		}
		for m, n := range w.checks {
			addCapped(r.CheckFailures, m, n)
		}
		r.Latency.Merge(&w.lat)
	}
	return r, nil
}

// workerKey is the context key under which Run puts a worker's index.
type workerKey struct{}

// Worker returns the index (0 to Concurrency-1) of the worker a request is
// built for, from the context Run passes to Options.Request. A worker
// sends one request at a time, so requests with the same index never
// overlap. ok is false for any other context, such as the one of the probe
// request Run builds once before the workers start.
func Worker(ctx context.Context) (i int, ok bool) {
	i, ok = ctx.Value(workerKey{}).(int)
	return i, ok
}

// addCapped counts n under msg, or under otherErrors once m holds
// maxDistinct other messages.
func addCapped(m map[string]int64, msg string, n int64) {
	if _, ok := m[msg]; !ok {
		distinct := len(m)
		if _, ok := m[otherErrors]; ok {
			distinct--
		}
		if distinct >= maxDistinct {
			msg = otherErrors
		}
	}
	m[msg] += n
}

// worker sends requests one after another on its own connection, keeping
// its own counts (merged at the end) so that workers share nothing but the
// claim counter.
type worker struct {
	o      *Options
	c      *http.Client
	buf    []byte
	body   []byte
	n      int64
	status map[int]int64
	errors map[string]int64
	checks map[string]int64
	lat    Histogram
}

func (w *worker) run(ctx context.Context, stop <-chan struct{}, start time.Time, claimed *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		k := claimed.Add(1)
		if w.o.Requests > 0 && k > w.o.Requests {
			return
		}
		if w.o.Rate > 0 {
			// Request k (from 1) is due at (k-1)/Rate after the start.
			due := start.Add(time.Duration(float64(k-1) / w.o.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		w.one(ctx)
	}
}

// one sends one request and counts what came of it.
func (w *worker) one(ctx context.Context) {
	req, err := w.o.Request(ctx)
	if err != nil {
		w.fail(fmt.Sprintf("building the request: %v", err))
		return
	}
	t0 := time.Now()
	resp, err := w.c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the run was cancelled: not the server's failure
		}
		w.fail(describe(err))
		return
	}
	w.body = w.body[:0]
	err = w.read(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		w.fail("reading the response: " + describe(err))
		return
	}
	w.n++
	w.status[resp.StatusCode]++
	w.lat.Record(d)
	if w.o.Check != nil {
		if err := w.o.Check(resp.StatusCode, w.body); err != nil {
			if w.checks == nil {
				w.checks = map[string]int64{}
			}
			addCapped(w.checks, err.Error(), 1)
		}
	}
}

// read reads the whole body, keeping its first MaxBody bytes for Check.
func (w *worker) read(r io.Reader) error {
	for {
		n, err := r.Read(w.buf)
		if w.o.Check != nil && len(w.body) < w.o.MaxBody {
			w.body = append(w.body, w.buf[:min(n, w.o.MaxBody-len(w.body))]...)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (w *worker) fail(msg string) {
	w.n++
	if w.errors == nil {
		w.errors = map[string]int64{}
	}
	addCapped(w.errors, msg, 1)
}

// describe words a transport error without the URL (url.Error repeats it,
// query and user info included) and without what varies per connection
// (local ports), so that the same failure counts under one message.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout"
		}
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		msg := oe.Op
		if oe.Err != nil {
			msg += ": " + oe.Err.Error()
		}
		return msg
	}
	return err.Error()
}
