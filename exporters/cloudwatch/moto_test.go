package cloudwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

// resetMoto empties the emulator's state.
func resetMoto(t testing.TB, m *testkit.Moto) {
	t.Helper()
	resp, err := http.Post(m.URL()+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
}

// newSink builds a sink on moto (the config's endpoint) and closes it
// when the test ends.
func newSink(t testing.TB, e *testEnv, cfg probe.CloudWatchConfig, o Options) *Sink {
	t.Helper()
	s, err := New(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func flush(t testing.TB, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// dims are a series' dimensions in the order the exporter sends them:
// moto 5.2.1 matches GetMetricData's dimensions in order (its Dimension
// ordering is broken), real CloudWatch does not care.
func dims(target, role string, extra ...string) []types.Dimension {
	d := []types.Dimension{dim(DimTarget, target), dim(DimRole, role), dim(DimLocation, "test-loc")}
	for i := 0; i+1 < len(extra); i += 2 {
		d = append(d, dim(extra[i], extra[i+1]))
	}
	return d
}

func dim(name, value string) types.Dimension {
	return types.Dimension{Name: aws.String(name), Value: aws.String(value)}
}

func within(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)+1e-9
}

// TestMoto runs the exporter against the moto emulator: what lands, read
// back with the Go SDK and with Debian's awscli; packing to the limits;
// endpoint configuration; an outage (last: it restarts the emulator).
func TestMoto(t *testing.T) {
	m := testkit.StartMoto(t)
	defer t.Run("outage", func(t *testing.T) { testOutage(t, m) })

	t.Run("datums land", func(t *testing.T) {
		resetMoto(t, m)
		e := newTestEnv()
		s := newSink(t, e, probe.CloudWatchConfig{Namespace: "EdgeProbeLand", Endpoint: m.URL()}, e.options(t))
		now := time.Now()
		for i := range 50 {
			s.Write(context.Background(), okSample("shop", "cdn", now, msec(40+float64(i))))
		}
		for range 5 {
			s.Write(context.Background(), failSample("shop", "origin", now))
		}
		for range 3 {
			smp := okSample("shop", "origin", now, msec(100))
			smp.Address = "ipv4-0"
			smp.CDN.Cache = "unknown"
			smp.Timings.DNS = 0 // an IP literal: no DNS phase
			s.Write(context.Background(), smp)
		}
		flush(t, s)
		r := newReader(t, m.URL())
		ns := "EdgeProbeLand"

		cdn := dims("shop", "cdn")
		got := r.stats(t, ns, MetricTotalTime, cdn)
		if got.count != 50 || !within(got.min, 40, RelativeErrorBound) || !within(got.max, 89, RelativeErrorBound) ||
			!within(got.sum, 50*(40+89)/2.0, RelativeErrorBound) {
			t.Errorf("TotalTime cdn: %+v, want 50 samples of 40..89 ms summing to 3225", got)
		}
		for _, c := range []struct {
			metric string
			ms     float64
		}{{MetricDNSLookupTime, 2}, {MetricConnectionTime, 4}, {MetricSSLHandshakeTime, 9}, {MetricTransferTime, 3}} {
			if got := r.stats(t, ns, c.metric, cdn); got.count != 50 || !within(got.min, c.ms, RelativeErrorBound) || !within(got.max, c.ms, RelativeErrorBound) {
				t.Errorf("%s cdn: %+v, want 50 × %v ms", c.metric, got, c.ms)
			}
		}
		for _, metric := range []string{MetricTimeToFirstByte, MetricFirstByteTime} {
			if got := r.stats(t, ns, metric, cdn); got.count != 50 {
				t.Errorf("%s cdn: %+v, want 50 samples", metric, got)
			}
		}
		if got := r.stats(t, ns, MetricSuccess, cdn); got.count != 50 || got.sum != 50 {
			t.Errorf("Success cdn: %+v, want 50 probes, all 1", got)
		}
		if got := r.stats(t, ns, MetricCacheHit, cdn); got.count != 50 || got.sum != 50 {
			t.Errorf("CacheHit cdn: %+v, want 50 hits", got)
		}
		origin := dims("shop", "origin")
		if got := r.stats(t, ns, MetricSuccess, origin); got.count != 5 || got.sum != 0 {
			t.Errorf("Success origin: %+v, want 5 failed probes", got)
		}
		if got := r.stats(t, ns, MetricTotalTime, origin); got.count != 0 {
			t.Errorf("failed probes sent durations: %+v", got)
		}
		if got := r.stats(t, ns, MetricCacheHit, origin); got.count != 0 {
			t.Errorf("CacheHit sent for probes without a CDN result: %+v", got)
		}
		addr := dims("shop", "origin", DimAddress, "ipv4-0")
		if got := r.stats(t, ns, MetricSuccess, addr); got.count != 3 || got.sum != 3 {
			t.Errorf("Success with Address: %+v, want 3", got)
		}
		if got := r.stats(t, ns, MetricDNSLookupTime, addr); got.count != 0 {
			t.Errorf("a phase that did not happen was sent: %+v", got)
		}
		// Units: moto filters GetMetricData by unit.
		for metric, unit := range map[string]types.StandardUnit{MetricTotalTime: types.StandardUnitMilliseconds, MetricSuccess: types.StandardUnitNone} {
			out, err := r.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
				StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(time.Hour)),
				MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("n"), MetricStat: &types.MetricStat{
					Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(metric), Dimensions: cdn},
					Period: aws.Int32(60), Stat: aws.String("SampleCount"), Unit: unit}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			n := 0.0
			for _, v := range out.MetricDataResults[0].Values {
				n += v
			}
			if n != 50 {
				t.Errorf("%s with unit %s: %v samples, want 50", metric, unit, n)
			}
		}
		// cdn: 7 phases, Success, CacheHit; origin: Success; origin with
		// Address: Success and 6 phases (no DNS).
		if n := e.value("edgeprobe_cloudwatch_metrics"); n != 9+1+7 {
			t.Errorf("edgeprobe_cloudwatch_metrics = %v, want 17", n)
		}

		t.Run("awscli", func(t *testing.T) { checkAWSCLI(t, m, ns, now) })
	})

	t.Run("percentiles", func(t *testing.T) {
		resetMoto(t, m)
		e := newTestEnv()
		s := newSink(t, e, probe.CloudWatchConfig{Namespace: "EdgeProbePct", Endpoint: m.URL()}, e.options(t))
		rng := rand.New(rand.NewPCG(1, 2))
		now := time.Now()
		var raw []float64
		for range 2000 {
			total := msec(math.Exp(math.Log(80) + 0.6*rng.NormFloat64()))
			smp := okSample("shop", "cdn", now, total)
			raw = append(raw, ms(smp.Timings.Total))
			s.Write(context.Background(), smp)
		}
		flush(t, s)
		for _, rec := range e.rec.records() {
			if rec.maxValues > MaxValuesPerDatum {
				t.Errorf("a datum with %d values", rec.maxValues)
			}
		}
		stored := motoValues(t, m, "EdgeProbePct", MetricTotalTime)
		if len(stored) != len(raw) {
			t.Fatalf("moto holds %d TotalTime points, want %d", len(stored), len(raw))
		}
		slices.Sort(raw)
		slices.Sort(stored)
		for _, p := range []float64{50, 90, 99} {
			want, got := nearestRank(raw, p), nearestRank(stored, p)
			if !within(got, want, RelativeErrorBound) {
				t.Errorf("p%v: from CloudWatch's points %v, exact %v (%.3f%%)", p, got, want, 100*(got-want)/want)
			}
		}
		r := newReader(t, m.URL())
		if got := r.stats(t, "EdgeProbePct", MetricTotalTime, dims("shop", "cdn")); got.count != 2000 {
			t.Errorf("SampleCount %v, want 2000", got.count)
		}
	})

	t.Run("packing", func(t *testing.T) {
		resetMoto(t, m)
		e := newTestEnv()
		s := newSink(t, e, probe.CloudWatchConfig{Namespace: "EdgeProbePack", Endpoint: m.URL()}, e.options(t))
		now := time.Now()
		// 5,000 series: 1,000 targets × 5 roles, one failed probe each
		// (Success only).
		for i := range 1000 {
			for j := range 5 {
				s.Write(context.Background(), failSample(fmt.Sprintf("t%04d", i), fmt.Sprintf("r%d", j), now))
			}
		}
		flush(t, s)
		recs := e.rec.records()
		datums := 0
		for _, rec := range recs {
			datums += rec.datums
			if rec.datums > MaxDatumsPerRequest || rec.jsonBytes > MaxRequestBytes {
				t.Errorf("request over the limits: %+v", rec)
			}
		}
		if len(recs) != 5 || datums != 5000 {
			t.Errorf("%d requests carrying %d datums, want 5 carrying 5000", len(recs), datums)
		}
		if n := e.value("edgeprobe_cloudwatch_api_calls_total", "operation", "PutMetricData", "result", "success"); n != 5 {
			t.Errorf("api_calls_total{success} = %v, want 5", n)
		}
		if n := e.value("edgeprobe_cloudwatch_metrics"); n != 5000 {
			t.Errorf("edgeprobe_cloudwatch_metrics = %v, want 5000", n)
		}
		// Every datum arrived (moto's ListMetrics takes seconds over 5,000
		// metrics; its state dump is quicker), and ListMetrics sees the
		// five series of one target.
		if n := len(motoValues(t, m, "EdgeProbePack", MetricSuccess)); n != 5000 {
			t.Errorf("moto holds %d Success points, want 5000", n)
		}
		r := newReader(t, m.URL())
		if n := countMetrics(t, r, "EdgeProbePack", dim(DimTarget, "t0042")); n != 5 {
			t.Errorf("ListMetrics Target=t0042: %d metrics, want 5", n)
		}

	})

	t.Run("endpoint from the environment", func(t *testing.T) {
		resetMoto(t, m)
		refused, err := lab.NewRefusingAddr()
		if err != nil {
			t.Fatal(err)
		}
		r := newReader(t, m.URL())
		for _, c := range []struct {
			name, ns string
			env      map[string]string
			endpoint string
		}{
			{"AWS_ENDPOINT_URL_CLOUDWATCH", "EnvService", map[string]string{"AWS_ENDPOINT_URL_CLOUDWATCH": m.URL()}, ""},
			{"AWS_ENDPOINT_URL", "EnvGlobal", map[string]string{"AWS_ENDPOINT_URL": m.URL()}, ""},
			{"config endpoint wins", "EnvConfig", map[string]string{"AWS_ENDPOINT_URL_CLOUDWATCH": "http://" + refused, "AWS_ENDPOINT_URL": "http://" + refused}, m.URL()},
		} {
			t.Run(c.name, func(t *testing.T) {
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				e := newTestEnv()
				s := newSink(t, e, probe.CloudWatchConfig{Namespace: c.ns, Endpoint: c.endpoint}, e.options(t))
				// moto's GetMetricData ignores the namespace when given
				// dimensions: each case has its own target.
				s.Write(context.Background(), okSample(c.ns, "cdn", time.Now(), msec(50)))
				flush(t, s)
				if got := r.stats(t, c.ns, MetricSuccess, dims(c.ns, "cdn")); got.count != 1 {
					t.Errorf("Success: %+v, want 1 probe", got)
				}
			})
		}
	})
}

func nearestRank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// motoValues reads the points moto stored for a metric (moto computes no
// percentiles — GetMetricData with p50 answers 500 — so the distribution is
// read from its state dump; one series per namespace in these tests).
func motoValues(t testing.TB, m *testkit.Moto, ns, metric string) []float64 {
	t.Helper()
	resp, err := http.Get(m.URL() + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dump struct {
		CloudWatch struct {
			MetricDatum []struct {
				Name, Namespace string
				Value           float64
			}
		} `json:"cloudwatch"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	var out []float64
	for _, d := range dump.CloudWatch.MetricDatum {
		if d.Namespace == ns && d.Name == metric {
			out = append(out, d.Value)
		}
	}
	return out
}

func countMetrics(t testing.TB, r *reader, ns string, filter ...types.Dimension) int {
	t.Helper()
	var df []types.DimensionFilter
	for _, d := range filter {
		df = append(df, types.DimensionFilter{Name: d.Name, Value: d.Value})
	}
	n := 0
	p := cloudwatch.NewListMetricsPaginator(r.cw, &cloudwatch.ListMetricsInput{Namespace: aws.String(ns), Dimensions: df})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Metrics)
	}
	return n
}

// checkAWSCLI reads what "datums land" sent with Debian's awscli, a client
// independent of the Go SDK.
func checkAWSCLI(t *testing.T, m *testkit.Moto, ns string, now time.Time) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("awscli (Debian package awscli) not installed: %v", err)
	}
	aws := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("aws", append([]string{"--endpoint-url", m.URL(), "--output", "json", "cloudwatch"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("aws %v: %v\n%s", args, err, stderr)
		}
		return out
	}

	var list struct {
		Metrics []struct {
			MetricName string
			Dimensions []struct{ Name, Value string }
		}
	}
	if err := json.Unmarshal(aws("list-metrics", "--namespace", ns), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mt := range list.Metrics {
		var ds []string
		for _, d := range mt.Dimensions {
			ds = append(ds, d.Name+"="+d.Value)
		}
		sort.Strings(ds)
		seen[mt.MetricName+" "+strings.Join(ds, ",")] = true
	}
	cdn := "Location=test-loc,Role=cdn,Target=shop"
	want := []string{
		MetricDNSLookupTime + " " + cdn, MetricConnectionTime + " " + cdn, MetricSSLHandshakeTime + " " + cdn,
		MetricTimeToFirstByte + " " + cdn, MetricTransferTime + " " + cdn, MetricTotalTime + " " + cdn,
		MetricFirstByteTime + " " + cdn, MetricSuccess + " " + cdn, MetricCacheHit + " " + cdn,
		MetricSuccess + " Location=test-loc,Role=origin,Target=shop",
		MetricSuccess + " Address=ipv4-0,Location=test-loc,Role=origin,Target=shop",
		MetricTotalTime + " Address=ipv4-0,Location=test-loc,Role=origin,Target=shop",
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("list-metrics lacks %s; has %v", w, seen)
		}
	}
	if seen[MetricDNSLookupTime+" Address=ipv4-0,Location=test-loc,Role=origin,Target=shop"] ||
		seen[MetricCacheHit+" Address=ipv4-0,Location=test-loc,Role=origin,Target=shop"] {
		t.Errorf("list-metrics has metrics that were not measured: %v", seen)
	}

	var st struct {
		Label      string
		Datapoints []struct {
			SampleCount, Minimum, Maximum float64
			Unit                          string
		}
	}
	out := aws("get-metric-statistics", "--namespace", ns, "--metric-name", MetricTotalTime,
		"--dimensions", "Name=Target,Value=shop", "Name=Role,Value=cdn", "Name=Location,Value=test-loc",
		"--start-time", now.Add(-time.Hour).UTC().Format(time.RFC3339), "--end-time", now.Add(time.Hour).UTC().Format(time.RFC3339),
		"--period", "60", "--statistics", "SampleCount", "Minimum", "Maximum")
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	n, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, d := range st.Datapoints {
		n += d.SampleCount
		lo, hi = min(lo, d.Minimum), max(hi, d.Maximum)
		if d.Unit != "Milliseconds" {
			t.Errorf("get-metric-statistics unit %q, want Milliseconds", d.Unit)
		}
	}
	if n != 50 || !within(lo, 40, RelativeErrorBound) || !within(hi, 89, RelativeErrorBound) {
		t.Errorf("get-metric-statistics TotalTime: %d samples, %v..%v ms; want 50, 40..89\n%s", int(n), lo, hi, out)
	}
}
