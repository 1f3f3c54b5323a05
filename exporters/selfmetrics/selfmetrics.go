// Package selfmetrics holds the metrics every exporter reports about
// itself: sends, drops and queue depth, labelled by exporter name.
package selfmetrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics are shared by all exporters of one agent.
type Metrics struct {
	sends   *prometheus.CounterVec
	dropped *prometheus.CounterVec
	queue   *prometheus.GaugeVec
}

// New registers the exporter self-metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeprobe_exporter_sends_total",
			Help: "Requests an exporter made to its backend, by result (success, error, retry).",
		}, []string{"exporter", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeprobe_exporter_dropped_total",
			Help: "Samples or data points an exporter gave up on (buffer full, too old, shutdown deadline).",
		}, []string{"exporter"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgeprobe_exporter_queue_depth",
			Help: "Items waiting in an exporter's buffer.",
		}, []string{"exporter"}),
	}
	reg.MustRegister(m.sends, m.dropped, m.queue)
	return m
}

// For returns the metrics of one exporter, so its code need not repeat its
// name. The series exist from the start (at zero), so rates work at once.
func (m *Metrics) For(exporter string) *Exporter {
	e := &Exporter{
		success: m.sends.WithLabelValues(exporter, "success"),
		errors:  m.sends.WithLabelValues(exporter, "error"),
		retries: m.sends.WithLabelValues(exporter, "retry"),
		dropped: m.dropped.WithLabelValues(exporter),
		queue:   m.queue.WithLabelValues(exporter),
	}
	return e
}

// Exporter is one exporter's view of the self-metrics.
type Exporter struct {
	success, errors, retries prometheus.Counter
	dropped                  prometheus.Counter
	queue                    prometheus.Gauge
}

// Sent counts one request to the backend: ok, failed for good, or to be retried.
func (e *Exporter) Sent(err error, retry bool) {
	switch {
	case err == nil:
		e.success.Inc()
	case retry:
		e.retries.Inc()
	default:
		e.errors.Inc()
	}
}

// Dropped counts n items given up on.
func (e *Exporter) Dropped(n int) { e.dropped.Add(float64(n)) }

// Queue sets the number of items waiting.
func (e *Exporter) Queue(n int) { e.queue.Set(float64(n)) }
