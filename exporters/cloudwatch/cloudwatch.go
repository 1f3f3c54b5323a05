package cloudwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/edgeprobe/edgeprobe/exporters/outbound"
	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Name is the exporter label of this sink's self-metrics.
const Name = "cloudwatch"

// Defaults of the config and Options.
const (
	DefaultNamespace      = "EdgeProbe"
	DefaultFlushInterval  = time.Minute
	DefaultMaxDatums      = 100_000
	DefaultMaxAge         = 24 * time.Hour
	DefaultMaxBytes       = 64 << 20
	DefaultConcurrency    = 4
	DefaultRequestTimeout = 30 * time.Second
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultMaxAttempts    = 3

	// MaxAgeLimit caps Options.MaxAge: CloudWatch refuses timestamps more
	// than two weeks old, and a datum must still be accepted when sent.
	MaxAgeLimit = 14*24*time.Hour - 2*time.Hour
)

// Options are what the config file does not say. Zero values take the
// defaults above.
type Options struct {
	// Metrics receive the exporter self-metrics (sends, drops, queue
	// depth); nil keeps them private.
	Metrics *selfmetrics.Metrics
	// Registerer receives edgeprobe_cloudwatch_metrics and
	// edgeprobe_cloudwatch_api_calls_total (the agent's registry); nil
	// keeps them private.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// FlushInterval overrides the config's flush_interval (tests use 200ms).
	FlushInterval time.Duration
	// MaxDatums and MaxBytes bound the datums waiting to be sent (bytes as
	// sent, uncompressed JSON); MaxAge drops older ones (at most
	// MaxAgeLimit). The oldest go first.
	MaxDatums int
	MaxBytes  int
	MaxAge    time.Duration
	// Concurrency bounds the PutMetricData calls in flight.
	Concurrency int
	// RequestTimeout bounds one call, the SDK's retries included.
	RequestTimeout time.Duration
	// MinBackoff is the first wait after a failed send; it doubles up to
	// MaxBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is the SDK's attempts per call (its standard retryer,
	// exponential backoff with jitter, at most 2s apart).
	MaxAttempts int
	// WrapTransport, when set, wraps the HTTP transport (tests count and
	// inspect requests with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// setDefaults fills the options left zero.
func setDefaults(o *Options) {
	o.MaxDatums = cmp.Or(o.MaxDatums, DefaultMaxDatums)
	o.MaxBytes = cmp.Or(o.MaxBytes, DefaultMaxBytes)
	o.Concurrency = cmp.Or(o.Concurrency, DefaultConcurrency)
	o.MaxAttempts = cmp.Or(o.MaxAttempts, DefaultMaxAttempts)
	o.MaxAge = cmp.Or(o.MaxAge, DefaultMaxAge)
	o.RequestTimeout = cmp.Or(o.RequestTimeout, DefaultRequestTimeout)
	o.MinBackoff = cmp.Or(o.MinBackoff, DefaultMinBackoff)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, DefaultMaxBackoff)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	o.MaxAge = min(o.MaxAge, MaxAgeLimit)
}

// Sink is the CloudWatch exporter. Write aggregates; Run seals and sends
// every flush interval; Flush sends everything. All are safe to call
// concurrently.
type Sink struct {
	client    *cloudwatch.Client
	transport *http.Transport
	namespace string
	highRes   bool
	interval  time.Duration
	overhead  int
	o         Options
	log       *slog.Logger
	m         *selfmetrics.Exporter
	metricsG  prometheus.Gauge
	calls     *prometheus.CounterVec

	mu     sync.Mutex
	acc    map[int64]map[seriesKey]*series // interval start (Unix ns) → its series
	infos  map[seriesKey]*seriesInfo
	closed bool

	// sem admits one sender (Run's cycle, Flush or Close) at a time;
	// Flush gives up waiting for it when its context ends.
	sem *semaphore.Weighted

	// Guarded by sem.
	queue       []*datum
	queuedBytes int
	failures    int // consecutive failed sends
	nextTry     time.Time
	sent        map[seriesKey]time.Time // last successful send per series, for the metrics gauge
	drops       drops
}

// drops counts what was given up since the last log line, by reason.
type drops struct {
	full, age, rejected int // datums
	samples             float64
}

