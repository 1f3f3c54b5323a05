package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// TextOptions shape the readable report.
type TextOptions struct {
	Color bool // ANSI colour for the severity headings
	Width int  // wrap why/fix text at this many columns (default 100)
}

var severityColor = map[Severity]string{
	Critical: "\x1b[1;31m", High: "\x1b[31m", Medium: "\x1b[33m", Low: "\x1b[36m", Info: "\x1b[2m",
}

// WriteText writes the report grouped by severity, highest first, each
// finding with its path, what it is and should be, why, and the fix; then
// the facts the audit observed.
func WriteText(w io.Writer, r *Report, o TextOptions) error {
	if o.Width <= 0 {
		o.Width = 100
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "probe audit: %s\n", strings.Join(r.Subjects, ", "))
	fmt.Fprintln(b, summaryLine(r))
	for _, s := range Severities {
		n := r.Count(s)
		if n == 0 {
			continue
		}
		head := strings.ToUpper(s.String())
		if o.Color {
			head = severityColor[s] + head + "\x1b[0m"
		}
		fmt.Fprintf(b, "\n%s (%d)\n", head, n)
		for _, f := range r.Findings {
			if f.Severity != s {
				continue
			}
			fmt.Fprintf(b, "  [%s] %s\n", f.ID, f.Path)
			field(b, "is", f.Is, o.Width)
			field(b, "should", f.Should, o.Width)
			field(b, "why", f.Why, o.Width)
			field(b, "fix", f.Fix, o.Width)
		}
	}
	if len(r.Facts) > 0 {
		fmt.Fprintf(b, "\nObserved\n")
		width := 0
		for _, f := range r.Facts {
			width = max(width, len(f.Name))
		}
		width = min(width, 44)
		for _, f := range r.Facts {
			fmt.Fprintf(b, "  %-*s  %s\n", width, f.Name, f.Value)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func summaryLine(r *Report) string {
	if len(r.Findings) == 0 {
		return "no findings: PASS"
	}
	var parts []string
	for _, s := range Severities {
		if n := r.Count(s); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	verdict := "PASS (nothing of severity high or above)"
	if r.Failed() {
		verdict = "FAIL (severity high or above)"
	}
	noun := "findings"
	if len(r.Findings) == 1 {
		noun = "finding"
	}
	return fmt.Sprintf("%d %s: %s: %s", len(r.Findings), noun, strings.Join(parts, ", "), verdict)
}

// field writes "    label   text", wrapping text under itself.
func field(b *strings.Builder, label, text string, width int) {
	if text == "" {
		return
	}
	const indent = "    "
	prefix := fmt.Sprintf("%s%-7s ", indent, label)
	pad := strings.Repeat(" ", len(prefix))
	line := prefix
	used := len(prefix)
	for i, word := range strings.Fields(text) {
		if i > 0 && used+1+len(word) > width {
			b.WriteString(line + "\n")
			line, used = pad+word, len(pad)+len(word)
			continue
		}
		if i > 0 {
			line += " "
			used++
		}
		line += word
		used += len(word)
	}
	b.WriteString(line + "\n")
}

// JSONReport is the --format json document.
type JSONReport struct {
	Subjects     []string           `json:"subjects"`
	Summary      JSONSummary        `json:"summary"`
	Findings     []Finding          `json:"findings"`
	Facts        []Fact             `json:"facts"`
	Measurements map[string]float64 `json:"measurements"`
}

// JSONSummary counts findings per severity and says whether the audit
// failed (anything of severity high or above: exit status 1).
type JSONSummary struct {
	Total       int            `json:"total"`
	BySeverity  map[string]int `json:"by_severity"`
	MaxSeverity string         `json:"max_severity,omitempty"`
	Failed      bool           `json:"failed"`
}

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	doc := JSONReport{
		Subjects: r.Subjects, Findings: r.Findings, Facts: r.Facts, Measurements: r.Measurements,
		Summary: JSONSummary{Total: len(r.Findings), BySeverity: map[string]int{}, Failed: r.Failed()},
	}
	for _, s := range Severities {
		doc.Summary.BySeverity[s.String()] = r.Count(s)
	}
	if m, ok := r.Max(); ok {
		doc.Summary.MaxSeverity = m.String()
	}
	if doc.Subjects == nil {
		doc.Subjects = []string{}
	}
	if doc.Findings == nil {
		doc.Findings = []Finding{}
	}
	if doc.Facts == nil {
		doc.Facts = []Fact{}
	}
	if doc.Measurements == nil {
		doc.Measurements = map[string]float64{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
