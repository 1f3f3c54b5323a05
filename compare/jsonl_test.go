package compare

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

func sampleLine(t *testing.T, at time.Time, role, location string, ttfb time.Duration, errPhase string) string {
	t.Helper()
	s := probe.Sample{Target: "shop", Role: role, Location: location, Result: &httptrace.Result{
		URL: "https://shop.example/", Start: at, Timings: httptrace.Timings{TTFB: ttfb, Total: ttfb}, Status: 200}}
	if errPhase != "" {
		s.Err = &httptrace.Error{Phase: errPhase, Message: "boom"}
		s.Status = 0
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJSONLSource(t *testing.T) {
	lines := []string{
		sampleLine(t, t0, "origin", "eu", 40*msec, ""),
		"",                 // blank lines are not malformed
		`{"time": "soon"}`, // line 3
		sampleLine(t, t0.Add(time.Hour), "cdn", "eu", 10*msec, ""),
		"not json at all", // line 5
		`{"target": "shop"}`,
		sampleLine(t, t0.Add(2*time.Hour), "cdn", "us", 12*msec, httptrace.ErrConnect),
		sampleLine(t, t0.Add(3*time.Hour), "cdn", "us", 11*msec, ""),
	}
	src, err := ReadJSONL("s.jsonl", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 4 {
		t.Fatalf("%d samples, want 4", src.Len())
	}
	ctx := context.Background()
	all, err := src.Load(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Probes() != 4 || all.Failed() != 1 || len(all.Locations) != 2 || all.Series["shop/cdn"] != 3 {
		t.Errorf("all: probes %d failed %d locations %v series %v", all.Probes(), all.Failed(), all.LocationNames(), all.Series)
	}
	if len(all.Warnings) != 1 || all.Warnings[0].Code != WarnMalformed {
		t.Fatalf("warnings %+v", all.Warnings)
	}
	msg := all.Warnings[0].Message
	for _, want := range []string{"skipped 3 malformed of 8 lines", "s.jsonl:3: ", "s.jsonl:5: invalid character", `s.jsonl:6: no "time"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q lacks %q", msg, want)
		}
	}
	// The us failure counts as a probe and a failure, not as a latency.
	us := all.Locations["us"]
	if us.Probes != 2 || us.Failures[httptrace.ErrConnect] != 1 || us.Phases[httptrace.PhaseTTFB].N() != 1 || us.Hours[2] != 1 || us.Hours[3] != 1 {
		t.Errorf("us: %+v", us)
	}

	cdn, _ := src.Load(ctx, Query{Match: Selector{Role: "cdn", Location: "eu"}})
	if cdn.Probes() != 1 || cdn.Locations["eu"].Phases[httptrace.PhaseTTFB].Values[0] != 10*msec {
		t.Errorf("role=cdn,location=eu: %d probes", cdn.Probes())
	}
	// Windows are half-open: [t0+1h, t0+3h) holds the samples at 1 h and 2 h.
	w, _ := src.Load(ctx, Query{Window: Window{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}})
	if w.Probes() != 2 || !w.First.Equal(t0.Add(time.Hour)) || !w.Last.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("window: %d probes, %v – %v", w.Probes(), w.First, w.Last)
	}
	if d := src.Describe(); !strings.Contains(d, "holds 4 samples from 2026-03-01 00:00Z to 2026-03-01 03:00Z; targets shop; roles cdn, origin; locations eu, us") {
		t.Errorf("describe: %q", d)
	}
}

func TestReadJSONLFileGzip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl.gz")
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write([]byte(sampleLine(t, t0, "cdn", "eu", msec, "") + "\n"))
	gz.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := ReadJSONLFile(path)
	if err != nil || src.Len() != 1 {
		t.Fatalf("%v, %v", src, err)
	}
	if _, err := ReadJSONLFile(filepath.Join(t.TempDir(), "missing.jsonl")); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRunNoSamples(t *testing.T) {
	src, _ := ReadJSONL("s.jsonl", strings.NewReader(sampleLine(t, t0, "cdn", "eu", msec, "")))
	_, err := Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Match: Selector{Role: "origin"}}},
		Spec{Label: "b", Source: src}, Options{})
	if err == nil || !strings.Contains(err.Error(), "side a (role=origin): no samples: s.jsonl holds 1 samples") {
		t.Errorf("err %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Window
	}{
		{"2026-03-01/2026-03-02", Window{t0, t0.Add(24 * time.Hour)}},
		{"2026-03-01T06:00/6h", Window{t0.Add(6 * time.Hour), t0.Add(12 * time.Hour)}},
		{"2026-03-01T01:00:00+01:00/+90m", Window{t0, t0.Add(90 * time.Minute)}},
		{"2026-03-01 00:00/2026-03-01T00:00:30.5Z", Window{t0, t0.Add(30500 * time.Millisecond)}},
	} {
		got, err := ParseWindow(c.in)
		if err != nil || !got.From.Equal(c.want.From) || !got.To.Equal(c.want.To) {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"2026-03-01", "2026-03-02/2026-03-01", "yesterday/today", "2026-03-01/-1h"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
	before, after := Around(t0, time.Hour)
	if !before.Contains(t0.Add(-time.Hour)) || before.Contains(t0) || !after.Contains(t0) || after.Contains(t0.Add(time.Hour)) {
		t.Errorf("Around: %v %v", before, after)
	}

	sel, err := ParseSelector("target=shop, role=cdn")
	if err != nil || sel != (Selector{Target: "shop", Role: "cdn"}) || sel.String() != "target=shop,role=cdn" {
		t.Errorf("ParseSelector: %+v %v", sel, err)
	}
	for _, bad := range []string{"", "role", "role=", "pop=FRA", "role=a,role=b"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
	if _, err := (Selector{Role: "cdn"}).And(Selector{Role: "origin"}); err == nil {
		t.Error("role=cdn and role=origin combined")
	}
	if s, _ := (Selector{Role: "cdn"}).And(Selector{Location: "eu"}); s != (Selector{Role: "cdn", Location: "eu"}) {
		t.Errorf("And: %+v", s)
	}
}
