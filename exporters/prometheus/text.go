package promexp

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The text encoder writes the Exporter's families in the two text formats
// straight from its state: what client_golang's registry and expfmt make of
// the collector's metrics (TestTextEncoderMatchesExpfmt), byte for byte,
// without a dto message per metric. A scrape of 5,000 targets is about
// 775,000 lines; the registry's path cost over a second of CPU for them.
//
// It writes one family after the other, taking a series' (job's) lock for
// each of its metrics, so a sample written during a scrape may show in one
// family and not yet in another, as with client_golang's own metrics; each
// metric (a histogram's buckets, sum and count) is a consistent snapshot.

// familyText is what the text encoder needs of one family, made once.
type familyText struct {
	name   string    // as gathered: edgeprobe_probes_total
	header [2][]byte // HELP and TYPE lines, by format (0: text 0.0.4, 1: OpenMetrics 1.0)
	// Sample names: name, or for a histogram its _bucket, _sum, _count.
	sample, bucket, sum, count string
	slots                      []labelSlot // all labels, sorted by name
	// legacy: every label name is a legacy one, so every escaping scheme
	// writes the family alike, and writes the names unquoted.
	legacy bool
}

// labelSlot is one label of a family: its name, and the index of its value
// among the metric's variable labels (the desc's order), or a constant.
type labelSlot struct {
	name   string
	prefix string // {name=" or ,name="
	index  int    // -1: constant
	constV string // the constant's value
}

func newFamilyText(f int, name, help string, labels []string, constLabels map[string]string) familyText {
	ft := familyText{name: name, sample: name, legacy: model.IsValidLegacyMetricName(name)}
	typ, omName := "gauge", name
	switch f {
	case fProbes, fCache, fRevals:
		typ, omName = "counter", strings.TrimSuffix(name, "_total")
	case fPhase, fRevalTime, fKeepalive, fUpstream:
		typ = "histogram"
		ft.bucket, ft.sum, ft.count = name+"_bucket", name+"_sum", name+"_count"
	}
	// As expfmt's writeEscapedString: OpenMetrics escapes quotes in help too.
	ft.header[0] = []byte("# HELP " + name + " " + strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help) + "\n# TYPE " + name + " " + typ + "\n")
	ft.header[1] = []byte("# HELP " + omName + " " + strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(help) + "\n# TYPE " + omName + " " + typ + "\n")
	for i, l := range labels {
		ft.slots = append(ft.slots, labelSlot{name: l, index: i})
	}
	for l, v := range constLabels {
		ft.slots = append(ft.slots, labelSlot{name: l, index: -1, constV: v})
	}
	slices.SortFunc(ft.slots, func(a, b labelSlot) int { return strings.Compare(a.name, b.name) })
	for i := range ft.slots {
		s := &ft.slots[i]
		ft.legacy = ft.legacy && model.IsValidLegacyMetricName(s.name)
		s.prefix = `,` + s.name + `="`
		if i == 0 {
			s.prefix = `{` + s.name + `="`
		}
	}
	return ft
}

// textOK says whether the text encoder can write the families: their label
// names need no escaping scheme (the constant ones could).
func (c *collector) textOK() bool {
	for i := range c.text {
		if !c.text[i].legacy {
			return false
		}
	}
	return true
}

// bucketLE are the le label values of the classic buckets and +Inf, by
// format (expfmt writes them as floats, in OpenMetrics with a ".0"), with
// what follows them up to the value: 0.001"}.
var bucketLE = func() (le [2][numBuckets + 1]string) {
	for i := range numBuckets + 1 {
		b := math.Inf(1)
		if i < numBuckets {
			b = bucketBounds[i]
		}
		le[0][i] = string(appendFloat(nil, b, false)) + `"} `
		le[1][i] = string(appendFloat(nil, b, true)) + `"} `
	}
	return le
}()

