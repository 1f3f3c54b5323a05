package remotewrite

import (
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protowire"
)

// This file turns gathered metric families into Prometheus remote write 1.0
// requests (prometheus.WriteRequest of prometheus/prompb/remote.proto and
// types.proto), hand-encoded with protowire: the prompb package lives in the
// prometheus/prometheus module, far too heavy to import for four messages.
//
//	WriteRequest   { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//	TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2; }
//	Label          { string name = 1; string value = 2; }
//	Sample         { double value = 1; int64 timestamp = 2; }
//	MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4; string unit = 5; }
//
// Native histograms are not sent: remote write 1.0 carries them only in the
// Histogram message, which a receiver without native histograms enabled
// (Prometheus 2.42 without --enable-feature=native-histograms) rejects,
// failing the whole request. The classic buckets (_bucket{le}, _sum,
// _count) of the same histogram carry the data every dashboard query uses.

type label struct{ name, value string }

type series struct {
	family int // index into the families' metadata
	labels []label
	value  float64
	ts     int64 // milliseconds since the epoch
}

type metadata struct {
	typ  uint64 // prompb MetricMetadata.MetricType
	name string
	help string
	unit string
}

// RW1 MetricMetadata.MetricType values.
const (
	mdUnknown        = 0
	mdCounter        = 1
	mdGauge          = 2
	mdHistogram      = 3
	mdGaugeHistogram = 4
	mdSummary        = 5
)

// convert flattens families into series as a scrape of the text format
// would: counters, gauges and untyped as themselves, summaries as
// {quantile}, _sum and _count, histograms as _bucket{le}, _sum and _count.
// ts stamps every sample that carries no timestamp of its own; extra labels
// are added to a series unless it has a label of that name.
func convert(families []*dto.MetricFamily, ts int64, extra []label) ([]series, []metadata) {
	var out []series
	var md []metadata
	for _, mf := range families {
		fi := len(md)
		md = append(md, metadata{typ: mdType(mf.GetType()), name: mf.GetName(), help: mf.GetHelp(), unit: mf.GetUnit()})
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			base := baseLabels(m, extra)
			at := ts
			if m.TimestampMs != nil {
				at = m.GetTimestampMs()
			}
			add := func(suffix string, v float64, ln, lv string) {
				ls := make([]label, 0, len(base)+2)
				ls = append(ls, label{"__name__", name + suffix})
				ls = append(ls, base...)
				if ln != "" {
					ls = append(ls, label{ln, lv})
				}
				slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
				out = append(out, series{family: fi, labels: ls, value: v, ts: at})
			}
			switch {
			case m.Counter != nil:
				add("", m.Counter.GetValue(), "", "")
			case m.Gauge != nil:
				add("", m.Gauge.GetValue(), "", "")
			case m.Untyped != nil:
				add("", m.Untyped.GetValue(), "", "")
			case m.Summary != nil:
				s := m.Summary
				for _, q := range s.GetQuantile() {
					add("", q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
				}
				add("_sum", s.GetSampleSum(), "", "")
				add("_count", float64(s.GetSampleCount()), "", "")
			case m.Histogram != nil:
				h := m.Histogram
				count := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil {
					count = h.GetSampleCountFloat()
				}
				hasInf := false
				for _, b := range h.GetBucket() {
					c := float64(b.GetCumulativeCount())
					if b.CumulativeCountFloat != nil {
						c = b.GetCumulativeCountFloat()
					}
					if math.IsInf(b.GetUpperBound(), +1) {
						hasInf = true
					}
					add("_bucket", c, "le", formatFloat(b.GetUpperBound()))
				}
				// The exposition formats always carry +Inf; a histogram
				// with native buckets only has none in its classic part.
				if !hasInf {
					add("_bucket", count, "le", "+Inf")
				}
				add("_sum", h.GetSampleSum(), "", "")
				add("_count", count, "", "")
			}
		}
	}
	return out, md
}

func mdType(t dto.MetricType) uint64 {
	switch t {
	case dto.MetricType_COUNTER:
		return mdCounter
	case dto.MetricType_GAUGE:
		return mdGauge
	case dto.MetricType_HISTOGRAM:
		return mdHistogram
	case dto.MetricType_GAUGE_HISTOGRAM:
		return mdGaugeHistogram
	case dto.MetricType_SUMMARY:
		return mdSummary
	}
	return mdUnknown
}

