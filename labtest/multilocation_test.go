package labtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

// The lab's names and addresses. 10.214.0.0/24 exists only inside the
// namespaces the test makes (lab.DelayNet); nothing routes it anywhere else.
const (
	siteHost        = "shop.lab.edgeprobe.test"                // the site: resolves to the edge
	albHost         = "alb-1.eu-west-1.elb.lab.edgeprobe.test" // the origin's load balancer
	pop             = "LAB50-P1"                               // the edge's X-Amz-Cf-Pop
	prefix          = "10.214.0.0/24"
	originIP        = "10.214.0.10"
	edgeIP          = "10.214.0.20"
	dnsIP           = "10.214.0.53"
	metrics         = "127.0.0.1:9470"  // each agent's, inside its namespace
	bbListen        = "127.0.0.1:9115"  // each blackbox exporter's, inside
	originAdm       = "127.0.0.1:8082"  // the origin app's admin port, inside
	edgeOK          = "127.0.0.1:8081"  // nginx's readiness port, inside
	pageArgs        = "?fb=10ms&tx=5ms" // the origin's wait before the first byte and mid-body
	siteURL         = "https://" + siteHost + "/" + pageArgs
	originTo        = albHost + ":443"                                      // the origin role's connect_to
	backbone        = 3 * time.Millisecond                                  // edge ↔ origin, one way
	window          = 24 * time.Second                                      // how long the agents probe
	peerRuns        = 8                                                     // curl and blackbox probes per location and role
	peerWindow      = 15 * time.Second                                      // at most, for all of them
	tolerate        = time.Millisecond                                      // |median − truth| allowed per phase
	queryDashboards = `count(count by (location) (edgeprobe_probes_total))` // the dashboards' location variable, in short
)

// location is one client namespace and its one-way delays.
type location struct {
	name         string
	addr         string
	origin, edge time.Duration // one way to the origin (the ALB) and to the edge
	resolver     time.Duration // one way to the DNS server
	// interval is the agent's: a little different per location, because
	// the scheduler fires a job at the same wall-clock instants everywhere
	// (its offset hashes target and role), and here all three agents share
	// two cores and one nginx worker, where lockstep probes would queue
	// behind each other's handshakes.
	interval       time.Duration
	host           *lab.Host
	relay, bbRelay *lab.Relay
	agent          *testkit.Proc
	jsonl, config  string
	resolvConf     string
	// base is the zero-delay location: no agent, but `probe check`, curl
	// and the blackbox exporter measure there what each phase costs with
	// nothing injected (TLS crypto, the servers' and the line's own work),
	// which is subtracted before holding a tool against the injected delays.
	base bool
}

func locations() []*location {
	return []*location{
		{name: "base", addr: "10.214.0.100", base: true},
		{name: "loc-a", addr: "10.214.0.101", origin: 5 * time.Millisecond, edge: 1 * time.Millisecond, resolver: 1 * time.Millisecond, interval: 400 * time.Millisecond},
		{name: "loc-b", addr: "10.214.0.102", origin: 20 * time.Millisecond, edge: 2 * time.Millisecond, resolver: 2 * time.Millisecond, interval: 430 * time.Millisecond},
		{name: "loc-c", addr: "10.214.0.103", origin: 40 * time.Millisecond, edge: 3 * time.Millisecond, resolver: 3 * time.Millisecond, interval: 470 * time.Millisecond},
	}
}

var phases = []string{"dns", "connect", "tls", "ttfb", "transfer", "total", "first_byte"}

// checked are the phases the delay line (and the origin's waits) define:
// total and first_byte are their sums, reported but not asserted twice.
var checked = []string{"dns", "connect", "tls", "ttfb", "transfer"}

