package promexp

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// TestCollectInRegistryOrder: the collector sends each family's metrics in
// the order the registry sorts them into, so that sort is a linear check.
// (probe_info and cache_results_total sort by their own labels first; the
// registry orders those.)
func TestCollectInRegistryOrder(t *testing.T) {
	_, e := newTestExporter(t)
	for i := range 30 {
		for _, loc := range []string{"b-loc", "a-loc"} {
			for _, addr := range []string{"ipv6-0", "", "ipv4-1"} {
				for _, s := range []func(string) *probe.Sample{fullCDNSample, plainSample} {
					x := s(fmt.Sprintf("t%02d", 29-i))
					x.Location, x.Address = loc, addr
					write(e, x)
				}
				for _, p := range []string{httptrace.ErrDNS, httptrace.ErrTimeout, httptrace.ErrAssert} {
					f := failedSample(fmt.Sprintf("f%02d", i), p)
					f.Location, f.Address = loc, addr
					write(e, f)
				}
			}
		}
	}
	write(e, revalidationSamples()...)

	ch := make(chan prometheus.Metric, 1<<16)
	e.c.Collect(ch)
	close(ch)
	families := map[*prometheus.Desc][]*dto.Metric{}
	for m := range ch {
		out := &dto.Metric{}
		if err := m.Write(out); err != nil {
			t.Fatal(err)
		}
		families[m.Desc()] = append(families[m.Desc()], out)
	}
	if len(families) != numFamilies {
		t.Fatalf("%d families collected, want %d", len(families), numFamilies)
	}
	for f, d := range e.c.descs {
		if f == fInfo || f == fCache {
			continue
		}
		ms := families[d]
		if !sort.IsSorted(metricOrder(ms)) {
			t.Errorf("%s: %d metrics, not in the registry's order", d, len(ms))
		}
	}
}

// metricOrder is client_golang's internal MetricSorter: by label values,
// labels in their (name-sorted) order.
type metricOrder []*dto.Metric

func (s metricOrder) Len() int      { return len(s) }
func (s metricOrder) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s metricOrder) Less(i, j int) bool {
	for n, lp := range s[i].Label {
		if vi, vj := lp.GetValue(), s[j].Label[n].GetValue(); vi != vj {
			return vi < vj
		}
	}
	return false
}

// TestCreatedTimestamps: counters and histograms carry the time they came
// into being, as client_golang's do; probes_total{result="success"} that
// of its series.
func TestCreatedTimestamps(t *testing.T) {
	reg, e := newTestExporter(t)
	clock := &fakeClock{time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	e.now = clock.now
	t1 := clock.t
	write(e, failedSample("shop", httptrace.ErrConnect))
	clock.t = t1.Add(time.Minute)
	t2 := clock.t
	write(e, cdnSample())

	l := lbl("target", "shop", "role", "cdn")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   time.Time
	}{
		{"edgeprobe_probes_total", merge(l, "result", "success"), t1},
		{"edgeprobe_probes_total", merge(l, "result", "connect"), t1},
		{"edgeprobe_phase_duration_seconds", merge(l, "phase", "dns"), t1},
		{"edgeprobe_phase_duration_seconds", merge(l, "phase", "tls"), t2},
		{"edgeprobe_cache_results_total", merge(l, "cache", "hit"), t2},
		{"edgeprobe_revalidations_total", merge(l, "result", "not_modified"), t2},
		{"edgeprobe_upstream_duration_seconds", merge(l, "phase", "dns"), t2},
	} {
		m := find(t, reg, c.name, c.labels)
		if m == nil {
			t.Errorf("%s%v missing", c.name, c.labels)
			continue
		}
		ts := m.GetCounter().GetCreatedTimestamp()
		if m.Histogram != nil {
			ts = m.GetHistogram().GetCreatedTimestamp()
		}
		if got := ts.AsTime(); !got.Equal(c.want) {
			t.Errorf("%s%v created %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestInvalidUTF8SharesSeries: label values that repair to the same valid
// UTF-8 share one series, as they shared a vector child; nothing is
// collected twice.
func TestInvalidUTF8SharesSeries(t *testing.T) {
	reg, e := newTestExporter(t)
	a, b := cdnSample(), cdnSample()
	a.Target, b.Target = "bad\xff", "bad\xfe"
	write(e, a, b, a)
	m := find(t, reg, "edgeprobe_probes_total", lbl("target", "bad\uFFFD", "result", "success"))
	if m == nil || m.GetCounter().GetValue() != 3 {
		t.Fatalf("probes_total of the repaired target: %v, want 3", m)
	}
	if n := len(e.Status()); n != 1 {
		t.Errorf("status rows: %d, want 1", n)
	}
	e.Forget(func(target, _ string) bool { return target != "bad\xfe" })
	if n := count(t, reg, "edgeprobe_probes_total"); n != 0 {
		t.Errorf("after Forget: %d probes_total series, want 0", n)
	}
	write(e, a)
	if m := find(t, reg, "edgeprobe_probes_total", lbl("target", "bad\uFFFD", "result", "success")); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("after Forget, a new sample: %v, want 1", m)
	}
}

// TestConcurrentScrapes: scrapes run together with writers and Forget,
// through a registerer that adds constant labels (it appends to the label
// pairs the metrics share); -race checks the sharing.
func TestConcurrentScrapes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := New(reg, map[string]string{"env": "prod"})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := fullCDNSample(fmt.Sprintf("t%d", (w+i)%4))
				s.Proto = []string{"HTTP/1.1", "HTTP/2.0"}[i%2] // replaces the info series
				e.Write(ctx, s)
				e.Write(ctx, failedSample("f", httptrace.ErrTimeout))
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			e.Forget(func(target, _ string) bool { return target != "t3" })
			time.Sleep(time.Millisecond)
		}
	})
	var scrapers sync.WaitGroup
	for range 2 {
		scrapers.Go(func() {
			for range 30 {
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	scrapers.Wait()
	close(stop)
	wg.Wait()
}
