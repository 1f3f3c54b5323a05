package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// TableOptions say how to render for a terminal.
type TableOptions struct {
	Color bool // ANSI colours
	Width int  // columns available for the waterfall; 0 means DefaultWidth
}

// DefaultWidth is the width used when TableOptions.Width is zero.
const DefaultWidth = 100

// ANSI SGR codes.
const (
	sgrBold   = "1"
	sgrDim    = "2"
	sgrRed    = "31"
	sgrGreen  = "32"
	sgrYellow = "33"
	sgrBlue   = "34"
	sgrPurple = "35"
	sgrCyan   = "36"
	sgrGray   = "90"
)

// phaseColor gives each phase of the waterfall its own colour.
func phaseColor(phase string) string {
	switch phase {
	case "redirects":
		return sgrGray
	case httptrace.PhaseDNS:
		return sgrCyan
	case httptrace.PhaseConnect:
		return sgrYellow
	case httptrace.PhaseTLS:
		return sgrPurple
	case httptrace.PhaseTTFB:
		return sgrGreen
	case httptrace.PhaseTransfer:
		return sgrBlue
	}
	return ""
}

// Differences smaller than these stay uncoloured, so noise does not look
// like a verdict.
const (
	diffColorPct = 5
	diffColorAbs = 500 * time.Microsecond
)

type painter struct{ color bool }

