package promexp

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

func TestMain(m *testing.M) {
	if n := os.Getenv(benchServerEnv); n != "" {
		os.Exit(runBenchServer(n))
	}
	goleak.VerifyTestMain(m)
}

func newTestExporter(t *testing.T) (*prometheus.Registry, *Exporter) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return reg, New(reg, nil)
}

func write(e *Exporter, samples ...*probe.Sample) {
	for _, s := range samples {
		e.Write(context.Background(), s)
	}
}

// catalogue describes every gathered family: name, type, label names, help,
// and the values of the enumerated labels (phase, result), which are part
// of the contract too.
func catalogue(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b strings.Builder
	b.WriteString("# The Prometheus metric contract (DESIGN.md): every family with its type, label names and help.\n")
	b.WriteString("# Generated from representative samples; a difference fails TestMetricCatalogue on purpose.\n")
	b.WriteString("# After a deliberate change: go test ./exporters/prometheus -run TestMetricCatalogue -update\n")
	for _, mf := range mfs {
		typ := strings.ToLower(mf.GetType().String())
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			h := mf.GetMetric()[0].GetHistogram()
			switch {
			case h.Schema != nil && len(h.GetBucket()) > 0:
				typ += " (classic + native)"
			case h.Schema != nil:
				typ += " (native)"
			}
		}
		sets := map[string]bool{}
		enums := map[string]map[string]bool{}
		for _, m := range mf.GetMetric() {
			var names []string
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
				if n := lp.GetName(); n == "phase" || n == "result" {
					if enums[n] == nil {
						enums[n] = map[string]bool{}
					}
					enums[n][lp.GetValue()] = true
				}
			}
			sort.Strings(names)
			sets["{"+strings.Join(names, ", ")+"}"] = true
		}
		fmt.Fprintf(&b, "\n%s %s\n", mf.GetName(), typ)
		for _, s := range slices.Sorted(mapKeys(sets)) {
			fmt.Fprintf(&b, "  labels: %s\n", s)
		}
		for _, n := range slices.Sorted(mapKeys(enums)) {
			fmt.Fprintf(&b, "  %s: %s\n", n, strings.Join(slices.Sorted(mapKeys(enums[n])), ", "))
		}
		if h := mf.GetMetric()[0].GetHistogram(); h != nil {
			// Bucket bounds are contract too: SLO queries select on le.
			var les []string
			for _, bk := range h.GetBucket() {
				les = append(les, fmt.Sprint(bk.GetUpperBound()))
			}
			fmt.Fprintf(&b, "  buckets: %s\n", strings.Join(les, ", "))
			if h.Schema != nil {
				fmt.Fprintf(&b, "  native schema: %d\n", h.GetSchema())
			}
		}
		fmt.Fprintf(&b, "  help: %s\n", mf.GetHelp())
	}
	return b.String()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestMetricCatalogue pins every exported metric name, type, help and
// label set: changing the contract must be a deliberate act (-update).
func TestMetricCatalogue(t *testing.T) {
	reg, e := newTestExporter(t)
	write(e, allSamples()...)
	got := catalogue(t, reg)
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("metric catalogue changed; if on purpose, run with -update and say so in the change.\n%s", lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// find returns the metric of family name whose labels include want, or nil.
func find(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if testkit.MetricHasLabels(m, want) {
				return m
			}
		}
	}
	return nil
}

