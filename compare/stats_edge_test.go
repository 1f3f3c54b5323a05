package compare

import (
	"testing"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// TestNeighbouringBuckets: medians in adjacent buckets, (10,25] ms against
// (25,50] ms, differ for sure although the interval of their difference
// ends at 0, because a bucket's lower bound is exclusive. Medians in the
// same bucket tell nothing.
func TestNeighbouringBuckets(t *testing.T) {
	hist := func(counts ...float64) *Dist {
		les := []float64{.01, .025, .05, .1}
		h := &Histogram{}
		for i, c := range counts {
			h.Buckets = append(h.Buckets, Bucket{Le: les[i], Count: c})
		}
		return &Dist{Hist: h}
	}
	opts := Options{}.withDefaults()
	slow := hist(0, 0, 100)  // median in (25, 50] ms
	fast := hist(0, 100)     // median in (10, 25] ms
	alsoFast := hist(0, 100) // the same bucket
	if r := compareDists(httptrace.PhaseTTFB, AllLocations, slow, fast, opts); r.Verdict != Faster {
		t.Errorf("neighbouring buckets: %s (%s), CI %v", r.Verdict, r.Reason, r.CIP50)
	}
	if r := compareDists(httptrace.PhaseTTFB, AllLocations, fast, slow, opts); r.Verdict != Slower {
		t.Errorf("neighbouring buckets, reversed: %s (%s)", r.Verdict, r.Reason)
	}
	if r := compareDists(httptrace.PhaseTTFB, AllLocations, fast, alsoFast, opts); r.Verdict != NoChange {
		t.Errorf("same bucket: %s (%s)", r.Verdict, r.Reason)
	}
	first := hist(100)     // median in [0, 10] ms: 0 is possible there
	second := hist(0, 100) // median in (10, 25] ms
	if r := compareDists(httptrace.PhaseTTFB, AllLocations, second, first, opts); r.Verdict != Faster {
		t.Errorf("first bucket below the second: %s (%s), CI %v", r.Verdict, r.Reason, r.CIP50)
	}
}
