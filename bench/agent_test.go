package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

// BenchmarkAgent's knobs, all environment variables (go test's own flags
// stay untouched):
//
//	EDGEPROBE_BENCH_SHORT=1       one small scenario (200 targets every 2s, 10s window)
//	EDGEPROBE_BENCH_SCENARIOS=…   scenarios as N@INTERVAL/WINDOW, comma-separated,
//	                              default "1000@10s/60s,5000@60s/120s"
//	EDGEPROBE_BENCH_TOOLS=…       edgeprobe,blackbox (default both)
//	EDGEPROBE_BENCH_BASELINE=20s  how long the one-target baseline run measures
//	EDGEPROBE_BENCH_HTTP2=0       the server offers only http/1.1 (default h2 and http/1.1)
//	EDGEPROBE_BENCH_OUT=FILE      also write the tables as markdown to FILE
//	EDGEPROBE_BENCH_PPROF=DIR     run edgeprobe with pprof and save a CPU profile of
//	                              each window in DIR (the CPU figure then includes
//	                              the profiler's small cost)
//	EDGEPROBE_BENCH_PROBE_BIN=F   run this binary instead of building ./cmd/probe
//	                              (compare builds); with EDGEPROBE_BENCH_PPROF, a
//	                              build of ./bench/testdata/pprofagent
//	EDGEPROBE_BENCH_GODEBUG=…     added to edgeprobe's GODEBUG (e.g. tlsmlkem=0)
const (
	agentServerEnv   = "EDGEPROBE_BENCH_AGENT_SERVER"
	envShort         = "EDGEPROBE_BENCH_SHORT"
	envScenarios     = "EDGEPROBE_BENCH_SCENARIOS"
	envTools         = "EDGEPROBE_BENCH_TOOLS"
	envBaseline      = "EDGEPROBE_BENCH_BASELINE"
	envHTTP2         = "EDGEPROBE_BENCH_HTTP2"
	envOut           = "EDGEPROBE_BENCH_OUT"
	envPprof         = "EDGEPROBE_BENCH_PPROF"
	envProbeBin      = "EDGEPROBE_BENCH_PROBE_BIN"
	envGodebug       = "EDGEPROBE_BENCH_GODEBUG"
	envDecompose     = "EDGEPROBE_BENCH_DECOMPOSE"
	envConnectTo     = "EDGEPROBE_BENCH_CONNECT_TO"
	defaultScenarios = "1000@10s/60s,5000@60s/120s"
	shortScenarios   = "200@2s/10s"
	maxProbeTimeout  = 5 * time.Second
	scrapesTimed     = 10
	// promAccept is what Prometheus 2.42 sends when it scrapes without
	// native histograms.
	promAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

// BenchmarkAgent: the agent's cost and timing against the blackbox
// exporter driven by Prometheus, the same targets at the same interval
// against the same HTTPS server, one tool after the other. The server, a
// process of its own, stamps every connection when it accepts it and tags
// the stamp with the SNI of the ClientHello (one name per target), so it
// sees each target's intervals whoever probes. Each scenario runs once
// whatever b.N is. Needs root (DNS on 127.0.0.153:53, and the blackbox
// exporter's resolv.conf in a private mount namespace). Slow: run it by
// hand, e.g.
//
//	go test -run '^$' -bench Agent -benchtime 1x -timeout 30m -v ./bench
func BenchmarkAgent(b *testing.B) {
	// measureWakeFloor holds a P in clock_nanosleep for whole windows; one
	// more keeps this process's DNS server as quick as before.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(runtime.NumCPU() + 1))
	env := newAgentEnv(b)
	b.Logf("%s", env.header)
	var runs []*toolRun // edgeprobe's, across scenarios
	for _, sc := range env.scenarios {
		b.Run(sc.name(), func(b *testing.B) {
			var rows []*toolRun
			if env.tools["edgeprobe"] {
				base := env.baselineRun(b)
				ep := env.runEdgeprobe(b, sc)
				ep.setMarginal(base)
				rows = append(rows, ep)
				runs = append(runs, ep)
				b.ReportMetric(ep.cpuPer1000(), "cpu-s/1000probes")
				if ep.marginalHeap != 0 {
					b.ReportMetric(ep.marginalHeap, "heap-B/target")
				}
				if ep.marginalInuse != 0 {
					b.ReportMetric(ep.marginalInuse, "inuse-B/target")
				}
				b.ReportMetric(ep.marginalRSS, "rss-B/target")
				b.ReportMetric(msf(ep.jitter.p99), "jitter-p99-ms")
				b.ReportMetric(msf(ep.synJitter.p99), "syn-jitter-p99-ms")
				b.ReportMetric(msf(ep.scrape), "scrape-ms")
				b.ReportMetric(msf(ep.scrapeIdentity), "scrape-uncompressed-ms")
			}
			if env.tools["blackbox"] {
				bb, prom := env.runBlackbox(b, sc)
				rows = append(rows, bb, prom)
				b.ReportMetric(bb.cpuPer1000(), "blackbox-cpu-s/1000probes")
			}
			table := sc.title() + "\n\n" + markdownTable(rows)
			for _, r := range rows {
				if r.note != "" {
					table += "\n" + r.note + "\n"
				}
			}
			b.Logf("\n%s", table)
			env.write(b, table)
		})
	}
	if len(runs) >= 2 {
		small, big := runs[0], runs[0]
		for _, r := range runs {
			if r.n < small.n {
				small = r
			}
			if r.n > big.n {
				big = r
			}
		}
		if big.n > small.n {
			dn := float64(big.n - small.n)
			s := fmt.Sprintf("edgeprobe, marginal memory between %d and %d targets: heap live %s B/target, heap in use %.0f B/target, RSS %.0f B/target",
				small.n, big.n, optional(big.heapLive >= 0 && small.heapLive >= 0, float64(big.heapLive-small.heapLive)/dn, "%.0f"),
				float64(big.heapInuse-small.heapInuse)/dn, float64(big.rss-small.rss)/dn)
			b.Log(s)
			env.write(b, s+"\n")
		}
	}
}

// scenario is N targets every interval, measured over window after one
// interval of warm-up.
type scenario struct {
	n        int
	interval time.Duration
	window   time.Duration
}

func (s scenario) name() string { return fmt.Sprintf("targets=%d/every=%s", s.n, s.interval) }

func (s scenario) timeout() time.Duration { return min(maxProbeTimeout, s.interval) }

func (s scenario) title() string {
	return fmt.Sprintf("### %d targets every %s (%.1f probes/s), measured over %s after a warm-up in which every target was probed once",
		s.n, s.interval, float64(s.n)/s.interval.Seconds(), s.window)
}

// warmup: one full interval, so every target has been probed once, and a
// second for start-up.
func (s scenario) warmup() time.Duration { return s.interval + time.Second }

func parseScenarios(spec string) ([]scenario, error) {
	var out []scenario
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		n, rest, ok1 := strings.Cut(part, "@")
		iv, win, ok2 := strings.Cut(rest, "/")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("scenario %q: write N@INTERVAL/WINDOW, e.g. 1000@10s/60s", part)
		}
		var s scenario
		var err error
		if s.n, err = strconv.Atoi(n); err != nil || s.n < 2 {
			return nil, fmt.Errorf("scenario %q: N must be a number ≥ 2", part)
		}
		if s.interval, err = time.ParseDuration(iv); err != nil || s.interval < time.Second {
			return nil, fmt.Errorf("scenario %q: interval must be a duration ≥ 1s", part)
		}
		if s.window, err = time.ParseDuration(win); err != nil || s.window < 2*s.interval {
			return nil, fmt.Errorf("scenario %q: window must be at least two intervals", part)
		}
		out = append(out, s)
	}
	return out, nil
}

