package compare

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/route53"
)

// CloudWatch is a source of the metrics the agent's CloudWatch exporter
// sends (namespace EdgeProbe unless configured otherwise; dimensions
// Target, Role, Location and, with all_addresses, Address; durations in
// ms as Values/Counts, so that CloudWatch keeps their distribution).
//
// How it reads one side (IAM: cloudwatch:ListMetrics and
// cloudwatch:GetMetricData):
//
//  1. ListMetrics finds the series of the selector's Target/Role/Location
//     (ListMetrics shows series with data in the last two weeks; for older
//     windows a selector naming all three is read without it).
//  2. GetMetricData, the window as one period: SampleCount, Sum, Minimum
//     and Maximum of every phase metric; SampleCount and Sum of Success
//     (probes and successes) per hour, or per minute for windows up to 3 h
//     (the hours of the day).
//  3. GetMetricData, percentile ranks: per phase, bucket bounds on the
//     exporter's own 1% bin edges (1.01^k ms, so no sent value lies on a
//     bound) from the phase's fastest to its slowest value, at most
//     MaxBuckets of them; for each series PR(:b0), PR(b0:b1), …, PR(bn:)
//     — the percentage of values in (lower, upper], CloudWatch's
//     definition — times the series' SampleCount is the bucket's count.
//
// The result is a histogram per phase and location, as from Prometheus:
// rows are approximate, their intervals span whole buckets (a few percent
// wide: MaxBuckets over the phase's spread), and CloudWatch's own
// estimation of percentile ranks on large data sets comes on top.
// Failures are Success's SampleCount − Sum; CloudWatch does not keep the
// phase a probe failed in, so they count as "unknown". A phase the
// exporter did not send (0: it did not happen) counts as a 0 of each
// successful probe its SampleCount lacks, as the JSONL source has it.
// Windows are read in whole periods: minutes (5 minutes for data older
// than 15 days, hours beyond 63 days), start rounded down.
//
// Cost: GetMetricData is billed per metric requested, about 7 × (4 +
// MaxBuckets + 2) + 2 ≈ 254 per target, role, location and address and
// side at the default 30 buckets (2026 list price $0.01 per 1,000).
type CloudWatch struct {
	api       route53.MetricsAPI
	namespace string
	// MaxBuckets bounds each phase's buckets between its fastest and
	// slowest value (default DefaultCloudWatchBuckets).
	MaxBuckets int
	now        func() time.Time

	mu       sync.Mutex
	describe string
}

// DefaultCloudWatchBuckets is CloudWatch.MaxBuckets' default.
const DefaultCloudWatchBuckets = 30

// cwFailure is the Failures key of failed probes read from CloudWatch.
const cwFailure = "unknown"

// NewCloudWatch is the source of the agent's metrics in namespace ("":
// the exporter's default, EdgeProbe) through api — a client of the region
// the exporter writes to (route53.NewCloudWatch builds one that speaks
// AWS JSON 1.0, like the exporter).
func NewCloudWatch(api route53.MetricsAPI, namespace string) *CloudWatch {
	if namespace == "" {
		namespace = cwexp.DefaultNamespace
	}
	return &CloudWatch{api: api, namespace: namespace, MaxBuckets: DefaultCloudWatchBuckets, now: time.Now}
}

// String names the source.
func (c *CloudWatch) String() string { return "CloudWatch namespace " + c.namespace }

// Describe says what the namespace holds when the last Load found nothing.
func (c *CloudWatch) Describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.describe
}

func (c *CloudWatch) setDescribe(s string) {
	c.mu.Lock()
	c.describe = s
	c.mu.Unlock()
}

// cwPhaseOf maps the exporter's duration metrics to phases.
var cwPhaseOf = func() map[string]string {
	m := map[string]string{}
	for _, p := range httptrace.Phases {
		m[cwexp.PhaseMetric(p)] = p
	}
	return m
}()

// cwSeries is one metric (name + dimensions) of the agent's.
type cwSeries struct {
	// metric as ListMetrics gave it: the dimensions in its order (moto
	// matches them in order; CloudWatch does not care).
	metric                 cwtypes.Metric
	name, phase            string // phase "" for Success
	target, role, location string
}

