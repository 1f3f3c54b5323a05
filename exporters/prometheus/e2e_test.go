package promexp

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

const pollLimit = 20 * time.Second

// TestPrometheusScrapesEveryMetric runs the Debian Prometheus against the
// exporter's server and queries each documented metric through its HTTP
// API, as a dashboard or an alert would.
func TestPrometheusScrapesEveryMetric(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus")
	}
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("prometheus not installed (scripts/deps.sh installs it)")
	}

	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	exporterAddr := startServer(t, probe.PrometheusConfig{}, reg, e)

	// Keep probing while Prometheus scrapes, so rate() has something to see.
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, s := range allSamples() {
				if s.Target == "shop" && s.Role == "cdn" {
					// Vary the timings a little: a real distribution.
					s.Timings.TTFB += msec(float64(i % 7))
				}
				e.Write(ctx, s)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-fed })

	// Prometheus 2.42 ingests a histogram either as native (with the
	// feature flag, scraping protobuf) or as classic series (without it,
	// scraping OpenMetrics text), never both (scrape_classic_histograms came
	// in 2.45). So two servers scrape the exporter: one for each way users
	// run it. Both start before either is waited for to scrape, and both
	// must have scraped within pollLimit of the first start.
	scraped := time.Now().Add(pollLimit)
	native, classic := startPrometheus(t, exporterAddr, true), startPrometheus(t, exporterAddr, false)
	for _, api := range []promAPI{native, classic} {
		api.waitScraped(t, scraped)
	}

	shopCDN := map[string]string{"target": "shop", "role": "cdn", "location": testLocation}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	type check struct {
		query string
		want  map[string]string // labels some result must carry
	}
	// Every metric that is not a histogram, in both exposition formats.
	common := []check{
		{`edgeprobe_probes_total{result="success",target="shop",role="cdn"}`, with(shopCDN, "result", "success", "address", "")},
		{`edgeprobe_probes_total{result="timeout"}`, map[string]string{"target": "fail-timeout", "role": "cdn", "result": "timeout"}},
		{`edgeprobe_probe_success{target="fail-dns"} == 0`, map[string]string{"target": "fail-dns", "location": testLocation}},
		{`edgeprobe_probe_success{role="origin"} == 1`, map[string]string{"target": "shop", "address": "ipv4-0"}},
		{`edgeprobe_probe_duration_seconds{target="shop",role="cdn"}`, shopCDN},
		{`edgeprobe_last_probe_timestamp_seconds{target="shop",role="cdn"}`, shopCDN},
		{`edgeprobe_cache_results_total{cache="hit"}`, with(shopCDN, "pop", "FRA56-P1")},
		{`edgeprobe_cache_results_total{cache="error"}`, map[string]string{"target": "fail-assert", "pop": "IAD89-C1"}},
		{`edgeprobe_tls_cert_not_after_timestamp_seconds{target="shop"}`, shopCDN},
		{`edgeprobe_http_status_code{target="fail-assert"} == 503`, map[string]string{"target": "fail-assert"}},
		{`edgeprobe_probe_info{target="shop",role="cdn"}`, with(shopCDN, "http_version", "HTTP/2.0", "tls_version", "TLS 1.3", "ip_family", "ipv4", "cdn", "cloudfront")},
		{`edgeprobe_revalidations_total{result="not_modified"}`, shopCDN},
		{`edgeprobe_revalidations_total{result="skipped_no_validator"}`, map[string]string{"target": "shop", "role": "origin"}},
		{`edgeprobe_build_info`, map[string]string{"job": "edgeprobe"}},
	}
	// The histograms, each way.
	type histCheck struct {
		metric, selector string
		want             map[string]string
	}
	hists := []histCheck{
		{"edgeprobe_phase_duration_seconds", `phase="tls"`, with(shopCDN, "address", "", "phase", "tls")},
		{"edgeprobe_revalidation_duration_seconds", `phase="ttfb",target="shop"`, with(shopCDN, "phase", "ttfb")},
		{"edgeprobe_keepalive_duration_seconds", `phase="total",target="shop"`, with(shopCDN, "phase", "total")},
		{"edgeprobe_upstream_duration_seconds", `phase="downstream_first_byte"`, with(shopCDN, "phase", "downstream_first_byte")},
	}
	nativeChecks, classicChecks := append([]check(nil), common...), append([]check(nil), common...)
	for _, h := range hists {
		nativeChecks = append(nativeChecks, check{fmt.Sprintf("histogram_count(%s{%s})", h.metric, h.selector), h.want})
		classicChecks = append(classicChecks, check{fmt.Sprintf("%s_count{%s}", h.metric, h.selector), h.want})
	}
	// The dashboards' question: a median per target, role and phase.
	medianLabels := map[string]string{"target": "shop", "role": "cdn", "phase": "ttfb"}
	nativeChecks = append(nativeChecks, check{`histogram_quantile(0.5, sum by (target, role, phase) (rate(edgeprobe_phase_duration_seconds[1m])))`, medianLabels})
	classicChecks = append(classicChecks, check{`histogram_quantile(0.5, sum by (target, role, phase, le) (rate(edgeprobe_phase_duration_seconds_bucket[1m])))`, medianLabels})

	deadline := time.Now().Add(pollLimit)
	for _, run := range []struct {
		api    promAPI
		checks []check
	}{{native, nativeChecks}, {classic, classicChecks}} {
		for _, c := range run.checks {
			var res []testkit.PromSample
			for {
				res = run.api.query(t, c.query)
				if hasLabels(res, c.want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if !hasLabels(res, c.want) {
				t.Errorf("%s: %s: no result with labels %v; got %v", run.api, c.query, c.want, res)
			}
		}
	}

	// The medians are numbers in the range of what was fed (30–36 ms ttfb).
	for _, q := range []struct {
		api   promAPI
		query string
	}{
		{native, `histogram_quantile(0.5, rate(edgeprobe_phase_duration_seconds{target="shop",role="cdn",phase="ttfb"}[1m]))`},
		{classic, `histogram_quantile(0.5, rate(edgeprobe_phase_duration_seconds_bucket{target="shop",role="cdn",phase="ttfb"}[1m]))`},
	} {
		res := q.api.query(t, q.query)
		if len(res) != 1 {
			t.Errorf("%s: %s: %d results, want 1: %v", q.api, q.query, len(res), res)
			continue
		}
		if v := res[0].Value; !(v >= 0.025 && v <= 0.05) {
			t.Errorf("%s: %s = %g, want a ttfb median in [0.025, 0.05]", q.api, q.query, v)
		}
	}
}

func hasLabels(res []testkit.PromSample, want map[string]string) bool {
	return slices.ContainsFunc(res, func(s testkit.PromSample) bool { return s.HasLabels(want) })
}

type promAPI struct {
	base   string
	native bool
}

func (p promAPI) String() string {
	if p.native {
		return "prometheus (native histograms)"
	}
	return "prometheus (classic histograms)"
}

// query runs an instant query and returns its vector.
func (p promAPI) query(t *testing.T, q string) []testkit.PromSample {
	t.Helper()
	res, err := testkit.PromQuery(context.Background(), p.base, q)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return res
}

// startPrometheus runs Prometheus (testkit.StartPrometheus) scraping target
// every second, with native histograms on or off; it stops (by PID) when
// the test ends.
func startPrometheus(t *testing.T, target string, native bool) promAPI {
	t.Helper()
	base := testkit.StartPrometheus(t, testkit.PrometheusOptions{ScrapeTargets: []string{target}, ScrapeInterval: time.Second, NativeHistograms: native})
	return promAPI{base: base, native: native}
}

// waitScraped waits until Prometheus has scraped the exporter once, at
// the latest by deadline.
func (p promAPI) waitScraped(t *testing.T, deadline time.Time) {
	t.Helper()
	for {
		if res, err := testkit.PromQuery(context.Background(), p.base, `up{job="edgeprobe"} == 1`); err == nil && len(res) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not scrape the exporter within %s of the start", p, pollLimit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
