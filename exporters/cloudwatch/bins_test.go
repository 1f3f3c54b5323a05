package cloudwatch

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// TestBinningPercentiles: percentiles computed from the Values/Counts the
// exporter sends are within RelativeErrorBound of the exact percentiles of
// random latency samples — narrow and wide distributions, few and many
// samples, sub-millisecond to minutes — and no datum has more than 150
// values.
func TestBinningPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	cases := []struct {
		name   string
		n      int
		sample func() float64 // ms
	}{
		{"lognormal narrow", 5000, func() float64 { return math.Exp(math.Log(40) + 0.1*rng.NormFloat64()) }},
		{"lognormal wide", 20000, func() float64 { return math.Exp(math.Log(120) + 1.2*rng.NormFloat64()) }},
		{"bimodal hit/miss", 3000, func() float64 {
			if rng.IntN(4) == 0 {
				return 250 + 40*rng.NormFloat64()
			}
			return 12 + 2*rng.NormFloat64()
		}},
		{"sub-millisecond", 1000, func() float64 { return 0.05 + 0.3*rng.Float64() }},
		{"uniform to a minute", 4000, func() float64 { return 1 + 60000*rng.Float64() }},
		{"few", 7, func() float64 { return 10 + 90*rng.Float64() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se := &series{info: newSeriesInfo(seriesKey{metric: mTotal}, false), bins: map[int32]float64{}}
			raw := make([]float64, 0, c.n)
			for range c.n {
				v := max(c.sample(), 0.001)
				raw = append(raw, v)
				se.add(v)
			}
			ds := se.datums(time.Now(), MaxValuesPerDatum)
			var vals, counts []float64
			var total float64
			for _, d := range ds {
				if len(d.values) > MaxValuesPerDatum || len(d.values) != len(d.counts) {
					t.Fatalf("datum with %d values, %d counts", len(d.values), len(d.counts))
				}
				vals = append(vals, d.values...)
				counts = append(counts, d.counts...)
				total += d.samples
			}
			if total != float64(c.n) {
				t.Fatalf("counts sum to %v, want %d", total, c.n)
			}
			slices.Sort(raw)
			expanded := expand(vals, counts)
			worst := 0.0
			for p := 0.5; p < 100; p += 0.5 {
				exact, got := nearestRank(raw, p), nearestRank(expanded, p)
				rel := math.Abs(got-exact) / exact
				worst = max(worst, rel)
				if rel > RelativeErrorBound {
					t.Errorf("p%v: %v from Values/Counts, exact %v: %.4f%% off", p, got, exact, 100*rel)
				}
				// Interpolated percentiles (as CloudWatch may compute them).
				ei, gi := interpolated(raw, p), interpolated(expanded, p)
				if rel := math.Abs(gi-ei) / ei; rel > RelativeErrorBound {
					t.Errorf("interpolated p%v: %v vs %v: %.4f%% off", p, gi, ei, 100*rel)
				}
			}
			t.Logf("%d samples → %d datums, %d values; worst percentile error %.4f%%", c.n, len(ds), len(vals), 100*worst)
		})
	}
}

// TestBinValueBound: every value is within the bound of its bin's value,
// at bin edges too.
func TestBinValueBound(t *testing.T) {
	for i := int32(-1500); i < 2000; i++ {
		lo := math.Pow(binGrowth, float64(i))
		for _, v := range []float64{lo, lo * 1.000001, lo * 1.005, lo * 1.0099999} {
			b := binOf(v)
			if rel := math.Abs(binValue(b)-v) / v; rel > RelativeErrorBound {
				t.Fatalf("value %v in bin %d (value %v): %.5f%% off", v, b, binValue(b), 100*rel)
			}
		}
	}
	for i := int32(-10); i < 10; i++ {
		if binValue(i) >= binValue(i+1) {
			t.Fatalf("bin values not increasing at %d", i)
		}
	}
}

