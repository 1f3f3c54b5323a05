package promexp

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// richSamples is every family with label values that need escaping or
// repair, several addresses and locations, failures in every phase and in
// phases this package does not know, keep-alive, revalidation of every
// result, upstream timings and many POPs.
func richSamples() []*probe.Sample {
	out := allSamples()
	odd := []string{`we"ird`, `back\slash`, "new\nline", "naïve-日本", "bad\xff", "", "zz"}
	for i, name := range odd {
		s := cdnSample()
		s.Target = name
		s.Location = []string{testLocation, "a-loc", `lo"c`}[i%3]
		s.Address = []string{"", "ipv4-0", "ipv6-1"}[i%3]
		s.CDN.POP = []string{`P"OP`, `P\OP`, "P\nOP", "FRA56-P1"}[i%4]
		s.CDN.Cache = []string{httptrace.CacheHit, "miss", `we"ird`, ""}[i%4]
		s.Proto = []string{"HTTP/2.0", `HTTP/"1"`, "HTTP/1.1"}[i%3]
		s.CDN.Upstream.DNS = 0 // absent: no series
		out = append(out, s)
		if i%2 == 0 {
			w := fullCDNSample(name)
			w.Location, w.Address = s.Location, s.Address
			w.Timings.TTFB *= 40 // other buckets
			w.Warm = nil
			out = append(out, w)
		}
		f := failedSample(name, []string{httptrace.ErrDNS, httptrace.ErrTimeout, httptrace.ErrAssert, "quic", "aaa", "zzz\xfe", httptrace.ErrTLS}[i])
		f.Role, f.Location, f.Address = "origin", s.Location, s.Address
		out = append(out, f)
	}
	for _, pop := range []string{"IAD89-C1", "AMS1-P2", "zzz", ""} {
		s := cdnSample()
		s.CDN.POP = pop
		out = append(out, s)
	}
	// Extreme values: a huge duration, a status that is not a number's
	// short form, a long-gone start.
	big := cdnSample()
	big.Target, big.Start = "big", time.Unix(0, 1)
	big.Timings.Total, big.Status = 1234567*time.Second, 599
	return append(out, big)
}

// pageFixture is a registry as the agent has it (other metrics whose names
// sort among the Exporter's) and an Exporter with richSamples, a forgotten
// job and a fixed clock.
func pageFixture(t *testing.T, constLabels map[string]string) (*prometheus.Registry, *Exporter) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	e := New(reg, constLabels)
	clock := &fakeClock{t0}
	e.now = clock.now
	write(e, richSamples()...)
	write(e, failedSample("gone", httptrace.ErrDNS))
	e.Forget(func(target, _ string) bool { return target != "gone" })
	clock.t = t0.Add(2 * time.Hour) // past a reset a histogram may have due

	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edgeprobe_http_status", Help: "Sorts before \"http_status_code\"\\."}, []string{"x"})
	g.WithLabelValues(`a"b`).Set(1.5)
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeprobe_config_reloads_total", Help: "Reloads."}, []string{"result"})
	c.WithLabelValues("success").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zzz_seconds", Help: "Last.", Buckets: []float64{1, 2.5},
		NativeHistogramBucketFactor: 1.1})
	h.Observe(2)
	reg.MustRegister(g, c, h, prometheus.NewGauge(prometheus.GaugeOpts{Name: "aaa_first", Help: "First."}))
	return reg, e
}

// oldHandler is the handler /metrics had before the text encoder: the
// reference the new one must match.
func oldHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight, Timeout: scrapeTimeout,
	})
}

type page struct {
	code                   int
	contentType, encoding  string
	body                   []byte
	vary                   []string
	compressed, plainBytes int
}

