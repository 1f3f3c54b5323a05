// Package compare answers "did b make it faster than a, where, in which
// phase, and is the difference real?" from probe samples: before vs after a
// rollout, or origin vs CDN over the same time. It loads each side from a
// Source, compares them per phase × location (and over all locations) with
// a bootstrap confidence interval of the medians' difference, a
// Mann–Whitney U test with the Hodges–Lehmann shift and an effect size,
// compares failure rates, warns about the usual traps (too few samples,
// unequal sampling, different hours of the day), and renders the result as
// a terminal table, JSON, Markdown or a self-contained HTML report.
package compare

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// AllLocations names the rows over every location together.
const AllLocations = "all"

// Defaults of Options.
const (
	DefaultAlpha      = 0.05
	DefaultMinSamples = 20
	DefaultResamples  = 2000
	DefaultSeed       = 1
)

// Options tune the statistics.
type Options struct {
	// Alpha is the rank test's significance level; the confidence
	// intervals are at 1 − Alpha so the two criteria agree (default 0.05).
	Alpha float64
	// MinSamples is the fewest successful probes per side for a verdict
	// (default 20).
	MinSamples int
	// Resamples of the bootstrap (default 2000).
	Resamples int
	// Seed makes the bootstrap reproducible: the same input and seed give
	// the same intervals. Each row draws from its own stream.
	Seed uint64
}

func (o Options) withDefaults() Options {
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.Resamples == 0 {
		o.Resamples = DefaultResamples
	}
	return o
}

// Validate reports options that make no sense (after defaults).
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case !(o.Alpha > 0 && o.Alpha < 0.5):
		return fmt.Errorf("alpha %v: want a level between 0 and 0.5, e.g. 0.05", o.Alpha)
	case o.MinSamples < 2:
		return fmt.Errorf("min samples %d: want at least 2", o.MinSamples)
	case o.Resamples < 100 || o.Resamples > 1_000_000:
		return fmt.Errorf("resamples %d: want 100 to 1000000 (2000 is plenty for a 95%% interval)", o.Resamples)
	}
	return nil
}

// Confidence is the level of the confidence intervals, 1 − Alpha.
func (o Options) Confidence() float64 { return 1 - o.withDefaults().Alpha }

// Verdict of one row: b relative to a.
type Verdict string

// Verdicts (a contract: the JSON output's "verdict").
const (
	Faster       Verdict = "faster"
	Slower       Verdict = "slower"
	NoChange     Verdict = "no_change"
	Insufficient Verdict = "insufficient"
)

// Row compares one phase at one location (or AllLocations).
type Row struct {
	Phase, Location string
	A, B            Summary
	// DiffP50 and DiffP90 are B − A: negative means b is faster.
	DiffP50, DiffP90 time.Duration
	// DiffPct is 100·DiffP50/A.P50 (HasPct false when A.P50 is 0).
	DiffPct float64
	HasPct  bool
	// CIP50 and CIP90 are the confidence intervals (Options.Confidence)
	// of DiffP50 and DiffP90: bootstrap percentile intervals on exact
	// values, the bucket bounds' extremes on histograms.
	CIP50, CIP90 Interval
	HasCI        bool
	// The rank test (exact values only).
	PValue        float64
	HodgesLehmann time.Duration // median of the pairwise differences b − a
	CliffsDelta   float64       // −1 … +1, negative when b tends to be faster
	ProbBFaster   float64       // P(b < a) + ½·P(b = a)
	HasTest       bool
	Verdict       Verdict
	Reason        string // why this verdict, for a person
	// Approximate is set when a side is known only by histogram buckets.
	Approximate bool
}

// FailureRow compares the failure rates at one location (or AllLocations).
type FailureRow struct {
	Location string
	A, B     FailureCount
	// PValue of Fisher's exact test (two-sided) for equal failure rates.
	PValue float64
}

// FailureCount is the failed probes of one side, by error phase.
type FailureCount struct {
	Probes, Failed int
	ByPhase        map[string]int
}

// Rate is the failed fraction (0 with no probes).
func (f FailureCount) Rate() float64 {
	if f.Probes == 0 {
		return 0
	}
	return float64(f.Failed) / float64(f.Probes)
}

// Warning is a trap the data may have fallen into. Code is stable,
// Message is for a person; Location is set when it concerns one.
type Warning struct {
	Code     string
	Message  string
	Location string
}

