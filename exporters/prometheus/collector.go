package promexp

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The metric families of the contract with per-target labels; their names,
// help and labels are pinned by testdata/metrics.golden.
const (
	fPhase = iota
	fProbes
	fSuccess
	fDuration
	fLastTime
	fCache
	fCertExpiry
	fStatus
	fInfo
	fRevalTime
	fRevals
	fKeepalive
	fUpstream
	numFamilies
)

// collector is the prometheus.Collector of the Exporter's series: it builds
// their metrics from the compact state when scraped. The metrics it sends
// are snapshots taken under the job's lock, ready-made dto messages that
// the label pairs below and the series' own (immutable) label values are
// shared into, so a scrape allocates about one object per metric.
type collector struct {
	e      *Exporter
	descs  [numFamilies]*prometheus.Desc
	bounds [numBuckets]float64 // the classic buckets' upper bounds point here

	// constLP are the constant labels, sorted by name. The collector adds
	// them itself rather than through a wrapping registerer, whose Collect
	// would hide the caller's channel from skip.
	constLP []*dto.LabelPair
	// text is what the text encoder (text.go) needs of each family, order
	// the families in the order of their names.
	text  [numFamilies]familyText
	order [numFamilies]int

	// skip holds the channels Collect sends nothing to, and whether it was
	// called with them: the metrics handler collects the registry's other
	// metrics through one and writes this collector's families itself.
	skipMu sync.Mutex
	skip   map[chan<- prometheus.Metric]bool

	// Label names and the enumerated label values; never changed after
	// newCollector, so every scrape's label pairs may point to them.
	n          labelNames
	values     enumValues
	ranks      enumRanks
	phaseLP    [numPhases]dto.LabelPair
	resultLP   [len(results)]dto.LabelPair
	revalLP    [numReval]dto.LabelPair
	followLP   [len(followPhases)]dto.LabelPair
	upstreamLP [len(upstreamPhases)]dto.LabelPair
}

type labelNames struct {
	target, role, location, address, phase, result, cache, pop string
	httpVersion, tlsVersion, ipFamily, cdn                     string
}

type enumValues struct {
	phases   [numPhases]string
	results  [len(results)]string
	revals   [numReval]string
	follow   [len(followPhases)]string
	upstream [len(upstreamPhases)]string
}

// enumRanks are the positions of the enumValues in their sorted order.
type enumRanks struct {
	phases   [numPhases]int
	results  [len(results)]int
	revals   [numReval]int
	follow   [len(followPhases)]int
	upstream [len(upstreamPhases)]int
}