func serve(t *testing.T, h http.Handler, target, accept, acceptEncoding string) page {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	p := page{code: rec.Code, contentType: rec.Header().Get("Content-Type"), encoding: rec.Header().Get("Content-Encoding"),
		vary: rec.Header().Values("Vary"), body: rec.Body.Bytes()}
	if p.encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(p.body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		if p.body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	return p
}

const (
	acceptProm2    = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	acceptProm3    = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
	acceptProtobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4"
)

// TestTextEncoderMatchesExpfmt: in every text format, with and without
// constant labels, gzip and a name filter, the page is byte for byte what
// the registry and expfmt made of the collector's metrics.
func TestTextEncoderMatchesExpfmt(t *testing.T) {
	for _, cl := range []map[string]string{nil, {"env": "prod", "aaa": `q"u\o` + "\n", "zone": "z"}} {
		reg, e := pageFixture(t, cl)
		old, h := oldHandler(reg), NewServer(probe.PrometheusConfig{}, reg, e, testLogger(t)).Handler()
		if e.c.textOK() != true {
			t.Fatalf("text encoder not used with constant labels %v", cl)
		}
		for _, accept := range []string{
			acceptProm2, acceptProm3, "", "*/*", "text/plain", "text/plain;version=0.0.4", "text/plain;version=1.0.0",
			"application/openmetrics-text;version=1.0.0", "application/openmetrics-text;version=0.0.1",
			"application/openmetrics-text", "application/openmetrics-text;version=1.0.0;escaping=underscores",
			"application/openmetrics-text;version=2.0.0", "application/json",
		} {
			for _, ae := range []string{"", "gzip", "gzip, deflate, br", "*", "identity", "gzip;q=0", "gzip;q=0.5, identity;q=0.6", "br", "GZIP"} {
				for _, path := range []string{"/metrics", "/metrics?name[]=edgeprobe_probes_total&name[]=aaa_first&name[]=zzz_seconds"} {
					name := fmt.Sprintf("labels %v, Accept %q, Accept-Encoding %q, %s", cl, accept, ae, path)
					want, got := serve(t, old, path, accept, ae), serve(t, h, path, accept, ae)
					if got.code != want.code || got.contentType != want.contentType || got.encoding != want.encoding ||
						strings.Join(got.vary, ",") != strings.Join(want.vary, ",") {
						t.Errorf("%s: %d %q %q %q, want %d %q %q %q", name, got.code, got.contentType, got.encoding, got.vary,
							want.code, want.contentType, want.encoding, want.vary)
					}
					if !bytes.Equal(got.body, want.body) {
						t.Errorf("%s: page differs from expfmt's: %s", name, firstDiff(want.body, got.body))
					}
				}
			}
		}
		// The page has what the fixture promises, so the comparison above
		// compared something.
		p := serve(t, h, "/metrics", acceptProm2, "")
		for _, want := range []string{
			"# TYPE edgeprobe_probes counter\n", `result="quic"`, `result="aaa"`, "result=\"zzz\uFFFD\"", `target="we\"ird"`,
			`target="new\nline"`, `target="back\\slash"`, `pop="P\"OP"`, `http_version="HTTP/\"1\""`, "edgeprobe_keepalive_duration_seconds_bucket{",
			`result="modified"`, `result="error"`, `result="skipped_no_validator"`, `phase="downstream_first_byte"`, "# EOF\n",
			"edgeprobe_probe_duration_seconds{", "e+06\n",
		} {
			if !bytes.Contains(p.body, []byte(want)) {
				t.Errorf("page lacks %q", want)
			}
		}
		if bytes.Contains(p.body, []byte(`target="gone"`)) {
			t.Errorf("page has the forgotten job")
		}
	}
}

// TestTextEncoderParses: the pages parse, and to the same families as
// the registry gathers.
func TestTextEncoderParses(t *testing.T) {
	reg, e := pageFixture(t, map[string]string{"env": "prod"})
	h := NewServer(probe.PrometheusConfig{}, reg, e, testLogger(t)).Handler()
	p := serve(t, h, "/metrics", "text/plain;version=0.0.4", "gzip")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(p.body))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(mfs) {
		t.Errorf("%d families parsed, %d gathered", len(parsed), len(mfs))
	}
	for _, mf := range mfs {
		pm := parsed[mf.GetName()]
		if pm == nil || len(pm.GetMetric()) != len(mf.GetMetric()) {
			t.Errorf("%s: parsed %v", mf.GetName(), pm)
		}
	}
}

