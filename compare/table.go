package compare

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// TableOptions say how to render for a terminal (the app's convention:
// colour on a terminal unless NO_COLOR, see report.TableOptions).
type TableOptions struct {
	Color bool
}

// ANSI SGR codes, as report uses them.
const (
	sgrBold   = "1"
	sgrDim    = "2"
	sgrRed    = "31"
	sgrGreen  = "32"
	sgrYellow = "33"
)

type painter struct{ color bool }

func (p painter) paint(sgr, s string) string {
	if !p.color || sgr == "" || s == "" {
		return s
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
}

func verdictSGR(v Verdict) string {
	switch v {
	case Faster:
		return sgrGreen
	case Slower:
		return sgrRed
	case Insufficient:
		return sgrYellow
	}
	return sgrDim
}

// verdictText is the verdict for a person.
func verdictText(v Verdict) string {
	if v == NoChange {
		return "no change"
	}
	return string(v)
}

// WriteTable renders the result for a person at a terminal: the two sides,
// the method, one line per row, failures and warnings.
func WriteTable(w io.Writer, r *Result, opts TableOptions) error {
	p := painter{color: opts.Color}
	var b strings.Builder
	for _, s := range []struct {
		name string
		info SideInfo
	}{{"a", r.A}, {"b", r.B}} {
		fmt.Fprintf(&b, "%s  %s\n", p.paint(sgrBold, s.name), sideLine(s.info))
	}
	fmt.Fprintf(&b, "%s\n\n", p.paint(sgrDim, methodLine(r)))

	multi := hasLocations(r)
	head := []string{"location", "phase", "n a/b", "p50 a → b ms", "p90 a → b ms", "Δp50 ms", fmt.Sprintf("%.0f%% CI ms", 100*r.Options.Confidence()), "p", "δ", "verdict"}
	if !multi {
		head = head[1:]
	}
	rows := [][]cell{headerCells(head)}
	for _, row := range r.Rows {
		c := rowCells(row)
		if !multi {
			c = c[1:]
		}
		rows = append(rows, c)
	}
	writeCells(&b, p, rows)

	if lines := failureLines(r); len(lines) > 0 {
		b.WriteString("\n" + p.paint(sgrBold, "failures") + "\n")
		for _, l := range lines {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "\n%s\n", p.paint(sgrYellow+";"+sgrBold, fmt.Sprintf("warnings (%d)", len(r.Warnings))))
		for _, wn := range r.Warnings {
			fmt.Fprintf(&b, "  %s %s\n", p.paint(sgrYellow, "!"), wn.Message)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// sideLine says what one side is: its label, window, selector and counts.
func sideLine(s SideInfo) string {
	counts := fmt.Sprintf("%d probes, %d ok", s.Probes, s.OK)
	span := ""
	if s.Query.Window.IsZero() && !s.First.IsZero() {
		span = "samples " + fmtTime(s.First, "") + " → " + fmtTime(s.Last, "")
	}
	locs := fmt.Sprintf("%d locations", len(s.Locations))
	if len(s.Locations) == 1 {
		locs = "location " + cmpOr(s.Locations[0], `""`)
	}
	return join(" · ", s.Label, s.Query.Window.String(), matchText(s), span, counts, locs)
}

// matchText is the side's selector, unless its label already names every
// value it selects ("origin" for role=origin).
func matchText(s SideInfo) string {
	m := s.Query.Match
	words := strings.Fields(s.Label)
	for _, v := range []string{m.Target, m.Role, m.Location} {
		if v != "" && !slices.Contains(words, v) {
			return m.String()
		}
	}
	return ""
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func methodLine(r *Result) string {
	o := r.Options
	return fmt.Sprintf("Δ = b − a (negative: b is faster) · CI: %.0f%% bootstrap of the difference (%d resamples, seed %d) · p: Mann–Whitney U · δ: Cliff's delta · verdict needs p < %g, a CI without 0 and ≥ %d probes a side",
		100*o.Confidence(), o.Resamples, o.Seed, o.Alpha, o.MinSamples)
}

func hasLocations(r *Result) bool {
	for _, row := range r.Rows {
		if row.Location != AllLocations {
			return true
		}
	}
	return false
}

// cell is one table cell: text, its colour, right-aligned unless left.
type cell struct {
	text, sgr string
	left      bool
}

func headerCells(h []string) []cell {
	out := make([]cell, len(h))
	for i, t := range h {
		out[i] = cell{text: t, sgr: sgrBold, left: i < 2 || t == "verdict"}
	}
	return out
}

// rowFields are a row's columns as text, shared by the table, Markdown
// and HTML renderers.
type rowFields struct {
	n, p50, p90, diff, ci, p, delta string
}

func fields(r Row) rowFields {
	f := rowFields{n: fmt.Sprintf("%d/%d", r.A.N, r.B.N), p50: "–", p90: "–", diff: "–", ci: "–", p: "–", delta: "–"}
	if r.A.N > 0 && r.B.N > 0 {
		f.p50 = ms(r.A.P50) + " → " + ms(r.B.P50)
		f.p90 = ms(r.A.P90) + " → " + ms(r.B.P90)
		f.diff = signedMS(r.DiffP50)
		if r.HasPct {
			f.diff += fmt.Sprintf(" (%+.0f%%)", r.DiffPct)
		}
	}
	if r.HasCI {
		f.ci = "[" + signedMS(r.CIP50.Low) + ", " + signedMS(r.CIP50.High) + "]"
	}
	if r.HasTest {
		f.p = fmtP(r.PValue)
		f.delta = fmt.Sprintf("%+.2f", r.CliffsDelta)
	}
	if r.Approximate {
		f.ci += " ≈"
	}
	return f
}

func rowCells(r Row) []cell {
	f := fields(r)
	sgr := verdictSGR(r.Verdict)
	diffSGR := ""
	if r.Verdict == Faster || r.Verdict == Slower {
		diffSGR = sgr
	}
	return []cell{
		{text: r.Location, left: true}, {text: r.Phase, left: true},
		{text: f.n}, {text: f.p50}, {text: f.p90}, {text: f.diff, sgr: diffSGR}, {text: f.ci}, {text: f.p}, {text: f.delta},
		{text: verdictText(r.Verdict), sgr: sgr, left: true},
	}
}

// writeCells aligns the cells in columns two spaces apart.
func writeCells(b *strings.Builder, p painter, rows [][]cell) {
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text))
			if c.left {
				line.WriteString(p.paint(c.sgr, c.text) + pad)
			} else {
				line.WriteString(pad + p.paint(c.sgr, c.text))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// failureLines compare the failure rates, one line per location.
func failureLines(r *Result) []string {
	var shown []FailureRow
	width := 0
	for _, f := range r.Failures {
		if f.A.Failed+f.B.Failed == 0 && len(r.Failures) > 1 {
			continue
		}
		shown = append(shown, f)
		width = max(width, utf8.RuneCountInString(f.Location))
	}
	var out []string
	for _, f := range shown {
		out = append(out, fmt.Sprintf("%-*s  a %s · b %s · Fisher's exact %s",
			width, f.Location, failureText(f.A), failureText(f.B), pText(f.PValue)))
	}
	return out
}

func failureText(f FailureCount) string {
	s := fmtRate(f)
	if len(f.ByPhase) > 0 {
		var parts []string
		for _, phase := range sortedKeys(f.ByPhase) {
			parts = append(parts, fmt.Sprintf("%s ×%d", phase, f.ByPhase[phase]))
		}
		s += " " + strings.Join(parts, ", ")
	}
	return s
}