// baseLabels are a metric's own labels plus the extra ones it does not set.
// Empty values are left out: Prometheus treats them as absent.
func baseLabels(m *dto.Metric, extra []label) []label {
	ls := make([]label, 0, len(m.GetLabel())+len(extra))
	for _, lp := range m.GetLabel() {
		if lp.GetValue() != "" {
			ls = append(ls, label{lp.GetName(), lp.GetValue()})
		}
	}
	for _, e := range extra {
		if !slices.ContainsFunc(ls, func(l label) bool { return l.name == e.name }) {
			ls = append(ls, e)
		}
	}
	return ls
}

// formatFloat writes le and quantile values as the text exposition format
// does, so remote-written series match scraped ones.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// writeRequest is one encoded prometheus.WriteRequest. It satisfies the
// gogo-style interface (Size, MarshalToSizedBuffer) client_golang/exp's
// remote API uses to serialise a message it does not know.
type writeRequest struct {
	buf     []byte
	samples int
}

func (w *writeRequest) Size() int { return len(w.buf) }

// MarshalToSizedBuffer fills the end of b, as gogo's generated code does.
func (w *writeRequest) MarshalToSizedBuffer(b []byte) (int, error) {
	return copy(b[len(b)-len(w.buf):], w.buf), nil
}

// encode splits ss into requests of at most maxSeries series each, each
// carrying the metadata of the families its series belong to.
func encode(ss []series, md []metadata, maxSeries int) []*writeRequest {
	var reqs []*writeRequest
	for start := 0; start < len(ss); start += maxSeries {
		chunk := ss[start:min(start+maxSeries, len(ss))]
		var b []byte
		seen := map[int]bool{}
		for _, s := range chunk {
			b = appendSeries(b, s)
			seen[s.family] = true
		}
		for fi := range md {
			if seen[fi] {
				b = appendMetadata(b, md[fi])
			}
		}
		reqs = append(reqs, &writeRequest{buf: b, samples: len(chunk)})
	}
	return reqs
}

func labelSize(l label) int {
	return 1 + protowire.SizeBytes(len(l.name)) + 1 + protowire.SizeBytes(len(l.value))
}

func sampleSize(s series) int {
	return 1 + 8 + 1 + protowire.SizeVarint(uint64(s.ts))
}

func appendSeries(b []byte, s series) []byte {
	size := 0
	for _, l := range s.labels {
		size += 1 + protowire.SizeBytes(labelSize(l))
	}
	size += 1 + protowire.SizeBytes(sampleSize(s))

	b = protowire.AppendTag(b, 1, protowire.BytesType) // WriteRequest.timeseries
	b = protowire.AppendVarint(b, uint64(size))
	for _, l := range s.labels {
		b = protowire.AppendTag(b, 1, protowire.BytesType) // TimeSeries.labels
		b = protowire.AppendVarint(b, uint64(labelSize(l)))
		b = protowire.AppendTag(b, 1, protowire.BytesType) // Label.name
		b = protowire.AppendString(b, l.name)
		b = protowire.AppendTag(b, 2, protowire.BytesType) // Label.value
		b = protowire.AppendString(b, l.value)
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType) // TimeSeries.samples
	b = protowire.AppendVarint(b, uint64(sampleSize(s)))
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type) // Sample.value
	b = protowire.AppendFixed64(b, math.Float64bits(s.value))
	b = protowire.AppendTag(b, 2, protowire.VarintType) // Sample.timestamp
	b = protowire.AppendVarint(b, uint64(s.ts))
	return b
}

func appendMetadata(b []byte, m metadata) []byte {
	var inner []byte
	if m.typ != mdUnknown {
		inner = protowire.AppendTag(inner, 1, protowire.VarintType)
		inner = protowire.AppendVarint(inner, m.typ)
	}
	inner = protowire.AppendTag(inner, 2, protowire.BytesType)
	inner = protowire.AppendString(inner, m.name)
	if m.help != "" {
		inner = protowire.AppendTag(inner, 4, protowire.BytesType)
		inner = protowire.AppendString(inner, m.help)
	}
	if m.unit != "" {
		inner = protowire.AppendTag(inner, 5, protowire.BytesType)
		inner = protowire.AppendString(inner, m.unit)
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType) // WriteRequest.metadata
	return protowire.AppendBytes(b, inner)
}
