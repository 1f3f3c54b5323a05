package compare

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// WriteHTML writes the result as one self-contained HTML page: inline CSS
// and SVG, no script and nothing fetched, so it opens anywhere (a ticket
// attachment, an air-gapped laptop) and looks the same.
func WriteHTML(w io.Writer, r *Result) error {
	page := htmlPage{
		Title:  fmt.Sprintf("probe compare: %s vs %s", r.B.Label, r.A.Label),
		Method: methodLine(r), Multi: hasLocations(r), Warnings: r.Warnings,
		Confidence: fmt.Sprintf("%.0f%%", 100*r.Options.Confidence()),
		Waterfall:  template.HTML(waterfallSVG(r)), // built by svg.go, which escapes its text
	}
	for _, s := range []struct {
		name, color string
		info        SideInfo
	}{{"a", colorA, r.A}, {"b", colorB, r.B}} {
		page.Sides = append(page.Sides, htmlSide{Name: s.name, Color: template.CSS(s.color), Label: s.info.Label,
			Lines: sideDetails(s.info)}) // the colours are constants, safe as CSS
	}
	for _, phase := range httptrace.Phases {
		row, ok := r.Row(phase, AllLocations)
		if !ok {
			continue
		}
		da, _ := r.sideA.dist(AllLocations, phase)
		db, _ := r.sideB.dist(AllLocations, phase)
		f := fields(row)
		page.Charts = append(page.Charts, htmlChart{
			Phase: phase, Verdict: string(row.Verdict), VerdictText: verdictText(row.Verdict),
			Diff: f.diff, CI: f.ci, P: f.p, Delta: f.delta, Reason: row.Reason,
			SVG:    template.HTML(ecdfSVG(phase, da, db, row)), // built by svg.go, which escapes its text
			Beyond: beyondText(da, db, row),
		})
	}
	for _, row := range r.Rows {
		f := fields(row)
		hl := "–"
		if row.HasTest {
			hl = signedMS(row.HodgesLehmann)
		}
		ci90 := "–"
		if row.HasCI {
			ci90 = "[" + signedMS(row.CIP90.Low) + ", " + signedMS(row.CIP90.High) + "]"
		}
		first := len(page.Rows) == 0 || page.Rows[len(page.Rows)-1].Location != row.Location
		page.Rows = append(page.Rows, htmlRow{First: first, Location: row.Location, Phase: row.Phase, N: f.n, P50: f.p50, P90: f.p90,
			Diff: f.diff, CI: f.ci, CI90: ci90, HL: hl, P: f.p, Delta: f.delta,
			Verdict: string(row.Verdict), VerdictText: verdictText(row.Verdict), Reason: row.Reason})
	}
	for _, f := range r.Failures {
		page.Failures = append(page.Failures, htmlFailure{Location: f.Location, A: failureText(f.A), B: failureText(f.B), P: fmtP(f.PValue)})
	}
	if err := pageTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}

func sideDetails(s SideInfo) []string {
	var out []string
	if !s.Query.Window.IsZero() {
		out = append(out, "window "+s.Query.Window.String())
	}
	if m := matchText(s); m != "" {
		out = append(out, "selected "+m)
	}
	if !s.First.IsZero() {
		out = append(out, "samples "+fmtTime(s.First, "")+" → "+fmtTime(s.Last, ""))
	}
	out = append(out, fmt.Sprintf("%d probes, %d ok · %s", s.Probes, s.OK, strings.Join(s.Locations, ", ")))
	if s.Approximate {
		out = append(out, "histogram buckets: approximate")
	}
	return out
}

// beyondText says how many probes lie past the chart's cut-off.
func beyondText(a, b *Dist, row Row) string {
	cut := 1.1 * math.Max(msf(row.A.P99), msf(row.B.P99))
	count := func(d *Dist) int {
		n := 0
		if d != nil {
			for _, v := range d.Values {
				if msf(v) > cut {
					n++
				}
			}
		}
		return n
	}
	na, nb := count(a), count(b)
	if na+nb == 0 {
		return ""
	}
	return fmt.Sprintf("x axis cut at %.1f ms (1.1 × the larger p99): a has %d and b %d slower probes beyond", cut, na, nb)
}

type htmlPage struct {
	Title, Method, Confidence string
	Sides                     []htmlSide
	Warnings                  []Warning
	Waterfall                 template.HTML
	Charts                    []htmlChart
	Multi                     bool
	Rows                      []htmlRow
	Failures                  []htmlFailure
}

type htmlSide struct {
	Name, Label string
	Color       template.CSS
	Lines       []string
}

type htmlChart struct {
	Phase, Verdict, VerdictText, Diff, CI, P, Delta, Reason, Beyond string
	SVG                                                             template.HTML
}

type htmlRow struct {
	First                                                                                    bool // first row of its location
	Location, Phase, N, P50, P90, Diff, CI, CI90, HL, P, Delta, Verdict, VerdictText, Reason string
}

