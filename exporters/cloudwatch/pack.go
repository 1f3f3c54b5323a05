package cloudwatch

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// PutMetricData limits (API reference; research/aws.md §3.1).
const (
	// MaxDatumsPerRequest is the API's limit of metric datums per request.
	MaxDatumsPerRequest = 1000
	// MaxRequestBytes is the API's limit of a request body ("1 MB" for HTTP
	// POST). Requests are packed so that the uncompressed JSON body stays
	// within it, which keeps them valid however the limit is counted.
	MaxRequestBytes = 1_000_000
	// MaxValuesPerDatum is the API's limit of distinct Values per datum.
	MaxValuesPerDatum = 150
)

// request is a packed PutMetricData call.
type request struct {
	datums []*datum
	size   int // upper bound of the JSON body's bytes
}

// requestOverhead is the JSON around the datums:
// {"Namespace":"...","MetricData":[...]}.
func requestOverhead(namespace string) int {
	b, _ := json.Marshal(struct {
		Namespace  string
		MetricData []int
	}{namespace, []int{}})
	return len(b)
}

// pack splits datums, in order, into requests of at most maxDatums datums
// and maxBytes bytes of JSON body (overhead included). A datum larger than
// a whole request cannot occur (150 values and counts take under 10 KB).
func pack(datums []*datum, overhead, maxDatums, maxBytes int) []*request {
	var out []*request
	var cur *request
	for _, d := range datums {
		if cur == nil || len(cur.datums) >= maxDatums || cur.size+d.size > maxBytes {
			cur = &request{size: overhead}
			out = append(out, cur)
		}
		cur.datums = append(cur.datums, d)
		cur.size += d.size
	}
	return out
}

// input builds the PutMetricData input of a request.
func (r *request) input(namespace string, highRes bool) *cloudwatch.PutMetricDataInput {
	in := &cloudwatch.PutMetricDataInput{Namespace: aws.String(namespace), MetricData: make([]types.MetricDatum, len(r.datums))}
	var res *int32
	if highRes {
		res = aws.Int32(1)
	}
	for i, d := range r.datums {
		in.MetricData[i] = types.MetricDatum{
			MetricName:        aws.String(d.info.name),
			Dimensions:        d.info.dims,
			Timestamp:         aws.Time(d.ts),
			Unit:              d.info.unit,
			Values:            d.values,
			Counts:            d.counts,
			StorageResolution: res,
		}
	}
	return in
}

// appendJSONFloat writes v as the SDK's JSON encoder does (strconv's
// shortest form, exponent notation outside [1e-6, 1e21)).
func appendJSONFloat(dst []byte, v float64) []byte {
	f := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		f = 'e'
	}
	return strconv.AppendFloat(dst, v, f, -1, 64)
}
