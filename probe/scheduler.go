package probe

import (
	"container/heap"
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	Location    string
	Concurrency int64 // probes in flight at most; default 256
	Sink        Sink
	Registerer  prometheus.Registerer // for the scheduler's self-metrics; nil: none
	Logger      *slog.Logger
	// DrainTimeout bounds how long Run waits for probes in flight once its
	// context ends, before it cancels them; default 15s.
	DrainTimeout time.Duration
	// RunAtStart runs every job once as soon as it is first scheduled (a
	// short demo, a one-shot check), then on its slots. It gives up the
	// spread of the first round: leave it off for many jobs.
	RunAtStart bool
}

// Scheduler runs every job on its own interval. Each job fires at the
// instants k·interval + offset of the wall clock, where offset is a stable
// hash of the job's key: thousands of jobs spread evenly over the interval,
// and agents in many places fire the same job at the same moments. One
// goroutine keeps the timetable (a heap), so an idle job costs memory for
// its entry only; each probe runs in a goroutine of its own.
type Scheduler struct {
	opts    SchedulerOptions
	sem     *semaphore.Weighted
	metrics *schedMetrics
	log     *slog.Logger
	updates chan []*Job
	wg      sync.WaitGroup // probes in flight
}

// NewScheduler makes a scheduler; call Update with the jobs and Run it.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 256
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sink == nil {
		opts.Sink = Sinks{}
	}
	return &Scheduler{
		opts:    opts,
		sem:     semaphore.NewWeighted(opts.Concurrency),
		metrics: newSchedMetrics(opts.Registerer),
		log:     opts.Logger,
		updates: make(chan []*Job, 1),
	}
}

// SetSink sets where samples go; call it before Run.
func (s *Scheduler) SetSink(sink Sink) { s.opts.Sink = sink }

// Update replaces the jobs. Jobs whose key stays keep their timetable and
// never overlap with a run of their old version still in flight.
func (s *Scheduler) Update(jobs []*Job) {
	// Only the newest set matters: replace one not yet taken.
	select {
	case <-s.updates:
	default:
	}
	s.updates <- jobs
}

// entry is one job in the timetable.
type entry struct {
	job     *Job
	next    time.Time
	running *runningFlag // shared across reloads by key
	index   int
}

type runningFlag struct {
	mu sync.Mutex
	on bool
}

// tryStart marks the job as running unless it already is.
func (r *runningFlag) tryStart() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		return false
	}
	r.on = true
	return true
}

func (r *runningFlag) done() {
	r.mu.Lock()
	r.on = false
	r.mu.Unlock()
}

// Run fires jobs until ctx ends, then waits for the probes in flight (at
// most DrainTimeout, after which they are cancelled).
func (s *Scheduler) Run(ctx context.Context) error {
	probeCtx, cancelProbes := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelProbes()
	var table timetable
	flags := map[string]*runningFlag{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wake := newAlarm()
	defer wake.Stop()
	for {
		next := time.Now().Add(time.Hour)
		if len(table) > 0 {
			next = table[0].next
		}
		timer.Reset(time.Until(next))
		wake.Set(next)
		select {
		case <-ctx.Done():
			s.drain(cancelProbes)
			return nil
		case jobs := <-s.updates:
			now := time.Now()
			old := flags
			table, flags = s.rebuild(jobs, old, now)
			s.metrics.jobs.Set(float64(len(table)))
			if s.opts.RunAtStart {
				for _, e := range table {
					if old[e.job.Key()] == nil {
						e.next = now
					}
				}
				heap.Init(&table)
			}
		case <-timer.C:
			s.fireDue(probeCtx, &table)
		case <-wake.C():
			s.fireDue(probeCtx, &table)
		}
	}
}

// fireDue fires every entry whose instant has come and moves it to its
// next slot.
func (s *Scheduler) fireDue(ctx context.Context, table *timetable) {
	now := time.Now()
	for len(*table) > 0 && !(*table)[0].next.After(now) {
		e := (*table)[0]
		s.fire(ctx, e, now)
		e.next = nextSlot(e.job, now)
		heap.Fix(table, 0)
	}
}

func (s *Scheduler) drain(cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.DrainTimeout):
		s.log.Warn("probes still in flight at the drain deadline; cancelling them", "deadline", s.opts.DrainTimeout)
		cancel()
		<-done
	}
}

