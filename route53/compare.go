package route53

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// MetricsAPI is the part of the CloudWatch client Compare calls
// (*cloudwatch.Client implements it; IAM: cloudwatch:GetMetricData and
// cloudwatch:ListMetrics).
type MetricsAPI interface {
	cloudwatch.GetMetricDataAPIClient
	cloudwatch.ListMetricsAPIClient
}

// Route53Namespace is where Route 53 publishes health check metrics, in
// us-east-1 only.
const Route53Namespace = "AWS/Route53"

// DefaultNamespace is the agent's CloudWatch namespace unless its config
// sets another.
const DefaultNamespace = "EdgeProbe"

// AllRegions is the Where of Route 53's aggregate over its checker regions
// (the series without a Region dimension).
const AllRegions = "all regions"

// Sources of a Row.
const (
	SourceRoute53 = "route53"
	SourceAgent   = "agent"
)

// phaseOf maps metric names to phases. Route 53 publishes the first three;
// the agent publishes the same names (its ttfb as TimeToFirstByte) and its
// cumulative first_byte as FirstByteTime, because Route 53 does not say
// where its TimeToFirstByte starts counting.
var phaseOf = map[string]string{
	"ConnectionTime":   "connect",
	"SSLHandshakeTime": "tls",
	"TimeToFirstByte":  "ttfb",
	"FirstByteTime":    "ttfb",
}

var (
	phaseOrder  = []string{"connect", "tls", "ttfb"}
	metricOrder = []string{"ConnectionTime", "SSLHandshakeTime", "TimeToFirstByte", "FirstByteTime"}
)

// CompareOptions set the window and where the agent's metrics are.
type CompareOptions struct {
	// Window ends at End (default now, truncated to the minute) and is
	// read as one CloudWatch period; default 1h.
	Window time.Duration
	End    time.Time
	// Namespace of the agent's metrics (default "EdgeProbe").
	Namespace string
}

// Row is one metric of one check over the window, in milliseconds. Average
// and P50 are nil when CloudWatch has no value for them (P50 also when the
// service cannot compute percentiles of the series: Route 53 publishes
// statistic sets).
type Row struct {
	Target        string   `json:"target"`
	Role          string   `json:"role"`
	HealthCheckID string   `json:"health_check_id"`
	Phase         string   `json:"phase"`
	Source        string   `json:"source"` // SourceRoute53 or SourceAgent
	Where         string   `json:"where"`  // checker region, AllRegions, or the agent's location
	Metric        string   `json:"metric"`
	AverageMS     *float64 `json:"average_ms"`
	P50MS         *float64 `json:"p50_ms"`
	Samples       float64  `json:"samples"`
}

// Comparison is Compare's answer.
type Comparison struct {
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	PeriodSeconds int32     `json:"period_seconds"`
	Namespace     string    `json:"namespace"`
	Rows          []Row     `json:"rows"`
	Notes         []string  `json:"notes"`
}

type series struct {
	row    Row
	metric cwtypes.Metric
}

