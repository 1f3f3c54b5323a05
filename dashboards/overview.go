package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Dashboard uids: stable, so links and bookmarks survive a re-import.
const (
	UIDOverview   = "edgeprobe-overview"
	UIDLocations  = "edgeprobe-locations"
	UIDTarget     = "edgeprobe-target"
	UIDCloudWatch = "edgeprobe-cloudwatch"
)

// quantiles drawn for each phase.
var quantiles = []float64{0.5, 0.9, 0.99}

// promJobVars adds the target (one), location and role (many, All by
// default) variables, read from edgeprobe_probes_total.
func (bd *board) promJobVars() {
	bd.queryVar(varTarget, "Target",
		dashboard.StringOrMap{String: new(fmt.Sprintf("label_values(%s, %s)", MetricProbes, LabelTarget))}, "")
	bd.queryVar(varLocation, "Location",
		dashboard.StringOrMap{String: new(fmt.Sprintf("label_values(%s, %s)", sel(MetricProbes, eq(LabelTarget, "$"+varTarget)), LabelLocation))}, ".*")
	bd.queryVar(varRole, "Role",
		dashboard.StringOrMap{String: new(fmt.Sprintf("label_values(%s, %s)", sel(MetricProbes, eq(LabelTarget, "$"+varTarget)), LabelRole))}, ".*")
}

// reloadWindow is both the step of the reload annotation and the window
// it compares the counter over, so every reload lands in one step.
const reloadWindow = "1m"

// ConfigReloadsExpr marks the agent's config reloads: where
// edgeprobe_config_reloads_total grew over the last step, or where its
// series (of one result) first appeared, since a counter is exported only
// from its first reload on.
var ConfigReloadsExpr = sumBy([]string{"instance", LabelResult},
	fmt.Sprintf("(%[1]s - %[1]s offset %[2]s > 0) or (%[1]s unless %[1]s offset %[2]s)", MetricConfigReloads, reloadWindow))

// reloadAnnotation is the config reloads annotation of the Prometheus
// dashboards.
func (bd *board) reloadAnnotation() {
	bd.b.Annotation(dashboard.NewAnnotationQueryBuilder().
		Name("Config reloads").
		Datasource(bd.ds.ref()).
		Enable(true).
		IconColor("purple").
		Expr(ConfigReloadsExpr).
		Step(reloadWindow).
		TitleFormat("Config reload: {{" + LabelResult + "}}").
		TextFormat("{{instance}}").
		TagKeys("instance," + LabelResult))
}

