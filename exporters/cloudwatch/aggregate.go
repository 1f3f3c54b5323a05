package cloudwatch

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// seriesKey names one CloudWatch metric: a metric name and its dimensions.
type seriesKey struct {
	metric                          metricID
	target, role, location, address string
}

// seriesInfo is what every datum of a series shares: its name, unit,
// dimensions and the size they take in a request.
type seriesInfo struct {
	key        seriesKey
	name       string
	unit       types.StandardUnit
	dims       []types.Dimension
	ratio      bool
	staticSize int       // JSON bytes of a datum without its values and counts
	lastUsed   time.Time // last interval it had data in (guarded by Sink.mu)
}

// maxDimValue is CloudWatch's limit on a dimension value's length.
const maxDimValue = 1024

func newSeriesInfo(k seriesKey, highRes bool) *seriesInfo {
	def := metricDefs[k.metric]
	dim := func(name, v string) types.Dimension {
		if v == "" {
			v = "unknown" // CloudWatch refuses empty dimension values
		}
		if len(v) > maxDimValue {
			v = v[:maxDimValue]
		}
		return types.Dimension{Name: aws.String(name), Value: aws.String(v)}
	}
	dims := []types.Dimension{dim(DimTarget, k.target), dim(DimRole, k.role), dim(DimLocation, k.location)}
	if k.address != "" {
		dims = append(dims, dim(DimAddress, k.address))
	}
	si := &seriesInfo{key: k, name: def.name, unit: def.unit, dims: dims, ratio: def.ratio}
	si.staticSize = staticDatumSize(si, highRes)
	return si
}

// staticDatumSize is an upper bound of the JSON bytes of one datum of si
// with empty Values and Counts, as the AWS JSON 1.0 protocol writes it:
// {"MetricName":"..","Dimensions":[{"Name":"..","Value":".."},..],
// "Timestamp":1767225600.123,"Unit":"..","Values":[],"Counts":[],
// "StorageResolution":1} plus the comma that separates it from the next.
func staticDatumSize(si *seriesInfo, highRes bool) int {
	type dimJSON struct{ Name, Value string }
	ds := make([]dimJSON, len(si.dims))
	for i, d := range si.dims {
		ds[i] = dimJSON{aws.ToString(d.Name), aws.ToString(d.Value)}
	}
	b, _ := json.Marshal(struct {
		MetricName string
		Dimensions []dimJSON
		Unit       string
		Values     []float64
		Counts     []float64
	}{si.name, ds, string(si.unit), []float64{}, []float64{}})
	n := len(b) + len(`,"Timestamp":`) + maxTimestampLen + len(`,`)
	if highRes {
		n += len(`,"StorageResolution":1`)
	}
	return n
}

// maxTimestampLen bounds an epoch-seconds timestamp with milliseconds
// ("1767225600.123"), with room to spare.
const maxTimestampLen = 20

// series accumulates one series' samples of one interval: bin → count.
type series struct {
	info *seriesInfo
	bins map[int32]float64
}

// add puts a value in its bin (ratios: the value itself, 0 or 1).
func (s *series) add(v float64) {
	var b int32
	if s.info.ratio {
		b = int32(v)
	} else {
		b = binOf(v)
	}
	s.bins[b]++
}

// datum is one PutMetricData datum waiting to be sent.
type datum struct {
	info    *seriesInfo
	ts      time.Time
	values  []float64
	counts  []float64
	size    int     // upper bound of its JSON bytes in a request
	samples float64 // sum of counts
}

// datums turns the accumulated bins into datums of at most maxValues
// values each, in ascending value order.
func (s *series) datums(ts time.Time, maxValues int) []*datum {
	bins := slices.Sorted(maps.Keys(s.bins))
	var out []*datum
	for len(bins) > 0 {
		chunk := bins[:min(len(bins), maxValues)]
		bins = bins[len(chunk):]
		d := &datum{info: s.info, ts: ts, values: make([]float64, len(chunk)), counts: make([]float64, len(chunk))}
		for i, b := range chunk {
			v := float64(b)
			if !s.info.ratio {
				v = binValue(b)
			}
			d.values[i], d.counts[i] = v, s.bins[b]
			d.samples += s.bins[b]
		}
		d.size = s.info.staticSize + numbersSize(d.values) + numbersSize(d.counts)
		out = append(out, d)
	}
	return out
}

// numbersSize is the JSON length of the numbers of a list, with the
// commas between them (the brackets are in the static size).
func numbersSize(vs []float64) int {
	n := 0
	for _, v := range vs {
		n += jsonFloatLen(v) + 1
	}
	return n
}

// jsonFloatLen is len(appendJSONFloat(nil, v)), quicker for whole numbers
// (the counts).
func jsonFloatLen(v float64) int {
	if v >= 0 && v < 1e15 && v == math.Trunc(v) {
		n := 1
		for x := uint64(v); x >= 10; x /= 10 {
			n++
		}
		return n
	}
	var buf [32]byte
	return len(appendJSONFloat(buf[:0], v))
}
