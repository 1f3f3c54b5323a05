package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// collect is a Sink that keeps samples.
type collect struct {
	mu      sync.Mutex
	samples []*Sample
}

func (c *collect) Write(_ context.Context, s *Sample) {
	c.mu.Lock()
	c.samples = append(c.samples, s)
	c.mu.Unlock()
}

func (c *collect) byKey() map[string][]*Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]*Sample{}
	for _, s := range c.samples {
		out[s.Target+"/"+s.Role] = append(out[s.Target+"/"+s.Role], s)
	}
	return out
}

func testJob(name, url string, every time.Duration) *Job {
	return &Job{Target: name, Role: "default", URL: url, Interval: every, Timeout: time.Second}
}

func TestSchedulerFiresEachJobOnItsInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	sink := &collect{}
	reg := prometheus.NewRegistry()
	s := NewScheduler(SchedulerOptions{Location: "test-1", Sink: sink, Registerer: reg})
	var jobs []*Job
	for i := range 20 {
		jobs = append(jobs, testJob("t"+strconv.Itoa(i), srv.URL, 100*time.Millisecond))
	}
	jobs = append(jobs, testJob("slow", srv.URL, 300*time.Millisecond))
	s.Update(jobs)
	ctx, cancel := context.WithTimeout(context.Background(), 1050*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := sink.byKey()
	for i := range 20 {
		n := len(got["t"+strconv.Itoa(i)+"/default"])
		if n < 7 || n > 11 { // a loaded CI machine may skip a turn (overlap)
			t.Errorf("t%d ran %d times in ~1s at 100ms, want about 10", i, n)
		}
	}
	if n := len(got["slow/default"]); n < 2 || n > 4 {
		t.Errorf("slow ran %d times in ~1s at 300ms, want 3 or 4", n)
	}
	for _, ss := range got {
		for _, s := range ss {
			if s.Location != "test-1" || s.Err != nil {
				t.Fatalf("sample %+v err %v", s, s.Err)
			}
		}
	}
	if n := testutil.CollectAndCount(reg, "edgeprobe_schedule_lag_seconds"); n != 1 {
		t.Errorf("lag histogram series: %d", n)
	}
	if v := testutil.ToFloat64(s.metrics.jobs); v != 21 {
		t.Errorf("edgeprobe_jobs = %v", v)
	}
}

// TestSchedulerSpreadsStartOffsets: the offsets of many jobs cover the
// interval evenly (no burst at the start of each interval).
func TestSchedulerSpreadsStartOffsets(t *testing.T) {
	const n, buckets = 5000, 10
	iv := 60 * time.Second
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var count [buckets]int
	for i := range n {
		next := nextSlot(testJob("target-"+strconv.Itoa(i), "", iv), now)
		if next.Sub(now) <= 0 || next.Sub(now) > iv {
			t.Fatalf("next slot %v not within one interval", next.Sub(now))
		}
		count[int(next.Sub(now)*buckets/iv)%buckets]++
	}
	for i, c := range count {
		if c < n/buckets*8/10 || c > n/buckets*12/10 {
			t.Errorf("slice %d of the interval has %d of %d starts: %v", i, c, n, count)
		}
	}
	// Stable: the same key gets the same slot after a restart.
	a := nextSlot(testJob("shop", "", iv), now)
	b := nextSlot(testJob("shop", "", iv), now.Add(iv))
	if b.Sub(a) != iv {
		t.Errorf("offset moved: %v then %v", a, b)
	}
}

// TestSchedulerNeverOverlapsAJob: a probe slower than its interval skips
// turns instead of running twice at once.
func TestSchedulerNeverOverlapsAJob(t *testing.T) {
	defer goleak.VerifyNone(t)
	var mu sync.Mutex
	active, most := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		active++
		most = max(most, active)
		mu.Unlock()
		time.Sleep(250 * time.Millisecond)
		mu.Lock()
		active--
		mu.Unlock()
	}))
	defer srv.Close()
	sink := &collect{}
	s := NewScheduler(SchedulerOptions{Sink: sink, Registerer: prometheus.NewRegistry()})
	j := testJob("slow", srv.URL, 100*time.Millisecond)
	s.Update([]*Job{j})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.Run(ctx)
	if most != 1 {
		t.Errorf("%d probes of one job ran at once", most)
	}
	if v := testutil.ToFloat64(s.metrics.skipped.WithLabelValues("overlap")); v < 3 {
		t.Errorf("overlap skips = %v, want several", v)
	}
}

func TestSchedulerPausesInWindows(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	sink := &collect{}
	s := NewScheduler(SchedulerOptions{Sink: sink, Registerer: prometheus.NewRegistry()})
	paused := testJob("rollout", srv.URL, 50*time.Millisecond)
	paused.Paused = []Window{{From: time.Now().Add(-time.Minute), To: time.Now().Add(time.Minute)}}
	s.Update([]*Job{paused, testJob("live", srv.URL, 50*time.Millisecond)})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = s.Run(ctx)
	got := sink.byKey()
	if len(got["rollout/default"]) != 0 || len(got["live/default"]) < 4 {
		t.Errorf("paused ran %d, live ran %d", len(got["rollout/default"]), len(got["live/default"]))
	}
	if v := testutil.ToFloat64(s.metrics.skipped.WithLabelValues("paused")); v < 4 {
		t.Errorf("paused skips = %v", v)
	}
}

// TestSchedulerUpdateSwapsJobs: jobs removed by a reload stop, new ones
// start, without a goroutine left behind.
func TestSchedulerUpdateSwapsJobs(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	sink := &collect{}
	s := NewScheduler(SchedulerOptions{Sink: sink, Registerer: prometheus.NewRegistry()})
	s.Update([]*Job{testJob("old", srv.URL, 50*time.Millisecond)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	time.Sleep(300 * time.Millisecond)
	s.Update([]*Job{testJob("new", srv.URL, 50*time.Millisecond)})
	time.Sleep(50 * time.Millisecond) // a turn of old already under way may finish
	before := len(sink.byKey()["old/default"])
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	got := sink.byKey()
	if len(got["old/default"]) != before {
		t.Errorf("old kept running after the update: %d then %d", before, len(got["old/default"]))
	}
	if len(got["new/default"]) < 4 {
		t.Errorf("new ran %d times", len(got["new/default"]))
	}
}

// TestSchedulerDrainsOnShutdown: a probe in flight when the context ends
// finishes and its sample reaches the sink.
func TestSchedulerDrainsOnShutdown(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
	}))
	defer srv.Close()
	sink := &collect{}
	// Fire at once: the first slot of an hourly job may be far away.
	s := NewScheduler(SchedulerOptions{Sink: sink, Registerer: prometheus.NewRegistry(), RunAtStart: true})
	s.Update([]*Job{testJob("a", srv.URL, time.Hour)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if ss := sink.byKey()["a/default"]; len(ss) != 1 || ss[0].Err != nil {
		t.Fatalf("drained samples: %d", len(ss))
	}
}
