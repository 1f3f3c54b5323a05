package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// Seconds in a day, for the certificate thresholds.
const day = 86400.0

// TargetDetail is one target in depth: each phase's histogram as a heatmap
// per role, status codes, the TLS certificate's expiry, the revalidation
// (304) path, the CDN's own upstream timings and warm connections.
func TargetDetail() (GrafanaDashboard, error) {
	bd := newBoard("target.json", UIDTarget, "EdgeProbe / Target detail",
		"One target in depth: the distribution of every phase over time, what the responses said, the TLS certificate, revalidation and the CDN's own timings (Server-Timing).",
		promSource)
	bd.promJobVars()
	bd.reloadAnnotation()
	all := jobVars()

	bd.row("Phase histograms (one heatmap per role)")
	for _, p := range Phases {
		bd.add(bd.heatmap(fmt.Sprintf("%s: $role", phaseTitle(p)),
			fmt.Sprintf("Distribution of the %s phase over time: probes per second in each bucket of edgeprobe_phase_duration_seconds. Repeated for each selected role.", p),
			"s", full, tall-1, bd.promTargets([]promQ{{
				expr:   histogramRate(MetricPhaseDuration, nil, rateInterval, jobVars(eq(LabelPhase, p))...),
				legend: "{{le}}", heatmap: true,
			}})).
			Repeat(varRole).
			RepeatDirection(dashboard.PanelRepeatDirectionH).
			MaxPerRow(4))
	}

	bd.row("Responses and TLS")
	bd.add(bd.timeseries("HTTP status code (last probe)", "Final status of the last response of each role and location; 0 when no response arrived.", "none", half, tall,
		bd.promTargets([]promQ{{
			expr:   fmt.Sprintf("max by (%s, %s) (%s)", LabelRole, LabelLocation, sel(MetricHTTPStatus, all...)),
			legend: "{{role}} · {{location}}",
		}})).
		Decimals(0))
	bd.add(bd.stat("TLS certificate expires in", "Time left until the leaf certificate of the last handshake expires, by role and location.", "dtdurations", half, short,
		bd.promTargets([]promQ{{
			expr:   fmt.Sprintf("min by (%s, %s) (%s) - time()", LabelRole, LabelLocation, sel(MetricCertNotAfter, all...)),
			legend: "{{role}} · {{location}}", instant: true,
		}})).
		Thresholds(thresholds("red", step{7 * day, "orange"}, step{30 * day, "green"})))
	bd.add(bd.table("Last response", "Facts of the last response of each role and location: HTTP and TLS versions, IP family, the CDN it came through.", "none", half, short+2,
		bd.promTargets([]promQ{{
			expr:    sel(MetricProbeInfo, all...),
			instant: true, table: true,
		}})).
		WithTransformation(transform("organize", map[string]any{
			"excludeByName": map[string]any{"Time": true, "Value": true, "__name__": true, "job": true, "instance": true, LabelTarget: true},
			"indexByName": map[string]any{
				LabelRole: 0, LabelLocation: 1, "address": 2, LabelHTTPVersion: 3, LabelTLSVersion: 4, LabelIPFamily: 5, LabelCDN: 6,
			},
		})))

	bd.row("Revalidation (If-Modified-Since / If-None-Match)")
	revalTTFB := jobVars(eq(LabelPhase, httptrace.PhaseTTFB))
	bd.add(bd.timeseries("Revalidation TTFB vs full GET",
		"Server wait of the conditional request that follows a 200 (a 304 when the validators match) against the server wait of the full GET. With TTL 0 the edge revalidates every request: the origin's 304 must be fast.",
		"s", half, tall, bd.promTargets([]promQ{
			{expr: quantile(0.5, MetricRevalidationDuration, []string{LabelRole}, rateInterval, revalTTFB...), legend: "{{role}} revalidation p50"},
			{expr: quantile(0.9, MetricRevalidationDuration, []string{LabelRole}, rateInterval, revalTTFB...), legend: "{{role}} revalidation p90"},
			{expr: quantile(0.5, MetricPhaseDuration, []string{LabelRole}, rateInterval, revalTTFB...), legend: "{{role}} full GET p50"},
		})).
		Min(0))
	bd.add(bd.bars("Revalidations by result", "Conditional requests per second: not_modified (304), modified, error, skipped_no_validator (the 200 had no Last-Modified or ETag).", "cps", half, tall,
		bd.promTargets([]promQ{{
			expr:   sumBy([]string{LabelRole, LabelResult}, rate(sel(MetricRevalidations, all...), rateInterval)),
			legend: "{{role}}: {{result}}",
		}})))

	bd.row("CDN upstream (Server-Timing) and warm connections")
	bd.add(bd.timeseries("CDN upstream timings (Server-Timing)",
		"CloudFront's own view of its way to the origin, from the Server-Timing header (cdn-upstream-dns, cdn-upstream-connect, cdn-upstream-fbl, cdn-downstream-fbl) when the response headers policy enables it.",
		"s", half, tall, bd.promTargets([]promQ{
			{expr: quantile(0.5, MetricUpstreamDuration, []string{LabelRole, LabelPhase}, rateInterval, all...), legend: "{{role}} {{phase}} p50"},
			{expr: quantile(0.9, MetricUpstreamDuration, []string{LabelRole, LabelPhase}, rateInterval, all...), legend: "{{role}} {{phase}} p90"},
		})).
		Min(0))
	ttfb := jobVars(eq(LabelPhase, httptrace.PhaseTTFB))
	bd.add(bd.timeseries("TTFB: warm (keep-alive) vs new connection",
		"p50 server wait of a second request on the probe's kept-alive connection against that of the probe on a new connection.",
		"s", half, tall, bd.promTargets([]promQ{
			{expr: quantile(0.5, MetricKeepaliveDuration, []string{LabelRole}, rateInterval, ttfb...), legend: "{{role}} keep-alive p50"},
			{expr: quantile(0.5, MetricPhaseDuration, []string{LabelRole}, rateInterval, ttfb...), legend: "{{role}} new connection p50"},
		})).
		Min(0))
	return bd.build()
}
