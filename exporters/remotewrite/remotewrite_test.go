package remotewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRegistry holds series shaped like the agent's: a counter, a gauge and
// a histogram with classic and native buckets, labelled target/role/location.
type testRegistry struct {
	reg   *prometheus.Registry
	self  *selfmetrics.Metrics
	count *prometheus.CounterVec
	up    *prometheus.GaugeVec
	hist  *prometheus.HistogramVec
}

func newTestRegistry() *testRegistry {
	r := &testRegistry{reg: prometheus.NewRegistry()}
	r.self = selfmetrics.New(r.reg)
	r.count = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeprobe_rwtest_probes_total", Help: "probes"}, []string{"target", "role", "location", "result"})
	r.up = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edgeprobe_rwtest_probe_success", Help: "last probe"}, []string{"target", "role", "location"})
	r.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "edgeprobe_rwtest_phase_duration_seconds", Help: "phases",
		Buckets:                     []float64{0.005, 0.01, 0.1, 1},
		NativeHistogramBucketFactor: 1.1,
	}, []string{"target", "role", "location", "phase"})
	r.reg.MustRegister(r.count, r.up, r.hist)
	return r
}

func (r *testRegistry) sends(result string) float64 {
	return testkit.GatheredValue(r.reg, "edgeprobe_exporter_sends_total", map[string]string{"exporter": Name, "result": result})
}

// selfValue is the exporter's value of a self-metric family.
func (r *testRegistry) selfValue(name string) float64 {
	return testkit.GatheredValue(r.reg, name, map[string]string{"exporter": Name})
}

// prometheusServer starts Debian's Prometheus with the remote write
// receiver on 127.0.0.1:port.
func startPrometheus(t *testing.T, port int) *testkit.Proc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {scrape_interval: 1m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return testkit.StartProc(t, dir, "http://"+addr+"/-/ready", "prometheus",
		"--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver", "--log.level=warn")
}

type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
	Values [][]any           `json:"values"`
}

// query runs an instant query at time at.
func query(t *testing.T, port int, q string, at time.Time) []promResult {
	t.Helper()
	u := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?%s", port, url.Values{
		"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode())
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s", q, body.Error)
	}
	return body.Data.Result
}

func scalar(t *testing.T, r promResult) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(r.Value[1].(string), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// eventually retries f until it returns "" or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPrometheusReceivesSeries runs the sink's loop against a real
// Prometheus and finds every kind of series there, with the agent's labels.
func TestPrometheusReceivesSeries(t *testing.T) {
	port := testkit.FreePort(t)
	startPrometheus(t, port)
	r := newTestRegistry()
	shop := prometheus.Labels{"target": "shop", "role": "cdn", "location": "eu-west-1"}
	r.count.MustCurryWith(shop).WithLabelValues("success").Add(3)
	r.up.With(shop).Set(1)
	for _, v := range []float64{0.003, 0.02, 0.5} {
		r.hist.MustCurryWith(shop).WithLabelValues("ttfb").Observe(v)
	}

	s, err := New(context.Background(), probe.RemoteWriteConfig{
		URL: fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", port), Interval: probe.Duration(200 * time.Millisecond),
	}, Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, nil), ExternalLabels: map[string]string{"job": "edgeprobe"}})
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
	defer wg.Wait()
	defer cancel()

	sel := `{job="edgeprobe",target="shop",role="cdn",location="eu-west-1"`
	want := map[string]float64{
		`edgeprobe_rwtest_probes_total` + sel + `,result="success"}`:                         3,
		`edgeprobe_rwtest_probe_success` + sel + `}`:                                         1,
		`edgeprobe_rwtest_phase_duration_seconds_bucket` + sel + `,phase="ttfb",le="0.005"}`: 1,
		`edgeprobe_rwtest_phase_duration_seconds_bucket` + sel + `,phase="ttfb",le="0.1"}`:   2,
		`edgeprobe_rwtest_phase_duration_seconds_bucket` + sel + `,phase="ttfb",le="+Inf"}`:  3,
		`edgeprobe_rwtest_phase_duration_seconds_count` + sel + `,phase="ttfb"}`:             3,
		`edgeprobe_rwtest_phase_duration_seconds_sum` + sel + `,phase="ttfb"}`:               0.523,
		`edgeprobe_exporter_queue_depth{exporter="remote_write"}`:                            0,
	}
	eventually(t, 20*time.Second, func() string {
		for q, v := range want {
			res := query(t, port, q, time.Now())
			if len(res) != 1 {
				return fmt.Sprintf("%s: %d series", q, len(res))
			}
			if got := scalar(t, res[0]); math.Abs(got-v) > 1e-9 {
				return fmt.Sprintf("%s = %v, want %v", q, got, v)
			}
		}
		return ""
	})
	// histogram_quantile works on the classic buckets, as dashboards use it.
	res := query(t, port, `histogram_quantile(0.5, edgeprobe_rwtest_phase_duration_seconds_bucket`+sel+`})`, time.Now())
	if len(res) != 1 || scalar(t, res[0]) <= 0.005 || scalar(t, res[0]) > 0.1 {
		t.Errorf("p50 from remote-written buckets: %+v", res)
	}
	if n := r.sends("success"); n < 1 {
		t.Errorf("sends{result=success} = %v", n)
	}
}

