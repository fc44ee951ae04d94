package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is NoChat's Prometheus registry. It is the chat hub's Observer,
// counting commits, broadcasts and errors as they happen; gauges are read
// from the hub and the store at scrape time.
type Metrics struct {
	reg       *prometheus.Registry
	commits   *prometheus.HistogramVec
	broadcast prometheus.Histogram
	delivered prometheus.Counter
	errors    *prometheus.CounterVec
}

// NewMetrics makes the registry, with the Go runtime and process metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nochat_db_commit_seconds",
			Help:    "Time to write and commit one transaction of messages, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"result"}),
		broadcast: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nochat_broadcast_seconds",
			Help:    "Time to hand a committed batch of messages to every live connection.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nochat_messages_broadcast_total",
			Help: "Messages stored and broadcast since start.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nochat_errors_total",
			Help: "Entries in the recent-errors log, by kind.",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commits, m.broadcast, m.delivered, m.errors,
	)
	return m
}

// Committed observes one transaction of the writer.
func (m *Metrics) Committed(_ int, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commits.WithLabelValues(result).Observe(took.Seconds())
}

// Broadcast observes new messages handed to the live connections.
func (m *Metrics) Broadcast(n int, took time.Duration) {
	m.delivered.Add(float64(n))
	m.broadcast.Observe(took.Seconds())
}

// Error counts an entry in the error log.
func (m *Metrics) Error(kind string) { m.errors.WithLabelValues(kind).Inc() }

type counter interface {
	Count(ctx context.Context) (int64, error)
}

type onlineCounter interface {
	Online() int
}

// handler registers the gauges read at scrape time and serves the registry.
func (m *Metrics) handler(hub onlineCounter, store counter) http.Handler {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nochat_connections",
			Help: "Open WebSocket connections.",
		}, func() float64 { return float64(hub.Online()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nochat_messages_stored",
			Help: "Messages in the database.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, _ := store.Count(ctx)
			return float64(n)
		}),
	)
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
