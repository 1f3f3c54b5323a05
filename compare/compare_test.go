package compare

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
	"github.com/edgeprobe/edgeprobe/report"
)

const msec = time.Millisecond

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// latency draws a server wait like real ones: a floor, a log-normal body
// and the odd slow tail.
func latency(rng *rand.Rand, floor time.Duration) time.Duration {
	body := math.Exp(rng.NormFloat64()*0.5) * 8 // median 8 ms, skewed right
	if rng.Float64() < 0.05 {
		body += rng.ExpFloat64() * 40
	}
	return floor + time.Duration(body*float64(msec))
}

// gen describes generated probes of one side.
type gen struct {
	n        int
	location string
	ttfb     func(*rand.Rand) time.Duration // default latency(rng, 30ms)
	failures int                            // of the n, the first ones fail
	at       func(i int) time.Time          // default spread over one day
	role     string
}

// side builds a side from generated samples: ttfb from g.ttfb, the other
// phases small and alike on both sides.
func side(rng *rand.Rand, gens ...gen) *Side {
	s := NewSide()
	for _, g := range gens {
		for i := range g.n {
			at := t0.Add(time.Duration(i) * 24 * time.Hour / time.Duration(g.n))
			if g.at != nil {
				at = g.at(i)
			}
			ttfb := latency(rng, 30*msec)
			if g.ttfb != nil {
				ttfb = g.ttfb(rng)
			}
			tm := httptrace.Timings{DNS: time.Duration(rng.IntN(200)) * time.Microsecond, Connect: 2*msec + time.Duration(rng.IntN(500))*time.Microsecond,
				TLS: 5*msec + time.Duration(rng.IntN(1000))*time.Microsecond, TTFB: ttfb, Transfer: time.Duration(rng.IntN(300)) * time.Microsecond}
			tm.FirstByte = tm.DNS + tm.Connect + tm.TLS + tm.TTFB
			tm.Total = tm.FirstByte + tm.Transfer
			ps := &probe.Sample{Target: "shop", Role: g.role, Location: cmpOr(g.location, "lab"),
				Result: &httptrace.Result{Start: at, Timings: tm, Status: 200}}
			if i < g.failures {
				ps.Err = &httptrace.Error{Phase: httptrace.ErrTimeout, Message: "timeout"}
			}
			s.AddSample(ps)
		}
	}
	return s
}

func mustCompare(t *testing.T, a, b *Side, opts Options) *Result {
	t.Helper()
	res, err := Compare("a", a, "b", b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func row(t *testing.T, r *Result, phase, location string) Row {
	t.Helper()
	row, ok := r.Row(phase, location)
	if !ok {
		t.Fatalf("no %s row at %s", phase, location)
	}
	return row
}

func warningCodes(r *Result) []string {
	var out []string
	for _, w := range r.Warnings {
		out = append(out, w.Code)
	}
	return out
}

func shifted(d time.Duration) func(*rand.Rand) time.Duration {
	return func(rng *rand.Rand) time.Duration { return latency(rng, 30*msec) + d }
}

// TestShiftFound: b is a's distribution moved by exactly 20 ms. The
// verdict has the right sign, the interval covers 20 ms and the
// Hodges–Lehmann shift is close to it.
func TestShiftFound(t *testing.T) {
	const shift = 20 * msec
	for _, c := range []struct {
		name  string
		delta time.Duration
		want  Verdict
	}{{"b slower", shift, Slower}, {"b faster", -shift, Faster}} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 7))
			a := side(rng, gen{n: 200, ttfb: shifted(20 * msec)})
			b := side(rng, gen{n: 200, ttfb: shifted(20*msec + c.delta)})
			r := row(t, mustCompare(t, a, b, Options{}), httptrace.PhaseTTFB, AllLocations)
			t.Logf("%+v", r)
			if r.Verdict != c.want {
				t.Errorf("verdict %s, want %s (%s)", r.Verdict, c.want, r.Reason)
			}
			if !r.CIP50.Contains(c.delta) {
				t.Errorf("CI of the median difference %v does not cover the true %v", r.CIP50, c.delta)
			}
			if r.CIP50.High-r.CIP50.Low > 6*msec {
				t.Errorf("CI %v is wider than 6 ms for 200 samples a side", r.CIP50)
			}
			if d := (r.HodgesLehmann - c.delta).Abs(); d > 2*msec {
				t.Errorf("Hodges–Lehmann %v, want about %v", r.HodgesLehmann, c.delta)
			}
			if math.Signbit(r.CliffsDelta) != (c.delta < 0) || math.Abs(r.CliffsDelta) < 0.7 {
				t.Errorf("Cliff's delta %.2f: want a large effect with the sign of %v", r.CliffsDelta, c.delta)
			}
			if r.PValue >= 1e-6 {
				t.Errorf("p = %g for a 20 ms shift of 200 samples", r.PValue)
			}
			// A phase that did not change stays unchanged.
			if tls := row(t, mustCompare(t, a, b, Options{}), httptrace.PhaseTLS, AllLocations); tls.Verdict != NoChange {
				t.Errorf("tls verdict %s (%s)", tls.Verdict, tls.Reason)
			}
		})
	}
}