func newCollector(e *Exporter, constLabels map[string]string) *collector {
	c := &collector{e: e, bounds: bucketBounds, skip: map[chan<- prometheus.Metric]bool{}}
	for _, name := range slices.Sorted(maps.Keys(constLabels)) {
		c.constLP = append(c.constLP, &dto.LabelPair{Name: new(name), Value: new(constLabels[name])})
	}
	c.n = labelNames{
		target: lTarget, role: lRole, location: lLocation, address: lAddress, phase: "phase", result: "result",
		cache: "cache", pop: "pop", httpVersion: "http_version", tlsVersion: "tls_version", ipFamily: "ip_family", cdn: "cdn",
	}
	c.values = enumValues{phases: phases, results: results, revals: revalResults, follow: followPhases, upstream: upstreamPhases}
	rank(c.values.phases[:], c.ranks.phases[:])
	rank(c.values.results[:], c.ranks.results[:])
	rank(c.values.revals[:], c.ranks.revals[:])
	rank(c.values.follow[:], c.ranks.follow[:])
	rank(c.values.upstream[:], c.ranks.upstream[:])
	for i := range c.phaseLP {
		c.phaseLP[i] = dto.LabelPair{Name: &c.n.phase, Value: &c.values.phases[i]}
	}
	for i := range c.resultLP {
		c.resultLP[i] = dto.LabelPair{Name: &c.n.result, Value: &c.values.results[i]}
	}
	for i := range c.revalLP {
		c.revalLP[i] = dto.LabelPair{Name: &c.n.result, Value: &c.values.revals[i]}
	}
	for i := range c.followLP {
		c.followLP[i] = dto.LabelPair{Name: &c.n.phase, Value: &c.values.follow[i]}
	}
	for i := range c.upstreamLP {
		c.upstreamLP[i] = dto.LabelPair{Name: &c.n.phase, Value: &c.values.upstream[i]}
	}

	job := []string{lTarget, lRole, lLocation}
	addr := []string{lTarget, lRole, lLocation, lAddress}
	with := func(base []string, extra ...string) []string {
		return append(append([]string(nil), base...), extra...)
	}
	desc := func(f int, name, help string, labels []string) {
		c.descs[f] = prometheus.NewDesc(name, help, labels, constLabels)
		c.text[f] = newFamilyText(f, name, help, labels, constLabels)
	}
	desc(fPhase, "edgeprobe_phase_duration_seconds",
		"Duration of one phase of a probe on a new connection (dns, connect, tls, ttfb, transfer, total, first_byte). "+
			"Setup phases (dns, connect, tls) are observed whenever they finished, response phases only for successful probes; a phase that did not happen is not observed.",
		with(addr, "phase"))
	desc(fProbes, "edgeprobe_probes_total",
		"Probes run, by result: success, or the phase the probe failed in (dns, connect, tls, http, timeout, assert).",
		with(addr, "result"))
	desc(fSuccess, "edgeprobe_probe_success",
		"Whether the last probe succeeded (1) or failed (0).", addr)
	desc(fDuration, "edgeprobe_probe_duration_seconds",
		"Total duration of the last probe, until success or failure.", addr)
	desc(fLastTime, "edgeprobe_last_probe_timestamp_seconds",
		"Unix time the last probe started.", addr)
	desc(fCache, "edgeprobe_cache_results_total",
		"Responses by normalized CDN cache result (hit, miss, refresh_hit, bypass, error, unknown) and CDN POP (empty when none).",
		with(job, "cache", "pop"))
	desc(fCertExpiry, "edgeprobe_tls_cert_not_after_timestamp_seconds",
		"Unix time the leaf certificate of the last TLS handshake expires.", job)
	desc(fStatus, "edgeprobe_http_status_code",
		"HTTP status code of the last probe's final response (0 when no response arrived).", addr)
	desc(fInfo, "edgeprobe_probe_info",
		"Facts of the last response, as labels; the value is always 1.",
		with(addr, "http_version", "tls_version", "ip_family", "cdn"))
	desc(fRevalTime, "edgeprobe_revalidation_duration_seconds",
		"Duration of the conditional request (If-Modified-Since / If-None-Match) that follows a 200, by phase (ttfb, total).",
		with(job, "phase"))
	desc(fRevals, "edgeprobe_revalidations_total",
		"Conditional requests by result: not_modified (304), modified, error, skipped_no_validator (the 200 had no Last-Modified or ETag).",
		with(job, "result"))
	desc(fKeepalive, "edgeprobe_keepalive_duration_seconds",
		"Duration of a second request on the probe's kept-alive connection, by phase (ttfb, total).",
		with(job, "phase"))
	desc(fUpstream, "edgeprobe_upstream_duration_seconds",
		"The CDN edge's own timings towards the origin from CloudFront Server-Timing, by phase (dns, connect, first_byte, downstream_first_byte); observed when present and not zero.",
		with(job, "phase"))
	for i := range c.order {
		c.order[i] = i
	}
	slices.SortFunc(c.order[:], func(a, b int) int { return strings.Compare(c.text[a].name, c.text[b].name) })
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It holds one job's lock at a
// time, and none while sending.
//
// It sends each family's metrics in the order the registry sorts them into
// (by label values, labels by name), because its sort is then a linear
// check instead of a third of the scrape: series in order of address,
// location, role and target, and within one address and location, one
// phase (or result) after the other.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.skipped(ch) {
		return
	}
	all, jobs := c.e.snapshot()
	now := c.e.now()
	sortSeries(all)
	sortJobs(jobs)
	var out emitter
	for len(all) > 0 {
		n := 1
		for n < len(all) && all[n].key.address == all[0].key.address && all[n].key.location == all[0].key.location {
			n++
		}
		for _, sr := range all[:n] {
			sr.job.mu.Lock()
			if !sr.job.dead {
				c.seriesMetrics(&out, sr, now)
			}
			sr.job.mu.Unlock()
		}
		out.flush(ch)
		all = all[n:]
	}
	for len(jobs) > 0 {
		n := 1
		for n < len(jobs) && jobs[n].key.location == jobs[0].key.location {
			n++
		}
		for _, j := range jobs[:n] {
			j.mu.Lock()
			if !j.dead {
				c.jobMetrics(&out, j, now)
			}
			j.mu.Unlock()
		}
		out.flush(ch)
		jobs = jobs[n:]
	}
}