// appendFloat formats f as expfmt's writeFloat (om false) or
// writeOpenMetricsFloat (om true) does.
func appendFloat(b []byte, f float64, om bool) []byte {
	switch {
	case f == 0 || f == 1:
		// Below as well; these are just common.
		b = append(b, '0'+byte(f))
		if om {
			b = append(b, ".0"...)
		}
		return b
	case f == -1:
		if om {
			return append(b, "-1.0"...)
		}
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f > 0 && f < 1e6 && f == math.Trunc(f):
		// The shortest 'g' form of an integer below 1e6 is its digits.
		b = strconv.AppendUint(b, uint64(f), 10)
		if om {
			b = append(b, ".0"...)
		}
		return b
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if om && !bytes.ContainsAny(b[n:], "e.") {
		b = append(b, ".0"...)
	}
	return b
}

// appendCount formats a count as expfmt does: OpenMetrics writes counts of
// histograms as integers, text 0.0.4 as floats.
func appendCount(b []byte, n uint64, om bool) []byte {
	if om {
		return strconv.AppendUint(b, n, 10)
	}
	return appendFloat(b, float64(n), false)
}

// appendEscaped appends a label value escaped as in both formats.
func appendEscaped(b []byte, s string) []byte {
	i := 0
	for i < len(s) && s[i] != '\\' && s[i] != '"' && s[i] != '\n' {
		i++
	}
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// textScrape writes one scrape's families in one text format.
type textScrape struct {
	c   *collector
	om  bool
	fi  int // format index of familyText.header
	w   *pageWriter
	now time.Time

	series []*series // sorted by sortSeries
	jobs   []*job    // sorted by sortJobs

	ft      *familyText // the family being written
	started bool        // its header is written
	lbl     []byte      // the label set of the metric being written: {a="x",b="y" (no closing brace)
	vals    [8]string   // its variable label values, in the desc's order
	pfx     []byte      // a histogram's bucket lines up to the le value: name_bucket{a="x",le="
}

func (c *collector) newTextScrape(w *pageWriter, om bool) *textScrape {
	t := &textScrape{c: c, om: om, w: w, now: c.e.now(), lbl: make([]byte, 0, 256), pfx: make([]byte, 0, 320)}
	if om {
		t.fi = 1
	}
	t.series, t.jobs = c.e.snapshot()
	sortSeries(t.series)
	sortJobs(t.jobs)
	return t
}

// The label values of a series' and a job's metrics, in the desc's order
// (newCollector): target, role, location[, address], then the family's own.
func (t *textScrape) seriesVals(sr *series) {
	t.vals[0], t.vals[1], t.vals[2], t.vals[3] = sr.key.target, sr.key.role, sr.key.location, sr.key.address
}

func (t *textScrape) jobVals(j *job) {
	t.vals[0], t.vals[1], t.vals[2] = j.key.target, j.key.role, j.key.location
}

// labels renders t.vals into t.lbl, once per metric: a histogram's lines
// all reuse it.
func (t *textScrape) labels() {
	b := t.lbl[:0]
	for _, s := range t.ft.slots {
		b = append(b, s.prefix...)
		if s.index < 0 {
			b = appendEscaped(b, s.constV)
		} else {
			b = appendEscaped(b, t.vals[s.index])
		}
		b = append(b, '"')
	}
	t.lbl = b
}

// begin starts a metric of the current family: its header first, if this
// is the family's first metric (a family without metrics is not written).
func (t *textScrape) begin() {
	if !t.started {
		t.w.buf = append(t.w.buf, t.ft.header[t.fi]...)
		t.started = true
	}
	t.labels()
}

// line appends name, the label set and a space: the value follows.
func (t *textScrape) line(b []byte, name string) []byte {
	b = append(b, name...)
	if len(t.lbl) > 0 {
		b = append(b, t.lbl...)
		b = append(b, '}')
	}
	return append(b, ' ')
}

func (t *textScrape) gauge(v float64) {
	t.begin()
	b := t.line(t.w.buf, t.ft.sample)
	b = appendFloat(b, v, t.om)
	t.w.buf = append(b, '\n')
	t.w.maybeFlush()
}

// counter writes a counter's value: a float in both formats.
func (t *textScrape) counter(n uint64) { t.gauge(float64(n)) }

// histSnap is a histogram's classic part, taken under the job's lock.
type histSnap struct {
	classic [numBuckets]uint32
	count   uint32
	sum     float64
}

// snap takes h's classic part after a due reset, as the collector's
// histogram does.
func (t *textScrape) snap(h *hist, s *histSnap) {
	h.maybeDueReset(t.now)
	s.classic, s.count, s.sum = h.classic, h.count, h.sum
}

func (t *textScrape) histogram(s *histSnap) {
	t.begin()
	p := append(t.pfx[:0], t.ft.bucket...)
	if len(t.lbl) > 0 {
		p = append(p, t.lbl...)
		p = append(p, ',')
	} else {
		p = append(p, '{')
	}
	t.pfx = append(p, `le="`...)
	b := t.w.buf
	var cum uint64
	for i := range numBuckets + 1 {
		if i < numBuckets {
			cum += uint64(s.classic[i])
		} else {
			cum = uint64(s.count)
		}
		b = append(b, t.pfx...)
		b = append(b, bucketLE[t.fi][i]...)
		b = appendCount(b, cum, t.om)
		b = append(b, '\n')
	}
	b = t.line(b, t.ft.sum)
	b = appendFloat(b, s.sum, t.om)
	b = append(b, '\n')
	b = t.line(b, t.ft.count)
	b = appendCount(b, uint64(s.count), t.om)
	t.w.buf = append(b, '\n')
	t.w.maybeFlush()
}

// family writes family f; it stops early if the writer failed.
func (t *textScrape) family(f int) {
	t.ft, t.started = &t.c.text[f], false
	switch f {
	case fPhase:
		t.seriesHistograms()
	case fProbes:
		t.probes()
	case fSuccess, fDuration, fLastTime, fStatus:
		t.seriesGauges(f)
	case fInfo:
		t.info()
	case fCache:
		t.cache()
	case fCertExpiry:
		t.certExpiry()
	case fRevals:
		t.revals()
	case fRevalTime, fKeepalive, fUpstream:
		t.jobHistograms(f)
	}
}

// seriesGroups calls fn with each run of series of one address and
// location; within one, the family's own label (phase, result) sorts
// before role and target.
func (t *textScrape) seriesGroups(fn func(group []*series)) {
	all := t.series
	for len(all) > 0 && t.w.err == nil {
		n := 1
		for n < len(all) && all[n].key.address == all[0].key.address && all[n].key.location == all[0].key.location {
			n++
		}
		fn(all[:n])
		all = all[n:]
	}
}

// jobGroups is seriesGroups for jobs: runs of one location.
func (t *textScrape) jobGroups(fn func(group []*job)) {
	all := t.jobs
	for len(all) > 0 && t.w.err == nil {
		n := 1
		for n < len(all) && all[n].key.location == all[0].key.location {
			n++
		}
		fn(all[:n])
		all = all[n:]
	}
}

// sortedIndex lists the indexes of values in the order of the values.
func sortedIndex(values []string) []int {
	idx := make([]int, len(values))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(values[a], values[b]) })
	return idx
}