func count(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPhaseHistogramLabels(t *testing.T) {
	reg, e := newTestExporter(t)
	cdn, origin := cdnSample(), originSample()
	write(e, cdn, origin)

	for _, p := range phases {
		want := cdn.Timings.Get(p).Seconds()
		m := find(t, reg, "edgeprobe_phase_duration_seconds",
			lbl("target", "shop", "role", "cdn", "location", testLocation, "address", "", "phase", p))
		if m == nil {
			t.Fatalf("no %s histogram for shop/cdn", p)
		}
		h := m.GetHistogram()
		if h.GetSampleCount() != 1 || !approx(h.GetSampleSum(), want) {
			t.Errorf("%s: count %d sum %g, want 1 and %g", p, h.GetSampleCount(), h.GetSampleSum(), want)
		}
		if h.GetSchema() == 0 && h.Schema == nil {
			t.Errorf("%s: no native histogram", p)
		}
		if len(h.GetBucket()) != len(Buckets) {
			t.Errorf("%s: %d classic buckets, want %d", p, len(h.GetBucket()), len(Buckets))
		}
	}
	// The origin is an IP literal over http: no dns, no tls observed; its
	// address label is set.
	originLabels := lbl("target", "shop", "role", "origin", "address", "ipv4-0")
	for _, p := range []string{"dns", "tls"} {
		if m := find(t, reg, "edgeprobe_phase_duration_seconds", merge(originLabels, "phase", p)); m != nil {
			t.Errorf("origin: %s observed although it did not happen", p)
		}
	}
	if m := find(t, reg, "edgeprobe_phase_duration_seconds", merge(originLabels, "phase", "connect")); m == nil || m.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("origin: connect not observed once: %v", m)
	}

	// Follow-up requests and upstream timings.
	checks := []struct {
		name, phase string
		want        float64
	}{
		{"edgeprobe_revalidation_duration_seconds", "ttfb", 0.015},
		{"edgeprobe_revalidation_duration_seconds", "total", 0.031},
		{"edgeprobe_keepalive_duration_seconds", "ttfb", 0.020},
		{"edgeprobe_keepalive_duration_seconds", "total", 0.021},
		{"edgeprobe_upstream_duration_seconds", "dns", 0.001},
		{"edgeprobe_upstream_duration_seconds", "connect", 0.012},
		{"edgeprobe_upstream_duration_seconds", "first_byte", 0.080},
		{"edgeprobe_upstream_duration_seconds", "downstream_first_byte", 0.025},
	}
	for _, c := range checks {
		m := find(t, reg, c.name, lbl("target", "shop", "role", "cdn", "location", testLocation, "phase", c.phase))
		if m == nil || m.GetHistogram().GetSampleCount() != 1 || !approx(m.GetHistogram().GetSampleSum(), c.want) {
			t.Errorf("%s{phase=%q}: %v, want one observation of %g", c.name, c.phase, m, c.want)
		}
	}
	if n := count(t, reg, "edgeprobe_upstream_duration_seconds"); n != 4 {
		t.Errorf("upstream series: %d, want 4 (the origin has no Server-Timing)", n)
	}

	// Gauges and counters of the success.
	cdnLabels := lbl("target", "shop", "role", "cdn", "location", testLocation, "address", "")
	gauges := map[string]float64{
		"edgeprobe_probe_success":                        1,
		"edgeprobe_probe_duration_seconds":               0.0485,
		"edgeprobe_last_probe_timestamp_seconds":         float64(t0.Unix()),
		"edgeprobe_http_status_code":                     200,
		"edgeprobe_tls_cert_not_after_timestamp_seconds": float64(cdn.TLS.NotAfter.Unix()),
	}
	for name, want := range gauges {
		m := find(t, reg, name, cdnLabels)
		if name == "edgeprobe_tls_cert_not_after_timestamp_seconds" {
			m = find(t, reg, name, lbl("target", "shop", "role", "cdn"))
		}
		if m == nil || !approx(m.GetGauge().GetValue(), want) {
			t.Errorf("%s: %v, want %g", name, m, want)
		}
	}
	if m := find(t, reg, "edgeprobe_probes_total", merge(cdnLabels, "result", "success")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("probes_total success: %v", m)
	}
	if m := find(t, reg, "edgeprobe_cache_results_total", lbl("target", "shop", "role", "cdn", "cache", "hit", "pop", "FRA56-P1")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("cache_results_total hit FRA56-P1: %v", m)
	}
	if m := find(t, reg, "edgeprobe_cache_results_total", lbl("target", "shop", "role", "origin", "cache", "unknown", "pop", "")); m == nil {
		t.Errorf("origin: cache_results_total unknown missing")
	}
	if m := find(t, reg, "edgeprobe_revalidations_total", lbl("target", "shop", "role", "cdn", "result", "not_modified")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("revalidations not_modified: %v", m)
	}
	if m := find(t, reg, "edgeprobe_revalidations_total", lbl("target", "shop", "role", "origin", "result", "skipped_no_validator")); m == nil {
		t.Errorf("revalidations skipped_no_validator missing")
	}
	info := lbl("target", "shop", "role", "cdn", "http_version", "HTTP/2.0", "tls_version", "TLS 1.3", "ip_family", "ipv4", "cdn", "cloudfront")
	if m := find(t, reg, "edgeprobe_probe_info", info); m == nil || m.GetGauge().GetValue() != 1 {
		t.Errorf("probe_info: %v", m)
	}
}