// TestIdenticalNoChange: a and b drawn from one distribution are found
// unchanged in at least 95% of seeded trials.
func TestIdenticalNoChange(t *testing.T) {
	const trials = 200
	opts := Options{}.withDefaults()
	noChange := 0
	var verdicts []string
	for trial := range trials {
		rng := rand.New(rand.NewPCG(uint64(trial), 42))
		av, bv := make([]time.Duration, 60), make([]time.Duration, 60)
		for i := range av {
			av[i], bv[i] = latency(rng, 30*msec), latency(rng, 30*msec)
		}
		opts.Seed = uint64(trial)
		r := compareDists(httptrace.PhaseTTFB, AllLocations, &Dist{Values: av}, &Dist{Values: bv}, opts)
		if r.Verdict == NoChange {
			noChange++
		} else {
			verdicts = append(verdicts, string(r.Verdict))
		}
	}
	t.Logf("no_change in %d of %d trials; others: %v", noChange, trials, verdicts)
	if noChange < trials*95/100 {
		t.Errorf("no_change in %d of %d trials, want ≥ 95%%", noChange, trials)
	}
}

func TestSmallSamplesInsufficient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := mustCompare(t, side(rng, gen{n: 12}), side(rng, gen{n: 40, ttfb: shifted(-25 * msec)}), Options{})
	for _, row := range r.Rows {
		if row.Verdict != Insufficient {
			t.Errorf("%s: verdict %s with 12 samples on a side", row.Phase, row.Verdict)
		}
		if !strings.Contains(row.Reason, "a has 12, b has 40") || !strings.Contains(row.Reason, "at least 20") {
			t.Errorf("reason %q does not say why", row.Reason)
		}
		if row.HasCI || row.HasTest {
			t.Errorf("%s: an interval or test on too few samples: %+v", row.Phase, row)
		}
	}
	// The medians are still shown: they are facts, not a verdict.
	if ttfb := row(t, r, httptrace.PhaseTTFB, AllLocations); ttfb.A.N != 12 || ttfb.DiffP50 >= 0 {
		t.Errorf("ttfb row %+v", ttfb)
	}
	if !slices.Contains(warningCodes(r), WarnFewSamples) {
		t.Errorf("warnings %v lack %s", warningCodes(r), WarnFewSamples)
	}
	// --min-samples lowers the bar.
	r = mustCompare(t, side(rng, gen{n: 12}), side(rng, gen{n: 40, ttfb: shifted(-25 * msec)}), Options{MinSamples: 10})
	if v := row(t, r, httptrace.PhaseTTFB, AllLocations).Verdict; v != Faster {
		t.Errorf("with --min-samples 10: %s", v)
	}
}

