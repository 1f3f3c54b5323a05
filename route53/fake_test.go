package route53

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// fakeRoute53 keeps CallerReference as AWS documents it and moto does not:
// a reference returns its check when the settings are the same, and is
// refused (HealthCheckAlreadyExists) with other settings or after its
// check was deleted. failTag makes the next ChangeTagsForResource fail, as
// a run that stops between creating and tagging.
type fakeRoute53 struct {
	checks  map[string]*types.HealthCheck
	tags    map[string]map[string]string
	refs    map[string]string // reference → ID; kept after delete
	next    int
	failTag bool
	creates int
}

func newFakeRoute53() *fakeRoute53 {
	return &fakeRoute53{checks: map[string]*types.HealthCheck{}, tags: map[string]map[string]string{}, refs: map[string]string{}}
}

func (f *fakeRoute53) CreateHealthCheck(_ context.Context, in *r53.CreateHealthCheckInput, _ ...func(*r53.Options)) (*r53.CreateHealthCheckOutput, error) {
	f.creates++
	ref := aws.ToString(in.CallerReference)
	if id, ok := f.refs[ref]; ok {
		hc, live := f.checks[id]
		if live && reflect.DeepEqual(hc.HealthCheckConfig, in.HealthCheckConfig) {
			return &r53.CreateHealthCheckOutput{HealthCheck: hc}, nil
		}
		return nil, &types.HealthCheckAlreadyExists{Message: aws.String("reference in use")}
	}
	f.next++
	id := fmt.Sprintf("hc-%d", f.next)
	cfg := *in.HealthCheckConfig
	f.checks[id] = &types.HealthCheck{Id: aws.String(id), CallerReference: aws.String(ref), HealthCheckConfig: &cfg, HealthCheckVersion: aws.Int64(1)}
	f.refs[ref] = id
	return &r53.CreateHealthCheckOutput{HealthCheck: f.checks[id]}, nil
}

func (f *fakeRoute53) UpdateHealthCheck(_ context.Context, in *r53.UpdateHealthCheckInput, _ ...func(*r53.Options)) (*r53.UpdateHealthCheckOutput, error) {
	hc := f.checks[aws.ToString(in.HealthCheckId)]
	if hc == nil {
		return nil, &types.NoSuchHealthCheck{}
	}
	c := hc.HealthCheckConfig
	c.Port, c.ResourcePath, c.Regions, c.FailureThreshold, c.EnableSNI = in.Port, in.ResourcePath, in.Regions, in.FailureThreshold, in.EnableSNI
	if in.IPAddress != nil {
		c.IPAddress = in.IPAddress
	}
	if in.FullyQualifiedDomainName != nil {
		c.FullyQualifiedDomainName = in.FullyQualifiedDomainName
	}
	*hc.HealthCheckVersion++
	return &r53.UpdateHealthCheckOutput{HealthCheck: hc}, nil
}

func (f *fakeRoute53) DeleteHealthCheck(_ context.Context, in *r53.DeleteHealthCheckInput, _ ...func(*r53.Options)) (*r53.DeleteHealthCheckOutput, error) {
	delete(f.checks, aws.ToString(in.HealthCheckId))
	return &r53.DeleteHealthCheckOutput{}, nil
}

func (f *fakeRoute53) ListHealthChecks(context.Context, *r53.ListHealthChecksInput, ...func(*r53.Options)) (*r53.ListHealthChecksOutput, error) {
	out := &r53.ListHealthChecksOutput{}
	for _, id := range sortedKeys(f.checks) {
		out.HealthChecks = append(out.HealthChecks, *f.checks[id])
	}
	return out, nil
}

func (f *fakeRoute53) GetHealthCheckStatus(context.Context, *r53.GetHealthCheckStatusInput, ...func(*r53.Options)) (*r53.GetHealthCheckStatusOutput, error) {
	return &r53.GetHealthCheckStatusOutput{}, nil
}

