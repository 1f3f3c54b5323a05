package promexp

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgeprobe/edgeprobe/probe"
)

// benchServerEnv makes the test binary a scrape server of that many plain
// targets instead of running tests (see TestMain): BenchmarkScrapeHTTP runs
// the agent's side in a process of its own, so that its CPU time is the
// agent's alone.
const benchServerEnv = "EDGEPROBE_BENCH_SCRAPE_SERVER"

// promAccept is what Prometheus 2 and 3 ask for when they do not ingest
// native histograms.
const promAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// runBenchServer serves /metrics of n plain targets (all 7 phases, 40
// jittered samples each) on a loopback port, the registry as the agent's
// (Go and process collectors too), and its own CPU time on a second port.
// It prints both addresses on one line and serves until stdin closes.
func runBenchServer(arg string) int {
	n, err := strconv.Atoi(arg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e := New(reg, nil)
	if err := fillSeries(reg, e, targetNames(n), plainSample); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := NewServer(probe.PrometheusConfig{Listen: "127.0.0.1:0"}, reg, e, nil)
	addr, err := s.Listen()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cpuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cpuSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Fprint(w, ru.Utime.Nano()+ru.Stime.Nano())
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = cpuSrv.Serve(cpuLn) }()
	if path := os.Getenv(benchServerEnv + "_CPUPROFILE"); path != "" {
		// For looking into the agent's side: go tool pprof path.
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	fmt.Printf("%s %s\n", addr, cpuLn.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	_ = cpuSrv.Close()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// benchServer is a running runBenchServer.
type benchServer struct {
	metricsURL, cpuURL string
	stdin              io.Closer
	cmd                *exec.Cmd
}

func startBenchServer(b *testing.B, n int) *benchServer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("scrape server of %d targets: %v", n, err)
	}
	addrs := strings.Fields(line)
	return &benchServer{metricsURL: "http://" + addrs[0] + metricsPath, cpuURL: "http://" + addrs[1] + "/", stdin: stdin, cmd: cmd}
}

func (s *benchServer) stop() {
	_ = s.stdin.Close()
	_ = s.cmd.Wait()
}

// cpu is the server process's CPU time so far.
func (s *benchServer) cpu(b *testing.B, c *http.Client) time.Duration {
	resp, err := c.Get(s.cpuURL)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	ns, err := strconv.ParseInt(string(body), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// scrape GETs the page as Prometheus does (its Accept header; gzip if
// asked, decompressed with compress/gzip as Prometheus does) and reads it
// to the last byte. It returns the page's and the wire's size.
func scrape(c *http.Client, url string, gz bool) (page, wire int64, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept", promAccept)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		return 0, 0, fmt.Errorf("content type %q", ct)
	}
	cr := &countingReader{r: resp.Body}
	var body io.Reader = cr
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return 0, 0, fmt.Errorf("gzip: %w", err)
		}
		body = zr
	} else if gz {
		return 0, 0, fmt.Errorf("asked for gzip, got %q", resp.Header.Get("Content-Encoding"))
	}
	// The last bytes must be the end of the OpenMetrics page.
	var tail [6]byte
	n, err := io.Copy(io.Discard, io.TeeReader(body, &tailWriter{b: tail[:]}))
	if err != nil {
		return 0, 0, fmt.Errorf("read: %w", err)
	}
	if string(tail[:]) != "# EOF\n" {
		return 0, 0, fmt.Errorf("page ends in %q, not # EOF", tail)
	}
	return n, cr.n, nil
}

// tailWriter keeps the last len(b) bytes written.
type tailWriter struct{ b []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= len(t.b) {
		copy(t.b, p[len(p)-len(t.b):])
		return n, nil
	}
	copy(t.b, t.b[len(p):])
	copy(t.b[len(t.b)-len(p):], p)
	return n, nil
}

// BenchmarkScrapeHTTP is one full scrape as Prometheus does it: an agent
// process (runBenchServer) with 1,000 or 5,000 plain targets serves
// /metrics through the real handler over loopback, asked for OpenMetrics,
// with and without gzip, and a Go client reads the page to the last byte.
// It reports the wall time, the agent's and the client's CPU time per
// scrape and the page's size. Goal: at most 100 ms for 5,000 targets.
//
// go test ./exporters/prometheus -run '^$' -bench ScrapeHTTP -benchtime 10x
func BenchmarkScrapeHTTP(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		var srv *benchServer
		for _, gz := range []bool{false, true} {
			name := fmt.Sprintf("targets=%d/gzip=%v", n, gz)
			b.Run(name, func(b *testing.B) {
				if srv == nil {
					srv = startBenchServer(b, n)
				}
				c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: time.Minute}
				defer c.CloseIdleConnections()
				// One scrape first: connections up, pools warm.
				if _, _, err := scrape(c, srv.metricsURL, gz); err != nil {
					b.Fatal(err)
				}
				var page, wire int64
				agent0, client0 := srv.cpu(b, c), cpuTime(b)
				for b.Loop() {
					var err error
					if page, wire, err = scrape(c, srv.metricsURL, gz); err != nil {
						b.Fatal(err)
					}
				}
				agent, client := srv.cpu(b, c)-agent0, cpuTime(b)-client0
				per := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) }
				b.ReportMetric(per(b.Elapsed()), "ms/scrape")
				b.ReportMetric(per(agent), "agent-cpu-ms/scrape")
				b.ReportMetric(per(client), "client-cpu-ms/scrape")
				b.ReportMetric(float64(page)/1e6, "page-MB")
				b.ReportMetric(float64(wire)/1e6, "wire-MB")
			})
		}
		if srv != nil {
			srv.stop()
		}
	}
}
