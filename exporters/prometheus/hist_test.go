package promexp

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// clientHistogram is the histogram this package used to keep per series,
// the reference hist must match.
func clientHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                            "reference",
		Help:                            "client_golang's histogram at the options this package had.",
		Buckets:                         Buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
		NativeHistogramMinResetDuration: nativeMinReset,
	})
}

// written is h as scraped, without the created timestamp (a clock reading).
func written(t *testing.T, h *hist) *dto.Histogram {
	t.Helper()
	var m histMetric
	bounds := bucketBounds
	h.fill(&m, &bounds)
	out := proto.Clone(&m.h).(*dto.Histogram)
	out.CreatedTimestamp = nil
	return out
}

func writtenRef(t *testing.T, ref prometheus.Histogram) *dto.Histogram {
	t.Helper()
	var m dto.Metric
	if err := ref.Write(&m); err != nil {
		t.Fatal(err)
	}
	m.Histogram.CreatedTimestamp = nil
	return m.Histogram
}

// compareWithClient feeds the same values to hist and to client_golang's
// histogram and compares what a scrape of each reports, every few
// observations.
func compareWithClient(t *testing.T, values []float64) *hist {
	t.Helper()
	ref := clientHistogram()
	h := newHist(time.Now())
	bounds := bucketBounds
	for i, v := range values {
		ref.Observe(v)
		h.observe(v, &bounds, time.Now)
		if i%97 == 0 || i == len(values)-1 {
			want, got := writtenRef(t, ref), written(t, h)
			if !proto.Equal(want, got) {
				t.Fatalf("after %d observations (last %g):\nclient_golang: %v\nhist:          %v", i+1, v, want, got)
			}
		}
	}
	return h
}

