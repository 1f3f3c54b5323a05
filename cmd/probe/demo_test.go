package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs `probe demo` in its short mode, as CI does, and reads the
// story it tells: both ways in, the edge's revalidated hits at its POP, the
// comparison column, and a TLS handshake that is shorter through the edge.
func TestDemo(t *testing.T) {
	r := runProbe(t, nil, "demo", "--duration", "3s", "--interval", "500ms", "--listen", "127.0.0.1:0")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	out := r.stdout
	for _, want := range []string{"cdn", "origin", "refresh_hit", "FRA56-P1", "cdn−origin p50", "status page http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}

	// The comparison table: a line naming the two groups, the header
	// "phase (ms)  p50 p90 p99  p50 p90 p99  cdn−origin p50", then a row
	// per phase.
	lines := strings.Split(out, "\n")
	head := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "phase (ms)") && strings.Contains(l, "cdn−origin p50") {
			head = i
			break
		}
	}
	if head < 1 {
		t.Fatalf("no comparison table in:\n%s", out)
	}
	groups := lines[head-1]
	cdnCol, originCol := strings.Index(groups, "cdn ("), strings.Index(groups, "origin (")
	if cdnCol < 0 || originCol < 0 {
		t.Fatalf("group line %q does not name cdn and origin", groups)
	}
	var row []string
	for _, l := range lines[head+1:] {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "tls" {
			row = f
			break
		}
	}
	// tls, then p50 p90 p99 of each group, then the difference.
	if len(row) < 8 {
		t.Fatalf("no tls row with two groups in:\n%s", out)
	}
	first, err1 := strconv.ParseFloat(row[1], 64)
	second, err2 := strconv.ParseFloat(row[4], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("tls row %q: %v %v", row, err1, err2)
	}
	cdn, origin := first, second
	if originCol < cdnCol {
		cdn, origin = second, first
	}
	if !(cdn > 0 && cdn < origin) {
		t.Errorf("tls p50: cdn %v ms, origin %v ms; want the edge's handshake shorter\n%s", cdn, origin, out)
	}
	if !strings.HasPrefix(row[7], "-") {
		t.Errorf("tls cdn−origin p50 %q: want negative", row[7])
	}
	t.Logf("tls p50: cdn %v ms, origin %v ms", cdn, origin)
}
