// Package promexp exposes probe samples as Prometheus metrics (the "Metric
// contract" of DESIGN.md) and serves them, with /healthz, /ready and a small
// status page, through prometheus/exporter-toolkit so that TLS and basic
// auth come from a standard web config file.
//
// The directory is exporters/prometheus; the package is named promexp so it
// does not shadow client_golang's prometheus package in its users' code.
package promexp

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Label names of the contract.
const (
	lTarget   = "target"
	lRole     = "role"
	lLocation = "location"
	lAddress  = "address"
)

// Buckets are the classic histogram buckets (seconds), suited to 1 ms–10 s.
// Every histogram also has native buckets, which Prometheus uses when it
// scrapes with native histograms enabled.
var Buckets = []float64{.001, .0025, .005, .01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2.5, 5, 10}

// Native histogram parameters: about 10% resolution, a bounded bucket
// count, and at most one reset an hour when that bound is hit.
const (
	nativeFactor     = 1.1
	nativeMaxBuckets = 160
	nativeMinReset   = time.Hour
)

// Bounds on label values read from responses, so that a hostile or broken
// target cannot blow up the series count or a label's size.
const (
	maxPOPsPerSeries = 64
	maxLabelLen      = 64
	popOverflow      = "other"
)

// phases are the observed phases, in wire order; the index is used for the
// per-series observer cache.
var phases = [...]string{
	httptrace.PhaseDNS, httptrace.PhaseConnect, httptrace.PhaseTLS, httptrace.PhaseTTFB,
	httptrace.PhaseTransfer, httptrace.PhaseTotal, httptrace.PhaseFirstByte,
}

const (
	pDNS = iota
	pConnect
	pTLS
	pTTFB
	pTransfer
	pTotal
	pFirstByte
	numPhases
)

// Probe results: "success" or the phase a probe failed in.
const resultSuccess = "success"

var results = [...]string{
	resultSuccess, httptrace.ErrDNS, httptrace.ErrConnect, httptrace.ErrTLS,
	httptrace.ErrHTTP, httptrace.ErrTimeout, httptrace.ErrAssert,
}

// Revalidation results.
const (
	revalNotModified = iota
	revalModified
	revalError
	revalSkipped
	numReval
)

var revalResults = [numReval]string{"not_modified", "modified", "error", "skipped_no_validator"}

// Phases of the follow-up requests (revalidation, keep-alive).
var followPhases = [...]string{httptrace.PhaseTTFB, httptrace.PhaseTotal}

// Upstream phases, from CloudFront's Server-Timing.
var upstreamPhases = [...]string{"dns", "connect", "first_byte", "downstream_first_byte"}

// metrics are the vectors of the contract.
type metrics struct {
	phase      *prometheus.HistogramVec
	probes     *prometheus.CounterVec
	success    *prometheus.GaugeVec
	duration   *prometheus.GaugeVec
	lastTime   *prometheus.GaugeVec
	cache      *prometheus.CounterVec
	certExpiry *prometheus.GaugeVec
	status     *prometheus.GaugeVec
	info       *prometheus.GaugeVec
	revalTime  *prometheus.HistogramVec
	revals     *prometheus.CounterVec
	keepalive  *prometheus.HistogramVec
	upstream   *prometheus.HistogramVec
	perJob     []*prometheus.MetricVec // every vector with target and role labels, for Forget
	buildInfo  prometheus.Gauge
}