func (p painter) paint(sgr, s string) string {
	if !p.color || sgr == "" || s == "" {
		return s
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
}

// WriteTable renders the summary for a person: per group a waterfall of
// its median sample, then one table of p50/p90/p99 per phase with the groups
// side by side (and b−a p50 columns for comparable groups), then cache,
// POP, status and TLS facts, failures and warnings.
func WriteTable(w io.Writer, s Summary, opts TableOptions) error {
	if opts.Width <= 0 {
		opts.Width = DefaultWidth
	}
	p := painter{color: opts.Color}
	var b strings.Builder
	if len(s.Groups) == 0 {
		b.WriteString("no samples\n")
	}
	// One time scale for all waterfalls, so the faster way looks shorter.
	var longest time.Duration
	for _, g := range s.Groups {
		if g.Median != nil {
			longest = max(longest, g.Median.Timings.Total)
		}
	}
	for _, g := range s.Groups {
		writeWaterfall(&b, p, g, opts.Width, longest)
		b.WriteString("\n")
	}
	if len(s.Groups) > 0 {
		writePhaseTable(&b, p, s)
		b.WriteString("\n")
		writeFacts(&b, p, s)
		writeWarnings(&b, p, s)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// bar is one row of a waterfall: a phase starting at an offset.
type bar struct {
	name       string
	start, dur time.Duration
}

// waterfall lays the median sample's phases on a time line. first_byte
// and total count from the probe's start, over every redirect hop; the final
// hop starts after the earlier ones (total less the final hop's own total).
// Within it dns, connect and tls follow each other, ttfb ends at first_byte
// and transfer follows. The gap before ttfb is the time to write the request.
func waterfall(r *httptrace.Result) []bar {
	t := r.Timings
	var hop time.Duration
	if n := len(r.Hops); n > 1 {
		hop = max(t.Total-r.Hops[n-1].Timings.Total, 0)
	}
	var bars []bar
	if hop > 0 {
		bars = append(bars, bar{"redirects", 0, hop})
	}
	return append(bars,
		bar{httptrace.PhaseDNS, hop, t.DNS},
		bar{httptrace.PhaseConnect, hop + t.DNS, t.Connect},
		bar{httptrace.PhaseTLS, hop + t.DNS + t.Connect, t.TLS},
		bar{httptrace.PhaseTTFB, max(t.FirstByte-t.TTFB, 0), t.TTFB},
		bar{httptrace.PhaseTransfer, t.FirstByte, t.Transfer},
	)
}

func writeWaterfall(b *strings.Builder, p painter, g Group, width int, longest time.Duration) {
	head := p.paint(sgrBold, g.Label)
	if g.URL != "" {
		head += "  " + g.URL
	}
	okText := fmt.Sprintf("%d/%d ok", g.OK, g.N)
	if g.OK < g.N {
		okText = p.paint(sgrRed, okText)
	}
	fmt.Fprintf(b, "%s  (%s)\n", head, okText)
	if g.Median == nil {
		b.WriteString(p.paint(sgrRed, "  no successful probe: nothing to draw") + "\n")
		return
	}
	m := g.Median
	var facts []string
	facts = append(facts, fmt.Sprintf("median of %d by total", g.OK))
	if m.Status > 0 {
		facts = append(facts, fmt.Sprintf("status %d", m.Status))
	}
	if m.Proto != "" {
		facts = append(facts, m.Proto)
	}
	if m.TLS != nil && m.TLS.Version != "" {
		facts = append(facts, m.TLS.Version)
	}
	if m.RemoteAddr != "" {
		facts = append(facts, m.RemoteAddr)
	}
	if m.Redirects > 0 {
		facts = append(facts, plural(m.Redirects, "redirect"))
	}
	b.WriteString("  " + p.paint(sgrDim, strings.Join(facts, " · ")) + "\n")

	const nameW, numW = 10, 9
	barW := max(width-2-nameW-2*numW-2, 10)
	total := m.Timings.Total
	scale := 0.0
	if longest > 0 {
		scale = float64(barW) / float64(longest)
	}
	b.WriteString("  " + p.paint(sgrDim, fmt.Sprintf("%-*s%*s%*s", nameW, "phase", numW, "start ms", numW, "time ms")) + "\n")
	for _, r := range waterfall(m.Result) {
		cells := drawBar(float64(r.start)*scale, float64(r.dur)*scale, r.dur > 0, barW)
		line := fmt.Sprintf("  %-*s%*s%*s  %s", nameW, r.name, numW, ms(r.start), numW, ms(r.dur), p.paint(phaseColor(r.name), cells))
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	b.WriteString("  " + p.paint(sgrBold, fmt.Sprintf("%-*s%*s%*s", nameW, "total", numW, "", numW, ms(total))) + "\n")
}

// eighths are the left-aligned partial blocks, 0/8 to 8/8 of a cell.
const eighths = " ▏▎▍▌▋▊▉█"

// drawBar draws a bar from start to start+length (in cells) with eighth
// block precision at its end; a non-empty phase gets at least a sliver.
func drawBar(start, length float64, nonEmpty bool, width int) string {
	col := min(int(start), width-1)
	n := int(math.Round(length * 8))
	if n == 0 && nonEmpty {
		n = 1
	}
	n = min(n, (width-col)*8)
	return strings.Repeat(" ", col) + strings.Repeat("█", n/8) + strings.TrimRight(string([]rune(eighths)[n%8]), " ")
}

// cell is one table cell: text, its colour, right-aligned unless left.
type cell struct {
	text, sgr string
	left      bool
}

func writePhaseTable(b *strings.Builder, p painter, s Summary) {
	// Column 0 is the phase name, then 3 per group, then 1 per comparison.
	ncols := 1 + 3*len(s.Groups) + len(s.Comparisons)
	rows := [][]cell{make([]cell, ncols), make([]cell, ncols)}
	rows[0][0] = cell{text: "", left: true}
	rows[1][0] = cell{text: "phase (ms)", sgr: sgrBold, left: true}
	for i, g := range s.Groups {
		rows[0][1+3*i] = cell{text: fmt.Sprintf("%s (%d/%d ok)", g.Label, g.OK, g.N), sgr: sgrBold, left: true}
		for j, h := range []string{"p50", "p90", "p99"} {
			rows[1][1+3*i+j] = cell{text: h, sgr: sgrBold}
		}
	}
	for k, c := range s.Comparisons {
		rows[1][1+3*len(s.Groups)+k] = cell{text: fmt.Sprintf("%s−%s p50", s.Groups[c.B].Label, s.Groups[c.A].Label), sgr: sgrBold}
	}
	for _, phase := range httptrace.Phases {
		row := make([]cell, ncols)
		row[0] = cell{text: phase, left: true}
		for i, g := range s.Groups {
			st := g.Phases[phase]
			for j, v := range []time.Duration{st.P50, st.P90, st.P99} {
				if st.N == 0 {
					row[1+3*i+j] = cell{text: "–", sgr: sgrDim}
				} else {
					row[1+3*i+j] = cell{text: ms(v)}
				}
			}
		}
		for k, c := range s.Comparisons {
			row[1+3*len(s.Groups)+k] = diffCell(c, phase)
		}
		rows = append(rows, row)
	}

	// Widths: each column fits its cells; a group's label, which spans its
	// three columns, widens the last of them when it does not fit.
	const gap = 2
	widths := make([]int, ncols)
	for ri, row := range rows {
		for ci, c := range row {
			if ri == 0 && ci > 0 {
				continue
			}
			widths[ci] = max(widths[ci], utf8.RuneCountInString(c.text))
		}
	}
	for i := range s.Groups {
		first := 1 + 3*i
		span := widths[first] + widths[first+1] + widths[first+2] + 2*gap
		if l := utf8.RuneCountInString(rows[0][first].text); l > span {
			widths[first+2] += l - span
		}
	}
	for ri, row := range rows {
		var line strings.Builder
		for ci := 0; ci < ncols; ci++ {
			c := row[ci]
			if ci > 0 {
				line.WriteString(strings.Repeat(" ", gap))
			}
			if ri == 0 && ci > 0 && (ci-1)%3 == 0 && ci < 1+3*len(s.Groups) {
				// The group label spans three columns.
				w := widths[ci] + widths[ci+1] + widths[ci+2] + 2*gap
				line.WriteString(pad(p, c, w))
				ci += 2
				continue
			}
			line.WriteString(pad(p, c, widths[ci]))
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func diffCell(c Comparison, phase string) cell {
	r, ok := c.Row(phase)
	if !ok {
		return cell{text: "–", sgr: sgrDim}
	}
	text := signedMS(r.Diff)
	sgr := ""
	if r.HasPct {
		text += fmt.Sprintf(" (%+.0f%%)", r.Pct)
		switch {
		case r.Diff > -diffColorAbs && r.Diff < diffColorAbs:
		case r.Pct <= -diffColorPct:
			sgr = sgrGreen
		case r.Pct >= diffColorPct:
			sgr = sgrRed
		}
	}
	return cell{text: text, sgr: sgr}
}

// pad aligns a cell to width runes, then paints it, so escape codes never
// count towards the width.
func pad(p painter, c cell, width int) string {
	n := width - utf8.RuneCountInString(c.text)
	if n < 0 {
		n = 0
	}
	if c.left {
		return p.paint(c.sgr, c.text) + strings.Repeat(" ", n)
	}
	return strings.Repeat(" ", n) + p.paint(c.sgr, c.text)
}

func writeFacts(b *strings.Builder, p painter, s Summary) {
	labelW := 0
	for _, g := range s.Groups {
		labelW = max(labelW, utf8.RuneCountInString(g.Label))
	}
	for _, g := range s.Groups {
		var lines []string
		var facts []string
		if len(g.Statuses) > 0 {
			facts = append(facts, "status "+countsString(g.Statuses))
		}
		for _, m := range []map[string]int{g.HTTPVersions, g.TLSVersions, g.ALPN} {
			if len(m) > 0 {
				facts = append(facts, countsKeys(m))
			}
		}
		if len(facts) > 0 {
			lines = append(lines, strings.Join(facts, " · "))
		}
		if known := len(g.Cache) - min(g.Cache["unknown"], 1); known > 0 || len(g.POPs) > 0 {
			line := "cache " + countsString(g.Cache)
			if len(g.POPs) > 0 {
				var pops []string
				for _, pop := range g.POPs {
					name := pop.Code
					if pop.City != "" {
						name += " (" + pop.City + ")"
					}
					pops = append(pops, fmt.Sprintf("%s ×%d", name, pop.Count))
				}
				line += " · POPs " + strings.Join(pops, ", ")
			}
			lines = append(lines, line)
		}
		if g.Warm != nil {
			lines = append(lines, fmt.Sprintf("warm (keep-alive) p50: ttfb %s, total %s (%d requests)",
				fmtDuration(g.Warm[httptrace.PhaseTTFB].P50), fmtDuration(g.Warm[httptrace.PhaseTotal].P50), g.Warm[httptrace.PhaseTotal].N))
		}
		if c := g.Conditional; c != nil {
			line := fmt.Sprintf("revalidation: 304 in %d of %d sent", c.NotModified, c.Sent)
			if c.Sent < c.Asked {
				line += fmt.Sprintf(" (%d without a validator to send)", c.Asked-c.Sent)
			}
			if c.TTFB.N > 0 {
				line += fmt.Sprintf(" · 304 p50 ttfb %s, total %s", fmtDuration(c.TTFB.P50), fmtDuration(c.Total.P50))
			}
			lines = append(lines, line)
		}
		for _, phase := range sortedKeys(g.Failures) {
			lines = append(lines, p.paint(sgrRed, fmt.Sprintf("failed ×%d in %s: %s", g.Failures[phase], phase, g.FailureMessages[phase])))
		}
		for i, line := range lines {
			label := ""
			if i == 0 {
				label = g.Label
			}
			fmt.Fprintf(b, "%s%s  %s\n", p.paint(sgrBold, label), strings.Repeat(" ", labelW-utf8.RuneCountInString(label)), line)
		}
	}
}

// countsKeys lists the keys, with counts only when there is more than one.
func countsKeys(m map[string]int) string {
	if len(m) == 1 {
		for k := range m {
			return k
		}
	}
	return countsString(m)
}

func writeWarnings(b *strings.Builder, p painter, s Summary) {
	var lines []string
	for _, g := range s.Groups {
		for _, w := range g.Warnings {
			lines = append(lines, fmt.Sprintf("  %s %s: %s", p.paint(sgrYellow, "!"), g.Label, w.Message))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s\n%s\n", p.paint(sgrYellow+";"+sgrBold, fmt.Sprintf("warnings (%d)", len(lines))), strings.Join(lines, "\n"))
}