type htmlFailure struct{ Location, A, B, P string }

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --fg: #1f2933; --muted: #616e7c; --line: #e4e7eb; --bg: #ffffff; --panel: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 18px; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.side { background: var(--panel); border-radius: 8px; padding: 12px 16px; border-left: 5px solid; }
.side b { font-size: 15px; }
.side div { color: var(--muted); font-size: 13px; }
.method { color: var(--muted); font-size: 12.5px; margin-top: 12px; }
.verdicts { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 18px; }
.chip { border-radius: 8px; padding: 8px 12px; min-width: 150px; background: var(--panel); }
.chip .ph { font-weight: 600; }
.chip .d { font-variant-numeric: tabular-nums; font-size: 13px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; }
.faster { background: #e3f4e5; color: #1e7b34; }
.slower { background: #fde8e8; color: #b42318; }
.no_change { background: #eef0f3; color: #4b5563; }
.insufficient { background: #fff4d6; color: #8a5a00; }
.warnings { background: #fff8e6; border: 1px solid #f5d48a; border-radius: 8px; padding: 10px 16px; margin-top: 18px; }
.warnings ul { margin: 6px 0 0; padding-left: 20px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
figure { margin: 0; background: var(--panel); border-radius: 8px; padding: 12px 14px 10px; }
figcaption { font-size: 13px; color: var(--muted); }
figcaption .head { display: flex; justify-content: space-between; align-items: baseline; color: var(--fg); margin-bottom: 4px; }
figcaption .head b { font-size: 15px; }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: #dde1e6; stroke-width: 1; }
svg text { font-family: inherit; fill: #3e4c59; }
svg .tick { font-size: 11px; fill: #616e7c; }
svg .axis { font-size: 12px; }
svg .legend { font-size: 12px; }
svg .loc { font-size: 13px; font-weight: 600; }
svg .value { font-size: 12px; font-variant-numeric: tabular-nums; }
.note { color: var(--muted); font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--panel); font-weight: 600; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
tbody tr:nth-child(even) { background: #fbfbfc; }
tr.group td { border-top: 2px solid #cbd2d9; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p class="sub">b relative to a, per phase{{if .Multi}} and location{{end}}: is b faster, and is the difference real?</p>
<section class="sides">
{{range .Sides}}<div class="side" style="border-color: {{.Color}}"><b>{{.Name}} · {{.Label}}</b>{{range .Lines}}<div>{{.}}</div>{{end}}</div>
{{end}}</section>
<p class="method">{{.Method}}</p>
<section class="verdicts">
{{range .Charts}}<div class="chip"><span class="ph">{{.Phase}}</span> <span class="badge {{.Verdict}}">{{.VerdictText}}</span><div class="d">Δp50 {{.Diff}} ms</div></div>
{{end}}</section>
{{if .Warnings}}<section class="warnings"><b>Warnings ({{len .Warnings}})</b><ul>
{{range .Warnings}}<li>{{.Message}}</li>
{{end}}</ul></section>{{end}}

<h2>Where the time goes: each phase's median, stacked</h2>
{{.Waterfall}}
<p class="note">Each segment is one phase's median over successful probes; a bar is the sum of those medians (close to, but not the same as, the median total).</p>

<h2>Distributions over all locations</h2>
<div class="grid2">
{{range .Charts}}<figure>
<figcaption><div class="head"><b>{{.Phase}}</b><span class="badge {{.Verdict}}">{{.VerdictText}}</span></div>
Δp50 {{.Diff}} ms · {{$.Confidence}} CI {{.CI}} ms · p {{.P}} · δ {{.Delta}}</figcaption>
{{.SVG}}
<figcaption>{{.Reason}}{{if .Beyond}}<br>{{.Beyond}}{{end}}</figcaption>
</figure>
{{end}}</div>

<h2>All rows</h2>
<table>
<thead><tr>{{if .Multi}}<th class="l">location</th>{{end}}<th class="l">phase</th><th>n a/b</th><th>p50 a → b ms</th><th>p90 a → b ms</th><th>Δp50 ms</th><th>{{.Confidence}} CI Δp50</th><th>{{.Confidence}} CI Δp90</th><th>HL shift</th><th>p</th><th>δ</th><th class="l">verdict</th></tr></thead>
<tbody>
{{range .Rows}}<tr title="{{.Reason}}"{{if and $.Multi .First}} class="group"{{end}}>{{if $.Multi}}<td class="l">{{.Location}}</td>{{end}}<td class="l">{{.Phase}}</td><td>{{.N}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.Diff}}</td><td>{{.CI}}</td><td>{{.CI90}}</td><td>{{.HL}}</td><td>{{.P}}</td><td>{{.Delta}}</td><td class="l"><span class="badge {{.Verdict}}">{{.VerdictText}}</span></td></tr>
{{end}}</tbody>
</table>

{{if .Failures}}<h2>Failures</h2>
<table>
<thead><tr><th class="l">location</th><th class="l">a</th><th class="l">b</th><th>Fisher's exact p</th></tr></thead>
<tbody>
{{range .Failures}}<tr><td class="l">{{.Location}}</td><td class="l">{{.A}}</td><td class="l">{{.B}}</td><td>{{.P}}</td></tr>
{{end}}</tbody>
</table>{{end}}
<p class="note">Generated by edgeprobe's probe compare. Durations in milliseconds; Δ = b − a, negative when b is faster.</p>
</main>
</body>
</html>
`))
