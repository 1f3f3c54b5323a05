package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func testOptions(t *testing.T, reg *prometheus.Registry, queue int) Options {
	return Options{
		Metrics:   selfmetrics.New(reg),
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		QueueSize: queue,
	}
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// richSample fills every field the JSONL object carries.
func richSample(i int) *probe.Sample {
	start := time.Date(2026, 11, 29, 10, 0, 0, 123456789+i, time.UTC)
	tm := httptrace.Timings{DNS: ms(1.234567), Connect: ms(10.5) + time.Duration(i), TLS: ms(21.123456789), TTFB: ms(33.3), Transfer: ms(0.7), Total: ms(67.1), FirstByte: ms(66.4)}
	r := &httptrace.Result{
		URL: fmt.Sprintf("https://www.example.com/health?i=%d", i), FinalURL: "https://www.example.com/health/", Start: start, Timings: tm,
		Hops: []httptrace.Hop{
			{URL: "https://www.example.com/health", Status: 301, Timings: httptrace.Timings{Connect: ms(9.9), Total: ms(30.01)}, RemoteAddr: "192.0.2.1:443"},
			{URL: "https://www.example.com/health/", Status: 200, Timings: tm, RemoteAddr: "192.0.2.1:443"},
		},
		Redirects: 1, RemoteAddr: "192.0.2.1:443", IPFamily: "ipv4", ConnectAttempts: 1, Proto: "HTTP/2.0",
		Status: 200, BodyBytes: 1234,
		TLS: &httptrace.TLSInfo{Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ALPN: "h2", ServerName: "www.example.com",
			Subject: "CN=www.example.com", Issuer: "CN=Test CA", DNSNames: []string{"www.example.com"}, NotAfter: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)},
		CDN: httptrace.CDN{Provider: "cloudfront", Cache: "hit", CacheRaw: "Hit from cloudfront", CacheSource: "x-cache", POP: "FRA56-P1", POPCity: "Frankfurt",
			RequestID: "abc==", HitLayer: "EDGE", Via: "1.1 x.cloudfront.net (CloudFront)",
			ServerTiming: []httptrace.ServerTiming{{Name: "cdn-cache-hit"}}, Upstream: httptrace.Upstream{Layer: "REC"}},
		Warm: &httptrace.Timings{TTFB: ms(5.5), Total: ms(6.25)},
		Conditional: &httptrace.Conditional{Sent: true, IfModified: "Sat, 28 Nov 2026 10:00:00 GMT", Status: 304, NotModified: true,
			Timings: httptrace.Timings{TTFB: ms(4.4), Total: ms(12.0)}, CDN: httptrace.CDN{Cache: "refresh_hit"}},
	}
	s := &probe.Sample{Target: "shop", Role: "cdn", Location: "eu-west-1", Result: r}
	if i%3 == 1 {
		s.Role, s.Address = "origin", "ipv4-0"
		r.Err = &httptrace.Error{Phase: httptrace.ErrTLS, Message: "certificate expired"}
		r.Conditional, r.Warm, r.TLS, r.Hops, r.Redirects = nil, nil, nil, nil, 0
		r.FinalURL = r.URL
	}
	return s
}

// timingsClose reports phases further apart than 1ns.
func timingsClose(t *testing.T, what string, a, b httptrace.Timings) {
	t.Helper()
	for _, p := range httptrace.Phases {
		if d := a.Get(p) - b.Get(p); d > 1 || d < -1 {
			t.Errorf("%s %s: wrote %v, read %v", what, p, a.Get(p), b.Get(p))
		}
	}
}

// sameSample compares a sample read back with the one written: timings
// within 1ns (JSON carries float seconds), everything else equal.
func sameSample(t *testing.T, want, got *probe.Sample) {
	t.Helper()
	w, g := want.Result, got.Result
	timingsClose(t, "timings", w.Timings, g.Timings)
	g.Timings = w.Timings
	if len(w.Hops) == len(g.Hops) {
		for i := range w.Hops {
			timingsClose(t, "hop", w.Hops[i].Timings, g.Hops[i].Timings)
			g.Hops[i].Timings = w.Hops[i].Timings
		}
	}
	if w.Warm != nil && g.Warm != nil {
		timingsClose(t, "warm", *w.Warm, *g.Warm)
		*g.Warm = *w.Warm
	}
	if w.Conditional != nil && g.Conditional != nil {
		timingsClose(t, "conditional", w.Conditional.Timings, g.Conditional.Timings)
		g.Conditional.Timings = w.Conditional.Timings
	}
	if !g.Start.Equal(w.Start) {
		t.Errorf("start %v, want %v", g.Start, w.Start)
	}
	g.Start = w.Start
	if !reflect.DeepEqual(want, got) {
		t.Errorf("read back differs:\nwant %+v\n got %+v", *w, *g)
	}
}

