package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// serverModeEnv makes the test binary a loopback HTTPS server (see
// TestMain): the cost benchmarks run their server in another process so
// that the CPU time and allocations they report are the client's alone.
const serverModeEnv = "EDGEPROBE_BENCH_SERVER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(agentServerEnv); dir != "" { // BenchmarkAgent's server
		if err := serveAgentBench(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if dir := os.Getenv(serverModeEnv); dir != "" {
		if err := serve(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve writes a CA into dir, prints the server's URL and serves until
// stdin closes.
func serve(dir string) error {
	ca, err := lab.NewCA()
	if err != nil {
		return err
	}
	if _, err := ca.WriteFile(dir); err != nil {
		return err
	}
	cert, err := ca.Issue("127.0.0.1", benchName)
	if err != nil {
		return err
	}
	srv, err := lab.NewHTTPServer(lab.ServerOptions{TLS: &cert, HTTP2: true, Handler: lab.DelayHandler(0, 0, make([]byte, 1024))})
	if err != nil {
		return err
	}
	defer srv.Close()
	plain, err := lab.NewHTTPServer(lab.ServerOptions{Handler: lab.DelayHandler(0, 0, make([]byte, 1024))})
	if err != nil {
		return err
	}
	defer plain.Close()
	fmt.Println(srv.URL(), plain.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// startServerProcess runs this test binary in server mode and returns its
// HTTPS and HTTP URLs and the CA file.
func startServerProcess(tb testing.TB) (httpsURL, httpURL, caFile string) {
	tb.Helper()
	dir := tb.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serverModeEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("server process: %v", err)
	}
	urls := strings.Fields(line)
	return urls[0], urls[1], filepath.Join(dir, "ca.pem")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProbeCost: the measurement core's cost per probe, a new
// connection each time, against a server in another process. It reports
// CPU time per probe (user+system of this process) and allocations.
func BenchmarkProbeCost(b *testing.B) {
	httpsURL, httpURL, caFile := startServerProcess(b)
	pool, err := httptrace.LoadCAFile(caFile)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		url  string
		opts httptrace.Options
	}{
		// As the agent probes: chains verified once are remembered.
		{"https-h1", httpsURL, httptrace.Options{RootCAs: pool, VerifiedChains: &httptrace.VerifiedChains{}, DisableHTTP2: true}},
		{"https-h2", httpsURL, httptrace.Options{RootCAs: pool, VerifiedChains: &httptrace.VerifiedChains{}}},
		// Every chain verified in full, as a one-off `probe check` does.
		{"https-h2-full-verify", httpsURL, httptrace.Options{RootCAs: pool}},
		{"http", httpURL, httptrace.Options{}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if r := httptrace.Probe(ctx, c.url, c.opts); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/probe")
		})
	}
}
