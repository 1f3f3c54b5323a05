// Package remotewrite sends the agent's series to a Prometheus remote write
// 1.0 receiver (Prometheus with --web.enable-remote-write-receiver, Amazon
// Managed Service for Prometheus with SigV4, Mimir, Thanos, ...), for probes
// that cannot be scraped.
//
// Every interval it gathers the agent's registry (the same series /metrics
// serves), stamps them with the gather time and queues them as one batch.
// Batches are sent oldest first, so each series' timestamps only grow; while
// the receiver is down they wait in a queue bounded by count, age and bytes,
// and are retried with exponential backoff and jitter. What the queue has
// to give up is counted (edgeprobe_exporter_dropped_total) and logged once
// per interval.
//
// Histograms go out as classic buckets (_bucket{le}, _sum, _count); their
// native part is not sent (see encode.go for why).
package remotewrite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/edgeprobe/edgeprobe/exporters/outbound"
	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Name is the exporter label of this sink's self-metrics.
const Name = "remote_write"

// Defaults of Options and the config.
const (
	DefaultInterval            = 15 * time.Second
	DefaultMaxBatches          = 100
	DefaultMaxAge              = 10 * time.Minute
	DefaultMaxBytes            = 64 << 20
	DefaultMaxSeriesPerRequest = 2000
	DefaultRequestTimeout      = 30 * time.Second
	DefaultMinBackoff          = time.Second
	DefaultMaxBackoff          = time.Minute
)

// Options are what the config file does not say. Zero values take the
// defaults above.
type Options struct {
	// Gatherer is the agent's registry (required).
	Gatherer prometheus.Gatherer
	// Metrics receive the self-metrics; nil keeps them private.
	Metrics *selfmetrics.Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ExternalLabels are added to every series that lacks a label of the
	// same name (as Prometheus' external_labels), e.g. job or instance.
	ExternalLabels map[string]string

	MaxBatches          int           // gathers kept while the receiver is down
	MaxAge              time.Duration // older batches are dropped
	MaxBytes            int           // encoded bytes kept (the newest batch is always kept)
	MaxSeriesPerRequest int
	RequestTimeout      time.Duration
	MinBackoff          time.Duration // first retry delay; doubles up to MaxBackoff, with jitter
	MaxBackoff          time.Duration
}

// Sink is the remote write exporter. Run sends periodically; Flush sends
// once more. Both are safe to call concurrently.
type Sink struct {
	api       *remote.API
	transport *http.Transport
	gatherer  prometheus.Gatherer
	m         *selfmetrics.Exporter
	log       *slog.Logger
	interval  time.Duration
	extra     []label
	rawURL    string // the write URL as requests carry it (no user info)
	logURL    string // the same, redacted for logs and errors
	o         Options

	// sem admits one sender (Run's cycle or Flush) at a time; a semaphore
	// rather than a mutex so that Flush gives up when its context ends.
	sem *semaphore.Weighted

	// Guarded by sem.
	queue           []*batch
	queued          int // samples in queue
	queuedBytes     int
	lastTS          int64
	failures        int // consecutive retryable failures
	nextTry         time.Time
	droppedFull     int // samples dropped since the last log, by reason
	droppedAge      int
	droppedRejected int
}

type batch struct {
	at   time.Time // gather time
	reqs []*writeRequest
}

