package cloudwatch

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Metric names (DESIGN.md "Metric contract"). Where Route 53 health checks
// publish the same quantity the name is Route 53's, so both overlay in one
// graph. Changing a name is a breaking change: dashboards and alarms use them.
const (
	MetricDNSLookupTime    = "DNSLookupTime"    // phase dns, ms
	MetricConnectionTime   = "ConnectionTime"   // phase connect, ms (Route 53's name)
	MetricSSLHandshakeTime = "SSLHandshakeTime" // phase tls, ms (Route 53's name)
	MetricTimeToFirstByte  = "TimeToFirstByte"  // phase ttfb, ms (Route 53's name)
	MetricTransferTime     = "TransferTime"     // phase transfer, ms
	MetricTotalTime        = "TotalTime"        // phase total, ms
	MetricFirstByteTime    = "FirstByteTime"    // cumulative first_byte, ms
	MetricSuccess          = "Success"          // 1 or 0 per probe: Average = success ratio, SampleCount = probes
	MetricCacheHit         = "CacheHit"         // 1 hit/refresh_hit, 0 miss/bypass/error; known CDN results only
	MetricRevalidationTime = "RevalidationTime" // ttfb of the conditional (If-Modified-Since) request, ms
)

// Dimension names. Address is added only to samples that carry one
// (targets with all_addresses).
const (
	DimTarget   = "Target"
	DimRole     = "Role"
	DimLocation = "Location"
	DimAddress  = "Address"
)

// metricID indexes the metrics one sample can produce.
type metricID uint8

const (
	mDNS metricID = iota
	mConnect
	mTLS
	mTTFB
	mTransfer
	mTotal
	mFirstByte
	mSuccess
	mCacheHit
	mRevalidation
	numMetrics
)

// metricDefs are the metrics in metricID order.
var metricDefs = [numMetrics]struct {
	name  string
	unit  types.StandardUnit
	phase string // the phase a duration metric carries; "" otherwise
	ratio bool   // values are exactly 0 or 1, sent as they are (not binned)
}{
	mDNS:          {MetricDNSLookupTime, types.StandardUnitMilliseconds, httptrace.PhaseDNS, false},
	mConnect:      {MetricConnectionTime, types.StandardUnitMilliseconds, httptrace.PhaseConnect, false},
	mTLS:          {MetricSSLHandshakeTime, types.StandardUnitMilliseconds, httptrace.PhaseTLS, false},
	mTTFB:         {MetricTimeToFirstByte, types.StandardUnitMilliseconds, httptrace.PhaseTTFB, false},
	mTransfer:     {MetricTransferTime, types.StandardUnitMilliseconds, httptrace.PhaseTransfer, false},
	mTotal:        {MetricTotalTime, types.StandardUnitMilliseconds, httptrace.PhaseTotal, false},
	mFirstByte:    {MetricFirstByteTime, types.StandardUnitMilliseconds, httptrace.PhaseFirstByte, false},
	mSuccess:      {MetricSuccess, types.StandardUnitNone, "", true},
	mCacheHit:     {MetricCacheHit, types.StandardUnitNone, "", true},
	mRevalidation: {MetricRevalidationTime, types.StandardUnitMilliseconds, "", false},
}

// MetricNames lists every metric the exporter can send, in a fixed order.
func MetricNames() []string {
	out := make([]string, 0, numMetrics)
	for _, d := range metricDefs {
		out = append(out, d.name)
	}
	return out
}

// PhaseMetric returns the CloudWatch metric name of a phase of the
// contract ("dns", "connect", ...), or "" for an unknown phase.
func PhaseMetric(phase string) string {
	for _, d := range metricDefs {
		if d.phase != "" && d.phase == phase {
			return d.name
		}
	}
	return ""
}

// observation is one value a sample contributes to one metric.
type observation struct {
	metric metricID
	value  float64 // ms for durations, 0 or 1 for Success and CacheHit
}

// observe lists what s contributes: Success always; the phases that
// happened (non-zero) and RevalidationTime only when the probe succeeded;
// CacheHit when the CDN's cache result is known (also for failed probes: a
// CDN error is a known result). It returns how many entries of buf it used.
func observe(s *probe.Sample, buf *[numMetrics]observation) int {
	n := 0
	add := func(m metricID, v float64) {
		buf[n] = observation{m, v}
		n++
	}
	ok := s.Success()
	add(mSuccess, boolValue(ok))
	r := s.Result
	if r == nil {
		return n
	}
	if ok {
		t := r.Timings
		for _, p := range [...]struct {
			m metricID
			d time.Duration
		}{{mDNS, t.DNS}, {mConnect, t.Connect}, {mTLS, t.TLS}, {mTTFB, t.TTFB}, {mTransfer, t.Transfer}, {mTotal, t.Total}, {mFirstByte, t.FirstByte}} {
			if p.d > 0 {
				add(p.m, ms(p.d))
			}
		}
		if c := r.Conditional; c != nil && c.Sent && c.Error == nil && c.Timings.TTFB > 0 {
			add(mRevalidation, ms(c.Timings.TTFB))
		}
	}
	switch r.CDN.Cache {
	case httptrace.CacheHit, httptrace.CacheRefreshHit:
		add(mCacheHit, 1)
	case httptrace.CacheMiss, httptrace.CacheBypass, httptrace.CacheError:
		add(mCacheHit, 0)
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