func TestFailureRateWarning(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := side(rng, gen{n: 100, failures: 1})
	b := side(rng, gen{n: 100, failures: 15, ttfb: shifted(-15 * msec)})
	r := mustCompare(t, a, b, Options{})
	if v := row(t, r, httptrace.PhaseTTFB, AllLocations).Verdict; v != Faster {
		t.Fatalf("ttfb verdict %s, want faster", v)
	}
	i := slices.IndexFunc(r.Warnings, func(w Warning) bool { return w.Code == WarnFailsMore })
	if i < 0 {
		t.Fatalf("no %s warning: %v", WarnFailsMore, r.Warnings)
	}
	msg := r.Warnings[i].Message
	t.Log(msg)
	for _, want := range []string{"15.0% (15 of 100) vs 1.0% (1 of 100)", "significant at", "ttfb"} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q lacks %q", msg, want)
		}
	}
	if f := r.Failures[0]; f.Location != AllLocations || f.A.Failed != 1 || f.B.Failed != 15 || f.PValue > 0.001 || f.B.ByPhase[httptrace.ErrTimeout] != 15 {
		t.Errorf("failures %+v", f)
	}
	// Only successful probes count in the latencies.
	if n := row(t, r, httptrace.PhaseTTFB, AllLocations).B.N; n != 85 {
		t.Errorf("b ttfb n = %d, want the 85 successful", n)
	}
	// Faster and failing less: no warning.
	r = mustCompare(t, b, a, Options{})
	if slices.Contains(warningCodes(r), WarnFailsMore) {
		t.Errorf("warning when b fails less: %v", r.Warnings)
	}
}

func TestTimeOfDayWarning(t *testing.T) {
	hours := func(from int) func(int) time.Time {
		return func(i int) time.Time { return t0.Add(time.Duration(from)*time.Hour + time.Duration(i)*6*time.Hour/100) }
	}
	rng := rand.New(rand.NewPCG(5, 6))
	r := mustCompare(t, side(rng, gen{n: 100, at: hours(0)}), side(rng, gen{n: 100, at: hours(12)}), Options{})
	i := slices.IndexFunc(r.Warnings, func(w Warning) bool { return w.Code == WarnTimeOfDay })
	if i < 0 {
		t.Fatalf("no time-of-day warning: %v", r.Warnings)
	}
	if msg := r.Warnings[i].Message; !strings.Contains(msg, "a: 00–05 h UTC; b: 12–17 h UTC") || !strings.Contains(msg, "distance 1.00") {
		t.Errorf("message %q", msg)
	}
	// Two whole days: no warning, and nothing else to warn about.
	r = mustCompare(t, side(rng, gen{n: 100}), side(rng, gen{n: 100, ttfb: shifted(-10 * msec)}), Options{})
	if len(r.Warnings) != 0 {
		t.Errorf("warnings for alike sides: %v", r.Warnings)
	}
}

func TestLocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	a := side(rng, gen{n: 150, location: "eu-west-1"}, gen{n: 60, location: "us-east-1"}, gen{n: 30, location: "ap-south-1"})
	b := side(rng, gen{n: 50, location: "eu-west-1", ttfb: shifted(-20 * msec)}, gen{n: 60, location: "us-east-1"})
	r := mustCompare(t, a, b, Options{})
	var locs []string
	for _, row := range r.Rows {
		if row.Phase == httptrace.PhaseTTFB {
			locs = append(locs, row.Location+":"+string(row.Verdict))
		}
	}
	want := []string{"all:faster", "ap-south-1:insufficient", "eu-west-1:faster", "us-east-1:no_change"}
	if !slices.Equal(locs, want) {
		t.Errorf("ttfb rows %v, want %v", locs, want)
	}
	if n := row(t, r, httptrace.PhaseTTFB, AllLocations).A.N; n != 240 {
		t.Errorf("all pools %d samples, want 240", n)
	}
	codes := warningCodes(r)
	for _, c := range []string{WarnUnequal, WarnOneSided, WarnFewSamples} {
		if !slices.Contains(codes, c) {
			t.Errorf("warnings %v lack %s", codes, c)
		}
	}
	for _, w := range r.Warnings {
		if w.Code == WarnUnequal && (w.Location != "eu-west-1" || !strings.Contains(w.Message, "a has 150 probes and b 50 (3.0×)")) {
			t.Errorf("unequal warning %+v", w)
		}
	}
	if len(r.Failures) != 4 {
		t.Errorf("failure rows %+v", r.Failures)
	}
}

func TestMixedSeriesWarning(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	a := side(rng, gen{n: 30, role: "origin"}, gen{n: 30, role: "cdn"})
	r := mustCompare(t, a, side(rng, gen{n: 30, role: "cdn"}), Options{})
	if codes := warningCodes(r); !slices.Equal(codes, []string{WarnMixed}) || !strings.Contains(r.Warnings[0].Message, "shop/cdn ×30, shop/origin ×30") {
		t.Errorf("warnings %v", r.Warnings)
	}
}