func TestHistMatchesClientGolang(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	t.Run("latencies", func(t *testing.T) {
		var vs []float64
		for range 5000 {
			vs = append(vs, 0.05*math.Exp(0.5*rng.NormFloat64()))
		}
		h := compareWithClient(t, vs)
		if h.schema != nativeSchema {
			t.Errorf("schema %d, want %d: the limit should not have been reached", h.schema, nativeSchema)
		}
	})
	t.Run("boundaries", func(t *testing.T) {
		// Classic bounds and native bucket bounds (2^(k/8)), exactly and one
		// ulp either side: each must land where client_golang puts it.
		var vs []float64
		for _, b := range bucketBounds {
			vs = append(vs, math.Nextafter(b, 0), b, math.Nextafter(b, 100))
		}
		for k := -100; k <= 40; k++ {
			b := math.Ldexp(nativeBounds[k&7], k>>3+1) // as client_golang's getLe
			vs = append(vs, math.Nextafter(b, 0), b, math.Nextafter(b, 100))
		}
		// And the extremes: the zero bucket (to 2^-128) and +Inf.
		vs = append(vs, 0, 1e-9, 0x1p-128, math.Nextafter(0x1p-128, 1), 1e-300, math.SmallestNonzeroFloat64,
			1e300, math.MaxFloat64, math.Inf(1), 3600)
		compareWithClient(t, vs)
	})
	t.Run("beyond the bucket limit", func(t *testing.T) {
		// Durations from a nanosecond to hours: more than 160 buckets, so the
		// resolution is halved, again and again, and a reset is scheduled.
		var vs []float64
		for range 20000 {
			vs = append(vs, math.Exp(rng.Float64()*30-20))
		}
		h := compareWithClient(t, vs)
		if h.schema >= nativeSchema || !h.resetDue {
			t.Errorf("schema %d, reset due %v: the limit was not reached", h.schema, h.resetDue)
		}
	})
	t.Run("sparse beyond the limit", func(t *testing.T) {
		// Buckets two apart do not merge when halved, so the count stays over
		// the limit and the next observations halve again until it fits.
		var vs []float64
		for k := range nativeMaxBuckets + 30 {
			vs = append(vs, math.Ldexp(0.6, 2*k-150))
		}
		for range 20 {
			vs = append(vs, 0.05)
		}
		if h := compareWithClient(t, vs); h.schema > 0 {
			t.Errorf("schema %d: want several halvings", h.schema)
		}
	})
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// overflow observes values with more than 160 distinct buckets.
func overflow(h *hist, now func() time.Time) {
	bounds := bucketBounds
	for k := range nativeMaxBuckets + 1 {
		h.observe(math.Ldexp(1, k-100), &bounds, now)
	}
}

// TestHistResetsAtMostHourly: hitting the bucket limit an hour or more
// after the last reset resets the histogram, keeping the observation that
// hit it; sooner, it halves the resolution and resets when the hour is up.
func TestHistResetsAtMostHourly(t *testing.T) {
	bounds := bucketBounds
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("late", func(t *testing.T) {
		clock := &fakeClock{start}
		h := newHist(clock.now())
		for k := range nativeMaxBuckets {
			h.observe(math.Ldexp(1, k-100), &bounds, clock.now)
		}
		clock.t = start.Add(nativeMinReset)
		h.observe(0x1p70, &bounds, clock.now) // the 161st bucket
		if h.count != 1 || h.sum != 0x1p70 || len(h.native) != 1 || h.schema != nativeSchema || h.resetDue {
			t.Errorf("after the limit, an hour on: count %d sum %g buckets %d schema %d due %v; want only the last observation",
				h.count, h.sum, len(h.native), h.schema, h.resetDue)
		}
		if h.created != clock.t.UnixNano() {
			t.Errorf("created %d, want the reset's time %d", h.created, clock.t.UnixNano())
		}
	})

	t.Run("early", func(t *testing.T) {
		clock := &fakeClock{start}
		h := newHist(clock.now())
		clock.t = start.Add(10 * time.Minute)
		overflow(h, clock.now)
		if h.schema != nativeSchema-1 || !h.resetDue || h.count != nativeMaxBuckets+1 {
			t.Fatalf("schema %d due %v count %d: want halved, a reset due, nothing lost", h.schema, h.resetDue, h.count)
		}
		// A scrape just before the hour sees it all, one at the hour a reset.
		clock.t = start.Add(nativeMinReset - time.Nanosecond)
		if got := written(t, h); got.GetSampleCount() != nativeMaxBuckets+1 {
			t.Errorf("before the hour: %d observations", got.GetSampleCount())
		}
		c := &collector{bounds: bucketBounds}
		clock.t = start.Add(nativeMinReset + time.Minute)
		m := c.histogram(fPhase, h, clock.now())
		if m.h.GetSampleCount() != 0 || m.h.GetSchema() != nativeSchema || len(m.h.PositiveSpan) != 0 {
			t.Errorf("after the hour: %v, want a reset histogram", &m.h)
		}
		// The reset happened when it was due, as client_golang's timer does.
		if want := start.Add(nativeMinReset); !m.h.CreatedTimestamp.AsTime().Equal(want) {
			t.Errorf("created %v, want %v", m.h.CreatedTimestamp.AsTime(), want)
		}
	})

	t.Run("due reset on observation", func(t *testing.T) {
		clock := &fakeClock{start}
		h := newHist(clock.now())
		overflow(h, clock.now)
		clock.t = start.Add(2 * nativeMinReset)
		h.observe(0.5, &bounds, clock.now)
		if h.count != 1 || h.schema != nativeSchema || h.resetDue || h.created != start.Add(nativeMinReset).UnixNano() {
			t.Errorf("count %d schema %d due %v created %d: want reset at the hour, then one observation",
				h.count, h.schema, h.resetDue, h.created)
		}
	})
}

// TestHistCountBound: the 32-bit counts never wrap; a histogram full to
// the bound resets, which Prometheus reads as a counter reset.
func TestHistCountBound(t *testing.T) {
	bounds := bucketBounds
	h := newHist(time.Unix(0, 0))
	h.observe(0.05, &bounds, time.Now)
	h.count = maxCount
	h.observe(0.02, &bounds, time.Now)
	if h.count != 1 || h.sum != 0.02 || len(h.native) != 1 {
		t.Errorf("count %d sum %g buckets %d after the bound: want a reset, then one observation", h.count, h.sum, len(h.native))
	}
}

func TestReduceKey(t *testing.T) {
	// Halving step by step (ceil(k/2), as client_golang merges buckets)
	// equals reducing at once.
	for k := int32(-2000); k <= 2000; k++ {
		step := k
		for s := int8(nativeSchema); s > nativeMinSchema; s-- {
			if step > 0 {
				step++
			}
			step /= 2
			if got := reduceKey(k, s-1); got != step {
				t.Fatalf("reduceKey(%d, %d) = %d, want %d", k, s-1, got, step)
			}
		}
	}
}