// New builds the sink and its AWS client (credentials are loaded lazily, on
// the first call; ctx bounds the region lookup).
func New(ctx context.Context, cfg probe.CloudWatchConfig, o Options) (*Sink, error) {
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	if strings.HasPrefix(ns, "AWS/") || strings.HasPrefix(ns, ":") || len(ns) > 255 {
		return nil, fmt.Errorf("cloudwatch: namespace %q: not allowed (AWS/ is reserved; at most 255 characters)", ns)
	}
	setDefaults(&o)
	if o.Metrics == nil {
		o.Metrics = selfmetrics.New(prometheus.NewRegistry())
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	interval := o.FlushInterval
	if interval <= 0 {
		interval = cfg.FlushInterval.D()
	}
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	s := &Sink{
		namespace: ns, highRes: cfg.HighResolution, interval: interval, overhead: requestOverhead(ns), o: o,
		m: o.Metrics.For(Name), acc: map[int64]map[seriesKey]*series{}, infos: map[seriesKey]*seriesInfo{},
		sem: semaphore.NewWeighted(1), sent: map[seriesKey]time.Time{},
	}
	s.metricsG = register(o.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edgeprobe_cloudwatch_metrics",
		Help: "Distinct CloudWatch metrics (namespace, name and dimensions) the exporter sent data to in the last hour: what CloudWatch bills, prorated hourly.",
	}))
	s.calls = register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeprobe_cloudwatch_api_calls_total",
		Help: "CloudWatch API calls (HTTP attempts, SDK retries included) by operation and result (success, throttled, error).",
	}, []string{"operation", "result"}))
	for _, r := range []string{resultSuccess, resultThrottled, resultError} {
		s.calls.WithLabelValues("PutMetricData", r)
	}

	s.transport = awshttp.NewBuildableClient().GetTransport()
	var rt http.RoundTripper = s.transport
	if o.WrapTransport != nil {
		rt = o.WrapTransport(rt)
	}
	client, region, err := newClient(ctx, cfg, o, rt, s.calls)
	if err != nil {
		return nil, err
	}
	s.client = client
	endpoint := "default"
	if cfg.Endpoint != "" {
		endpoint = redactEndpoint(cfg.Endpoint)
	}
	s.log = o.Logger.With("exporter", Name)
	s.log.Info("cloudwatch configured", "namespace", ns, "region", region, "endpoint", endpoint,
		"flush_interval", interval, "high_resolution", cfg.HighResolution)
	return s, nil
}

// register registers c, or returns the collector already registered in
// its place (two sinks on one registry share the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
		panic(err)
	}
	return c
}

// Interval is the flush interval the sink aggregates over.
func (s *Sink) Interval() time.Duration { return s.interval }

// Write adds a sample to the aggregates of its interval: the flush
// interval its probe started in.
func (s *Sink) Write(_ context.Context, smp *probe.Sample) {
	if smp == nil {
		return
	}
	var buf [numMetrics]observation
	n := observe(smp, &buf)
	at := time.Now()
	if r := smp.Result; r != nil && !r.Start.IsZero() && r.Start.Before(at) {
		at = r.Start
	}
	start := at.Truncate(s.interval)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	iv := s.acc[start.UnixNano()]
	if iv == nil {
		iv = map[seriesKey]*series{}
		s.acc[start.UnixNano()] = iv
	}
	for _, ob := range buf[:n] {
		k := seriesKey{ob.metric, smp.Target, smp.Role, smp.Location, smp.Address}
		se := iv[k]
		if se == nil {
			info := s.infos[k]
			if info == nil {
				info = newSeriesInfo(k, s.highRes)
				s.infos[k] = info
			}
			info.lastUsed = start
			se = &series{info: info, bins: make(map[int32]float64, 4)}
			iv[k] = se
		}
		se.add(ob.value)
	}
}

// sealed is the aggregate of one finished interval.
type sealed struct {
	start  time.Time
	series map[seriesKey]*series
}

// seal takes the intervals that ended by now (all of them when all is
// set) out of the aggregates, oldest first.
func (s *Sink) seal(now time.Time, all bool) []sealed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sealed
	for k, iv := range s.acc {
		start := time.Unix(0, k)
		if all || !start.Add(s.interval).After(now) {
			out = append(out, sealed{start, iv})
			delete(s.acc, k)
		}
	}
	for k, info := range s.infos {
		if now.Sub(info.lastUsed) > time.Hour+2*s.interval {
			delete(s.infos, k) // a target removed by a reload
		}
	}
	slices.SortFunc(out, func(a, b sealed) int { return a.start.Compare(b.start) })
	return out
}

// toDatums turns sealed intervals into datums, oldest interval first,
// timestamped with the interval's start.
func toDatums(ivs []sealed) []*datum {
	var out []*datum
	for _, iv := range ivs {
		keys := make([]seriesKey, 0, len(iv.series))
		for k := range iv.series {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareKeys)
		for _, k := range keys {
			out = append(out, iv.series[k].datums(iv.start, MaxValuesPerDatum)...)
		}
	}
	return out
}