// TestOutageBacklog sends while Prometheus is down: the batches wait,
// retries are counted, and once Prometheus is up they arrive with their
// original timestamps.
func TestOutageBacklog(t *testing.T) {
	port := testkit.FreePort(t)
	r := newTestRegistry()
	c := r.count.WithLabelValues("shop", "origin", "eu-west-1", "success")
	s, err := New(context.Background(), probe.RemoteWriteConfig{URL: fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", port)},
		Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, nil), MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()

	var stamps []int64
	for i := range 3 {
		c.Inc()
		s.nextTry = time.Time{} // no waiting out the backoff in a test
		s.cycle(ctx, true, retry)
		stamps = append(stamps, s.lastTS)
		if len(s.queue) != i+1 {
			t.Fatalf("after %d failed sends the queue holds %d batches", i+1, len(s.queue))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.sends("retry"); n != 3 {
		t.Errorf("sends{result=retry} = %v, want 3", n)
	}
	if q := r.selfValue("edgeprobe_exporter_queue_depth"); q != float64(s.queued) || q == 0 {
		t.Errorf("queue depth gauge %v, queued %d", q, s.queued)
	}

	startPrometheus(t, port)
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if s.queued != 0 || len(s.queue) != 0 {
		t.Fatalf("after flush: %d samples in %d batches", s.queued, len(s.queue))
	}
	res := query(t, port, `edgeprobe_rwtest_probes_total{target="shop",role="origin"}[1h]`, time.Now())
	if len(res) != 1 {
		t.Fatalf("range query: %+v", res)
	}
	var got []string
	for _, v := range res[0].Values {
		ms := int64(math.Round(v[0].(float64) * 1000))
		got = append(got, fmt.Sprintf("%d=%s", ms, v[1]))
	}
	for i, ts := range stamps {
		w := fmt.Sprintf("%d=%d", ts, i+1)
		if i >= len(got) || got[i] != w {
			t.Errorf("sample %d: want %s, Prometheus has %v", i, w, got)
		}
	}
	if len(got) != 4 { // the three from the outage and the one Flush gathered
		t.Errorf("samples %v, want 4", got)
	}
	if n := r.sends("success"); n < 3 {
		t.Errorf("sends{result=success} = %v", n)
	}
}

// TestQueueBounds drops the oldest batches beyond MaxBatches and MaxBytes
// and those older than MaxAge, and counts them.
func TestQueueBounds(t *testing.T) {
	r := newTestRegistry()
	r.count.WithLabelValues("a", "cdn", "x", "success").Inc()
	s, err := New(context.Background(), probe.RemoteWriteConfig{URL: "http://127.0.0.1:1/w"},
		Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, nil), MaxBatches: 3, MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	for i := range 5 {
		s.collect(t0.Add(time.Duration(i) * time.Second))
	}
	per := s.queued / len(s.queue)
	if len(s.queue) != 3 || s.droppedFull != 2*per {
		t.Errorf("queue %d batches, dropped %d samples (per batch %d)", len(s.queue), s.droppedFull, per)
	}
	if d := r.selfValue("edgeprobe_exporter_dropped_total"); d != float64(2*per) {
		t.Errorf("dropped counter %v, want %d", d, 2*per)
	}
	s.collect(t0.Add(time.Minute + 5*time.Second)) // the three queued batches are now older than a minute
	if len(s.queue) != 1 || s.droppedAge != 3*per {
		t.Errorf("after aging: queue %d, dropped for age %d", len(s.queue), s.droppedAge)
	}
	if q := r.selfValue("edgeprobe_exporter_queue_depth"); q != float64(per) {
		t.Errorf("queue depth %v, want %d", q, per)
	}

	s.o.MaxBytes = 1 // the newest batch is always kept
	s.collect(t0.Add(2 * time.Minute))
	if len(s.queue) != 1 {
		t.Errorf("MaxBytes: queue %d batches, want 1", len(s.queue))
	}
}

// TestRejectedAndRetried: a 4xx drops the request (retrying cannot help), a
// 5xx keeps it for a retry.
func TestRejectedAndRetried(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusBadRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	r := newTestRegistry()
	r.up.WithLabelValues("a", "cdn", "x").Set(1)
	s, err := New(context.Background(), probe.RemoteWriteConfig{URL: srv.URL + "/api/v1/write"},
		Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("a rejected request is dropped, not an error of Flush: %v", err)
	}
	if r.sends("error") != 1 || s.queued != 0 || r.selfValue("edgeprobe_exporter_dropped_total") == 0 {
		t.Errorf("400: errors %v, queued %d", r.sends("error"), s.queued)
	}
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if err := s.Flush(ctx); err == nil {
		t.Error("503: Flush returned nil")
	}
	if r.sends("retry") != 1 || s.queued == 0 {
		t.Errorf("503: retries %v, queued %d", r.sends("retry"), s.queued)
	}
	mu.Lock()
	status = http.StatusNoContent
	mu.Unlock()
	if err := s.Flush(ctx); err != nil || s.queued != 0 {
		t.Errorf("204: %v, queued %d", err, s.queued)
	}
}

// TestSigV4 signs with static dummy credentials from the environment (the
// SDK's default chain) and checks what a SigV4 verifier reads: the
// Authorization header's scope (region, service aps), the signed headers and
// the payload hash. No request leaves 127.0.0.1.
func TestSigV4(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_SESSION_TOKEN", "test-token")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	type got struct {
		header http.Header
		body   []byte
		path   string
	}
	reqs := make(chan got, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		reqs <- got{req.Header.Clone(), b, req.URL.Path}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	r := newTestRegistry()
	r.up.WithLabelValues("shop", "cdn", "eu-west-1").Set(1)
	var logs bytes.Buffer
	s, err := New(context.Background(), probe.RemoteWriteConfig{
		URL:     srv.URL + "/workspaces/ws-123/api/v1/remote_write",
		Headers: map[string]string{"X-Scope-OrgID": "tenant-secret-value"},
		SigV4:   &probe.SigV4Config{Region: "eu-west-1"},
	}, Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := <-reqs
	if g.path != "/workspaces/ws-123/api/v1/remote_write" {
		t.Errorf("path %s", g.path)
	}
	auth := g.header.Get("Authorization")
	m := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=AKIDTEST/(\d{8})/eu-west-1/aps/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`).FindStringSubmatch(auth)
	if m == nil {
		t.Fatalf("Authorization %q", auth)
	}
	if date := g.header.Get("X-Amz-Date"); !strings.HasPrefix(date, m[1]) {
		t.Errorf("X-Amz-Date %q, scope date %s", date, m[1])
	}
	for _, h := range []string{"host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "x-scope-orgid", "content-encoding", "content-type"} {
		if !strings.Contains(";"+m[2]+";", ";"+h+";") {
			t.Errorf("SignedHeaders %s lacks %s", m[2], h)
		}
	}
	sum := sha256.Sum256(g.body)
	if h := g.header.Get("X-Amz-Content-Sha256"); h != hex.EncodeToString(sum[:]) {
		t.Errorf("X-Amz-Content-Sha256 %s does not hash the body", h)
	}
	if g.header.Get("X-Amz-Security-Token") != "test-token" || g.header.Get("X-Scope-OrgID") != "tenant-secret-value" {
		t.Errorf("token/extra header: %v", g.header)
	}
	if g.header.Get("Content-Encoding") != "snappy" || g.header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
		t.Errorf("remote write 1.0 headers: %v", g.header)
	}
	raw, err := snappy.Decode(nil, g.body)
	if err != nil {
		t.Fatalf("body is not snappy: %v", err)
	}
	if !bytes.Contains(raw, []byte("edgeprobe_rwtest_probe_success")) {
		t.Error("body lacks the series")
	}
	for _, secret := range []string{"test-secret", "test-token", "tenant-secret-value"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log holds %q:\n%s", secret, logs.String())
		}
	}
}

// TestNoCredentialsInLogs: user info and query of the URL stay out of logs
// and errors, also when the receiver is unreachable.
func TestNoCredentialsInLogs(t *testing.T) {
	port := testkit.FreePort(t) // nobody listens
	r := newTestRegistry()
	r.up.WithLabelValues("a", "cdn", "x").Set(1)
	var logs bytes.Buffer
	s, err := New(context.Background(), probe.RemoteWriteConfig{
		URL: fmt.Sprintf("http://alice:hunter2@127.0.0.1:%d/api/v1/write?api_key=sekrit", port),
	}, Options{Gatherer: r.reg, Metrics: r.self, Logger: testkit.TestLogger(t, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ferr := s.Flush(context.Background())
	if ferr == nil {
		t.Fatal("flush to a closed port succeeded")
	}
	s.collect(time.Now())
	s.logDrops()
	all := logs.String() + ferr.Error()
	for _, secret := range []string{"hunter2", "sekrit", "alice"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q leaked:\n%s", secret, all)
		}
	}
	if !strings.Contains(logs.String(), "remote write failed") {
		t.Errorf("no failure logged:\n%s", logs.String())
	}
	if _, err := New(context.Background(), probe.RemoteWriteConfig{URL: "http://bob:pw%zz@host/"}, Options{Gatherer: r.reg}); err == nil || strings.Contains(err.Error(), "bob") {
		t.Errorf("bad URL error %v", err)
	}
}

// TestConvert checks the flattening against what a scrape of the text
// format would give, and that labels come sorted as remote write requires.
func TestConvert(t *testing.T) {
	r := newTestRegistry()
	r.hist.WithLabelValues("a", "cdn", "x", "dns").Observe(0.007)
	sum := prometheus.NewSummary(prometheus.SummaryOpts{Name: "rwtest_summary", Help: "s", Objectives: map[float64]float64{0.5: 0.01}})
	sum.Observe(2)
	r.reg.MustRegister(sum)
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ss, md := convert(mfs, 1234, []label{{"job", "j"}, {"location", "ignored"}})
	got := map[string]float64{}
	for _, s := range ss {
		var parts []string
		for i, l := range s.labels {
			if i > 0 && s.labels[i-1].name >= l.name {
				t.Errorf("labels not sorted: %v", s.labels)
			}
			parts = append(parts, l.name+"="+l.value)
		}
		if s.ts != 1234 {
			t.Errorf("ts %d", s.ts)
		}
		got[strings.Join(parts, ",")] = s.value
	}
	h := "location=x,phase=dns,role=cdn,target=a"
	for k, v := range map[string]float64{
		"__name__=edgeprobe_rwtest_phase_duration_seconds_bucket,job=j,le=0.005," + h: 0,
		"__name__=edgeprobe_rwtest_phase_duration_seconds_bucket,job=j,le=0.01," + h:  1,
		"__name__=edgeprobe_rwtest_phase_duration_seconds_bucket,job=j,le=+Inf," + h:  1,
		"__name__=edgeprobe_rwtest_phase_duration_seconds_count,job=j," + h:           1,
		"__name__=edgeprobe_rwtest_phase_duration_seconds_sum,job=j," + h:             0.007,
		"__name__=rwtest_summary,job=j,location=ignored,quantile=0.5":                 2,
		"__name__=rwtest_summary_count,job=j,location=ignored":                        1,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(md) != len(mfs) {
		t.Errorf("metadata %d for %d families", len(md), len(mfs))
	}
	// Chunks: each request holds at most n series and the metadata of its families.
	reqs := encode(ss, md, 5)
	total := 0
	for _, q := range reqs {
		if q.samples > 5 {
			t.Errorf("request of %d series", q.samples)
		}
		total += q.samples
		buf := make([]byte, q.Size()+3)
		if n, _ := q.MarshalToSizedBuffer(buf); n != q.Size() || !bytes.Equal(buf[3:], q.buf) {
			t.Error("MarshalToSizedBuffer does not fill the end of the buffer")
		}
	}
	if total != len(ss) {
		t.Errorf("requests carry %d of %d series", total, len(ss))
	}
}

func TestHeaderValidation(t *testing.T) {
	r := newTestRegistry()
	for _, tc := range []struct {
		cfg probe.RemoteWriteConfig
		ok  bool
	}{
		{probe.RemoteWriteConfig{URL: "http://h/w", Headers: map[string]string{"X-Scope-OrgID": "t", "Authorization": "Bearer x"}}, true},
		{probe.RemoteWriteConfig{URL: "http://h/w", Headers: map[string]string{"content-type": "x"}}, false},
		{probe.RemoteWriteConfig{URL: "http://u:p@h/w", Headers: map[string]string{"Authorization": "Bearer x"}}, false},
		{probe.RemoteWriteConfig{URL: "ftp://h/w"}, false},
		{probe.RemoteWriteConfig{URL: "/relative"}, false},
	} {
		s, err := New(context.Background(), tc.cfg, Options{Gatherer: r.reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
		if err != nil && strings.Contains(err.Error(), "Bearer") {
			t.Errorf("error shows a header value: %v", err)
		}
		if s != nil {
			s.Close()
		}
	}
}
