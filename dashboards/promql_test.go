package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/demo"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

// The lab: one target, three ways in, probed from two locations.
const (
	labTarget   = "shop"
	roleBroken  = "broken" // connect_to a closed port: every probe fails in connect
	labInterval = 500 * time.Millisecond
	// labLimit bounds the wait for every expression to return data.
	labLimit = 25 * time.Second
)

var labLocations = []string{"lab-a", "lab-b"}

// Values the PromQL test gives Grafana's variables. Grafana writes a
// multi-value selection of a variable used in a regex matcher as (a|b) and
// "All" as the variable's allValue (.*); both must return data.
// $__rate_interval is at least four scrape intervals (1s here) in Grafana;
// a minute also covers the test's whole history. Range queries span the
// last 30s at $__interval steps.
var (
	rangeSpan  = 30 * time.Second
	rangeStep  = 5 * time.Second
	commonVars = map[string]string{
		varTarget:         labTarget,
		varPhase:          "ttfb",
		"__rate_interval": "1m",
		"__interval":      "5s",
		"__interval_ms":   "5000",
		"__range":         "5m",
		"__range_s":       "300",
	}
	selections = []struct {
		name string
		vars map[string]string
	}{
		{"all", map[string]string{varLocation: ".*", varRole: ".*"}},
		{"selected", map[string]string{
			varLocation: "(" + strings.Join(labLocations, "|") + ")",
			varRole:     "(" + strings.Join([]string{roleBroken, RoleCDN, RoleOrigin}, "|") + ")",
		}},
	}
)

// substitute replaces $name and ${name} (longest names first, so $__range
// does not eat $__range_s) and fails on any variable left over.
func substitute(t *testing.T, expr string, vars map[string]string) string {
	t.Helper()
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, n := range names {
		expr = strings.ReplaceAll(expr, "${"+n+"}", vars[n])
		expr = strings.ReplaceAll(expr, "$"+n, vars[n])
	}
	if strings.Contains(expr, "$") {
		t.Fatalf("variable left in %s", expr)
	}
	return expr
}

// promResult is what one query returned: how many series, and how many
// of them had a value (a finite float or a native histogram).
type promResult struct {
	series, withData int
	labels           []map[string]string
}

var promClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// promQuery runs expr as Grafana would: an instant query, or a range query
// over the last rangeSpan.
func promQuery(ctx context.Context, base, expr string, instant bool) (promResult, error) {
	v := url.Values{"query": {expr}}
	now := time.Now()
	path := "/api/v1/query"
	if instant {
		v.Set("time", strconv.FormatInt(now.Unix(), 10))
	} else {
		path = "/api/v1/query_range"
		v.Set("start", strconv.FormatInt(now.Add(-rangeSpan).Unix(), 10))
		v.Set("end", strconv.FormatInt(now.Unix(), 10))
		v.Set("step", strconv.Itoa(int(rangeStep/time.Second)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(v.Encode()))
	if err != nil {
		return promResult{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := promClient.Do(req)
	if err != nil {
		return promResult{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric     map[string]string `json:"metric"`
				Value      []any             `json:"value"`
				Values     [][]any           `json:"values"`
				Histogram  []any             `json:"histogram"`
				Histograms [][]any           `json:"histograms"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return promResult{}, fmt.Errorf("decode: %w", err)
	}
	if body.Status != "success" {
		return promResult{}, fmt.Errorf("%s", body.Error)
	}
	finite := func(p []any) bool {
		if len(p) != 2 {
			return false
		}
		s, _ := p[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	var r promResult
	for _, s := range body.Data.Result {
		r.series++
		r.labels = append(r.labels, s.Metric)
		ok := finite(s.Value) || len(s.Histogram) == 2 || len(s.Histograms) > 0
		for _, p := range s.Values {
			ok = ok || finite(p)
		}
		if ok {
			r.withData++
		}
	}
	return r, nil
}

// startLab runs the demo site (an origin and a CloudFront-like caching
// edge), two agents (locations lab-a, lab-b) probing it three ways, and two
// Prometheus servers scraping both agents: one keeping classic histograms,
// one with native histograms on (Prometheus 2.42 then stores only those).
// It returns the agents and the Prometheus base URLs by kind.
func startLab(t *testing.T) ([]*agent.Agent, map[string]string) {
	t.Helper()
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

	q := strconv.Quote
	cfg := filepath.Join(t.TempDir(), "edgeprobe.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `defaults: {interval: %v, timeout: %v}
targets:
  - name: %s
    url: %s
    roles:
      %s: {}
      %s: {connect_to: %s}
      %s: {connect_to: %s}
    expect: {status: [200]}
    conditional: true
    server_timing: true
    keep_alive: true
    ca_file: %s
    dns_server: %s
exporters:
  prometheus: {}
`, labInterval, labInterval, labTarget, q(site.EdgeURL()),
		RoleCDN, RoleOrigin, q(site.OriginConnectTo()), roleBroken, q(testkit.FreeLoopbackAddr(t)),
		q(site.CAFile()), q(site.DNSServer())), 0o600); err != nil {
		t.Fatal(err)
	}

	var agents []*agent.Agent
	var addrs []string
	for _, loc := range labLocations {
		a, addr := runAgent(t, agent.Options{ConfigPath: cfg, Location: loc, Listen: "127.0.0.1:0", RunAtStart: true})
		agents = append(agents, a)
		addrs = append(addrs, addr)
	}
	proms := map[string]string{
		"classic": testkit.StartPrometheus(t, testkit.PrometheusOptions{ScrapeTargets: addrs}),
		"native":  testkit.StartPrometheus(t, testkit.PrometheusOptions{ScrapeTargets: addrs, NativeHistograms: true}),
	}
	return agents, proms
}

// runAgent runs an agent until the test ends and returns it with the
// address of its /metrics.
func runAgent(t *testing.T, opts agent.Options) (*agent.Agent, string) {
	t.Helper()
	ready := make(chan string, 1)
	opts.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("agent.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", opts.Location, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("agent %s did not stop", opts.Location)
		}
	})
	select {
	case addr := <-ready:
		return a, addr
	case err := <-done:
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("agent not ready in time")
	}
	return nil, ""
}

// waitFor polls query on base until it returns data or the limit passes.
func waitFor(t *testing.T, base, query string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r, err := promQuery(context.Background(), base, query, true)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if r.withData > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no data after %v", query, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestPromQLAgainstPrometheus runs real agents against local targets (the
// demo's origin and caching edge, and a role that cannot connect), has a
// real Prometheus scrape them, and executes every PromQL expression of
// every panel, annotation and variable of the committed Prometheus
// dashboards, with the variables substituted, against it: each must return
// data. It does so against a Prometheus keeping classic histograms and one
// keeping only native histograms. A metric or label renamed in the agent
// leaves some expression without data, and this test fails.
func TestPromQLAgainstPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents and two Prometheus servers")
	}
	start := time.Now()
	agents, proms := startLab(t)

	// Data, then config reloads for the annotation: the first creates the
	// counter's series, the second (after scrapes) makes it grow.
	for _, base := range proms {
		waitFor(t, base, fmt.Sprintf(`count(count by (location) (%s{result="success"}))  == %d`, MetricProbes, len(labLocations)), 20*time.Second)
	}
	ctx := context.Background()
	if err := agents[0].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, base := range proms {
		waitFor(t, base, MetricConfigReloads, 10*time.Second)
	}
	time.Sleep(1500 * time.Millisecond) // a scrape or more at 1
	if err := agents[0].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab ready in %v", time.Since(start).Round(time.Millisecond))

	type check struct {
		prom, sel string
		e         promExpr
		query     string
		msg       string // why it failed last
	}
	var pending []check
	boards := 0
	for _, b := range committedGrafana(t) {
		if dataSourceOf(b) != "prometheus" {
			continue
		}
		boards++
		exprs := promExprs(t, b)
		if len(exprs) < 10 {
			t.Fatalf("%s: only %d expressions", b.file, len(exprs))
		}
		for _, e := range exprs {
			for _, s := range selections {
				vars := map[string]string{}
				for k, v := range commonVars {
					vars[k] = v
				}
				for k, v := range s.vars {
					vars[k] = v
				}
				for kind := range proms {
					pending = append(pending, check{prom: kind, sel: s.name, e: e, query: substitute(t, e.expr, vars)})
				}
			}
		}
	}
	if boards != 3 {
		t.Fatalf("%d Prometheus dashboards, want 3", boards)
	}
	total := len(pending)
	deadline := time.Now().Add(labLimit)
	for len(pending) > 0 {
		var still []check
		for _, c := range pending {
			r, err := promQuery(ctx, proms[c.prom], c.query, c.e.instant)
			switch {
			case err != nil:
				t.Fatalf("%s %s (%s Prometheus): %s: %v", c.e.board, c.e.where, c.prom, c.query, err)
			case r.withData == 0:
				c.msg = fmt.Sprintf("%d series, none with data", r.series)
				still = append(still, c)
			case c.e.labelValues != "" && slices.ContainsFunc(r.labels, func(l map[string]string) bool { return l[c.e.labelValues] == "" }):
				c.msg = fmt.Sprintf("a value of %s is empty: %v", c.e.labelValues, r.labels)
				still = append(still, c)
			}
		}
		if len(still) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range still {
				t.Errorf("%s %s (%s Prometheus, %s): no data: %s\n\t%s", c.e.board, c.e.where, c.prom, c.sel, c.msg, c.query)
			}
			break
		}
		pending = still
		time.Sleep(time.Second)
	}
	t.Logf("%d queries (%d expressions × %d variable selections × %d Prometheus servers) in %v in all",
		total, total/len(selections)/len(proms), len(selections), len(proms), time.Since(start).Round(time.Millisecond))
}
