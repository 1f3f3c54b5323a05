package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Timing checks. Noise (other processes, the race detector) only ever adds
// time: on a shared two-core machine single samples were seen hundreds of
// milliseconds late. So a timing is sampled until one sample lands within
// slack of the injected delay (at most maxRuns samples or about budget of
// sampling), and every span starts before the client acts, so no sample may
// ever be shorter than the delay.
const (
	slack   = 20 * time.Millisecond
	maxRuns = 8
	budget  = time.Second
)

// noLeaks checks, after the test's own cleanups (registered later, so run
// earlier), that nothing the test started is still running.
func noLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// measure checks f's spans against the injected delay want; base is what
// the span costs without the delay (a TLS handshake's crypto: ~2 ms, ~10 ms
// under -race).
func measure(t *testing.T, what string, want, base time.Duration, f func() time.Duration) {
	t.Helper()
	var ds []time.Duration
	for begin := time.Now(); len(ds) < maxRuns && time.Since(begin) < budget; {
		d := f()
		ds = append(ds, d)
		if d < want {
			t.Errorf("%s = %v, shorter than the injected %v", what, d, want)
			return
		}
		if d < want+base+slack {
			t.Logf("%s: %v (injected %v, %v without it)", what, ds, want, base)
			return
		}
	}
	t.Errorf("%s: no sample within [%v, %v): %v", what, want, want+base+slack, ds)
}

