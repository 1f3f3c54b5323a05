package httptrace

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// oddDNS answers the cases a plain zone does not: CNAME chains, answers
// too long for UDP, SERVFAIL, silence, names in another case.
func oddDNS(t *testing.T) string {
	t.Helper()
	a := func(name, ip string) dns.RR {
		rr, _ := dns.NewRR(name + " 60 IN A " + ip)
		return rr
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		switch {
		case name == "silent.test.":
			return
		case name == "fail.test.":
			m.Rcode = dns.RcodeServerFailure
		case name == "chain.test." && qtype == dns.TypeA:
			c1, _ := dns.NewRR("chain.test. 60 IN CNAME mid.test.")
			c2, _ := dns.NewRR("mid.test. 60 IN CNAME end.test.")
			// An address of another name must not be taken for ours.
			m.Answer = []dns.RR{a("other.test.", "127.0.0.99"), c2, c1, a("end.test.", "127.0.0.7")}
		case name == "big.test." && qtype == dns.TypeA:
			if udp {
				m.Truncated = true
				break
			}
			for i := 1; i <= 60; i++ {
				m.Answer = append(m.Answer, a("big.test.", netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}).String()))
			}
		case name == "both.test." && qtype == dns.TypeA:
			m.Answer = []dns.RR{a("BOTH.test.", "127.0.0.8")}
		case name == "both.test." && qtype == dns.TypeAAAA:
			rr, _ := dns.NewRR("both.test. 60 IN AAAA ::1")
			m.Answer = []dns.RR{rr}
		case name == "v4only.test." && qtype == dns.TypeA:
			m.Answer = []dns.RR{a("v4only.test.", "127.0.0.9")}
		case name == "v4only.test.":
			// NODATA for AAAA
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func TestLookupAt(t *testing.T) {
	server := oddDNS(t)
	lookup := func(host, network string, timeout time.Duration) ([]netip.Addr, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return lookupAt(ctx, server, host, network)
	}
	for _, c := range []struct {
		host, network string
		want          []string
	}{
		{"chain.test", "ip4", []string{"127.0.0.7"}},
		{"CASE.both.test.", "ip4", nil}, // NXDOMAIN: a different name
		{"Both.Test", "ip", []string{"127.0.0.8", "::1"}},
		{"both.test", "ip6", []string{"::1"}},
		{"v4only.test", "ip", []string{"127.0.0.9"}},
	} {
		ips, err := lookup(c.host, c.network, 2*time.Second)
		if c.want == nil {
			var de *net.DNSError
			if !errors.As(err, &de) || !de.IsNotFound {
				t.Errorf("%s %s: want not found, got %v %v", c.host, c.network, ips, err)
			}
			continue
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.String())
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s %s: got %v %v, want %v", c.host, c.network, got, err, c.want)
		}
	}

	// Too long for UDP: asked again over TCP.
	if ips, err := lookup("big.test", "ip4", 2*time.Second); err != nil || len(ips) != 60 {
		t.Errorf("big.test: %d addresses, %v; want 60 over TCP", len(ips), err)
	}

	var de *net.DNSError
	if _, err := lookup("fail.test", "ip4", 2*time.Second); !errors.As(err, &de) || !de.IsTemporary || de.IsNotFound {
		t.Errorf("SERVFAIL: want a temporary error, got %v", err)
	}
	start := time.Now()
	_, err := lookup("silent.test", "ip4", 300*time.Millisecond)
	if took := time.Since(start); !errors.As(err, &de) || !de.IsTimeout || took > 2*time.Second {
		t.Errorf("no answer: want a timeout error within the deadline, got %v after %v", err, took)
	}
}