// skipFor makes Collect(ch) send nothing until unskip(ch).
func (c *collector) skipFor(ch chan<- prometheus.Metric) {
	c.skipMu.Lock()
	c.skip[ch] = false
	c.skipMu.Unlock()
}

// unskip ends skipFor(ch) and says whether Collect was called with ch
// meanwhile, that is, whether the collector is in what was collected.
func (c *collector) unskip(ch chan<- prometheus.Metric) bool {
	c.skipMu.Lock()
	defer c.skipMu.Unlock()
	called := c.skip[ch]
	delete(c.skip, ch)
	return called
}

func (c *collector) skipped(ch chan<- prometheus.Metric) bool {
	c.skipMu.Lock()
	defer c.skipMu.Unlock()
	if _, ok := c.skip[ch]; ok {
		c.skip[ch] = true
		return true
	}
	return false
}

// sortSeries sorts series by address, location, role and target, the
// registry's order of their metrics; a family's own label (phase, result)
// sorts between location and role, which callers handle by grouping.
func sortSeries(all []*series) {
	slices.SortFunc(all, func(a, b *series) int {
		return cmp.Or(strings.Compare(a.key.address, b.key.address), strings.Compare(a.key.location, b.key.location),
			strings.Compare(a.key.role, b.key.role), strings.Compare(a.key.target, b.key.target))
	})
}

// sortJobs sorts jobs by location, role and target.
func sortJobs(jobs []*job) {
	slices.SortFunc(jobs, func(a, b *job) int {
		return cmp.Or(strings.Compare(a.key.location, b.key.location),
			strings.Compare(a.key.role, b.key.role), strings.Compare(a.key.target, b.key.target))
	})
}

// emitter holds the metrics of one group of series (or jobs) in lists that,
// sent one after the other, are in the registry's order.
type emitter struct {
	lists [numLists][]prometheus.Metric
}

func (e *emitter) add(list int, m prometheus.Metric) { e.lists[list] = append(e.lists[list], m) }

func (e *emitter) flush(ch chan<- prometheus.Metric) {
	for i, l := range e.lists {
		for _, m := range l {
			ch <- m
		}
		clear(l)
		e.lists[i] = l[:0]
	}
}

// The emitter's lists: of a series' families, then of a job's. A family
// with an enumerated label that sorts before role and target has a list per
// value, in the order of the values.
const (
	lPhase         = 0                      // + rank of the phase
	lProbes        = lPhase + numPhases     // + rank of the result
	lUnknown       = lProbes + len(results) // results of unknown phases: left to the registry's sort
	lSuccess       = lUnknown + 1
	lDuration      = lSuccess + 1
	lLastTime      = lDuration + 1
	lStatus        = lLastTime + 1
	lInfo          = lStatus + 1 // sorts by its own labels first: left to the registry's sort
	numSeriesLists = lInfo + 1

	lCertExpiry = 0
	lCache      = 1                               // sorts by cache first: left to the registry's sort
	lRevals     = 2                               // + rank
	lRevalTime  = lRevals + numReval              // + rank
	lKeepalive  = lRevalTime + len(followPhases)  // + rank
	lUpstream   = lKeepalive + len(followPhases)  // + rank
	numJobLists = lUpstream + len(upstreamPhases) // + rank

	numLists = max(numSeriesLists, numJobLists)
)

// rank sets r[i] to the position of values[i] in their sorted order.
func rank(values []string, r []int) {
	for i, v := range values {
		for _, w := range values {
			if w < v {
				r[i]++
			}
		}
	}
}

// snapshot lists the live series (each once: not the aliases of repaired
// label values) and jobs.
func (e *Exporter) snapshot() ([]*series, []*job) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	series := make([]*series, 0, len(e.series))
	for k, sr := range e.series {
		if k == sr.key {
			series = append(series, sr)
		}
	}
	jobs := make([]*job, 0, len(e.jobs))
	for _, j := range e.jobs {
		jobs = append(jobs, j)
	}
	return series, jobs
}

