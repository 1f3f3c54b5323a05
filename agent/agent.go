// Package agent runs edgeprobe's long-lived job: it loads the config, wires
// the exporters and the scheduler, serves /metrics and the status page,
// reloads on SIGHUP or a changed file, and drains and flushes on shutdown.
// `probe run` and `probe demo` both call Run.
package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/exporters/jsonl"
	promexp "github.com/edgeprobe/edgeprobe/exporters/prometheus"
	"github.com/edgeprobe/edgeprobe/exporters/pushgateway"
	"github.com/edgeprobe/edgeprobe/exporters/remotewrite"
	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Options configure one agent run.
type Options struct {
	ConfigPath string
	// Location overrides the config's and the detected one.
	Location string
	// Listen overrides exporters.prometheus.listen (and turns it on).
	Listen string
	// WatchConfig reloads when the file's content changes (polled).
	WatchConfig bool
	// WatchInterval is how often the file is checked; default 2s.
	WatchInterval time.Duration
	// DrainTimeout bounds shutdown: probes in flight, then sinks' flushes.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Sinks are extra sinks (the demo collects samples this way).
	Sinks []probe.Sink
	// Ready is called once the agent serves and probes, with the address
	// /metrics listens on (nil when Prometheus is off).
	Ready func(metricsAddr string)
	// RunAtStart probes every job once at start instead of waiting for its
	// first slot (the demo; see probe.SchedulerOptions).
	RunAtStart bool
	// Signals turns SIGHUP reloads on; tests that run several agents in one
	// process leave it off and call Reload on the Agent instead.
	Signals bool
}

// Agent is a running agent; most callers use Run.
type Agent struct {
	opts     Options
	log      *slog.Logger
	reg      *prometheus.Registry
	self     *selfmetrics.Metrics
	prom     *promexp.Exporter
	live     *liveJobs // a.prom behind the running config's job set
	sched    *probe.Scheduler
	location string

	mu       sync.Mutex
	cfg      *probe.Config
	cfgHash  [32]byte
	reloadOK prometheus.Gauge
	reloadTS prometheus.Gauge
	reloads  *prometheus.CounterVec
}