// TestMultiLocation builds the lab, lets three agents probe the site both
// ways (cdn: through the edge; origin: straight to the ALB) for a while,
// runs curl and the blackbox exporter in each client namespace on the same
// paths, and checks: every phase of edgeprobe within 1 ms of what the delay
// line held (median), the CDN way faster in TLS and first byte by the RTT
// difference, and Prometheus seeing three locations. It logs the accuracy
// table of docs/accuracy-lab.md.
func TestMultiLocation(t *testing.T) {
	lab.RequireRoot(t, "the multi-location lab (network namespaces, TUN devices, nginx and agents inside them)")
	// Shared machine: the lab's servers, delay line and probes go first, so
	// other work on the cores does not pass for network delay.
	testkit.Prioritize(t, -20)
	for _, bin := range []string{"nginx", "curl", "prometheus", "prometheus-blackbox-exporter", "nsenter", "unshare", "ip", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: run scripts/deps.sh (as root) first", bin)
		}
	}
	began := time.Now()
	dir := t.TempDir()
	probeBin := build(t, dir, "probe", "github.com/edgeprobe/edgeprobe/cmd/probe")
	originBin := build(t, dir, "origin", "./testdata/origin")
	built := time.Since(began)

	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(siteHost)
	if err != nil {
		t.Fatal(err)
	}

	// The network: hosts, then links with their one-way delays.
	dn := lab.NewDelayNet(t, netip.MustParsePrefix(prefix))
	origin := dn.AddHost("ep-origin", netip.MustParseAddr(originIP))
	edge := dn.AddHost("ep-edge", netip.MustParseAddr(edgeIP))
	resolver := dn.AddHost("ep-dns", netip.MustParseAddr(dnsIP))
	locs := locations()
	for _, l := range locs {
		l.host = dn.AddHost("ep-"+l.name, netip.MustParseAddr(l.addr))
		dn.Link(l.host, origin, l.origin)
		dn.Link(l.host, edge, l.edge)
		dn.Link(l.host, resolver, l.resolver)
	}
	dn.Link(edge, origin, backbone)
	dn.Start()

	// The DNS server: the site is the edge (as CloudFront's name), the ALB
	// name is the origin.
	var dns *lab.DNSServer
	if err := resolver.NS.Do(func() (err error) {
		dns, err = lab.NewDNSServer(dnsIP+":53", map[string][]netip.Addr{
			siteHost: {netip.MustParseAddr(edgeIP)},
			albHost:  {netip.MustParseAddr(originIP)},
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)

	// The origin: the site's certificate (the ALB carries it, as behind
	// CloudFront), waiting fb before the first byte and tx mid-body.
	certFile, keyFile := writeKeyPair(t, dir, cert)
	page := startOrigin(t, dir, origin, originBin, certFile, keyFile)
	startEdge(t, dir, edge, caFile, certFile, keyFile)
	warmEdge(t, locs[0].host, ca)
	page.reset(t) // the warm-up's waits are no probe's

	// The agents, one per location, and Prometheus scraping all three.
	var targets []string
	for _, l := range locs {
		if l.base {
			continue
		}
		l.jsonl = filepath.Join(dir, "samples-"+l.name+".jsonl")
		l.config = filepath.Join(dir, "edgeprobe-"+l.name+".yml")
		if err := os.WriteFile(l.config, agentConfig(l.interval, caFile, l.jsonl), 0o644); err != nil {
			t.Fatal(err)
		}
		l.relay = lab.NewRelay(t, l.host.NS, metrics)
		args := append(l.host.NS.Args()[1:], probeBin, "run", "--config", l.config, "--location", l.name, "--log-level", "warn")
		l.agent = testkit.StartProc(t, dir, "http://"+l.relay.Addr()+"/ready", "nsenter", args...)
		targets = append(targets, l.relay.Addr())
	}
	prom := testkit.StartPrometheus(t, testkit.PrometheusOptions{ScrapeTargets: targets, ScrapeInterval: time.Second})
	agentsUp := time.Now()

	// The base: `probe check` at the zero-delay location, while the agents
	// run (same load on the machine).
	baseJSONL := filepath.Join(dir, "samples-base.jsonl")
	baseDone := make(chan error, 1)
	go func() { baseDone <- checkBase(locs[0], probeBin, caFile, baseJSONL) }()
	if err := <-baseDone; err != nil {
		t.Error(err)
	}
	if rest := window - time.Since(agentsUp); rest > 0 {
		time.Sleep(rest)
	}

	// The dashboards' location variable sees three locations.
	var seen float64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		v, err := testkit.PromQuery(ctx, prom, queryDashboards)
		if err == nil && len(v) == 1 {
			if seen = v[0].Value; seen == 3 {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if seen != 3 {
		t.Errorf("%s = %v, want 3", queryDashboards, seen)
	}
	tlsByLoc, _ := testkit.PromQuery(context.Background(), prom,
		`histogram_quantile(0.5, sum by (location, role, le) (rate(edgeprobe_phase_duration_seconds_bucket{phase="tls"}[30s])))`)

	// Stop the agents (they flush their JSONL) and read what they measured.
	for _, l := range locs {
		if !l.base {
			l.agent.Stop()
		}
	}
	samples := map[string]map[string]map[string][]time.Duration{} // location → role → phase → samples
	for _, l := range locs {
		if l.base {
			samples[l.name] = readSamples(t, baseJSONL)
		} else {
			samples[l.name] = readSamples(t, l.jsonl)
		}
	}
	agentsDone := time.Now()

	// Then the peers, curl and the blackbox exporter, in each client
	// namespace and at the base: on their own, so their process start-ups
	// do not load the machine under the agents.
	peers := runPeers(t, dir, locs, caFile)
	peersDone := time.Now()

	fb, tx := page.waits(t)
	truth := map[string]map[string]time.Duration{}
	for _, l := range locs {
		truth[l.name] = injected(dn, l, origin, edge, resolver, medianOf(fb), medianOf(tx))
	}

	// A tool's error in a phase: how far its median is from the truth,
	// less how far it is at the zero-delay base (what the phase costs with
	// nothing injected: crypto, the servers' and the delay line's own work).
	results := map[string]map[string]map[string]map[string][]time.Duration{"edgeprobe": samples}
	for _, tool := range []string{"curl", "blackbox"} {
		results[tool] = map[string]map[string]map[string][]time.Duration{}
		for loc, byKey := range peers {
			results[tool][loc] = map[string]map[string][]time.Duration{}
			for _, role := range []string{"cdn", "origin"} {
				results[tool][loc][role] = byKey[tool+"/"+role]
			}
		}
	}
	errOf := func(tool, loc, role, p string) (median, off time.Duration, ok bool) {
		got, base := results[tool][loc][role][p], results[tool]["base"][role][p]
		if len(got) == 0 || len(base) == 0 {
			return 0, 0, false
		}
		m := medianOf(got)
		return m, (m - truth[loc][role+"/"+p]) - (medianOf(base) - truth["base"][role+"/"+p]), true
	}
	table := accuracyTable(locs, truth, results, errOf)
	t.Logf("multi-location lab: build %v, set-up %v, %d agents for %v, peers (%d runs each) %v, whole test %v; delay line forwarded %d packets, dropped %d\n%s",
		built.Round(time.Millisecond), agentsUp.Sub(began.Add(built)).Round(time.Millisecond), len(locs)-1, agentsDone.Sub(agentsUp).Round(time.Millisecond),
		peerRuns, peersDone.Sub(agentsDone).Round(time.Millisecond), time.Since(began).Round(time.Millisecond), dn.Forwarded(), dn.Dropped(), table)
	for _, s := range tlsByLoc {
		t.Logf("prometheus: median tls %s/%s = %.1f ms (from histogram buckets)", s.Metric["location"], s.Metric["role"], s.Value*1000)
	}

	// Every phase within 1 ms of the truth, at the median.
	for _, l := range locs {
		for _, role := range []string{"cdn", "origin"} {
			if n := len(samples[l.name][role]["total"]); n < 10 {
				t.Errorf("%s %s: %d samples, want at least 10", l.name, role, n)
				continue
			}
			if l.base {
				continue
			}
			for _, p := range checked {
				m, off, _ := errOf("edgeprobe", l.name, role, p)
				if off < -tolerate || off > tolerate {
					t.Errorf("%s %s %s: median %.3f ms, injected %.3f ms: off by %+.3f ms beyond the base's (> %v)", l.name, role, p, ms(m), ms(truth[l.name][role+"/"+p]), ms(off), tolerate)
				}
			}
		}
		if l.base {
			continue
		}
		// The CDN way wins TLS and first byte by the RTT difference.
		// Medians as measured: "about" allows each way's own cost (nginx
		// and the Go server differ a little) within 2 ms.
		for _, p := range []string{"tls", "first_byte"} {
			want := truth[l.name]["origin/"+p] - truth[l.name]["cdn/"+p]
			got := medianOf(samples[l.name]["origin"][p]) - medianOf(samples[l.name]["cdn"][p])
			if got <= 0 || got-want < -2*tolerate || got-want > 2*tolerate {
				t.Errorf("%s: origin − cdn %s = %.3f ms, want %.3f ms (the RTT difference the line injected) within %v", l.name, p, ms(got), ms(want), 2*tolerate)
			} else {
				t.Logf("%s: the CDN way is faster in %s by %.1f ms (injected difference %.1f ms)", l.name, p, ms(got), ms(want))
			}
		}
	}
}

// runPeers measures every location with curl and the blackbox exporter,
// both ways, peerRuns times each (bounded by peerWindow), all locations at
// once. It returns location → tool/role → phase → samples.
func runPeers(t *testing.T, dir string, locs []*location, caFile string) map[string]map[string]map[string][]time.Duration {
	t.Helper()
	peers := map[string]map[string]map[string][]time.Duration{}
	var wg sync.WaitGroup
	for _, l := range locs {
		l.resolvConf = filepath.Join(dir, "resolv-"+l.name+".conf")
		if err := os.WriteFile(l.resolvConf, []byte("nameserver "+dnsIP+"\noptions timeout:1 attempts:2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		tools := map[string]func(context.Context, string) (map[string]time.Duration, error){
			"curl": func(ctx context.Context, role string) (map[string]time.Duration, error) {
				return curl(ctx, l, caFile, role)
			},
			"blackbox": startBlackbox(t, dir, l, caFile),
		}
		mine := map[string]map[string][]time.Duration{}
		peers[l.name] = mine
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), peerWindow)
			defer cancel()
			for i := 0; i < peerRuns && ctx.Err() == nil; i++ {
				for _, role := range []string{"cdn", "origin"} {
					for _, tool := range []string{"curl", "blackbox"} {
						got, err := tools[tool](ctx, role)
						if err != nil {
							if ctx.Err() == nil {
								t.Errorf("%s %s %s: %v", l.name, tool, role, err)
							}
							continue
						}
						key := tool + "/" + role
						if mine[key] == nil {
							mine[key] = map[string][]time.Duration{}
						}
						for p, d := range got {
							mine[key][p] = append(mine[key][p], d)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	return peers
}

// origin is the origin app's process (testdata/origin), reached through a
// relay to its admin port.
type originApp struct{ admin string }

// startOrigin runs the origin app in its namespace: HTTPS on originIP:443.
func startOrigin(t *testing.T, dir string, origin *lab.Host, bin, certFile, keyFile string) *originApp {
	t.Helper()
	relay := lab.NewRelay(t, origin.NS, originAdm)
	args := append(origin.NS.Args()[1:], bin, "-listen", originIP+":443", "-admin", originAdm, "-cert", certFile, "-key", keyFile)
	testkit.StartProc(t, dir, "http://"+relay.Addr()+"/ready", "nsenter", args...)
	return &originApp{admin: "http://" + relay.Addr()}
}

// waits returns what the origin really slept before the first byte and
// mid-body, request by request.
func (o *originApp) waits(t *testing.T) (fb, tx []time.Duration) {
	t.Helper()
	resp, err := http.Get(o.admin + "/waits")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w map[string][]time.Duration
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		t.Fatal(err)
	}
	return w["fb"], w["tx"]
}

func (o *originApp) reset(t *testing.T) {
	t.Helper()
	resp, err := http.Post(o.admin+"/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// writeKeyPair writes the site's certificate and key as PEM files.
func writeKeyPair(t *testing.T, dir string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// injected is the truth per role/phase for one location: the delay line's
// median holds (each direction) and the origin's median waits.
func injected(dn *lab.DelayNet, l *location, origin, edge, resolver *lab.Host, fb, tx time.Duration) map[string]time.Duration {
	rtt := func(a, b *lab.Host) time.Duration { return medianOf(dn.Held(a, b)) + medianOf(dn.Held(b, a)) }
	toOrigin, toEdge, toDNS, edgeOrigin := rtt(l.host, origin), rtt(l.host, edge), rtt(l.host, resolver), rtt(edge, origin)
	m := map[string]time.Duration{}
	for role, p := range map[string]struct{ path, ttfb time.Duration }{
		"origin": {toOrigin, toOrigin + fb},
		"cdn":    {toEdge, toEdge + edgeOrigin + fb}, // TLS ends at the edge; the request goes on over the warm backbone
	} {
		m[role+"/dns"] = toDNS
		m[role+"/connect"] = p.path // SYN → SYN-ACK
		m[role+"/tls"] = p.path     // TLS 1.3: one round trip
		m[role+"/ttfb"] = p.ttfb
		m[role+"/transfer"] = tx
		m[role+"/first_byte"] = toDNS + 2*p.path + p.ttfb
		m[role+"/total"] = m[role+"/first_byte"] + tx
	}
	return m
}

// accuracyTable is the table of docs/accuracy-lab.md, in Markdown: per
// location, role and phase the injected truth and, per tool, its median and
// its error (median − truth, less the same at the zero-delay base). The
// base rows show each tool's own cost with nothing injected (median − the
// line's holds there, tens of microseconds).
func accuracyTable(locs []*location, truth map[string]map[string]time.Duration, results map[string]map[string]map[string]map[string][]time.Duration,
	errOf func(tool, loc, role, p string) (time.Duration, time.Duration, bool)) string {
	tools := []string{"edgeprobe", "curl", "blackbox"}
	var b strings.Builder
	b.WriteString("| location | role | phase | injected ms | edgeprobe ms | error | curl ms | error | blackbox ms | error |\n")
	b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, l := range locs {
		for _, role := range []string{"cdn", "origin"} {
			for _, p := range phases {
				want := truth[l.name][role+"/"+p]
				fmt.Fprintf(&b, "| %s | %s | %s | %.2f |", l.name, role, p, ms(want))
				for _, tool := range tools {
					ds := results[tool][l.name][role][p]
					switch m, off, ok := errOf(tool, l.name, role, p); {
					case len(ds) == 0 || !ok:
						b.WriteString(" – | – |")
					case l.base:
						fmt.Fprintf(&b, " %.2f | own cost %+.2f |", ms(m), ms(m-want))
					default:
						fmt.Fprintf(&b, " %.2f | %+.2f |", ms(m), ms(off))
					}
				}
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

// checkBase runs `probe check` at the zero-delay base, both ways (the same
// measurement code as the agents, in the same binary), into jsonl.
func checkBase(l *location, probeBin, caFile, jsonl string) error {
	f, err := os.Create(jsonl)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	cmd := l.host.NS.Command(ctx, probeBin, "check", "--count", "60", "--interval", "300ms", "--format", "jsonl",
		"--location", l.name, "--ca-file", caFile, "--dns-server", dnsIP+":53", "--ip-version", "ip4",
		"--connect-to", originTo, siteURL)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("probe check at the base: %w: %s", err, stderr.String())
	}
	return nil
}

// agentConfig is one location's edgeprobe.yml: the site both ways, HTTP/1.1
// and IPv4 as the peers probe it, the lab's resolver timed in dns.
func agentConfig(interval time.Duration, caFile, jsonl string) []byte {
	q := strconv.Quote
	return fmt.Appendf(nil, `# multi-location lab agent (labtest)
defaults:
  interval: %s
  timeout: %s
  ip_version: ip4
  dns_server: %s
targets:
  - name: shop
    url: %s
    roles:
      cdn: {}
      origin: {connect_to: %s}
    expect: {status: [200]}
    http2: false
    ca_file: %s
exporters:
  prometheus: {listen: %s}
  jsonl: {path: %s}
`, interval, interval, q(dnsIP+":53"), q(siteURL), q(originTo), q(caFile), q(metrics), q(jsonl))
}

// build builds a command without the race detector (probe as users run
// it; the origin app so that -race does not slow its handshakes).
func build(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startEdge runs nginx in the edge namespace as a CloudFront-like edge for
// dynamic content (CachingDisabled): TLS ends here with the site's
// certificate, requests go on to the ALB over a pool of warm keep-alive
// connections, the body streams through unbuffered, and CloudFront's
// X-Cache / X-Amz-Cf-Pop headers mark the answer.
func startEdge(t *testing.T, dir string, edge *lab.Host, caFile, certFile, keyFile string) {
	t.Helper()
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(ndir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  upstream alb {
    server %[2]s:443;
    keepalive 32;
    keepalive_timeout 120s;
  }
  server {
    listen %[3]s:443 ssl;
    server_name %[4]s;
    ssl_certificate %[7]s;
    ssl_certificate_key %[8]s;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass https://alb;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_ssl_server_name on;
      proxy_ssl_name %[4]s;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate %[9]s;
      proxy_ssl_session_reuse on;
      proxy_buffering off;
      add_header X-Cache "Miss from cloudfront" always;
      add_header X-Amz-Cf-Pop %[5]s always;
    }
  }
  server {
    listen %[6]s;
    location = /ready { return 200 "ready\n"; }
  }
}
`, ndir, originIP, edgeIP, siteHost, pop, edgeOK, certFile, keyFile, caFile)
	cfg := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ready := lab.NewRelay(t, edge.NS, edgeOK)
	args := append(edge.NS.Args()[1:], "nginx", "-p", ndir, "-e", filepath.Join(ndir, "error.log"), "-c", cfg)
	testkit.StartProc(t, ndir, "http://"+ready.Addr()+"/ready", "nsenter", args...)
}

// warmEdge opens the edge's pool to the ALB (a POP keeps warm connections to
// a busy origin): a few rounds of concurrent requests from a client.
func warmEdge(t *testing.T, from *lab.Host, ca *lab.CA) {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return from.NS.DialContext(ctx, network, edgeIP+":443")
		},
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), ServerName: siteHost},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get("https://" + siteHost + "/?fb=20ms")
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Cf-Pop") != pop {
					errs <- fmt.Errorf("edge answered %s, pop %q", resp.Status, resp.Header.Get("X-Amz-Cf-Pop"))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("warming the edge: %v", err)
		}
	}
}

// inResolverNS returns the argv that runs a command inside l's namespace
// with l's resolv.conf (a private mount namespace: nothing outside changes).
func inResolverNS(l *location, name string, args ...string) []string {
	return append(l.host.NS.Args(), testkit.WithResolvConf(l.resolvConf, append([]string{name}, args...)...)...)
}

// curl measures one request the way the agent's role does, in l's namespace.
// Its cumulative marks become the contract's phases as in bench
// (testkit.CurlPhases): dns = namelookup, connect = connect − namelookup, tls =
// appconnect − connect, ttfb = starttransfer − pretransfer, transfer =
// total − starttransfer.
func curl(ctx context.Context, l *location, caFile, role string) (map[string]time.Duration, error) {
	args := []string{"-4", "-s", "-S", "-o", "/dev/null", "--http1.1", "--cacert", caFile, "--max-time", "5", "-w", testkit.CurlFormat}
	if role == "origin" {
		args = append(args, "--connect-to", siteHost+":443:"+originTo)
	}
	argv := inResolverNS(l, "curl", append(args, siteURL)...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		return nil, fmt.Errorf("curl: %w", err)
	}
	return testkit.CurlPhases(out)
}

// startBlackbox runs prometheus-blackbox-exporter in l's namespace (with its
// resolv.conf) and returns a function that asks it for one probe of a role.
// Module origin dials the ALB's name and keeps the site's name for SNI and
// Host, as the agent's connect_to does.
func startBlackbox(t *testing.T, dir string, l *location, caFile string) func(context.Context, string) (map[string]time.Duration, error) {
	t.Helper()
	cfg := filepath.Join(dir, "blackbox-"+l.name+".yml")
	modules := testkit.BlackboxConfig(
		testkit.BlackboxModule{Name: "cdn", Timeout: 5 * time.Second, CAFile: caFile, DisableHTTP2: true},
		testkit.BlackboxModule{Name: "origin", Timeout: 5 * time.Second, CAFile: caFile, DisableHTTP2: true, ServerName: siteHost},
	)
	if err := os.WriteFile(cfg, modules, 0o644); err != nil {
		t.Fatal(err)
	}
	l.bbRelay = lab.NewRelay(t, l.host.NS, bbListen)
	argv := inResolverNS(l, "prometheus-blackbox-exporter", "--config.file="+cfg, "--web.listen-address="+bbListen, "--log.level=warn")
	testkit.StartProc(t, dir, "http://"+l.bbRelay.Addr()+"/-/healthy", argv[0], argv[1:]...)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return func(ctx context.Context, role string) (map[string]time.Duration, error) {
		target := siteURL
		if role == "origin" {
			target = "https://" + originTo + "/" + pageArgs
		}
		m, err := testkit.BlackboxProbe(ctx, client, "http://"+l.bbRelay.Addr(), role, target)
		if err != nil {
			return nil, err
		}
		// The exporter reports no first_byte: the sum of the phases before it.
		out := testkit.BlackboxPhases(m)
		out["first_byte"] = out["dns"] + out["connect"] + out["tls"] + out["ttfb"]
		return out, nil
	}
}

// readSamples reads an agent's JSONL: successful samples by role and phase.
func readSamples(t *testing.T, path string) map[string]map[string][]time.Duration {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]time.Duration{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	failed := 0
	for sc.Scan() {
		var s struct {
			Role      string           `json:"role"`
			Error     *json.RawMessage `json:"error"`
			DNS       float64          `json:"dns_seconds"`
			Connect   float64          `json:"connect_seconds"`
			TLS       float64          `json:"tls_seconds"`
			TTFB      float64          `json:"ttfb_seconds"`
			Transfer  float64          `json:"transfer_seconds"`
			Total     float64          `json:"total_seconds"`
			FirstByte float64          `json:"first_byte_seconds"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s.Error != nil && string(*s.Error) != "null" {
			failed++
			if failed <= 3 {
				t.Logf("%s: failed sample: %s", filepath.Base(path), *s.Error)
			}
			continue
		}
		if out[s.Role] == nil {
			out[s.Role] = map[string][]time.Duration{}
		}
		for p, v := range map[string]float64{"dns": s.DNS, "connect": s.Connect, "tls": s.TLS, "ttfb": s.TTFB, "transfer": s.Transfer, "total": s.Total, "first_byte": s.FirstByte} {
			out[s.Role][p] = append(out[s.Role][p], time.Duration(v*float64(time.Second)))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if failed > 0 {
		t.Errorf("%s: %d failed samples", filepath.Base(path), failed)
	}
	return out
}

func medianOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
