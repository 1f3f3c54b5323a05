package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/route53"
)

// Route 53 health checks' CloudWatch metrics: namespace AWS/Route53 in
// us-east-1 only, dimension HealthCheckId (and Region, per checker region).
// Their latency metrics carry the names the agent's exporter uses for the
// same phases (cwexp.MetricConnectionTime and so on).
const (
	route53Region      = route53.Route53Region
	route53Namespace   = route53.Route53Namespace
	dimHealthCheckID   = "HealthCheckId"
	varRegion          = "region"
	varNamespace       = "namespace"
	varHealthCheck     = "healthcheck"
	cwAll              = "*" // CloudWatch's dimension wildcard, the variables' All
	cwVariableQueryRef = "CloudWatchVariableQueryEditor-VariableQuery"
)

// cwPhases are the agent's CloudWatch duration metrics by phase, in the
// order of the phase contract (the exporter maps phase → name).
func cwPhases() []struct{ phase, metric string } {
	var out []struct{ phase, metric string }
	for _, p := range comparedPhases {
		out = append(out, struct{ phase, metric string }{p, cwexp.PhaseMetric(p)})
	}
	return out
}

// route53Metrics are the latency metrics Route 53 health checks publish,
// by phase.
var route53Metrics = []struct{ phase, metric string }{
	{httptrace.PhaseConnect, cwexp.MetricConnectionTime},
	{httptrace.PhaseTLS, cwexp.MetricSSLHandshakeTime},
	{httptrace.PhaseTTFB, cwexp.MetricTimeToFirstByte},
}

// cwDimensionVar is a CloudWatch "dimension values" variable query.
func cwDimensionVar(region, namespace, metric, key string, filters map[string]any) dashboard.StringOrMap {
	q := map[string]any{
		"queryType":    "dimensionValues",
		"region":       region,
		"namespace":    namespace,
		"metricName":   metric,
		"dimensionKey": key,
		"refId":        cwVariableQueryRef,
	}
	if filters != nil {
		q["dimensionFilters"] = filters
	}
	return dashboard.StringOrMap{Map: q}
}

// agentDims selects the dashboard's target, roles and locations.
func agentDims(role string) map[string]string {
	return map[string]string{cwexp.DimTarget: "$" + varTarget, cwexp.DimRole: role, cwexp.DimLocation: "$" + varLocation}
}

// agentQ is a query of one of the agent's metrics.
func agentQ(id, metric, stat, role, label string) cwQ {
	return cwQ{
		id: id, region: "$" + varRegion, namespace: "$" + varNamespace, metric: metric,
		dimensions: agentDims(role), statistic: stat, label: label,
	}
}

// byRoleLabel is the dynamic label of an agent series.
const byRoleLabel = "${PROP('Dim." + cwexp.DimRole + "')} · ${PROP('Dim." + cwexp.DimLocation + "')}"