func histogram(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            name,
		Help:                            help,
		Buckets:                         Buckets,
		NativeHistogramBucketFactor:     nativeFactor,
		NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
		NativeHistogramMinResetDuration: nativeMinReset,
	}, labels)
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func newMetrics() *metrics {
	job := []string{lTarget, lRole, lLocation}
	addr := []string{lTarget, lRole, lLocation, lAddress}
	with := func(base []string, extra ...string) []string {
		return append(append([]string(nil), base...), extra...)
	}
	m := &metrics{
		phase: histogram("edgeprobe_phase_duration_seconds",
			"Duration of one phase of a probe on a new connection (dns, connect, tls, ttfb, transfer, total, first_byte). "+
				"Setup phases (dns, connect, tls) are observed whenever they finished, response phases only for successful probes; a phase that did not happen is not observed.",
			with(addr, "phase")...),
		probes: counter("edgeprobe_probes_total",
			"Probes run, by result: success, or the phase the probe failed in (dns, connect, tls, http, timeout, assert).",
			with(addr, "result")...),
		success: gauge("edgeprobe_probe_success",
			"Whether the last probe succeeded (1) or failed (0).", addr...),
		duration: gauge("edgeprobe_probe_duration_seconds",
			"Total duration of the last probe, until success or failure.", addr...),
		lastTime: gauge("edgeprobe_last_probe_timestamp_seconds",
			"Unix time the last probe started.", addr...),
		cache: counter("edgeprobe_cache_results_total",
			"Responses by normalized CDN cache result (hit, miss, refresh_hit, bypass, error, unknown) and CDN POP (empty when none).",
			with(job, "cache", "pop")...),
		certExpiry: gauge("edgeprobe_tls_cert_not_after_timestamp_seconds",
			"Unix time the leaf certificate of the last TLS handshake expires.", job...),
		status: gauge("edgeprobe_http_status_code",
			"HTTP status code of the last probe's final response (0 when no response arrived).", addr...),
		info: gauge("edgeprobe_probe_info",
			"Facts of the last response, as labels; the value is always 1.",
			with(addr, "http_version", "tls_version", "ip_family", "cdn")...),
		revalTime: histogram("edgeprobe_revalidation_duration_seconds",
			"Duration of the conditional request (If-Modified-Since / If-None-Match) that follows a 200, by phase (ttfb, total).",
			with(job, "phase")...),
		revals: counter("edgeprobe_revalidations_total",
			"Conditional requests by result: not_modified (304), modified, error, skipped_no_validator (the 200 had no Last-Modified or ETag).",
			with(job, "result")...),
		keepalive: histogram("edgeprobe_keepalive_duration_seconds",
			"Duration of a second request on the probe's kept-alive connection, by phase (ttfb, total).",
			with(job, "phase")...),
		upstream: histogram("edgeprobe_upstream_duration_seconds",
			"The CDN edge's own timings towards the origin from CloudFront Server-Timing, by phase (dns, connect, first_byte, downstream_first_byte); observed when present and not zero.",
			with(job, "phase")...),
	}
	m.perJob = []*prometheus.MetricVec{
		m.phase.MetricVec, m.probes.MetricVec, m.success.MetricVec, m.duration.MetricVec,
		m.lastTime.MetricVec, m.cache.MetricVec, m.certExpiry.MetricVec, m.status.MetricVec,
		m.info.MetricVec, m.revalTime.MetricVec, m.revals.MetricVec, m.keepalive.MetricVec,
		m.upstream.MetricVec,
	}
	version, revision, goVersion := buildInfo()
	m.buildInfo = prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "edgeprobe_build_info",
		Help:        "The agent's version, VCS revision and Go version, as labels; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	m.buildInfo.Set(1)
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.phase, m.probes, m.success, m.duration, m.lastTime, m.cache, m.certExpiry,
		m.status, m.info, m.revalTime, m.revals, m.keepalive, m.upstream, m.buildInfo,
	}
}

// buildInfo reads the version from the binary's build information.
func buildInfo() (version, revision, goVersion string) {
	version, revision, goVersion = "unknown", "unknown", runtime.Version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision, goVersion
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			revision = s.Value
		}
	}
	return version, revision, goVersion
}

// Exporter turns samples into the metrics of the contract. It is a
// probe.Sink; Write is safe for concurrent use and, once a series is known,
// does not allocate: the label-bound observers are cached per series.
type Exporter struct {
	m *metrics

	mu     sync.RWMutex
	series map[seriesKey]*series
}

var _ probe.Sink = (*Exporter)(nil)

// New registers the metrics on reg, each with constLabels (may be nil)
// added, and returns the exporter. It panics if the metrics are already
// registered there, as prometheus.MustRegister does: one Exporter per
// registry, kept across config reloads (see Forget).
func New(reg prometheus.Registerer, constLabels map[string]string) *Exporter {
	if len(constLabels) > 0 {
		reg = prometheus.WrapRegistererWith(constLabels, reg)
	}
	m := newMetrics()
	reg.MustRegister(m.collectors()...)
	return &Exporter{m: m, series: map[seriesKey]*series{}}
}

// seriesKey is one job (target × role) at one location, and one of its
// addresses when the target probes them all.
type seriesKey struct {
	target, role, location, address string
}