func (t *textScrape) seriesHistograms() {
	var s histSnap
	order := sortedIndex(t.c.values.phases[:])
	t.seriesGroups(func(group []*series) {
		for _, p := range order {
			for _, sr := range group {
				j := sr.job
				j.mu.Lock()
				ok := !j.dead && sr.phase[p] != nil
				if ok {
					t.snap(sr.phase[p], &s)
				}
				j.mu.Unlock()
				if ok {
					t.seriesVals(sr)
					t.vals[4] = t.c.values.phases[p]
					t.histogram(&s)
				}
			}
		}
	})
}

func (t *textScrape) probes() {
	known := sortedIndex(t.c.values.results[:])
	t.seriesGroups(func(group []*series) {
		// Results of phases this package does not know sort among the
		// known ones; there are seldom any.
		var unknown []string
		for _, sr := range group {
			sr.job.mu.Lock()
			for _, u := range sr.unknown {
				if !slices.Contains(unknown, u.name) {
					unknown = append(unknown, u.name)
				}
			}
			sr.job.mu.Unlock()
		}
		slices.Sort(unknown)
		k := 0
		for k < len(known) || len(unknown) > 0 {
			result, i := "", -1
			if k < len(known) && (len(unknown) == 0 || t.c.values.results[known[k]] < unknown[0]) {
				i = known[k]
				result = t.c.values.results[i]
				k++
			} else {
				result, unknown = unknown[0], unknown[1:]
			}
			for _, sr := range group {
				var n uint64
				j := sr.job
				j.mu.Lock()
				ok := !j.dead
				if ok && i >= 0 {
					n, ok = sr.probes[i].n, sr.probes[i].created != 0
				} else if ok {
					ok = false
					for _, u := range sr.unknown {
						if u.name == result {
							n, ok = u.n, true
							break
						}
					}
				}
				j.mu.Unlock()
				if ok {
					t.seriesVals(sr)
					t.vals[4] = result
					t.counter(n)
				}
			}
		}
	})
}