// New builds the sink. ctx bounds loading AWS credentials when cfg asks for
// SigV4 (the SDK's default chain: env, shared files, SSO, IMDS, ...).
func New(ctx context.Context, cfg probe.RemoteWriteConfig, o Options) (*Sink, error) {
	if o.Gatherer == nil {
		return nil, errors.New("remote write: no gatherer")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("remote write: url: %w", parseErr(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("remote write: url %q: want http(s)://host/path", outbound.RedactURL(u))
	}
	if err := checkHeaders(cfg, u); err != nil {
		return nil, err
	}
	setDefaults(&o)
	if o.Metrics == nil {
		o.Metrics = selfmetrics.New(prometheus.NewRegistry())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	interval := cfg.Interval.D()
	if interval <= 0 {
		interval = DefaultInterval
	}

	base := http.DefaultTransport.(*http.Transport).Clone()
	var rt http.RoundTripper = base
	if cfg.SigV4 != nil {
		st, err := newSigV4Transport(ctx, base, cfg.SigV4.Region, cfg.SigV4.Service)
		if err != nil {
			return nil, err
		}
		rt = st
	}
	// Credentials leave the URL for a header, so no error text carries them.
	rt = &headerTransport{next: rt, headers: cfg.Headers, user: u.User}
	clean := *u
	clean.User = nil
	api, err := remote.NewAPI(clean.String(),
		remote.WithAPIHTTPClient(&http.Client{Transport: rt}),
		remote.WithAPIPath(""), // the configured URL is the write endpoint
		// One quick retry inside a request; the queue does the patient
		// retrying across intervals.
		remote.WithAPIBackoff(remote.BackoffConfig{Min: 200 * time.Millisecond, Max: time.Second, MaxRetries: 1}),
	)
	if err != nil {
		return nil, fmt.Errorf("remote write: %w", err)
	}

	var extra []label
	for k, v := range o.ExternalLabels {
		if v != "" {
			extra = append(extra, label{k, v})
		}
	}
	slices.SortFunc(extra, func(a, b label) int { return strings.Compare(a.name, b.name) })

	s := &Sink{
		api: api, transport: base, gatherer: o.Gatherer, m: o.Metrics.For(Name),
		log:    o.Logger.With("exporter", Name, "url", outbound.RedactURL(u)),
		rawURL: clean.String(), logURL: outbound.RedactURL(u),
		interval: interval, extra: extra, o: o, sem: semaphore.NewWeighted(1),
	}
	s.log.Info("remote write configured", "interval", interval, "sigv4", cfg.SigV4 != nil, "headers", len(cfg.Headers))
	return s, nil
}

// checkHeaders refuses extra headers that would break the protocol or
// fight the configured authentication.
func checkHeaders(cfg probe.RemoteWriteConfig, u *url.URL) error {
	for k := range cfg.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "Content-Length":
			return fmt.Errorf("remote write: header %s is set by the protocol; remove it from headers", k)
		case "Authorization":
			if cfg.SigV4 != nil || u.User != nil {
				return fmt.Errorf("remote write: header %s conflicts with sigv4 or credentials in the URL; use one", k)
			}
		}
		if cfg.SigV4 != nil && strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Amz-") {
			return fmt.Errorf("remote write: header %s is set by SigV4 signing; remove it from headers", k)
		}
	}
	return nil
}

// setDefaults fills the options left zero.
func setDefaults(o *Options) {
	o.MaxBatches = cmp.Or(o.MaxBatches, DefaultMaxBatches)
	o.MaxBytes = cmp.Or(o.MaxBytes, DefaultMaxBytes)
	o.MaxSeriesPerRequest = cmp.Or(o.MaxSeriesPerRequest, DefaultMaxSeriesPerRequest)
	o.MaxAge = cmp.Or(o.MaxAge, DefaultMaxAge)
	o.RequestTimeout = cmp.Or(o.RequestTimeout, DefaultRequestTimeout)
	o.MinBackoff = cmp.Or(o.MinBackoff, DefaultMinBackoff)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, DefaultMaxBackoff)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
}

// Write does nothing: the series come from the Gatherer, which the
// Prometheus exporter keeps up to date.
func (s *Sink) Write(context.Context, *probe.Sample) {}

// Run gathers and sends at once and then every interval, until ctx ends.
// Queued batches stay for Flush.
func (s *Sink) Run(ctx context.Context) error {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()

	s.cycle(ctx, true, retry)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s.cycle(ctx, true, retry)
		case <-retry.C:
			s.cycle(ctx, false, retry)
		}
	}
}

// cycle gathers (on a tick) and sends what is due, arming retry when the
// receiver failed.
func (s *Sink) cycle(ctx context.Context, gather bool, retry *time.Timer) {
	if s.sem.Acquire(ctx, 1) != nil {
		return
	}
	defer s.sem.Release(1)
	if gather {
		s.collect(time.Now())
		s.logDrops()
	}
	if wait := time.Until(s.nextTry); wait > 0 {
		retry.Reset(wait) // still backing off; the timer sends
		return
	}
	if err := s.send(ctx); err != nil && ctx.Err() == nil && len(s.queue) > 0 {
		retry.Reset(time.Until(s.nextTry))
	}
}

// Flush gathers once more and sends everything queued, ignoring the
// backoff (it is the last chance before shutdown or reload), within ctx.
func (s *Sink) Flush(ctx context.Context) error {
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("remote write: flush: %w", err)
	}
	defer s.sem.Release(1)
	s.collect(time.Now())
	s.logDrops()
	if err := s.send(ctx); err != nil {
		return fmt.Errorf("remote write: flush: %d samples still queued: %w", s.queued, err)
	}
	return nil
}

// Close releases idle connections. Call it after Run has returned.
func (s *Sink) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// collect gathers the registry into a new batch and trims the queue.
func (s *Sink) collect(now time.Time) {
	fams, err := s.gatherer.Gather()
	if err != nil {
		// Gather returns what it could; send that.
		s.log.Warn("gather incomplete", "err", err)
	}
	// Strictly increasing timestamps: two gathers within a millisecond
	// must not collide (a receiver rejects a changed value at the same time).
	ts := now.UnixMilli()
	if ts <= s.lastTS {
		ts = s.lastTS + 1
	}
	s.lastTS = ts
	ss, md := convert(fams, ts, s.extra)
	if len(ss) == 0 {
		return
	}
	b := &batch{at: now, reqs: encode(ss, md, s.o.MaxSeriesPerRequest)}
	s.expire(now)
	for _, r := range b.reqs {
		s.queued += r.samples
		s.queuedBytes += r.Size()
	}
	s.queue = append(s.queue, b)
	for len(s.queue) > s.o.MaxBatches || (s.queuedBytes > s.o.MaxBytes && len(s.queue) > 1) {
		s.droppedFull += s.dropOldest()
	}
	s.m.Queue(s.queued)
}

