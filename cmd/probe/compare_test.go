package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
	"github.com/edgeprobe/edgeprobe/report"
	"github.com/edgeprobe/edgeprobe/route53"
)

// contractResult is DESIGN.md's `probe compare --format json` contract.
type contractResult struct {
	Rows []struct {
		Phase    string        `json:"phase"`
		Location string        `json:"location"`
		A        contractStats `json:"a"`
		B        contractStats `json:"b"`
		Diff     *float64      `json:"diff_p50_seconds"`
		CILow    *float64      `json:"ci_low_seconds"`
		CIHigh   *float64      `json:"ci_high_seconds"`
		Verdict  string        `json:"verdict"`
	} `json:"rows"`
}

type contractStats struct {
	N   int      `json:"n"`
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
	P99 *float64 `json:"p99"`
}

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// sampleSpec generates n samples of one role, ttfb around ttfb, spread
// evenly over span from start.
type sampleSpec struct {
	role, location string
	n              int
	ttfb           time.Duration
	start          time.Time
	span           time.Duration
}

func writeSamples(t *testing.T, path string, seed uint64, specs ...sampleSpec) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	var b strings.Builder
	for _, s := range specs {
		for i := range s.n {
			ttfb := s.ttfb + time.Duration(math.Exp(rng.NormFloat64()*0.4)*2*float64(time.Millisecond))
			tm := httptrace.Timings{DNS: 0, Connect: time.Millisecond, TLS: 3 * time.Millisecond, TTFB: ttfb, Transfer: 200 * time.Microsecond}
			tm.FirstByte = tm.Connect + tm.TLS + tm.TTFB
			tm.Total = tm.FirstByte + tm.Transfer
			start := s.start
			if start.IsZero() {
				start = t0
			}
			span := s.span
			if span == 0 {
				span = 24 * time.Hour
			}
			line, err := json.Marshal(probe.Sample{Target: "shop", Role: s.role, Location: s.location, Result: &httptrace.Result{
				URL: "https://shop.example/", Start: start.Add(span * time.Duration(i) / time.Duration(s.n)), Timings: tm, Status: 200}})
			if err != nil {
				t.Fatal(err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseContract(t *testing.T, out string) contractResult {
	t.Helper()
	var res contractResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not the JSON contract: %v\n%s", err, out)
	}
	// Every contract key is present in every row, with a known verdict.
	var raw struct{ Rows []map[string]json.RawMessage }
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for i, row := range raw.Rows {
		for _, k := range []string{"phase", "location", "a", "b", "diff_p50_seconds", "ci_low_seconds", "ci_high_seconds", "verdict"} {
			if _, ok := row[k]; !ok {
				t.Errorf("row %d lacks %q", i, k)
			}
		}
		for _, side := range []string{"a", "b"} {
			var st map[string]json.RawMessage
			if err := json.Unmarshal(row[side], &st); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"n", "p50", "p90", "p99"} {
				if _, ok := st[k]; !ok {
					t.Errorf("row %d %s lacks %q", i, side, k)
				}
			}
		}
	}
	for _, r := range res.Rows {
		if !slices.Contains([]string{"faster", "slower", "no_change", "insufficient"}, r.Verdict) {
			t.Errorf("%s/%s: verdict %q", r.Phase, r.Location, r.Verdict)
		}
	}
	return res
}

func findRow(t *testing.T, res contractResult, phase, location string) int {
	t.Helper()
	for i, r := range res.Rows {
		if r.Phase == phase && r.Location == location {
			return i
		}
	}
	t.Fatalf("no %s row at %s", phase, location)
	return -1
}

// TestCompareTwoFilesJSON: before.jsonl vs after.jsonl, the rollout cut
// ttfb by 30 ms.
func TestCompareTwoFilesJSON(t *testing.T) {
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before.jsonl"), filepath.Join(dir, "after.jsonl")
	writeSamples(t, before, 1, sampleSpec{role: "cdn", location: "lab", n: 60, ttfb: 50 * time.Millisecond})
	writeSamples(t, after, 2, sampleSpec{role: "cdn", location: "lab", n: 60, ttfb: 20 * time.Millisecond})

	r := runProbe(t, nil, "compare", before, after, "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := parseContract(t, r.stdout)
	if len(res.Rows) != len(httptrace.Phases) {
		t.Errorf("%d rows, want one per phase (one location: no per-location rows)", len(res.Rows))
	}
	ttfb := res.Rows[findRow(t, res, "ttfb", "all")]
	if ttfb.Verdict != "faster" || ttfb.A.N != 60 || ttfb.B.N != 60 || *ttfb.Diff > -0.025 || *ttfb.CIHigh >= 0 || *ttfb.CILow > -0.025 {
		t.Errorf("ttfb row %+v: want b faster by about 30 ms", ttfb)
	}
	if tls := res.Rows[findRow(t, res, "tls", "all")]; tls.Verdict != "no_change" {
		t.Errorf("tls verdict %s", tls.Verdict)
	}
	var extra struct {
		Sides struct{ A, B struct{ Label string } }
		Rows  []struct {
			PValue     *float64 `json:"p_value"`
			HL         *float64 `json:"hodges_lehmann_seconds"`
			EffectSize *float64 `json:"effect_size"`
		}
		Warnings []struct{ Code string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &extra); err != nil {
		t.Fatal(err)
	}
	if extra.Sides.A.Label != before || extra.Sides.B.Label != after || extra.Rows[0].PValue == nil || extra.Rows[0].EffectSize == nil {
		t.Errorf("extras: %+v", extra)
	}
	if len(extra.Warnings) != 0 {
		t.Errorf("warnings %+v", extra.Warnings)
	}
}

func TestCompareOneFileSides(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "samples.jsonl")
	rollout := t0.Add(24 * time.Hour)
	writeSamples(t, file, 3,
		sampleSpec{role: "origin", location: "lab", n: 48, ttfb: 40 * time.Millisecond},
		sampleSpec{role: "cdn", location: "lab", n: 48, ttfb: 45 * time.Millisecond},
		sampleSpec{role: "origin", location: "lab", n: 48, ttfb: 40 * time.Millisecond, start: rollout},
		sampleSpec{role: "cdn", location: "lab", n: 48, ttfb: 10 * time.Millisecond, start: rollout})

	cases := []struct {
		name      string
		args      []string
		labels    [2]string
		n         [2]int
		ttfb      string
		wantWarns []string
	}{
		{"before/after", []string{"--before", "2026-03-01/2026-03-02", "--after", "2026-03-02T00:00Z/24h", "--where", "role=cdn"},
			[2]string{"before", "after"}, [2]int{48, 48}, "faster", nil},
		{"at/window", []string{"--at", "2026-03-02T00:00", "--window", "24h", "--where", "role=cdn"},
			[2]string{"before", "after"}, [2]int{48, 48}, "faster", nil},
		{"roles, before the rollout", []string{"--a", "role=origin", "--b", "role=cdn", "--during", "2026-03-01/2026-03-02"},
			[2]string{"origin", "cdn"}, [2]int{48, 48}, "slower", nil},
		{"roles, whole file", []string{"--a", "role=origin", "--b", "role=cdn"},
			[2]string{"origin", "cdn"}, [2]int{96, 96}, "", nil},
		{"windows without a role: mixed", []string{"--at", "2026-03-02"},
			[2]string{"before", "after"}, [2]int{96, 96}, "faster", []string{"mixed_series"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runProbe(t, nil, append([]string{"compare", file, "--format", "json"}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			res := parseContract(t, r.stdout)
			var extra struct {
				Sides    struct{ A, B struct{ Label string } }
				Warnings []struct{ Code string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &extra); err != nil {
				t.Fatal(err)
			}
			if got := [2]string{extra.Sides.A.Label, extra.Sides.B.Label}; got != c.labels {
				t.Errorf("labels %v, want %v", got, c.labels)
			}
			ttfb := res.Rows[findRow(t, res, "ttfb", "all")]
			if got := [2]int{ttfb.A.N, ttfb.B.N}; got != c.n {
				t.Errorf("n %v, want %v", got, c.n)
			}
			if c.ttfb != "" && ttfb.Verdict != c.ttfb {
				t.Errorf("ttfb verdict %s, want %s", ttfb.Verdict, c.ttfb)
			}
			var codes []string
			for _, w := range extra.Warnings {
				codes = append(codes, w.Code)
			}
			for _, w := range c.wantWarns {
				if !slices.Contains(codes, w) {
					t.Errorf("warnings %v lack %s", codes, w)
				}
			}
		})
	}
}

func TestCompareTableMarkdownHTML(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeSamples(t, a, 4, sampleSpec{role: "origin", location: "eu-west-1", n: 40, ttfb: 50 * time.Millisecond},
		sampleSpec{role: "origin", location: "us-east-1", n: 40, ttfb: 50 * time.Millisecond})
	writeSamples(t, b, 5, sampleSpec{role: "cdn", location: "eu-west-1", n: 40, ttfb: 20 * time.Millisecond},
		sampleSpec{role: "cdn", location: "us-east-1", n: 10, ttfb: 20 * time.Millisecond})
	// A malformed line is skipped, named by file:line, and does not stop
	// the comparison.
	f, err := os.OpenFile(b, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"time": "yesterday"`)
	f.Close()

	report := filepath.Join(dir, "report.html")
	r := runProbe(t, nil, "compare", a, b, "--html", report)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	t.Log("\n" + r.stdout)
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour on a pipe")
	}
	for _, want := range []string{
		"location", "phase", "Δp50 ms", "95% CI ms", "verdict",
		"eu-west-1", "us-east-1", "faster", "insufficient",
		b + ":51: ", "skipped 1 malformed of 51 lines",
		"us-east-1: a has 40 probes and b 10 (4.0×)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	html, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "<svg") || !strings.Contains(r.stderr, "HTML report written") {
		t.Errorf("html report: %d bytes; stderr %q", len(html), r.stderr)
	}

	r = runProbe(t, nil, "compare", a, b, "--format", "markdown")
	if r.code != 0 {
		t.Fatalf("markdown: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"## probe compare", "| location | phase |", "| all | ttfb |", "**faster**", "**Warnings**"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("markdown lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCompareUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.jsonl")
	writeSamples(t, file, 6, sampleSpec{role: "cdn", location: "lab", n: 5, ttfb: time.Millisecond})
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"compare"}, "one or two JSONL files"},
		{[]string{"compare", file, file, file}, "one or two JSONL files"},
		{[]string{"compare", file}, "one file needs two sides"},
		{[]string{"compare", file, "--before", "2026-03-01/2026-03-02"}, "--before and --after go together"},
		{[]string{"compare", file, "--at", "2026-03-01", "--before", "2026-03-01/1h", "--after", "2026-03-01/2h"}, "--at sets both windows"},
		{[]string{"compare", file, "--window", "1h", "--a", "role=cdn", "--b", "role=origin"}, "--window goes with --at"},
		{[]string{"compare", file, "--at", "yesterday"}, "--at: time \"yesterday\""},
		{[]string{"compare", file, "--before", "2026-03-02/2026-03-01", "--after", "2026-03-02/1h"}, "the end is not after the start"},
		{[]string{"compare", file, "--a", "colour=blue", "--b", "role=cdn"}, `unknown key "colour"`},
		{[]string{"compare", file, "--where", "role=cdn", "--a", "role=origin", "--b", "role=cdn"}, "select nothing together"},
		{[]string{"compare", file, file, "--at", "2026-03-01"}, "with two files each file is a side"},
		{[]string{"compare", file, "--a", "role=cdn", "--b", "role=origin"}, "side origin (role=origin): no samples: " + file + " holds 5 samples"},
		{[]string{"compare", filepath.Join(dir, "missing.jsonl"), file}, "missing.jsonl: no such file"},
		{[]string{"compare", file, file, "--format", "xml"}, "--format"},
		{[]string{"compare", file, file, "--alpha", "2"}, "alpha 2"},
		{[]string{"compare", file, file, "--min-samples", "1"}, "min samples 1"},
		{[]string{"compare", "--prometheus", "http://127.0.0.1:1", file}, "--prometheus reads the samples from a server: no FILE arguments"},
		{[]string{"compare", "--prometheus", "http://127.0.0.1:1", "--route53", "--a", "role=a", "--b", "role=b"}, "each name the source: give one"},
		{[]string{"compare", "--route53", "--region", "eu-west-1", "--a", "role=a", "--b", "role=b"}, "Route 53's metrics are in AWS/Route53, us-east-1"},
		{[]string{"compare", file, file, "--namespace", "X"}, "--namespace and --region go with --cloudwatch"},
		{[]string{"compare", file, file, "--endpoint", "http://127.0.0.1:1"}, "--endpoint goes with --cloudwatch or --route53"},
		{[]string{"compare", "--prometheus", "http://127.0.0.1:1"}, "--prometheus needs two sides"},
		{[]string{"compare", "--prometheus", "prometheus:9090", "--a", "role=a", "--b", "role=b"}, `--prometheus: prometheus URL "prometheus:9090"`},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			r := runProbe(t, nil, c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, c.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout on a usage error: %q", r.stdout)
			}
		})
	}
}

// TestComparePrometheusUnreachable: a server that does not answer is a
// failure (exit 1) that names it, not a usage error.
func TestComparePrometheusUnreachable(t *testing.T) {
	r := runProbe(t, nil, "compare", "--prometheus", "http://127.0.0.1:1", "--a", "role=origin", "--b", "role=cdn")
	if r.code != 1 || !strings.Contains(r.stderr, "Prometheus at http://127.0.0.1:1") || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

// TestCompareAgentEndToEnd runs the agent in-process against two local
// servers whose answers wait 10 ms and 40 ms, writing JSONL for a few
// seconds; compare finds the fast one ("cdn") faster in ttfb, with an
// interval covering the true difference: that of the medians of what the
// servers really slept (a sleep overshoots by the timer's slack).
func TestCompareAgentEndToEnd(t *testing.T) {
	fast, fastWaits := labServer(t)
	slow, slowWaits := labServer(t)
	cfg, samples := twoWaysConfig(t, "100ms", "100ms", fast.URL()+"/?fb=10ms", slow.URL()+"/?fb=40ms")
	// Cancel (not a deadline): Run takes a cancel as a normal shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	defer time.AfterFunc(4*time.Second, cancel).Stop()
	started := time.Now()
	if err := agent.Run(ctx, agent.Options{ConfigPath: cfg, RunAtStart: true, DrainTimeout: 5 * time.Second}); err != nil {
		t.Fatalf("agent: %v", err)
	}
	t.Logf("agent ran %v", time.Since(started).Round(time.Millisecond))

	r := runProbe(t, nil, "compare", samples, "--a", "role=origin", "--b", "role=cdn", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := parseContract(t, r.stdout)
	ttfb := res.Rows[findRow(t, res, "ttfb", "all")]
	if ttfb.A.N < 20 || ttfb.B.N < 20 {
		t.Fatalf("too few samples in the run: a %d, b %d", ttfb.A.N, ttfb.B.N)
	}
	truth := sleptMedian(fastWaits) - sleptMedian(slowWaits)
	t.Logf("ttfb: a n %d p50 %.3f ms, b n %d p50 %.3f ms, diff %.3f ms, CI [%.3f, %.3f] ms; true difference %.3f ms",
		ttfb.A.N, *ttfb.A.P50*1000, ttfb.B.N, *ttfb.B.P50*1000, *ttfb.Diff*1000, *ttfb.CILow*1000, *ttfb.CIHigh*1000,
		float64(truth)/float64(time.Millisecond))
	if ttfb.Verdict != "faster" {
		t.Errorf("ttfb verdict %s, want faster", ttfb.Verdict)
	}
	lo, hi := time.Duration(*ttfb.CILow*float64(time.Second)), time.Duration(*ttfb.CIHigh*float64(time.Second))
	if lo > truth || hi < truth {
		t.Errorf("CI [%v, %v] does not cover the true difference %v", lo, hi, truth)
	}
}

// labServer answers after the ?fb= wait and records what it slept.
func labServer(t *testing.T) (*lab.HTTPServer, *lab.QueryDelay) {
	t.Helper()
	h := lab.QueryDelayHandler(16)
	srv, err := lab.NewHTTPServer(lab.ServerOptions{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, h
}

// sleptMedian is the median (nearest rank, as compare reports) of what a
// server slept before its first byte.
func sleptMedian(q *lab.QueryDelay) time.Duration {
	fb, _ := q.Waits()
	slices.Sort(fb)
	return report.Percentile(fb, 50)
}

// TestComparePrometheusEndToEnd runs the agent in-process against two
// local servers that wait 10 ms (role cdn) and 60 ms (role origin) before
// answering, scraped by two real Prometheus servers: one keeping classic
// histograms, one with the native-histograms feature, which (2.42) keeps
// only the native form. `probe compare --prometheus` on either finds cdn
// faster in ttfb and total, marks the rows approximate, and counts about
// the probes the agent's JSONL file holds for the same window. (60 ms, not
// 40: 10 and 40 ms fall in the adjacent classic buckets (0.01, 0.025] and
// (0.025, 0.05], whose closed-interval difference [−40, 0] ms Compare
// does not call faster.)
func TestComparePrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the agent for 15 s and two Prometheus servers")
	}
	fast, _ := labServer(t)
	slow, _ := labServer(t)
	cfg, samples := twoWaysConfig(t, "250ms", "200ms", fast.URL()+"/?fb=10ms", slow.URL()+"/?fb=60ms")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	ag, err := agent.New(ctx, agent.Options{ConfigPath: cfg, Listen: "127.0.0.1:0", RunAtStart: true,
		DrainTimeout: 5 * time.Second, Ready: func(addr string) { ready <- addr }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready")
	}
	scrape := testkit.PrometheusOptions{ScrapeTargets: []string{addr}, ScrapeInterval: 500 * time.Millisecond}
	classic := testkit.StartPrometheus(t, scrape)
	scrape.NativeHistograms = true
	native := testkit.StartPrometheus(t, scrape)
	// The window starts once both have scraped the agent: increase() does
	// not count what a counter held at its first scrape.
	deadline := time.Now().Add(20 * time.Second)
	for _, base := range []string{classic, native} {
		for {
			res, err := testkit.PromQuery(context.Background(), base, `edgeprobe_probes_total{result="success"} > 0`)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has not scraped the agent", base)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	from := time.Now()
	time.Sleep(15 * time.Second)
	to := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
	during := from.UTC().Format(time.RFC3339Nano) + "/" + to.UTC().Format(time.RFC3339Nano)

	// Which form each Prometheus kept.
	for _, c := range []struct {
		base    string
		buckets bool
	}{{classic, true}, {native, false}} {
		res, err := testkit.PromQuery(context.Background(), c.base, `count(edgeprobe_phase_duration_seconds_bucket)`)
		if err != nil {
			t.Fatal(err)
		}
		if (len(res) > 0) != c.buckets {
			t.Fatalf("%s: classic buckets %v, want %v", c.base, res, c.buckets)
		}
	}

	exact := runProbe(t, nil, "compare", samples, "--a", "role=origin", "--b", "role=cdn", "--during", during, "--format", "json")
	if exact.code != 0 {
		t.Fatalf("jsonl: exit %d: %s", exact.code, exact.stderr)
	}
	truth := parseContract(t, exact.stdout)
	jsonlTTFB := truth.Rows[findRow(t, truth, "ttfb", "all")]

	for _, c := range []struct{ name, base string }{{"classic", classic}, {"native", native}} {
		t.Run(c.name, func(t *testing.T) {
			r := runProbe(t, nil, "compare", "--prometheus", c.base, "--a", "role=origin", "--b", "role=cdn", "--during", during, "--format", "json")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			res := parseContract(t, r.stdout)
			var extra struct {
				Sides struct{ A, B struct{ Approximate bool } }
				Rows  []struct {
					Phase, Location string
					Approximate     bool
				}
				Failures []struct {
					Location string
					A, B     struct{ Probes, Failed int }
				}
				Warnings []struct{ Code string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &extra); err != nil {
				t.Fatal(err)
			}
			if !extra.Sides.A.Approximate || !extra.Sides.B.Approximate {
				t.Errorf("sides not marked approximate: %+v", extra.Sides)
			}
			for _, phase := range []string{"ttfb", "total"} {
				i := findRow(t, res, phase, "all")
				row := res.Rows[i]
				t.Logf("%s %s: a n %d p50 %.2f ms, b n %d p50 %.2f ms, CI [%.2f, %.2f] ms, %s", c.name, phase,
					row.A.N, *row.A.P50*1000, row.B.N, *row.B.P50*1000, *row.CILow*1000, *row.CIHigh*1000, row.Verdict)
				if row.Verdict != "faster" || !extra.Rows[i].Approximate || *row.CIHigh >= 0 {
					t.Errorf("%s: verdict %s, approximate %v, CI high %v: want cdn faster, approximately", phase, row.Verdict, extra.Rows[i].Approximate, *row.CIHigh)
				}
				// The bucket holding each median holds the true one.
				if *row.A.P50 < 0.05 || *row.A.P50 > 0.075 || *row.B.P50 < 0.01 || *row.B.P50 > 0.025 {
					t.Errorf("%s: p50 a %v b %v s, want about 0.06 and 0.01", phase, *row.A.P50, *row.B.P50)
				}
			}
			// increase() extrapolates and misses what came before the first
			// scrape: about the JSONL file's counts, within a tenth.
			ttfb := res.Rows[findRow(t, res, "ttfb", "all")]
			for _, n := range [][2]int{{ttfb.A.N, jsonlTTFB.A.N}, {ttfb.B.N, jsonlTTFB.B.N}} {
				if math.Abs(float64(n[0]-n[1])) > 0.1*float64(n[1]) || n[0] < 20 {
					t.Errorf("n %d from Prometheus, %d in the JSONL file", n[0], n[1])
				}
			}
			if len(extra.Failures) != 1 || extra.Failures[0].A.Failed+extra.Failures[0].B.Failed != 0 || extra.Failures[0].A.Probes < 20 {
				t.Errorf("failures %+v", extra.Failures)
			}
			for _, w := range extra.Warnings {
				if w.Code != "approximate" {
					t.Errorf("warning %s", w.Code)
				}
			}
		})
	}

	// The table marks the rows approximate; the HTML report draws them.
	report := filepath.Join(filepath.Dir(samples), "report.html")
	r := runProbe(t, nil, "compare", "--prometheus", native, "--a", "role=origin", "--b", "role=cdn", "--during", during, "--html", report)
	if r.code != 0 || !strings.Contains(r.stdout, "≈") || !strings.Contains(r.stdout, "faster") {
		t.Errorf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if html, err := os.ReadFile(report); err != nil || !strings.Contains(string(html), "<svg") || !strings.Contains(string(html), "histogram buckets: approximate") {
		t.Errorf("html report: %v, %d bytes", err, len(html))
	}
}

// awsClients are SDK clients on the emulator, built as the command builds
// them (route53.NewClient, route53.NewCloudWatch).
func awsClients(endpoint string) (*r53.Client, *cloudwatch.Client) {
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	})}
	return route53.NewClient(cfg, endpoint), route53.NewCloudWatch(cfg, route53.Route53Region, endpoint)
}

// putMetrics puts datums into moto uncompressed (moto 5.2.1 gunzips a JSON
// body twice).
func putMetrics(t *testing.T, cw *cloudwatch.Client, ns string, data []cwtypes.MetricDatum) {
	t.Helper()
	for len(data) > 0 {
		n := min(len(data), 500)
		if _, err := cw.PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: data[:n]},
			func(o *cloudwatch.Options) { o.DisableRequestCompression = true }); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

func dimensions(kv ...string) []cwtypes.Dimension {
	var out []cwtypes.Dimension
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, cwtypes.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

// TestCompareAWSSourcesMoto runs `probe compare --route53` and
// `--cloudwatch` against the moto emulator with data put there.
//
// Route 53: two health checks tagged as edgeprobe's (origin, cdn) with a
// statistic set per checker region and minute, as Route 53 publishes
// them; compare reads the minute averages (moto computes Average) and
// finds cdn's TimeToFirstByte faster in every region, warning that the
// values are averages.
//
// CloudWatch: the agent's metrics (Values/Counts, dimensions Target, Role,
// Location) reach the command through --endpoint, --region and
// --namespace, but moto 5.2.1 cannot compute the percentile ranks the
// source reads the distribution with (the compare package's tests run the
// whole source against a fake that can): the command fails with moto's
// answer to the PR query, after discovery and the counts worked.
func TestCompareAWSSourcesMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto")
	}
	m := testkit.StartMoto(t) // dummy credentials in the environment, which the command inherits
	api, cw := awsClients(m.URL())
	end := time.Now().UTC().Truncate(time.Minute)
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-1"}
	rng := rand.New(rand.NewPCG(11, 11))
	for _, c := range []struct {
		role string
		ttfb float64
	}{{"origin", 80}, {"cdn", 20}} {
		out, err := api.CreateHealthCheck(context.Background(), &r53.CreateHealthCheckInput{
			CallerReference: aws.String("edgeprobe-shop-" + c.role),
			HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String(c.role + ".shop.example"),
				Port: aws.Int32(443), ResourcePath: aws.String("/"), MeasureLatency: aws.Bool(true)}})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.HealthCheck.Id)
		if _, err := api.ChangeTagsForResource(context.Background(), &r53.ChangeTagsForResourceInput{
			ResourceType: r53types.TagResourceTypeHealthcheck, ResourceId: aws.String(id),
			AddTags: []r53types.Tag{{Key: aws.String(route53.TagTarget), Value: aws.String("shop")},
				{Key: aws.String(route53.TagRole), Value: aws.String(c.role)}, {Key: aws.String(route53.TagManaged), Value: aws.String("true")}}}); err != nil {
			t.Fatal(err)
		}
		var data []cwtypes.MetricDatum
		for _, region := range regions {
			for i := range 30 {
				avg := c.ttfb * (0.9 + 0.2*rng.Float64())
				data = append(data, cwtypes.MetricDatum{MetricName: aws.String("TimeToFirstByte"), Dimensions: dimensions("HealthCheckId", id, "Region", region),
					Timestamp: aws.Time(end.Add(-time.Duration(30-i) * time.Minute)), Unit: cwtypes.StandardUnitMilliseconds,
					StatisticValues: &cwtypes.StatisticSet{SampleCount: aws.Float64(2), Sum: aws.Float64(2 * avg), Minimum: aws.Float64(avg), Maximum: aws.Float64(avg)}})
			}
		}
		putMetrics(t, cw, route53.Route53Namespace, data)
	}
	during := end.Add(-time.Hour).Format(time.RFC3339) + "/" + end.Format(time.RFC3339)

	r := runProbe(t, nil, "compare", "--route53", "--endpoint", m.URL(), "--a", "role=origin", "--b", "role=cdn", "--during", during, "--format", "json")
	if r.code != 0 {
		t.Fatalf("--route53: exit %d: %s", r.code, r.stderr)
	}
	res := parseContract(t, r.stdout)
	for _, loc := range append([]string{"all"}, regions...) {
		row := res.Rows[findRow(t, res, "ttfb", loc)]
		want := 30
		if loc == "all" {
			want = 90
		}
		if row.Verdict != "faster" || row.A.N != want || row.B.N != want {
			t.Errorf("route53 ttfb at %s: %s, n %d/%d (want %d minute averages)", loc, row.Verdict, row.A.N, row.B.N, want)
		}
	}
	if !strings.Contains(r.stdout, `"code": "averages_only"`) {
		t.Errorf("no averages_only warning:\n%s", r.stdout)
	}

	// The agent's CloudWatch metrics, as the exporter sends them.
	const ns = "EdgeProbeCLI"
	var data []cwtypes.MetricDatum
	for _, role := range []string{"origin", "cdn"} {
		dims := dimensions("Target", "shop", "Role", role, "Location", "lab")
		data = append(data,
			cwtypes.MetricDatum{MetricName: aws.String("Success"), Dimensions: dims, Timestamp: aws.Time(end.Add(-10 * time.Minute)),
				Unit: cwtypes.StandardUnitNone, Values: []float64{1}, Counts: []float64{30}},
			cwtypes.MetricDatum{MetricName: aws.String("TimeToFirstByte"), Dimensions: dims, Timestamp: aws.Time(end.Add(-10 * time.Minute)),
				Unit: cwtypes.StandardUnitMilliseconds, Values: []float64{10.05, 40.2}, Counts: []float64{20, 10}})
	}
	putMetrics(t, cw, ns, data)
	r = runProbe(t, nil, "compare", "--cloudwatch", "--endpoint", m.URL(), "--region", "us-east-1", "--namespace", ns,
		"--a", "role=origin", "--b", "role=cdn", "--during", during)
	t.Logf("--cloudwatch on moto: %s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "percentile ranks (PR)") || !strings.Contains(r.stderr, "StatusCode: 500") {
		t.Errorf("--cloudwatch on moto: exit %d, want 1 with moto's 500 for PR: %s", r.code, r.stderr)
	}
	r = runProbe(t, nil, "compare", "--cloudwatch", "--endpoint", m.URL(), "--region", "us-east-1", "--namespace", "Nothing",
		"--a", "role=origin", "--b", "role=cdn", "--during", during)
	if r.code != 2 || !strings.Contains(r.stderr, "no samples: CloudWatch namespace Nothing lists no metrics of the agent's") {
		t.Errorf("--cloudwatch, empty namespace: exit %d: %s", r.code, r.stderr)
	}
	r = runProbe(t, []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_CONFIG_FILE=/dev/null"}, "compare", "--cloudwatch",
		"--a", "role=origin", "--b", "role=cdn")
	if r.code != 2 || !strings.Contains(r.stderr, "--cloudwatch: no AWS region") {
		t.Errorf("--cloudwatch without a region: exit %d: %s", r.code, r.stderr)
	}
}

// twoWaysConfig writes an agent config with one target "site" whose cdn
// way is cdnURL and origin way originURL, samples to a JSONL file; it
// returns the config's and the samples' paths.
func twoWaysConfig(t *testing.T, interval, timeout, cdnURL, originURL string) (cfg, samples string) {
	t.Helper()
	dir := t.TempDir()
	samples = filepath.Join(dir, "samples.jsonl")
	cfg = filepath.Join(dir, "edgeprobe.yml")
	config := fmt.Sprintf(`location: lab
defaults: {interval: %s, timeout: %s}
targets:
  - name: site
    url: %s
    roles:
      cdn: {}
      origin: {url: %s}
exporters:
  jsonl: {path: %s}
`, interval, timeout, strconv.Quote(cdnURL), strconv.Quote(originURL), strconv.Quote(samples))
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, samples
}
