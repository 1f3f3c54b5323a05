package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/demo"
	"github.com/edgeprobe/edgeprobe/exporters/pushgateway"
	"github.com/edgeprobe/edgeprobe/exporters/remotewrite"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

const (
	e2eLocation = "lab-e2e"
	e2eTarget   = "shop"
	// e2eLimit bounds the wait for Prometheus (and the Pushgateway) to
	// show everything.
	e2eLimit = 20 * time.Second
)

// goldenFamily is one metric family of the contract's golden file.
type goldenFamily struct {
	name, typ string
	labels    []string
}

// readGolden reads the metric catalogue the exporter's own test pins, so
// this test follows the contract when it grows.
func readGolden(t *testing.T) []goldenFamily {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "exporters", "prometheus", "testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenFamily
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "edgeprobe_") {
			fields := strings.Fields(line)
			out = append(out, goldenFamily{name: fields[0], typ: fields[1]})
			continue
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "labels: {"); ok && len(out) > 0 {
			for _, l := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
				out[len(out)-1].labels = append(out[len(out)-1].labels, strings.TrimSpace(l))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("golden file: only %d families read", len(out))
	}
	return out
}

// promCheck is one query that must return a result; ok judges it.
type promCheck struct {
	query string
	ok    func([]testkit.PromSample) string // "" when fine, else what is wrong
}

// perJob checks that a query returns series only of the configured target
// and location, for at least the given roles.
func perJob(roles ...string) func([]testkit.PromSample) string {
	return func(res []testkit.PromSample) string {
		if len(res) == 0 {
			return "no result"
		}
		seen := map[string]bool{}
		for _, s := range res {
			if s.Metric["target"] != e2eTarget || s.Metric["location"] != e2eLocation {
				return fmt.Sprintf("series with foreign labels: %v", s)
			}
			seen[s.Metric["role"]] = true
		}
		for _, r := range roles {
			if !seen[r] {
				return fmt.Sprintf("no series with role %q", r)
			}
		}
		return ""
	}
}

// some checks that a query returns a result carrying want, whose value
// passes (nil: any value).
func some(want map[string]string, pass func(float64) bool) func([]testkit.PromSample) string {
	return func(res []testkit.PromSample) string {
		for _, s := range res {
			if s.HasLabels(want) && (pass == nil || pass(s.Value)) {
				return ""
			}
		}
		return fmt.Sprintf("no result with labels %v (and the wanted value)", want)
	}
}

func positive(v float64) bool { return v > 0 }