func (e *Exporter) allSeries() []*series {
	series, _ := e.snapshot()
	return series
}

// seriesLabels are the label pairs of a series' own labels for one scrape.
type seriesLabels struct {
	target, role, location, address dto.LabelPair
}

type jobLabels struct {
	target, role, location dto.LabelPair
}

// seriesMetrics adds the metrics of one series; job.mu is held.
func (c *collector) seriesMetrics(out *emitter, sr *series, now time.Time) {
	l := &seriesLabels{
		target:   dto.LabelPair{Name: &c.n.target, Value: &sr.key.target},
		role:     dto.LabelPair{Name: &c.n.role, Value: &sr.key.role},
		location: dto.LabelPair{Name: &c.n.location, Value: &sr.key.location},
		address:  dto.LabelPair{Name: &c.n.address, Value: &sr.key.address},
	}
	for i, h := range sr.phase {
		if h != nil {
			out.add(lPhase+c.ranks.phases[i], c.histogram(fPhase, h, now, &l.address, &l.location, &c.phaseLP[i], &l.role, &l.target))
		}
	}
	for i := range sr.probes {
		if sr.probes[i].created != 0 {
			out.add(lProbes+c.ranks.results[i], c.counter(fProbes, &sr.probes[i], &l.address, &l.location, &c.resultLP[i], &l.role, &l.target))
		}
	}
	for i := range sr.unknown {
		m := &namedCounterMetric{value: sr.unknown[i].name}
		m.lp = dto.LabelPair{Name: &c.n.result, Value: &m.value}
		c.fillCounter(&m.counterMetric, fProbes, &sr.unknown[i].counter, &l.address, &l.location, &m.lp, &l.role, &l.target)
		out.add(lUnknown, m)
	}
	success, duration, start, status := sr.gaugeValues()
	out.add(lSuccess, c.gauge(fSuccess, success, &l.address, &l.location, &l.role, &l.target))
	out.add(lDuration, c.gauge(fDuration, duration, &l.address, &l.location, &l.role, &l.target))
	out.add(lLastTime, c.gauge(fLastTime, start, &l.address, &l.location, &l.role, &l.target))
	out.add(lStatus, c.gauge(fStatus, status, &l.address, &l.location, &l.role, &l.target))
	if sr.hasInfo {
		m := &infoMetric{values: sr.info} // a copy: the series' may change
		for i, name := range [4]*string{&c.n.httpVersion, &c.n.tlsVersion, &c.n.ipFamily, &c.n.cdn} {
			m.lp[i] = dto.LabelPair{Name: name, Value: &m.values[i]}
		}
		c.fillGauge(&m.gaugeMetric, fInfo, 1,
			&l.address, &m.lp[3], &m.lp[0], &m.lp[2], &l.location, &l.role, &l.target, &m.lp[1])
		out.add(lInfo, m)
	}
}

// jobMetrics adds the metrics of one job; job.mu is held.
func (c *collector) jobMetrics(out *emitter, j *job, now time.Time) {
	l := &jobLabels{
		target:   dto.LabelPair{Name: &c.n.target, Value: &j.key.target},
		role:     dto.LabelPair{Name: &c.n.role, Value: &j.key.role},
		location: dto.LabelPair{Name: &c.n.location, Value: &j.key.location},
	}
	if j.hasCert {
		out.add(lCertExpiry, c.gauge(fCertExpiry, float64(j.certExpiry), &l.location, &l.role, &l.target))
	}
	for i := range j.cache {
		m := &cacheMetric{values: [2]string{j.cache[i].cache, j.cache[i].pop}}
		m.lp[0] = dto.LabelPair{Name: &c.n.cache, Value: &m.values[0]}
		m.lp[1] = dto.LabelPair{Name: &c.n.pop, Value: &m.values[1]}
		c.fillCounter(&m.counterMetric, fCache, &j.cache[i].counter, &m.lp[0], &l.location, &m.lp[1], &l.role, &l.target)
		out.add(lCache, m)
	}
	for i := range j.revals {
		if j.revals[i].created != 0 {
			out.add(lRevals+c.ranks.revals[i], c.counter(fRevals, &j.revals[i], &l.location, &c.revalLP[i], &l.role, &l.target))
		}
	}
	follow := [...]struct {
		f, list int
		hs      *[len(followPhases)]*hist
	}{{fRevalTime, lRevalTime, &j.revalTime}, {fKeepalive, lKeepalive, &j.keepalive}}
	for _, fh := range follow {
		for i, h := range fh.hs {
			if h != nil {
				out.add(fh.list+c.ranks.follow[i], c.histogram(fh.f, h, now, &l.location, &c.followLP[i], &l.role, &l.target))
			}
		}
	}
	for i, h := range j.upstream {
		if h != nil {
			out.add(lUpstream+c.ranks.upstream[i], c.histogram(fUpstream, h, now, &l.location, &c.upstreamLP[i], &l.role, &l.target))
		}
	}
}

