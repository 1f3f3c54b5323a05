package compare

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aclements/go-moremath/stats"

	"github.com/edgeprobe/edgeprobe/report"
)

// Summary describes one side of a row: successful probes only.
// Percentiles are report.Percentile's nearest rank (the same numbers
// `probe check` prints); from a histogram they are interpolated within the
// bucket that holds the rank.
type Summary struct {
	N                  int
	P50, P90, P99      time.Duration
	Mean               time.Duration
	HasMean            bool // false for a histogram without a sum
	p50Range, p90Range Interval
}

// Interval is a closed range of durations, e.g. a confidence interval.
type Interval struct {
	Low, High time.Duration
}

// Contains reports whether d is in the interval.
func (i Interval) Contains(d time.Duration) bool { return i.Low <= d && d <= i.High }

// summarize describes values (sorted ascending).
func summarize(sorted []time.Duration) Summary {
	st := report.NewStats(sorted)
	s := Summary{N: st.N, P50: st.P50, P90: st.P90, P99: st.P99}
	if st.N > 0 {
		var sum float64
		for _, v := range sorted {
			sum += float64(v)
		}
		s.Mean, s.HasMean = time.Duration(math.Round(sum/float64(st.N))), true
	}
	s.p50Range, s.p90Range = Interval{s.P50, s.P50}, Interval{s.P90, s.P90}
	return s
}

// summarizeHist describes a histogram. Each percentile is estimated by
// linear interpolation within its bucket, and the bucket's bounds are kept
// as the range the true value must lie in.
func summarizeHist(h *Histogram) Summary {
	s := Summary{N: int(math.Round(h.Count()))}
	if h.Count() <= 0 {
		return s
	}
	s.P50, s.p50Range = histPercentile(h, 50)
	s.P90, s.p90Range = histPercentile(h, 90)
	s.P99, _ = histPercentile(h, 99)
	if h.HasSum {
		s.Mean, s.HasMean = seconds(h.Sum/h.Count()), true
	}
	return s
}

// histPercentile finds the bucket holding the nearest rank ⌈p/100·n⌉.
// Above the last finite bound (a +Inf bucket) the estimate is that bound,
// as Prometheus' histogram_quantile does.
func histPercentile(h *Histogram, p float64) (time.Duration, Interval) {
	total := h.Count()
	rank := math.Max(math.Ceil(p/100*total-1e-9), math.Min(1, total))
	cum, lower := 0.0, 0.0
	for _, b := range h.Buckets {
		if b.Count > 0 && cum+b.Count >= rank {
			if math.IsInf(b.Le, 1) {
				return seconds(lower), Interval{seconds(lower), unbounded}
			}
			frac := (rank - cum) / b.Count
			return seconds(lower + (b.Le-lower)*frac), Interval{seconds(lower), seconds(b.Le)}
		}
		cum += b.Count
		if !math.IsInf(b.Le, 1) {
			lower = b.Le
		}
	}
	return seconds(lower), Interval{seconds(lower), seconds(lower)}
}

// unbounded is the upper end of a range with no upper bound (a +Inf bucket).
const unbounded = time.Duration(math.MaxInt64)

