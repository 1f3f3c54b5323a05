package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// phaseChoices are the values of the phase variable, the default first.
var phaseChoices = []string{
	httptrace.PhaseTTFB, httptrace.PhaseTotal, httptrace.PhaseTLS, httptrace.PhaseConnect,
	httptrace.PhaseDNS, httptrace.PhaseTransfer, httptrace.PhaseFirstByte,
}

// whereLabel joins location and role into one label, the row of the
// location × phase table.
const whereLabel = "where"

// popOf maps each target, role and location to the CDN POP that served most
// of its probes over window (the POP is a label of the cache results only),
// as a 1 to multiply a per-location figure with: group_left(pop) then
// carries the POP over.
func popOf(window string) string {
	by := []string{LabelTarget, LabelRole, LabelLocation}
	counts := sumBy(append(append([]string(nil), by...), LabelPOP),
		increase(sel(MetricCacheResults, jobVars(ne(LabelPOP, ""))...), window))
	return "0 * topk by (" + strings.Join(by, ", ") + ") (1, " + counts + ") + 1"
}

// Locations compares the probes' locations: a location × phase table of
// medians, the slowest locations, and the CDN's POPs.
func Locations() (GrafanaDashboard, error) {
	bd := newBoard("locations.json", UIDLocations, "EdgeProbe / Locations",
		"Where the probes run: a location × phase table of medians, the slowest locations for a phase, and the CDN edge locations (POPs) that served them.",
		promSource)
	bd.promJobVars()
	bd.customVar(varPhase, "Phase", phaseChoices)
	bd.reloadAnnotation()
	phaseVar := eq(LabelPhase, "$"+varPhase)

	bd.row("Locations × phases")
	order := map[string]any{whereLabel + `\` + LabelPhase: 0}
	for i, p := range comparedPhases {
		order[p] = i + 1
	}
	bd.add(bd.table("Median per location and phase",
		"p50 of each phase over the time range, one row per location and role. Cells are coloured by value: the hot spots are the slow phases of slow locations.",
		"s", full, tall, bd.promTargets([]promQ{{
			expr: fmt.Sprintf("label_join(%s, %q, \" · \", %q, %q)",
				quantile(0.5, MetricPhaseDuration, []string{LabelLocation, LabelRole, LabelPhase}, rangeInterval, jobVars(oneOf(LabelPhase, comparedPhases...))...),
				whereLabel, LabelLocation, LabelRole),
			instant: true, table: true,
		}})).
		WithTransformation(transform("groupingToMatrix", map[string]any{
			"columnField": LabelPhase, "rowField": whereLabel, "valueField": "Value", "emptyValue": "null",
		})).
		WithTransformation(transform("organize", map[string]any{"indexByName": order})).
		CellOptions(common.TableCellOptions{TableColoredBackgroundCellOptions: &common.TableColoredBackgroundCellOptions{
			Type: common.TableCellDisplayModeColorBackground,
			Mode: new(common.TableCellBackgroundDisplayModeGradient),
		}}).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdContinuousGrYlRd)))
	bd.add(bd.barGauge("Slowest locations: p90 of $phase",
		"The ten location and role pairs with the highest p90 of the chosen phase over the time range.",
		"s", half, tall, bd.promTargets([]promQ{{
			expr: "sort_desc(topk(10, " +
				quantile(0.9, MetricPhaseDuration, []string{LabelLocation, LabelRole}, rangeInterval, jobVars(phaseVar)...) + "))",
			legend: "{{location}} · {{role}}", instant: true,
		}})).
		Thresholds(thresholds("green", step{0.2, "orange"}, step{0.5, "red"})))
	bd.add(bd.timeseries("p50 of $phase per location", "Median of the chosen phase over time, by location and role.", "s", half, tall,
		bd.promTargets([]promQ{{
			expr:   quantile(0.5, MetricPhaseDuration, []string{LabelLocation, LabelRole}, rateInterval, jobVars(phaseVar)...),
			legend: "{{location}} · {{role}}",
		}})).
		Min(0))
	bd.add(bd.timeseries("CDN − origin p50 of $phase per location",
		"Median of the chosen phase through the CDN minus straight at the origin, per location. Below zero: the CDN is faster there.",
		"s", half, tall, bd.promTargets([]promQ{{
			expr: quantile(0.5, MetricPhaseDuration, []string{LabelLocation}, rateInterval, withRole(jobVars(phaseVar), RoleCDN)...) + " - " +
				quantile(0.5, MetricPhaseDuration, []string{LabelLocation}, rateInterval, withRole(jobVars(phaseVar), RoleOrigin)...),
			legend: "{{location}}",
		}})).
		Thresholds(thresholds("green", step{0, "red"})))
	bd.add(bd.timeseries("Success rate per location", "Share of probes that succeeded, by location and role.", "percentunit", half, tall,
		bd.promTargets([]promQ{{
			expr: ratio(
				sumBy([]string{LabelLocation, LabelRole}, rate(sel(MetricProbes, jobVars(eq(LabelResult, ResultSuccess))...), rateInterval)),
				sumBy([]string{LabelLocation, LabelRole}, rate(sel(MetricProbes, jobVars()...), rateInterval))),
			legend: "{{location}} · {{role}}",
		}})).
		Min(0).Max(1))

	bd.row("CDN edge locations (POPs)")
	bd.add(bd.timeseries("p50 of $phase per POP",
		"Median of the chosen phase per location, labelled with the POP that served most of that location's probes in the interval (the POP comes from the cache results, X-Amz-Cf-Pop and the like).",
		"s", half, tall, bd.promTargets([]promQ{{
			expr: quantile(0.5, MetricPhaseDuration, []string{LabelTarget, LabelRole, LabelLocation}, rateInterval, jobVars(phaseVar)...) +
				" * on (" + strings.Join([]string{LabelTarget, LabelRole, LabelLocation}, ", ") + ") group_left (" + LabelPOP + ") (" + popOf(rateInterval) + ")",
			legend: "{{pop}} ({{location}} · {{role}})",
		}})).
		Min(0))
	bd.add(bd.timeseries("Cache hit ratio per POP", "hit and refresh_hit among the responses with a known cache result, by POP.", "percentunit", half, tall,
		bd.promTargets([]promQ{{
			expr: ratio(
				sumBy([]string{LabelPOP}, rate(sel(MetricCacheResults, jobVars(ne(LabelPOP, ""), oneOf(LabelCache, cacheHits...))...), rateInterval)),
				sumBy([]string{LabelPOP}, rate(sel(MetricCacheResults, jobVars(ne(LabelPOP, ""), oneOf(LabelCache, cacheKnown...))...), rateInterval))),
			legend: "{{pop}}",
		}})).
		Min(0).Max(1))
	bd.add(bd.table("Cache results per POP", "Responses over the time range by POP (rows) and cache result (columns).", "short", half, tall,
		bd.promTargets([]promQ{{
			expr:    sumBy([]string{LabelPOP, LabelCache}, increase(sel(MetricCacheResults, jobVars(ne(LabelPOP, ""))...), rangeInterval)),
			instant: true, table: true,
		}})).
		Decimals(0).
		WithTransformation(transform("groupingToMatrix", map[string]any{
			"columnField": LabelCache, "rowField": LabelPOP, "valueField": "Value", "emptyValue": "zero",
		})))
	bd.add(bd.bars("Cache results per POP over time", "Responses per second by POP and cache result.", "cps", half, tall,
		bd.promTargets([]promQ{{
			expr:   sumBy([]string{LabelPOP, LabelCache}, rate(sel(MetricCacheResults, jobVars(ne(LabelPOP, ""))...), rateInterval)),
			legend: "{{pop}}: {{cache}}",
		}})))
	return bd.build()
}
