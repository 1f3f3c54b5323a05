package agent_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// slowConfig probes one slow target every interval, with a JSONL sink.
func slowConfig(url, samples string, interval time.Duration) string {
	return fmt.Sprintf(`location: lab
targets:
  - name: slow
    url: %s
    interval: %v
    timeout: %v
exporters:
  jsonl: {path: %s}
`, strconv.Quote(url), interval, interval, strconv.Quote(samples))
}

// TestShutdownDrains cancels the agent while a probe is in flight: Run
// waits for it (within the drain timeout) and its sample is in the JSONL
// file when Run returns.
func TestShutdownDrains(t *testing.T) {
	const answer = 500 * time.Millisecond
	srv := httpServer(t, lab.DelayHandler(answer, 0, []byte("late\n")))
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	samples := filepath.Join(dir, "samples.jsonl")
	cfg := filepath.Join(dir, "edgeprobe.yml")
	writeFile(t, cfg, slowConfig(srv.URL()+"/", samples, 2*time.Second))

	const drain = 3 * time.Second
	r := startAgent(t, agent.Options{ConfigPath: cfg, RunAtStart: true, DrainTimeout: drain})
	eventually(t, 5*time.Second, "the probe did not reach the server", func() bool { return srv.Active() > 0 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.stopped >= drain {
		t.Errorf("Run returned %v after the cancel, past the drain timeout %v", r.stopped, drain)
	}
	got := readSamples(t, samples)
	if len(got) != 1 {
		t.Fatalf("%d samples in the JSONL file, want the 1 in flight at shutdown", len(got))
	}
	s := got[0]
	if s.Target != "slow" || s.Location != "lab" || s.Err != nil || s.Status != 200 || s.Timings.TTFB < answer {
		t.Errorf("drained sample: target %q location %q err %v status %d ttfb %v; want a complete 200 after %v",
			s.Target, s.Location, s.Err, s.Status, s.Timings.TTFB, answer)
	}
	t.Logf("Run returned %v after the cancel", r.stopped)
	goleak.VerifyNone(t, ignore)
}

// TestShutdownDeadline: a probe that outlasts the drain timeout is
// cancelled at it; Run returns soon after, and the cut-short probe is not
// written: it measured the shutdown, not the target, and must not count as
// the target's failure.
func TestShutdownDeadline(t *testing.T) {
	srv := httpServer(t, lab.DelayHandler(5*time.Second, 0, []byte("too late\n")))
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	samples := filepath.Join(dir, "samples.jsonl")
	cfg := filepath.Join(dir, "edgeprobe.yml")
	writeFile(t, cfg, slowConfig(srv.URL()+"/", samples, 10*time.Second))

	const drain = 300 * time.Millisecond
	r := startAgent(t, agent.Options{ConfigPath: cfg, RunAtStart: true, DrainTimeout: drain})
	eventually(t, 5*time.Second, "the probe did not reach the server", func() bool { return srv.Active() > 0 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The drain deadline, then the flush (bounded by the same timeout).
	if r.stopped < drain || r.stopped > drain+time.Second {
		t.Errorf("Run returned %v after the cancel; want the drain timeout %v and little more", r.stopped, drain)
	}
	got := readSamples(t, samples)
	if len(got) != 0 {
		t.Fatalf("JSONL after a cut-short drain: %+v, want no sample", got)
	}
	goleak.VerifyNone(t, ignore)
}