func merge(base map[string]string, kv ...string) map[string]string {
	m := lbl(kv...)
	for k, v := range base {
		m[k] = v
	}
	return m
}

func TestFailedSample(t *testing.T) {
	reg, e := newTestExporter(t)
	write(e, cdnSample())
	s := failedSample("shop", httptrace.ErrTimeout)
	write(e, s)
	l := lbl("target", "shop", "role", "cdn", "location", testLocation, "address", "")

	if m := find(t, reg, "edgeprobe_probes_total", merge(l, "result", "timeout")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("probes_total{result=timeout}: %v, want 1", m)
	}
	if m := find(t, reg, "edgeprobe_probes_total", merge(l, "result", "success")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("probes_total{result=success}: %v, want 1", m)
	}
	if m := find(t, reg, "edgeprobe_probe_success", l); m == nil || m.GetGauge().GetValue() != 0 {
		t.Errorf("probe_success: %v, want 0", m)
	}
	if m := find(t, reg, "edgeprobe_probe_duration_seconds", l); m == nil || m.GetGauge().GetValue() != 10 {
		t.Errorf("probe_duration_seconds: %v, want the time to failure, 10", m)
	}
	if m := find(t, reg, "edgeprobe_http_status_code", l); m == nil || m.GetGauge().GetValue() != 0 {
		t.Errorf("http_status_code: %v, want 0 (no response)", m)
	}
	// The timeout came after the connection was up (tls finished, but no
	// proof of it in the result, so not observed); dns and connect were
	// observed; nothing of the response, and total stays at the success's
	// single observation.
	wantCount := map[string]uint64{"dns": 2, "connect": 2, "tls": 1, "ttfb": 1, "transfer": 1, "total": 1, "first_byte": 1}
	for p, want := range wantCount {
		m := find(t, reg, "edgeprobe_phase_duration_seconds", merge(l, "phase", p))
		if got := m.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("phase %s: %d observations, want %d", p, got, want)
		}
	}
}

// TestFreshSeriesStartAtZero: a job's first sample may be a failure;
// probes_total{result="success"} exists anyway, so rate() works from the
// first success on.
func TestFreshSeriesStartAtZero(t *testing.T) {
	reg, e := newTestExporter(t)
	write(e, failedSample("new", httptrace.ErrDNS))
	m := find(t, reg, "edgeprobe_probes_total", lbl("target", "new", "result", "success"))
	if m == nil || m.GetCounter().GetValue() != 0 {
		t.Fatalf("probes_total{result=success}: %v, want 0", m)
	}
	if n := count(t, reg, "edgeprobe_phase_duration_seconds"); n != 0 {
		t.Errorf("a DNS failure observed %d phase series, want none", n)
	}
}

func TestCompletedPhases(t *testing.T) {
	// dns, connect, tls, ttfb, transfer, total, first_byte
	cases := map[string][numPhases]bool{
		httptrace.ErrDNS:     {},
		httptrace.ErrConnect: {true, false, false},
		httptrace.ErrTLS:     {true, true, false},
		httptrace.ErrHTTP:    {true, true, true},
		httptrace.ErrTimeout: {true, true, false},
		httptrace.ErrAssert:  {true, true, true},
	}
	for phase, want := range cases {
		if got := completedPhases(failedSample("x", phase).Result); got != want {
			t.Errorf("%s: %v, want %v", phase, got, want)
		}
	}
	// A timeout during DNS: the lookup's end is stamped, but nothing proves
	// it succeeded.
	r := &httptrace.Result{Timings: httptrace.Timings{DNS: msec(10000)}, Err: &httptrace.Error{Phase: httptrace.ErrTimeout}}
	if got := completedPhases(r); got[pDNS] {
		t.Errorf("dns timeout: dns counted as completed")
	}
	// A timeout once the response had started proves TLS finished.
	r = failedSample("x", httptrace.ErrTimeout).Result
	r.Timings.TTFB = msec(9000)
	if got := completedPhases(r); !got[pTLS] || got[pTTFB] {
		t.Errorf("timeout after first byte: %v", got)
	}
}