func readLines(t *testing.T, path string) []*probe.Sample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*probe.Sample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s probe.Sample
		if err := s.UnmarshalJSON(sc.Bytes()); err != nil {
			t.Fatalf("line %d: %v: %s", len(out)+1, err, sc.Text())
		}
		out = append(out, &s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(probe.JSONLConfig{Path: path}, testOptions(t, reg, 0))
	if err != nil {
		t.Fatal(err)
	}
	var want []*probe.Sample
	for i := range 6 {
		want = append(want, richSample(i))
		s.Write(context.Background(), want[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, path)
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range want {
		sameSample(t, want[i], got[i])
	}
	// The line is exactly the documented object.
	raw, _ := os.ReadFile(path)
	first, _, _ := bytes.Cut(raw, []byte("\n"))
	wantLine, _ := want[0].MarshalJSON()
	if !bytes.Equal(first, wantLine) {
		t.Errorf("line %s\nwant %s", first, wantLine)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("flush after close: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode %v (%v)", st.Mode(), err)
	}
	if n := selfValue(t, reg, "edgeprobe_exporter_dropped_total"); n != 0 {
		t.Errorf("dropped %v", n)
	}
}

// selfValue reads the jsonl exporter's series of a self-metric family.
func selfValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "exporter" && l.GetValue() == Name {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{exporter=%q}", name, Name)
	return 0
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	// An existing line stays: the file is opened for appending.
	if err := os.WriteFile(path, []byte(`{"target":"before"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 300
	reg := prometheus.NewRegistry()
	s, err := New(probe.JSONLConfig{Path: path}, testOptions(t, reg, writers*each))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				smp := richSample(i)
				smp.Target = fmt.Sprintf("t%d", w)
				s.Write(context.Background(), smp)
			}
		})
	}
	wg.Wait()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, path)
	if len(got) != 1+writers*each || got[0].Target != "before" {
		t.Fatalf("%d lines (first %q), want %d", len(got), got[0].Target, 1+writers*each)
	}
	seen := map[string]bool{}
	for _, g := range got[1:] {
		key := g.Target + "/" + g.Result.URL
		if seen[key] {
			t.Errorf("duplicate %s", key)
		}
		seen[key] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct samples", len(seen))
	}
}

// TestDropWhenFull fills a tiny queue while the writer is not running:
// Write returns at once, and the overflow is counted.
func TestDropWhenFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	reg := prometheus.NewRegistry()
	s, err := newSink(probe.JSONLConfig{Path: path}, testOptions(t, reg, 2))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			s.Write(context.Background(), richSample(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a full queue")
	}
	if d := selfValue(t, reg, "edgeprobe_exporter_dropped_total"); d != 3 {
		t.Errorf("dropped %v, want 3", d)
	}
	if q := selfValue(t, reg, "edgeprobe_exporter_queue_depth"); q != 2 {
		t.Errorf("queue depth %v, want 2", q)
	}
	go s.loop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path); len(got) != 2 {
		t.Errorf("%d lines, want the 2 queued", len(got))
	}
	s.Write(context.Background(), richSample(9)) // after Close: dropped, no panic
	if d := selfValue(t, reg, "edgeprobe_exporter_dropped_total"); d != 4 {
		t.Errorf("dropped %v, want 4", d)
	}
}

// TestReopen follows log rotation: lines before Reopen stay in the moved
// file, lines after go to a new file at the path.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "samples.jsonl")
	s, err := New(probe.JSONLConfig{Path: path}, testOptions(t, prometheus.NewRegistry(), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.Write(ctx, richSample(0))
	s.Write(ctx, richSample(1))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	s.Write(ctx, richSample(2))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if old, cur := readLines(t, path+".1"), readLines(t, path); len(old) != 2 || len(cur) != 1 || cur[0].Result.URL != richSample(2).Result.URL {
		t.Errorf("rotated %d lines, current %d", len(old), len(cur))
	}
}

// TestPeriodicFlush: lines reach the file within FlushInterval without
// Flush, so a reader tailing it sees them.
func TestPeriodicFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	o := testOptions(t, prometheus.NewRegistry(), 0)
	o.FlushInterval = 20 * time.Millisecond
	s, err := New(probe.JSONLConfig{Path: path}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write(context.Background(), richSample(0))
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Count(b, []byte("\n")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("line not on disk without Flush")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpenError(t *testing.T) {
	_, err := New(probe.JSONLConfig{Path: filepath.Join(t.TempDir(), "missing", "x.jsonl")}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open in a missing directory: %v", err)
	}
}