// metric is one metric of one scrape: a snapshot, written out as is.
// labels are sorted by name, as client_golang's own metrics have them.
type metric struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	counter *dto.Counter
	gauge   *dto.Gauge
	hist    *dto.Histogram
	store   [8]*dto.LabelPair // labels' array
}

func (m *metric) Desc() *prometheus.Desc { return m.desc }

func (m *metric) Write(out *dto.Metric) error {
	out.Label, out.Counter, out.Gauge, out.Histogram = m.labels, m.counter, m.gauge, m.hist
	return nil
}

// init sets desc and labels: lps (sorted by name) merged with the
// constant labels. The label slice has no spare capacity, so a wrapping
// registerer that appends constant labels copies it.
func (m *metric) init(desc *prometheus.Desc, lps, constLP []*dto.LabelPair) {
	m.desc = desc
	if len(constLP) == 0 {
		n := copy(m.store[:], lps)
		m.labels = m.store[:n:n]
		return
	}
	var labels []*dto.LabelPair
	if n := len(lps) + len(constLP); n <= len(m.store) {
		labels = m.store[:0:n]
	} else {
		labels = make([]*dto.LabelPair, 0, n)
	}
	for len(lps) > 0 || len(constLP) > 0 {
		if len(constLP) == 0 || len(lps) > 0 && lps[0].GetName() < constLP[0].GetName() {
			labels, lps = append(labels, lps[0]), lps[1:]
		} else {
			labels, constLP = append(labels, constLP[0]), constLP[1:]
		}
	}
	m.labels = labels
}

type counterMetric struct {
	metric
	c       dto.Counter
	value   float64
	created timestamppb.Timestamp
}

type gaugeMetric struct {
	metric
	g     dto.Gauge
	value float64
}

type namedCounterMetric struct {
	counterMetric
	lp    dto.LabelPair
	value string
}

type cacheMetric struct {
	counterMetric
	lp     [2]dto.LabelPair
	values [2]string
}

type infoMetric struct {
	gaugeMetric
	lp     [4]dto.LabelPair
	values [4]string
}

func (c *collector) counter(f int, ctr *counter, lps ...*dto.LabelPair) *counterMetric {
	m := new(counterMetric)
	c.fillCounter(m, f, ctr, lps...)
	return m
}

func (c *collector) fillCounter(m *counterMetric, f int, ctr *counter, lps ...*dto.LabelPair) {
	m.init(c.descs[f], lps, c.constLP)
	m.value = float64(ctr.n)
	m.created.Seconds, m.created.Nanos = ctr.created/1e9, int32(ctr.created%1e9)
	m.c.Value, m.c.CreatedTimestamp = &m.value, &m.created
	m.counter = &m.c
}

func (c *collector) gauge(f int, v float64, lps ...*dto.LabelPair) *gaugeMetric {
	m := new(gaugeMetric)
	c.fillGauge(m, f, v, lps...)
	return m
}

func (c *collector) fillGauge(m *gaugeMetric, f int, v float64, lps ...*dto.LabelPair) {
	m.init(c.descs[f], lps, c.constLP)
	m.value = v
	m.g.Value = &m.value
	m.gauge = &m.g
}

func (c *collector) histogram(f int, h *hist, now time.Time, lps ...*dto.LabelPair) *histMetric {
	h.maybeDueReset(now)
	m := new(histMetric)
	m.init(c.descs[f], lps, c.constLP)
	h.fill(m, &c.bounds)
	m.hist = &m.h
	return m
}
