package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

// runLimit bounds how long any one agent may take to start or stop.
const runLimit = 15 * time.Second

// running is an agent started by a test, on its own goroutine.
type running struct {
	*agent.Agent
	addr     string // where /metrics listens
	cancel   context.CancelFunc
	done     chan struct{}
	err      error // Run's result, once done is closed
	stopOnce sync.Once
	stopped  time.Duration // how long Run took to return after the cancel
}

// startAgent builds the agent with agent.New and runs it until the test
// ends (or stop is called). It returns once Ready was called.
func startAgent(t *testing.T, opts agent.Options) *running {
	t.Helper()
	ready := make(chan string, 1)
	opts.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("agent.New: %v", err)
	}
	r := &running{Agent: a, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = a.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	select {
	case r.addr = <-ready:
	case <-r.done:
		t.Fatalf("agent stopped before it was ready: %v", r.err)
	case <-time.After(runLimit):
		t.Fatal("agent not ready in time")
	}
	return r
}

// stop cancels the agent's context and waits (bounded) for Run; it returns
// Run's error. Safe to call more than once.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.stopOnce.Do(func() {
		t0 := time.Now()
		r.cancel()
		select {
		case <-r.done:
			r.stopped = time.Since(t0)
		case <-time.After(runLimit):
			t.Errorf("agent.Run did not return within %v of the cancel", runLimit)
		}
	})
	return r.err
}

// writeFile writes a test file and fails the test if it cannot.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// client keeps no connection open: goleak checks stay quiet.
var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// scrape reads the agent's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

// labelsOf returns a metric's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// find returns the metrics of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		if testkit.MetricHasLabels(m, want) {
			out = append(out, m)
		}
	}
	return out
}

// value sums the counters, gauges and untyped values of family name whose
// labels include want; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	ms := find(fams, name, want)
	if len(ms) == 0 {
		return -1
	}
	sum := 0.0
	for _, m := range ms {
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// targetsIn lists the values of label target across every family.
func targetsIn(fams map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if v, ok := labelsOf(m)["target"]; ok {
				out[v] = true
			}
		}
	}
	return out
}

// eventually polls cond every 50 ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readSamples parses the JSONL file: every line must be a probe.Sample.
func readSamples(t *testing.T, path string) []probe.Sample {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []probe.Sample
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for i := 1; sc.Scan(); i++ {
		var s probe.Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%s:%d is not a sample: %v\n%s", path, i, err, sc.Bytes())
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// httpServer starts a plain-HTTP lab server on 127.0.0.1, closed when the
// test ends.
func httpServer(t *testing.T, h http.Handler) *lab.HTTPServer {
	t.Helper()
	srv, err := lab.NewHTTPServer(lab.ServerOptions{Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// okHandler answers 200 "ok" at once.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
}

// configPath returns a path for the agent's config in a fresh temp dir.
func configPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "edgeprobe.yml")
}
