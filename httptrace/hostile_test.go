package httptrace_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// TestHostileTargets: every broken or hostile target gives a classified
// failure within the timeout, and the process stays healthy (TestMain
// checks for leaked goroutines afterwards).
func TestHostileTargets(t *testing.T) {
	const timeout = 700 * time.Millisecond
	s := newSite(t, 0)
	port := func(srv *lab.HTTPServer) string { return strconv.Itoa(int(srv.Addr().Port())) }
	serve := func(h http.Handler, tlsOn bool) *lab.HTTPServer {
		opts := lab.ServerOptions{Handler: h}
		if tlsOn {
			cert, err := s.ca.Issue(siteName)
			if err != nil {
				t.Fatal(err)
			}
			opts.TLS = &cert
		}
		srv, err := lab.NewHTTPServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		return srv
	}

	refused, err := lab.NewRefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	hole, err := lab.NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hole.Close)
	garbage, err := lab.NewGarbageServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(garbage.Close)
	expired, _ := s.ca.IssueExpired(siteName)
	expiredSrv, err := lab.NewHTTPServer(lab.ServerOptions{TLS: &expired, Handler: lab.DelayHandler(0, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(expiredSrv.Close)
	otherName, _ := s.ca.Issue("other.test")
	wrongName, err := lab.NewHTTPServer(lab.ServerOptions{TLS: &otherName, Handler: lab.DelayHandler(0, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wrongName.Close)
	stranger, _ := lab.NewCA()
	strangerCert, _ := stranger.Issue(siteName)
	untrusted, err := lab.NewHTTPServer(lab.ServerOptions{TLS: &strangerCert, Handler: lab.DelayHandler(0, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(untrusted.Close)

	drip := serve(lab.Drip(200*time.Millisecond, 100), true)
	huge := serve(lab.HugeBody(5<<30), true)
	reset := serve(lab.ResetMidBody(4096), true)
	loop := serve(lab.RedirectLoop(), true)
	slowFirstByte := serve(lab.DelayHandler(5*time.Second, 0, []byte("late")), true)
	plain := serve(lab.DelayHandler(0, 0, []byte("plain")), false)

	hostPort := func(addr string) string { return strings.Replace(addr, "127.0.0.1", siteName, 1) }
	cases := []struct {
		name    string
		url     string
		phase   string
		message []string
		opts    func(*httptrace.Options)
	}{
		{name: "connection refused", url: "https://" + hostPort(refused) + "/", phase: httptrace.ErrConnect, message: []string{"connection refused", "nothing listens"}},
		{name: "never answers", url: "https://" + hostPort(hole.Addr()) + "/", phase: httptrace.ErrTimeout, message: []string{"TLS handshake"}},
		{name: "never answers http", url: "http://" + hostPort(hole.Addr()) + "/", phase: httptrace.ErrTimeout, message: []string{"first byte"}},
		{name: "slow first byte", url: "https://" + siteName + ":" + port(slowFirstByte) + "/", phase: httptrace.ErrTimeout, message: []string{"ttfb"}},
		{name: "drips a byte at a time", url: "https://" + siteName + ":" + port(drip) + "/", phase: httptrace.ErrTimeout, message: []string{"reading the body", "body bytes"}},
		{name: "5 GB body", url: "https://" + siteName + ":" + port(huge) + "/", phase: httptrace.ErrHTTP, message: []string{"read limit", "5368709120"}, opts: func(o *httptrace.Options) { o.BodyLimit = 1 << 20 }},
		{name: "reset mid-body", url: "https://" + siteName + ":" + port(reset) + "/", phase: httptrace.ErrHTTP, message: []string{"reading the body"}},
		{name: "expired certificate", url: "https://" + siteName + ":" + strconv.Itoa(int(expiredSrv.Addr().Port())) + "/", phase: httptrace.ErrTLS, message: []string{"expired", "renew"}},
		{name: "wrong-name certificate", url: "https://" + siteName + ":" + strconv.Itoa(int(wrongName.Addr().Port())) + "/", phase: httptrace.ErrTLS, message: []string{"valid for other.test, not " + siteName}},
		{name: "unknown authority", url: "https://" + siteName + ":" + strconv.Itoa(int(untrusted.Addr().Port())) + "/", phase: httptrace.ErrTLS, message: []string{"unknown authority", "ca_file"}},
		{name: "redirect loop", url: "https://" + siteName + ":" + port(loop) + "/loop/a", phase: httptrace.ErrHTTP, message: []string{"redirect loop", "/loop/a", "/loop/b"}},
		{name: "nxdomain", url: "https://missing.test/", phase: httptrace.ErrDNS, message: []string{"no such host", "missing.test"}},
		{name: "not http", url: "http://" + hostPort(garbage.Addr()) + "/", phase: httptrace.ErrHTTP, message: []string{"not HTTP"}},
		{name: "https to a plain port", url: "https://" + siteName + ":" + port(plain) + "/", phase: httptrace.ErrTLS, message: []string{"does not speak TLS"}},
		{name: "dns server down", url: "https://" + siteName + "/", phase: httptrace.ErrDNS, opts: func(o *httptrace.Options) { o.DNSServer = refused }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := s.opts()
			o.Timeout = timeout
			if c.opts != nil {
				c.opts(&o)
			}
			start := time.Now()
			r := httptrace.Probe(context.Background(), c.url, o)
			took := time.Since(start)
			if took > timeout+time.Second { // slack for a loaded CI machine; a hang would take minutes
				t.Errorf("took %v, timeout was %v", took, timeout)
			}
			if r.Err == nil {
				t.Fatalf("no error; status %d", r.Status)
			}
			if r.Err.Phase != c.phase {
				t.Errorf("phase %q (%s), want %q", r.Err.Phase, r.Err.Message, c.phase)
			}
			for _, m := range c.message {
				if !strings.Contains(r.Err.Message, m) {
					t.Errorf("message %q lacks %q", r.Err.Message, m)
				}
			}
		})
	}
}

// TestPinProbesEachAddress: a name with several addresses is probed at each
// one, and the DNS phase is still measured.
func TestPinProbesEachAddress(t *testing.T) {
	s := newSite(t, 0)
	s.dns.Set("multi.test", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"))
	cert, _ := s.ca.Issue("multi.test")
	srv, err := lab.NewHTTPServer(lab.ServerOptions{Addr: "0.0.0.0:0", TLS: &cert, Handler: lab.DelayHandler(0, 0, []byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u := "https://multi.test:" + strconv.Itoa(int(srv.Addr().Port())) + "/"
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		o := s.opts()
		o.Pin = netip.MustParseAddr(ip)
		r := httptrace.Probe(context.Background(), u, o)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if !strings.HasPrefix(r.RemoteAddr, ip+":") || r.Timings.DNS <= 0 {
			t.Errorf("pinned %s: remote %s dns %v", ip, r.RemoteAddr, r.Timings.DNS)
		}
	}
	// An answer that has moved on does not stop a pinned probe.
	o := s.opts()
	o.Pin = netip.MustParseAddr("127.0.0.9")
	if r := httptrace.Probe(context.Background(), u, o); r.Err != nil || !strings.HasPrefix(r.RemoteAddr, "127.0.0.9:") || r.Timings.DNS <= 0 {
		t.Errorf("pin to an address the answer lacks: err %v remote %s dns %v", r.Err, r.RemoteAddr, r.Timings.DNS)
	}
}

// TestAddressesLabelsStably: labels follow the sorted, deduplicated answer,
// at most perFamily of each family, so a rotating answer keeps its labels.
func TestAddressesLabelsStably(t *testing.T) {
	s := newSite(t, 0)
	var in []netip.Addr
	for _, a := range []string{"10.0.0.9", "2001:db8::2", "10.0.0.1", "10.0.0.5", "10.0.0.1", "10.0.0.3", "10.0.0.7", "2001:db8::1"} {
		in = append(in, netip.MustParseAddr(a))
	}
	s.dns.Set("many.test", in...)
	o := s.opts()
	o.IPVersion = httptrace.IPAny
	addrs, err := httptrace.Addresses(context.Background(), "https://many.test/", o, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.Label+"="+a.IP.String())
	}
	want := []string{"ipv4-0=10.0.0.1", "ipv4-1=10.0.0.3", "ipv4-2=10.0.0.5", "ipv4-3=10.0.0.7", "ipv6-0=2001:db8::1", "ipv6-1=2001:db8::2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
