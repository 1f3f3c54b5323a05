package promexp

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// The goals for the exporter's share of the agent: at most 8 KiB of
// heap per target and a scrape of 5,000 targets in at most 100 ms.
const (
	maxBytesPerPlainSeries = 8 << 10
	costSeries             = 5000
	costSamplesPerSeries   = 40 // per series, with a scrape halfway (see fill)
)

// plainSample is a successful HTTPS probe of a site without a CDN: every
// phase, TLS, no cache facts, no Server-Timing, no follow-up requests.
func plainSample(target string) *probe.Sample {
	s := cdnSample()
	s.Target, s.Role = target, "origin"
	s.CDN = httptrace.CDN{}
	s.Conditional, s.Warm = nil, nil
	return s
}

// fullCDNSample is cdnSample for another target: every metric of a series.
func fullCDNSample(target string) *probe.Sample {
	s := cdnSample()
	s.Target = target
	return s
}

// jitter spreads a sample's durations log-normally (σ = 0.25: 95% within
// a factor of 1.65 either way), so the native histograms hold a realistic
// number of buckets (about ten) rather than one.
func jitter(s *probe.Sample, rng *rand.Rand) *probe.Sample {
	f := func(d *time.Duration) {
		*d = time.Duration(float64(*d) * math.Exp(0.25*rng.NormFloat64()))
	}
	each := func(t *httptrace.Timings) {
		for _, d := range []*time.Duration{&t.DNS, &t.Connect, &t.TLS, &t.TTFB, &t.Transfer, &t.Total, &t.FirstByte} {
			f(d)
		}
	}
	each(&s.Timings)
	if s.Warm != nil {
		each(s.Warm)
	}
	if s.Conditional != nil {
		each(&s.Conditional.Timings)
	}
	u := &s.CDN.Upstream
	for _, d := range []*time.Duration{&u.DNS, &u.Connect, &u.FirstByte, &u.DownstreamFirst} {
		f(d)
	}
	return s
}

// cpuTime is the process's user and system CPU time: on shared cores a
// steadier measure of cost than the wall clock.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportScrape reports wall and CPU milliseconds per scrape.
func reportScrape(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/scrape")
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/scrape")
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fill writes costSamplesPerSeries jittered samples to each of n series,
// with a scrape halfway and one at the end: a scrape may leave state behind
// (client_golang's native histograms keep a second set of buckets).
func fill(tb testing.TB, reg *prometheus.Registry, e *Exporter, targets []string, mk func(string) *probe.Sample) {
	tb.Helper()
	if err := fillSeries(reg, e, targets, mk); err != nil {
		tb.Fatal(err)
	}
}

// fillSeries is fill for callers without a testing.TB (the scrape server of
// BenchmarkScrapeHTTP).
func fillSeries(reg prometheus.Gatherer, e *Exporter, targets []string, mk func(string) *probe.Sample) error {
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for range 2 {
		for _, target := range targets {
			for range costSamplesPerSeries / 2 {
				e.Write(ctx, jitter(mk(target), rng))
			}
		}
		if _, err := reg.Gather(); err != nil {
			return fmt.Errorf("gather: %w", err)
		}
	}
	return nil
}

func targetNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("target-%04d", i)
	}
	return out
}

// bytesPerSeries is the live heap that n series of mk's samples add to an
// exporter: all of it, the metrics' state and the status page's. Target
// names are made before measuring: the config holds them anyway.
func bytesPerSeries(tb testing.TB, n int, mk func(string) *probe.Sample) float64 {
	tb.Helper()
	targets := targetNames(n)
	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	before := liveHeap()
	fill(tb, reg, e, targets, mk)
	after := liveHeap()
	runtime.KeepAlive(e)
	runtime.KeepAlive(reg)
	runtime.KeepAlive(targets)
	return float64(after-before) / float64(n)
}

// TestMemoryPerSeries holds the exporter to the budget: a plain
// series (one target × role without a CDN) costs at most 8 KiB.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap: not in -short, and the race detector inflates it")
	}
	// 2,000 series: as telling as 5,000 (BenchmarkSeriesMemory), and quicker.
	plain := bytesPerSeries(t, 2000, plainSample)
	cdn := bytesPerSeries(t, 2000, fullCDNSample)
	t.Logf("heap per series: plain %.0f B, full CDN %.0f B", plain, cdn)
	if plain > maxBytesPerPlainSeries {
		t.Errorf("a plain series costs %.0f B of heap, want at most %d", plain, maxBytesPerPlainSeries)
	}
}

// BenchmarkSeriesMemory reports the heap per series (B/series) of 5,000
// series of each kind.
func BenchmarkSeriesMemory(b *testing.B) {
	for _, kind := range []struct {
		name string
		mk   func(string) *probe.Sample
	}{{"plain", plainSample}, {"cdn", fullCDNSample}} {
		b.Run(kind.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = bytesPerSeries(b, costSeries, kind.mk)
			}
			b.ReportMetric(per, "B/series")
		})
	}
}

