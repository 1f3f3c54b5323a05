package compare

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

func TestWriteTable(t *testing.T) {
	res := reportResult(t)
	var buf bytes.Buffer
	if err := WriteTable(&buf, res, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	if strings.Contains(out, "\x1b[") {
		t.Error("ANSI escapes without Color")
	}
	for _, want := range []string{
		"a  origin · samples", "b  cdn · samples",
		"location   phase", "all        ttfb", "eu-west-1  ttfb", "us-east-1  ttfb",
		"failures", "warnings (4)", "Fisher's exact p = 0.01",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// Columns line up: every row as wide as the header (before trimming).
	lines := strings.Split(out, "\n")
	var head int
	for i, l := range lines {
		if strings.HasPrefix(l, "location") {
			head = i
		}
	}
	verdictCol := strings.Index(lines[head], "verdict")
	for _, l := range lines[head+1 : head+1+len(res.Rows)] {
		if i := strings.Index(l, "  faster"); i >= 0 && len([]rune(l[:i+2])) != len([]rune(lines[head][:verdictCol])) {
			t.Errorf("verdict column misaligned: %q", l)
		}
	}

	buf.Reset()
	if err := WriteTable(&buf, res, TableOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x1b[32mfaster\x1b[0m", "\x1b[33minsufficient\x1b[0m", "\x1b[2mno change\x1b[0m"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("coloured table lacks %q", want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	res := reportResult(t)
	res.A.Label = "origin|alb_1" // table and markup characters stay text
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, res); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`origin\|alb\_1`, "| location | phase | n a/b |", "| all | ttfb | 418/303 |", "**faster**", "- ⚠️ "} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// Every table line has the same number of cells.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| location") || strings.HasPrefix(l, "| all") || strings.HasPrefix(l, "| eu-west-1") {
			if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 11 {
				t.Errorf("%d bars in %q", n, l)
			}
		}
	}
}

// TestWriteHTMLHistograms: approximate data (dashed ECDFs through the
// bucket bounds) and a single location render too.
func TestWriteHTMLHistograms(t *testing.T) {
	mk := func(counts ...float64) *Side {
		s := NewSide()
		l := s.Location("eu")
		h := &Histogram{}
		for i, c := range counts {
			h.Buckets = append(h.Buckets, Bucket{Le: []float64{0.01, 0.05, 0.1, math.Inf(1)}[i], Count: c})
		}
		l.Probes = int(h.Count())
		l.Phases[httptrace.PhaseTTFB] = &Dist{Hist: h}
		return s
	}
	res, err := Compare("origin", mk(0, 10, 80, 10), "cdn", mk(70, 30, 0, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`stroke-dasharray="6 3"`, "histogram buckets: approximate", "approximate (histogram buckets)", "≈"} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Error("NaN or Inf in the page")
	}
}