// agentEnv is what the scenarios share: the server process, the DNS
// server, the binaries.
type agentEnv struct {
	dir        string
	caFile     string
	port       int    // the HTTPS server's
	control    string // the server's plain-HTTP control base URL
	probeBin   string
	pprofDir   string
	resolvConf string
	clkTck     float64
	scenarios  []scenario
	tools      map[string]bool
	baseWindow time.Duration
	baseline   *toolRun
	header     string
	out        string
}

func newAgentEnv(b *testing.B) *agentEnv {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("BenchmarkAgent needs root: it binds " + resolverAddr + " and gives the blackbox exporter a private resolv.conf")
	}
	e := &agentEnv{dir: b.TempDir(), tools: map[string]bool{}, out: os.Getenv(envOut), pprofDir: os.Getenv(envPprof)}
	spec, baseWindow := cmp.Or(os.Getenv(envScenarios), defaultScenarios), 20*time.Second
	if os.Getenv(envShort) == "1" {
		spec, baseWindow = cmp.Or(os.Getenv(envScenarios), shortScenarios), 6*time.Second
	}
	var err error
	if e.scenarios, err = parseScenarios(spec); err != nil {
		b.Fatalf("%s: %v", envScenarios, err)
	}
	if v := os.Getenv(envBaseline); v != "" {
		if baseWindow, err = time.ParseDuration(v); err != nil || baseWindow < 2*time.Second {
			b.Fatalf("%s=%q: want a duration ≥ 2s", envBaseline, v)
		}
	}
	e.baseWindow = baseWindow
	for _, t := range strings.Split(cmp.Or(os.Getenv(envTools), "edgeprobe,blackbox"), ",") {
		switch t = strings.TrimSpace(t); t {
		case "edgeprobe", "blackbox":
			e.tools[t] = true
		default:
			b.Fatalf("%s: unknown tool %q (edgeprobe, blackbox)", envTools, t)
		}
	}
	bins := []string{"go", "getconf"}
	if e.tools["blackbox"] {
		bins = append(bins, "prometheus", "prometheus-blackbox-exporter", "unshare")
	}
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("%s not found: run scripts/deps.sh", bin)
		}
	}
	raiseNoFile(b)
	e.clkTck = 100
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			e.clkTck = v
		}
	}

	// The binaries first: a build error should not wait for servers.
	if bin := os.Getenv(envProbeBin); bin != "" && e.tools["edgeprobe"] {
		e.probeBin = bin
		if e.pprofDir != "" {
			if err := os.MkdirAll(e.pprofDir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
	} else if e.tools["edgeprobe"] {
		e.probeBin = filepath.Join(e.dir, "probe")
		pkg := "github.com/edgeprobe/edgeprobe/cmd/probe"
		if e.pprofDir != "" {
			e.probeBin, pkg = filepath.Join(e.dir, "pprofagent"), "./testdata/pprofagent"
			if err := os.MkdirAll(e.pprofDir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if out, err := exec.Command("go", "build", "-o", e.probeBin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	maxN := 1
	for _, s := range e.scenarios {
		maxN = max(maxN, s.n)
	}
	zone := make(map[string][]netip.Addr, maxN)
	loop := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	for i := range maxN {
		zone[targetHost(i)] = loop
	}
	dns, err := lab.NewDNSServer(resolverAddr, zone)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(dns.Close)
	e.resolvConf = filepath.Join(e.dir, "resolv.conf")
	host, _, _ := strings.Cut(resolverAddr, ":")
	if err := os.WriteFile(e.resolvConf, []byte("nameserver "+host+"\noptions timeout:2 attempts:1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	e.startServer(b)

	load, _ := os.ReadFile("/proc/loadavg")
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	http2 := "h2 and http/1.1"
	if os.Getenv(envHTTP2) == "0" {
		http2 = "http/1.1 only"
	}
	built := "built from this tree"
	if bin := os.Getenv(envProbeBin); bin != "" {
		built = bin
	}
	e.header = fmt.Sprintf("BenchmarkAgent %s: %s, %d CPUs, Linux %s, load average at start %s; edgeprobe %s; server offers %s; a new connection per probe, DNS through %s, timeout min(%s, interval); CPU from /proc/PID/stat over the window; probes counted by the server",
		time.Now().UTC().Format(time.RFC3339), runtime.Version(), runtime.NumCPU(), strings.TrimSpace(string(kernel)),
		strings.Join(strings.Fields(string(load))[:3], " "), built, http2, resolverAddr, maxProbeTimeout)
	if e.out != "" {
		if err := os.WriteFile(e.out, []byte("## BenchmarkAgent\n\n"+e.header+"\n\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

func (e *agentEnv) write(b *testing.B, s string) {
	if e.out == "" {
		return
	}
	f, err := os.OpenFile(e.out, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(s + "\n"); err != nil {
		b.Error(err)
	}
}

// raiseNoFile lifts the soft descriptor limit to the hard one; calling
// Setrlimit also makes os/exec hand the raised limit to child processes.
func raiseNoFile(b *testing.B) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < 8192 {
		b.Logf("RLIMIT_NOFILE is %d: large scenarios may run out of descriptors", lim.Cur)
	}
}

func targetHost(i int) string { return "t" + strconv.Itoa(i) + "." + benchName }

func (e *agentEnv) targetURL(i int) string {
	return "https://" + targetHost(i) + ":" + strconv.Itoa(e.port) + "/"
}

// startServer runs this test binary in agent-server mode.
func (e *agentEnv) startServer(b *testing.B) {
	dir := filepath.Join(e.dir, "server")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), agentServerEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("agent server process: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		b.Fatalf("agent server process printed %q", line)
	}
	if e.port, err = strconv.Atoi(f[0]); err != nil {
		b.Fatalf("agent server process printed %q", line)
	}
	e.control = f[1]
	e.caFile = filepath.Join(dir, "ca.pem")
}

// toolRun is one tool's figures in one scenario.
type toolRun struct {
	tool                string
	n                   int
	interval            time.Duration
	probes              int // connections the server accepted in the window
	requests            int // HTTP requests it answered in the window
	failed              int // probes the tool itself says failed, whole run; −1 unknown
	window              time.Duration
	cpu                 time.Duration // user+system over the window
	heapLive            int64         // median live heap after GC in the window (gctrace); −1 unknown
	heapInuse           int64         // go_memstats_heap_inuse_bytes after the window; 0 unknown
	rss                 int64
	marginalHeap        float64 // bytes per target over the one-target baseline
	marginalInuse       float64
	marginalRSS         float64
	jitter, helloJitter jitterStats
	synJitter           jitterStats // stamped by the kernel as the SYN arrived
	floor               wakeFloor   // the machine's own wake-up lateness in the window
	even                evenStats
	protos              map[string]int
	scrape              time.Duration // median of scrapesTimed full scrapes, gzip on as Prometheus asks
	scrapeIdentity      time.Duration // the same without compression
	scrapeCPU           time.Duration // the agent's CPU per scrape
	scrapeBytes         int
	scrapeSeries        int
	cpuOnly             bool   // a helper (Prometheus): CPU and memory only
	note                string // a line printed under the table
}

func (r *toolRun) cpuPer1000() float64 {
	if r.probes == 0 {
		return 0
	}
	return r.cpu.Seconds() / float64(r.probes) * 1000
}

func (r *toolRun) setMarginal(base *toolRun) {
	if base == nil || r.n <= base.n {
		return
	}
	dn := float64(r.n - base.n)
	if r.heapLive >= 0 && base.heapLive >= 0 {
		r.marginalHeap = float64(r.heapLive-base.heapLive) / dn
	}
	if r.heapInuse > 0 && base.heapInuse > 0 {
		r.marginalInuse = float64(r.heapInuse-base.heapInuse) / dn
	}
	r.marginalRSS = float64(r.rss-base.rss) / dn
}

// proc is a process started by the benchmark, stopped by PID in Cleanup.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	log     string
	done    chan struct{}
	once    sync.Once
	clkTck  float64
}

func (e *agentEnv) start(b *testing.B, name string, cmd *exec.Cmd, dir string) *proc {
	b.Helper()
	p := &proc{name: name, cmd: cmd, log: filepath.Join(dir, name+".log"), done: make(chan struct{}), clkTck: e.clkTck}
	f, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = f, f
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	b.Cleanup(p.stop)
	return p
}

// stop sends SIGTERM, waits up to 20s, then kills.
func (p *proc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// cpu is the process's user+system time (all threads, dead ones too).
func (p *proc) cpu(b *testing.B) time.Duration {
	d, err := procCPU(p.cmd.Process.Pid, p.clkTck)
	if err != nil {
		b.Fatalf("%s: %v\n%s", p.name, err, p.tail())
	}
	return d
}

func procCPU(pid int, clkTck float64) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration((ut + st) / clkTck * float64(time.Second)), nil
}

// rss is VmRSS in bytes.
func (p *proc) rss(b *testing.B) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("%s: VmRSS %q", p.name, v)
			}
			return kb << 10
		}
	}
	b.Fatalf("%s: no VmRSS", p.name)
	return 0
}

var gcLine = regexp.MustCompile(`^gc \d+ @([0-9.]+)s .*?, (\d+)->(\d+)->(\d+) MB`)

// liveHeap is the median live heap the garbage collector reported
// (GODEBUG=gctrace=1) in [from, to); when no collection ran then (an idle
// process), the last one before to; −1 when none ran at all.
func (p *proc) liveHeap(from, to time.Time) int64 {
	f, err := os.Open(p.log)
	if err != nil {
		return -1
	}
	defer f.Close()
	var live []int64
	last := int64(-1)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := gcLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseFloat(m[1], 64)
		at := p.started.Add(time.Duration(sec * float64(time.Second)))
		mb, _ := strconv.ParseInt(m[4], 10, 64)
		if !at.Before(to) {
			break
		}
		last = mb << 20
		if !at.Before(from) {
			live = append(live, mb<<20)
		}
	}
	if len(live) == 0 {
		return last
	}
	slices.Sort(live)
	return live[len(live)/2]
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// baselineRun measures edgeprobe with one target (every second) once, the
// fixed memory the marginal per-target figures are taken against.
func (e *agentEnv) baselineRun(b *testing.B) *toolRun {
	if e.baseline == nil {
		e.baseline = e.runEdgeprobe(b, scenario{n: 1, interval: time.Second, window: e.baseWindow})
		r := e.baseline
		b.Logf("edgeprobe baseline, 1 target every 1s: heap live %s MiB, heap in use %.1f MiB, RSS %.1f MiB",
			optional(r.heapLive >= 0, mib(r.heapLive), "%.0f"), mib(r.heapInuse), mib(r.rss))
	}
	return e.baseline
}

// runEdgeprobe runs `probe run` with a generated config for sc and
// measures it.
func (e *agentEnv) runEdgeprobe(b *testing.B, sc scenario) *toolRun {
	b.Helper()
	dir, err := os.MkdirTemp(e.dir, fmt.Sprintf("edgeprobe-%d-", sc.n))
	if err != nil {
		b.Fatal(err)
	}
	listen := testkit.FreeLoopbackAddr(b)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "location: bench\ndefaults:\n  interval: %s\n  timeout: %s\n  dns_server: %q\n  ip_version: ip4\ntargets:\n",
		sc.interval, sc.timeout(), resolverAddr)
	// With connect_to an address, a probe makes no DNS lookup: the jitter
	// left is the scheduler's and the connect's.
	connectTo := os.Getenv(envConnectTo) == "1"
	for i := range sc.n {
		fmt.Fprintf(&cfg, "  - name: t%d\n    url: %s\n    ca_file: %q\n", i, e.targetURL(i), e.caFile)
		if connectTo {
			fmt.Fprintf(&cfg, "    roles:\n      origin:\n        connect_to: \"127.0.0.1:%d\"\n", e.port)
		}
	}
	fmt.Fprintf(&cfg, "exporters:\n  prometheus:\n    listen: %q\n", listen)
	samplesFile := filepath.Join(dir, "samples.jsonl")
	decompose := os.Getenv(envDecompose) == "1"
	if decompose { // costs the JSONL sink's CPU: figures of such a run are marked
		fmt.Fprintf(&cfg, "  jsonl:\n    path: %q\n", samplesFile)
	}
	cfgFile := filepath.Join(dir, "gen.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	tool := "edgeprobe"
	if connectTo {
		tool += " (connect_to, no DNS)"
	}
	if decompose {
		tool += " (+JSONL)"
	}
	args := []string{"run", "--config", cfgFile, "--log-level", "warn"}
	var pprofAddr string
	if e.pprofDir != "" {
		tool = "edgeprobe (pprof)"
		pprofAddr = testkit.FreeLoopbackAddr(b)
		args = []string{"--config", cfgFile, "--pprof", pprofAddr}
	}
	cmd := exec.Command(e.probeBin, args...)
	godebug := "gctrace=1"
	if extra := os.Getenv(envGodebug); extra != "" {
		godebug += "," + extra
		tool += " GODEBUG=" + extra
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	p := e.start(b, "edgeprobe", cmd, dir)
	if err := testkit.WaitHTTP(context.Background(), "http://"+listen+"/ready", 60*time.Second); err != nil {
		b.Fatalf("edgeprobe: %v\n%s", err, p.tail())
	}
	t0 := time.Now().Add(sc.warmup())
	t1 := t0.Add(sc.window)
	sleepUntil(t0)
	var profile chan error
	if pprofAddr != "" {
		profile = make(chan error, 1)
		out := filepath.Join(e.pprofDir, fmt.Sprintf("edgeprobe-%d-%s.pprof", sc.n, sc.interval))
		go func() {
			profile <- fetchToFile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, int(sc.window.Seconds())), out)
		}()
	}
	cpu0 := p.cpu(b)
	floor := measureWakeFloor(t1)
	cpu1 := p.cpu(b)
	if !p.alive() {
		b.Fatalf("edgeprobe exited during the window\n%s", p.tail())
	}
	r := &toolRun{tool: tool, n: sc.n, interval: sc.interval, window: sc.window, cpu: cpu1 - cpu0, rss: p.rss(b), heapLive: p.liveHeap(t0, t1), floor: floor}
	if profile != nil {
		if err := <-profile; err != nil {
			b.Errorf("pprof: %v", err)
		}
	}

	// After the window: one scrape for the figures, then the timed ones.
	client := &http.Client{Timeout: 30 * time.Second}
	body, _, err := scrape(client, "http://"+listen+"/metrics", "")
	if err != nil {
		b.Fatalf("edgeprobe /metrics: %v", err)
	}
	// A line scan: the page of thousands of targets is too big to parse
	// whole just for these.
	var total float64
	lag := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		name, v, ok := sampleLine(line)
		switch {
		case !ok:
		case name == "go_memstats_heap_inuse_bytes":
			r.heapInuse = int64(v)
		case strings.HasPrefix(name, "edgeprobe_probes_total{"):
			total += v
			if !strings.Contains(name, `result="success"`) {
				r.failed += int(v)
			}
		case strings.HasPrefix(name, "edgeprobe_schedule_lag_seconds_bucket{"):
			if _, le, ok := strings.Cut(name, `le="`); ok {
				lag[strings.TrimSuffix(le, `"}`)] = v
			}
		}
	}
	if total == 0 {
		b.Errorf("edgeprobe reports no probes")
	}
	if all := lag["+Inf"]; all > 0 && sc.n > 1 {
		r.note = fmt.Sprintf("%s schedule lag (its own edgeprobe_schedule_lag_seconds, whole run): ≤0.25 ms %.1f%%, ≤1 ms %.1f%%, ≤5 ms %.1f%%, ≤10 ms %.1f%%, ≤50 ms %.1f%% of probes.",
			tool, 100*lag["0.00025"]/all, 100*lag["0.001"]/all, 100*lag["0.005"]/all, 100*lag["0.01"]/all, 100*lag["0.05"]/all)
	}
	// Timed as Prometheus reads a page: into a buffer kept from the last
	// scrape, so the client's own reallocations are not counted.
	var times []time.Duration
	var page bytes.Buffer
	c0, w0 := p.cpu(b), time.Now()
	for range scrapesTimed {
		d, err := scrapeInto(&page, client, "http://"+listen+"/metrics", promAccept)
		if err != nil {
			b.Fatalf("edgeprobe /metrics: %v", err)
		}
		times = append(times, d)
	}
	c1, w1 := p.cpu(b), time.Now()
	// Probing goes on meanwhile: take its share (the window's rate) out.
	probing := time.Duration(float64(r.cpu) / float64(sc.window) * float64(w1.Sub(w0)))
	r.scrapeCPU = max(0, (c1-c0-probing)/scrapesTimed)
	r.scrape = median(times)
	r.scrapeBytes = page.Len()
	r.scrapeSeries = countSeries(page.String())
	// Prometheus asks for gzip unless the scrape config says
	// enable_compression: false, which a big page on a LAN is better off with.
	identity := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	times = times[:0]
	for range scrapesTimed {
		d, err := scrapeInto(&page, identity, "http://"+listen+"/metrics", promAccept)
		if err != nil {
			b.Fatalf("edgeprobe /metrics: %v", err)
		}
		times = append(times, d)
	}
	r.scrapeIdentity = median(times)
	p.stop()

	hellos := e.serverFigures(b, r, t0, t1)
	if decompose {
		r.note += "\n\n" + decomposeJitter(b, samplesFile, hellos, sc.interval, t0, t1)
	}
	if r.requests < r.probes*99/100 {
		b.Errorf("edgeprobe: %d connections but %d requests in the window: probes fail\n%s", r.probes, r.requests, p.tail())
	}
	return r
}

// runBlackbox runs the blackbox exporter (in the resolver namespace) and a
// Prometheus that drives it the usual way, and measures both.
func (e *agentEnv) runBlackbox(b *testing.B, sc scenario) (bb, prom *toolRun) {
	b.Helper()
	dir, err := os.MkdirTemp(e.dir, fmt.Sprintf("blackbox-%d-", sc.n))
	if err != nil {
		b.Fatal(err)
	}
	bbCfg := filepath.Join(dir, "blackbox.yml")
	module := testkit.BlackboxConfig(testkit.BlackboxModule{Name: "https", Timeout: sc.timeout(), CAFile: e.caFile})
	if err := os.WriteFile(bbCfg, module, 0o644); err != nil {
		b.Fatal(err)
	}
	bbAddr := testkit.FreeLoopbackAddr(b)
	argv := testkit.WithResolvConf(e.resolvConf, "prometheus-blackbox-exporter", "--config.file="+bbCfg, "--web.listen-address="+bbAddr, "--log.level=warn")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	bp := e.start(b, "blackbox", cmd, dir)
	if err := testkit.WaitHTTP(context.Background(), "http://"+bbAddr+"/-/healthy", 30*time.Second); err != nil {
		b.Fatalf("blackbox exporter: %v\n%s", err, bp.tail())
	}
	// unshare and sh exec, so the PID is the exporter's own.
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", bp.cmd.Process.Pid)); !strings.HasPrefix(string(comm), "prometheus-bla") {
		b.Fatalf("blackbox PID %d is %q, not the exporter", bp.cmd.Process.Pid, comm)
	}

	promAddr := testkit.FreeLoopbackAddr(b)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global:
  scrape_interval: %s
  scrape_timeout: %s
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {module: [https]}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %q
    static_configs:
      - targets:
`, sc.interval, sc.timeout(), bbAddr)
	for i := range sc.n {
		fmt.Fprintf(&cfg, "          - %s\n", e.targetURL(i))
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	pcmd := exec.Command("prometheus", "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	pp := e.start(b, "prometheus", pcmd, dir)
	if err := testkit.WaitHTTP(context.Background(), "http://"+promAddr+"/-/ready", 60*time.Second); err != nil {
		b.Fatalf("prometheus: %v\n%s", err, pp.tail())
	}
	// Prometheus syncs new targets only every few seconds: the warm-up
	// ends once every target has been scraped (count(up) = N), and a
	// second more.
	runStart := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	for deadline := runStart.Add(sc.warmup() + time.Minute); ; time.Sleep(250 * time.Millisecond) {
		if up, err := promQuery(client, promAddr, "count(up)"); err == nil && int(up) >= sc.n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("prometheus has not scraped every target after %v\n%s", time.Since(runStart), pp.tail())
		}
	}
	t0 := time.Now().Add(time.Second)
	t1 := t0.Add(sc.window)
	warm := time.Since(runStart)
	sleepUntil(t0)
	bc0, pc0 := bp.cpu(b), pp.cpu(b)
	floor := measureWakeFloor(t1)
	bc1, pc1 := bp.cpu(b), pp.cpu(b)
	if !bp.alive() || !pp.alive() {
		b.Fatalf("blackbox or prometheus exited during the window\n%s\n%s", bp.tail(), pp.tail())
	}
	bb = &toolRun{tool: "blackbox exporter", n: sc.n, interval: sc.interval, window: sc.window, cpu: bc1 - bc0,
		rss: bp.rss(b), heapLive: bp.liveHeap(t0, t1), failed: -1, floor: floor}
	prom = &toolRun{tool: "prometheus (driving blackbox)", n: sc.n, interval: sc.interval, window: sc.window, cpu: pc1 - pc0,
		rss: pp.rss(b), heapLive: -1, failed: -1, cpuOnly: true}
	if body, _, err := scrape(client, "http://"+bbAddr+"/metrics", ""); err == nil {
		if m, err := testkit.ParseGauges(strings.NewReader(body)); err == nil {
			bb.heapInuse = int64(m["go_memstats_heap_inuse_bytes"])
		}
	}
	// Failures over the whole run: scrapes that failed (up 0) and probes
	// that did (probe_success 0).
	now := time.Now()
	rng := fmt.Sprintf("[%ds]", int(now.Sub(runStart).Seconds())+1)
	attempts, err1 := promQueryAt(client, promAddr, "sum(count_over_time(up"+rng+"))", now)
	successes, err2 := promQueryAt(client, promAddr, "sum(sum_over_time(probe_success"+rng+"))", now)
	if err := errors.Join(err1, err2); err != nil {
		b.Errorf("prometheus query: %v", err)
	} else {
		// The two sums can differ by a scrape being committed between
		// them; a count below zero is none.
		bb.failed = max(0, int(attempts-successes))
	}
	pp.stop()
	bp.stop()

	e.serverFigures(b, bb, t0, t1)
	prom.probes = bb.probes
	bb.note = fmt.Sprintf("blackbox: Prometheus had scraped every target %.1f s after it was ready; the window began a second later.", warm.Seconds())
	if bb.requests < bb.probes*99/100 || bb.failed > bb.probes/100 {
		b.Errorf("blackbox: %d connections, %d requests in the window, %d failed probes in the run\n%s", bb.probes, bb.requests, bb.failed, bp.tail())
	}
	return bb, prom
}

func fetchToFile(u, path string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// scrape gets a whole page (gzip on, as Prometheus asks) and says how
// long it took to the last byte.
func scrape(c *http.Client, u, accept string) (string, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(start)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return string(body), d, nil
}

// scrapeInto reads a whole page into buf (emptied first, its capacity
// kept) and says how long it took to the last byte.
func scrapeInto(buf *bytes.Buffer, c *http.Client, u, accept string) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", accept)
	buf.Reset()
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = buf.ReadFrom(resp.Body)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return d, nil
}

// sampleLine splits a text exposition line into series and value.
func sampleLine(line string) (string, float64, bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	return line[:i], v, err == nil
}

func countSeries(page string) int {
	n := 0
	for _, line := range strings.Split(page, "\n") {
		if line != "" && line[0] != '#' {
			n++
		}
	}
	return n
}

// promQuery runs an instant query and returns the first sample's value.
func promQuery(c *http.Client, addr, q string) (float64, error) {
	return promQueryAt(c, addr, q, time.Time{})
}

// promQueryAt evaluates at a given instant (zero: now).
func promQueryAt(c *http.Client, addr, q string, at time.Time) (float64, error) {
	u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q)
	if !at.IsZero() {
		u += fmt.Sprintf("&time=%.3f", float64(at.UnixMilli())/1000)
	}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("%s: %s", q, out.Error)
	}
	if len(out.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// Server side.

// stampReport is what the server saw in a window [from, to) of accept
// times: every accepted connection, every ClientHello (its SNI and when
// its connection was accepted), and the requests answered.
type stampReport struct {
	Accepts  []int64        `json:"accepts"` // Unix ns
	Hellos   []helloStamp   `json:"hellos"`
	Requests int            `json:"requests"`
	Protos   map[string]int `json:"protos"`
}

type helloStamp struct {
	SNI    string `json:"sni"`
	SYN    int64  `json:"syn"`    // Unix ns, when its SYN reached the host (kernel); 0 unknown
	Accept int64  `json:"accept"` // Unix ns, when the server accepted the connection
	Hello  int64  `json:"hello"`  // Unix ns, when the ClientHello arrived
	src    uint16 // the client's port, to find the SYN
}

// serverFigures fills r with what the server saw in [t0, t1) and returns
// its ClientHello stamps.
func (e *agentEnv) serverFigures(b *testing.B, r *toolRun, t0, t1 time.Time) []helloStamp {
	b.Helper()
	u := fmt.Sprintf("%s/stamps?from=%d&to=%d", e.control, t0.UnixNano(), t1.UnixNano())
	resp, err := http.Get(u)
	if err != nil {
		b.Fatalf("server stamps: %v", err)
	}
	defer resp.Body.Close()
	var rep stampReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		b.Fatalf("server stamps: %v", err)
	}
	r.probes, r.requests, r.protos = len(rep.Accepts), rep.Requests, rep.Protos
	r.jitter = jitterOf(rep.Hellos, r.interval, func(h helloStamp) int64 { return h.Accept })
	var withSYN []helloStamp
	for _, h := range rep.Hellos {
		if h.SYN != 0 {
			withSYN = append(withSYN, h)
		}
	}
	r.synJitter = jitterOf(withSYN, r.interval, func(h helloStamp) int64 { return h.SYN })
	if missing := len(rep.Hellos) - len(withSYN); missing > len(rep.Hellos)/100 {
		b.Errorf("%s: %d of %d connections have no SYN stamp", r.tool, missing, len(rep.Hellos))
	}
	r.helloJitter = jitterOf(rep.Hellos, r.interval, func(h helloStamp) int64 { return h.Hello })
	r.even = evennessOf(rep.Accepts, t0, r.window)
	if want := float64(r.n) / r.interval.Seconds() * r.window.Seconds(); float64(r.probes) < 0.97*want {
		b.Errorf("%s: the server saw %d probes in the window, want about %.0f", r.tool, r.probes, want)
	}
	return rep.Hellos
}

// jitterStats: |interval between a target's consecutive stamps − the
// configured interval|, over all targets.
type jitterStats struct {
	n             int
	p50, p99, max time.Duration
}

func jitterOf(hellos []helloStamp, interval time.Duration, at func(helloStamp) int64) jitterStats {
	byTarget := map[string][]int64{}
	for _, h := range hellos {
		byTarget[h.SNI] = append(byTarget[h.SNI], at(h))
	}
	var js []time.Duration
	for _, ts := range byTarget {
		slices.Sort(ts)
		for i := 1; i < len(ts); i++ {
			d := time.Duration(ts[i]-ts[i-1]) - interval
			js = append(js, max(d, -d))
		}
	}
	if len(js) == 0 {
		return jitterStats{}
	}
	slices.Sort(js)
	return jitterStats{n: len(js), p50: percentile(js, 0.50), p99: percentile(js, 0.99), max: js[len(js)-1]}
}

// percentile by nearest rank of a sorted slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// evenStats are the connections accepted in each whole second of the
// window.
type evenStats struct {
	min, max, idle int
	mean, cv       float64
}

func evennessOf(accepts []int64, t0 time.Time, window time.Duration) evenStats {
	secs := int(window / time.Second)
	if secs == 0 {
		return evenStats{}
	}
	counts := make([]int, secs)
	for _, a := range accepts {
		if k := int(time.Duration(a-t0.UnixNano()) / time.Second); k >= 0 && k < secs {
			counts[k]++
		}
	}
	s := evenStats{min: slices.Min(counts), max: slices.Max(counts)}
	var sum, sq float64
	for _, c := range counts {
		if c == 0 {
			s.idle++
		}
		sum += float64(c)
	}
	s.mean = sum / float64(secs)
	for _, c := range counts {
		sq += (float64(c) - s.mean) * (float64(c) - s.mean)
	}
	if s.mean > 0 {
		s.cv = math.Sqrt(sq/float64(secs)) / s.mean
	}
	return s
}

// Output.

func mib(v int64) float64 { return float64(v) / (1 << 20) }

func optional(ok bool, v float64, format string) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

func markdownTable(rows []*toolRun) string {
	var sb strings.Builder
	sb.WriteString("| tool | probes | failed | CPU-s / 1000 probes | heap live MiB | heap in use MiB | RSS MiB | marginal B/target (heap live / in use / RSS) | jitter p50 / p99 / max ms (SYN, kernel) | jitter p50 / p99 / max ms (accept) | jitter p99 ms (ClientHello) | machine wake lateness p50 / p99 / max ms (steal) | req/s min / mean / max | idle s | CV | scrape ms gzip / uncompressed (CPU ms gzip, KiB, series) | protocol |\n")
	sb.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %d | %s | %.2f | %s | %s | %.1f | ",
			r.tool, r.probes, optional(r.failed >= 0, float64(r.failed), "%.0f"), r.cpuPer1000(),
			optional(r.heapLive >= 0, mib(r.heapLive), "%.0f"), optional(r.heapInuse > 0, mib(r.heapInuse), "%.1f"), mib(r.rss))
		if r.marginalRSS != 0 {
			fmt.Fprintf(&sb, "%s / %s / %.0f | ", optional(r.marginalHeap != 0, r.marginalHeap, "%.0f"),
				optional(r.marginalInuse != 0, r.marginalInuse, "%.0f"), r.marginalRSS)
		} else {
			sb.WriteString("– | ")
		}
		if r.cpuOnly {
			sb.WriteString("– | – | – | – | – | – | – | – | – |\n")
			continue
		}
		fmt.Fprintf(&sb, "%.3f / %.3f / %.1f | %.3f / %.3f / %.1f | %.3f | %s | %d / %.1f / %d | %d | %.3f | ",
			msf(r.synJitter.p50), msf(r.synJitter.p99), msf(r.synJitter.max),
			msf(r.jitter.p50), msf(r.jitter.p99), msf(r.jitter.max), msf(r.helloJitter.p99), r.floor,
			r.even.min, r.even.mean, r.even.max, r.even.idle, r.even.cv)
		if r.scrape > 0 {
			fmt.Fprintf(&sb, "%.1f / %.1f (%.0f, %d, %d) | ", msf(r.scrape), msf(r.scrapeIdentity), msf(r.scrapeCPU), r.scrapeBytes>>10, r.scrapeSeries)
		} else {
			sb.WriteString("– | ")
		}
		var protos []string
		for p, n := range r.protos {
			protos = append(protos, fmt.Sprintf("%s×%d", p, n))
		}
		slices.Sort(protos)
		fmt.Fprintf(&sb, "%s |\n", strings.Join(protos, " "))
	}
	return sb.String()
}

// The server process (agentServerEnv): HTTPS for every name under
// benchName with one wildcard certificate, stamping each connection.

type agentServer struct {
	syns     *synCapture
	mu       sync.Mutex
	accepts  []int64
	hellos   []helloStamp
	requests []reqStamp
}

type reqStamp struct {
	at    int64
	proto string
}

type stampedConn struct {
	net.Conn
	at  time.Time
	src uint16
}

type stampingListener struct {
	net.Listener
	s *agentServer
}

func (l *stampingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	l.s.mu.Lock()
	l.s.accepts = append(l.s.accepts, now.UnixNano())
	l.s.mu.Unlock()
	var src uint16
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = uint16(a.Port)
	}
	return &stampedConn{Conn: c, at: now, src: src}, nil
}

// serveAgentBench writes the CA to dir, prints the HTTPS port and the
// control URL, and serves until stdin closes.
func serveAgentBench(dir string) error {
	ca, err := lab.NewCA()
	if err != nil {
		return err
	}
	if _, err := ca.WriteFile(dir); err != nil {
		return err
	}
	cert, err := ca.Issue("*." + benchName)
	if err != nil {
		return err
	}
	s := &agentServer{}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if s.syns, err = captureSYNs(uint16(inner.Addr().(*net.TCPAddr).Port)); err != nil {
		return err
	}
	defer s.syns.close()
	body := make([]byte, 1024)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(os.Getenv(envHTTP2) != "0")
	srv := &http.Server{
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now().UnixNano()
			s.mu.Lock()
			s.requests = append(s.requests, reqStamp{now, r.Proto})
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			// Called as the ClientHello arrives: the SNI names the target.
			GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				now := time.Now().UnixNano()
				st := helloStamp{SNI: h.ServerName, Hello: now}
				if c, ok := h.Conn.(*stampedConn); ok {
					st.Accept, st.src = c.at.UnixNano(), c.src
				}
				s.mu.Lock()
				s.hellos = append(s.hellos, st)
				s.mu.Unlock()
				return nil, nil
			},
		},
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.ServeTLS(&stampingListener{Listener: inner, s: s}, "", "")
	}()
	ctlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctl := &http.Server{Handler: http.HandlerFunc(s.report), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ctl.Serve(ctlLn) }()
	fmt.Println(inner.Addr().(*net.TCPAddr).Port, "http://"+ctlLn.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = ctl.Close()
	_ = srv.Close()
	<-served
	return nil
}

// report answers /stamps?from=NS&to=NS with a stampReport.
func (s *agentServer) report(w http.ResponseWriter, r *http.Request) {
	from, err1 := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	to, err2 := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	in := func(t int64) bool { return t >= from && t < to }
	rep := stampReport{Protos: map[string]int{}}
	s.mu.Lock()
	for _, a := range s.accepts {
		if in(a) {
			rep.Accepts = append(rep.Accepts, a)
		}
	}
	for _, h := range s.hellos {
		if in(h.Accept) {
			h.SYN, _ = s.syns.synBefore(h.src, h.Accept)
			rep.Hellos = append(rep.Hellos, h)
		}
	}
	for _, q := range s.requests {
		if in(q.at) {
			rep.Requests++
			rep.Protos[q.proto]++
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}