// TestProtobufKeepsNativeHistograms: Prometheus asks for protobuf to
// ingest native histograms; that page is the registry's, as before.
func TestProtobufKeepsNativeHistograms(t *testing.T) {
	reg, e := pageFixture(t, nil)
	h := NewServer(probe.PrometheusConfig{}, reg, e, testLogger(t)).Handler()
	p := serve(t, h, "/metrics", acceptProtobuf, "gzip")
	if !strings.HasPrefix(p.contentType, "application/vnd.google.protobuf") {
		t.Fatalf("Content-Type %q", p.contentType)
	}
	want, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(p.body)
	var got []*dto.MetricFamily
	for r.Len() > 0 {
		mf := &dto.MetricFamily{}
		if err := protodelim.UnmarshalFrom(r, mf); err != nil {
			t.Fatal(err)
		}
		got = append(got, mf)
	}
	if len(got) != len(want) {
		t.Fatalf("%d families, want %d", len(got), len(want))
	}
	native := 0
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("%s differs from the registry's", want[i].GetName())
		}
		for _, m := range got[i].GetMetric() {
			if hh := m.GetHistogram(); hh != nil && hh.Schema != nil && len(hh.GetPositiveSpan()) > 0 {
				native++
			}
		}
	}
	if native == 0 {
		t.Errorf("no native histograms in the protobuf page")
	}
}

// TestOtherGatherersSeeEverything: while /metrics skips the collector in
// its own gathering, gatherings of the registry by others (push, remote
// write) run alongside and get every family.
func TestOtherGatherersSeeEverything(t *testing.T) {
	reg, e := pageFixture(t, nil)
	h := NewServer(probe.PrometheusConfig{}, reg, e, testLogger(t)).Handler()
	want := count(t, reg, "edgeprobe_probes_total")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if p := serve(t, h, "/metrics", acceptProm2, ""); !bytes.Contains(p.body, []byte("edgeprobe_probes_total{")) {
				t.Error("page without probes_total")
				return
			}
		}
	})
	for range 200 {
		if n := count(t, reg, "edgeprobe_probes_total"); n != want {
			t.Errorf("a concurrent Gather got %d probes_total series, want %d", n, want)
			break
		}
	}
	close(stop)
	wg.Wait()
}

// TestPageWithoutTheExporter: an Exporter whose collector is not in the
// gatherer adds nothing to the page.
func TestPageWithoutTheExporter(t *testing.T) {
	_, e := pageFixture(t, nil)
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "x", Help: "x"}))
	h := NewServer(probe.PrometheusConfig{}, other, e, testLogger(t)).Handler()
	for _, accept := range []string{acceptProm2, "text/plain"} {
		want, got := serve(t, oldHandler(other), "/metrics", accept, ""), serve(t, h, "/metrics", accept, "")
		if !bytes.Equal(got.body, want.body) {
			t.Errorf("Accept %q: page %q, want %q", accept, got.body, want.body)
		}
	}
}

// blockingCollector blocks Collect until release is closed.
type blockingCollector struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCollector) Describe(chan<- *prometheus.Desc) {}
func (b *blockingCollector) Collect(chan<- prometheus.Metric) {
	b.entered <- struct{}{}
	<-b.release
}