func TestForgetKeepsCountersOfKeptJobs(t *testing.T) {
	reg, e := newTestExporter(t)
	keep, drop := cdnSample(), cdnSample()
	drop.Target = "gone"
	for range 3 {
		write(e, keep, drop)
	}
	e.Forget(func(target, _ string) bool { return target != "gone" })

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "target" && lp.GetValue() == "gone" {
					t.Errorf("%s still has a series of the forgotten job", mf.GetName())
				}
			}
		}
	}
	if m := find(t, reg, "edgeprobe_probes_total", lbl("target", "shop", "result", "success")); m == nil || m.GetCounter().GetValue() != 3 {
		t.Errorf("kept job's probes_total: %v, want 3", m)
	}
	if m := find(t, reg, "edgeprobe_phase_duration_seconds", lbl("target", "shop", "phase", "total")); m == nil || m.GetHistogram().GetSampleCount() != 3 {
		t.Errorf("kept job's histogram: %v, want 3 observations", m)
	}
	if n := len(e.Status()); n != 1 {
		t.Errorf("status rows after Forget: %d, want 1", n)
	}
	// The job configured again starts afresh.
	write(e, drop)
	if m := find(t, reg, "edgeprobe_probes_total", lbl("target", "gone", "result", "success")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("re-added job's probes_total: %v, want 1", m)
	}
	if m := find(t, reg, "edgeprobe_build_info", nil); m == nil {
		t.Errorf("Forget removed build_info")
	}
}

func TestInfoSeriesReplaced(t *testing.T) {
	reg, e := newTestExporter(t)
	s := cdnSample()
	write(e, s)
	s.Proto = "HTTP/1.1"
	write(e, s, s)
	if n := count(t, reg, "edgeprobe_probe_info"); n != 1 {
		t.Fatalf("probe_info series: %d, want 1", n)
	}
	if m := find(t, reg, "edgeprobe_probe_info", lbl("http_version", "HTTP/1.1")); m == nil {
		t.Errorf("probe_info kept the old value set")
	}
}

// TestHostileLabelValues: label values read from responses are bounded in
// number and size, and invalid UTF-8 never panics.
func TestHostileLabelValues(t *testing.T) {
	reg, e := newTestExporter(t)
	s := cdnSample()
	for i := range 200 {
		s.CDN.POP = fmt.Sprintf("POP%03d", i)
		write(e, s)
	}
	s.CDN.POP = strings.Repeat("x", 1000)
	write(e, s)
	s.CDN.POP, s.Proto = "\xff\xfe", "\xff"
	write(e, s)
	if n := count(t, reg, "edgeprobe_cache_results_total"); n > maxPOPsPerSeries+1 {
		t.Errorf("cache_results_total series: %d, want at most %d", n, maxPOPsPerSeries+1)
	}
	m := find(t, reg, "edgeprobe_cache_results_total", lbl("pop", popOverflow))
	if m == nil || m.GetCounter().GetValue() != 200-maxPOPsPerSeries+2 {
		t.Errorf("overflow POP series: %v", m)
	}
	if m := find(t, reg, "edgeprobe_probe_info", lbl("http_version", "\uFFFD")); m == nil {
		t.Errorf("invalid UTF-8 in http_version not replaced")
	}
}

func TestConstLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := New(reg, map[string]string{"env": "prod"})
	write(e, cdnSample())
	for _, name := range []string{"edgeprobe_probes_total", "edgeprobe_build_info", "edgeprobe_phase_duration_seconds"} {
		if m := find(t, reg, name, lbl("env", "prod")); m == nil {
			t.Errorf("%s lacks the constant label", name)
		}
	}
}

func TestNilSampleIgnored(t *testing.T) {
	reg, e := newTestExporter(t)
	e.Write(context.Background(), nil)
	e.Write(context.Background(), &probe.Sample{Target: "x"})
	if n := count(t, reg, "edgeprobe_probes_total"); n != 0 {
		t.Errorf("series from samples without a result: %d", n)
	}
}

// TestConcurrentUse runs writers, Forget and the status page together;
// -race checks the locking.
func TestConcurrentUse(t *testing.T) {
	reg, e := newTestExporter(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				s := cdnSample()
				s.Target = fmt.Sprintf("t%d", (w+i)%5)
				e.Write(context.Background(), s)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			e.Forget(func(target, _ string) bool { return target != "t4" })
			_ = e.Status()
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

// TestWriteDoesNotAllocate: once a series is known, a sample costs no
// allocation (a new native bucket may, now and then).
func TestWriteDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, e := newTestExporter(t)
	s := cdnSample()
	write(e, s, s)
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { e.Write(ctx, s) }); n != 0 {
		t.Errorf("Write: %.1f allocations per sample, want 0", n)
	}
}
