package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus metrics of one server, in their own registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	access   *prometheus.CounterVec
}

// NewMetrics registers the server's metrics. activeSessions, when not nil,
// is asked (at most every 10 s) for the number of active sessions.
func NewMetrics(activeSessions func(context.Context) (int, error)) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_tokens_total", Help: "Token requests by flow (p21.v2.consumer, oauth.password, …; <endpoint>.unknown when refused before the flow was known) and outcome (issued, refused, invalid, limited, error).",
		}, []string{"flow", "outcome"}),
	}
	m.access = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_access_decisions_total",
		Help: "Bearer-checked requests (gateway, /auth/check) by API family and outcome.",
	}, []string{"family", "outcome"})
	m.reg.MustRegister(m.requests, m.latency, m.tokens, m.access,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if activeSessions != nil {
		var (
			mu     sync.Mutex
			last   time.Time
			cached float64
		)
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_active_sessions", Help: "Sessions not ended and not expired (refreshed at most every 10 s).",
		}, func() float64 {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) > 10*time.Second {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				n, err := activeSessions(ctx)
				cancel()
				if err == nil {
					cached, last = float64(n), time.Now()
				}
			}
			return cached
		}))
	}
	return m
}

// Token counts a token request.
func (m *Metrics) Token(flow, outcome string) { m.tokens.WithLabelValues(flow, outcome).Inc() }

// WriteStatser is a store that reports its commits (the SQLite store).
type WriteStatser interface {
	WriteStats() (commits, ops int64)
}

// ObserveStore exports a store's write statistics, when it has them.
func (m *Metrics) ObserveStore(st any) {
	ws, ok := st.(WriteStatser)
	if !ok {
		return
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gatehouse_store_commits_total", Help: "Write transactions committed by the embedded store.",
	}, func() float64 { c, _ := ws.WriteStats(); return float64(c) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gatehouse_store_write_ops_total", Help: "Write operations carried by those transactions (ops/commits is the group-commit batch size).",
	}, func() float64 { _, o := ws.WriteStats(); return float64(o) }))
}

// Gateway counts an access decision; family is "" when the request was
// refused before its family was known.
func (m *Metrics) Gateway(family, outcome string) { m.access.WithLabelValues(family, outcome).Inc() }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry lets other parts register their own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// methodLabel keeps the label set bounded whatever methods clients invent.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
