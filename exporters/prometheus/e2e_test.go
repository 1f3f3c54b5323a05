package promexp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	bin, err := exec.LookPath("prometheus")
	if err != nil {
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
	// run it.
	type result struct {
		api promAPI
		err string
	}
	started := make(chan result, 2)
	for _, native := range []bool{true, false} {
		go func() {
			api, err := startPrometheus(t, bin, exporterAddr, native)
			started <- result{api, err}
		}()
	}
	var native, classic promAPI
	var failed []string
	for range 2 { // both, before failing: each registers its own cleanup
		r := <-started
		switch {
		case r.err != "":
			failed = append(failed, r.err)
		case r.api.native:
			native = r.api
		default:
			classic = r.api
		}
	}
	if failed != nil {
		t.Fatal(strings.Join(failed, "\n"))
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
			var res []promSample
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
		if v := res[0].value; !(v >= 0.025 && v <= 0.05) {
			t.Errorf("%s: %s = %g, want a ttfb median in [0.025, 0.05]", q.api, q.query, v)
		}
	}
}

func hasLabels(res []promSample, want map[string]string) bool {
next:
	for _, s := range res {
		for k, v := range want {
			if s.metric[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}

type promSample struct {
	metric map[string]string
	value  float64
}

func (s promSample) String() string { return fmt.Sprintf("%v=%g", s.metric, s.value) }

type promAPI struct {
	base   string
	native bool
	client *http.Client
}

func (p promAPI) String() string {
	if p.native {
		return "prometheus (native histograms)"
	}
	return "prometheus (classic histograms)"
}

// query runs an instant query and returns its vector.
func (p promAPI) query(t *testing.T, q string) []promSample {
	t.Helper()
	res, err := p.tryQuery(q)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return res
}

func (p promAPI) tryQuery(q string) ([]promSample, error) {
	resp, err := p.client.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: decode: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	var out []promSample
	for _, r := range body.Data.Result {
		s := promSample{metric: r.Metric, value: math.NaN()}
		if len(r.Value) == 2 {
			if str, ok := r.Value[1].(string); ok {
				if v, err := strconv.ParseFloat(str, 64); err == nil {
					s.value = v
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// startPrometheus runs Prometheus on a free loopback port, scraping target
// every second, with native histograms on or off, and stops it (by PID)
// when the test ends. It may run on a goroutine of its own, so it reports
// failure instead of calling t.Fatal.
func startPrometheus(t *testing.T, bin, target string, native bool) (promAPI, string) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: edgeprobe
    static_configs:
      - targets: [%q]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return promAPI{}, err.Error()
	}
	listen, err := freePort()
	if err != nil {
		return promAPI{}, err.Error()
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return promAPI{}, err.Error()
	}
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + listen,
		"--log.level=warn",
	}
	if native {
		args = append(args, "--enable-feature=native-histograms")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive a killed test binary
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return promAPI{}, fmt.Sprintf("start prometheus: %v", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	api := promAPI{base: "http://" + listen, native: native, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(func() {
		api.client.CloseIdleConnections()
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
				t.Logf("%s log:\n%s", api, b)
			}
		}
	})

	// Ready, then the exporter scraped once.
	deadline := time.Now().Add(pollLimit)
	for {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			return promAPI{}, fmt.Sprintf("%s exited: %v\n%s", api, err, b)
		default:
		}
		if res, err := api.tryQuery(`up{job="edgeprobe"} == 1`); err == nil && len(res) == 1 {
			return api, ""
		}
		if time.Now().After(deadline) {
			return promAPI{}, fmt.Sprintf("%s did not scrape %s within %s", api, target, pollLimit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback address no one listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