// Overview is the per-target overview on Prometheus: origin vs CDN per
// phase, their difference, success, errors and the cache.
func Overview() (GrafanaDashboard, error) {
	bd := newBoard("overview.json", UIDOverview, "EdgeProbe / Overview",
		"One target reached two ways, straight at its origin and through its CDN: where the time of a request goes, phase by phase, and whether the CDN makes it faster.",
		promSource)
	bd.promJobVars()
	bd.reloadAnnotation()
	all := jobVars()

	bd.row("Over the time range")
	bd.add(bd.stat("Success rate", "Share of probes that succeeded over the time range, by role.", "percentunit", quarter, short,
		bd.promTargets([]promQ{{
			expr: ratio(
				sumBy([]string{LabelRole}, increase(sel(MetricProbes, jobVars(eq(LabelResult, ResultSuccess))...), rangeInterval)),
				sumBy([]string{LabelRole}, increase(sel(MetricProbes, all...), rangeInterval))),
			legend: "{{role}}", instant: true,
		}})).
		Decimals(2).
		Thresholds(thresholds("red", step{0.99, "orange"}, step{0.999, "green"})))
	bd.add(bd.stat("Median total time", "p50 of the whole request (dns to last byte) over the time range, by role.", "s", quarter, short,
		bd.promTargets([]promQ{{
			expr:   quantile(0.5, MetricPhaseDuration, []string{LabelRole}, rangeInterval, jobVars(eq(LabelPhase, "total"))...),
			legend: "{{role}}", instant: true,
		}})))
	bd.add(bd.stat("CDN − origin, median total", "p50 total through the CDN minus p50 total straight at the origin, over the time range. Below zero: the CDN is faster.", "s", quarter, short,
		bd.promTargets([]promQ{{
			expr: quantile(0.5, MetricPhaseDuration, nil, rangeInterval, withRole(jobVars(eq(LabelPhase, "total")), RoleCDN)...) + " - " +
				quantile(0.5, MetricPhaseDuration, nil, rangeInterval, withRole(jobVars(eq(LabelPhase, "total")), RoleOrigin)...),
			legend: "CDN − origin", instant: true,
		}})).
		Thresholds(thresholds("green", step{0, "red"})))
	bd.add(bd.stat("Cache hit ratio", "Responses the CDN served from its cache (hit or refresh_hit: revalidated with the origin) among those it reported a cache result for (hit, refresh_hit, miss, bypass, error), over the time range.", "percentunit", quarter, short,
		bd.promTargets([]promQ{{
			expr: ratio(
				sumBy([]string{LabelRole}, increase(sel(MetricCacheResults, jobVars(oneOf(LabelCache, cacheHits...))...), rangeInterval)),
				sumBy([]string{LabelRole}, increase(sel(MetricCacheResults, jobVars(oneOf(LabelCache, cacheKnown...))...), rangeInterval))),
			legend: "{{role}}", instant: true,
		}})).
		Decimals(1))

	bd.row("Latency per phase: origin vs CDN")
	for _, p := range comparedPhases {
		var qs []promQ
		for _, q := range quantiles {
			qs = append(qs, promQ{
				expr:   quantile(q, MetricPhaseDuration, []string{LabelRole}, rateInterval, jobVars(eq(LabelPhase, p))...),
				legend: "{{role}} " + quantileName(q),
			})
		}
		bd.add(bd.timeseries(phaseTitle(p)+": p50, p90, p99 by role",
			fmt.Sprintf("Quantiles of the %s phase of probes on new connections (edgeprobe_phase_duration_seconds{phase=%q}), by role.", p, p),
			"s", half, tall, bd.promTargets(qs)).Min(0))
	}

	bd.row("CDN − origin")
	phaseSet := oneOf(LabelPhase, comparedPhases...)
	for _, q := range []float64{0.5, 0.9} {
		bd.add(bd.timeseries(fmt.Sprintf("CDN − origin per phase, %s", quantileName(q)),
			fmt.Sprintf("%s of each phase through the CDN minus the same straight at the origin. Below zero: faster through the CDN.", quantileName(q)),
			"s", half, tall, bd.promTargets([]promQ{{
				expr: quantile(q, MetricPhaseDuration, []string{LabelPhase}, rateInterval, withRole(jobVars(phaseSet), RoleCDN)...) + " - " +
					quantile(q, MetricPhaseDuration, []string{LabelPhase}, rateInterval, withRole(jobVars(phaseSet), RoleOrigin)...),
				legend: "{{phase}}",
			}})).
			Thresholds(thresholds("green", step{0, "red"})))
	}
	bd.add(bd.barGauge("CDN − origin per phase over the time range, p50",
		"Median of each phase through the CDN minus straight at the origin, over the whole time range. Below zero: faster through the CDN.",
		"s", full, short, bd.promTargets([]promQ{{
			expr: quantile(0.5, MetricPhaseDuration, []string{LabelPhase}, rangeInterval, withRole(jobVars(phaseSet), RoleCDN)...) + " - " +
				quantile(0.5, MetricPhaseDuration, []string{LabelPhase}, rangeInterval, withRole(jobVars(phaseSet), RoleOrigin)...),
			legend: "{{phase}}", instant: true,
		}})).
		Orientation(common.VizOrientationVertical).
		Thresholds(thresholds("green", step{0, "red"})))

	bd.row("Success, errors and cache")
	bd.add(bd.timeseries("Success rate by role", "Share of probes that succeeded.", "percentunit", half, tall,
		bd.promTargets([]promQ{{
			expr: ratio(
				sumBy([]string{LabelRole}, rate(sel(MetricProbes, jobVars(eq(LabelResult, ResultSuccess))...), rateInterval)),
				sumBy([]string{LabelRole}, rate(sel(MetricProbes, all...), rateInterval))),
			legend: "{{role}}",
		}})).
		Min(0).Max(1))
	bd.add(bd.bars("Errors by class", "Failed probes per second by the phase they failed in: dns, connect, tls, http, timeout or assert (expectations not met).", "cps", half, tall,
		bd.promTargets([]promQ{{
			expr:   sumBy([]string{LabelRole, LabelResult}, rate(sel(MetricProbes, jobVars(ne(LabelResult, ResultSuccess))...), rateInterval)),
			legend: "{{role}}: {{result}}",
		}})))
	bd.add(bd.timeseries("Cache hit ratio by role", "hit and refresh_hit among the responses with a known cache result.", "percentunit", half, tall,
		bd.promTargets([]promQ{{
			expr: ratio(
				sumBy([]string{LabelRole}, rate(sel(MetricCacheResults, jobVars(oneOf(LabelCache, cacheHits...))...), rateInterval)),
				sumBy([]string{LabelRole}, rate(sel(MetricCacheResults, jobVars(oneOf(LabelCache, cacheKnown...))...), rateInterval))),
			legend: "{{role}}",
		}})).
		Min(0).Max(1))
	bd.add(bd.bars("Cache results", "Responses per second by the CDN's normalized cache result (hit, refresh_hit, miss, bypass, error).", "cps", half, tall,
		bd.promTargets([]promQ{{
			expr:   sumBy([]string{LabelRole, LabelCache}, rate(sel(MetricCacheResults, jobVars(oneOf(LabelCache, cacheKnown...))...), rateInterval)),
			legend: "{{role}}: {{cache}}",
		}})))
	return bd.build()
}
