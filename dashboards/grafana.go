package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	cwq "github.com/grafana/grafana-foundation-sdk/go/cloudwatch"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Tag is on every dashboard; the dashboards link to each other by it.
const Tag = "edgeprobe"

// minGrafana is the Grafana version the dashboards are written for
// (__requires); the JSON is of the SDK's schema version.
const minGrafana = "11.0.0"

// dataSource is the kind of Grafana data source a dashboard reads.
type dataSource struct {
	pluginID, pluginName string
	input                string // the __inputs name an import asks to fill in
}

var (
	promSource = dataSource{pluginID: "prometheus", pluginName: "Prometheus", input: "DS_PROMETHEUS"}
	cwSource   = dataSource{pluginID: "cloudwatch", pluginName: "CloudWatch", input: "DS_CLOUDWATCH"}
)

// ref is the data source of every panel, query and variable: the
// dashboard's data source variable.
func (ds dataSource) ref() common.DataSourceRef {
	return common.DataSourceRef{Type: new(ds.pluginID), Uid: new(dsVariableValue)}
}

// GrafanaDashboard is one generated Grafana dashboard.
type GrafanaDashboard struct {
	// File is the file name under grafana/.
	File      string
	Dashboard dashboard.Dashboard
	source    dataSource
}

// board builds a dashboard: the SDK builder and the data source it reads.
type board struct {
	b    *dashboard.DashboardBuilder
	ds   dataSource
	file string
}

// newBoard starts a dashboard with the data source variable first. Its
// current value is the __inputs placeholder, which an import replaces with
// the data source picked; a provisioned copy (no import) falls back to the
// default data source of the kind.
func newBoard(file, uid, title, description string, ds dataSource) *board {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag, ds.pluginID}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("EdgeProbe dashboards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder(varDatasource).
			Label("Data source").
			Type(ds.pluginID).
			Current(dashboard.VariableOption{
				Text:  dashboard.StringOrArrayOfString{String: new("${" + ds.input + "}")},
				Value: dashboard.StringOrArrayOfString{String: new("${" + ds.input + "}")},
			}))
	return &board{b: b, ds: ds, file: file}
}

// build finishes the dashboard: panel ids are numbered in order, rows
// included, so they are unique and stable.
func (bd *board) build() (GrafanaDashboard, error) {
	d, err := bd.b.Build()
	if err != nil {
		return GrafanaDashboard{}, fmt.Errorf("dashboard %s: %w", bd.file, err)
	}
	id := uint32(0)
	for _, p := range d.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = new(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
			for i := range p.RowPanel.Panels {
				id++
				p.RowPanel.Panels[i].Id = new(id)
			}
		}
	}
	// The SDK places annotation toggles in Grafana 12's controls menu;
	// without a placement they show above the panels, in every version.
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	return GrafanaDashboard{File: bd.file, Dashboard: d, source: bd.ds}, nil
}

func (bd *board) row(title string) { bd.b.WithRow(dashboard.NewRowBuilder(title)) }

func (bd *board) add(p cog.Builder[dashboard.Panel]) { bd.b.WithPanel(p) }

// queryVar is a query variable of the dashboard's data source; allValue
// (".*" for PromQL regex matchers, "*" for CloudWatch's wildcard) makes it
// multi-valued with "All".
func (bd *board) queryVar(name, label string, query dashboard.StringOrMap, allValue string) {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(bd.ds.ref()).
		Query(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if allValue != "" {
		v = v.Multi(true).IncludeAll(true).AllValue(allValue).Current(allOption())
	}
	bd.b.WithVariable(v)
}

func allOption() dashboard.VariableOption {
	return dashboard.VariableOption{
		Selected: new(true),
		Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
		Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
	}
}

// customVar is a variable of fixed values; the first is the default.
func (bd *board) customVar(name, label string, values []string) {
	opts := make([]dashboard.VariableOption, len(values))
	for i, v := range values {
		opts[i] = dashboard.VariableOption{
			Selected: new(i == 0),
			Text:     dashboard.StringOrArrayOfString{String: new(v)},
			Value:    dashboard.StringOrArrayOfString{String: new(v)},
		}
	}
	bd.b.WithVariable(dashboard.NewCustomVariableBuilder(name).
		Label(label).
		Values(dashboard.StringOrMap{String: new(joinComma(values))}).
		Current(opts[0]).
		Options(opts))
}

func joinComma(values []string) string {
	var b bytes.Buffer
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v)
	}
	return b.String()
}