// Compare reads, for every check, Route 53's ConnectionTime,
// SSLHandshakeTime and TimeToFirstByte (namespace AWS/Route53, dimension
// HealthCheckId, per checker region with dimension Region, and the
// aggregate without it) through r53cw — a client in us-east-1, the only
// region that has them — and the agent's metrics of the same target and
// role in every location (dimensions Target, Role, Location) through
// agentCW, the client of the region the agent's exporter writes to. Series
// are found with ListMetrics, read with GetMetricData (Average,
// SampleCount, and p50 in calls of their own so that a service that cannot
// compute percentiles costs the p50 column only), one period covering the
// window. Rows come per phase × (checker region | agent location), the
// agent's ttfb twice: TimeToFirstByte (ttfb) and FirstByteTime
// (first_byte).
func Compare(ctx context.Context, r53cw, agentCW MetricsAPI, checks []Existing, opts CompareOptions) (*Comparison, error) {
	window := cmp.Or(opts.Window, time.Hour)
	if window < 0 {
		return nil, fmt.Errorf("window %v: must be positive", window)
	}
	end := opts.End
	if end.IsZero() {
		end = time.Now()
	}
	end = end.UTC().Truncate(time.Minute)
	period := periodFor(window)
	cmpn := &Comparison{
		Start: end.Add(-time.Duration(period) * time.Second), End: end, PeriodSeconds: period,
		Namespace: cmp.Or(opts.Namespace, DefaultNamespace), Rows: []Row{}, Notes: []string{},
	}
	var r53Series, agentSeries []series
	for i := range checks {
		c := &checks[i]
		found, err := discover(ctx, r53cw, Route53Namespace, []cwtypes.DimensionFilter{
			{Name: aws.String("HealthCheckId"), Value: aws.String(c.ID)},
		}, func(m cwtypes.Metric) (string, bool) {
			dims := dimMap(m.Dimensions)
			switch {
			case len(dims) == 1:
				return AllRegions, true
			case len(dims) == 2 && dims["Region"] != "":
				return dims["Region"], true
			}
			return "", false
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			cmpn.Notes = append(cmpn.Notes, fmt.Sprintf("%s: Route 53 has no latency metrics for health check %s (they need MeasureLatency, appear minutes after creation, and stop while checks time out)", c.Key(), c.ID))
		}
		for _, s := range found {
			s.row.Target, s.row.Role, s.row.HealthCheckID, s.row.Source = c.Target, c.Role, c.ID, SourceRoute53
			if s.row.Metric == "FirstByteTime" {
				continue // not a Route 53 metric
			}
			r53Series = append(r53Series, s)
		}
		found, err = discover(ctx, agentCW, cmpn.Namespace, []cwtypes.DimensionFilter{
			{Name: aws.String("Target"), Value: aws.String(c.Target)},
			{Name: aws.String("Role"), Value: aws.String(c.Role)},
		}, func(m cwtypes.Metric) (string, bool) {
			dims := dimMap(m.Dimensions)
			return dims["Location"], len(dims) == 3 && dims["Location"] != ""
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			cmpn.Notes = append(cmpn.Notes, fmt.Sprintf("%s: no agent metrics in namespace %s with Target=%s, Role=%s (is the CloudWatch exporter on, and is this its region?)", c.Key(), cmpn.Namespace, c.Target, c.Role))
		}
		for _, s := range found {
			s.row.Target, s.row.Role, s.row.HealthCheckID, s.row.Source = c.Target, c.Role, c.ID, SourceAgent
			agentSeries = append(agentSeries, s)
		}
	}
	for _, group := range []struct {
		name   string
		api    MetricsAPI
		series []series
	}{{"Route 53's", r53cw, r53Series}, {"the agent's", agentCW, agentSeries}} {
		if err := readSeries(ctx, group.name, group.api, group.series, cmpn); err != nil {
			return nil, err
		}
		for _, s := range group.series {
			cmpn.Rows = append(cmpn.Rows, s.row)
		}
	}
	sortRows(cmpn.Rows)
	return cmpn, nil
}

// periodFor is the window as one CloudWatch period: a multiple of 60 s
// (data up to 15 days old), of 300 s (up to 63 days) or of 3600 s.
func periodFor(window time.Duration) int32 {
	step := 60.0
	switch {
	case window > 63*24*time.Hour:
		step = 3600
	case window > 15*24*time.Hour:
		step = 300
	}
	return int32(math.Ceil(window.Seconds()/step) * step)
}

// discover lists the series of ns matching filter whose phase metric and
// dimensions where accepts.
func discover(ctx context.Context, api MetricsAPI, ns string, filter []cwtypes.DimensionFilter, where func(cwtypes.Metric) (string, bool)) ([]series, error) {
	var out []series
	p := cloudwatch.NewListMetricsPaginator(api, &cloudwatch.ListMetricsInput{Namespace: aws.String(ns), Dimensions: filter})
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list metrics in %s: %w", ns, err)
		}
		for _, m := range page.Metrics {
			name := aws.ToString(m.MetricName)
			phase, ok := phaseOf[name]
			if !ok {
				continue
			}
			w, ok := where(m)
			if !ok || seen[name+"\x00"+w] {
				continue
			}
			seen[name+"\x00"+w] = true
			out = append(out, series{row: Row{Phase: phase, Where: w, Metric: name}, metric: m})
		}
	}
	return out, nil
}