// fastestHandshake is the quickest of a few TLS handshakes with addr.
func fastestHandshake(t *testing.T, addr string, cfg *tls.Config) time.Duration {
	t.Helper()
	best := time.Hour
	for range 3 {
		d, _ := handshakeTime(t, addr, cfg)
		best = min(best, d)
	}
	return best
}

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newServer(t *testing.T, opts ServerOptions) *HTTPServer {
	t.Helper()
	s, err := NewHTTPServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// newClient returns a client trusting pool whose idle connections are closed
// at cleanup, so goleak sees no transport goroutines.
func newClient(t *testing.T, pool *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestCA(t *testing.T) {
	noLeaks(t)
	ca := newCA(t)
	cert, err := ca.Issue("lab.test", "127.0.0.1", "[::1]")
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if leaf.NotAfter.Before(time.Now().Add(89*24*time.Hour)) || leaf.NotBefore.After(time.Now().Add(-59*time.Minute)) {
		t.Errorf("validity %v..%v, want now-1h..now+90d", leaf.NotBefore, leaf.NotAfter)
	}
	if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 2 {
		t.Errorf("SANs: DNS %v IP %v, want 1 DNS name and 2 IPs", leaf.DNSNames, leaf.IPAddresses)
	}
	for _, name := range []string{"lab.test", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "lab.test"}); err == nil {
		t.Error("leaf verified without the lab root")
	}

	expired, err := ca.IssueExpired("lab.test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = expired.Leaf.Verify(x509.VerifyOptions{DNSName: "lab.test", Roots: ca.Pool()})
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("expired leaf: err = %v, want x509.Expired", err)
	}

	path, err := ca.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || !bytes.Equal(block.Bytes, ca.Certificate().Raw) {
		t.Error("written PEM is not the root")
	}
}

func newDNS(t *testing.T, zone map[string][]netip.Addr) *DNSServer {
	t.Helper()
	s, err := NewDNSServer("127.0.0.1:0", zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func exchange(t *testing.T, net, server, name string, qtype uint16) (*dns.Msg, time.Duration) {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, rtt, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s %s: %v", net, name, dns.TypeToString[qtype], err)
	}
	return r, rtt
}

func TestDNSAnswers(t *testing.T) {
	noLeaks(t)
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	s := newDNS(t, map[string][]netip.Addr{
		"App.Lab.Test":     {v4, v6},
		"v4only.lab.test.": {netip.MustParseAddr("127.0.0.2")},
	})
	for _, network := range []string{"udp", "tcp"} {
		r, _ := exchange(t, network, s.Addr(), "app.LAB.test.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s A: rcode %s, %d answers", network, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		a, ok := r.Answer[0].(*dns.A)
		if !ok || !a.A.Equal(v4.AsSlice()) || a.Hdr.Ttl != 0 {
			t.Errorf("%s A answer %v, want 127.0.0.1 TTL 0", network, r.Answer[0])
		}
	}
	r, _ := exchange(t, "udp", s.Addr(), "app.lab.test.", dns.TypeAAAA)
	if aaaa, ok := r.Answer[0].(*dns.AAAA); len(r.Answer) != 1 || !ok || !aaaa.AAAA.Equal(v6.AsSlice()) {
		t.Errorf("AAAA answer %v, want ::1", r.Answer)
	}
	r, _ = exchange(t, "udp", s.Addr(), "v4only.lab.test.", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA of v4-only name: rcode %s, %d answers; want NOERROR, none", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	r, _ = exchange(t, "udp", s.Addr(), "nope.lab.test.", dns.TypeA)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	s.Set("new.lab.test", netip.MustParseAddr("127.0.0.9"))
	r, _ = exchange(t, "udp", s.Addr(), "new.lab.test.", dns.TypeA)
	if len(r.Answer) != 1 {
		t.Errorf("name added with Set: %d answers", len(r.Answer))
	}
	if got := s.Queries(); got != 6 {
		t.Errorf("Queries() = %d, want 6", got)
	}

	// Go's own resolver (A and AAAA in parallel) against it.
	addrs, err := s.Resolver().LookupNetIP(context.Background(), "ip", "app.lab.test")
	if err != nil || len(addrs) != 2 {
		t.Errorf("net.Resolver: %v, %v; want both addresses", addrs, err)
	}
	var dnsErr *net.DNSError
	if _, err := s.Resolver().LookupNetIP(context.Background(), "ip", "nope.lab.test"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("net.Resolver unknown name: err = %v, want not found", err)
	}
}

func TestDNSDelay(t *testing.T) {
	noLeaks(t)
	s := newDNS(t, map[string][]netip.Addr{"app.lab.test": {netip.MustParseAddr("127.0.0.1")}})
	const delay = 80 * time.Millisecond
	s.SetDelay(delay)
	for _, network := range []string{"udp", "tcp"} {
		measure(t, network+" answer", delay, 0, func() time.Duration {
			start := time.Now()
			exchange(t, network, s.Addr(), "app.lab.test.", dns.TypeA)
			return time.Since(start)
		})
	}

	// Concurrent queries wait side by side, not one after another.
	measure(t, "8 concurrent answers", delay, 0, func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				c := &dns.Client{Timeout: 2 * time.Second}
				m := new(dns.Msg)
				m.SetQuestion("app.lab.test.", dns.TypeA)
				if _, _, err := c.Exchange(m, s.Addr()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	})
}

func TestDNSCloseDuringDelay(t *testing.T) {
	noLeaks(t)
	s, err := NewDNSServer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDelay(time.Hour)
	errc := make(chan error, 1)
	go func() {
		c := &dns.Client{Timeout: 300 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion("x.lab.test.", dns.TypeA)
		_, _, err := c.Exchange(m, s.Addr())
		errc <- err
	}()
	for s.Queries() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Close took %v with a query waiting out its delay", d)
	}
	if err := <-errc; err == nil {
		t.Error("query answered after Close")
	}
}

// handshakeTime dials addr and times the TLS handshake alone.
func handshakeTime(t *testing.T, addr string, cfg *tls.Config) (time.Duration, tls.ConnectionState) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, cfg)
	start := time.Now()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start), c.ConnectionState()
}

func TestHTTPServerTLS(t *testing.T) {
	noLeaks(t)
	ca := newCA(t)
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 100 * time.Millisecond
	plain := newServer(t, ServerOptions{TLS: &cert})
	slow := newServer(t, ServerOptions{TLS: &cert, HandshakeDelay: delay, HTTP2: true})
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"h2", "http/1.1"}}

	_, st := handshakeTime(t, plain.Addr().String(), cfg)
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN without HTTP2 = %q, want http/1.1", st.NegotiatedProtocol)
	}
	_, st = handshakeTime(t, slow.Addr().String(), cfg)
	if st.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN with HTTP2 = %q, want h2", st.NegotiatedProtocol)
	}
	base := fastestHandshake(t, plain.Addr().String(), cfg)
	measure(t, "TLS handshake", delay, base, func() time.Duration {
		d, _ := handshakeTime(t, slow.Addr().String(), cfg)
		return d
	})

	if !strings.HasPrefix(slow.URL(), "https://127.0.0.1:") {
		t.Errorf("URL() = %q", slow.URL())
	}
	resp, _ := get(t, newClient(t, ca.Pool()), slow.URL()+"/", nil)
	if resp.StatusCode != http.StatusNotFound || resp.ProtoMajor != 2 {
		t.Errorf("default handler over h2: %s %s, want 404 over HTTP/2", resp.Proto, resp.Status)
	}
}