// Warning codes.
const (
	WarnMalformed    = "malformed_lines"   // input lines skipped
	WarnFewSamples   = "few_samples"       // rows without a verdict
	WarnUnequal      = "unequal_counts"    // a location sampled > 2× more on one side
	WarnOneSided     = "location_one_side" // a location seen on one side only
	WarnTimeOfDay    = "time_of_day"       // the sides cover different hours
	WarnFailsMore    = "fails_more"        // b is faster but fails more often
	WarnMixed        = "mixed_series"      // a side mixes targets or roles
	WarnApproximate  = "approximate"       // histogram data: bucket precision only
	WarnHistMismatch = "histogram_layouts" // buckets differ between locations
)

// Guard thresholds.
const (
	// UnequalRatio: warn when one side has more than this many times the
	// other's probes at a location.
	UnequalRatio = 2.0
	// TimeOfDayTV: warn when the total variation distance between the
	// sides' hour-of-day mixes exceeds this.
	TimeOfDayTV = 0.3
)

// SideInfo describes one side of a result.
type SideInfo struct {
	Label       string
	Query       Query
	Probes, OK  int
	First, Last time.Time
	Locations   []string
	Approximate bool // some of its data is histogram buckets
}

// Result is a comparison of b against a.
type Result struct {
	A, B     SideInfo
	Options  Options
	Rows     []Row
	Failures []FailureRow
	Warnings []Warning
	// The sides themselves, for the charts.
	sideA, sideB *Side
}

// Row returns the row of phase at location.
func (r *Result) Row(phase, location string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Phase == phase && row.Location == location {
			return row, true
		}
	}
	return Row{}, false
}

// Spec is one side to load: a source, a query and a label for people.
type Spec struct {
	Label  string
	Source Source
	Query  Query
}

// ErrNoSamples is returned when a side matches no sample at all.
var ErrNoSamples = errors.New("no samples")

// Run loads both sides and compares them. A side without any sample is
// an error wrapping ErrNoSamples that says what the source holds.
func Run(ctx context.Context, a, b Spec, opts Options) (*Result, error) {
	var sides [2]*Side
	for i, spec := range []Spec{a, b} {
		side, err := spec.Source.Load(ctx, spec.Query)
		if err != nil {
			return nil, fmt.Errorf("side %s: %w", spec.Label, err)
		}
		if side.Probes() == 0 {
			what := ""
			if d, ok := spec.Source.(interface{ Describe() string }); ok {
				what = ": " + d.Describe()
			}
			q := cmp.Or(spec.Query.String(), "everything")
			return nil, fmt.Errorf("side %s (%s): %w%s", spec.Label, q, ErrNoSamples, what)
		}
		sides[i] = side
	}
	res, err := Compare(a.Label, sides[0], b.Label, sides[1], opts)
	if err != nil {
		return nil, err
	}
	res.A.Query, res.B.Query = a.Query, b.Query
	return res, nil
}

// Compare compares side b against side a.
func Compare(aLabel string, a *Side, bLabel string, b *Side, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	res := &Result{A: sideInfo(aLabel, a), B: sideInfo(bLabel, b), Options: opts, sideA: a, sideB: b}

	locations := unionLocations(a, b)
	groups := []string{AllLocations}
	if len(locations) > 1 {
		groups = append(groups, locations...)
	}
	type job struct {
		phase, location string
		a, b            *Dist
	}
	var jobs []job
	for _, loc := range groups {
		for _, phase := range httptrace.Phases {
			da, errA := a.dist(loc, phase)
			db, errB := b.dist(loc, phase)
			if err := errors.Join(errA, errB); err != nil {
				res.warn(WarnHistMismatch, loc, "%s %s: %v", loc, phase, err)
				continue
			}
			if da.N() == 0 && db.N() == 0 {
				continue
			}
			jobs = append(jobs, job{phase, loc, da, db})
		}
	}
	// Rows are independent (each has its own random stream): spread them
	// over the CPUs; the order of the result does not depend on it.
	res.Rows = make([]Row, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res.Rows[i] = compareDists(j.phase, j.location, j.a, j.b, opts)
		})
	}
	wg.Wait()

	for _, loc := range groups {
		fa, fb := a.failures(loc), b.failures(loc)
		if fa.Probes+fb.Probes == 0 {
			continue
		}
		res.Failures = append(res.Failures, FailureRow{Location: loc, A: fa, B: fb,
			PValue: fisherExact(fa.Failed, fa.Probes, fb.Failed, fb.Probes)})
	}
	res.guard(locations)
	return res, nil
}