func dimMap(ds []cwtypes.Dimension) map[string]string {
	m := make(map[string]string, len(ds))
	for _, d := range ds {
		m[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	return m
}

type point struct {
	t time.Time
	v float64
}

// maxQueries is GetMetricData's limit of queries per call.
const maxQueries = 500

// readSeries fills Average, Samples and P50 of every series (of source
// name, for notes).
func readSeries(ctx context.Context, name string, api MetricsAPI, ss []series, cmpn *Comparison) error {
	if len(ss) == 0 {
		return nil
	}
	query := func(i int, stat string) cwtypes.MetricDataQuery {
		m := ss[i].metric
		return cwtypes.MetricDataQuery{
			Id: aws.String(queryID(i, stat)),
			MetricStat: &cwtypes.MetricStat{
				Metric: &m, Period: aws.Int32(cmpn.PeriodSeconds), Stat: aws.String(stat),
			},
		}
	}
	var main, p50 []cwtypes.MetricDataQuery
	for i := range ss {
		main = append(main, query(i, "Average"), query(i, "SampleCount"))
		p50 = append(p50, query(i, "p50"))
	}
	got, err := getMetricData(ctx, api, main, cmpn.Start, cmpn.End)
	if err != nil {
		return err
	}
	percentiles, err := getMetricData(ctx, api, p50, cmpn.Start, cmpn.End)
	if err != nil {
		cmpn.Notes = append(cmpn.Notes, fmt.Sprintf("p50 of %s metrics not available: %v", name, err))
		percentiles = nil
	}
	approx := false
	for i := range ss {
		r := &ss[i].row
		avgs, counts := got[queryID(i, "Average")], got[queryID(i, "SampleCount")]
		weight := map[time.Time]float64{}
		for _, p := range counts {
			weight[p.t] = p.v
			r.Samples += p.v
		}
		r.AverageMS = weightedMean(avgs, weight)
		if ps := percentiles[queryID(i, "p50")]; len(ps) > 0 {
			r.P50MS = weightedMean(ps, weight)
			approx = approx || len(ps) > 1
		}
	}
	if approx {
		cmpn.Notes = append(cmpn.Notes, "CloudWatch answered more than one period for some series: their p50 is the sample-weighted mean of the periods' medians (approximate)")
	}
	return nil
}

func queryID(i int, stat string) string {
	suffix := map[string]string{"Average": "avg", "SampleCount": "n", "p50": "p50"}[stat]
	return "s" + strconv.Itoa(i) + "_" + suffix
}

// weightedMean combines per-period values by their sample counts (1 when
// unknown); nil when there are none.
func weightedMean(ps []point, weight map[time.Time]float64) *float64 {
	if len(ps) == 0 {
		return nil
	}
	var sum, n float64
	for _, p := range ps {
		w, ok := weight[p.t]
		if !ok || w <= 0 {
			w = 1
		}
		sum += p.v * w
		n += w
	}
	v := sum / n
	return &v
}

// getMetricData runs the queries in calls of at most maxQueries, following
// NextToken, and returns the points by query ID.
func getMetricData(ctx context.Context, api MetricsAPI, queries []cwtypes.MetricDataQuery, start, end time.Time) (map[string][]point, error) {
	out := map[string][]point{}
	for from := 0; from < len(queries); from += maxQueries {
		in := &cloudwatch.GetMetricDataInput{
			MetricDataQueries: queries[from:min(from+maxQueries, len(queries))],
			StartTime:         aws.Time(start), EndTime: aws.Time(end),
			ScanBy: cwtypes.ScanByTimestampAscending,
		}
		p := cloudwatch.NewGetMetricDataPaginator(api, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("get metric data: %w", err)
			}
			for _, r := range page.MetricDataResults {
				id := aws.ToString(r.Id)
				for k, v := range r.Values {
					if k < len(r.Timestamps) && !math.IsNaN(v) {
						out[id] = append(out[id], point{t: r.Timestamps[k], v: v})
					}
				}
			}
		}
	}
	return out, nil
}

func sortRows(rows []Row) {
	whereKey := func(w string) string {
		if w == AllRegions {
			return ""
		}
		return w
	}
	slices.SortStableFunc(rows, func(a, b Row) int {
		return cmp.Or(
			cmp.Compare(a.Target, b.Target), cmp.Compare(a.Role, b.Role),
			cmp.Compare(slices.Index(phaseOrder, a.Phase), slices.Index(phaseOrder, b.Phase)),
			cmp.Compare(whereKey(a.Where), whereKey(b.Where)),
			cmp.Compare(sourceRank(a.Source), sourceRank(b.Source)),
			cmp.Compare(slices.Index(metricOrder, a.Metric), slices.Index(metricOrder, b.Metric)),
		)
	})
}

func sourceRank(s string) int {
	if s == SourceRoute53 {
		return 0
	}
	return 1
}
