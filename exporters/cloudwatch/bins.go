package cloudwatch

import (
	"math"
	"strconv"
)

// Binning. A duration is not sent as measured: it is put in a log-scale bin
// of relative width 1% (bin i holds [1.01^i, 1.01^(i+1)) ms) and the bin is
// sent as one value, its geometric midpoint 1.01^(i+0.5) rounded to six
// significant digits, with the number of samples in it as the count. So:
//
//   - a sent value differs from every sample it stands for by at most
//     sqrt(1.01)-1 = 0.4988% (midpoint) + 0.0005% (rounding) < 0.5%
//     (RelativeErrorBound), relative to the sample;
//   - binning is monotonic, so the k-th smallest sent value is the bin of
//     the k-th smallest sample: every order statistic, and so every
//     percentile CloudWatch computes from them (p50, p90, p99, ... with or
//     without interpolation between neighbours), is within 0.5% of the
//     same percentile of the raw samples. CloudWatch's own estimation for
//     large data sets comes on top of this.
//
// A series whose samples in one interval fall in more than 150 bins (the
// API's limit of distinct values per datum; it takes a spread of more than
// 4.4× between fastest and slowest) is sent as several datums with the same
// timestamp, which CloudWatch aggregates into one distribution: the bound
// holds regardless of the spread. Success and CacheHit are 0 or 1 and are
// sent exactly.

// RelativeErrorBound is the largest relative difference between a sample
// and the value sent for it, and so between any percentile CloudWatch
// computes from the sent values and the same percentile of the samples.
const RelativeErrorBound = 0.005

// binGrowth is the ratio between the edges of one bin.
const binGrowth = 1.01

var logGrowth = math.Log(binGrowth)

// Bin values of indexes in [binTableMin, binTableMax) are precomputed:
// 1.01^-1400 ms ≈ 1 ns up to 1.01^1800 ms ≈ 17 years.
const (
	binTableMin = -1400
	binTableMax = 1800
)

var binTable = func() []float64 {
	t := make([]float64, binTableMax-binTableMin)
	for i := range t {
		t[i] = computeBinValue(int32(i + binTableMin))
	}
	return t
}()

// binOf returns the bin of a positive value.
func binOf(v float64) int32 {
	return int32(math.Floor(math.Log(v) / logGrowth))
}

// binValue is the value sent for bin i.
func binValue(i int32) float64 {
	if i >= binTableMin && i < binTableMax {
		return binTable[i-binTableMin]
	}
	return computeBinValue(i)
}

func computeBinValue(i int32) float64 {
	return roundSig(math.Exp((float64(i)+0.5)*logGrowth), 6)
}

// roundSig rounds v to n significant decimal digits (which also keeps its
// JSON form short).
func roundSig(v float64, n int) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', n, 64), 64)
	if err != nil {
		return v
	}
	return r
}