// series caches the observers bound to one seriesKey, and what the status
// page shows about it. Observers are bound on first use, so a target never
// gets series for phases or modes it does not have (tls for http://,
// revalidation without conditional).
type series struct {
	key seriesKey

	mu   sync.Mutex
	dead bool // forgotten: late samples are dropped, not resurrected

	phase      [numPhases]prometheus.Observer
	probes     [len(results)]prometheus.Counter
	success    prometheus.Gauge
	duration   prometheus.Gauge
	lastTime   prometheus.Gauge
	status     prometheus.Gauge
	certExpiry prometheus.Gauge
	cache      map[cacheKey]prometheus.Counter
	pops       map[string]struct{}
	info       [4]string // http_version, tls_version, ip_family, cdn of the current info series
	hasInfo    bool
	revalTime  [len(followPhases)]prometheus.Observer
	revals     [numReval]prometheus.Counter
	keepalive  [len(followPhases)]prometheus.Observer
	upstream   [len(upstreamPhases)]prometheus.Observer
	last       lastSample
	history    uint32 // success bits of the recent probes, newest in bit 0
	historyLen int
}

type cacheKey struct{ cache, pop string }

// recentProbes is the window of the status page's success ratio.
const recentProbes = 20

// Write records one sample. Samples without a result are ignored: there is
// nothing to say about them.
func (e *Exporter) Write(_ context.Context, s *probe.Sample) {
	if s == nil || s.Result == nil {
		return
	}
	sr := e.lookup(seriesKey{target: s.Target, role: s.Role, location: s.Location, address: s.Address})
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.dead {
		return
	}
	e.record(sr, s.Result)
}