func TestHTTPServerCloseDuringHandshakeDelay(t *testing.T) {
	noLeaks(t)
	ca := newCA(t)
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewHTTPServer(ServerOptions{TLS: &cert, HandshakeDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		d := &tls.Dialer{Config: &tls.Config{RootCAs: ca.Pool()}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", s.Addr().String())
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	for len(s.Accepts()) == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Close took %v with a handshake waiting out its delay", d)
	}
	if err := <-errc; err == nil {
		t.Error("handshake completed after Close")
	}
}

func TestHTTPServerAcceptsAndReuse(t *testing.T) {
	noLeaks(t)
	s := newServer(t, ServerOptions{Handler: DelayHandler(0, 0, []byte("ok"))})
	c := newClient(t, nil)
	before := time.Now()
	for range 3 {
		if _, body := get(t, c, s.URL(), nil); string(body) != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	acc := s.Accepts()
	if len(acc) != 1 {
		t.Fatalf("%d connections accepted for 3 keep-alive requests, want 1", len(acc))
	}
	if acc[0].Before(before) || acc[0].After(time.Now()) {
		t.Errorf("accept stamp %v outside the test", acc[0])
	}
	c.Transport.(*http.Transport).DisableKeepAlives = true
	get(t, c, s.URL(), nil)
	if n := len(s.Accepts()); n != 2 {
		t.Errorf("%d accepts after a request without keep-alive, want 2", n)
	}
}

func TestDelayHandler(t *testing.T) {
	noLeaks(t)
	const firstByte, between = 80 * time.Millisecond, 60 * time.Millisecond
	body := bytes.Repeat([]byte("x"), 1000)
	s := newServer(t, ServerOptions{Handler: DelayHandler(firstByte, between, body)})
	c := newClient(t, nil)
	// Spans start before the request is sent, so they include the (reused,
	// so nearly free) connection; transfer is the difference of the two.
	var first time.Time
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	})
	fetch := func() (start, last time.Time) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		last = time.Now()
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) || resp.ContentLength != int64(len(body)) {
			t.Fatalf("body %d bytes (Content-Length %d), err %v", len(got), resp.ContentLength, err)
		}
		return start, last
	}
	measure(t, "first byte", firstByte, 0, func() time.Duration {
		start, _ := fetch()
		return first.Sub(start)
	})
	measure(t, "last byte", firstByte+between, 0, func() time.Duration {
		start, last := fetch()
		return last.Sub(start)
	})
}