func (f *fakeRoute53) ChangeTagsForResource(_ context.Context, in *r53.ChangeTagsForResourceInput, _ ...func(*r53.Options)) (*r53.ChangeTagsForResourceOutput, error) {
	if f.failTag {
		f.failTag = false
		return nil, errors.New("connection reset")
	}
	id := aws.ToString(in.ResourceId)
	if f.tags[id] == nil {
		f.tags[id] = map[string]string{}
	}
	for _, t := range in.AddTags {
		f.tags[id][aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &r53.ChangeTagsForResourceOutput{}, nil
}

func (f *fakeRoute53) ListTagsForResources(_ context.Context, in *r53.ListTagsForResourcesInput, _ ...func(*r53.Options)) (*r53.ListTagsForResourcesOutput, error) {
	if len(in.ResourceIds) > 10 {
		return nil, errors.New("InvalidInput: at most 10 resource IDs")
	}
	out := &r53.ListTagsForResourcesOutput{}
	for _, id := range in.ResourceIds {
		set := types.ResourceTagSet{ResourceId: aws.String(id), ResourceType: types.TagResourceTypeHealthcheck}
		for _, k := range sortedKeys(f.tags[id]) {
			set.Tags = append(set.Tags, types.Tag{Key: aws.String(k), Value: aws.String(f.tags[id][k])})
		}
		out.ResourceTagSets = append(out.ResourceTagSets, set)
	}
	return out, nil
}

// TestCreateCallerReference: the reference semantics of real Route 53 —
// a stopped run is adopted, and a reference remembered from a deleted
// check does not block re-creating it.
func TestCreateCallerReference(t *testing.T) {
	ctx := context.Background()
	f := newFakeRoute53()
	checks := planned(t, PlanOptions{})

	// The first run creates the first check and stops before tagging it.
	f.failTag = true
	if _, err := Create(ctx, f, checks, CreateOptions{}); err == nil || !strings.Contains(err.Error(), "tag health check") {
		t.Fatalf("tagging failure: %v", err)
	}
	// The next run adopts it instead of making a duplicate.
	res, err := Create(ctx, f, checks, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.checks) != 3 || res[0].Action != Updated || res[0].ID != "hc-1" || len(res[0].Notes) == 0 {
		t.Fatalf("after the stopped run: %d checks, %+v", len(f.checks), res[0])
	}
	// Deleted, then created again with the same settings: AWS remembers
	// the reference; one retry with a suffixed reference follows.
	if _, err := Delete(ctx, f, DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.creates = 0
	res, err = Create(ctx, f, checks, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.checks) != 3 || f.creates != 6 {
		t.Errorf("%d checks after %d CreateHealthCheck calls, want 3 after 6", len(f.checks), f.creates)
	}
	for _, r := range res {
		ref := aws.ToString(f.checks[r.ID].CallerReference)
		if r.Action != Created || !strings.HasPrefix(ref, ReferencePrefix) || len(ref) > 64 {
			t.Errorf("%s: %s, reference %q", r.Key(), r.Action, ref)
		}
	}
	// Replacing, more than 10 checks (ListTagsForResources batches) and a
	// second identical run.
	more := planned(t, PlanOptions{RequestInterval: 10})
	for i := 0; i < 4; i++ {
		for _, c := range planned(t, PlanOptions{RequestInterval: 10}) {
			c.Target = fmt.Sprintf("%s%d", c.Target, i)
			c.Tags[TagTarget], c.Tags[TagName] = c.Target, "edgeprobe "+c.Key()
			c.CallerReference = callerReference(&c, OriginIP)
			more = append(more, c)
		}
	}
	if _, err := Create(ctx, f, more, CreateOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	res, err = Create(ctx, f, more, CreateOptions{})
	if err != nil || len(res) != 15 || len(f.checks) != 15 {
		t.Fatalf("%d results, %d checks, %v", len(res), len(f.checks), err)
	}
	for _, r := range res {
		if r.Action != Unchanged {
			t.Errorf("%s: %s %v", r.Key(), r.Action, r.Changes)
		}
	}
}

// planned is the shop config's plan with the ALB's address filled in as
// Resolve would.
func planned(t *testing.T, opts PlanOptions) []Check {
	t.Helper()
	checks, err := Plan(shopConfig(t, "127.0.0.1:53"), opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range checks {
		if checks[i].ResolveHost != "" {
			checks[i].IPAddress, checks[i].ResolvedIPs = albIP.String(), []string{albIP.String()}
		}
	}
	return checks
}

// fakeMetrics answers ListMetrics from a fixed list and GetMetricData with
// one value per query: stat-specific, and for p50 possibly several periods
// or an error.
type fakeMetrics struct {
	metrics []cwtypes.Metric
	values  map[string][]float64 // "metric/where/stat" → one value per period
	p50Err  error
	calls   int
}

func (f *fakeMetrics) ListMetrics(_ context.Context, in *cloudwatch.ListMetricsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.ListMetricsOutput, error) {
	out := &cloudwatch.ListMetricsOutput{}
	for _, m := range f.metrics {
		if aws.ToString(m.Namespace) == aws.ToString(in.Namespace) {
			out.Metrics = append(out.Metrics, m)
		}
	}
	return out, nil
}

func (f *fakeMetrics) GetMetricData(_ context.Context, in *cloudwatch.GetMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	f.calls++
	out := &cloudwatch.GetMetricDataOutput{}
	for _, q := range in.MetricDataQueries {
		stat := aws.ToString(q.MetricStat.Stat)
		if stat == "p50" && f.p50Err != nil {
			return nil, f.p50Err
		}
		d := dimMap(q.MetricStat.Metric.Dimensions)
		key := aws.ToString(q.MetricStat.Metric.MetricName) + "/" + d["Region"] + d["Location"] + "/" + stat
		r := cwtypes.MetricDataResult{Id: q.Id}
		for i, v := range f.values[key] {
			r.Values = append(r.Values, v)
			r.Timestamps = append(r.Timestamps, in.StartTime.Add(time.Duration(i)*time.Minute))
		}
		out.MetricDataResults = append(out.MetricDataResults, r)
	}
	return out, nil
}

// TestComparePercentiles: p50 is read in calls of its own; a service that
// answers it fills the column, one that cannot costs the column only.
func TestComparePercentiles(t *testing.T) {
	metric := func(ns, name string, kv ...string) cwtypes.Metric {
		m := cwtypes.Metric{Namespace: aws.String(ns), MetricName: aws.String(name)}
		for i := 0; i < len(kv); i += 2 {
			m.Dimensions = append(m.Dimensions, cwtypes.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return m
	}
	r53cw := &fakeMetrics{
		metrics: []cwtypes.Metric{metric(Route53Namespace, "TimeToFirstByte", "HealthCheckId", "hc-1", "Region", "eu-west-1")},
		values:  map[string][]float64{"TimeToFirstByte/eu-west-1/Average": {100}, "TimeToFirstByte/eu-west-1/SampleCount": {6}},
		p50Err:  errors.New("500 from the emulator"),
	}
	agent := &fakeMetrics{
		metrics: []cwtypes.Metric{
			metric("EdgeProbe", "TimeToFirstByte", "Target", "shop", "Role", "cdn", "Location", "eu-west-1"),
			metric("EdgeProbe", "TimeToFirstByte", "Target", "shop", "Role", "cdn"), // not per location: skipped
		},
		values: map[string][]float64{
			// Two periods: averages combine by sample count.
			"TimeToFirstByte/eu-west-1/Average":     {40, 70},
			"TimeToFirstByte/eu-west-1/SampleCount": {2, 1},
			"TimeToFirstByte/eu-west-1/p50":         {30, 60},
		},
	}
	got, err := Compare(context.Background(), r53cw, agent, []Existing{{ID: "hc-1", Target: "shop", Role: "cdn"}}, CompareOptions{Window: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.PeriodSeconds != 120 || got.End.Sub(got.Start) != 2*time.Minute {
		t.Errorf("period %d, %v–%v", got.PeriodSeconds, got.Start, got.End)
	}
	if len(got.Rows) != 2 {
		t.Fatalf("rows %+v", got.Rows)
	}
	r, a := got.Rows[0], got.Rows[1]
	if r.Source != SourceRoute53 || *r.AverageMS != 100 || r.P50MS != nil || r.Samples != 6 {
		t.Errorf("route53 row %+v", r)
	}
	if a.Source != SourceAgent || *a.AverageMS != 50 || a.P50MS == nil || *a.P50MS != 40 || a.Samples != 3 {
		t.Errorf("agent row %+v avg %v p50 %v", a, ptr(a.AverageMS), ptr(a.P50MS))
	}
	notes := strings.Join(got.Notes, "\n")
	if !strings.Contains(notes, "p50 of Route 53's metrics not available: get metric data: 500 from the emulator") || !strings.Contains(notes, "approximate") {
		t.Errorf("notes %q", got.Notes)
	}
	if r53cw.calls != 2 || agent.calls != 2 {
		t.Errorf("GetMetricData calls: route53 %d, agent %d; want 2 each (stats, p50)", r53cw.calls, agent.calls)
	}
}
