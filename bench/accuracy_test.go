// Package bench holds edgeprobe's accuracy and cost benchmarks: they run
// real servers on loopback with known injected delays and compare edgeprobe
// with curl and prometheus-blackbox-exporter on the same requests.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

// Injected delays of the "slow" setup; the "base" setup has none.
const (
	dnsDelay      = 10 * time.Millisecond
	tlsDelay      = 10 * time.Millisecond
	firstByteWait = 20 * time.Millisecond
	transferWait  = 10 * time.Millisecond
)

// resolverAddr is where the benchmark's DNS server listens: port 53, since
// curl and the blackbox exporter read a resolv.conf, which has no port. A
// loopback address of its own keeps it clear of any local resolver.
const resolverAddr = "127.0.0.153:53"

// phaseRow is one phase's medians for the base and slow setups.
type phaseRow struct{ base, slow time.Duration }

// tool is something that measures one request: edgeprobe, curl, blackbox.
type tool struct {
	name    string
	measure func(ctx context.Context, url string, slow bool) (map[string]time.Duration, error)
}

// BenchmarkAccuracy: b.N rounds; each round probes the base and the slow
// setup once with every tool. It reports, per phase and tool, the median
// growth against the injected delay, and edgeprobe's distance to curl on
// the slow setup. Needs root (curl's resolver is pointed at the test DNS
// server through a private mount namespace).
func BenchmarkAccuracy(b *testing.B) {
	env := newAccuracyEnv(b)
	tools := []tool{
		{"edgeprobe", env.edgeprobe},
		{"curl", env.curl},
	}
	if bb := env.startBlackbox(b); bb != nil {
		tools = append(tools, tool{"blackbox", bb})
	}
	samples := map[string]map[string][2][]time.Duration{} // tool → phase → [base, slow]
	for _, t := range tools {
		samples[t.name] = map[string][2][]time.Duration{}
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, slow := range []bool{false, true} {
			for _, t := range tools {
				env.setSlow(slow)
				got, err := t.measure(ctx, env.url(slow), slow)
				if err != nil {
					b.Fatalf("%s: %v", t.name, err)
				}
				for phase, d := range got {
					pair := samples[t.name][phase]
					if slow {
						pair[1] = append(pair[1], d)
					} else {
						pair[0] = append(pair[0], d)
					}
					samples[t.name][phase] = pair
				}
			}
		}
	}
	b.StopTimer()
	env.setSlow(false)

	injected := env.injected()
	phases := []string{httptrace.PhaseDNS, httptrace.PhaseConnect, httptrace.PhaseTLS, httptrace.PhaseTTFB, httptrace.PhaseTransfer, httptrace.PhaseTotal}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "phase\tinjected ms (as slept)\t")
	for _, t := range tools {
		fmt.Fprintf(tw, "%s median ms\t%s growth−injected ms\t", t.name, t.name)
	}
	fmt.Fprintf(tw, "edgeprobe−curl ms\t\n")
	for _, p := range phases {
		fmt.Fprintf(tw, "%s\t%.3f\t", p, msf(injected[p]))
		for _, t := range tools {
			pair := samples[t.name][p]
			if len(pair[0]) == 0 {
				fmt.Fprintf(tw, "–\t–\t")
				continue
			}
			growth := median(pair[1]) - median(pair[0])
			fmt.Fprintf(tw, "%.3f\t%+.3f\t", msf(median(pair[1])), msf(growth-injected[p]))
			if t.name == "edgeprobe" {
				b.ReportMetric(msf(growth-injected[p]), p+"-err-ms")
			}
		}
		ep, cu := samples["edgeprobe"][p][1], samples["curl"][p][1]
		fmt.Fprintf(tw, "%+.3f\t\n", msf(median(ep)-median(cu)))
	}
	tw.Flush()
	b.Logf("rounds=%d (slow setup: dns +%v, tls +%v, ttfb +%v, transfer +%v)\n%s", b.N, dnsDelay, tlsDelay, firstByteWait, transferWait, sb.String())
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// accuracyEnv: a DNS server on resolverAddr, and two HTTPS servers for the
// same name, one slowing its handshake. The name's address and the DNS
// delay switch between the base and the slow setup.
type accuracyEnv struct {
	dir            string
	ca             *lab.CA
	caFile         string
	dns            *lab.DNSServer
	fast, slowTLS  *lab.HTTPServer
	resolvConf     string
	handler        *lab.QueryDelay
	edgeprobeOpts  httptrace.Options
	blackboxModule string
}

const benchName = "bench.test"