// CloudWatchOverview is the overview on a Grafana CloudWatch data source:
// the agent's metrics (namespace EdgeProbe by default, milliseconds) by
// role, overlaid with Route 53 health checks' ConnectionTime,
// SSLHandshakeTime and TimeToFirstByte.
func CloudWatchOverview() (GrafanaDashboard, error) {
	bd := newBoard("cloudwatch.json", UIDCloudWatch, "EdgeProbe / CloudWatch overview",
		"The agent's CloudWatch metrics, origin vs CDN per phase, held against Route 53 health checks' own latency figures (ConnectionTime, SSLHandshakeTime, TimeToFirstByte; us-east-1).",
		cwSource)
	bd.b.WithVariable(dashboard.NewQueryVariableBuilder(varRegion).
		Label("Region").
		Datasource(bd.ds.ref()).
		Query(dashboard.StringOrMap{Map: map[string]any{"queryType": "regions", "refId": cwVariableQueryRef}}).
		Refresh(dashboard.VariableRefreshOnDashboardLoad).
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: new("default")},
			Value: dashboard.StringOrArrayOfString{String: new("default")},
		}))
	bd.b.WithVariable(dashboard.NewTextBoxVariableBuilder(varNamespace).
		Label("Namespace").
		DefaultValue(dashboard.StringOrMap{String: new(cwexp.DefaultNamespace)}).
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: new(cwexp.DefaultNamespace)},
			Value: dashboard.StringOrArrayOfString{String: new(cwexp.DefaultNamespace)},
		}))
	region, ns := "$"+varRegion, "$"+varNamespace
	bd.queryVar(varTarget, "Target", cwDimensionVar(region, ns, cwexp.MetricTotalTime, cwexp.DimTarget, nil), "")
	bd.queryVar(varLocation, "Location", cwDimensionVar(region, ns, cwexp.MetricTotalTime, cwexp.DimLocation,
		map[string]any{cwexp.DimTarget: "$" + varTarget}), cwAll)
	bd.queryVar(varRole, "Role", cwDimensionVar(region, ns, cwexp.MetricTotalTime, cwexp.DimRole,
		map[string]any{cwexp.DimTarget: "$" + varTarget}), cwAll)
	bd.queryVar(varHealthCheck, "Route 53 health check", cwDimensionVar(route53Region, route53Namespace, cwexp.MetricTimeToFirstByte, dimHealthCheckID, nil), cwAll)

	bd.row("Agent vs Route 53 health checks")
	for _, m := range route53Metrics {
		qs := []cwQ{
			agentQ("agent", m.metric, "p50", "$"+varRole, "agent p50 "+byRoleLabel),
			{
				id: "route53", region: route53Region, namespace: route53Namespace, metric: m.metric,
				dimensions: map[string]string{dimHealthCheckID: "$" + varHealthCheck}, statistic: "Average",
				label: "Route 53 ${PROP('Dim." + dimHealthCheckID + "')}",
			},
		}
		desc := fmt.Sprintf("The agent's %s (median by role and location) beside the Route 53 health checks' own %s (average over their checker regions).", m.metric, m.metric)
		if m.metric == cwexp.MetricTimeToFirstByte {
			qs = append(qs, agentQ("agentcum", cwexp.MetricFirstByteTime, "p50", "$"+varRole, "agent FirstByteTime p50 "+byRoleLabel))
			desc += " Route 53 does not say where its TimeToFirstByte starts counting: the agent's TimeToFirstByte is server wait only (request written to first byte), its FirstByteTime is cumulative (start to first byte); see which one matches."
		}
		bd.add(bd.timeseries(fmt.Sprintf("%s: agent vs Route 53", phaseTitle(m.phase)), desc, "ms", third, tall, bd.cwTargets(qs)).Min(0))
	}

	bd.row("Latency per phase: origin vs CDN")
	for _, p := range cwPhases() {
		var qs []cwQ
		for i, q := range quantiles {
			qs = append(qs, agentQ(fmt.Sprintf("q%d", i), p.metric, quantileName(q), "$"+varRole, quantileName(q)+" "+byRoleLabel))
		}
		bd.add(bd.timeseries(fmt.Sprintf("%s: p50, p90, p99 by role", phaseTitle(p.phase)),
			fmt.Sprintf("Quantiles of the agent's %s (phase %s) by role and location.", p.metric, p.phase),
			"ms", third, tall, bd.cwTargets(qs)).Min(0))
	}

	bd.row("CDN − origin")
	var diff []cwQ
	for _, p := range cwPhases() {
		c, o := "cdn_"+p.phase, "origin_"+p.phase
		diff = append(diff,
			cwQ{id: c, region: region, namespace: ns, metric: p.metric, dimensions: agentDims(RoleCDN), statistic: "p50", hide: true},
			cwQ{id: o, region: region, namespace: ns, metric: p.metric, dimensions: agentDims(RoleOrigin), statistic: "p50", hide: true},
			cwQ{id: "diff_" + p.phase, region: region, expression: fmt.Sprintf("AVG(%s) - AVG(%s)", c, o), label: p.phase},
		)
	}
	bd.add(bd.timeseries("CDN − origin per phase, p50",
		"p50 of each phase through the CDN minus straight at the origin (averaged over the selected locations). Below zero: faster through the CDN.",
		"ms", full, tall, bd.cwTargets(diff)).
		Thresholds(thresholds("green", step{0, "red"})))

	bd.row("Success, cache and revalidation")
	bd.add(bd.timeseries("Success rate by role", "Average of the agent's Success metric (1 per successful probe, 0 per failed one). Error classes are in Prometheus only (edgeprobe_probes_total{result}).", "percentunit", quarter, tall,
		bd.cwTargets([]cwQ{agentQ("success", cwexp.MetricSuccess, "Average", "$"+varRole, byRoleLabel)})).
		Min(0).Max(1))
	bd.add(bd.timeseries("Probes by role", "Probes per period: the sample count of the Success metric.", "short", quarter, tall,
		bd.cwTargets([]cwQ{agentQ("probes", cwexp.MetricSuccess, "SampleCount", "$"+varRole, byRoleLabel)})).
		Min(0))
	bd.add(bd.timeseries("Cache hit ratio", "Average of the agent's CacheHit metric: 1 for hit and refresh_hit, 0 for miss, bypass and error.", "percentunit", quarter, tall,
		bd.cwTargets([]cwQ{agentQ("cachehit", cwexp.MetricCacheHit, "Average", "$"+varRole, byRoleLabel)})).
		Min(0).Max(1))
	bd.add(bd.timeseries("Revalidation TTFB (304 path)", "Server wait of the conditional request (If-Modified-Since / If-None-Match) after a 200.", "ms", quarter, tall,
		bd.cwTargets([]cwQ{
			agentQ("reval50", cwexp.MetricRevalidationTime, "p50", "$"+varRole, "p50 "+byRoleLabel),
			agentQ("reval90", cwexp.MetricRevalidationTime, "p90", "$"+varRole, "p90 "+byRoleLabel),
		})).
		Min(0))
	return bd.build()
}
