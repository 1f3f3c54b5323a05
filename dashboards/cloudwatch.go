package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
)

// The CloudWatch dashboard: CloudWatch's own dashboard body (PutDashboard's
// DashboardBody), a small typed model of its documented structure.

// CWDashboard is a CloudWatch dashboard body.
type CWDashboard struct {
	Start          string     `json:"start,omitempty"`
	PeriodOverride string     `json:"periodOverride,omitempty"`
	Widgets        []CWWidget `json:"widgets"`
}

// CWWidget is one widget on CloudWatch's 24-column grid.
type CWWidget struct {
	Type       string `json:"type"` // "metric" or "text"
	X          int    `json:"x"`
	Y          int    `json:"y"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Properties any    `json:"properties"` // *CWMetricProps or *CWTextProps
}

// CWTextProps are a text widget's properties.
type CWTextProps struct {
	Markdown string `json:"markdown"`
}

// CWMetricProps are a metric widget's properties.
type CWMetricProps struct {
	Title       string         `json:"title"`
	View        string         `json:"view"` // timeSeries
	Stacked     bool           `json:"stacked"`
	Region      string         `json:"region"`
	Period      int            `json:"period"`
	Stat        string         `json:"stat"`
	Metrics     [][]any        `json:"metrics"` // each: [CWExpression] here
	YAxis       *CWYAxis       `json:"yAxis,omitempty"`
	Annotations *CWAnnotations `json:"annotations,omitempty"`
	Legend      *CWLegend      `json:"legend,omitempty"`
}

// CWExpression is a metric math or search expression of a metrics array.
type CWExpression struct {
	Expression string `json:"expression"`
	ID         string `json:"id"`
	Label      string `json:"label"`
	Region     string `json:"region,omitempty"` // another region than the widget's
}

// CWYAxis bounds and labels the left axis.
type CWYAxis struct {
	Left CWAxis `json:"left"`
}

// CWAxis is one axis.
type CWAxis struct {
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	Label     string   `json:"label,omitempty"`
	ShowUnits bool     `json:"showUnits"`
}

// CWAnnotations are horizontal lines.
type CWAnnotations struct {
	Horizontal []CWHorizontal `json:"horizontal"`
}

// CWHorizontal is one horizontal annotation.
type CWHorizontal struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
}

// CWLegend places the legend.
type CWLegend struct {
	Position string `json:"position"`
}

// CloudWatch dashboard defaults.
const (
	// DefaultCWDashboardName is the dashboard `probe dashboards install
	// --cloudwatch` puts.
	DefaultCWDashboardName = "EdgeProbe-Overview"
	// DefaultCWRegion is the region of the exported body's widgets.
	DefaultCWRegion = "us-east-1"
	cwPeriod        = 300 // seconds; a multiple of 60
)

// agentDimensions is the agent's dimension set without an address.
var agentDimensions = []string{cwexp.DimLocation, cwexp.DimRole, cwexp.DimTarget}

var plainName = regexp.MustCompile(`^[A-Za-z0-9/]+$`)

// schemaName quotes a namespace or dimension name for a search's schema
// when it is not plainly alphanumeric.
func schemaName(s string) string {
	if plainName.MatchString(s) {
		return s
	}
	return `"` + s + `"`
}

// search writes SEARCH('{namespace,dims} MetricName="m" terms', 'stat', period).
func search(namespace string, dims []string, metric, stat string, terms ...string) string {
	schema := make([]string, 0, len(dims)+1)
	schema = append(schema, schemaName(namespace))
	for _, d := range dims {
		schema = append(schema, schemaName(d))
	}
	q := fmt.Sprintf(`{%s} MetricName="%s"`, strings.Join(schema, ","), metric)
	for _, t := range terms {
		q += " " + t
	}
	return fmt.Sprintf("SEARCH('%s', '%s', %d)", q, stat, cwPeriod)
}

// roleTerm restricts a search to one role.
func roleTerm(role string) string { return fmt.Sprintf(`%s="%s"`, cwexp.DimRole, role) }

// agentLabel names a search's series by target, role and location.
const agentLabel = "${PROP('Dim." + cwexp.DimTarget + "')} ${PROP('Dim." + cwexp.DimRole + "')} ${PROP('Dim." + cwexp.DimLocation + "')}"

func ptr(f float64) *float64 { return &f }

