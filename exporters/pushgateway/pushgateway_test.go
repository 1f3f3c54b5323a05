package pushgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testRegistry struct {
	reg   *prometheus.Registry
	self  *selfmetrics.Metrics
	count *prometheus.CounterVec
	hist  *prometheus.HistogramVec
}

// newTestRegistry holds series shaped like the agent's: a counter and a
// histogram (classic and native buckets) labelled target/role/location.
func newTestRegistry() *testRegistry {
	r := &testRegistry{reg: prometheus.NewRegistry()}
	r.self = selfmetrics.New(r.reg)
	r.count = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeprobe_pgtest_probes_total", Help: "probes"}, []string{"target", "role", "location"})
	r.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "edgeprobe_pgtest_phase_duration_seconds", Help: "phases",
		Buckets: []float64{0.01, 0.1, 1}, NativeHistogramBucketFactor: 1.1,
	}, []string{"target", "role", "location", "phase"})
	r.reg.MustRegister(r.count, r.hist)
	return r
}

func (r *testRegistry) sends(result string) float64 {
	return testkit.GatheredValue(r.reg, "edgeprobe_exporter_sends_total", map[string]string{"exporter": Name, "result": result})
}

func startGateway(t *testing.T, port int) *testkit.Proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return testkit.StartProc(t, t.TempDir(), "http://"+addr+"/-/ready", "prometheus-pushgateway",
		"--web.listen-address="+addr, "--persistence.file=", "--log.level=warn")
}

func httpClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// gatewayMetrics reads the gateway's /metrics (what Prometheus scrapes).
func gatewayMetrics(t *testing.T, port int) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := httpClient().Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// find returns the metric of family name whose labels include want.
func find(mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, m := range mfs[name].GetMetric() {
		if testkit.MetricHasLabels(m, want) {
			return m
		}
	}
	return nil
}