// promQ is one Prometheus query of a panel.
type promQ struct {
	expr, legend string
	instant      bool // an instant query (stat, table, bar gauge) instead of a range
	table        bool // format table
	heatmap      bool // format heatmap (classic buckets, le)
}

// targets turns the queries into the SDK's, with refIds A, B, ...
func (bd *board) promTargets(qs []promQ) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		b := prometheus.NewDataqueryBuilder().
			Datasource(bd.ds.ref()).
			RefId(refID(i)).
			Expr(q.expr).
			EditorMode(prometheus.QueryEditorModeCode)
		if q.legend != "" {
			b = b.LegendFormat(q.legend)
		}
		if q.instant {
			b = b.Instant()
		} else {
			b = b.Range()
		}
		switch {
		case q.table:
			b = b.Format(prometheus.PromQueryFormatTable)
		case q.heatmap:
			b = b.Format(prometheus.PromQueryFormatHeatmap)
		default:
			b = b.Format(prometheus.PromQueryFormatTimeSeries)
		}
		out[i] = b
	}
	return out
}

// cwQ is one CloudWatch metrics query of a panel: a metric with a
// statistic (the search builder), or a math expression over the others.
type cwQ struct {
	id         string // for math; lowercase first
	region     string
	namespace  string
	metric     string
	dimensions map[string]string
	statistic  string
	label      string
	expression string // metric math instead of a metric
	hide       bool
}

func (bd *board) cwTargets(qs []cwQ) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		b := cwq.NewMetricsQueryBuilder().
			Datasource(bd.ds.ref()).
			RefId(refID(i)).
			QueryMode(cwq.QueryModeMetrics).
			MetricQueryType(cwq.MetricQueryTypeSearch).
			Region(q.region).
			Period("auto").
			Id(q.id)
		if q.label != "" {
			b = b.Label(q.label)
		}
		if q.hide {
			b = b.Hide(true)
		}
		if q.expression != "" {
			b = b.MetricEditorMode(cwq.MetricEditorModeCode).Expression(q.expression)
		} else {
			dims := cwq.Dimensions{}
			for k, v := range q.dimensions {
				dims[k] = cwq.StringOrArrayOfString{String: new(v)}
			}
			b = b.MetricEditorMode(cwq.MetricEditorModeBuilder).
				Namespace(q.namespace).
				MetricName(q.metric).
				Dimensions(dims).
				MatchExact(true).
				Statistic(q.statistic)
		}
		out[i] = cwq.NewMetricsQueryOrLogsQueryOrAnnotationQueryBuilder().MetricsQuery(b)
	}
	return out
}

func refID(i int) string { return string(rune('A' + i)) }

// Panel sizes on Grafana's 24-column grid.
const (
	full    = 24
	half    = 12
	third   = 8
	quarter = 6
	tall    = 8
	short   = 5
)

func legendOpts() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		ShowLegend(true).
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementBottom).
		Calcs([]string{"mean", "lastNotNull"})
}

func tooltipOpts() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

// panelBuilder is what every panel builder of the SDK has: the calls
// panel makes.
type panelBuilder[B any] interface {
	Title(string) B
	Description(string) B
	Datasource(common.DataSourceRef) B
	Unit(string) B
	Span(uint32) B
	Height(uint32) B
	Targets([]cog.Builder[variants.Dataquery]) B
}

// panel sets what every panel has: title, description, the dashboard's
// data source, unit, size and queries.
func panel[B panelBuilder[B]](bd *board, b B, title, description, unit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) B {
	return b.
		Title(title).
		Description(description).
		Datasource(bd.ds.ref()).
		Unit(unit).
		Span(w).Height(h).
		Targets(targets)
}

// timeseries is a graph over time.
func (bd *board) timeseries(title, description, unit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return panel(bd, timeseries.NewPanelBuilder(), title, description, unit, w, h, targets).
		Legend(legendOpts()).
		Tooltip(tooltipOpts()).
		LineWidth(1).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		SpanNulls(common.BoolOrFloat64{Bool: new(false)})
}

// bars is a time series drawn as stacked bars (counts per interval).
func (bd *board) bars(title, description, unit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return bd.timeseries(title, description, unit, w, h, targets).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
}

// stat is one big number per series.
func (bd *board) stat(title, description, unit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) *stat.PanelBuilder {
	return panel(bd, stat.NewPanelBuilder(), title, description, unit, w, h, targets).
		GraphMode(common.BigValueGraphModeNone).
		ColorMode(common.BigValueColorModeValue).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
}