func newAccuracyEnv(b *testing.B) *accuracyEnv {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("BenchmarkAccuracy needs root: it binds " + resolverAddr + " and gives curl a private resolv.conf")
	}
	for _, bin := range []string{"curl", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("%s not found: run scripts/deps.sh", bin)
		}
	}
	e := &accuracyEnv{dir: b.TempDir()}
	var err error
	if e.ca, err = lab.NewCA(); err != nil {
		b.Fatal(err)
	}
	if e.caFile, err = e.ca.WriteFile(e.dir); err != nil {
		b.Fatal(err)
	}
	cert, err := e.ca.Issue(benchName)
	if err != nil {
		b.Fatal(err)
	}
	if e.dns, err = lab.NewDNSServer(resolverAddr, map[string][]netip.Addr{benchName: {netip.MustParseAddr("127.0.0.1")}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.dns.Close)
	handler := lab.QueryDelayHandler(2048)
	e.handler = handler
	for _, s := range []struct {
		p     **lab.HTTPServer
		delay time.Duration
	}{{&e.fast, 0}, {&e.slowTLS, tlsDelay}} {
		if *s.p, err = lab.NewHTTPServer(lab.ServerOptions{TLS: &cert, HandshakeDelay: s.delay, Handler: handler}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup((*s.p).Close)
	}
	e.resolvConf = filepath.Join(e.dir, "resolv.conf")
	host, _, _ := strings.Cut(resolverAddr, ":")
	if err := os.WriteFile(e.resolvConf, []byte("nameserver "+host+"\noptions timeout:2 attempts:1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	e.edgeprobeOpts = httptrace.Options{DNSServer: resolverAddr, RootCAs: e.ca.Pool(), IPVersion: httptrace.IPv4Only, Timeout: 5 * time.Second, DisableHTTP2: true}
	return e
}

// injected is the ground truth per phase: the median of what the servers
// really slept in the slow setup (a timer fires late by its slack; the
// base setup sleeps nothing).
func (e *accuracyEnv) injected() map[string]time.Duration {
	slow := func(ds []time.Duration, nominal time.Duration) []time.Duration {
		var out []time.Duration
		for _, d := range ds {
			if d > nominal/2 {
				out = append(out, d)
			}
		}
		return out
	}
	fb, tx := e.handler.Waits()
	m := map[string]time.Duration{
		httptrace.PhaseDNS:      median(e.dns.Slept()),
		httptrace.PhaseConnect:  0,
		httptrace.PhaseTLS:      median(e.slowTLS.HandshakeSlept()),
		httptrace.PhaseTTFB:     median(slow(fb, firstByteWait)),
		httptrace.PhaseTransfer: median(slow(tx, transferWait)),
	}
	m[httptrace.PhaseTotal] = m[httptrace.PhaseDNS] + m[httptrace.PhaseTLS] + m[httptrace.PhaseTTFB] + m[httptrace.PhaseTransfer]
	return m
}

func (e *accuracyEnv) setSlow(slow bool) {
	if slow {
		e.dns.SetDelay(dnsDelay)
	} else {
		e.dns.SetDelay(0)
	}
}

func (e *accuracyEnv) url(slow bool) string {
	srv, q := e.fast, "fb=0s&tx=0s"
	if slow {
		srv, q = e.slowTLS, "fb="+firstByteWait.String()+"&tx="+transferWait.String()
	}
	return "https://" + benchName + ":" + strconv.Itoa(int(srv.Addr().Port())) + "/?" + q
}

func (e *accuracyEnv) edgeprobe(ctx context.Context, url string, _ bool) (map[string]time.Duration, error) {
	r := httptrace.Probe(ctx, url, e.edgeprobeOpts)
	if r.Err != nil {
		return nil, r.Err
	}
	out := map[string]time.Duration{}
	for _, p := range httptrace.Phases {
		out[p] = r.Timings.Get(p)
	}
	return out, nil
}

// inResolverNS runs a command with resolv.conf pointing at the test DNS
// server, in a private mount namespace: nothing outside it changes.
func (e *accuracyEnv) inResolverNS(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := testkit.WithResolvConf(e.resolvConf, append([]string{name}, args...)...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// curl reports curl's cumulative marks turned into the contract's phases
// (testkit.CurlPhases): dns = namelookup, connect = connect − namelookup, tls =
// appconnect − connect, ttfb = starttransfer − pretransfer, transfer =
// total − starttransfer.
func (e *accuracyEnv) curl(ctx context.Context, url string, _ bool) (map[string]time.Duration, error) {
	out, err := e.inResolverNS(ctx, "curl", "-4", "-s", "-o", "/dev/null", "--http1.1", "--cacert", e.caFile, "-w", testkit.CurlFormat, url).Output()
	if err != nil {
		return nil, fmt.Errorf("curl: %w", err)
	}
	return testkit.CurlPhases(out)
}

// startBlackbox runs prometheus-blackbox-exporter (Debian) in the resolver
// namespace, when installed, and returns a measure function that asks it
// for one probe and reads probe_http_duration_seconds by phase.
func (e *accuracyEnv) startBlackbox(b *testing.B) func(context.Context, string, bool) (map[string]time.Duration, error) {
	bin, err := exec.LookPath("prometheus-blackbox-exporter")
	if err != nil {
		b.Fatalf("prometheus-blackbox-exporter not found: run scripts/deps.sh")
	}
	cfg := filepath.Join(e.dir, "blackbox.yml")
	module := testkit.BlackboxConfig(testkit.BlackboxModule{Name: "https", Timeout: 5 * time.Second, CAFile: e.caFile, DisableHTTP2: true})
	if err := os.WriteFile(cfg, module, 0o644); err != nil {
		b.Fatal(err)
	}
	addr := testkit.FreeLoopbackAddr(b)
	cmd := e.inResolverNS(context.Background(), bin, "--config.file="+cfg, "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := testkit.WaitHTTP(context.Background(), "http://"+addr+"/-/healthy", 10*time.Second); err != nil {
		b.Fatalf("blackbox exporter: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	return func(ctx context.Context, target string, _ bool) (map[string]time.Duration, error) {
		m, err := testkit.BlackboxProbe(ctx, client, "http://"+addr, "https", target)
		if err != nil {
			return nil, err
		}
		return testkit.BlackboxPhases(m), nil
	}
}