// TestDeterministic: the same data and seed give the same intervals, and
// a row's interval does not depend on which other rows exist.
func TestDeterministic(t *testing.T) {
	mk := func() (*Side, *Side) {
		rng := rand.New(rand.NewPCG(11, 12))
		return side(rng, gen{n: 80, location: "x"}, gen{n: 80, location: "y"}), side(rng, gen{n: 80, location: "x", ttfb: shifted(3 * msec)}, gen{n: 80, location: "y"})
	}
	a, b := mk()
	r1 := mustCompare(t, a, b, Options{Seed: 5})
	a, b = mk()
	r2 := mustCompare(t, a, b, Options{Seed: 5})
	if !slices.EqualFunc(r1.Rows, r2.Rows, func(x, y Row) bool { return x.CIP50 == y.CIP50 && x.CIP90 == y.CIP90 }) {
		t.Error("same seed, different intervals")
	}
	alone := compareDists(httptrace.PhaseTTFB, "x", a.Locations["x"].Phases[httptrace.PhaseTTFB], b.Locations["x"].Phases[httptrace.PhaseTTFB], Options{Seed: 5}.withDefaults())
	if x := row(t, r1, httptrace.PhaseTTFB, "x"); x.CIP50 != alone.CIP50 || x.CIP90 != alone.CIP90 {
		t.Errorf("row x: %v %v among others, %v %v alone", x.CIP50, x.CIP90, alone.CIP50, alone.CIP90)
	}
}

func TestHodgesLehmannBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for trial := range 50 {
		na, nb := 1+rng.IntN(30), 1+rng.IntN(30)
		a, b := make([]time.Duration, na), make([]time.Duration, nb)
		for i := range a {
			a[i] = time.Duration(rng.IntN(50)) * msec // ties on purpose
		}
		for i := range b {
			b[i] = time.Duration(rng.IntN(50))*msec + time.Duration(rng.IntN(3))*time.Microsecond
		}
		var diffs []time.Duration
		for _, x := range a {
			for _, y := range b {
				diffs = append(diffs, y-x)
			}
		}
		slices.Sort(diffs)
		n := len(diffs)
		want := diffs[n/2]
		if n%2 == 0 {
			want = (diffs[n/2-1] + diffs[n/2]) / 2
		}
		slices.Sort(a)
		slices.Sort(b)
		if got := hodgesLehmann(a, b); got != want {
			t.Fatalf("trial %d (%d×%d): %v, want %v", trial, na, nb, got, want)
		}
	}
}

func TestFisherExact(t *testing.T) {
	// R: fisher.test(matrix(c(1, 11, 9, 3), 2))$p.value = 0.002759456
	if p := fisherExact(1, 10, 11, 14); math.Abs(p-0.002759456) > 1e-6 {
		t.Errorf("p = %v, want 0.002759456", p)
	}
	// R: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value = 0.4857143
	if p := fisherExact(3, 4, 1, 4); math.Abs(p-0.4857143) > 1e-6 {
		t.Errorf("p = %v, want 0.4857143", p)
	}
	if p := fisherExact(0, 100, 0, 100); p != 1 {
		t.Errorf("no failures: p = %v", p)
	}
}