func compareKeys(a, b seriesKey) int {
	if c := strings.Compare(a.target, b.target); c != 0 {
		return c
	}
	if c := strings.Compare(a.role, b.role); c != 0 {
		return c
	}
	if c := strings.Compare(a.location, b.location); c != 0 {
		return c
	}
	if c := strings.Compare(a.address, b.address); c != 0 {
		return c
	}
	return int(a.metric) - int(b.metric)
}

// enqueue adds datums to the queue and trims it to its bounds, dropping
// the oldest. Call with sem held.
func (s *Sink) enqueue(ds []*datum, now time.Time) {
	s.expire(now)
	old := 0
	for _, d := range ds {
		if now.Sub(d.ts) > s.o.MaxAge {
			s.drops.age++
			s.drops.samples += d.samples
			old++
			continue
		}
		s.queue = append(s.queue, d)
		s.queuedBytes += d.size
	}
	if old > 0 {
		s.m.Dropped(old)
	}
	for len(s.queue) > 0 && (len(s.queue) > s.o.MaxDatums || s.queuedBytes > s.o.MaxBytes) {
		d := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.queuedBytes -= d.size
		s.drops.full++
		s.drops.samples += d.samples
		s.m.Dropped(1)
	}
	s.m.Queue(len(s.queue))
}

// expire drops datums older than MaxAge: CloudWatch would refuse them
// beyond two weeks, and they would delay the fresh ones.
func (s *Sink) expire(now time.Time) {
	keep := s.queue[:0]
	n := 0
	for _, d := range s.queue {
		if now.Sub(d.ts) > s.o.MaxAge {
			s.queuedBytes -= d.size
			s.drops.age++
			s.drops.samples += d.samples
			n++
			continue
		}
		keep = append(keep, d)
	}
	clear(s.queue[len(keep):])
	s.queue = keep
	if n > 0 {
		s.m.Dropped(n)
		s.m.Queue(len(s.queue))
	}
}

// Run seals and sends after every flush interval (just after the
// interval's end, so datums leave promptly) until ctx ends. What is queued
// then stays for Flush.
func (s *Sink) Run(ctx context.Context) error {
	timer := time.NewTimer(s.wait(time.Now(), time.Time{}))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			retryAt := s.cycle(ctx)
			timer.Reset(s.wait(time.Now(), retryAt))
		}
	}
}

// wait is the time until the next cycle: the end of the current interval
// plus a grace for probes still in flight, or an earlier retry.
func (s *Sink) wait(now, retryAt time.Time) time.Duration {
	grace := min(s.interval/10, 5*time.Second)
	next := now.Truncate(s.interval).Add(s.interval + grace)
	if !retryAt.IsZero() && retryAt.Before(next) {
		next = retryAt
	}
	return max(next.Sub(now), time.Millisecond)
}

// cycle seals the finished intervals and sends what is due. It returns
// when to retry if the send failed (zero otherwise).
func (s *Sink) cycle(ctx context.Context) time.Time {
	if s.sem.Acquire(ctx, 1) != nil {
		return time.Time{}
	}
	defer s.sem.Release(1)
	now := time.Now()
	s.enqueue(toDatums(s.seal(now, false)), now)
	s.logDrops()
	if len(s.queue) == 0 {
		return time.Time{}
	}
	if now.Before(s.nextTry) {
		return s.nextTry // still backing off
	}
	if err := s.send(ctx); err != nil && len(s.queue) > 0 {
		return s.nextTry
	}
	return time.Time{}
}

// Flush seals everything, the interval in progress included, and sends
// all that is queued, ignoring the backoff, retrying until the queue is
// empty or ctx's deadline (without a deadline it tries once).
func (s *Sink) Flush(ctx context.Context) error {
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return fmt.Errorf("cloudwatch: flush: %w", err)
	}
	defer s.sem.Release(1)
	now := time.Now()
	s.enqueue(toDatums(s.seal(now, true)), now)
	s.logDrops()
	_, deadline := ctx.Deadline()
	for {
		err := s.send(ctx)
		if len(s.queue) == 0 {
			return nil
		}
		if err == nil {
			err = errors.New("not sent")
		}
		if !deadline || ctx.Err() != nil {
			return fmt.Errorf("cloudwatch: flush: %d datums still queued: %w", len(s.queue), err)
		}
		t := time.NewTimer(max(time.Until(s.nextTry), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cloudwatch: flush: %d datums still queued: %w", len(s.queue), err)
		case <-t.C:
		}
	}
}