func expand(vals, counts []float64) []float64 {
	var out []float64
	for i, v := range vals {
		for range int(counts[i]) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func interpolated(sorted []float64, p float64) float64 {
	x := p / 100 * float64(len(sorted)-1)
	i := int(x)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	f := x - float64(i)
	return sorted[i]*(1-f) + sorted[i+1]*f
}

// TestObserve: what one sample contributes, per the metric contract.
func TestObserve(t *testing.T) {
	names := func(s *probe.Sample) map[string]float64 {
		var buf [numMetrics]observation
		out := map[string]float64{}
		for _, ob := range buf[:observe(s, &buf)] {
			out[metricDefs[ob.metric].name] = ob.value
		}
		return out
	}
	ok := okSample("shop", "cdn", time.Now(), msec(48))
	ok.Conditional = &httptrace.Conditional{Sent: true, Status: 304, Timings: httptrace.Timings{TTFB: msec(15)}}
	got := names(ok)
	want := map[string]float64{
		MetricSuccess: 1, MetricCacheHit: 1, MetricDNSLookupTime: 2, MetricConnectionTime: 4, MetricSSLHandshakeTime: 9,
		MetricTimeToFirstByte: 30, MetricTransferTime: 3, MetricTotalTime: 48, MetricFirstByteTime: 45, MetricRevalidationTime: 15,
	}
	if len(got) != len(want) {
		t.Errorf("successful sample: %v, want %v", got, want)
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	plain := okSample("shop", "origin", time.Now(), msec(48))
	plain.Timings.DNS, plain.Timings.TLS = 0, 0
	plain.CDN.Cache = httptrace.CacheUnknown
	got = names(plain)
	for _, k := range []string{MetricDNSLookupTime, MetricSSLHandshakeTime, MetricCacheHit, MetricRevalidationTime} {
		if _, ok := got[k]; ok {
			t.Errorf("%s sent for a phase or fact that did not happen: %v", k, got)
		}
	}

	failed := failSample("shop", "cdn", time.Now())
	if got := names(failed); len(got) != 1 || got[MetricSuccess] != 0 {
		t.Errorf("failed sample: %v, want only Success 0", got)
	}
	cdnErr := failSample("shop", "cdn", time.Now())
	cdnErr.CDN.Cache = httptrace.CacheError
	if got := names(cdnErr); len(got) != 2 || got[MetricSuccess] != 0 || got[MetricCacheHit] != 0 {
		t.Errorf("failed sample with a CDN error: %v, want Success 0 and CacheHit 0", got)
	}
	for cache, v := range map[string]float64{httptrace.CacheHit: 1, httptrace.CacheRefreshHit: 1, httptrace.CacheMiss: 0, httptrace.CacheBypass: 0} {
		s := okSample("shop", "cdn", time.Now(), msec(48))
		s.CDN.Cache = cache
		if got := names(s); got[MetricCacheHit] != v {
			t.Errorf("cache %s: CacheHit %v, want %v", cache, got[MetricCacheHit], v)
		}
	}
	if got := names(&probe.Sample{Target: "x"}); len(got) != 1 || got[MetricSuccess] != 0 {
		t.Errorf("sample without a result: %v", got)
	}
	if PhaseMetric(httptrace.PhaseTTFB) != MetricTimeToFirstByte || PhaseMetric(httptrace.PhaseFirstByte) != MetricFirstByteTime || PhaseMetric("x") != "" {
		t.Error("PhaseMetric")
	}
}

func TestJSONFloatLen(t *testing.T) {
	for _, v := range []float64{0, 1, 9, 10, 99, 100, 12345, 1e14, 1e15, 1e21, 0.5, 1.9968, 123.457, 1e-7, 3.3e-6, 98765.4} {
		if got, want := jsonFloatLen(v), len(appendJSONFloat(nil, v)); got != want {
			t.Errorf("jsonFloatLen(%v) = %d, want %d", v, got, want)
		}
	}
}
