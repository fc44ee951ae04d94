package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"nochat/db"
)

// Metrics is NoChat's Prometheus registry. It is the chat hub's Observer,
// counting commits, broadcasts and errors as they happen; gauges are read
// from the hub and the store at scrape time.
type Metrics struct {
	reg       *prometheus.Registry
	commits   *prometheus.HistogramVec
	inCommit  prometheus.Histogram
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
		inCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "nochat_db_commit_sync_seconds",
			Help:    "Time inside COMMIT (the WAL's write and fsync) of one transaction of messages, part of nochat_db_commit_seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
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
		m.commits, m.inCommit, m.broadcast, m.delivered, m.errors,
	)
	return m
}

// Committed observes one transaction of the writer.
func (m *Metrics) Committed(_ int, took, inCommit time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commits.WithLabelValues(result).Observe(took.Seconds())
	if err == nil {
		m.inCommit.Observe(inCommit.Seconds())
	}
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
	CheckpointStats() db.CheckpointStats
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
	m.reg.MustRegister(checkpoints{store})
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// checkpoints reports the store's WAL checkpoints (run off the writer's
// commit, by the db package's checkpointer) at scrape time.
type checkpoints struct{ store counter }

var (
	checkpointRuns = prometheus.NewDesc("nochat_db_checkpoints_total",
		"WAL checkpoints run off the writer's commit, by mode (passive while busy, restart when passive cannot catch up, truncate when idle).", []string{"mode"}, nil)
	checkpointIncomplete = prometheus.NewDesc("nochat_db_checkpoints_incomplete_total",
		"WAL checkpoints that did not copy the whole WAL, by reason (partial: a reader needed it; error).", []string{"reason"}, nil)
	checkpointSeconds = prometheus.NewDesc("nochat_db_checkpoint_seconds_total",
		"Time spent in WAL checkpoints.", nil, nil)
	checkpointLongest = prometheus.NewDesc("nochat_db_checkpoint_longest_seconds",
		"The longest WAL checkpoint since start.", nil, nil)
	walBytes = prometheus.NewDesc("nochat_db_wal_bytes",
		"Size of the WAL file when the checkpointer last looked.", nil, nil)
)

// Describe implements prometheus.Collector.
func (checkpoints) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{checkpointRuns, checkpointIncomplete, checkpointSeconds, checkpointLongest, walBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c checkpoints) Collect(ch chan<- prometheus.Metric) {
	st := c.store.CheckpointStats()
	for _, mode := range []string{db.Passive, db.Restart, db.Truncate} {
		ch <- prometheus.MustNewConstMetric(checkpointRuns, prometheus.CounterValue, float64(st.Runs[mode]), mode)
	}
	ch <- prometheus.MustNewConstMetric(checkpointIncomplete, prometheus.CounterValue, float64(st.Partial), "partial")
	ch <- prometheus.MustNewConstMetric(checkpointIncomplete, prometheus.CounterValue, float64(st.Failed), "error")
	ch <- prometheus.MustNewConstMetric(checkpointSeconds, prometheus.CounterValue, st.Seconds)
	ch <- prometheus.MustNewConstMetric(checkpointLongest, prometheus.GaugeValue, st.Longest.Seconds())
	ch <- prometheus.MustNewConstMetric(walBytes, prometheus.GaugeValue, float64(st.WALBytes))
}