// TestPushToGateway pushes with the Run loop to a real Pushgateway and
// finds the group and its series there; a series the agent drops
// disappears with the next push (PUT replaces the group).
func TestPushToGateway(t *testing.T) {
	port := testkit.FreePort(t)
	startGateway(t, port)
	r := newTestRegistry()
	r.count.WithLabelValues("shop", "cdn", "eu-west-1").Add(3)
	r.count.WithLabelValues("shop", "origin", "eu-west-1").Add(1)
	r.hist.WithLabelValues("shop", "cdn", "eu-west-1", "ttfb").Observe(0.05)
	r.hist.WithLabelValues("shop", "cdn", "eu-west-1", "ttfb").Observe(0.5)

	s, err := New(probe.PushgatewayConfig{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Interval: probe.Duration(100 * time.Millisecond)},
		"eu-west-1", Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Error(err)
		}
	})

	group := map[string]string{"job": "edgeprobe", "instance": "eu-west-1"}
	cdn := map[string]string{"job": "edgeprobe", "instance": "eu-west-1", "target": "shop", "role": "cdn", "location": "eu-west-1"}
	deadline := time.Now().Add(10 * time.Second)
	var mfs map[string]*dto.MetricFamily
	for {
		mfs = gatewayMetrics(t, port)
		if find(mfs, "edgeprobe_pgtest_probes_total", cdn) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pushed group did not appear on the gateway")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	if m := find(mfs, "edgeprobe_pgtest_probes_total", cdn); m.GetCounter().GetValue() != 3 {
		t.Errorf("counter %v", m)
	}
	h := find(mfs, "edgeprobe_pgtest_phase_duration_seconds", map[string]string{"instance": "eu-west-1", "role": "cdn", "phase": "ttfb"})
	if h == nil || h.GetHistogram().GetSampleCount() != 2 || len(h.GetHistogram().GetBucket()) != 4 || // text format adds +Inf
		h.GetHistogram().GetBucket()[1].GetCumulativeCount() != 1 {
		t.Errorf("histogram on the gateway: %v", h)
	}
	if find(mfs, "push_time_seconds", group) == nil || find(mfs, "push_failure_time_seconds", group).GetGauge().GetValue() != 0 {
		t.Error("no successful push recorded by the gateway for the group")
	}
	// The gateway's API lists the group under its grouping key.
	resp, err := httpClient().Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Data []struct {
			Labels map[string]string `json:"labels"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil || len(api.Data) != 1 || api.Data[0].Labels["job"] != "edgeprobe" || api.Data[0].Labels["instance"] != "eu-west-1" {
		t.Errorf("groups %+v (%v)", api.Data, err)
	}

	origin := map[string]string{"instance": "eu-west-1", "role": "origin"}
	if find(mfs, "edgeprobe_pgtest_probes_total", origin) == nil {
		t.Fatal("origin series missing before removal")
	}
	r.count.DeleteLabelValues("shop", "origin", "eu-west-1")
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mfs = gatewayMetrics(t, port)
	if find(mfs, "edgeprobe_pgtest_probes_total", origin) != nil {
		t.Error("a series removed from the registry is still on the gateway")
	}
	if find(mfs, "edgeprobe_pgtest_probes_total", cdn) == nil {
		t.Error("the cdn series went missing")
	}
	if n := r.sends("error"); n != 0 {
		t.Errorf("sends{result=error} = %v", n)
	}
}

// TestGatewayOutage: a push to a stopped gateway counts an error; once it
// is back, the next push succeeds.
func TestGatewayOutage(t *testing.T) {
	port := testkit.FreePort(t)
	gw := startGateway(t, port)
	r := newTestRegistry()
	r.count.WithLabelValues("shop", "cdn", "us-east-1").Inc()
	s, err := New(probe.PushgatewayConfig{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Job: "probes"},
		"us-east-1", Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	gw.Stop()
	if err := s.Flush(ctx); err == nil {
		t.Fatal("push to a stopped gateway succeeded")
	}
	if n := r.sends("error"); n != 1 {
		t.Errorf("sends{result=error} = %v, want 1", n)
	}

	startGateway(t, port) // in-memory: the restarted gateway is empty
	r.count.WithLabelValues("shop", "cdn", "us-east-1").Inc()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m := find(gatewayMetrics(t, port), "edgeprobe_pgtest_probes_total", map[string]string{"job": "probes", "instance": "us-east-1", "role": "cdn"})
	if m.GetCounter().GetValue() != 2 {
		t.Errorf("after restart: %v", m)
	}
	if n := r.sends("success"); n != 2 {
		t.Errorf("sends{result=success} = %v, want 2", n)
	}
}

// TestCredentials: user info from the URL goes out as basic auth and never
// into logs or errors.
func TestCredentials(t *testing.T) {
	var mu sync.Mutex
	var user, pass string
	status := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		mu.Lock()
		defer mu.Unlock()
		user, pass, _ = req.BasicAuth()
		if req.Method != http.MethodPut || req.URL.Path != "/prefix/metrics/job/edgeprobe/instance/lab" {
			http.Error(w, req.Method+" "+req.URL.Path, http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	r := newTestRegistry()
	r.count.WithLabelValues("a", "cdn", "lab").Inc()
	var logs bytes.Buffer
	u := strings.Replace(srv.URL, "http://", "http://alice:hunter2@", 1) + "/prefix"
	s, err := New(probe.PushgatewayConfig{URL: u}, "lab", Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ferr := s.Flush(context.Background())
	if ferr == nil {
		t.Fatal("500 did not fail the push")
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if user != "alice" || pass != "hunter2" {
		t.Errorf("basic auth %q %q", user, pass)
	}
	all := logs.String() + ferr.Error()
	if strings.Contains(all, "hunter2") || strings.Contains(all, "alice") {
		t.Errorf("credentials leaked:\n%s", all)
	}
	if !strings.Contains(logs.String(), "push recovered") {
		t.Errorf("no recovery logged:\n%s", logs.String())
	}
	if _, err := New(probe.PushgatewayConfig{URL: "http://h/?token=x"}, "lab", Options{Gatherer: r.reg}); err == nil || strings.Contains(err.Error(), "token=x") {
		t.Errorf("URL with a query: %v", err)
	}
}