// barGauge is one bar per series (a ranking).
func (bd *board) barGauge(title, description, unit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) *bargauge.PanelBuilder {
	return panel(bd, bargauge.NewPanelBuilder(), title, description, unit, w, h, targets).
		DisplayMode(common.BarGaugeDisplayModeGradient).
		Orientation(common.VizOrientationHorizontal).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
}

// table is a table of instant values.
func (bd *board) table(title, description, unit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) *table.PanelBuilder {
	return panel(bd, table.NewPanelBuilder(), title, description, unit, w, h, targets)
}

// heatmap shows a histogram's buckets over time (classic buckets with le,
// or a native histogram), not recalculated by Grafana.
func (bd *board) heatmap(title, description, yUnit string, w, h uint32, targets []cog.Builder[variants.Dataquery]) *heatmap.PanelBuilder {
	// The cells' unit: probes per second in the bucket.
	return panel(bd, heatmap.NewPanelBuilder(), title, description, "short", w, h, targets).
		Calculate(false).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit(yUnit)).
		RowsFrame(heatmap.NewRowsHeatmapOptionsBuilder().Layout(common.HeatmapCellLayoutLe)).
		Color(heatmap.NewHeatmapColorOptionsBuilder().
			Mode(heatmap.HeatmapColorModeScheme).
			Scheme("Spectral").
			Scale(heatmap.HeatmapColorScaleExponential).
			Exponent(0.5).
			Steps(64)).
		Tooltip(heatmap.NewHeatmapTooltipBuilder().Mode(common.TooltipDisplayModeSingle).YHistogram(true)).
		ShowLegend()
}

// step is a threshold: from value on, colour.
type step struct {
	value float64
	color string
}

// thresholds are absolute: base colour, then the steps.
func thresholds(base string, steps ...step) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Color: base}}
	for _, s := range steps {
		ts = append(ts, dashboard.Threshold{Value: new(s.value), Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

// transform is a Grafana transformation.
func transform(id string, options map[string]any) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: id, Options: options}
}

// input and require are the import-time header of a dashboard JSON.
type input struct {
	Name        string `json:"name"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Type        string `json:"type"`
	PluginID    string `json:"pluginId"`
	PluginName  string `json:"pluginName"`
}

type require struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

var panelNames = map[string]string{
	"timeseries": "Time series", "stat": "Stat", "table": "Table", "heatmap": "Heatmap", "bargauge": "Bar gauge",
}

// JSON is the dashboard as Grafana's import takes it: __inputs (the data
// source to pick), __requires, then the dashboard model; indented, and the
// same bytes for the same model.
func (g GrafanaDashboard) JSON() ([]byte, error) {
	head := struct {
		Inputs   []input   `json:"__inputs"`
		Requires []require `json:"__requires"`
	}{
		Inputs: []input{{
			Name: g.source.input, Label: g.source.pluginName,
			Description: "The " + g.source.pluginName + " data source with edgeprobe's metrics",
			Type:        "datasource", PluginID: g.source.pluginID, PluginName: g.source.pluginName,
		}},
		Requires: []require{
			{Type: "grafana", ID: "grafana", Name: "Grafana", Version: minGrafana},
			{Type: "datasource", ID: g.source.pluginID, Name: g.source.pluginName, Version: "1.0.0"},
		},
	}
	var types []string
	for _, p := range g.Dashboard.Panels {
		if p.Panel != nil && !slices.Contains(types, p.Panel.Type) {
			types = append(types, p.Panel.Type)
		}
	}
	slices.Sort(types)
	for _, t := range types {
		head.Requires = append(head.Requires, require{Type: "panel", ID: t, Name: panelNames[t], Version: ""})
	}
	h, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(g.Dashboard)
	if err != nil {
		return nil, err
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("dashboard %s: unexpected JSON", g.File)
	}
	joined := append(append(h[:len(h)-1:len(h)-1], ','), body[1:]...)
	var out bytes.Buffer
	if err := json.Indent(&out, unescapeHTML(joined), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// unescapeHTML undoes encoding/json's escaping of <, > and & in strings
// (\u003c, \u003e, \u0026), so that PromQL comparisons read as written.
// The result is the same JSON value.
func unescapeHTML(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c":
				out, i = append(out, '<'), i+5
				continue
			case "003e":
				out, i = append(out, '>'), i+5
				continue
			case "0026":
				out, i = append(out, '&'), i+5
				continue
			}
		}
		out, i = append(out, b[i], b[i+1]), i+1
	}
	return out
}