// expire drops batches older than MaxAge: receivers refuse old samples
// anyway, and they would delay the fresh ones.
func (s *Sink) expire(now time.Time) {
	for len(s.queue) > 0 && now.Sub(s.queue[0].at) > s.o.MaxAge {
		s.droppedAge += s.dropOldest()
	}
}

func (s *Sink) dropOldest() int {
	n := 0
	for _, r := range s.queue[0].reqs {
		n += s.popRequest(r)
	}
	s.queue[0] = nil
	s.queue = s.queue[1:]
	s.m.Dropped(n)
	return n
}

// popRequest takes r's samples off the queue's totals.
func (s *Sink) popRequest(r *writeRequest) int {
	s.queued -= r.samples
	s.queuedBytes -= r.Size()
	return r.samples
}

// send writes queued requests oldest first until the queue is empty or
// the receiver fails in a way worth retrying; a request the receiver
// refuses for good (4xx) is dropped.
func (s *Sink) send(ctx context.Context) error {
	rejected, lastReject := 0, error(nil)
	defer func() {
		s.m.Queue(s.queued)
		if rejected > 0 {
			// One line per send, however many requests were refused.
			s.log.Error("remote write rejected requests; dropped", "requests", rejected, "last_err", lastReject)
		}
	}()
	s.expire(time.Now())
	for len(s.queue) > 0 {
		b := s.queue[0]
		for len(b.reqs) > 0 {
			r := b.reqs[0]
			retry, err := s.write(ctx, r)
			s.m.Sent(err, retry)
			if err != nil && retry {
				s.failures++
				s.nextTry = time.Now().Add(outbound.Backoff(s.o.MinBackoff, s.o.MaxBackoff, s.failures))
				if ctx.Err() != nil {
					return err // shutdown or Flush deadline: queued for whoever sends next
				}
				if s.failures == 1 {
					s.log.Warn("remote write failed; queueing and retrying", "err", err, "queued_samples", s.queued)
				} else {
					s.log.Debug("remote write retry failed", "err", err, "failures", s.failures, "queued_samples", s.queued)
				}
				return err
			}
			if err != nil {
				s.droppedRejected += r.samples
				s.m.Dropped(r.samples)
				rejected, lastReject = rejected+1, err
			} else if s.failures > 0 {
				s.log.Info("remote write recovered", "failures", s.failures, "queued_samples", s.queued-r.samples)
				s.failures = 0
				s.nextTry = time.Time{}
			}
			s.popRequest(r)
			b.reqs[0] = nil
			b.reqs = b.reqs[1:]
		}
		s.queue[0] = nil
		s.queue = s.queue[1:]
	}
	return nil
}

// write sends one request and says whether a failure is worth retrying:
// network errors, timeouts, 5xx and 429 are; other statuses are not.
func (s *Sink) write(ctx context.Context, r *writeRequest) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	defer cancel()
	retried := false // the API retries retryable failures once
	_, err = s.api.Write(ctx, remote.WriteV1MessageType, r,
		remote.WithWriteRetryCallback(func(error) { retried = true }))
	if err == nil {
		return false, nil
	}
	var ue *url.Error
	retry = retried || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	return retry, &redactedError{err: err, secret: s.rawURL, shown: s.logURL}
}

// redactedError replaces the write URL in an error's text with its logged
// form: Go's HTTP client quotes the full URL, query tokens included, and the
// remote API wraps that error where errors.As cannot reach it.
type redactedError struct {
	err           error
	secret, shown string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	if e.secret != e.shown {
		msg = strings.ReplaceAll(msg, e.secret, e.shown)
	}
	return "remote write: " + msg
}

func (e *redactedError) Unwrap() error { return e.err }

// logDrops reports, once per gather, what the queue gave up since the last
// report.
func (s *Sink) logDrops() {
	if s.droppedFull+s.droppedAge+s.droppedRejected == 0 {
		return
	}
	s.log.Warn("remote write dropped samples",
		"queue_full", s.droppedFull, "too_old", s.droppedAge, "rejected", s.droppedRejected,
		"queued_samples", s.queued, "queued_batches", len(s.queue))
	s.droppedFull, s.droppedAge, s.droppedRejected = 0, 0, 0
}

// parseErr drops the URL (which may hold credentials) from a parse error.
func parseErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
