package cloudwatch

import (
	"math"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// List prices used by the estimates (us-east-1; research/aws.md §3.2):
// custom metrics cost $0.30 per metric-month for the first 10,000 (less
// beyond), PutMetricData $0.01 per 1,000 requests. Estimates, not quotes.
const (
	PricePerMetricMonthUSD  = 0.30
	PricePer1000RequestsUSD = 0.01
)

// hoursPerMonth is AWS's billing month (730 hours).
const hoursPerMonth = 730

// maxAddressesPerFamily mirrors the probe's bound for all_addresses.
const maxAddressesPerFamily = 4

// MonthlyMetricCount is the number of CloudWatch custom metrics (metric
// name × dimension set) the config makes the agent send, at most: for each
// job (target × role), the seven phase metrics, Success, CacheHit and, for
// conditional targets, RevalidationTime. Targets with all_addresses count
// every address they may probe (4 per IP family) plus the plain series a
// failed lookup reports. A phase that never happens (TLS on http://) or a
// role without CDN headers (no CacheHit) makes the real count lower. Each
// agent location multiplies it (Location is a dimension).
func MonthlyMetricCount(cfg *probe.Config) int {
	n := 0
	for i := range cfg.Targets {
		n += targetMetrics(cfg, &cfg.Targets[i])
	}
	return n
}

func targetMetrics(cfg *probe.Config, t *probe.Target) int {
	roles := max(len(t.Roles), 1)
	per := 7 + 2 // phases, Success, CacheHit
	if t.Conditional {
		per++
	}
	if !t.AllAddresses {
		return roles * per
	}
	families := 2
	switch v := firstNonEmpty(t.IPVersion, cfg.Defaults.IPVersion); v {
	case httptrace.IPv4Only, httptrace.IPv6Only:
		families = 1
	}
	return roles * (per*families*maxAddressesPerFamily + 1)
}

// MonthlyPutMetricDataCalls estimates the PutMetricData calls a month the
// config implies: every flush sends the datums of the series that had
// samples in it (a job probed less often than the flush interval has data
// in only some flushes), 1,000 datums per call.
func MonthlyPutMetricDataCalls(cfg *probe.Config) int {
	flush := DefaultFlushInterval
	if cw := cfg.Exporters.CloudWatch; cw != nil && cw.FlushInterval.D() > 0 {
		flush = cw.FlushInterval.D()
	}
	perFlush := 0.0
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		every := firstDuration(t.Interval.D(), cfg.Defaults.Interval.D(), 30*time.Second)
		share := min(1, float64(flush)/float64(every))
		perFlush += float64(targetMetrics(cfg, t)) * share
	}
	if perFlush == 0 {
		return 0
	}
	flushes := float64(hoursPerMonth*time.Hour) / float64(flush)
	return int(math.Ceil(flushes * math.Ceil(perFlush/MaxDatumsPerRequest)))
}

// MonthlyCostUSD estimates the monthly bill of metrics and calls at the
// list prices above (first-10k metric tier).
func MonthlyCostUSD(metrics, calls int) (metricsUSD, callsUSD float64) {
	return float64(metrics) * PricePerMetricMonthUSD, float64(calls) / 1000 * PricePer1000RequestsUSD
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstDuration(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return time.Minute
}
