package compare

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
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

// WarnAveragesOnly: a side's durations are per-period averages (Route 53
// publishes nothing finer), not single probes.
const WarnAveragesOnly = "averages_only"

// r53PhaseOf maps Route 53's latency metrics to phases (Route 53 does not
// say where its TimeToFirstByte starts; the agent's ttfb carries the same
// name, see route53.Compare).
var r53PhaseOf = map[string]string{
	cwexp.MetricConnectionTime:   httptrace.PhaseConnect,
	cwexp.MetricSSLHandshakeTime: httptrace.PhaseTLS,
	cwexp.MetricTimeToFirstByte:  httptrace.PhaseTTFB,
}

// Route53 is a source of Route 53 health checks' own latency: the
// AWS/Route53 metrics ConnectionTime, SSLHandshakeTime and TimeToFirstByte
// (dimensions HealthCheckId and Region, in us-east-1 only) of edgeprobe's
// health checks (`probe healthchecks create`: found by their tags, so a
// selector's target and role pick the checks), each checker region a
// location.
//
// Route 53 publishes, per checker region and minute, statistics of its
// checks, not the checks: the source reads the Average of each minute (of
// each 5 minutes for data older than 15 days, hour beyond 63 days) and
// gives those averages as the values. So n counts minutes, p50/p90/p99
// are percentiles of minute averages (the tails are smoothed away), and
// the verdict — rank test and bootstrap interval, as for raw samples —
// says whether the typical minute average moved: a real difference of
// the means, not of the probes' percentiles. Every side carries a
// WarnAveragesOnly warning saying so. Route 53 keeps no latency of a
// failed check, so the failure rows count minutes, none of them failed.
// A check replaced between the windows (`create --replace`) has a new ID;
// the old one's metrics are not found by tag.
//
// IAM: route53:ListHealthChecks and route53:ListTagsForResources;
// cloudwatch:ListMetrics and cloudwatch:GetMetricData in us-east-1.
type Route53 struct {
	checks  route53.API
	metrics route53.MetricsAPI
	now     func() time.Time

	mu       sync.Mutex
	describe string
}

// NewRoute53 is the source reading checks through a Route 53 client
// (route53.NewClient) and their metrics through a CloudWatch client in
// us-east-1 (route53.NewCloudWatch with route53.Route53Region).
func NewRoute53(checks route53.API, metrics route53.MetricsAPI) *Route53 {
	return &Route53{checks: checks, metrics: metrics, now: time.Now}
}

// String names the source.
func (r *Route53) String() string { return "Route 53 health checks" }

// Describe says what there is when the last Load found nothing.
func (r *Route53) Describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.describe
}

func (r *Route53) setDescribe(s string) {
	r.mu.Lock()
	r.describe = s
	r.mu.Unlock()
}

// r53Series is one latency metric of one check in one checker region.
type r53Series struct {
	metric cwtypes.Metric
	phase  string
	check  *route53.Existing
	region string
}

