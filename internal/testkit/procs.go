package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procReady bounds how long a started server may take to answer /-/ready;
// procStop how long it may take to exit on SIGTERM before it is killed.
const (
	procReady = 30 * time.Second
	procStop  = 10 * time.Second
)

// PrometheusOptions shape the Prometheus StartPrometheus runs.
type PrometheusOptions struct {
	// ScrapeTargets are host:port addresses scraped at /metrics under
	// job "edgeprobe".
	ScrapeTargets []string
	// ScrapeInterval defaults to 1s (the scrape timeout follows it).
	ScrapeInterval time.Duration
	// RemoteWriteReceiver accepts remote write at /api/v1/write.
	RemoteWriteReceiver bool
	// NativeHistograms turns the feature on. Prometheus 2.42 then stores
	// the native form of a histogram that has one, and not its classic
	// series (scrape_classic_histograms came in 2.45).
	NativeHistograms bool
}

// StartPrometheus runs Debian's Prometheus on a free 127.0.0.1 port, waits
// until it is ready and returns its base URL ("http://127.0.0.1:PORT").
// The test fails when prometheus is not installed. Cleanup stops the
// process by its PID (SIGTERM, then SIGKILL) and, if the test failed, logs
// what Prometheus wrote.
func StartPrometheus(tb testing.TB, o PrometheusOptions) string {
	tb.Helper()
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	dir := tb.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		promDuration(o.ScrapeInterval), promDuration(o.ScrapeInterval), promDuration(o.ScrapeInterval))
	if len(o.ScrapeTargets) > 0 {
		cfg.WriteString("scrape_configs:\n  - job_name: edgeprobe\n    static_configs:\n      - targets:\n")
		for _, t := range o.ScrapeTargets {
			fmt.Fprintf(&cfg, "          - %q\n", t)
		}
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	_, addr := StartProcOnFreePort(tb, dir, "prometheus", func(addr string) (string, []string) {
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data-"+strings.ReplaceAll(addr, ":", "-")),
			"--web.listen-address=" + addr,
			"--log.level=warn",
		}
		if o.RemoteWriteReceiver {
			args = append(args, "--web.enable-remote-write-receiver")
		}
		if o.NativeHistograms {
			args = append(args, "--enable-feature=native-histograms")
		}
		return "http://" + addr + "/-/ready", args
	})
	return "http://" + addr
}

// StartPushgateway runs Debian's Pushgateway (no persistence) on a free
// 127.0.0.1 port, waits until it is ready and returns its base URL. The
// test fails when it is not installed; Cleanup stops it by PID.
func StartPushgateway(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	_, addr := StartProcOnFreePort(tb, dir, "prometheus-pushgateway", func(addr string) (string, []string) {
		return "http://" + addr + "/-/ready", []string{"--web.listen-address=" + addr, "--persistence.file=", "--log.level=warn"}
	})
	return "http://" + addr
}

// promDuration writes d as Prometheus durations are written ("1s", "500ms").
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Proc is a server process a test started (and only that test stops, by
// its PID).
type Proc struct {
	bin     string
	pid     int
	exited  chan struct{}
	logPath string
	stop    sync.Once
}

// StartProc runs bin with args in dir, its output in a log file there, and
// waits (bounded) until readyURL answers 200. The test fails when bin is
// not installed. Cleanup stops it and, if the test failed, logs its output.
func StartProc(tb testing.TB, dir, readyURL, bin string, args ...string) *Proc {
	tb.Helper()
	p, err := startProc(tb, dir, readyURL, bin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// StartProcOnFreePort is StartProc for a server told its address on the
// command line: args(addr) gives the ready URL and the arguments. A port
// found free can be taken by another test process before the server binds
// it, so a server that exits at start is tried again on another port.
func StartProcOnFreePort(tb testing.TB, dir, bin string, args func(addr string) (readyURL string, argv []string)) (*Proc, string) {
	tb.Helper()
	var err error
	for range 3 {
		addr := FreeLoopbackAddr(tb)
		ready, argv := args(addr)
		var p *Proc
		if p, err = startProc(tb, dir, ready, bin, argv...); err == nil {
			return p, addr
		}
	}
	tb.Fatal(err)
	return nil, ""
}

// startProc starts bin and waits until readyURL answers 200; on failure the
// process is stopped and the error says what it wrote.
func startProc(tb testing.TB, dir, readyURL, bin string, args ...string) (*Proc, error) {
	tb.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("%s not installed: run scripts/deps.sh (as root) first: %w", bin, err)
	}
	logPath := filepath.Join(dir, filepath.Base(bin)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf // files: no copying goroutines
	// Dies with the test binary, should that crash before Cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{bin: bin, pid: cmd.Process.Pid, exited: make(chan struct{}), logPath: logPath}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
				tb.Logf("%s (pid %d) log:\n%s", bin, p.pid, b)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), procReady)
	defer cancel()
	if err := waitReady(ctx, readyURL, p.exited); err != nil {
		p.Stop()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s (pid %d) not ready at %s: %w\n%s", bin, p.pid, readyURL, err, b)
	}
	return p, nil
}

// Stop ends the process (SIGTERM, then SIGKILL) and waits for it; calling
// it again does nothing.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(procStop):
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.exited
		}
	})
}

// FreePort returns a 127.0.0.1 port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	_, port, _ := net.SplitHostPort(FreeLoopbackAddr(tb))
	n, _ := strconv.Atoi(port)
	return n
}

func waitReady(ctx context.Context, u string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("the process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PromSample is one element of an instant query's vector.
type PromSample struct {
	Metric map[string]string
	Value  float64
}

func (s PromSample) String() string { return fmt.Sprintf("%v=%g", s.Metric, s.Value) }

// HasLabels says whether the sample's labels include want (each name with
// its value).
func (s PromSample) HasLabels(want map[string]string) bool {
	for k, v := range want {
		if s.Metric[k] != v {
			return false
		}
	}
	return true
}

// PromQuery runs an instant query against the Prometheus at base and
// returns its vector. It keeps no connection open, so goleak stays quiet.
func PromQuery(ctx context.Context, base, query string) ([]PromSample, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: decode: %w", query, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, body.Error)
	}
	out := make([]PromSample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s := PromSample{Metric: r.Metric, Value: math.NaN()}
		if len(r.Value) == 2 {
			if str, ok := r.Value[1].(string); ok {
				if v, err := strconv.ParseFloat(str, 64); err == nil {
					s.Value = v
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}
