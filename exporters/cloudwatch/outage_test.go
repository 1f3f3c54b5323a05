package cloudwatch

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

// steadyWriter writes one successful and one failed probe every 5ms while
// it runs, counting them.
type steadyWriter struct {
	s          *Sink
	ok, failed atomic.Int64
	paused     atomic.Bool
	stop       chan struct{}
	done       sync.WaitGroup
}

func startWriter(s *Sink) *steadyWriter {
	w := &steadyWriter{s: s, stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		i := 0
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			if w.paused.Load() {
				continue
			}
			now := time.Now()
			i++
			w.s.Write(context.Background(), okSample("shop", "cdn", now, msec(float64(30+i%50))))
			w.ok.Add(1)
			w.s.Write(context.Background(), failSample("shop", "origin", now))
			w.failed.Add(1)
		}
	}()
	return w
}

// pause stops writing and waits for a write in progress to finish.
func (w *steadyWriter) pause() {
	w.paused.Store(true)
	time.Sleep(20 * time.Millisecond)
}

func (w *steadyWriter) close() {
	close(w.stop)
	w.done.Wait()
}

// testOutage (part of TestMoto, sharing its emulator): under steady
// probing the emulator goes away for several flush intervals and comes
// back empty. Every datum produced meanwhile arrives afterwards, once: the
// SampleCounts in the emulator equal the probes written. The queue never
// exceeds its bound. Then, with a tiny bound, exactly what does not fit is
// dropped and counted.
func testOutage(t *testing.T, m *testkit.Moto) {
	t.Run("nothing lost", func(t *testing.T) {
		e := newTestEnv()
		o := e.options(t)
		o.MaxDatums = 5000
		s := newSink(t, e, probe.CloudWatchConfig{Namespace: "EdgeProbeOutage", Endpoint: m.URL()}, o)
		ctx, cancel := context.WithCancel(context.Background())
		var run sync.WaitGroup
		run.Add(1)
		go func() { defer run.Done(); _ = s.Run(ctx) }()
		defer func() { cancel(); run.Wait() }()

		w := startWriter(s)
		defer w.close()
		time.Sleep(500 * time.Millisecond) // normal operation
		w.pause()
		flush(t, s) // all sent: nothing in flight when the emulator stops
		m.Stop()
		w.ok.Store(0)
		w.failed.Store(0)
		w.paused.Store(false)

		// Six flush intervals without the emulator.
		maxQueue := 0.0
		for range 30 {
			time.Sleep(40 * time.Millisecond)
			maxQueue = max(maxQueue, e.value("edgeprobe_exporter_queue_depth", "exporter", Name))
		}
		if errs := e.value("edgeprobe_cloudwatch_api_calls_total", "operation", "PutMetricData", "result", "error"); errs < 1 {
			t.Errorf("no failed calls counted during the outage")
		}
		if maxQueue == 0 || maxQueue > float64(o.MaxDatums) {
			t.Errorf("queue depth peaked at %v during the outage (bound %d)", maxQueue, o.MaxDatums)
		}

		m.Start() // a fresh emulator: only what was produced during the outage can be in it
		time.Sleep(300 * time.Millisecond)
		w.pause()
		flush(t, s)
		okN, failN := float64(w.ok.Load()), float64(w.failed.Load())

		if d := e.dropped(); d != 0 {
			t.Errorf("%v datums dropped", d)
		}
		if q := e.value("edgeprobe_exporter_queue_depth", "exporter", Name); q != 0 {
			t.Errorf("queue depth %v after the flush", q)
		}
		r := newReader(t, m.URL())
		ns := "EdgeProbeOutage"
		for _, c := range []struct {
			metric      string
			role        string
			count, sum  float64
			checkSumToo bool
		}{
			{MetricSuccess, "cdn", okN, okN, true},
			{MetricCacheHit, "cdn", okN, okN, true},
			{MetricTotalTime, "cdn", okN, 0, false},
			{MetricConnectionTime, "cdn", okN, 0, false},
			{MetricSuccess, "origin", failN, 0, true},
		} {
			got := r.stats(t, ns, c.metric, dims("shop", c.role))
			if got.count != c.count || (c.checkSumToo && got.sum != c.sum) {
				t.Errorf("%s %s: SampleCount %v, Sum %v; want %v probes (sum %v)", c.metric, c.role, got.count, got.sum, c.count, c.sum)
			}
		}
		t.Logf("outage: %v + %v probes written, queue peaked at %v datums", okN, failN, maxQueue)
	})

	t.Run("tiny bound", func(t *testing.T) {
		e := newTestEnv()
		o := e.options(t)
		o.MaxDatums = 20
		s := newSink(t, e, probe.CloudWatchConfig{Namespace: "EdgeProbeTiny", Endpoint: m.URL()}, o)
		m.Stop()
		// 50 failed probes, each in an interval of its own: 50 datums
		// (Success only), oldest first.
		base := time.Now().Add(-30 * time.Minute).Truncate(s.interval)
		for i := range 50 {
			s.Write(context.Background(), failSample("tiny", "cdn", base.Add(time.Duration(i)*s.interval)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if err := s.Flush(ctx); err == nil {
			t.Error("flush succeeded without the emulator")
		}
		cancel()
		if d := e.dropped(); d != 30 {
			t.Errorf("dropped %v datums, want exactly 30", d)
		}
		if q := e.value("edgeprobe_exporter_queue_depth", "exporter", Name); q != 20 {
			t.Errorf("queue depth %v, want 20", q)
		}
		m.Start()
		flush(t, s)
		r := newReader(t, m.URL())
		got := r.stats(t, "EdgeProbeTiny", MetricSuccess, dims("tiny", "cdn"))
		if got.count != 20 || e.dropped() != 30 {
			t.Errorf("arrived %v probes, dropped %v; want 20 and 30", got.count, e.dropped())
		}
		// The newest were kept: the oldest arriving is the 31st.
		recs := e.rec.records()
		oldest := 1e18
		for _, rec := range recs {
			for _, ts := range rec.timestamps {
				oldest = min(oldest, ts)
			}
		}
		if want := float64(base.Add(30*s.interval).UnixMilli()) / 1000; oldest != want {
			t.Errorf("oldest datum sent at %v, want %v (the oldest 30 dropped)", oldest, want)
		}
	})
}

// TestBounds: the queue's three bounds drop the oldest datums and count
// each exactly (no emulator: the endpoint refuses connections).
func TestBounds(t *testing.T) {
	dummyAWS(t)
	refused, err := lab.NewRefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv()
	o := e.options(t)
	o.MaxDatums, o.MaxAge = 100, 10*time.Minute
	s := newSink(t, e, probe.CloudWatchConfig{Endpoint: "http://" + refused}, o)
	now := time.Now()
	fill := func(n int, at time.Time) {
		for i := range n {
			s.Write(context.Background(), failSample("b", "cdn", at.Add(time.Duration(i)*s.interval)))
		}
		_ = s.sem.Acquire(context.Background(), 1)
		s.enqueue(toDatums(s.seal(now, true)), now)
		s.sem.Release(1)
	}
	fill(150, now.Add(-5*time.Minute))
	if len(s.queue) != 100 || e.dropped() != 50 || s.drops.full != 50 {
		t.Errorf("count bound: queue %d, dropped %v (full %d); want 100 and 50", len(s.queue), e.dropped(), s.drops.full)
	}
	fill(7, now.Add(-20*time.Minute)) // older than MaxAge: dropped on arrival
	if len(s.queue) != 100 || e.dropped() != 57 || s.drops.age != 7 {
		t.Errorf("age bound: queue %d, dropped %v (too old %d); want 100 and 57", len(s.queue), e.dropped(), s.drops.age)
	}
	s.o.MaxBytes = s.queue[0].size * 10
	fill(1, now.Add(-time.Minute))
	if len(s.queue) != 10 || e.dropped() != 57+91 {
		t.Errorf("byte bound: queue %d, dropped %v; want 10 and 148", len(s.queue), e.dropped())
	}
	if s.queuedBytes > s.o.MaxBytes {
		t.Errorf("queued bytes %d over the bound %d", s.queuedBytes, s.o.MaxBytes)
	}
	_ = s.sem.Acquire(context.Background(), 1)
	s.logDrops()
	s.sem.Release(1)
	if s.drops != (drops{}) {
		t.Errorf("drops not reset after the log line: %+v", s.drops)
	}
	_ = s.Close() // what is left counts as dropped
	if e.dropped() != 148+10 {
		t.Errorf("after Close: dropped %v, want 158", e.dropped())
	}
}