func sideInfo(label string, s *Side) SideInfo {
	info := SideInfo{Label: label, Probes: s.Probes(), OK: s.Probes() - s.Failed(), First: s.First, Last: s.Last, Locations: s.LocationNames()}
	for _, l := range s.Locations {
		for _, d := range l.Phases {
			info.Approximate = info.Approximate || d.Approximate()
		}
	}
	return info
}

func unionLocations(a, b *Side) []string {
	var out []string
	for _, s := range []*Side{a, b} {
		for name := range s.Locations {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// dist is the side's distribution of phase at a location; AllLocations
// pools them: exact values together, or histograms of one bucket layout
// added up.
func (s *Side) dist(location, phase string) (*Dist, error) {
	if location != AllLocations {
		if l := s.Locations[location]; l != nil {
			return l.Phases[phase], nil
		}
		return nil, nil
	}
	var parts []*Dist
	for _, name := range s.LocationNames() {
		if d := s.Locations[name].Phases[phase]; d.N() > 0 {
			parts = append(parts, d)
		}
	}
	switch {
	case len(parts) == 0:
		return nil, nil
	case len(parts) == 1:
		return parts[0], nil
	}
	out := &Dist{}
	for _, d := range parts {
		if d.Hist == nil {
			out.Values = append(out.Values, d.Values...)
			continue
		}
		if out.Hist == nil {
			out.Hist = &Histogram{Buckets: slices.Clone(d.Hist.Buckets), HasSum: true}
		} else if err := out.Hist.add(d.Hist); err != nil {
			return nil, err
		}
		out.Hist.Sum += d.Hist.Sum
		out.Hist.HasSum = out.Hist.HasSum && d.Hist.HasSum
	}
	if out.Hist != nil && len(out.Values) > 0 {
		return nil, errors.New("some locations have exact values and others histograms: no pooled row")
	}
	return out, nil
}

func (h *Histogram) add(o *Histogram) error {
	if len(h.Buckets) != len(o.Buckets) {
		return errors.New("locations have different histogram buckets: no pooled row")
	}
	for i := range h.Buckets {
		if h.Buckets[i].Le != o.Buckets[i].Le {
			return errors.New("locations have different histogram buckets: no pooled row")
		}
		h.Buckets[i].Count += o.Buckets[i].Count
	}
	return nil
}

func (s *Side) failures(location string) FailureCount {
	f := FailureCount{ByPhase: map[string]int{}}
	for name, l := range s.Locations {
		if location != AllLocations && name != location {
			continue
		}
		f.Probes += l.Probes
		for phase, n := range l.Failures {
			f.ByPhase[phase] += n
			f.Failed += n
		}
	}
	return f
}

// compareDists computes one row.
func compareDists(phase, location string, a, b *Dist, opts Options) Row {
	r := Row{Phase: phase, Location: location, Approximate: a.Approximate() || b.Approximate()}
	av, bv := sortedValues(a), sortedValues(b)
	r.A, r.B = describe(a, av), describe(b, bv)
	if r.A.N > 0 && r.B.N > 0 {
		r.DiffP50, r.DiffP90 = r.B.P50-r.A.P50, r.B.P90-r.A.P90
		if r.A.P50 > 0 {
			r.DiffPct, r.HasPct = 100*float64(r.DiffP50)/float64(r.A.P50), true
		}
	}
	if r.A.N < opts.MinSamples || r.B.N < opts.MinSamples {
		r.Verdict = Insufficient
		r.Reason = fmt.Sprintf("too few successful probes to judge: a has %d, b has %d; at least %d per side are needed (--min-samples)",
			r.A.N, r.B.N, opts.MinSamples)
		return r
	}
	r.HasCI = true
	if r.Approximate {
		// Only bucket bounds are known: the true percentiles lie in their
		// buckets, so the difference lies between the buckets' extremes.
		r.CIP50, r.CIP90 = rangeDiff(r.A.p50Range, r.B.p50Range), rangeDiff(r.A.p90Range, r.B.p90Range)
		// A bucket holds (lower, upper]: its lower bound is exclusive except
		// the first bucket's 0. So an interval ending at 0 because the two
		// medians lie in neighbouring buckets still excludes 0.
		aLo, bLo := r.A.p50Range.Low, r.B.p50Range.Low
		switch {
		case r.CIP50.High < 0 || (r.CIP50.High == 0 && aLo > 0):
			r.Verdict, r.Reason = Faster, "approximate (histogram buckets): b's median lies in a lower bucket than a's"
		case r.CIP50.Low > 0 || (r.CIP50.Low == 0 && bLo > 0):
			r.Verdict, r.Reason = Slower, "approximate (histogram buckets): b's median lies in a higher bucket than a's"
		default:
			r.Verdict, r.Reason = NoChange, "approximate (histogram buckets): the medians' buckets overlap, so no difference can be told"
		}
		return r
	}
	rng := rand.New(rand.NewPCG(opts.Seed, rowStream(phase, location)))
	r.CIP50, r.CIP90 = bootstrap(av, bv, opts.Resamples, opts.Confidence(), rng)
	r.HodgesLehmann = hodgesLehmann(av, bv)
	t, err := mannWhitney(av, bv)
	if err != nil {
		r.Verdict, r.Reason = NoChange, fmt.Sprintf("no rank test: %v", err)
		return r
	}
	r.PValue, r.CliffsDelta, r.ProbBFaster, r.HasTest = t.P, t.CliffsDelta, t.ProbBFaster, true
	ci := fmt.Sprintf("%.0f%% CI of the medians' difference [%s, %s] ms", 100*opts.Confidence(), signedMS(r.CIP50.Low), signedMS(r.CIP50.High))
	switch {
	case t.P >= opts.Alpha:
		r.Verdict, r.Reason = NoChange, fmt.Sprintf("rank test %s, not below α %g: no detectable change", pText(t.P), opts.Alpha)
	case r.CIP50.High < 0:
		r.Verdict, r.Reason = Faster, fmt.Sprintf("rank test %s, below α %g, and the %s is below 0", pText(t.P), opts.Alpha, ci)
	case r.CIP50.Low > 0:
		r.Verdict, r.Reason = Slower, fmt.Sprintf("rank test %s, below α %g, and the %s is above 0", pText(t.P), opts.Alpha, ci)
	default:
		// The distributions differ, but not in their medians.
		r.Verdict, r.Reason = NoChange, fmt.Sprintf("rank test %s, below α %g, but the %s includes 0: the distributions differ, their medians not detectably", pText(t.P), opts.Alpha, ci)
	}
	return r
}

func sortedValues(d *Dist) []time.Duration {
	if d == nil || d.Hist != nil {
		return nil
	}
	return slices.Sorted(slices.Values(d.Values))
}

func describe(d *Dist, sorted []time.Duration) Summary {
	if d != nil && d.Hist != nil {
		return summarizeHist(d.Hist)
	}
	return summarize(sorted)
}

// rowStream picks the random stream of a row from its name, so a row's
// interval does not depend on which other rows exist.
func rowStream(phase, location string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(phase + "\x00" + location))
	return h.Sum64()
}

func (r *Result) warn(code, location, format string, args ...any) {
	w := Warning{Code: code, Location: location, Message: fmt.Sprintf(format, args...)}
	if !slices.Contains(r.Warnings, w) {
		r.Warnings = append(r.Warnings, w)
	}
}

// guard adds the warnings about traps in the data.
func (r *Result) guard(locations []string) {
	a, b := r.sideA, r.sideB
	for _, w := range append(slices.Clone(a.Warnings), b.Warnings...) {
		r.warn(w.Code, w.Location, "%s", w.Message)
	}
	for _, s := range []struct {
		name string
		side *Side
	}{{"a", a}, {"b", b}} {
		if len(s.side.Series) > 1 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(s.side.Series)) {
				parts = append(parts, fmt.Sprintf("%s ×%d", strings.TrimSuffix(k, "/"), s.side.Series[k]))
			}
			r.warn(WarnMixed, "", "side %s mixes several targets or roles (target/role: %s): select one with --where or --a/--b",
				s.name, strings.Join(parts, ", "))
		}
	}

	// Sampling per location.
	for _, loc := range locations {
		na, nb := 0, 0
		if l := a.Locations[loc]; l != nil {
			na = l.Probes
		}
		if l := b.Locations[loc]; l != nil {
			nb = l.Probes
		}
		switch {
		case na == 0 || nb == 0:
			r.warn(WarnOneSided, loc, "%s: probes on one side only (a %d, b %d): rows over all locations mix in a location the other side lacks", loc, na, nb)
		case float64(max(na, nb)) > UnequalRatio*float64(min(na, nb)):
			r.warn(WarnUnequal, loc, "%s: a has %d probes and b %d (%.1f×): the sides were not sampled alike, and rows over all locations weigh this location differently on each side",
				loc, na, nb, float64(max(na, nb))/float64(min(na, nb)))
		}
	}

	// Time of day.
	var ha, hb [24]float64
	for _, l := range a.Locations {
		addHours(&ha, l.Hours)
	}
	for _, l := range b.Locations {
		addHours(&hb, l.Hours)
	}
	if tv := totalVariation(ha, hb); tv > TimeOfDayTV {
		r.warn(WarnTimeOfDay, "", "the sides cover different hours of the day (a: %s; b: %s; total variation distance %.2f > %.2f): latency follows daily traffic, so part of the difference may be the time of day; compare whole days (e.g. --at TIME --window 24h)",
			hourRuns(ha), hourRuns(hb), tv, TimeOfDayTV)
	}

	// Rows without a verdict, one warning per location.
	short := map[string][2]int{}
	var shortOrder []string
	for _, row := range r.Rows {
		if row.Verdict != Insufficient {
			continue
		}
		if _, ok := short[row.Location]; !ok {
			shortOrder = append(shortOrder, row.Location)
		}
		short[row.Location] = [2]int{row.A.N, row.B.N}
	}
	for _, loc := range shortOrder {
		n := short[loc]
		where := "at " + loc
		if loc == AllLocations {
			where = "over all locations"
		}
		r.warn(WarnFewSamples, loc, "%s: too few successful probes for a verdict (a %d, b %d; at least %d per side, --min-samples): collect more before drawing conclusions",
			where, n[0], n[1], r.Options.MinSamples)
	}

	// Faster, but failing more often.
	for _, f := range r.Failures {
		if f.B.Rate() <= f.A.Rate() {
			continue
		}
		var faster []string
		for _, row := range r.Rows {
			if row.Location == f.Location && row.Verdict == Faster {
				faster = append(faster, row.Phase)
			}
		}
		if len(faster) == 0 {
			continue
		}
		sig := "not significant"
		if f.PValue < r.Options.Alpha {
			sig = "significant"
		}
		where := f.Location
		if where == AllLocations {
			where = "over all locations"
		}
		r.warn(WarnFailsMore, f.Location, "%s: b is faster (%s) but fails more often: %s vs %s (Fisher's exact %s, %s at α %g); a faster median with more errors is not a win",
			where, strings.Join(faster, ", "), fmtRate(f.B), fmtRate(f.A), pText(f.PValue), sig, r.Options.Alpha)
	}
	if r.A.Approximate || r.B.Approximate {
		r.warn(WarnApproximate, "", "some data are histogram buckets: percentiles are interpolated and intervals span whole buckets, without a rank test")
	}
}

