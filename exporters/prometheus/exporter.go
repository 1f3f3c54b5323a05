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

// bucketBounds are the classic histogram buckets (seconds), suited to
// 1 ms–10 s. An array, so that a histogram's counts are one too.
var bucketBounds = [...]float64{.001, .0025, .005, .01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2.5, 5, 10}

const numBuckets = len(bucketBounds)

// Buckets are the classic histogram buckets (seconds), suited to 1 ms–10 s:
// a copy, for users of the package. Every histogram also has native
// buckets, which Prometheus uses when it scrapes with native histograms
// enabled.
var Buckets = append([]float64(nil), bucketBounds[:]...)

// Native histogram parameters, those client_golang's histograms had here:
// bucket factor 1.1 (about 10% resolution: schema 3, see hist.go), a
// bounded bucket count, and at most one reset an hour when that bound is
// hit.
const (
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

// phases are the observed phases, in wire order; the index is that of a
// series' histograms.
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
// does not allocate (but to grow a native histogram by a bucket, now and
// then).
//
// It keeps each series' state itself, compactly, and builds the metrics
// when scraped (collector.go), rather than keeping client_golang vector
// children, which cost about 2 KiB per histogram and 0.9 KiB per counter or
// gauge: tens of KiB per target × role, against a budget of 8 KiB.
type Exporter struct {
	c         *collector
	buildInfo prometheus.Gauge
	now       func() time.Time // a clock tests can set

	mu sync.RWMutex
	// series by the sample's label values. A series whose values needed
	// repair (invalid UTF-8) is stored under its repaired values too, so
	// two samples that repair alike share it as they shared a vector child.
	series map[seriesKey]*series
	jobs   map[jobKey]*job // by label values
}

var _ probe.Sink = (*Exporter)(nil)

// New registers the metrics on reg, each with constLabels (may be nil)
// added, and returns the exporter. It panics if the metrics are already
// registered there, as prometheus.MustRegister does: one Exporter per
// registry, kept across config reloads (see Forget).
func New(reg prometheus.Registerer, constLabels map[string]string) *Exporter {
	e := &Exporter{now: time.Now, series: map[seriesKey]*series{}, jobs: map[jobKey]*job{}}
	e.c = newCollector(e, constLabels)
	version, revision, goVersion := buildInfo()
	e.buildInfo = prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "edgeprobe_build_info",
		Help:        "The agent's version, VCS revision and Go version, as labels; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	e.buildInfo.Set(1)
	// The collector adds the constant labels itself (see collector.constLP).
	reg.MustRegister(e.c)
	if len(constLabels) > 0 {
		reg = prometheus.WrapRegistererWith(constLabels, reg)
	}
	reg.MustRegister(e.buildInfo)
	return e
}

// seriesKey is one job (target × role) at one location, and one of its
// addresses when the target probes them all.
type seriesKey struct {
	target, role, location, address string
}

func (k seriesKey) job() jobKey { return jobKey{k.target, k.role, k.location} }

// jobKey is one job at one location: the labels of the metrics that do not
// have an address.
type jobKey struct {
	target, role, location string
}

// job is the state of the metrics of one jobKey, shared by its addresses'
// series. Its mutex also guards those series: they are written together.
type job struct {
	key jobKey // label values

	mu   sync.Mutex
	dead bool // forgotten: late samples are dropped, not resurrected
	gone bool // Forget's mark; guarded by Exporter.mu

	hasCert    bool
	certExpiry int64 // unix seconds
	cache      []cacheCount
	revals     [numReval]counter
	revalTime  [len(followPhases)]*hist
	keepalive  [len(followPhases)]*hist
	upstream   [len(upstreamPhases)]*hist
}

// cacheCount is edgeprobe_cache_results_total for one cache result and POP.
type cacheCount struct {
	cache, pop string // label values
	counter
}

// series is the state of one seriesKey, and what the status page shows
// about it; job.mu guards it. Histograms and counters come into being on
// first use, so a target never gets series for phases or results it does
// not have (tls for http://). The gauges probe_success, _duration_seconds,
// last_probe_timestamp_seconds and http_status_code exist from the first
// sample on and are read from last and history.
type series struct {
	job *job
	key seriesKey // label values

	phase   [numPhases]*hist
	probes  [len(results)]counter // probes[0], success, exists from the start
	unknown []namedCount          // results of phases this package does not know yet
	pops    []string              // POPs seen, to bound them (maxPOPsPerSeries)
	info    [4]string             // http_version, tls_version, ip_family, cdn of the info series
	hasInfo bool

	last       lastSample
	history    uint32 // success bits of the recent probes, newest in bit 0
	historyLen uint8
}

// counter is a counter series: its count, and when it came into being
// (unix ns, its created timestamp; 0: not yet).
type counter struct {
	n       uint64
	created int64
}

func (c *counter) inc(now func() time.Time) {
	if c.created == 0 {
		c.created = now().UnixNano()
	}
	c.n++
}

type namedCount struct {
	name string
	counter
}

// recentProbes is the window of the status page's success ratio.
const recentProbes = 20

// Write records one sample. Samples without a result are ignored: there is
// nothing to say about them.
func (e *Exporter) Write(_ context.Context, s *probe.Sample) {
	if s == nil || s.Result == nil {
		return
	}
	sr := e.lookup(seriesKey{target: s.Target, role: s.Role, location: s.Location, address: s.Address})
	j := sr.job
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.dead {
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
	if sr = e.series[k]; sr != nil {
		return sr
	}
	// Label values must be valid UTF-8 (client_golang refuses the rest):
	// repair rather than fail, a probe must never crash the agent.
	l := seriesKey{validLabel(k.target), validLabel(k.role), validLabel(k.location), validLabel(k.address)}
	if sr = e.series[l]; sr == nil {
		j := e.jobs[l.job()]
		if j == nil {
			j = &job{key: l.job()}
			e.jobs[l.job()] = j
		}
		sr = &series{job: j, key: l}
		// success exists from the first sample on, at 0, so rate() and
		// increase() see the first success too.
		sr.probes[0].created = e.now().UnixNano()
		e.series[l] = sr
	}
	e.series[k] = sr
	return sr
}

func validLabel(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// record updates every metric of one series from one result; job.mu is
// held.
func (e *Exporter) record(sr *series, r *httptrace.Result) {
	j := sr.job
	if r.Err == nil {
		sr.probes[0].inc(e.now)
	} else {
		e.probeFailed(sr, r.Err.Phase)
	}

	// Phases.
	done := completedPhases(r)
	for i := range phases {
		d := r.Timings.Get(phases[i])
		if d <= 0 || !done[i] {
			continue
		}
		e.observe(&sr.phase[i], d)
	}

	if r.TLS != nil && !r.TLS.NotAfter.IsZero() {
		j.hasCert, j.certExpiry = true, r.TLS.NotAfter.Unix()
	}

	if r.Status != 0 { // responded
		e.cacheResult(sr, r.CDN)
		sr.setInfo(r)
		e.observeUpstream(j, r.CDN.Upstream)
	}

	if c := r.Conditional; c != nil {
		e.revalidation(j, c)
	}
	if w := r.Warm; w != nil {
		e.observeFollow(&j.keepalive, *w)
	}

	sr.remember(r, e.now)
}

// observe adds d to the histogram *h, making it on first use.
func (e *Exporter) observe(h **hist, d time.Duration) {
	if *h == nil {
		*h = newHist(e.now())
	}
	(*h).observe(d.Seconds(), &e.c.bounds, e.now)
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

// probeFailed counts a failure in probes_total.
func (e *Exporter) probeFailed(sr *series, phase string) {
	for i := 1; i < len(results); i++ {
		if results[i] == phase {
			sr.probes[i].inc(e.now)
			return
		}
	}
	// A phase this package does not know yet.
	phase = labelValue(phase)
	for i := range sr.unknown {
		if sr.unknown[i].name == phase {
			sr.unknown[i].inc(e.now)
			return
		}
	}
	sr.unknown = append(sr.unknown, namedCount{name: phase})
	sr.unknown[len(sr.unknown)-1].inc(e.now)
}

// cacheResult counts the response in cache_results_total, bounding the
// size of its label values and the number of POPs a series adds.
func (e *Exporter) cacheResult(sr *series, c httptrace.CDN) {
	cache, pop := labelValue(orUnknown(c.Cache)), labelValue(c.POP)
	if !containsString(sr.pops, pop) {
		if len(sr.pops) >= maxPOPsPerSeries {
			pop = popOverflow
		} else {
			sr.pops = append(sr.pops, pop)
		}
	}
	j := sr.job
	for i := range j.cache {
		if j.cache[i].cache == cache && j.cache[i].pop == pop {
			j.cache[i].inc(e.now)
			return
		}
	}
	j.cache = append(j.cache, cacheCount{cache: cache, pop: pop})
	j.cache[len(j.cache)-1].inc(e.now)
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return httptrace.CacheUnknown
	}
	return s
}

// labelValue bounds a label value read from a response. It allocates only
// to repair invalid UTF-8.
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
func (sr *series) setInfo(r *httptrace.Result) {
	v := [4]string{r.Proto, "", r.IPFamily, r.CDN.Provider}
	if r.TLS != nil {
		v[1] = r.TLS.Version
	}
	if sr.hasInfo && v == sr.info {
		return
	}
	for i := range v {
		v[i] = labelValue(v[i])
	}
	sr.info, sr.hasInfo = v, true
}

func (e *Exporter) observeUpstream(j *job, u httptrace.Upstream) {
	ds := [len(upstreamPhases)]time.Duration{u.DNS, u.Connect, u.FirstByte, u.DownstreamFirst}
	for i, d := range ds {
		// Zero means absent, or (dns, connect) that the edge did not do one:
		// a cached lookup or a reused connection. Neither is a duration.
		if d <= 0 {
			continue
		}
		e.observe(&j.upstream[i], d)
	}
}

func (e *Exporter) revalidation(j *job, c *httptrace.Conditional) {
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
	j.revals[res].inc(e.now)
	if res == revalNotModified || res == revalModified {
		e.observeFollow(&j.revalTime, c.Timings)
	}
}

// observeFollow observes ttfb and total of a follow-up request.
func (e *Exporter) observeFollow(hs *[len(followPhases)]*hist, t httptrace.Timings) {
	for i, p := range followPhases {
		if d := t.Get(p); d > 0 {
			e.observe(&hs[i], d)
		}
	}
}

// Forget deletes the series of every job (target × role) for which keep
// returns false, at every location and address. Called on config reload:
// the series of kept jobs, counters included, are untouched. Samples of a
// forgotten job that arrive later are dropped if they were already on
// their way; new ones start its series afresh.
func (e *Exporter) Forget(keep func(target, role string) bool) {
	e.mu.Lock()
	for k, sr := range e.series {
		if !keep(k.target, k.role) {
			sr.job.gone = true
		}
	}
	var dead []*job
	for k, sr := range e.series {
		if sr.job.gone {
			delete(e.series, k)
		}
	}
	for k, j := range e.jobs {
		if j.gone {
			delete(e.jobs, k)
			dead = append(dead, j)
		}
	}
	e.mu.Unlock()

	// A Write holding the job finishes first; one that comes after sees
	// dead, so nothing is written to state no scrape reads.
	for _, j := range dead {
		j.mu.Lock()
		j.dead = true
		j.mu.Unlock()
	}
}

// gaugeValues are the last-sample gauges of a series.
func (sr *series) gaugeValues() (success, duration, start, status float64) {
	if sr.historyLen > 0 && sr.history&1 != 0 {
		success = 1
	}
	return success, sr.last.timings.Total.Seconds(), float64(sr.last.start) / 1e9, float64(sr.last.status)
}