func TestRankTestConventions(t *testing.T) {
	a := []time.Duration{50 * msec, 51 * msec, 52 * msec, 53 * msec}
	b := []time.Duration{10 * msec, 11 * msec, 12 * msec}
	rt, err := mannWhitney(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if rt.CliffsDelta != -1 || rt.ProbBFaster != 1 {
		t.Errorf("b always faster: %+v", rt)
	}
	// All values equal: no difference rather than an error.
	same := []time.Duration{msec, msec, msec}
	if rt, err := mannWhitney(same, same); err != nil || rt.P != 1 || rt.CliffsDelta != 0 {
		t.Errorf("equal: %+v %v", rt, err)
	}
}

// TestHistogramSource: a side known only by buckets gets interpolated
// percentiles, an interval from the bucket bounds, no rank test, and the
// approximate mark.
func TestHistogramSource(t *testing.T) {
	les := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.Inf(1)}
	hist := func(counts ...float64) *Side {
		h := &Histogram{HasSum: true}
		for i, c := range counts {
			h.Buckets = append(h.Buckets, Bucket{Le: les[i], Count: c})
		}
		s := NewSide()
		l := s.Location("eu-west-1")
		l.Probes = int(h.Count())
		l.Phases[httptrace.PhaseTTFB] = &Dist{Hist: h}
		for i := range 24 {
			l.Hours[i] = h.Count() / 24
		}
		return s
	}
	origin := hist(0, 0, 0, 10, 80, 10, 0) // median in (50, 100] ms
	cdn := hist(5, 60, 35, 0, 0, 0, 0)     // median in (5, 10] ms
	r := mustCompare(t, origin, cdn, Options{})
	ttfb := row(t, r, httptrace.PhaseTTFB, AllLocations)
	t.Logf("%+v", ttfb)
	if ttfb.Verdict != Faster || !ttfb.Approximate || ttfb.HasTest {
		t.Errorf("row %+v", ttfb)
	}
	// Rank 50 of 100 is 40/80 into (50, 100] ms: 75 ms.
	if ttfb.A.P50 != 75*msec || ttfb.CIP50 != (Interval{5*msec - 100*msec, 10*msec - 50*msec}) {
		t.Errorf("a p50 %v, CI %v", ttfb.A.P50, ttfb.CIP50)
	}
	if !slices.Contains(warningCodes(r), WarnApproximate) {
		t.Errorf("warnings %v", r.Warnings)
	}
	// Overlapping buckets: nothing can be told.
	r = mustCompare(t, hist(0, 0, 10, 50, 40, 0, 0), hist(0, 0, 5, 60, 35, 0, 0), Options{})
	if v := row(t, r, httptrace.PhaseTTFB, AllLocations).Verdict; v != NoChange {
		t.Errorf("overlapping: %s", v)
	}
	// A +Inf bucket: its upper end is unbounded, null in JSON.
	r = mustCompare(t, hist(0, 0, 0, 0, 0, 0, 30), hist(30, 0, 0, 0, 0, 0, 0), Options{})
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var out struct{ Rows []map[string]any }
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.Rows[0]; got["ci_low_seconds"] != nil || got["p_value"] != nil || got["approximate"] != true {
		t.Errorf("json row %v", got)
	}
}

// TestBootstrapMatchesResampling holds the order-statistic draws against
// the plain bootstrap: resample n values with replacement, sort, take the
// percentile. The two distributions must agree.
func TestBootstrapMatchesResampling(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	sample := make([]time.Duration, 37)
	for i := range sample {
		sample[i] = latency(rng, 0)
	}
	slices.Sort(sample)
	const draws = 20000
	for _, p := range []float64{50, 90} {
		os := newOrderStat(sample, p)
		fast, plain := make([]time.Duration, draws), make([]time.Duration, draws)
		buf := make([]time.Duration, len(sample))
		for i := range draws {
			fast[i] = os.draw(rng)
			for j := range buf {
				buf[j] = sample[rng.IntN(len(sample))]
			}
			slices.Sort(buf)
			plain[i] = report.Percentile(buf, p)
		}
		slices.Sort(fast)
		slices.Sort(plain)
		// The quantiles of the two bootstrap distributions are order
		// statistics of the sample: equal, or a neighbour apart by chance.
		for _, q := range []float64{2.5, 10, 25, 50, 75, 90, 97.5} {
			f, pl := report.Percentile(fast, q), report.Percentile(plain, q)
			fi, _ := slices.BinarySearch(sample, f)
			pi, _ := slices.BinarySearch(sample, pl)
			if d := fi - pi; d < -1 || d > 1 {
				t.Errorf("p%v: bootstrap quantile %v is sample[%d] drawn directly, sample[%d] by resampling", p, q, fi, pi)
			}
		}
	}
	for n := 1; n <= 300; n++ {
		for _, p := range []float64{50, 90, 99} {
			s := make([]time.Duration, n)
			for i := range s {
				s[i] = time.Duration(i)
			}
			if k := percentileRank(n, p); s[k-1] != report.Percentile(s, p) {
				t.Fatalf("n=%d p%v: rank %d", n, p, k)
			}
		}
	}
}

func BenchmarkBootstrap(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{100, 3000, 100000} {
		x, y := make([]time.Duration, n), make([]time.Duration, n)
		for i := range x {
			x[i], y[i] = latency(rng, 0), latency(rng, 0)
		}
		slices.Sort(x)
		slices.Sort(y)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				bootstrap(x, y, DefaultResamples, 0.95, rng)
			}
		})
	}
}