func TestRevalidating(t *testing.T) {
	noLeaks(t)
	lm := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	const think = 50 * time.Millisecond
	h := Revalidating(lm, "v1", think, []byte("<html>app</html>"))
	s := newServer(t, ServerOptions{Handler: h})
	c := newClient(t, nil)

	var resp *http.Response
	var body []byte
	measure(t, "full answer", think, 0, func() time.Duration {
		start := time.Now()
		resp, body = get(t, c, s.URL(), nil)
		return time.Since(start)
	})
	if resp.StatusCode != 200 || string(body) != "<html>app</html>" {
		t.Fatalf("plain GET: %s %q", resp.Status, body)
	}
	if resp.Header.Get("ETag") != `"v1"` || resp.Header.Get("Last-Modified") != lm.Format(http.TimeFormat) ||
		resp.Header.Get("Cache-Control") != "max-age=0" {
		t.Errorf("validators: %v", resp.Header)
	}

	for _, tc := range []struct {
		name string
		hdr  http.Header
		want int
	}{
		{"etag", http.Header{"If-None-Match": {`W/"v0", "v1"`}}, 304},
		{"date", http.Header{"If-Modified-Since": {resp.Header.Get("Last-Modified")}}, 304},
		{"later date", http.Header{"If-Modified-Since": {lm.Add(time.Hour).Format(http.TimeFormat)}}, 304},
		{"older date", http.Header{"If-Modified-Since": {lm.Add(-time.Second).Format(http.TimeFormat)}}, 200},
		{"etag decides", http.Header{"If-None-Match": {`"v0"`}, "If-Modified-Since": {resp.Header.Get("Last-Modified")}}, 200},
	} {
		start := time.Now()
		r, body := get(t, c, s.URL(), tc.hdr)
		if r.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, r.StatusCode, tc.want)
		}
		if tc.want == 304 {
			if len(body) != 0 {
				t.Errorf("%s: 304 with a body", tc.name)
			}
			if d := time.Since(start); d >= think {
				t.Errorf("%s: 304 took %v, want no think time", tc.name, d)
			}
		}
	}
	if h.NotModified() != 3 || h.Full() < 3 {
		t.Errorf("counters: %d full, %d not modified; want at least 3 and 3", h.Full(), h.NotModified())
	}
}

func TestRedirects(t *testing.T) {
	noLeaks(t)
	mux := http.NewServeMux()
	mux.Handle("/r/", RedirectChain(3, DelayHandler(0, 0, []byte("done"))))
	mux.Handle("/final", RedirectChain(3, DelayHandler(0, 0, []byte("done"))))
	mux.Handle("/loop/", RedirectLoop())
	s := newServer(t, ServerOptions{Handler: mux})
	c := newClient(t, nil)
	var hops []string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		hops = append(hops, req.URL.RequestURI())
		return nil
	}
	resp, body := get(t, c, s.URL()+"/r/0?q=1", nil)
	if string(body) != "done" || resp.StatusCode != 200 {
		t.Errorf("chain end: %s %q", resp.Status, body)
	}
	if want := []string{"/r/1?q=1", "/r/2?q=1", "/final?q=1"}; strings.Join(hops, " ") != strings.Join(want, " ") {
		t.Errorf("hops %v, want %v", hops, want)
	}

	c.CheckRedirect = nil // net/http's default gives up after 10
	_, err := c.Get(s.URL() + "/loop/a")
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Errorf("loop: err = %v, want the client to give up", err)
	}
}

func TestDrip(t *testing.T) {
	noLeaks(t)
	const interval, n = 10 * time.Millisecond, 8
	s := newServer(t, ServerOptions{Handler: Drip(interval, n)})
	c := newClient(t, nil)
	measure(t, "drip to the last byte", n*interval, 0, func() time.Duration {
		start := time.Now()
		_, body := get(t, c, s.URL(), nil)
		if len(body) != n {
			t.Fatalf("%d bytes, want %d", len(body), n)
		}
		return time.Since(start)
	})

	// A client that leaves early frees the handler.
	resp, err := c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitIdle(t, s)
}