func addHours(dst *[24]float64, src [24]float64) {
	for h := range 24 {
		dst[h] += src[h]
	}
}

// hourRuns lists the hours of the day that have probes as ranges:
// "00–05, 12–17 UTC".
func hourRuns(h [24]float64) string {
	var runs []string
	for start := 0; start < 24; {
		if h[start] == 0 {
			start++
			continue
		}
		end := start
		for end+1 < 24 && h[end+1] > 0 {
			end++
		}
		if end == start {
			runs = append(runs, fmt.Sprintf("%02d", start))
		} else {
			runs = append(runs, fmt.Sprintf("%02d–%02d", start, end))
		}
		start = end + 1
	}
	if len(runs) == 0 {
		return "no times"
	}
	return strings.Join(runs, ", ") + " h UTC"
}

func fmtRate(f FailureCount) string {
	return fmt.Sprintf("%.1f%% (%d of %d)", 100*f.Rate(), f.Failed, f.Probes)
}

// fmtP formats a p-value with the precision that matters.
func fmtP(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p < 0.0001:
		return "< 0.0001"
	case p < 0.01:
		return fmt.Sprintf("%.4f", p)
	}
	return fmt.Sprintf("%.2f", p)
}

// pText is "p = 0.42", or "p < 0.0001" for tiny values.
func pText(p float64) string {
	if s := fmtP(p); strings.HasPrefix(s, "<") {
		return "p " + s
	}
	return "p = " + fmtP(p)
}

// ms formats a duration in milliseconds with two decimals (loopback and
// nearby edges live in the sub-millisecond range, as in `probe check`).
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func signedMS(d time.Duration) string {
	switch d {
	case unbounded:
		return "+∞"
	case -unbounded:
		return "−∞"
	}
	return fmt.Sprintf("%+.2f", float64(d)/float64(time.Millisecond))
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