// Close gives up on what was not sent (counting it as dropped) and
// releases idle connections. Call it after Run and Flush have returned.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pending := s.acc
	s.acc = nil
	s.mu.Unlock()

	_ = s.sem.Acquire(context.Background(), 1) // cannot fail without a deadline
	n, samples := len(s.queue), 0.0
	for _, d := range s.queue {
		samples += d.samples
	}
	for _, iv := range pending {
		for _, se := range iv {
			n += (len(se.bins) + MaxValuesPerDatum - 1) / MaxValuesPerDatum
			for _, c := range se.bins {
				samples += c
			}
		}
	}
	s.queue, s.queuedBytes = nil, 0
	s.m.Queue(0)
	s.sem.Release(1)
	if n > 0 {
		s.m.Dropped(n)
		s.log.Warn("cloudwatch datums not sent before shutdown; dropped", "datums", n, "samples", samples)
	}
	s.transport.CloseIdleConnections()
	return nil
}

// send packs the queue into requests and sends them, at most Concurrency
// at a time, oldest first. After a failure it first sends one request
// alone, and the rest only if that one gets through; once a call fails in
// a way worth retrying no new calls start. Sent and rejected datums leave
// the queue; the others stay, in order. It returns the first retryable
// error. Call with sem held.
func (s *Sink) send(ctx context.Context) error {
	s.expire(time.Now())
	if len(s.queue) == 0 {
		return nil
	}
	reqs := pack(s.queue, s.overhead, MaxDatumsPerRequest, MaxRequestBytes)
	errs := make([]error, len(reqs))
	done := make([]bool, len(reqs))
	var stop atomic.Bool
	first := 0
	if s.failures > 0 {
		errs[0], done[0] = s.put(ctx, reqs[0]), true
		first = 1
		if errs[0] != nil && retryable(errs[0]) {
			stop.Store(true)
		}
	}
	var g errgroup.Group
	g.SetLimit(s.o.Concurrency)
	for i := first; i < len(reqs) && !stop.Load() && ctx.Err() == nil; i++ {
		g.Go(func() error {
			if stop.Load() {
				return nil
			}
			err := s.put(ctx, reqs[i])
			errs[i], done[i] = err, true
			if err != nil && retryable(err) {
				stop.Store(true)
			}
			return nil
		})
	}
	_ = g.Wait()

	now := time.Now()
	var keep []*datum
	var retryErr, rejectErr error
	sent, rejected := 0, 0
	for i, r := range reqs {
		switch err := errs[i]; {
		case !done[i]:
			keep = append(keep, r.datums...)
		case err == nil:
			sent++
			for _, d := range r.datums {
				s.sent[d.info.key] = now
			}
		case retryable(err):
			keep = append(keep, r.datums...)
			if retryErr == nil {
				retryErr = err
			}
		default:
			rejected++
			rejectErr = err
			for _, d := range r.datums {
				s.drops.rejected++
				s.drops.samples += d.samples
			}
			s.m.Dropped(len(r.datums))
		}
	}
	s.queue = keep
	s.queuedBytes = 0
	for _, d := range keep {
		s.queuedBytes += d.size
	}
	s.m.Queue(len(s.queue))
	for k, t := range s.sent {
		if now.Sub(t) > time.Hour {
			delete(s.sent, k)
		}
	}
	s.metricsG.Set(float64(len(s.sent)))
	if rejected > 0 {
		// One line per send, however many requests were refused.
		s.log.Error("cloudwatch rejected requests; their datums are dropped", "requests", rejected, "last_err", rejectErr)
	}

	switch {
	case retryErr != nil:
		s.failures++
		s.nextTry = now.Add(outbound.Backoff(s.o.MinBackoff, s.o.MaxBackoff, s.failures))
		if s.failures == 1 {
			s.log.Warn("cloudwatch put failed; keeping datums and retrying", "err", retryErr, "queued_datums", len(s.queue))
		} else {
			s.log.Debug("cloudwatch retry failed", "err", retryErr, "failures", s.failures, "queued_datums", len(s.queue))
		}
		return retryErr
	case sent > 0 && s.failures > 0:
		s.log.Info("cloudwatch put recovered", "failures", s.failures, "queued_datums", len(s.queue))
		s.failures = 0
		s.nextTry = time.Time{}
	}
	return ctx.Err()
}

// put makes one PutMetricData call.
func (s *Sink) put(ctx context.Context, r *request) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	defer cancel()
	_, err := s.client.PutMetricData(ctx, r.input(s.namespace, s.highRes))
	s.m.Sent(err, err != nil && retryable(err))
	return err
}

// logDrops reports, once per interval, what was given up since the last
// report.
func (s *Sink) logDrops() {
	d := s.drops
	if d.full+d.age+d.rejected == 0 {
		return
	}
	s.log.Warn("cloudwatch dropped datums", "buffer_full", d.full, "too_old", d.age, "rejected", d.rejected,
		"samples", d.samples, "queued_datums", len(s.queue))
	s.drops = drops{}
}
