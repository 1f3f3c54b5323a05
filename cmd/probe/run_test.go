package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

// writeConfig writes a config file into dir and returns its path.
func writeConfig(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunBadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		line          int
		want          string
	}{
		{"bad.yml", "location: lab\ntargets:\n  - name: a\n    url: https://127.0.0.1/\n    interval: fast\n", 5, "is not a duration"},
		{"unknown.yml", "targets:\n  - name: a\n    url: https://127.0.0.1/\n    intervall: 30s\n", 4, `did you mean "interval"`},
		{"dup.yml", "targets:\n  - {name: a, url: \"https://127.0.0.1/\"}\n  - {name: a, url: \"https://127.0.0.1/x\"}\n", 3, `"a" is used twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, dir, c.name, c.content)
			for _, args := range [][]string{
				{"run", "--config", path},
				{"run", "--config", path, "--check-config"},
			} {
				r := runProbe(t, nil, args...)
				loc := fmt.Sprintf("%s:%d:", path, c.line)
				if r.code != 2 || !strings.Contains(r.stderr, loc) || !strings.Contains(r.stderr, c.want) {
					t.Errorf("%v: exit %d, want 2 and %q with %q; stderr:\n%s", args, r.code, loc, c.want, r.stderr)
				}
				if r.stdout != "" {
					t.Errorf("%v: stdout %q", args, r.stdout)
				}
			}
		})
	}
	// A missing file and a missing --config are usage errors too.
	r := runProbe(t, nil, "run", "--config", filepath.Join(dir, "nope.yml"))
	if r.code != 2 || !strings.Contains(r.stderr, "nope.yml") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runProbe(t, nil, "run")
	if r.code != 2 || !strings.Contains(r.stderr, "--config") {
		t.Errorf("no --config: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRunCheckConfig(t *testing.T) {
	path := writeConfig(t, t.TempDir(), "good.yml", `location: lab
defaults: {interval: 30s, timeout: 10s}
targets:
  - name: shop
    url: https://www.example.com/health
    roles:
      cdn: {}
      origin: {connect_to: my-alb-123.eu-west-1.elb.amazonaws.com}
  - name: api
    url: https://api.example.com/
    interval: 10s
exporters:
  prometheus: {listen: "127.0.0.1:9470"}
`)
	r := runProbe(t, nil, "run", "--config", path, "--check-config")
	// 2 jobs every 30 s and 1 every 10 s: 4 + 6 probes a minute.
	want := path + ": ok: 2 targets, 3 jobs (target × role), 10 probes a minute\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d, stdout %q, want %q; stderr: %s", r.code, r.stdout, want, r.stderr)
	}
}

// agentProc is `probe run` started as a subprocess.
type agentProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *bytes.Buffer
	stdout *bytes.Buffer
}

// startRun starts `probe run` with args; Cleanup kills it (by PID) if the
// test left it running.
func startRun(t *testing.T, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{exited: make(chan struct{}), stderr: &bytes.Buffer{}, stdout: &bytes.Buffer{}}
	p.cmd = exec.Command(binary, append([]string{"run"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("probe run stderr:\n%s", p.stderr)
		}
	})
	return p
}

var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// metrics reads /metrics into name{labels} → value.
func metrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, err := testkit.ParseGauges(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// probesOK is the success count of one target's default role.
func probesOK(m map[string]float64, target string) float64 {
	v, ok := m[fmt.Sprintf(`edgeprobe_probes_total{address="",location="lab",result="success",role="default",target=%q}`, target)]
	if !ok {
		return -1
	}
	return v
}

var targetLabel = regexp.MustCompile(`target="([^"]*)"`)

func targetsOf(m map[string]float64) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		if sm := targetLabel.FindStringSubmatch(k); sm != nil {
			out[sm[1]] = true
		}
	}
	return out
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunLifecycle runs the agent as users do: ready and healthy once up,
// a SIGHUP after an edit reloads without resetting counters, and SIGTERM
// drains the probe in flight, flushes the JSONL file and exits 0 within
// the drain timeout.
func TestRunLifecycle(t *testing.T) {
	fast, err := lab.NewHTTPServer(lab.ServerOptions{Handler: lab.DelayHandler(0, 0, []byte("ok\n"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fast.Close)
	const slowAnswer = 500 * time.Millisecond
	slow, err := lab.NewHTTPServer(lab.ServerOptions{Handler: lab.DelayHandler(slowAnswer, 0, []byte("late\n"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.Close)

	dir := t.TempDir()
	samples := filepath.Join(dir, "samples.jsonl")
	base := "location: lab\ntargets:\n  - {name: fast, url: " + strconv.Quote(fast.URL()+"/") + ", interval: 200ms, timeout: 200ms}\n"
	exporters := "exporters:\n  jsonl: {path: samples.jsonl}\n"
	cfg := writeConfig(t, dir, "edgeprobe.yml", base+exporters)
	addr := testkit.FreeLoopbackAddr(t)
	const drain = 3 * time.Second
	p := startRun(t, "--config", cfg, "--listen", addr, "--drain-timeout", drain.String())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, path := range []string{"/healthz", "/ready"} {
		if err := testkit.WaitHTTP(ctx, "http://"+addr+path, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "fast is not probed", func() bool { return probesOK(metrics(t, addr), "fast") >= 2 })
	if got := targetsOf(metrics(t, addr)); len(got) != 1 || !got["fast"] {
		t.Fatalf("before the reload: targets %v", got)
	}

	// Edit, SIGHUP: slow appears, fast keeps its count.
	before := probesOK(metrics(t, addr), "fast")
	writeConfig(t, dir, "edgeprobe.yml", base+"  - {name: slow, url: "+strconv.Quote(slow.URL()+"/")+", interval: 1s, timeout: 1s}\n"+exporters)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "SIGHUP did not add slow", func() bool { return targetsOf(metrics(t, addr))["slow"] })
	m := metrics(t, addr)
	if v := probesOK(m, "fast"); v < before {
		t.Errorf("fast's probes_total went from %v to %v over the reload", before, v)
	}
	if v := m[`edgeprobe_config_reloads_total{result="success"}`]; v != 1 {
		t.Errorf("config_reloads_total{result=success} = %v, want 1", v)
	}

	// SIGTERM with slow's probe in flight.
	waitFor(t, 5*time.Second, "slow's probe is not in flight", func() bool { return slow.Active() > 0 })
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(drain + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM", drain+5*time.Second)
	}
	took := time.Since(t0)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if took >= drain {
		t.Errorf("exited %v after SIGTERM, past the drain timeout %v", took, drain)
	}
	t.Logf("exited %v after SIGTERM", took)

	// Every line a sample, one per request each server accepted: slow's
	// last (in flight at SIGTERM) was drained and flushed, complete.
	data, err := os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var s probe.Sample
		if err := dec.Decode(&s); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("JSONL: %v", err)
		}
		if s.Err != nil || s.Status != 200 || s.Location != "lab" {
			t.Errorf("sample of %s: status %d, error %v, location %q", s.Target, s.Status, s.Err, s.Location)
		}
		got[s.Target]++
	}
	for name, srv := range map[string]*lab.HTTPServer{"fast": fast, "slow": slow} {
		if n := len(srv.Accepts()); got[name] != n {
			t.Errorf("%d samples of %s in the JSONL file, want %d (one per connection it accepted)", got[name], name, n)
		}
	}
	if p.stdout.Len() != 0 {
		t.Errorf("stdout: %q", p.stdout)
	}
}