// CloudWatchBody is the overview as a CloudWatch dashboard: the agent's
// metrics in namespace (its exporters.cloudwatch.namespace) and region,
// found by search so every target, role and location shows up, with Route
// 53 health checks' latency (us-east-1) overlaid.
func CloudWatchBody(namespace, region string) (*CWDashboard, error) {
	if namespace == "" || region == "" {
		return nil, fmt.Errorf("cloudwatch dashboard: namespace and region are required")
	}
	d := &CWDashboard{Start: "-PT6H", PeriodOverride: "inherit"}
	x, y, rowH := 0, 0, 0
	place := func(w, h int, typ string, props any) {
		if x+w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		d.Widgets = append(d.Widgets, CWWidget{Type: typ, X: x, Y: y, Width: w, Height: h, Properties: props})
		x += w
		rowH = max(rowH, h)
	}
	ms := &CWAxis{Min: ptr(0), Label: "ms", ShowUnits: false}
	metric := func(title string, exprs []CWExpression, axis *CWAxis) *CWMetricProps {
		p := &CWMetricProps{
			Title: title, View: "timeSeries", Region: region, Period: cwPeriod, Stat: "Average",
			Legend: &CWLegend{Position: "bottom"},
		}
		for _, e := range exprs {
			p.Metrics = append(p.Metrics, []any{e})
		}
		if axis != nil {
			p.YAxis = &CWYAxis{Left: *axis}
		}
		return p
	}

	place(24, 2, "text", &CWTextProps{Markdown: "# EdgeProbe overview\n" +
		"Where the time of a request goes, straight at the origin (role `origin`) and through the CDN (role `cdn`), per phase, in milliseconds; " +
		"namespace `" + namespace + "`, one line per target, role and location. Route 53 health checks' own figures are from `" + route53Namespace + "` in " + route53Region + ". " +
		"Generated by `probe dashboards`."})

	for _, p := range cwPhases() {
		place(8, 6, "metric", metric(fmt.Sprintf("%s (%s): p50 and p90", phaseTitle(p.phase), p.metric), []CWExpression{
			{Expression: search(namespace, agentDimensions, p.metric, "p50"), ID: "p50", Label: "p50 " + agentLabel},
			{Expression: search(namespace, agentDimensions, p.metric, "p90"), ID: "p90", Label: "p90 " + agentLabel},
		}, ms))
	}

	var diff []CWExpression
	for _, p := range cwPhases() {
		diff = append(diff, CWExpression{
			Expression: fmt.Sprintf("AVG(%s) - AVG(%s)",
				search(namespace, agentDimensions, p.metric, "p50", roleTerm(RoleCDN)),
				search(namespace, agentDimensions, p.metric, "p50", roleTerm(RoleOrigin))),
			ID: "d" + strings.ReplaceAll(p.phase, "_", ""), Label: p.phase,
		})
	}
	dp := metric("CDN − origin per phase, p50 (below zero: the CDN is faster)", diff, &CWAxis{Label: "ms", ShowUnits: false})
	dp.Annotations = &CWAnnotations{Horizontal: []CWHorizontal{{Label: "no difference", Value: 0}}}
	place(24, 6, "metric", dp)

	for _, m := range route53Metrics {
		exprs := []CWExpression{
			{Expression: search(namespace, agentDimensions, m.metric, "p50"), ID: "agent", Label: "agent p50 " + agentLabel},
			{Expression: search(route53Namespace, []string{dimHealthCheckID}, m.metric, "Average"), ID: "route53",
				Label: "Route 53 ${PROP('Dim." + dimHealthCheckID + "')}", Region: route53Region},
		}
		if m.metric == cwexp.MetricTimeToFirstByte {
			exprs = append(exprs, CWExpression{Expression: search(namespace, agentDimensions, cwexp.MetricFirstByteTime, "p50"), ID: "agentcum",
				Label: "agent FirstByteTime p50 " + agentLabel})
		}
		place(8, 6, "metric", metric(fmt.Sprintf("%s: agent vs Route 53 health checks", m.metric), exprs, ms))
	}

	ratioAxis := &CWAxis{Min: ptr(0), Max: ptr(1), ShowUnits: false}
	place(8, 6, "metric", metric("Success rate (Success, average)", []CWExpression{
		{Expression: search(namespace, agentDimensions, cwexp.MetricSuccess, "Average"), ID: "success", Label: agentLabel},
	}, ratioAxis))
	place(8, 6, "metric", metric("Cache hit ratio (CacheHit, average)", []CWExpression{
		{Expression: search(namespace, agentDimensions, cwexp.MetricCacheHit, "Average"), ID: "cachehit", Label: agentLabel},
	}, ratioAxis))
	place(8, 6, "metric", metric("Revalidation TTFB, 304 path (RevalidationTime): p50", []CWExpression{
		{Expression: search(namespace, agentDimensions, cwexp.MetricRevalidationTime, "p50"), ID: "reval", Label: "p50 " + agentLabel},
	}, ms))
	return d, nil
}

// JSON is the body as PutDashboard takes it (indented; the service keeps
// it as sent), with < > & unescaped.
func (d *CWDashboard) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
