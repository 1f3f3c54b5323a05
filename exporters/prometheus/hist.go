package promexp

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// hist is one histogram series, classic and native, in 128 bytes plus 8
// per populated native bucket: client_golang's histogram child costs
// about 2 KiB, and a series has up to 15 of them. Its owner's mutex guards
// it. It reproduces client_golang's histogram (at the options this package
// used: factor 1.1, at most 160 native buckets, at most one reset an hour)
// as scraped: the same classic and native buckets, the same schema
// reductions and resets, the same created timestamp.
//
// It observes values ≥ 0 (durations; callers skip the rest), so the
// native negative buckets stay empty, as they would.
type hist struct {
	// Classic bucket counts, not cumulative; the +Inf bucket is count less
	// their sum. 32 bits each, see maxCount.
	classic [numBuckets]uint32
	count   uint32
	zero    uint32 // observations in the native zero bucket, [0, nativeZeroThreshold]
	schema  int8   // of native; nativeSchema unless the bucket limit lowered it
	// resetDue: the bucket limit was hit less than nativeMinReset after
	// created, so the histogram resets at created+nativeMinReset, as
	// client_golang's timer would (done lazily: at the next observation or
	// scrape after that time, which nobody can tell apart).
	resetDue bool
	sum      float64
	created  int64    // unix ns of creation or of the last reset
	native   []bucket // populated native buckets, by key
}

// bucket is a populated native bucket: its index at the histogram's schema
// (index 0 is (0.5, 1]) and its count.
type bucket struct {
	key int32
	n   uint32
}

// maxCount bounds the 32-bit counts: a histogram that has seen this many
// observations resets before the next one, a counter reset Prometheus
// handles, rather than wrap. At one probe a second that is 136 years.
const maxCount = math.MaxUint32

// Native histogram constants of client_golang for factor 1.1: schema 3
// (the largest with buckets no wider than the factor: 2^(1/8) ≈ 1.09), the
// default zero threshold 2^-128, and the lowest schema a reduction may
// reach.
const (
	nativeSchema        = 3
	nativeZeroThreshold = prometheus.DefNativeHistogramZeroThreshold
	nativeMinSchema     = -4
)

// nativeBounds are the bucket boundaries within one power of two at schema
// 3, as client_golang's table has them: a value exactly on a boundary must
// land in the same bucket.
var nativeBounds = [1 << nativeSchema]float64{
	0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
	0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
}

// nativeKey is the bucket index of v > 0 at schema 3, as client_golang
// computes it (+Inf has a bucket of its own above math.MaxFloat64's).
func nativeKey(v float64) int32 {
	if math.IsInf(v, 1) {
		return nativeKey(math.MaxFloat64) + 1
	}
	frac, exp := math.Frexp(v)
	i := 0
	for i < len(nativeBounds) && nativeBounds[i] < frac {
		i++
	}
	return int32(i + (exp-1)*len(nativeBounds))
}

// reduceKey maps a schema-3 index to schema s ≤ 3. Each step halves the
// resolution, bucket k joining ceil(k/2) as in client_golang's
// doubleBucketWidth; d steps at once are ceil(k/2^d).
func reduceKey(k int32, s int8) int32 {
	return -((-k) >> (nativeSchema - s))
}

func newHist(now time.Time) *hist {
	return &hist{schema: nativeSchema, created: now.UnixNano()}
}

// observe records v > 0. now is called only when the bucket limit or a due
// reset needs the time.
func (h *hist) observe(v float64, bounds *[numBuckets]float64, now func() time.Time) {
	if h.resetDue {
		h.maybeDueReset(now())
	}
	if h.count == maxCount {
		h.reset(now().UnixNano())
	}
	h.add(v, bounds)
	// Checked after every observation, not only one that populated a new
	// bucket: a halving need not bring the count under the limit.
	if len(h.native) > nativeMaxBuckets {
		h.limit(v, bounds, now())
	}
}

// add counts v.
func (h *hist) add(v float64, bounds *[numBuckets]float64) {
	for i := range bounds {
		if v <= bounds[i] {
			h.classic[i]++
			break
		}
	}
	h.count++
	h.sum += v
	if v <= nativeZeroThreshold {
		h.zero++
		return
	}
	k := reduceKey(nativeKey(v), h.schema)
	lo, hi := 0, len(h.native)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.native[m].key < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(h.native) && h.native[lo].key == k {
		h.native[lo].n++
		return
	}
	h.native = append(h.native, bucket{})
	copy(h.native[lo+1:], h.native[lo:])
	h.native[lo] = bucket{key: k, n: 1}
}

// limit brings the native buckets back under nativeMaxBuckets the way
// client_golang does: reset the histogram (keeping the observation just
// made) if the last reset is at least nativeMinReset ago and none is due;
// otherwise schedule one for then and halve the resolution. (Widening the
// zero bucket comes between these in client_golang, but with its maximum
// zero threshold left at 0, as here, it never happens.)
func (h *hist) limit(v float64, bounds *[numBuckets]float64, now time.Time) {
	t := now.UnixNano()
	if !h.resetDue && t-h.created >= int64(nativeMinReset) {
		h.reset(t)
		h.add(v, bounds)
		return
	}
	h.resetDue = true
	h.halve()
}