// fire starts one run of e's job unless it is paused or still running.
func (s *Scheduler) fire(ctx context.Context, e *entry, now time.Time) {
	scheduled := e.next
	if e.job.PausedAt(now) {
		s.metrics.skipped.WithLabelValues("paused").Inc()
		return
	}
	if !e.running.tryStart() {
		s.metrics.skipped.WithLabelValues("overlap").Inc()
		s.log.Warn("probe still running at its next turn; skipped", "job", e.job.Key())
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer e.running.done()
		if err := s.sem.Acquire(ctx, 1); err != nil {
			return
		}
		defer s.sem.Release(1)
		s.metrics.lag.Observe(time.Since(scheduled).Seconds())
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		samples := e.job.Run(ctx, s.opts.Location)
		if ctx.Err() != nil {
			// Cut short at the drain deadline: it measured the shutdown,
			// not the target, so it must not count as the target's failure.
			s.metrics.skipped.WithLabelValues("shutdown").Inc()
			s.log.Warn("probe cut short by shutdown; its sample is dropped", "job", e.job.Key())
			return
		}
		for _, sample := range samples {
			s.opts.Sink.Write(ctx, sample)
		}
	}()
}

// rebuild makes the timetable of a new job set, keeping running flags by
// key so a reload cannot start a job beside its own previous run.
func (s *Scheduler) rebuild(jobs []*Job, old map[string]*runningFlag, now time.Time) (timetable, map[string]*runningFlag) {
	table := make(timetable, 0, len(jobs))
	flags := make(map[string]*runningFlag, len(jobs))
	for _, j := range jobs {
		f := old[j.Key()]
		if f == nil {
			f = &runningFlag{}
		}
		flags[j.Key()] = f
		table = append(table, &entry{job: j, next: nextSlot(j, now), running: f, index: len(table)})
	}
	heap.Init(&table)
	return table, flags
}

// nextSlot is the job's first firing instant strictly after now.
func nextSlot(j *Job, now time.Time) time.Time {
	iv := j.Interval
	if iv <= 0 {
		iv = 30 * time.Second
	}
	off := time.Duration(offsetHash(j.Key()) % uint64(iv))
	base := now.Truncate(iv).Add(off) // Truncate is relative to the zero time: stable across restarts
	for !base.After(now) {
		base = base.Add(iv)
	}
	return base
}

func offsetHash(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

// timetable is a min-heap of entries by next firing time.
type timetable []*entry

func (t timetable) Len() int           { return len(t) }
func (t timetable) Less(i, j int) bool { return t[i].next.Before(t[j].next) }
func (t timetable) Swap(i, j int) {
	t[i], t[j] = t[j], t[i]
	t[i].index, t[j].index = i, j
}
func (t *timetable) Push(x any) { e := x.(*entry); e.index = len(*t); *t = append(*t, e) }
func (t *timetable) Pop() any {
	old := *t
	e := old[len(old)-1]
	*t = old[:len(old)-1]
	return e
}

// schedMetrics are the scheduler's self-metrics.
type schedMetrics struct {
	lag      prometheus.Histogram
	inFlight prometheus.Gauge
	skipped  *prometheus.CounterVec
	jobs     prometheus.Gauge
}

func newSchedMetrics(reg prometheus.Registerer) *schedMetrics {
	m := &schedMetrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        "edgeprobe_schedule_lag_seconds",
			Help:                        "How late probes started against their scheduled instant (timer slack and the concurrency bound).",
			Buckets:                     []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
			NativeHistogramBucketFactor: 1.1,
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeprobe_probes_in_flight",
			Help: "Probes running now.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgeprobe_probes_skipped_total",
			Help: "Turns not probed or not reported: paused (a configured window), overlap (the previous run still going), shutdown (cut short at the drain deadline).",
		}, []string{"reason"}),
		jobs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgeprobe_jobs",
			Help: "Configured target×role jobs.",
		}),
	}
	m.skipped.WithLabelValues("paused")
	m.skipped.WithLabelValues("overlap")
	m.skipped.WithLabelValues("shutdown")
	if reg != nil {
		reg.MustRegister(m.lag, m.inFlight, m.skipped, m.jobs)
	}
	return m
}