// discover lists the agent's series matching the selector.
func (c *CloudWatch) discover(ctx context.Context, sel Selector) ([]cwSeries, error) {
	var filter []cwtypes.DimensionFilter
	for _, kv := range [][2]string{{cwexp.DimTarget, sel.Target}, {cwexp.DimRole, sel.Role}, {cwexp.DimLocation, sel.Location}} {
		if kv[1] != "" {
			filter = append(filter, cwtypes.DimensionFilter{Name: aws.String(kv[0]), Value: aws.String(kv[1])})
		}
	}
	var out []cwSeries
	seen := map[string]bool{}
	p := cloudwatch.NewListMetricsPaginator(c.api, &cloudwatch.ListMetricsInput{Namespace: aws.String(c.namespace), Dimensions: filter})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: list metrics: %w", c, err)
		}
		for _, m := range page.Metrics {
			s, ok := agentSeries(m)
			if !ok {
				continue
			}
			// moto lists a series once per datum; CloudWatch once.
			if key := seriesKey(m); !seen[key] {
				seen[key] = true
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 && sel.Target != "" && sel.Role != "" && sel.Location != "" {
		// Not listed (no data for two weeks): the exporter's series
		// without Address, named directly.
		dims := []cwtypes.Dimension{
			{Name: aws.String(cwexp.DimTarget), Value: aws.String(sel.Target)},
			{Name: aws.String(cwexp.DimRole), Value: aws.String(sel.Role)},
			{Name: aws.String(cwexp.DimLocation), Value: aws.String(sel.Location)},
		}
		for _, name := range append([]string{cwexp.MetricSuccess}, phaseMetricNames()...) {
			s, _ := agentSeries(cwtypes.Metric{Namespace: aws.String(c.namespace), MetricName: aws.String(name), Dimensions: dims})
			out = append(out, s)
		}
	}
	return out, nil
}

func phaseMetricNames() []string {
	var out []string
	for _, p := range httptrace.Phases {
		out = append(out, cwexp.PhaseMetric(p))
	}
	return out
}

// agentSeries accepts a metric of the exporter's: Success or a phase's
// duration, with dimensions Target, Role, Location and maybe Address.
func agentSeries(m cwtypes.Metric) (cwSeries, bool) {
	name := aws.ToString(m.MetricName)
	phase, isPhase := cwPhaseOf[name]
	if !isPhase && name != cwexp.MetricSuccess {
		return cwSeries{}, false
	}
	s := cwSeries{metric: m, name: name, phase: phase}
	for _, d := range m.Dimensions {
		v := aws.ToString(d.Value)
		switch aws.ToString(d.Name) {
		case cwexp.DimTarget:
			s.target = v
		case cwexp.DimRole:
			s.role = v
		case cwexp.DimLocation:
			s.location = v
		case cwexp.DimAddress:
		default:
			return cwSeries{}, false
		}
	}
	return s, s.target != "" && s.role != "" && s.location != ""
}

// seriesKey names a metric regardless of its dimensions' order.
func seriesKey(m cwtypes.Metric) string {
	parts := []string{aws.ToString(m.MetricName)}
	for _, d := range m.Dimensions {
		parts = append(parts, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	slices.Sort(parts[1:])
	return strings.Join(parts, "\x00")
}

// cwPeriods are the periods a window is read in: step, the shortest
// CloudWatch keeps for data as old as the window's start (60 s up to 15
// days, 300 s up to 63 days, then 3600 s); whole, the window as one
// period; hourly, for the hours of the day (an hour, or step for windows
// up to 3 h). start is the window's start rounded down to step, as
// CloudWatch rounds it.
func cwPeriods(w Window, now time.Time) (start time.Time, step, whole, hourly int32) {
	step = 60
	switch age := now.Sub(w.From); {
	case age > 63*24*time.Hour:
		step = 3600
	case age > 15*24*time.Hour:
		step = 300
	}
	start = w.From.UTC().Truncate(time.Duration(step) * time.Second)
	whole = int32(math.Ceil(w.To.Sub(start).Seconds()/float64(step))) * step
	whole = max(whole, step)
	hourly = 3600
	if w.To.Sub(w.From) <= 3*time.Hour {
		hourly = step
	}
	return start, step, whole, hourly
}

// Load reads one side from CloudWatch.
func (c *CloudWatch) Load(ctx context.Context, q Query) (*Side, error) {
	w := remoteWindow(q.Window, c.now())
	if !w.To.After(w.From) {
		return nil, fmt.Errorf("%s: empty window %s", c, w)
	}
	side := NewSide()
	series, err := c.discover(ctx, q.Match)
	if err != nil {
		return nil, err
	}
	if len(series) == 0 {
		c.setDescribe(c.whatIsThere(ctx, q.Match))
		return side, nil
	}
	start, _, whole, hourly := cwPeriods(w, c.now())
	end := start.Add(time.Duration(whole) * time.Second)

	// Pass 1: counts, sums and spreads.
	var qs []cwtypes.MetricDataQuery
	for i, s := range series {
		if s.phase == "" {
			qs = append(qs, cwQuery(s, i, "n", "SampleCount", hourly), cwQuery(s, i, "sum", "Sum", hourly))
			continue
		}
		for _, st := range [][2]string{{"n", "SampleCount"}, {"sum", "Sum"}, {"min", "Minimum"}, {"max", "Maximum"}} {
			qs = append(qs, cwQuery(s, i, st[0], st[1], whole))
		}
	}
	got, msgs, err := getMetricData(ctx, c.api, qs, start, end)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	for _, m := range msgs {
		side.Warnings = append(side.Warnings, Warning{Code: WarnSource, Message: c.String() + ": " + m})
	}
	total := func(id string) float64 {
		t := 0.0
		for _, p := range got[id] {
			t += p.v
		}
		return t
	}

	// Pass 2: percentile ranks in each phase's buckets.
	type spread struct{ lo, hi float64 }
	spreads := map[string]*spread{}
	for i, s := range series {
		if s.phase == "" || total(cwID(i, "n")) <= 0 {
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range got[cwID(i, "min")] {
			lo = math.Min(lo, p.v)
		}
		for _, p := range got[cwID(i, "max")] {
			hi = math.Max(hi, p.v)
		}
		if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			continue
		}
		sp := spreads[s.phase]
		if sp == nil {
			sp = &spread{lo, hi}
			spreads[s.phase] = sp
		}
		sp.lo, sp.hi = math.Min(sp.lo, lo), math.Max(sp.hi, hi)
	}
	layouts := map[string][]float64{}
	for phase, sp := range spreads {
		layouts[phase] = prLayout(sp.lo, sp.hi, c.MaxBuckets)
	}
	qs = qs[:0]
	for i, s := range series {
		bounds := layouts[s.phase]
		if s.phase == "" || bounds == nil || total(cwID(i, "n")) <= 0 {
			continue
		}
		for j, stat := range prStats(bounds) {
			qs = append(qs, cwQuery(s, i, "b"+strconv.Itoa(j), stat, whole))
		}
	}
	ranks, msgs, err := getMetricData(ctx, c.api, qs, start, end)
	if err != nil {
		return nil, fmt.Errorf("%s: percentile ranks (PR) of the phases' buckets: %w", c, err)
	}
	for _, m := range msgs {
		side.Warnings = append(side.Warnings, Warning{Code: WarnSource, Message: c.String() + ": " + m})
	}

	// Per location: probes, failures, hours, histograms.
	type locData struct {
		probes, ok float64
		hists      map[string]*Histogram
	}
	locs := map[string]*locData{}
	loc := func(name string) *locData {
		d := locs[name]
		if d == nil {
			d = &locData{hists: map[string]*Histogram{}}
			locs[name] = d
		}
		return d
	}
	hours := map[string]*[24]float64{}
	var first, last time.Time
	for i, s := range series {
		if s.phase != "" {
			continue
		}
		n, ok := total(cwID(i, "n")), total(cwID(i, "sum"))
		if n <= 0 {
			continue
		}
		d := loc(s.location)
		d.probes += n
		d.ok += ok
		side.Series[s.target+"/"+s.role] += int(math.Round(n))
		if hours[s.location] == nil {
			hours[s.location] = &[24]float64{}
		}
		for _, p := range got[cwID(i, "n")] {
			if p.v <= 0 {
				continue
			}
			mid := p.t.Add(time.Duration(hourly) * time.Second / 2)
			hours[s.location][mid.UTC().Hour()] += p.v
			if first.IsZero() || p.t.Before(first) {
				first = p.t
			}
			if t := p.t.Add(time.Duration(hourly) * time.Second); t.After(last) {
				last = t
			}
		}
	}
	for i, s := range series {
		bounds := layouts[s.phase]
		n := total(cwID(i, "n"))
		if s.phase == "" || bounds == nil || n <= 0 {
			continue
		}
		d := loc(s.location)
		h := d.hists[s.phase]
		if h == nil {
			h = &Histogram{HasSum: true}
			for _, b := range bounds {
				h.Buckets = append(h.Buckets, Bucket{Le: b / 1000})
			}
			h.Buckets = append(h.Buckets, Bucket{Le: math.Inf(1)})
			d.hists[s.phase] = h
		}
		// A rank is a percentage of its period's values: weigh it by that
		// period's count (the window is one period, normally one point).
		counts := map[time.Time]float64{}
		for _, p := range got[cwID(i, "n")] {
			counts[p.t] += p.v
		}
		for j := range h.Buckets {
			for _, p := range ranks[cwID(i, "b"+strconv.Itoa(j))] {
				nt, ok := counts[p.t]
				if !ok && len(counts) == 1 {
					nt = n
				}
				h.Buckets[j].Count += p.v / 100 * nt
			}
		}
		h.Sum += total(cwID(i, "sum")) / 1000
	}
	for name, d := range locs {
		if d.probes <= 0 {
			continue
		}
		l := side.Location(name)
		l.Probes = int(math.Round(d.probes))
		if failed := int(math.Round(d.probes - d.ok)); failed > 0 {
			l.Failures[cwFailure] = failed
		}
		if h := hours[name]; h != nil {
			l.Hours = *h
		}
		for phase, h := range d.hists {
			if h.Count() > 0 {
				addZeros(h, d.ok)
				l.Phases[phase] = &Dist{Hist: h}
			}
		}
	}
	if len(side.Locations) == 0 {
		c.setDescribe(fmt.Sprintf("%s has %d series matching the selector but no data in %s (start rounded to %s)",
			c, len(series), w, fmtTime(start, "")))
		return side, nil
	}
	side.First, side.Last = maxTime(first, w.From), minTime(last, w.To)
	return side, nil
}

// whatIsThere lists the target/role/location combinations the namespace
// has, for Run's message when the selector matched nothing.
func (c *CloudWatch) whatIsThere(ctx context.Context, sel Selector) string {
	found := map[string]bool{}
	p := cloudwatch.NewListMetricsPaginator(c.api, &cloudwatch.ListMetricsInput{
		Namespace: aws.String(c.namespace), MetricName: aws.String(cwexp.MetricSuccess)})
	for p.HasMorePages() && len(found) < 50 {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Sprintf("%s: list metrics: %v", c, err)
		}
		for _, m := range page.Metrics {
			if s, ok := agentSeries(m); ok {
				found[fmt.Sprintf("target=%s,role=%s,location=%s", s.target, s.role, s.location)] = true
			}
		}
	}
	if len(found) == 0 {
		return fmt.Sprintf("%s lists no metrics of the agent's (ListMetrics shows series with data in the last two weeks): is this the exporter's namespace and region?", c)
	}
	return fmt.Sprintf("%s has no series matching %q; it has %s", c, sel, strings.Join(sortedKeys(found), "; "))
}

// prLayout is the bucket bounds (ms) for values from lo to hi: edges of
// the exporter's 1% bins (1.01^k ms, see exporters/cloudwatch/bins.go),
// every s-th so that at most maxBuckets buckets cover [lo, hi], written
// to 10 significant digits (the bound sent is the bound used).
func prLayout(lo, hi float64, maxBuckets int) []float64 {
	if maxBuckets <= 0 {
		maxBuckets = DefaultCloudWatchBuckets
	}
	const growth = 1.01
	lo = math.Max(lo, 1e-6)
	hi = math.Max(hi, lo)
	k0 := int(math.Floor(math.Log(lo) / math.Log(growth)))
	k1 := int(math.Floor(math.Log(hi)/math.Log(growth))) + 1
	s := max(1, (k1-k0+maxBuckets-1)/maxBuckets)
	var out []float64
	for k := k0; ; k += s {
		b, _ := strconv.ParseFloat(strconv.FormatFloat(math.Pow(growth, float64(k)), 'g', 10, 64), 64)
		out = append(out, b)
		if k >= k1 {
			return out
		}
	}
}

// prStats are the percentile-rank statistics of the buckets of bounds:
// PR(:b0), PR(b0:b1), …, PR(bn:), each (lower, upper].
func prStats(bounds []float64) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	out := []string{"PR(:" + f(bounds[0]) + ")"}
	for i := 1; i < len(bounds); i++ {
		out = append(out, "PR("+f(bounds[i-1])+":"+f(bounds[i])+")")
	}
	return append(out, "PR("+f(bounds[len(bounds)-1])+":)")
}

// cwID is a query's ID: series i, what (n, sum, min, max, b<bucket>).
// GetMetricData wants [a-z][a-zA-Z0-9_]*, unique per call.
func cwID(i int, what string) string { return "s" + strconv.Itoa(i) + "_" + what }

func cwQuery(s cwSeries, i int, what, stat string, period int32) cwtypes.MetricDataQuery {
	m := s.metric
	return cwtypes.MetricDataQuery{
		Id:         aws.String(cwID(i, what)),
		MetricStat: &cwtypes.MetricStat{Metric: &m, Period: aws.Int32(period), Stat: aws.String(stat)},
		ReturnData: aws.Bool(true),
	}
}

// cwPoint is one value GetMetricData returned.
type cwPoint struct {
	t time.Time
	v float64
}

// cwMaxQueries is GetMetricData's limit of queries per call.
const cwMaxQueries = 500

// getMetricData runs the queries in calls of at most cwMaxQueries,
// following NextToken, and returns the values by query ID, and the
// service's messages about partial data. A query CloudWatch answers with
// InternalError or Forbidden fails the whole read.
func getMetricData(ctx context.Context, api route53.MetricsAPI, queries []cwtypes.MetricDataQuery, start, end time.Time) (map[string][]cwPoint, []string, error) {
	out := map[string][]cwPoint{}
	var msgs []string
	for from := 0; from < len(queries); from += cwMaxQueries {
		p := cloudwatch.NewGetMetricDataPaginator(api, &cloudwatch.GetMetricDataInput{
			MetricDataQueries: queries[from:min(from+cwMaxQueries, len(queries))],
			StartTime:         aws.Time(start), EndTime: aws.Time(end),
			ScanBy: cwtypes.ScanByTimestampAscending,
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("get metric data: %w", err)
			}
			for _, m := range page.Messages {
				msgs = append(msgs, aws.ToString(m.Code)+": "+aws.ToString(m.Value))
			}
			for _, r := range page.MetricDataResults {
				id := aws.ToString(r.Id)
				switch r.StatusCode {
				case cwtypes.StatusCodeInternalError, cwtypes.StatusCodeForbidden:
					var why []string
					for _, m := range r.Messages {
						why = append(why, aws.ToString(m.Code)+": "+aws.ToString(m.Value))
					}
					return nil, nil, fmt.Errorf("get metric data: query %s: %s %s", id, r.StatusCode, strings.Join(why, "; "))
				}
				for k, v := range r.Values {
					if k < len(r.Timestamps) && !math.IsNaN(v) {
						out[id] = append(out[id], cwPoint{t: r.Timestamps[k], v: v})
					}
				}
			}
		}
	}
	return out, msgs, nil
}