// BenchmarkWrite is the cost of one sample of a known series: the same
// sample again, or a new one with jittered timings (new native buckets,
// now and then), among 5,000 series.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, kind := range []struct {
		name string
		mk   func(string) *probe.Sample
	}{{"plain", plainSample}, {"cdn", fullCDNSample}} {
		b.Run(kind.name, func(b *testing.B) {
			e := New(prometheus.NewRegistry(), nil)
			s := kind.mk("shop")
			e.Write(ctx, s)
			b.ReportAllocs()
			for b.Loop() {
				e.Write(ctx, s)
			}
		})
		b.Run(kind.name+"/jittered", func(b *testing.B) {
			reg := prometheus.NewRegistry()
			e := New(reg, nil)
			targets := targetNames(costSeries)
			fill(b, reg, e, targets, kind.mk)
			rng := rand.New(rand.NewPCG(7, 8))
			samples := make([]*probe.Sample, 1000)
			for i := range samples {
				samples[i] = jitter(kind.mk(targets[rng.IntN(len(targets))]), rng)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.Write(ctx, samples[i%len(samples)])
				i++
			}
		})
	}
}

// BenchmarkScrape5000 is one scrape of 5,000 series through the registry:
// gather, then encode with expfmt, as text (what /metrics did before its
// text encoder; TestTextEncoderMatchesExpfmt still compares with it) and as
// protobuf (what Prometheus asks for to get native histograms). The
// collect and gather parts show where the time goes: this package's
// collector alone, then with client_golang's registry (its checks and
// sort). BenchmarkMetricsHandler and BenchmarkScrapeHTTP measure /metrics.
func BenchmarkScrape5000(b *testing.B) {
	for _, kind := range []struct {
		name string
		mk   func(string) *probe.Sample
	}{{"plain", plainSample}, {"cdn", fullCDNSample}} {
		// Filled on first use, so that -bench can pick one kind cheaply.
		var reg *prometheus.Registry
		var e *Exporter
		setup := func(b *testing.B) {
			if reg == nil {
				reg = prometheus.NewRegistry()
				e = New(reg, nil)
				fill(b, reg, e, targetNames(costSeries), kind.mk)
			}
		}
		b.Run(kind.name+"/collect", func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			var n int
			cpu0 := cpuTime(b)
			for b.Loop() {
				n = 0
				ch := make(chan prometheus.Metric, 1024)
				go func() {
					e.c.Collect(ch)
					close(ch)
				}()
				for m := range ch {
					var out dto.Metric
					if err := m.Write(&out); err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			reportScrape(b, cpu0)
			b.ReportMetric(float64(n), "metrics")
		})
		b.Run(kind.name+"/gather", func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
			reportScrape(b, cpu0)
		})
		for _, f := range []struct {
			name   string
			format expfmt.Format
		}{
			{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
			{"protobuf", expfmt.NewFormat(expfmt.TypeProtoDelim)},
		} {
			b.Run(kind.name+"/"+f.name, func(b *testing.B) {
				setup(b)
				var buf bytes.Buffer
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				for b.Loop() {
					buf.Reset()
					mfs, err := reg.Gather()
					if err != nil {
						b.Fatal(err)
					}
					enc := expfmt.NewEncoder(&buf, f.format)
					for _, mf := range mfs {
						if err := enc.Encode(mf); err != nil {
							b.Fatal(err)
						}
					}
				}
				reportScrape(b, cpu0)
				b.ReportMetric(float64(buf.Len()), "bytes")
			})
		}
	}
}

// discardResponse is a ResponseWriter that counts and drops the page.
type discardResponse struct {
	h http.Header
	n int64
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(int)             {}
func (d *discardResponse) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// BenchmarkMetricsHandler is the agent's side of BenchmarkScrapeHTTP in
// this process, without the network: the handler writing the OpenMetrics
// page of 5,000 plain targets, with and without gzip.
func BenchmarkMetricsHandler(b *testing.B) {
	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	fill(b, reg, e, targetNames(costSeries), plainSample)
	h := NewServer(probe.PrometheusConfig{}, reg, e, nil).Handler()
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, metricsPath, nil)
			req.Header.Set("Accept", promAccept)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			var w *discardResponse
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				w = &discardResponse{h: http.Header{}}
				h.ServeHTTP(w, req)
			}
			reportScrape(b, cpu0)
			b.ReportMetric(float64(w.n)/1e6, "MB")
		})
	}
}

// BenchmarkGzipLevels compresses the OpenMetrics page of 1,000 plain
// targets with klauspost's gzip at each level: the agent's cost (ms per
// 100 MB, the size of 5,000 targets' page), the ratio, and the cost of
// decompressing with compress/gzip as Prometheus does.
func BenchmarkGzipLevels(b *testing.B) {
	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	fill(b, reg, e, targetNames(1000), plainSample)
	h := NewServer(probe.PrometheusConfig{}, reg, e, nil).Handler()
	req := httptest.NewRequest(http.MethodGet, metricsPath, nil)
	req.Header.Set("Accept", promAccept)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	page := rec.Body.Bytes()
	for _, level := range []int{kgzip.HuffmanOnly, kgzip.StatelessCompression, 1, 2, 3, 4, 5, 6, 9} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var out bytes.Buffer
			zw, err := kgzip.NewWriterLevel(&out, level)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				out.Reset()
				zw.Reset(&out)
				if _, err := zw.Write(page); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			per100MB := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) * 100e6 / float64(len(page)) }
			b.ReportMetric(per100MB(b.Elapsed()), "ms/100MB")
			b.ReportMetric(float64(len(page))/float64(out.Len()), "ratio")
			start := time.Now()
			zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, zr); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds()*1000*100e6/float64(len(page)), "gunzip-ms/100MB")
		})
	}
}