// rangeDiff is the range b − a can take when a and b lie in their ranges.
func rangeDiff(a, b Interval) Interval {
	out := Interval{Low: -unbounded, High: unbounded}
	if a.High != unbounded {
		out.Low = b.Low - a.High
	}
	if b.High != unbounded {
		out.High = b.High - a.Low
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// rankTest is the Mann–Whitney U test of a against b (two-sided) with the
// effect sizes that come from U.
type rankTest struct {
	P float64
	// CliffsDelta is P(b > a) − P(b < a): −1 when every b probe is faster
	// than every a probe, 0 for no tendency, +1 when every one is slower.
	CliffsDelta float64
	// ProbBFaster is P(b < a) + ½·P(b = a), the probability of superiority
	// of b (common-language effect size).
	ProbBFaster float64
}

// mannWhitney runs the library's U test. Its U counts the pairs where the
// first sample's value is greater (ties ½): the pairs where b is faster.
func mannWhitney(a, b []time.Duration) (rankTest, error) {
	n := float64(len(a)) * float64(len(b))
	res, err := stats.MannWhitneyUTest(toSeconds(a), toSeconds(b), stats.LocationDiffers)
	if errors.Is(err, stats.ErrSamplesEqual) {
		// Every value equal (e.g. dns 0 for an IP literal): no difference.
		return rankTest{P: 1, CliffsDelta: 0, ProbBFaster: 0.5}, nil
	}
	if err != nil {
		return rankTest{}, err
	}
	return rankTest{P: res.P, CliffsDelta: 1 - 2*res.U/n, ProbBFaster: res.U / n}, nil
}

func toSeconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// hodgesLehmann is the median of all pairwise differences b_j − a_i, the
// shift estimate that goes with the U test. With n_a·n_b pairs too many to
// list, it selects the k-th difference by bisecting on its value (durations
// are integers, so the search is exact) and counting the pairs at or below
// a value in one merge-like pass: O((n_a+n_b)·64).
func hodgesLehmann(a, b []time.Duration) time.Duration {
	na, nb := len(a), len(b)
	if na == 0 || nb == 0 {
		return 0
	}
	atMost := func(d time.Duration) int64 {
		// Pairs with b_j − a_i ≤ d, i.e. a_i ≥ b_j − d; the threshold
		// grows with j, so i only moves forward.
		var count int64
		i := 0
		for _, bj := range b {
			for i < na && a[i] < bj-d {
				i++
			}
			count += int64(na - i)
		}
		return count
	}
	kth := func(k int64) time.Duration {
		lo, hi := b[0]-a[na-1], b[nb-1]-a[0]
		for lo < hi {
			mid := lo + (hi-lo)/2
			if atMost(mid) >= k {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo
	}
	total := int64(na) * int64(nb)
	if total%2 == 1 {
		return kth((total + 1) / 2)
	}
	return (kth(total/2) + kth(total/2+1)) / 2
}

// bootstrap returns the percentile-method confidence intervals (level)
// of the differences b − a of medians and of p90s, over resamples drawn
// with replacement from each side.
func bootstrap(a, b []time.Duration, resamples int, level float64, rng *rand.Rand) (p50, p90 Interval) {
	a50, a90, b50, b90 := newOrderStat(a, 50), newOrderStat(a, 90), newOrderStat(b, 50), newOrderStat(b, 90)
	d50 := make([]time.Duration, resamples)
	d90 := make([]time.Duration, resamples)
	for i := range resamples {
		d50[i] = b50.draw(rng) - a50.draw(rng)
		d90[i] = b90.draw(rng) - a90.draw(rng)
	}
	slices.Sort(d50)
	slices.Sort(d90)
	lo := 100 * (1 - level) / 2
	return Interval{report.Percentile(d50, lo), report.Percentile(d50, 100-lo)},
		Interval{report.Percentile(d90, lo), report.Percentile(d90, 100-lo)}
}

// orderStat draws one percentile of a bootstrap resample of a sorted
// sample without building the resample. The percentile is the resample's
// k-th smallest value; the resample's values are sorted[I_1…I_n] for n
// uniform indices, so it is sorted[I_(k)], and I_(k) ≤ j exactly when at
// least k of the n indices are ≤ j: P(I_(k) ≤ j) = P(Binomial(n, (j+1)/n)
// ≥ k). Drawing the index from that distribution (inverse CDF, binary
// search) is the same bootstrap as resampling and sorting, at O(log n) a
// resample instead of O(n), which matters for rows pooling many probes.
type orderStat struct {
	sorted []time.Duration
	cdf    []float64 // cdf[j] = P(I_(k) ≤ j)
}

func newOrderStat(sorted []time.Duration, p float64) *orderStat {
	n := len(sorted)
	k := percentileRank(n, p)
	cdf := make([]float64, n)
	prev := 0.0
	for j := range n {
		c := 1 - stats.BinomialDist{N: n, P: float64(j+1) / float64(n)}.CDF(float64(k-1))
		prev = math.Max(prev, c) // monotone despite float error
		cdf[j] = prev
	}
	cdf[n-1] = 1
	return &orderStat{sorted: sorted, cdf: cdf}
}

func (o *orderStat) draw(rng *rand.Rand) time.Duration {
	u := rng.Float64()
	j, _ := slices.BinarySearchFunc(o.cdf, u, func(c, u float64) int {
		if c > u {
			return 1
		}
		return -1
	})
	return o.sorted[min(j, len(o.sorted)-1)]
}

// percentileRank is the 1-based rank report.Percentile picks for the p-th
// percentile of n values, so the bootstrap resamples the very statistic
// the rows report.
func percentileRank(n int, p float64) int {
	ranks := make([]time.Duration, n)
	for i := range ranks {
		ranks[i] = time.Duration(i + 1)
	}
	return int(report.Percentile(ranks, p))
}

// fisherExact is the two-sided p-value of Fisher's exact test on the 2×2
// table (failed, succeeded) × (a, b): under the null hypothesis of equal
// failure rates, a's failures follow the hypergeometric distribution given
// the margins; the p-value sums the tables no more likely than the one
// observed (as R's fisher.test does).
func fisherExact(aFailed, aN, bFailed, bN int) float64 {
	if aN == 0 || bN == 0 || aFailed+bFailed == 0 || aFailed+bFailed == aN+bN {
		return 1
	}
	d := stats.HypergeometicDist{N: aN + bN, K: aFailed + bFailed, Draws: aN}
	lo, hi := d.Bounds()
	observed := d.PMF(float64(aFailed)) * (1 + 1e-7) // relative tolerance for float error
	p := 0.0
	for k := lo; k <= hi; k++ {
		if pk := d.PMF(k); pk <= observed {
			p += pk
		}
	}
	return math.Min(p, 1)
}

// totalVariation is the total variation distance between two hour-of-day
// histograms, normalized: 0 for the same mix of hours, 1 for disjoint hours.
func totalVariation(a, b [24]float64) float64 {
	var sa, sb float64
	for h := range 24 {
		sa += a[h]
		sb += b[h]
	}
	if sa == 0 || sb == 0 {
		return 0
	}
	tv := 0.0
	for h := range 24 {
		tv += math.Abs(a[h]/sa - b[h]/sb)
	}
	return tv / 2
}
