package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/probe"
)

// target is one entry of a test config: a name, a URL and its interval.
type target struct {
	name, url string
	interval  time.Duration
}

// targetsConfig is a config of plain-HTTP targets, Prometheus on.
func targetsConfig(location string, targets ...target) string {
	var b strings.Builder
	fmt.Fprintf(&b, "location: %s\ntargets:\n", location)
	for _, t := range targets {
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    interval: %v\n    timeout: %v\n", t.name, strconv.Quote(t.url), t.interval, t.interval)
	}
	b.WriteString("exporters:\n  prometheus: {}\n")
	return b.String()
}

func successes(t *testing.T, addr, target string) float64 {
	t.Helper()
	return value(scrape(t, addr), "edgeprobe_probes_total", map[string]string{"target": target, "result": "success"})
}

// TestReload reloads a running agent: a good config adds a target and
// removes one (even while that one's probe is in flight), a bad one is
// refused and the old jobs keep running. Counters of kept jobs are not
// reset, and no goroutine outlives the agent.
func TestReload(t *testing.T) {
	keepSrv := httpServer(t, okHandler())
	newSrv := httpServer(t, okHandler())
	// The removed target answers slowly, so the reload finds it in flight.
	goneSrv := httpServer(t, lab.DelayHandler(400*time.Millisecond, 0, []byte("slow\n")))
	ignore := goleak.IgnoreCurrent()

	cfg := configPath(t)
	keep := target{"keep", keepSrv.URL() + "/", 200 * time.Millisecond}
	gone := target{"gone", goneSrv.URL() + "/", 500 * time.Millisecond}
	added := target{"added", newSrv.URL() + "/", 200 * time.Millisecond}
	writeFile(t, cfg, targetsConfig("lab", keep, gone))
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	r := startAgent(t, agent.Options{ConfigPath: cfg, Listen: "127.0.0.1:0", RunAtStart: true, Logger: logger})

	eventually(t, 5*time.Second, "keep and gone are not both probed", func() bool {
		return successes(t, r.addr, "keep") >= 2 && successes(t, r.addr, "gone") >= 1
	})
	eventually(t, 5*time.Second, "gone's probe is not in flight", func() bool { return goneSrv.Active() > 0 })

	// Good reload: gone out, added in.
	before := successes(t, r.addr, "keep")
	writeFile(t, cfg, targetsConfig("lab", keep, added))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	eventually(t, 5*time.Second, "added's series do not appear", func() bool { return successes(t, r.addr, "added") >= 1 })
	// Let the probe of gone that was in flight at the reload end and reach
	// the sinks: its sample must not bring gone's series back.
	eventually(t, 5*time.Second, "gone's probe still in flight", func() bool { return goneSrv.Active() == 0 })
	time.Sleep(200 * time.Millisecond)
	fams := scrape(t, r.addr)
	if got := targetsIn(fams); got["gone"] || !got["keep"] || !got["added"] {
		t.Errorf("after the reload /metrics has targets %v, want keep and added only", got)
	}
	if v := value(fams, "edgeprobe_probes_total", map[string]string{"target": "keep", "result": "success"}); v < before {
		t.Errorf("keep's probes_total went from %v to %v: reset by the reload", before, v)
	}
	if v := value(fams, "edgeprobe_config_reloads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf("config_reloads_total{result=success} = %v, want 1", v)
	}
	if v := value(fams, "edgeprobe_config_last_reload_successful", nil); v != 1 {
		t.Errorf("config_last_reload_successful = %v, want 1", v)
	}
	if v := value(fams, "edgeprobe_jobs", nil); v != 2 {
		t.Errorf("edgeprobe_jobs = %v, want 2", v)
	}
	// Only targets changed (Listen overrides the file's listen, as before).
	if strings.Contains(logs.String(), "exporters changed") {
		t.Errorf("a reload of targets only warns that exporters changed:\n%s", logs.String())
	}
	mid := successes(t, r.addr, "keep")
	eventually(t, 5*time.Second, "keep stopped counting after the reload", func() bool { return successes(t, r.addr, "keep") > mid })

	// Bad reload: refused with file:line, the running jobs stay.
	writeFile(t, cfg, "location: lab\ntargets:\n  - name: keep\n    url: ftp://127.0.0.1/\n")
	err := r.Reload(context.Background())
	var ce *probe.ConfigError
	if !errors.As(err, &ce) || ce.File != cfg || ce.Line != 4 {
		t.Fatalf("bad reload: %v, want a ConfigError at %s:4", err, cfg)
	}
	keepAt, addedAt := successes(t, r.addr, "keep"), successes(t, r.addr, "added")
	eventually(t, 5*time.Second, "the old jobs stopped after a refused reload", func() bool {
		return successes(t, r.addr, "keep") > keepAt && successes(t, r.addr, "added") > addedAt
	})
	fams = scrape(t, r.addr)
	if v := value(fams, "edgeprobe_config_last_reload_successful", nil); v != 0 {
		t.Errorf("config_last_reload_successful = %v after a bad reload, want 0", v)
	}
	if v := value(fams, "edgeprobe_config_reloads_total", map[string]string{"result": "failure"}); v != 1 {
		t.Errorf("config_reloads_total{result=failure} = %v, want 1", v)
	}
	if got := targetsIn(fams); len(got) != 2 || !got["keep"] || !got["added"] {
		t.Errorf("after a refused reload /metrics has targets %v, want keep and added", got)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	goleak.VerifyNone(t, ignore)
}

// TestWatchConfig: with WatchConfig the agent picks up a changed file by
// itself.
func TestWatchConfig(t *testing.T) {
	aSrv := httpServer(t, okHandler())
	bSrv := httpServer(t, okHandler())
	ignore := goleak.IgnoreCurrent()

	cfg := configPath(t)
	a := target{"a", aSrv.URL() + "/", 200 * time.Millisecond}
	b := target{"b", bSrv.URL() + "/", 200 * time.Millisecond}
	writeFile(t, cfg, targetsConfig("lab", a))
	var logs syncBuffer
	r := startAgent(t, agent.Options{
		ConfigPath: cfg, Listen: "127.0.0.1:0", RunAtStart: true,
		WatchConfig: true, WatchInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	eventually(t, 5*time.Second, "a is not probed", func() bool { return successes(t, r.addr, "a") >= 1 })

	// b is added; the JSONL exporter too, which takes a restart: the
	// agent says so.
	writeFile(t, cfg, targetsConfig("lab", a, b)+"  jsonl: {path: samples.jsonl}\n")
	eventually(t, 5*time.Second, "the watcher did not add b", func() bool { return successes(t, r.addr, "b") >= 1 })
	if !strings.Contains(logs.String(), "exporters changed") {
		t.Errorf("no warning that a changed exporter needs a restart:\n%s", logs.String())
	}
	fams := scrape(t, r.addr)
	if v := value(fams, "edgeprobe_config_reloads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf("config_reloads_total{result=success} = %v, want 1", v)
	}

	// A broken edit is refused once, and the jobs go on.
	writeFile(t, cfg, "targets: [\n")
	eventually(t, 5*time.Second, "the watcher did not try the broken file", func() bool {
		return value(scrape(t, r.addr), "edgeprobe_config_last_reload_successful", nil) == 0
	})
	bAt := successes(t, r.addr, "b")
	eventually(t, 5*time.Second, "b stopped after a refused reload", func() bool { return successes(t, r.addr, "b") > bAt })
	if v := value(scrape(t, r.addr), "edgeprobe_config_reloads_total", map[string]string{"result": "failure"}); v != 1 {
		t.Errorf("config_reloads_total{result=failure} = %v, want 1 (the same broken file is tried once)", v)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	goleak.VerifyNone(t, ignore)
}