// halve lowers the schema by one, merging neighbouring buckets.
func (h *hist) halve() {
	if h.schema == nativeMinSchema {
		return
	}
	h.schema--
	out := h.native[:0]
	for _, b := range h.native {
		// ceil(k/2); the mapping keeps the order, so equal keys are adjacent.
		b.key = -((-b.key) >> 1)
		if len(out) > 0 && out[len(out)-1].key == b.key {
			out[len(out)-1].n += b.n
			continue
		}
		out = append(out, b)
	}
	h.native = out
	if cap(h.native) > 2*len(h.native) {
		h.native = append([]bucket(nil), h.native...)
	}
}

// maybeDueReset does the reset client_golang's timer would have done by
// now: at created+nativeMinReset, which becomes the new created time.
func (h *hist) maybeDueReset(now time.Time) {
	if due := h.created + int64(nativeMinReset); h.resetDue && now.UnixNano() >= due {
		h.reset(due)
	}
}

func (h *hist) reset(at int64) {
	h.classic = [numBuckets]uint32{}
	h.count, h.zero, h.sum = 0, 0, 0
	h.schema, h.resetDue = nativeSchema, false
	h.native = h.native[:0]
	h.created = at
}

// Inline room for the native spans and deltas of a typical histogram, so
// that a scrape allocates one object per histogram.
const (
	inlineSpans  = 4
	inlineDeltas = 32
)

// histMetric is a histogram as one scrape reports it: the dto with
// everything it points to, in one allocation.
type histMetric struct {
	metric
	h            dto.Histogram
	count, zeroN uint64
	sum, zeroT   float64
	schema       int32
	created      timestamppb.Timestamp
	bucketPtrs   [numBuckets]*dto.Bucket
	buckets      [numBuckets]dto.Bucket
	cumulative   [numBuckets]uint64
	spanPtrs     [inlineSpans]*dto.BucketSpan
	spans        [inlineSpans]dto.BucketSpan
	offsets      [inlineSpans]int32
	lengths      [inlineSpans]uint32
	deltas       [inlineDeltas]int64
}

// fill writes h into m as client_golang's histogram Write does. bounds must
// outlive the scrape (the buckets point into it).
func (h *hist) fill(m *histMetric, bounds *[numBuckets]float64) {
	var cum uint64
	for i := range bounds {
		cum += uint64(h.classic[i])
		m.cumulative[i] = cum
		m.buckets[i].CumulativeCount = &m.cumulative[i]
		m.buckets[i].UpperBound = &bounds[i]
		m.bucketPtrs[i] = &m.buckets[i]
	}
	m.count, m.sum = uint64(h.count), h.sum
	m.zeroT, m.zeroN, m.schema = nativeZeroThreshold, uint64(h.zero), int32(h.schema)
	m.created.Seconds, m.created.Nanos = h.created/1e9, int32(h.created%1e9)
	m.h.Bucket = m.bucketPtrs[:]
	m.h.SampleCount, m.h.SampleSum = &m.count, &m.sum
	m.h.Schema, m.h.ZeroThreshold, m.h.ZeroCount = &m.schema, &m.zeroT, &m.zeroN
	m.h.CreatedTimestamp = &m.created
	m.h.PositiveSpan, m.h.PositiveDelta = h.spans(m)
}

// spans encodes the native buckets as client_golang's makeBuckets does: a
// gap of one or two empty buckets is filled with zeros, a longer one starts
// a new span.
func (h *hist) spans(m *histMetric) ([]*dto.BucketSpan, []int64) {
	if len(h.native) == 0 {
		return nil, nil
	}
	nSpans, nDeltas := 0, 0
	for i, b := range h.native {
		if i == 0 || b.key-h.native[i-1].key > 3 {
			nSpans++
			nDeltas++
		} else {
			nDeltas += int(b.key - h.native[i-1].key)
		}
	}
	var (
		spanPtrs []*dto.BucketSpan
		spans    []dto.BucketSpan
		offsets  []int32
		lengths  []uint32
		deltas   []int64
	)
	if nSpans <= inlineSpans {
		spanPtrs, spans, offsets, lengths = m.spanPtrs[:nSpans], m.spans[:nSpans], m.offsets[:nSpans], m.lengths[:nSpans]
	} else {
		spanPtrs, spans = make([]*dto.BucketSpan, nSpans), make([]dto.BucketSpan, nSpans)
		offsets, lengths = make([]int32, nSpans), make([]uint32, nSpans)
	}
	if nDeltas <= inlineDeltas {
		deltas = m.deltas[:0:nDeltas]
	} else {
		deltas = make([]int64, 0, nDeltas)
	}
	var prev int64
	s := -1
	next := int32(0)
	for i, b := range h.native {
		gap := b.key - next
		if i == 0 || gap > 2 {
			s++
			offsets[s] = gap
			spans[s].Offset, spans[s].Length = &offsets[s], &lengths[s]
			spanPtrs[s] = &spans[s]
		} else {
			for range gap {
				lengths[s]++
				deltas = append(deltas, -prev)
				prev = 0
			}
		}
		lengths[s]++
		deltas = append(deltas, int64(b.n)-prev)
		prev = int64(b.n)
		next = b.key + 1
	}
	return spanPtrs, deltas
}
