package compare

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// Colours of the report: one per side, one per waterfall phase.
const (
	colorA = "#2f6fba"
	colorB = "#e8772e"
)

var phaseColors = map[string]string{
	httptrace.PhaseDNS:      "#76c7c0",
	httptrace.PhaseConnect:  "#f2c14e",
	httptrace.PhaseTLS:      "#a77fc7",
	httptrace.PhaseTTFB:     "#5aab61",
	httptrace.PhaseTransfer: "#7c9fd9",
}

// waterfallPhases are the phases that add up to a probe's time, in order.
var waterfallPhases = []string{httptrace.PhaseDNS, httptrace.PhaseConnect, httptrace.PhaseTLS, httptrace.PhaseTTFB, httptrace.PhaseTransfer}

// svgBuf writes SVG; text goes through esc.
type svgBuf struct{ strings.Builder }

func (s *svgBuf) f(format string, args ...any) { fmt.Fprintf(&s.Builder, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// niceTicks covers [lo, hi] with about n ticks at 1, 2, 2.5 or 5 × 10^k
// and returns the axis range they span.
func niceTicks(lo, hi float64, n int) (ticks []float64, axisLo, axisHi float64) {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	axisLo, axisHi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	for i := 0; ; i++ {
		v := axisLo + float64(i)*step
		if v > axisHi+step/1e6 {
			break
		}
		ticks = append(ticks, v)
	}
	return ticks, axisLo, axisHi
}

// tickLabel prints a tick with as many decimals as the step needs.
func tickLabel(v, step float64) string {
	d := 0
	for d < 4 && math.Abs(step*math.Pow(10, float64(d))-math.Round(step*math.Pow(10, float64(d)))) > 1e-9 {
		d++
	}
	return fmt.Sprintf("%.*f", d, v)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ecdfPoints are (ms, fraction ≤) points of a distribution's ECDF, at most
// about maxPoints of them; step is false for a histogram, whose points are
// bucket bounds to join with straight lines.
func ecdfPoints(d *Dist, maxPoints int) (pts [][2]float64, step bool) {
	if d.N() == 0 {
		return nil, true
	}
	if d.Hist != nil {
		total, cum := d.Hist.Count(), 0.0
		pts = append(pts, [2]float64{0, 0})
		for _, b := range d.Hist.Buckets {
			cum += b.Count
			if math.IsInf(b.Le, 1) {
				break
			}
			pts = append(pts, [2]float64{b.Le * 1000, cum / total})
		}
		return pts, false
	}
	v := slices.Sorted(slices.Values(d.Values))
	n := len(v)
	stride := max(1, n/maxPoints)
	for i := stride - 1; i < n; i += stride {
		pts = append(pts, [2]float64{msf(v[i]), float64(i+1) / float64(n)})
	}
	if pts[len(pts)-1][1] < 1 {
		pts = append(pts, [2]float64{msf(v[n-1]), 1})
	}
	return pts, true
}

// ecdfSVG draws both sides' ECDFs of one phase. The x axis ends a little
// past the larger p99 so a few slow probes do not squash the picture; the
// caption says how many lie beyond.
func ecdfSVG(phase string, a, b *Dist, row Row) string {
	const w, h = 560.0, 300.0
	const ml, mr, mt, mb = 56.0, 18.0, 30.0, 46.0
	pa, stepA := ecdfPoints(a, 600)
	pb, stepB := ecdfPoints(b, 600)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pts := range [][][2]float64{pa, pb} {
		for _, p := range pts {
			lo, hi = math.Min(lo, p[0]), math.Max(hi, p[0])
		}
	}
	if cut := 1.1 * math.Max(msf(row.A.P99), msf(row.B.P99)); cut > 0 && cut < hi {
		hi = cut
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	if hi-lo < 0.01 {
		lo, hi = math.Max(0, lo-0.5), hi+0.5
	}
	ticks, x0, x1 := niceTicks(lo, hi, 6)
	px := func(v float64) float64 { return ml + (math.Min(v, x1)-x0)/(x1-x0)*(w-ml-mr) }
	py := func(f float64) float64 { return mt + (1-f)*(h-mt-mb) }

	var s svgBuf
	s.f(`<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s: cumulative distribution of a and b">`, w, h, esc(phase))
	// Grid and axes.
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		s.f(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, ml, w-mr, py(f), py(f))
		s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%.2g</text>`, ml-6, py(f), f)
	}
	step := 1.0
	if len(ticks) > 1 {
		step = ticks[1] - ticks[0]
	}
	for _, t := range ticks {
		s.f(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, px(t), px(t), mt, h-mb)
		s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, px(t), h-mb+16, tickLabel(t, step))
	}
	s.f(`<text class="axis" x="%.1f" y="%.1f" text-anchor="middle">%s (ms)</text>`, ml+(w-ml-mr)/2, h-8, esc(phase))
	s.f(`<text class="axis" transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">fraction of probes ≤ x</text>`, mt+(h-mt-mb)/2)

	// Medians, then the curves over them.
	for _, m := range []struct {
		sum   Summary
		color string
	}{{row.A, colorA}, {row.B, colorB}} {
		if m.sum.N > 0 {
			x := px(msf(m.sum.P50))
			s.f(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3" stroke-width="1.2"/>`, x, x, py(0), py(0.5), m.color)
		}
	}
	s.f(`<clipPath id="clip-%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/></clipPath>`, esc(phase), ml, mt-2, w-ml-mr+1, h-mt-mb+4)
	for _, c := range []struct {
		pts   [][2]float64
		step  bool
		color string
		name  string
	}{{pa, stepA, colorA, "a"}, {pb, stepB, colorB, "b"}} {
		if len(c.pts) == 0 {
			continue
		}
		var d strings.Builder
		fmt.Fprintf(&d, "M%.1f %.1f", px(x0), py(0))
		for _, p := range c.pts {
			if c.step {
				fmt.Fprintf(&d, "H%.1fV%.1f", px(p[0]), py(p[1]))
			} else {
				fmt.Fprintf(&d, "L%.1f %.1f", px(p[0]), py(p[1]))
			}
		}
		fmt.Fprintf(&d, "H%.1f", px(x1))
		dash := ""
		if !c.step {
			dash = ` stroke-dasharray="6 3"`
		}
		s.f(`<path d="%s" fill="none" stroke="%s" stroke-width="2"%s clip-path="url(#clip-%s)"><title>%s</title></path>`, d.String(), c.color, dash, esc(phase), c.name)
	}
	// Legend above the plot, where no curve can run through it.
	lx := ml
	for _, l := range []struct {
		name  string
		sum   Summary
		color string
	}{{"a", row.A, colorA}, {"b", row.B, colorB}} {
		label := fmt.Sprintf("%s  n %d", l.name, l.sum.N)
		if l.sum.N > 0 {
			label += fmt.Sprintf(" · p50 %s ms", ms(l.sum.P50))
		}
		s.f(`<rect x="%.1f" y="8.5" width="16" height="3" fill="%s"/>`, lx, l.color)
		s.f(`<text class="legend" x="%.1f" y="10" dominant-baseline="middle">%s</text>`, lx+22, esc(label))
		lx += 22 + 7*float64(len([]rune(label))) + 24
	}
	s.f(`</svg>`)
	return s.String()
}

// waterfallSVG stacks each phase's median into one bar per side and
// location: where the time goes, a against b.
func waterfallSVG(r *Result) string {
	groups := []string{AllLocations}
	if hasLocations(r) {
		groups = append(groups, unionLocations(r.sideA, r.sideB)...)
	}
	type bar struct {
		label, side string
		color       string
		medians     []time.Duration
		total       time.Duration
	}
	var bars [][]bar
	longest := time.Duration(0)
	for _, loc := range groups {
		var pair []bar
		for _, sd := range []struct {
			name, color string
			pick        func(Row) Summary
		}{{"a", colorA, func(r Row) Summary { return r.A }}, {"b", colorB, func(r Row) Summary { return r.B }}} {
			b := bar{label: loc, side: sd.name, color: sd.color}
			for _, phase := range waterfallPhases {
				var m time.Duration
				if row, ok := r.Row(phase, loc); ok && sd.pick(row).N > 0 {
					m = sd.pick(row).P50
				}
				b.medians = append(b.medians, m)
				b.total += m
			}
			longest = max(longest, b.total)
			pair = append(pair, b)
		}
		bars = append(bars, pair)
	}
	const w = 1120.0
	const ml, mr, mt, rowH, gap = 150.0, 90.0, 34.0, 22.0, 14.0
	h := mt + float64(len(bars))*(2*rowH+gap) + 30
	ticks, _, x1 := niceTicks(0, math.Max(msf(longest), 0.01), 8)
	px := func(v float64) float64 { return ml + v/x1*(w-ml-mr) }

	var s svgBuf
	s.f(`<svg class="chart waterfall" viewBox="0 0 %.0f %.0f" role="img" aria-label="median of each phase, stacked, a and b per location">`, w, h)
	// Legend.
	x := ml
	for _, phase := range waterfallPhases {
		s.f(`<rect x="%.1f" y="8" width="12" height="12" rx="2" fill="%s"/>`, x, phaseColors[phase])
		s.f(`<text class="legend" x="%.1f" y="14" dominant-baseline="middle">%s</text>`, x+17, esc(phase))
		x += 30 + 8*float64(len(phase))
	}
	step := 1.0
	if len(ticks) > 1 {
		step = ticks[1] - ticks[0]
	}
	for _, t := range ticks {
		s.f(`<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>`, px(t), px(t), mt-4, h-28)
		s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, px(t), h-12, tickLabel(t, step))
	}
	s.f(`<text class="axis" x="%.1f" y="%.1f" text-anchor="end">ms</text>`, w-mr+40, h-12)
	y := mt
	for _, pair := range bars {
		s.f(`<text class="loc" x="8" y="%.1f" dominant-baseline="middle">%s</text>`, y+rowH, esc(pair[0].label))
		for _, b := range pair {
			s.f(`<rect x="%.1f" y="%.1f" width="4" height="%.1f" fill="%s"/>`, ml-10, y+3, rowH-6, b.color)
			s.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, ml-16, y+rowH/2, b.side)
			x := 0.0
			for i, m := range b.medians {
				if m <= 0 {
					continue
				}
				wd := px(x+msf(m)) - px(x)
				s.f(`<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"><title>%s %s: median %s ms</title></rect>`,
					px(x), y+3, math.Max(wd, 0.5), rowH-6, phaseColors[waterfallPhases[i]], b.side, waterfallPhases[i], ms(m))
				x += msf(m)
			}
			s.f(`<text class="value" x="%.1f" y="%.1f" dominant-baseline="middle">%s ms</text>`, px(x)+6, y+rowH/2, ms(b.total))
			y += rowH
		}
		y += gap
	}
	s.f(`</svg>`)
	return s.String()
}
