package dashboards

import (
	"github.com/edgeprobe/edgeprobe/httptrace"
)

// Prometheus metric families the dashboards query: the metric contract of
// DESIGN.md and docs/metrics.md. Every expression of every panel is built
// from these constants. TestMetricContract holds them against
// exporters/prometheus/testdata/metrics.golden (which the exporter's own
// TestMetricCatalogue pins), and TestPromQLAgainstPrometheus runs every
// expression against a real agent scraped by a real Prometheus, so a
// renamed metric fails a test here, not a user's dashboard.
const (
	MetricPhaseDuration        = "edgeprobe_phase_duration_seconds"               // histogram {phase}
	MetricProbes               = "edgeprobe_probes_total"                         // counter {result}
	MetricProbeSuccess         = "edgeprobe_probe_success"                        // gauge, last probe 1/0
	MetricHTTPStatus           = "edgeprobe_http_status_code"                     // gauge, last final status
	MetricProbeInfo            = "edgeprobe_probe_info"                           // gauge 1 {http_version, tls_version, ip_family, cdn}
	MetricCacheResults         = "edgeprobe_cache_results_total"                  // counter {cache, pop}
	MetricCertNotAfter         = "edgeprobe_tls_cert_not_after_timestamp_seconds" // gauge, unix time
	MetricRevalidationDuration = "edgeprobe_revalidation_duration_seconds"        // histogram {phase: ttfb, total}
	MetricRevalidations        = "edgeprobe_revalidations_total"                  // counter {result}
	MetricKeepaliveDuration    = "edgeprobe_keepalive_duration_seconds"           // histogram {phase: ttfb, total}
	MetricUpstreamDuration     = "edgeprobe_upstream_duration_seconds"            // histogram {phase}
	// MetricConfigReloads is a self-metric of the agent (package agent),
	// outside the per-target contract: its reloads by result.
	MetricConfigReloads = "edgeprobe_config_reloads_total"
)

// Label names of the contract.
const (
	LabelTarget   = "target"
	LabelRole     = "role"
	LabelLocation = "location"
	LabelPhase    = "phase"
	LabelResult   = "result"
	LabelCache    = "cache"
	LabelPOP      = "pop"
)

// Label names of edgeprobe_probe_info.
const (
	LabelHTTPVersion = "http_version"
	LabelTLSVersion  = "tls_version"
	LabelIPFamily    = "ip_family"
	LabelCDN         = "cdn"
)

// Label values the dashboards select on.
const (
	RoleCDN    = "cdn"
	RoleOrigin = "origin"

	ResultSuccess     = "success"      // edgeprobe_probes_total
	ResultNotModified = "not_modified" // edgeprobe_revalidations_total
)

// Phases are the per-phase durations of a new connection, in wire order,
// then the cumulative first byte.
var Phases = []string{
	httptrace.PhaseDNS, httptrace.PhaseConnect, httptrace.PhaseTLS, httptrace.PhaseTTFB,
	httptrace.PhaseTransfer, httptrace.PhaseTotal, httptrace.PhaseFirstByte,
}

// comparedPhases are the phases set side by side for origin and CDN: the
// parts of one request, and its total.
var comparedPhases = []string{
	httptrace.PhaseDNS, httptrace.PhaseConnect, httptrace.PhaseTLS, httptrace.PhaseTTFB,
	httptrace.PhaseTransfer, httptrace.PhaseTotal,
}

// UpstreamPhases are the phases of edgeprobe_upstream_duration_seconds
// (CloudFront's Server-Timing cdn-upstream-dns, -connect, -fbl and
// cdn-downstream-fbl).
var UpstreamPhases = []string{"dns", "connect", "first_byte", "downstream_first_byte"}

// cacheKnown are the cache results a CDN reported (not unknown); hits are
// the ones it served from cache, refreshed or not. The same split as the
// CloudWatch exporter's CacheHit metric.
var (
	cacheHits  = []string{httptrace.CacheHit, httptrace.CacheRefreshHit}
	cacheKnown = []string{httptrace.CacheHit, httptrace.CacheRefreshHit, httptrace.CacheMiss, httptrace.CacheBypass, httptrace.CacheError}
)

// phaseTitle is how a phase is named in panel titles.
func phaseTitle(p string) string {
	switch p {
	case httptrace.PhaseDNS:
		return "DNS"
	case httptrace.PhaseConnect:
		return "TCP connect"
	case httptrace.PhaseTLS:
		return "TLS handshake"
	case httptrace.PhaseTTFB:
		return "TTFB (server wait)"
	case httptrace.PhaseTransfer:
		return "Transfer"
	case httptrace.PhaseTotal:
		return "Total"
	case httptrace.PhaseFirstByte:
		return "First byte (cumulative)"
	}
	return p
}