// pollChecks runs the checks against Prometheus until each has passed once
// or the limit passes, and reports the ones that never did.
func pollChecks(t *testing.T, base, what string, checks []promCheck) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(e2eLimit)
	pending := checks
	last := map[string]string{}
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []promCheck
		for _, c := range pending {
			res, err := testkit.PromQuery(ctx, base, c.query)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if msg := c.ok(res); msg != "" {
				last[c.query] = fmt.Sprintf("%s; got %v", msg, res)
				still = append(still, c)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	for _, c := range pending {
		t.Errorf("%s: %s: %s", what, c.query, last[c.query])
	}
}

// TestEndToEnd runs the agent against the demo site (an origin behind a
// delay line reached with connect_to, and a CloudFront-like caching edge)
// with every sink on: a real Prometheus scrapes it, a real Pushgateway and
// a real remote-write receiver get its pushes, and the JSONL file its
// samples. Every metric the contract documents is then queried the way a
// dashboard would.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and the Pushgateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	site, err := demo.Start(ctx, demo.Options{
		OriginOneWay: 5 * time.Millisecond, BackboneOneWay: 2 * time.Millisecond,
		EdgeOneWay: time.Millisecond, Think: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)

	gateway := testkit.StartPushgateway(t)
	receiver := testkit.StartPrometheus(t, testkit.PrometheusOptions{RemoteWriteReceiver: true})

	dir := t.TempDir()
	samples := filepath.Join(dir, "samples.jsonl")
	cfg := filepath.Join(dir, "edgeprobe.yml")
	q := strconv.Quote
	writeFile(t, cfg, fmt.Sprintf(`location: %s
defaults: {interval: 200ms, timeout: 200ms}
targets:
  - name: %s
    url: %s
    roles:
      cdn: {}
      origin: {connect_to: %s}
    expect: {status: [200]}
    conditional: true
    server_timing: true
    keep_alive: true
    ca_file: %s
    dns_server: %s
exporters:
  prometheus: {}
  pushgateway: {url: %s, interval: 500ms}
  remote_write: {url: %s, interval: 500ms}
  jsonl: {path: %s}
`, e2eLocation, e2eTarget, q(site.EdgeURL()), q(site.OriginConnectTo()), q(site.CAFile()), q(site.DNSServer()),
		q(gateway), q(receiver+"/api/v1/write"), q(samples)))

	r := startAgent(t, agent.Options{ConfigPath: cfg, Listen: "127.0.0.1:0", RunAtStart: true})
	scraper := testkit.StartPrometheus(t, testkit.PrometheusOptions{ScrapeTargets: []string{r.addr}})

	// Every documented family, with the labels the config gave.
	var checks []promCheck
	for _, f := range readGolden(t) {
		query := f.name
		if f.typ == "histogram" {
			query += "_count" // this Prometheus keeps classic histograms
		}
		switch {
		case !slices.Contains(f.labels, "target"):
			checks = append(checks, promCheck{query, some(nil, nil)})
		case f.name == "edgeprobe_upstream_duration_seconds":
			// Only the edge reports its upstream timings (Server-Timing).
			checks = append(checks, promCheck{query, perJob("cdn")})
		default:
			checks = append(checks, promCheck{query, perJob("cdn", "origin")})
		}
	}
	// What needs the edge, revalidation and keep-alive to happen.
	checks = append(checks,
		promCheck{`edgeprobe_probes_total{result="success"}`, some(map[string]string{"role": "origin"}, positive)},
		promCheck{`edgeprobe_probes_total{result="success"}`, some(map[string]string{"role": "cdn"}, positive)},
		promCheck{`edgeprobe_probe_success`, some(map[string]string{"role": "cdn", "address": ""}, func(v float64) bool { return v == 1 })},
		promCheck{`edgeprobe_http_status_code`, some(map[string]string{"role": "origin"}, func(v float64) bool { return v == 200 })},
		promCheck{`edgeprobe_cache_results_total{cache="refresh_hit"}`, some(map[string]string{"role": "cdn", "pop": demo.DefaultPOP}, positive)},
		promCheck{`edgeprobe_revalidations_total{result="not_modified"}`, perJob("cdn", "origin")},
		promCheck{`edgeprobe_probe_info`, some(map[string]string{"role": "cdn", "cdn": "cloudfront", "tls_version": "TLS 1.3"}, nil)},
		promCheck{`edgeprobe_phase_duration_seconds_count{phase="tls"}`, perJob("cdn", "origin")},
		promCheck{`edgeprobe_upstream_duration_seconds_count{phase="first_byte"}`, perJob("cdn")},
		promCheck{`edgeprobe_keepalive_duration_seconds_count{phase="ttfb"}`, perJob("cdn", "origin")},
		// The TLS phase is shorter through the nearby edge (the article's
		// first claim), as the dashboards compute it.
		promCheck{`edgeprobe_phase_duration_seconds_sum{phase="tls",role="cdn"} / edgeprobe_phase_duration_seconds_count{phase="tls",role="cdn"}
			< on(target, location) edgeprobe_phase_duration_seconds_sum{phase="tls",role="origin"} / edgeprobe_phase_duration_seconds_count{phase="tls",role="origin"}`,
			some(map[string]string{"target": e2eTarget}, nil)},
	)
	// Self-metrics.
	checks = append(checks,
		promCheck{`edgeprobe_schedule_lag_seconds_count`, some(nil, positive)},
		promCheck{`edgeprobe_probes_in_flight`, some(map[string]string{"job": "edgeprobe"}, nil)},
		promCheck{`edgeprobe_exporter_sends_total{result="success"}`, some(map[string]string{"exporter": pushgateway.Name}, positive)},
		promCheck{`edgeprobe_exporter_sends_total{result="success"}`, some(map[string]string{"exporter": remotewrite.Name}, positive)},
		promCheck{`edgeprobe_config_last_reload_successful`, some(nil, func(v float64) bool { return v == 1 })},
		promCheck{`edgeprobe_build_info`, func(res []testkit.PromSample) string {
			if len(res) != 1 || res[0].Metric["version"] == "" || !strings.HasPrefix(res[0].Metric["goversion"], "go") {
				return "want one series with version and goversion"
			}
			return ""
		}},
	)
	pollChecks(t, scraper, "scraping prometheus", checks)

	// The remote-write receiver got the series, labelled as configured
	// (and nothing else: no scrape adds job or instance there).
	pollChecks(t, receiver, "remote-write prometheus", []promCheck{
		{`edgeprobe_probes_total{result="success"}`, perJob("cdn", "origin")},
		{`edgeprobe_probes_total{result="success",role="cdn"}`, some(map[string]string{"job": "", "location": e2eLocation}, positive)},
		{`edgeprobe_phase_duration_seconds_count{phase="ttfb"}`, perJob("cdn", "origin")},
	})

	// The Pushgateway holds the group job=edgeprobe, instance=<location>.
	eventually(t, e2eLimit, "the pushgateway has no edgeprobe_probes_total in group job=edgeprobe,instance="+e2eLocation, func() bool {
		fams := scrape(t, strings.TrimPrefix(gateway, "http://"))
		return value(fams, "edgeprobe_probes_total", map[string]string{
			"job": "edgeprobe", "instance": e2eLocation, "target": e2eTarget, "role": "cdn", "location": e2eLocation, "result": "success",
		}) > 0
	})

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The JSONL file: every line a sample of the configured job.
	got := readSamples(t, samples)
	roles := map[string]int{}
	for i, s := range got {
		roles[s.Role]++
		if s.Target != e2eTarget || s.Location != e2eLocation || s.Result == nil {
			t.Fatalf("sample %d: target %q location %q result %v", i, s.Target, s.Location, s.Result)
		}
		if s.Role == "cdn" && s.Err == nil && s.CDN.POP != demo.DefaultPOP {
			t.Errorf("sample %d: cdn POP %q, want %s", i, s.CDN.POP, demo.DefaultPOP)
		}
	}
	if roles["cdn"] == 0 || roles["origin"] == 0 || len(roles) != 2 {
		t.Errorf("JSONL roles %v, want cdn and origin", roles)
	}
	t.Logf("%d samples in the JSONL file (%v); agent stopped in %v", len(got), roles, r.stopped)
}
