package compare

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/route53"
)

// r53Check creates a health check tagged as edgeprobe's for target/role
// (as `probe healthchecks create` tags them) and returns its ID.
func r53Check(t *testing.T, api *r53.Client, target, role string, regions ...string) string {
	t.Helper()
	cfg := &r53types.HealthCheckConfig{
		Type: r53types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String(role + ".shop.example"),
		Port: aws.Int32(443), ResourcePath: aws.String("/"), MeasureLatency: aws.Bool(true), RequestInterval: aws.Int32(30),
	}
	for _, r := range regions {
		cfg.Regions = append(cfg.Regions, r53types.HealthCheckRegion(r))
	}
	out, err := api.CreateHealthCheck(context.Background(), &r53.CreateHealthCheckInput{
		CallerReference: aws.String(route53.ReferencePrefix + target + "-" + role), HealthCheckConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.HealthCheck.Id)
	_, err = api.ChangeTagsForResource(context.Background(), &r53.ChangeTagsForResourceInput{
		ResourceType: r53types.TagResourceTypeHealthcheck, ResourceId: aws.String(id),
		AddTags: []r53types.Tag{
			{Key: aws.String(route53.TagTarget), Value: aws.String(target)},
			{Key: aws.String(route53.TagRole), Value: aws.String(role)},
			{Key: aws.String(route53.TagManaged), Value: aws.String("true")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// r53Latency puts what Route 53 publishes for a check: per checker region
// and minute, a statistic set of two checks per metric (and the aggregate
// over regions, without Region), minutes minutes up to end. mean gives a
// metric's minute average; it returns the averages put, by region and
// metric.
func r53Latency(t *testing.T, cw *cloudwatch.Client, id string, regions []string, end time.Time, minutes int, mean func(metric string) float64) map[string][]float64 {
	t.Helper()
	put := map[string][]float64{}
	for _, region := range append(slices.Clone(regions), "") {
		var data []cwtypes.MetricDatum
		dims := []cwtypes.Dimension{{Name: aws.String("HealthCheckId"), Value: aws.String(id)}}
		if region != "" {
			dims = append(dims, cwtypes.Dimension{Name: aws.String("Region"), Value: aws.String(region)})
		}
		for i := range minutes {
			for _, metric := range []string{"ConnectionTime", "SSLHandshakeTime", "TimeToFirstByte"} {
				avg := math.Round(mean(metric)*100) / 100
				if region == "" {
					avg = 9999 // the aggregate: not a location
				} else {
					put[region+"/"+metric] = append(put[region+"/"+metric], avg)
				}
				data = append(data, cwtypes.MetricDatum{
					MetricName: aws.String(metric), Dimensions: dims, Unit: cwtypes.StandardUnitMilliseconds,
					Timestamp:       aws.Time(end.Add(-time.Duration(minutes-i) * time.Minute)),
					StatisticValues: &cwtypes.StatisticSet{SampleCount: aws.Float64(2), Sum: aws.Float64(2 * avg), Minimum: aws.Float64(avg * 0.9), Maximum: aws.Float64(avg * 1.1)},
				})
			}
		}
		// Uncompressed: moto 5.2.1 gunzips a JSON body twice.
		_, err := cw.PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(route53.Route53Namespace), MetricData: data},
			func(o *cloudwatch.Options) { o.DisableRequestCompression = true })
		if err != nil {
			t.Fatal(err)
		}
	}
	return put
}

// testRoute53Moto: two of edgeprobe's health checks (origin and cdn) and
// one of someone else's in moto, their latency metrics put there as Route
// 53 publishes them; the source finds the checks by tag, each checker
// region a location, the minute averages as values.
func testRoute53Moto(t *testing.T, m *testkit.Moto) {
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	})}
	api := route53.NewClient(cfg, m.URL())
	cw := route53.NewCloudWatch(cfg, route53.Route53Region, m.URL())
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	origin := r53Check(t, api, "shop", "origin", regions...)
	cdn := r53Check(t, api, "shop", "cdn", regions...)
	if _, err := api.CreateHealthCheck(context.Background(), &r53.CreateHealthCheckInput{CallerReference: aws.String("someone-else"),
		HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String("other.example"),
			Port: aws.Int32(443), ResourcePath: aws.String("/")}}); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Minute)
	rng := rand.New(rand.NewPCG(5, 5))
	noisy := func(base map[string]float64) func(string) float64 {
		return func(metric string) float64 { return base[metric] * (0.9 + 0.2*rng.Float64()) }
	}
	const minutes = 40
	putA := r53Latency(t, cw, origin, regions, end, minutes, noisy(map[string]float64{"ConnectionTime": 30, "SSLHandshakeTime": 50, "TimeToFirstByte": 80}))
	putB := r53Latency(t, cw, cdn, regions, end, minutes, noisy(map[string]float64{"ConnectionTime": 5, "SSLHandshakeTime": 50, "TimeToFirstByte": 20}))

	src := NewRoute53(api, cw)
	w := Window{From: end.Add(-time.Hour), To: end}
	res, err := Run(context.Background(),
		Spec{Label: "origin", Source: src, Query: Query{Window: w, Match: Selector{Target: "shop", Role: "origin"}}},
		Spec{Label: "cdn", Source: src, Query: Query{Window: w, Match: Selector{Target: "shop", Role: "cdn"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		side *Side
		put  map[string][]float64
	}{{res.sideA, putA}, {res.sideB, putB}} {
		if got := s.side.LocationNames(); !slices.Equal(got, slices.Sorted(slices.Values(regions))) {
			t.Fatalf("locations %v, want the checker regions", got)
		}
		for _, region := range regions {
			l := s.side.Locations[region]
			if l.Probes != minutes || l.Failed() != 0 {
				t.Errorf("%s: %d minutes, %d failed", region, l.Probes, l.Failed())
			}
			for metric, phase := range r53PhaseOf {
				var want []time.Duration
				for _, v := range s.put[region+"/"+metric] {
					want = append(want, time.Duration(math.Round(v*float64(time.Millisecond))))
				}
				d := l.Phases[phase]
				if d == nil || d.Approximate() || !slices.Equal(slices.Sorted(slices.Values(d.Values)), slices.Sorted(slices.Values(want))) {
					t.Errorf("%s %s: values %v, want the averages put %v", region, phase, d, want)
				}
			}
		}
		if len(s.side.Warnings) != 1 || s.side.Warnings[0].Code != WarnAveragesOnly || !strings.Contains(s.side.Warnings[0].Message, "n counts minutes") {
			t.Errorf("warnings %+v", s.side.Warnings)
		}
		if !s.side.First.Equal(w.From.Add(20*time.Minute)) || !s.side.Last.Equal(end) {
			t.Errorf("first %v last %v", s.side.First, s.side.Last)
		}
	}
	for _, loc := range append([]string{AllLocations}, regions...) {
		for phase, want := range map[string]Verdict{httptrace.PhaseTTFB: Faster, httptrace.PhaseConnect: Faster, httptrace.PhaseTLS: NoChange} {
			row, ok := res.Row(phase, loc)
			if !ok || row.Verdict != want || row.Approximate || !row.HasTest {
				t.Errorf("%s %s: %+v, want %s", loc, phase, row, want)
			}
		}
	}
	if !slices.ContainsFunc(res.Warnings, func(w Warning) bool { return w.Code == WarnAveragesOnly }) {
		t.Errorf("result warnings %+v lack %s", res.Warnings, WarnAveragesOnly)
	}

	// One region; a role without a check; a window without data.
	one, err := src.Load(context.Background(), Query{Window: w, Match: Selector{Role: "cdn", Location: "eu-west-1"}})
	if err != nil || !slices.Equal(one.LocationNames(), []string{"eu-west-1"}) {
		t.Errorf("location=eu-west-1: %v %v", one.LocationNames(), err)
	}
	_, err = Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Window: w, Match: Selector{Role: "edge"}}},
		Spec{Label: "b", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "none matches role=edge; edgeprobe's health checks are shop/cdn, shop/origin") {
		t.Errorf("no check: %v", err)
	}
	_, err = Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Window: Window{From: end.Add(-3 * time.Hour), To: end.Add(-2 * time.Hour)}, Match: Selector{Role: "origin"}}},
		Spec{Label: "b", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "have no latency metrics in") {
		t.Errorf("no data: %v", err)
	}
}