// Run loads the config and runs the agent until ctx ends. A config error
// is returned as is (a *probe.ConfigError or a join of them), before
// anything starts.
func Run(ctx context.Context, opts Options) error {
	a, err := New(ctx, opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New loads and checks the config and builds the agent.
func New(ctx context.Context, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = 2 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 15 * time.Second
	}
	data, err := os.ReadFile(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := probe.Parse(opts.ConfigPath, data)
	if err != nil {
		return nil, err
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		return nil, err
	}
	overrideListen(cfg, opts.Listen)
	a := &Agent{opts: opts, log: opts.Logger, reg: prometheus.NewRegistry(), cfg: cfg, cfgHash: sha256.Sum256(data)}
	a.location = a.pickLocation(ctx, cfg)
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.self = selfmetrics.New(a.reg)
	a.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeprobe_config_last_reload_successful", Help: "Whether the last config (re)load succeeded."})
	a.reloadTS = prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeprobe_config_last_reload_success_timestamp_seconds", Help: "When the config was last loaded successfully."})
	a.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeprobe_config_reloads_total", Help: "Config reloads by result."}, []string{"result"})
	a.reg.MustRegister(a.reloadOK, a.reloadTS, a.reloads)
	a.reloadOK.Set(1)
	a.reloadTS.SetToCurrentTime()
	a.prom = promexp.New(a.reg, cfg.Labels)
	a.live = &liveJobs{next: a.prom, keep: jobKeys(jobs)}
	a.sched = probe.NewScheduler(probe.SchedulerOptions{
		Location:     a.location,
		Concurrency:  int64(cfg.Concurrency),
		Registerer:   a.reg,
		Logger:       a.log,
		DrainTimeout: opts.DrainTimeout,
		RunAtStart:   opts.RunAtStart,
	})
	a.sched.Update(jobs)
	a.log.Info("config loaded", "file", opts.ConfigPath, "targets", len(cfg.Targets), "jobs", len(jobs), "location", a.location)
	return a, nil
}

func (a *Agent) pickLocation(ctx context.Context, cfg *probe.Config) string {
	switch {
	case a.opts.Location != "":
		return a.opts.Location
	case cfg.Location != "":
		return cfg.Location
	}
	loc, source := probe.DetectLocation(ctx, probe.LocationSources{})
	a.log.Info("location detected", "location", loc, "source", source)
	return loc
}

// Run probes and serves until ctx ends, then drains and flushes.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg
	sinks := probe.Sinks{a.live}
	var flushers []probe.Flusher
	g, gctx := errgroup.WithContext(ctx)
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	if c := cfg.Exporters.JSONL; c != nil {
		j, err := jsonl.New(*c, jsonl.Options{Metrics: a.self, Logger: a.log})
		if err != nil {
			return fmt.Errorf("jsonl exporter: %w", err)
		}
		sinks = append(sinks, j)
		flushers = append(flushers, j)
		closers = append(closers, j.Close)
	}
	if c := cfg.Exporters.Pushgateway; c != nil {
		p, err := pushgateway.New(*c, a.location, pushgateway.Options{Gatherer: a.reg, Metrics: a.self, Logger: a.log})
		if err != nil {
			return fmt.Errorf("pushgateway exporter: %w", err)
		}
		flushers = append(flushers, p)
		closers = append(closers, p.Close)
		g.Go(func() error { return p.Run(gctx) })
	}
	if c := cfg.Exporters.RemoteWrite; c != nil {
		rw, err := remotewrite.New(ctx, *c, remotewrite.Options{Gatherer: a.reg, Metrics: a.self, Logger: a.log})
		if err != nil {
			return fmt.Errorf("remote write exporter: %w", err)
		}
		flushers = append(flushers, rw)
		closers = append(closers, rw.Close)
		g.Go(func() error { return rw.Run(gctx) })
	}
	if c := cfg.Exporters.CloudWatch; c != nil {
		cw, err := cloudwatch.New(ctx, *c, cloudwatch.Options{Metrics: a.self, Registerer: a.reg, Logger: a.log})
		if err != nil {
			return fmt.Errorf("cloudwatch exporter: %w", err)
		}
		sinks = append(sinks, cw)
		flushers = append(flushers, cw)
		closers = append(closers, cw.Close)
		g.Go(func() error { return cw.Run(gctx) })
	}
	for _, s := range a.opts.Sinks {
		sinks = append(sinks, s)
	}
	a.sched.SetSink(sinks)

	var server *promexp.Server
	metricsAddr := ""
	if c := cfg.Exporters.Prometheus; c != nil {
		server = promexp.NewServer(*c, a.reg, a.prom, a.log)
		addr, err := server.Listen()
		if err != nil {
			return fmt.Errorf("prometheus exporter: %w", err)
		}
		metricsAddr = addr.String()
		g.Go(func() error { return server.Run(gctx) })
	}

	schedDone := make(chan struct{})
	g.Go(func() error {
		defer close(schedDone)
		return a.sched.Run(gctx)
	})
	if a.opts.Signals {
		// Subscribed before /ready says 200: a SIGHUP that came before
		// Notify would end the process (its default action).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		g.Go(func() error {
			defer signal.Stop(hup)
			return a.reloadOnSignal(gctx, hup)
		})
	}
	if a.opts.WatchConfig {
		g.Go(func() error { return a.watch(gctx) })
	}
	if server != nil {
		server.SetReady(true)
	}
	if a.opts.Ready != nil {
		a.opts.Ready(metricsAddr)
	}
	// Shutdown order: the scheduler drains its probes (their samples reach
	// the sinks), then the sinks flush, bounded by the drain timeout.
	g.Go(func() error {
		<-gctx.Done()
		<-schedDone
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.DrainTimeout)
		defer cancel()
		var errs []error
		for _, f := range flushers {
			if err := f.Flush(fctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			a.log.Warn("flush on shutdown incomplete", "err", err)
		}
		return nil
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Reload reads the config file again. A bad config is refused with an
// error and the running one stays.
func (a *Agent) Reload(ctx context.Context) error {
	data, err := os.ReadFile(a.opts.ConfigPath)
	return a.reload(ctx, data, err)
}

// reload applies data, the file's content as read (or the error reading it).
func (a *Agent) reload(ctx context.Context, data []byte, err error) error {
	if err == nil {
		err = a.apply(ctx, data)
	}
	if err != nil {
		a.reloadOK.Set(0)
		a.reloads.WithLabelValues("failure").Inc()
		a.log.Error("config reload refused; the running config stays", "file", a.opts.ConfigPath, "err", err)
		return err
	}
	a.reloadOK.Set(1)
	a.reloadTS.SetToCurrentTime()
	a.reloads.WithLabelValues("success").Inc()
	return nil
}

func (a *Agent) apply(_ context.Context, data []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	hash := sha256.Sum256(data)
	if hash == a.cfgHash {
		return nil
	}
	cfg, err := probe.Parse(a.opts.ConfigPath, data)
	if err != nil {
		return err
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		return err
	}
	overrideListen(cfg, a.opts.Listen)
	if !sameExporters(a.cfg, cfg) {
		a.log.Warn("exporters changed in the config: restart the agent to apply them; targets are reloaded now")
	}
	keep := jobKeys(jobs)
	a.sched.Update(jobs)
	a.live.set(keep, func() {
		a.prom.Forget(func(target, role string) bool { return keep[[2]string{target, role}] })
	})
	a.cfg, a.cfgHash = cfg, hash
	a.log.Info("config reloaded", "file", a.opts.ConfigPath, "targets", len(cfg.Targets), "jobs", len(jobs))
	return nil
}

func jobKeys(jobs []*probe.Job) map[[2]string]bool {
	keep := make(map[[2]string]bool, len(jobs))
	for _, j := range jobs {
		keep[[2]string{j.Target, j.Role}] = true
	}
	return keep
}

// liveJobs passes to the Prometheus exporter only the samples of jobs in
// the running config. A probe of a job that a reload removed may still be
// in flight, or fire once more before the scheduler takes the new jobs;
// its sample would re-create the series Forget has just deleted, and they
// would stay in /metrics and in every push until the next restart.
type liveJobs struct {
	next probe.Sink
	mu   sync.RWMutex
	keep map[[2]string]bool
}

func (l *liveJobs) Write(ctx context.Context, s *probe.Sample) {
	if s == nil {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.keep[[2]string{s.Target, s.Role}] {
		l.next.Write(ctx, s)
	}
}

// set switches to a new job set and runs forget while no sample is on its
// way to the exporter, so none written under the old set comes after it.
func (l *liveJobs) set(keep map[[2]string]bool, forget func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep = keep
	forget()
}

// sameExporters compares the exporter sections by value (printing them
// with %v would compare the sections' addresses, always different).
func sameExporters(a, b *probe.Config) bool {
	return reflect.DeepEqual(a.Exporters, b.Exporters)
}

// overrideListen applies Options.Listen, which turns Prometheus on.
func overrideListen(cfg *probe.Config, listen string) {
	if listen == "" {
		return
	}
	if cfg.Exporters.Prometheus == nil {
		cfg.Exporters.Prometheus = &probe.PrometheusConfig{}
	}
	cfg.Exporters.Prometheus.Listen = listen
}

func (a *Agent) reloadOnSignal(ctx context.Context, hup <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			a.log.Info("SIGHUP: reloading config")
			_ = a.Reload(ctx)
		}
	}
}

// watch polls the file's content: simple, and it works on every file
// system and with editors that replace files (ConfigMap symlink swaps too).
func (a *Agent) watch(ctx context.Context) error {
	t := time.NewTicker(a.opts.WatchInterval)
	defer t.Stop()
	// seen is the content of the last poll, settled the last one acted on.
	var seen, settled []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			data, err := os.ReadFile(a.opts.ConfigPath)
			if err != nil {
				continue
			}
			if !bytes.Equal(data, seen) {
				// Changed since the last poll, perhaps half written (an
				// editor or a script writing in place; a truncated file can
				// even be a valid config with fewer targets): act once it
				// has stayed the same for one poll.
				seen = data
				continue
			}
			if bytes.Equal(data, settled) {
				continue
			}
			settled = data
			a.mu.Lock()
			changed := sha256.Sum256(data) != a.cfgHash
			a.mu.Unlock()
			if changed {
				a.log.Info("config file changed: reloading")
				_ = a.reload(ctx, data, nil)
			}
		}
	}
}