func (t *textScrape) seriesGauges(f int) {
	for _, sr := range t.series {
		if t.w.err != nil {
			return
		}
		j := sr.job
		j.mu.Lock()
		dead := j.dead
		success, duration, start, status := sr.gaugeValues()
		j.mu.Unlock()
		if dead {
			continue
		}
		v := success
		switch f {
		case fDuration:
			v = duration
		case fLastTime:
			v = start
		case fStatus:
			v = status
		}
		t.seriesVals(sr)
		t.gauge(v)
	}
}

// info sorts the info series by their labels: address, cdn, http_version,
// ip_family, location, role, target, tls_version.
func (t *textScrape) info() {
	type row struct {
		sr   *series
		info [4]string // http_version, tls_version, ip_family, cdn
	}
	rows := make([]row, 0, len(t.series))
	for _, sr := range t.series {
		j := sr.job
		j.mu.Lock()
		if !j.dead && sr.hasInfo {
			rows = append(rows, row{sr, sr.info})
		}
		j.mu.Unlock()
	}
	slices.SortFunc(rows, func(a, b row) int {
		ka, kb := &a.sr.key, &b.sr.key
		return cmp.Or(strings.Compare(ka.address, kb.address), strings.Compare(a.info[3], b.info[3]),
			strings.Compare(a.info[0], b.info[0]), strings.Compare(a.info[2], b.info[2]),
			strings.Compare(ka.location, kb.location), strings.Compare(ka.role, kb.role),
			strings.Compare(ka.target, kb.target), strings.Compare(a.info[1], b.info[1]))
	})
	for _, r := range rows {
		if t.w.err != nil {
			return
		}
		t.seriesVals(r.sr)
		t.vals[4], t.vals[5], t.vals[6], t.vals[7] = r.info[0], r.info[1], r.info[2], r.info[3]
		t.gauge(1)
	}
}

// cache sorts the cache counters by their labels: cache, location, pop,
// role, target.
func (t *textScrape) cache() {
	type row struct {
		j          *job
		cache, pop string
		n          uint64
	}
	rows := make([]row, 0, len(t.jobs))
	for _, j := range t.jobs {
		j.mu.Lock()
		if !j.dead {
			for _, c := range j.cache {
				rows = append(rows, row{j, c.cache, c.pop, c.n})
			}
		}
		j.mu.Unlock()
	}
	slices.SortFunc(rows, func(a, b row) int {
		ka, kb := &a.j.key, &b.j.key
		return cmp.Or(strings.Compare(a.cache, b.cache), strings.Compare(ka.location, kb.location),
			strings.Compare(a.pop, b.pop), strings.Compare(ka.role, kb.role), strings.Compare(ka.target, kb.target))
	})
	for _, r := range rows {
		if t.w.err != nil {
			return
		}
		t.jobVals(r.j)
		t.vals[3], t.vals[4] = r.cache, r.pop
		t.counter(r.n)
	}
}

func (t *textScrape) certExpiry() {
	for _, j := range t.jobs {
		if t.w.err != nil {
			return
		}
		j.mu.Lock()
		ok, v := !j.dead && j.hasCert, j.certExpiry
		j.mu.Unlock()
		if ok {
			t.jobVals(j)
			t.gauge(float64(v))
		}
	}
}

func (t *textScrape) revals() {
	order := sortedIndex(t.c.values.revals[:])
	t.jobGroups(func(group []*job) {
		for _, r := range order {
			for _, j := range group {
				j.mu.Lock()
				ok, n := !j.dead && j.revals[r].created != 0, j.revals[r].n
				j.mu.Unlock()
				if ok {
					t.jobVals(j)
					t.vals[3] = t.c.values.revals[r]
					t.counter(n)
				}
			}
		}
	})
}

func (t *textScrape) jobHistograms(f int) {
	values := t.c.values.follow[:]
	if f == fUpstream {
		values = t.c.values.upstream[:]
	}
	hists := func(j *job) []*hist {
		switch f {
		case fRevalTime:
			return j.revalTime[:]
		case fKeepalive:
			return j.keepalive[:]
		}
		return j.upstream[:]
	}
	var s histSnap
	order := sortedIndex(values)
	t.jobGroups(func(group []*job) {
		for _, p := range order {
			for _, j := range group {
				j.mu.Lock()
				h := hists(j)[p]
				ok := !j.dead && h != nil
				if ok {
					t.snap(h, &s)
				}
				j.mu.Unlock()
				if ok {
					t.jobVals(j)
					t.vals[3] = values[p]
					t.histogram(&s)
				}
			}
		}
	})
}
