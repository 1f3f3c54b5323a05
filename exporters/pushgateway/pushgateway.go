// Package pushgateway pushes the agent's registry to a Prometheus
// Pushgateway, for probes that cannot be scraped (behind NAT, short-lived).
//
// Each push replaces the whole group {job, instance=location} (HTTP PUT,
// client_golang's push.Pusher.Push), so series the agent no longer has
// (a target removed on reload) disappear from the gateway too. A failed push
// is not queued: the registry's counters and histograms are cumulative, so
// the next push, an interval later, carries everything the failed one
// would have; the failure is counted and logged.
package pushgateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"golang.org/x/sync/semaphore"

	"github.com/edgeprobe/edgeprobe/exporters/outbound"
	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Name is the exporter label of this sink's self-metrics.
const Name = "pushgateway"

// Defaults of the config and Options.
const (
	DefaultJob            = "edgeprobe"
	DefaultInterval       = 15 * time.Second
	DefaultRequestTimeout = 30 * time.Second
)

// Options are what the config file does not say.
type Options struct {
	// Gatherer is the agent's registry (required). Its metrics must not
	// carry job or instance labels: those are the grouping key.
	Gatherer prometheus.Gatherer
	// Metrics receive the self-metrics; nil keeps them private.
	Metrics *selfmetrics.Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// RequestTimeout bounds one push (default 30s, never more than the interval).
	RequestTimeout time.Duration
}

// Sink is the Pushgateway exporter. Run pushes periodically; Flush pushes
// once more. Both are safe to call concurrently.
type Sink struct {
	pusher    *push.Pusher
	transport *http.Transport
	m         *selfmetrics.Exporter
	log       *slog.Logger
	interval  time.Duration
	timeout   time.Duration

	// sem admits one push at a time; a semaphore rather than a mutex so
	// that Flush can give up when its context ends.
	sem      *semaphore.Weighted
	failures int // consecutive failed pushes; guarded by sem
}

// New builds the sink. location is the grouping key's instance label.
func New(cfg probe.PushgatewayConfig, location string, o Options) (*Sink, error) {
	if o.Gatherer == nil {
		return nil, errors.New("pushgateway: no gatherer")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("pushgateway: url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("pushgateway: url %q: want http(s)://host[:port][/prefix]", outbound.RedactURL(u))
	}
	job := cfg.Job
	if job == "" {
		job = DefaultJob
	}
	interval := cfg.Interval.D()
	if interval <= 0 {
		interval = DefaultInterval
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Metrics == nil {
		o.Metrics = selfmetrics.New(prometheus.NewRegistry())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	clean := *u
	clean.User = nil
	// The push package puts its URL into error messages: credentials go
	// into a header instead.
	p := push.New(clean.String(), job).
		Gatherer(o.Gatherer).
		Grouping("instance", location).
		Client(&http.Client{Transport: transport})
	if u.User != nil {
		pw, _ := u.User.Password()
		p = p.BasicAuth(u.User.Username(), pw)
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("pushgateway: %w", err)
	}
	s := &Sink{
		pusher: p, transport: transport, m: o.Metrics.For(Name),
		log:      o.Logger.With("exporter", Name, "url", outbound.RedactURL(u), "job", job, "instance", location),
		interval: interval, timeout: min(o.RequestTimeout, interval), sem: semaphore.NewWeighted(1),
	}
	s.m.Queue(0) // nothing is ever queued: each push carries the whole state
	s.log.Info("pushgateway configured", "interval", interval)
	return s, nil
}

// Write does nothing: the series come from the Gatherer, which the
// Prometheus exporter keeps up to date.
func (s *Sink) Write(context.Context, *probe.Sample) {}

// Run pushes at once and then every interval, until ctx ends.
func (s *Sink) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		_ = s.pushOnce(ctx) // counted and logged; the next tick retries
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Flush pushes the registry once more, within ctx (shutdown, reload).
func (s *Sink) Flush(ctx context.Context) error {
	return s.pushOnce(ctx)
}

// Close releases idle connections. Call it after Run has returned.
func (s *Sink) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

func (s *Sink) pushOnce(ctx context.Context) error {
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("pushgateway: %w", err)
	}
	defer s.sem.Release(1)

	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.pusher.PushContext(pctx)
	if err != nil && ctx.Err() != nil {
		// Shutdown cut the push short: not the gateway's failure.
		return fmt.Errorf("pushgateway: push: %w", err)
	}
	s.m.Sent(err, false)
	if err != nil {
		s.failures++
		err = fmt.Errorf("pushgateway: push: %w", err)
		if s.failures == 1 {
			s.log.Warn("push failed; next push in one interval", "err", err)
		} else {
			s.log.Debug("push failed again", "err", err, "failures", s.failures)
		}
		return err
	}
	if s.failures > 0 {
		s.log.Info("push recovered", "failures", s.failures)
		s.failures = 0
	}
	return nil
}
