package httptrace

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// The memory of verified chains must skip work, never a verdict: a chain
// that failed is not remembered, and a remembered chain still fails for
// the wrong host name or once it has expired.
func TestVerifiedChainsSkipWorkNotVerdicts(t *testing.T) {
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dns, err := lab.NewDNSServer("127.0.0.1:0", map[string][]netip.Addr{
		"site.test": {netip.MustParseAddr("127.0.0.1")}, "other.test": {netip.MustParseAddr("127.0.0.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	serve := func(ca *lab.CA, issue func(*lab.CA) (tls.Certificate, error)) string {
		t.Helper()
		cert, err := issue(ca)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := lab.NewHTTPServer(lab.ServerOptions{TLS: &cert, Handler: lab.DelayHandler(0, 0, []byte("ok"))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		return strconv.Itoa(int(srv.Addr().Port()))
	}
	good := serve(ca, func(ca *lab.CA) (tls.Certificate, error) { return ca.Issue("site.test") })
	expired := serve(ca, func(ca *lab.CA) (tls.Certificate, error) { return ca.IssueExpired("site.test") })
	stranger, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	untrusted := serve(stranger, func(ca *lab.CA) (tls.Certificate, error) { return ca.Issue("site.test") })

	v := &VerifiedChains{}
	probe := func(port, host string) *Result {
		t.Helper()
		o := Options{DNSServer: dns.Addr(), RootCAs: ca.Pool(), VerifiedChains: v, Timeout: 5 * time.Second, IPVersion: IPv4Only, Host: host}
		return Probe(context.Background(), "https://site.test:"+port+"/", o)
	}
	wantTLSError := func(r *Result, msg string) {
		t.Helper()
		if r.Err == nil || r.Err.Phase != ErrTLS || !strings.Contains(r.Err.Message, msg) {
			t.Errorf("want a TLS error saying %q, got %+v", msg, r.Err)
		}
	}

	for i := range 2 {
		if r := probe(good, ""); r.Err != nil {
			t.Fatalf("probe %d of a good chain: %v", i, r.Err)
		}
	}
	if n := len(v.m); n != 1 {
		t.Fatalf("%d chains remembered after a good one, want 1", n)
	}
	// The remembered chain, presented for a name it does not carry.
	wantTLSError(probe(good, "other.test"), "valid for site.test, not other.test")
	wantTLSError(probe(expired, ""), "expired")
	wantTLSError(probe(untrusted, ""), "unknown authority")
	if n := len(v.m); n != 1 {
		t.Errorf("%d chains remembered, want 1: failed chains must not be", n)
	}

	// Past the dates of a remembered chain, it verifies in full again.
	for k, w := range v.m {
		if !v.lookup(k, w.until.Add(-time.Second)) || v.lookup(k, w.until.Add(time.Second)) || v.lookup(k, w.from.Add(-time.Second)) {
			t.Errorf("lookup ignores the validity window %v–%v", w.from, w.until)
		}
	}
}

func TestVerifiedChainsStayBounded(t *testing.T) {
	v := &VerifiedChains{}
	cert := &x509.Certificate{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	for i := range maxVerified + 10 {
		cert.Raw = []byte(strconv.Itoa(i))
		v.add(chainKey([]*x509.Certificate{cert}), []*x509.Certificate{cert})
	}
	if n := len(v.m); n > maxVerified {
		t.Errorf("%d entries, want at most %d", n, maxVerified)
	}
}