// waitIdle waits (bounded) for s to have no handler running.
func waitIdle(t *testing.T, s *HTTPServer) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for s.Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers still running a second after the client left", s.Active())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHugeBody(t *testing.T) {
	noLeaks(t)
	const size = 5 << 30
	s := newServer(t, ServerOptions{Handler: HugeBody(size)})
	c := newClient(t, nil)
	resp, err := c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != size {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, int64(size))
	}
	n, err := io.CopyN(io.Discard, resp.Body, 4<<20)
	if err != nil || n != 4<<20 {
		t.Fatalf("read %d: %v", n, err)
	}
	if s.Active() != 1 {
		t.Errorf("Active() = %d while streaming, want 1", s.Active())
	}
	resp.Body.Close() // unread body: the transport closes the connection
	waitIdle(t, s)
}

func TestResetMidBody(t *testing.T) {
	noLeaks(t)
	s := newServer(t, ServerOptions{Handler: ResetMidBody(1000)})
	c := newClient(t, nil)
	resp, err := c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %d bytes without error", n)
	}
	if msg := err.Error(); !strings.Contains(msg, "reset") && !strings.Contains(msg, "unexpected EOF") {
		t.Errorf("err = %v, want a reset or unexpected EOF", err)
	}
	if n > 1000 {
		t.Errorf("read %d bytes, want at most the 1000-byte prefix", n)
	}
	t.Logf("after %d bytes: %v", n, err)
}

func TestBlackhole(t *testing.T) {
	noLeaks(t)
	b, err := NewBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	c := newClient(t, nil)
	c.Timeout = 150 * time.Millisecond
	start := time.Now()
	_, err = c.Get("http://" + b.Addr() + "/")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a timeout", err)
	}
	// Loose: only a hang matters here, and the machine may be busy.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if b.Accepted() != 1 {
		t.Errorf("Accepted() = %d, want 1 (connect succeeds)", b.Accepted())
	}
}

func TestRefusingAddr(t *testing.T) {
	noLeaks(t)
	addr, err := NewRefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = net.DialTimeout("tcp", addr, time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: err = %v, want connection refused", addr, err)
	}
}

func TestGarbageServer(t *testing.T) {
	noLeaks(t)
	g, err := NewGarbageServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	c := newClient(t, nil)
	_, err = c.Get("http://" + g.Addr() + "/")
	if err == nil || !strings.Contains(err.Error(), "malformed HTTP") {
		t.Errorf("http: err = %v, want a malformed response", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: &tls.Config{ServerName: "lab.test"}}).DialContext(ctx, "tcp", g.Addr())
	if err == nil {
		conn.Close()
		t.Error("TLS handshake with garbage succeeded")
	} else if ctx.Err() != nil {
		t.Errorf("TLS handshake timed out instead of failing: %v", err)
	}
}

// echoServer is a raw TCP echo target for the delay line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string, oneWay time.Duration) *DelayProxy {
	t.Helper()
	p, err := NewDelayProxy(target, oneWay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestDelayProxyRoundTrip(t *testing.T) {
	noLeaks(t)
	const oneWay = 30 * time.Millisecond
	s := newServer(t, ServerOptions{Handler: DelayHandler(0, 0, []byte("ok"))})
	p := newProxy(t, s.Addr().String(), oneWay)
	c := newClient(t, nil)

	var connStart, connDone, first time.Time
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		ConnectStart:         func(string, string) { connStart = time.Now() },
		ConnectDone:          func(string, string, error) { connDone = time.Now() },
		GotFirstResponseByte: func() { first = time.Now() },
	})
	fetch := func() time.Duration {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok" {
			t.Fatalf("body %q", body)
		}
		return first.Sub(start)
	}
	fetch() // a new connection: the connect must not be delayed
	if d := connDone.Sub(connStart); d >= oneWay {
		t.Errorf("connect took %v; the proxy should not delay it", d)
	}
	measure(t, "first byte through the proxy", 2*oneWay, 0, fetch)
	if p.Accepted() != 1 {
		t.Errorf("Accepted() = %d, want 1 (the connection was reused)", p.Accepted())
	}
}