// Load reads one side: the minute averages of the selected checks.
func (r *Route53) Load(ctx context.Context, q Query) (*Side, error) {
	w := remoteWindow(q.Window, r.now())
	if !w.To.After(w.From) {
		return nil, fmt.Errorf("%s: empty window %s", r, w)
	}
	side := NewSide()
	all, err := route53.List(ctx, r.checks, route53.ListOptions{Target: q.Match.Target})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	var checks []route53.Existing
	for _, c := range all {
		if q.Match.Role == "" || c.Role == q.Match.Role {
			checks = append(checks, c)
		}
	}
	if len(checks) == 0 {
		var keys []string
		for _, c := range all {
			keys = append(keys, c.Key())
		}
		msg := "there are no health checks of edgeprobe's (run `probe healthchecks create`)"
		if len(keys) > 0 {
			msg = "edgeprobe's health checks are " + strings.Join(keys, ", ")
		}
		r.setDescribe(fmt.Sprintf("%s: none matches %s; %s", r, cmp.Or(q.Match.String(), "the selector"), msg))
		return side, nil
	}
	var series []r53Series
	for i := range checks {
		found, err := r.discover(ctx, &checks[i], q.Match.Location)
		if err != nil {
			return nil, err
		}
		series = append(series, found...)
	}

	start, step, whole, _ := cwPeriods(w, r.now())
	end := start.Add(time.Duration(whole) * time.Second)
	var qs []cwtypes.MetricDataQuery
	for i, s := range series {
		m := s.metric
		qs = append(qs, cwtypes.MetricDataQuery{
			Id:         aws.String(cwID(i, "avg")),
			MetricStat: &cwtypes.MetricStat{Metric: &m, Period: aws.Int32(step), Stat: aws.String("Average")},
			ReturnData: aws.Bool(true),
		})
	}
	got, msgs, err := getMetricData(ctx, r.metrics, qs, start, end)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	for _, m := range msgs {
		side.Warnings = append(side.Warnings, Warning{Code: WarnSource, Message: r.String() + ": " + m})
	}

	// The periods with an average, per check and region: the "probes".
	type key struct{ check, region string }
	periods := map[key]map[time.Time]bool{}
	var first, last time.Time
	for i, s := range series {
		pts := got[cwID(i, "avg")]
		if len(pts) == 0 {
			continue
		}
		l := side.Location(s.region)
		d := l.Phases[s.phase]
		if d == nil {
			d = &Dist{}
			l.Phases[s.phase] = d
		}
		k := key{s.check.ID, s.region}
		if periods[k] == nil {
			periods[k] = map[time.Time]bool{}
		}
		for _, p := range pts {
			d.Values = append(d.Values, time.Duration(math.Round(p.v*float64(time.Millisecond))))
			periods[k][p.t] = true
			if first.IsZero() || p.t.Before(first) {
				first = p.t
			}
			last = maxTime(last, p.t)
		}
	}
	byID := map[string]*route53.Existing{}
	for i := range checks {
		byID[checks[i].ID] = &checks[i]
	}
	for k, ts := range periods {
		l := side.Location(k.region)
		l.Probes += len(ts)
		for t := range ts {
			l.Hours[t.Add(time.Duration(step)*time.Second/2).UTC().Hour()]++
		}
		side.Series[byID[k.check].Key()] += len(ts)
	}
	if len(periods) == 0 {
		var ids []string
		for _, c := range checks {
			ids = append(ids, c.ID+" ("+c.Key()+")")
		}
		r.setDescribe(fmt.Sprintf("%s %s have no latency metrics in %s: they need MeasureLatency, appear minutes after creation, and stop while checks time out",
			r, strings.Join(ids, ", "), w))
		return side, nil
	}
	side.First, side.Last = maxTime(first, w.From), minTime(last.Add(time.Duration(step)*time.Second), w.To)
	what := "minute"
	if step > 60 {
		what = fmt.Sprintf("%d-minute period", step/60)
	}
	side.Warnings = append(side.Warnings, Warning{Code: WarnAveragesOnly, Message: fmt.Sprintf(
		"Route 53 publishes one average per checker region and %[1]s, not its single checks: n counts %[1]ss, "+
			"p50/p90/p99 are percentiles of those averages (their tails are smoothed away) and the verdict compares the typical average; "+
			"failed checks publish no latency, so the failure rows count %[1]ss, none failed", what)})
	return side, nil
}

// discover lists a check's latency series per checker region (region
// "" = every one). ListMetrics shows series with data in the last two
// weeks; when it shows none, the check's configured regions are named
// directly.
func (r *Route53) discover(ctx context.Context, c *route53.Existing, region string) ([]r53Series, error) {
	filter := []cwtypes.DimensionFilter{{Name: aws.String("HealthCheckId"), Value: aws.String(c.ID)}}
	if region != "" {
		filter = append(filter, cwtypes.DimensionFilter{Name: aws.String("Region"), Value: aws.String(region)})
	}
	var out []r53Series
	seen := map[string]bool{}
	p := cloudwatch.NewListMetricsPaginator(r.metrics, &cloudwatch.ListMetricsInput{
		Namespace: aws.String(route53.Route53Namespace), Dimensions: filter})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: list metrics of %s: %w", r, c.ID, err)
		}
		for _, m := range page.Metrics {
			phase, ok := r53PhaseOf[aws.ToString(m.MetricName)]
			if !ok || len(m.Dimensions) != 2 {
				continue // the aggregate over regions has no Region
			}
			dims := map[string]string{}
			for _, d := range m.Dimensions {
				dims[aws.ToString(d.Name)] = aws.ToString(d.Value)
			}
			if dims["HealthCheckId"] != c.ID || dims["Region"] == "" {
				continue
			}
			if k := seriesKey(m); !seen[k] {
				seen[k] = true
				out = append(out, r53Series{metric: m, phase: phase, check: c, region: dims["Region"]})
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, reg := range c.Regions {
		if region != "" && reg != region {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(r53PhaseOf)) {
			out = append(out, r53Series{metric: cwtypes.Metric{
				Namespace: aws.String(route53.Route53Namespace), MetricName: aws.String(name),
				Dimensions: []cwtypes.Dimension{
					{Name: aws.String("HealthCheckId"), Value: aws.String(c.ID)},
					{Name: aws.String("Region"), Value: aws.String(reg)},
				},
			}, phase: r53PhaseOf[name], check: c, region: reg})
		}
	}
	return out, nil
}