// TestScrapeLimits: at most maxScrapesInFlight scrapes at once, the next
// is told so; a scrape that cannot start its page in time gets promhttp's
// timeout answer.
func TestScrapeLimits(t *testing.T) {
	reg, e := pageFixture(t, nil)
	b := &blockingCollector{entered: make(chan struct{}, maxScrapesInFlight+1), release: make(chan struct{})}
	reg.MustRegister(b)
	h := newMetricsHandler(reg, e, slog.NewLogLogger(testLogger(t).Handler(), slog.LevelError))
	h.timeout = 50 * time.Millisecond

	var wg sync.WaitGroup
	pages := make([]page, maxScrapesInFlight)
	for i := range maxScrapesInFlight {
		wg.Go(func() { pages[i] = serve(t, h, "/metrics", acceptProm2, "gzip") })
	}
	for range maxScrapesInFlight {
		<-b.entered
	}
	over := serve(t, h, "/metrics", acceptProm2, "")
	if over.code != http.StatusServiceUnavailable || !strings.Contains(string(over.body), "Limit of concurrent requests reached (4)") {
		t.Errorf("scrape over the limit: %d %q", over.code, over.body)
	}
	time.Sleep(2 * h.timeout)
	close(b.release)
	wg.Wait()
	for _, p := range pages {
		if p.code != http.StatusServiceUnavailable || string(p.body) != "Exceeded configured timeout of 50ms.\n" || p.encoding != "" {
			t.Errorf("timed-out scrape: %d %q %q", p.code, p.encoding, p.body)
		}
	}
	if p := serve(t, h, "/metrics", acceptProm2, ""); p.code != http.StatusOK {
		t.Errorf("scrape after the others: %d", p.code)
	}
}

// TestAppendFloat: the text encoder formats numbers as expfmt does.
func TestAppendFloat(t *testing.T) {
	values := []float64{0, math.Copysign(0, -1), 1, -1, 2, 10, 0.001, 0.0025, 1.5, 999999, 1e6, 1234567, 1e21, 123456789012,
		1.7408304e9, 1740830400.123456789, 0.1 + 0.2, 5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), -2.5, 4294967295}
	for _, v := range values {
		mf := &dto.MetricFamily{Name: new("x"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: new(v)}}}}
		for _, om := range []bool{false, true} {
			var buf bytes.Buffer
			var err error
			if om {
				_, err = expfmt.MetricFamilyToOpenMetrics(&buf, mf)
			} else {
				_, err = expfmt.MetricFamilyToText(&buf, mf)
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			want := strings.TrimPrefix(lines[len(lines)-1], "x ")
			if got := string(appendFloat(nil, v, om)); got != want {
				t.Errorf("appendFloat(%v, om %v) = %q, want %q", v, om, got, want)
			}
		}
	}
}

// firstDiff shows the first line where got differs from want.
func firstDiff(want, got []byte) string {
	w, g := strings.SplitAfter(string(want), "\n"), strings.SplitAfter(string(got), "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d is %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}

// chunkRecorder records the writes of a response; after failAfter writes
// (if not 0) they fail, as to a client gone away.
type chunkRecorder struct {
	h         http.Header
	writes    int
	failAfter int
	body      bytes.Buffer
}

func (c *chunkRecorder) Header() http.Header { return c.h }
func (c *chunkRecorder) WriteHeader(int)     {}
func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.writes++
	if c.failAfter > 0 && c.writes > c.failAfter {
		return 0, io.ErrClosedPipe
	}
	return c.body.Write(p)
}

// TestPageStreams: the page goes out in chunks as it is made, and a write
// that fails midway cuts the response rather than ending it as if whole.
func TestPageStreams(t *testing.T) {
	reg, e := pageFixture(t, nil)
	write(e, richSamples()...)
	for i := range 200 {
		write(e, plainSample(fmt.Sprintf("t%03d", i)))
	}
	h := NewServer(probe.PrometheusConfig{}, reg, e, testLogger(t)).Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", acceptProm2)

	w := &chunkRecorder{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.writes < 3 || !bytes.HasSuffix(w.body.Bytes(), []byte("# EOF\n")) {
		t.Errorf("%d writes of %d bytes in all, want a page in chunks of %d", w.writes, w.body.Len(), chunkSize)
	}

	broken := &chunkRecorder{h: http.Header{}, failAfter: 1}
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("a failed write: recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	h.ServeHTTP(broken, req)
	t.Errorf("a failed write did not abort the response")
}