func TestDelayProxyTLS(t *testing.T) {
	noLeaks(t)
	ca := newCA(t)
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	const oneWay = 25 * time.Millisecond
	s := newServer(t, ServerOptions{TLS: &cert})
	p := newProxy(t, s.Addr().String(), oneWay)
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	if _, st := handshakeTime(t, p.Addr(), cfg); st.Version != tls.VersionTLS13 {
		t.Fatalf("TLS version %x, want 1.3 (one round trip)", st.Version)
	}
	base := fastestHandshake(t, s.Addr().String(), cfg)
	measure(t, "TLS 1.3 handshake through the proxy", 2*oneWay, base, func() time.Duration {
		d, _ := handshakeTime(t, p.Addr(), cfg)
		return d
	})
}

// TestDelayProxyNoAccumulation sends chunks faster than the delay: each must
// come back 2×oneWay after it left, not queued behind the previous delays.
func TestDelayProxyNoAccumulation(t *testing.T) {
	noLeaks(t)
	const oneWay, gap, n = 20 * time.Millisecond, 5 * time.Millisecond, 10
	p := newProxy(t, echoServer(t), oneWay)
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1)

	// burst sends n bytes gap apart and returns each one's round trip.
	burst := func() []time.Duration {
		sent := make([]time.Time, n)
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range n {
				sent[i] = time.Now()
				if _, err := conn.Write([]byte{byte(i)}); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(gap)
			}
		})
		got := make([]time.Time, n)
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		for i := range n {
			if _, err := io.ReadFull(conn, buf); err != nil {
				t.Fatal(err)
			}
			got[i] = time.Now()
			if int(buf[0]) != i {
				t.Fatalf("byte %d came back as %d: order lost", i, buf[0])
			}
		}
		wg.Wait()
		rtts := make([]time.Duration, n)
		for i := range n {
			rtts[i] = got[i].Sub(sent[i])
			if rtts[i] < 2*oneWay {
				t.Errorf("byte %d: round trip %v, shorter than 2×%v", i, rtts[i], oneWay)
			}
		}
		return rtts
	}
	// A line sleeping per chunk in sequence would bring the last byte back
	// after about n×oneWay. One clean burst (a stall of the whole machine
	// delays every byte alike) shows the delays do not pile up.
	var bursts [][]time.Duration
	for range 3 {
		rtts := burst()
		bursts = append(bursts, rtts)
		if slices.Max(rtts) < 2*oneWay+slack {
			t.Logf("round trips of %d chunks sent %v apart: %v", n, gap, rtts)
			break
		}
	}
	if last := bursts[len(bursts)-1]; slices.Max(last) >= 2*oneWay+slack {
		t.Errorf("no burst with every round trip under %v: %v", 2*oneWay+slack, bursts)
	}

	// Half-close passes through: the echo server sees EOF and closes.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("after half-close: %v, want EOF", err)
	}
}

func TestDelayProxyCloseInFlight(t *testing.T) {
	noLeaks(t)
	p, err := NewDelayProxy(echoServer(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("held in the delay line")); err != nil {
		t.Fatal(err)
	}
	for p.Accepted() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	p.Close()
	p.Close() // twice is fine
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Close took %v with data in the delay line", d)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := conn.Read(make([]byte, 64)); err == nil || n > 0 {
		t.Errorf("read %d bytes, err %v after Close; want the connection cut", n, err)
	}
}

func TestDelayProxyRefusedTarget(t *testing.T) {
	noLeaks(t)
	addr, err := NewRefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, addr, time.Millisecond)
	c := newClient(t, nil)
	if _, err := c.Get("http://" + p.Addr() + "/"); err == nil {
		t.Error("request through a proxy to a refusing target succeeded")
	}
}