func (e *Exporter) lookup(k seriesKey) *series {
	e.mu.RLock()
	sr := e.series[k]
	e.mu.RUnlock()
	if sr != nil {
		return sr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if sr = e.series[k]; sr == nil {
		sr = e.newSeries(k)
		e.series[k] = sr
	}
	return sr
}

func (e *Exporter) newSeries(k seriesKey) *series {
	m := e.m
	sr := &series{key: k}
	a := []string{k.target, k.role, k.location, k.address}
	// success exists from the first sample on, at 0, so rate() and
	// increase() see the first success too.
	sr.probes[0] = bind(m.probes.GetMetricWithLabelValues, append(a, resultSuccess)...)
	sr.success = bind(m.success.GetMetricWithLabelValues, a...)
	sr.duration = bind(m.duration.GetMetricWithLabelValues, a...)
	sr.lastTime = bind(m.lastTime.GetMetricWithLabelValues, a...)
	sr.status = bind(m.status.GetMetricWithLabelValues, a...)
	return sr
}

// bind returns the child of a vector for label values, replacing invalid
// UTF-8 (which client_golang refuses) rather than failing: a probe must
// never crash the agent. The label count is fixed by this package, so the
// second attempt cannot fail.
func bind[M any](get func(...string) (M, error), lvs ...string) M {
	m, err := get(lvs...)
	if err == nil {
		return m
	}
	for i, v := range lvs {
		lvs[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	m, err = get(lvs...)
	if err != nil {
		panic(fmt.Errorf("promexp: binding %q: %w", lvs, err))
	}
	return m
}

func (sr *series) job() []string { return []string{sr.key.target, sr.key.role, sr.key.location} }

func (sr *series) addr(extra ...string) []string {
	return append([]string{sr.key.target, sr.key.role, sr.key.location, sr.key.address}, extra...)
}

// record updates every metric of one series from one result; sr.mu is held.
func (e *Exporter) record(sr *series, r *httptrace.Result) {
	m := e.m
	ok := r.Err == nil
	responded := r.Status != 0

	// Probe result.
	if ok {
		sr.probes[0].Inc()
		sr.success.Set(1)
	} else {
		e.probeFailed(sr, r.Err.Phase).Inc()
		sr.success.Set(0)
	}
	sr.duration.Set(r.Timings.Total.Seconds())
	start := r.Start
	if start.IsZero() {
		start = time.Now()
	}
	sr.lastTime.Set(float64(start.UnixNano()) / 1e9)
	sr.status.Set(float64(r.Status))

	// Phases.
	done := completedPhases(r)
	for i := range phases {
		d := r.Timings.Get(phases[i])
		if d <= 0 || !done[i] {
			continue
		}
		if sr.phase[i] == nil {
			sr.phase[i] = bind(m.phase.GetMetricWithLabelValues, sr.addr(phases[i])...)
		}
		sr.phase[i].Observe(d.Seconds())
	}

	if r.TLS != nil && !r.TLS.NotAfter.IsZero() {
		if sr.certExpiry == nil {
			sr.certExpiry = bind(m.certExpiry.GetMetricWithLabelValues, sr.job()...)
		}
		sr.certExpiry.Set(float64(r.TLS.NotAfter.Unix()))
	}

	if responded {
		e.cacheResult(sr, r.CDN).Inc()
		e.setInfo(sr, r)
		e.observeUpstream(sr, r.CDN.Upstream)
	}

	if c := r.Conditional; c != nil {
		e.revalidation(sr, c)
	}
	if w := r.Warm; w != nil {
		observeFollow(&sr.keepalive, m.keepalive, sr, *w)
	}

	sr.remember(r)
}

// completedPhases says which phases of r may be observed. All of them for a
// successful probe. For a failed one only the connection-setup phases
// (dns, connect, tls) that are known to have finished: they describe the
// network path whatever happened after them. The response phases (ttfb,
// transfer, total, first_byte) of a failed probe are never observed, so a
// fast 503, a truncated body or a timeout does not pull the latency
// quantiles; probe_duration_seconds still shows the time to failure.
//
// httptrace stamps the end of DNS and TLS even when they fail, so a
// non-zero duration alone does not prove a phase finished; a later
// milestone does.
func completedPhases(r *httptrace.Result) (done [numPhases]bool) {
	if r.Err == nil {
		for i := range done {
			done[i] = true
		}
		return done
	}
	t := r.Timings
	switch r.Err.Phase {
	case httptrace.ErrDNS:
		return done
	case httptrace.ErrConnect, httptrace.ErrTLS, httptrace.ErrHTTP, httptrace.ErrAssert:
		// Classified past DNS: the lookup succeeded.
		done[pDNS] = true
	default: // timeout (or an unknown phase): only what a later step proves
		done[pDNS] = r.ConnectAttempts > 0 || t.Connect > 0
	}
	// The connect end is stamped only when the connection was established.
	done[pConnect] = t.Connect > 0
	switch r.Err.Phase {
	case httptrace.ErrHTTP, httptrace.ErrAssert:
		done[pTLS] = true
	case httptrace.ErrTimeout:
		done[pTLS] = r.TLS != nil || r.Status != 0 || t.TTFB > 0
	}
	return done
}

// probeFailed returns the probes_total counter of a failure phase.
func (e *Exporter) probeFailed(sr *series, phase string) prometheus.Counter {
	for i := 1; i < len(results); i++ {
		if results[i] == phase {
			if sr.probes[i] == nil {
				sr.probes[i] = bind(e.m.probes.GetMetricWithLabelValues, sr.addr(phase)...)
			}
			return sr.probes[i]
		}
	}
	// A phase this package does not know yet: counted, not cached.
	return bind(e.m.probes.GetMetricWithLabelValues, sr.addr(labelValue(phase))...)
}

func (e *Exporter) cacheResult(sr *series, c httptrace.CDN) prometheus.Counter {
	k := cacheKey{cache: c.Cache, pop: c.POP}
	if k.cache == "" {
		k.cache = httptrace.CacheUnknown
	}
	if ctr := sr.cache[k]; ctr != nil {
		return ctr
	}
	// A new value: bound its size and the number of distinct POPs.
	k.cache, k.pop = labelValue(k.cache), labelValue(k.pop)
	if _, seen := sr.pops[k.pop]; !seen {
		if len(sr.pops) >= maxPOPsPerSeries {
			k.pop = popOverflow
		} else {
			if sr.pops == nil {
				sr.pops = map[string]struct{}{}
			}
			sr.pops[k.pop] = struct{}{}
		}
	}
	if ctr := sr.cache[k]; ctr != nil {
		return ctr
	}
	ctr := bind(e.m.cache.GetMetricWithLabelValues, append(sr.job(), k.cache, k.pop)...)
	if sr.cache == nil {
		sr.cache = map[cacheKey]prometheus.Counter{}
	}
	// Cache under the sample's own key too when it differs (a long or an
	// overflowing POP), so it is not re-bounded on every sample.
	sr.cache[k] = ctr
	sr.cache[cacheKey{cache: orUnknown(c.Cache), pop: c.POP}] = ctr
	return ctr
}

func orUnknown(s string) string {
	if s == "" {
		return httptrace.CacheUnknown
	}
	return s
}

// labelValue bounds a label value read from a response.
func labelValue(s string) string {
	if len(s) > maxLabelLen {
		s = s[:maxLabelLen]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// setInfo keeps one info series per address: a changed value set replaces
// the old series instead of adding one.
func (e *Exporter) setInfo(sr *series, r *httptrace.Result) {
	v := [4]string{r.Proto, "", r.IPFamily, r.CDN.Provider}
	if r.TLS != nil {
		v[1] = r.TLS.Version
	}
	if sr.hasInfo && v == sr.info {
		return
	}
	if sr.hasInfo {
		e.m.info.DeleteLabelValues(sr.addr(sr.info[:]...)...)
	}
	for i := range v {
		v[i] = labelValue(v[i])
	}
	bind(e.m.info.GetMetricWithLabelValues, sr.addr(v[:]...)...).Set(1)
	sr.info, sr.hasInfo = v, true
}

func (e *Exporter) observeUpstream(sr *series, u httptrace.Upstream) {
	ds := [len(upstreamPhases)]time.Duration{u.DNS, u.Connect, u.FirstByte, u.DownstreamFirst}
	for i, d := range ds {
		// Zero means absent, or (dns, connect) that the edge did not do one:
		// a cached lookup or a reused connection. Neither is a duration.
		if d <= 0 {
			continue
		}
		if sr.upstream[i] == nil {
			sr.upstream[i] = bind(e.m.upstream.GetMetricWithLabelValues, append(sr.job(), upstreamPhases[i])...)
		}
		sr.upstream[i].Observe(d.Seconds())
	}
}

func (e *Exporter) revalidation(sr *series, c *httptrace.Conditional) {
	res := revalSkipped
	switch {
	case !c.Sent:
	case c.Error != nil:
		res = revalError
	case c.NotModified:
		res = revalNotModified
	default:
		res = revalModified
	}
	if sr.revals[res] == nil {
		sr.revals[res] = bind(e.m.revals.GetMetricWithLabelValues, append(sr.job(), revalResults[res])...)
	}
	sr.revals[res].Inc()
	if res == revalNotModified || res == revalModified {
		observeFollow(&sr.revalTime, e.m.revalTime, sr, c.Timings)
	}
}

// observeFollow observes ttfb and total of a follow-up request.
func observeFollow(obs *[len(followPhases)]prometheus.Observer, vec *prometheus.HistogramVec, sr *series, t httptrace.Timings) {
	for i, p := range followPhases {
		d := t.Get(p)
		if d <= 0 {
			continue
		}
		if obs[i] == nil {
			obs[i] = bind(vec.GetMetricWithLabelValues, append(sr.job(), p)...)
		}
		obs[i].Observe(d.Seconds())
	}
}

// Forget deletes the series of every job (target × role) for which keep
// returns false, at every location and address. Called on config reload:
// the series of kept jobs, counters included, are untouched. Samples of a
// forgotten job that arrive later are dropped if they were already on
// their way; new ones start its series afresh.
func (e *Exporter) Forget(keep func(target, role string) bool) {
	e.mu.Lock()
	type job struct{ target, role string }
	gone := map[job]bool{}
	var dead []*series
	for k, sr := range e.series {
		if keep(k.target, k.role) {
			continue
		}
		gone[job{k.target, k.role}] = true
		dead = append(dead, sr)
		delete(e.series, k)
	}
	e.mu.Unlock()

	// Mark before deleting: a Write holding the series finishes first, one
	// that comes after sees dead, so nothing is re-created once deleted.
	for _, sr := range dead {
		sr.mu.Lock()
		sr.dead = true
		sr.mu.Unlock()
	}
	for j := range gone {
		for _, v := range e.m.perJob {
			// As bind stored them.
			v.DeletePartialMatch(prometheus.Labels{
				lTarget: strings.ToValidUTF8(j.target, "\uFFFD"), lRole: strings.ToValidUTF8(j.role, "\uFFFD"),
			})
		}
	}
}
