package compare

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown renders the result as GitHub-flavoured Markdown: for a
// pull request or a rollout ticket.
func WriteMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString("## probe compare: b relative to a\n\n")
	b.WriteString("| side | what | probes | ok |\n| --- | --- | ---: | ---: |\n")
	for _, s := range []struct {
		name string
		info SideInfo
	}{{"a", r.A}, {"b", r.B}} {
		what := join(" · ", s.info.Label, s.info.Query.Window.String(), matchText(s.info))
		fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", s.name, mdEscape(what), s.info.Probes, s.info.OK)
	}
	fmt.Fprintf(&b, "\n%s\n\n", mdEscape(methodLine(r)))

	multi := hasLocations(r)
	head := []string{"location", "phase", "n a/b", "p50 a → b ms", "p90 a → b ms", "Δp50 ms", fmt.Sprintf("%.0f%% CI ms", 100*r.Options.Confidence()), "p", "δ", "verdict"}
	align := []string{"---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"}
	if !multi {
		head, align = head[1:], align[1:]
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n| " + strings.Join(align, " | ") + " |\n")
	for _, row := range r.Rows {
		f := fields(row)
		verdict := verdictText(row.Verdict)
		if row.Verdict == Faster || row.Verdict == Slower {
			verdict = "**" + verdict + "**"
		}
		cols := []string{mdEscape(row.Location), row.Phase, f.n, f.p50, f.p90, f.diff, f.ci, f.p, f.delta, verdict}
		if !multi {
			cols = cols[1:]
		}
		b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
	}
	if lines := failureLines(r); len(lines) > 0 {
		b.WriteString("\n**Failures**\n\n")
		for _, l := range lines {
			b.WriteString("- " + mdEscape(l) + "\n")
		}
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\n**Warnings**\n\n")
		for _, wn := range r.Warnings {
			b.WriteString("- ⚠️ " + mdEscape(wn.Message) + "\n")
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// mdEscape keeps text from breaking a table or turning into markup.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;", "`", "\\`").Replace(s)
}
