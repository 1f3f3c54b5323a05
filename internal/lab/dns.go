package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNSServer is an authoritative resolver for a small zone, on UDP and TCP at
// the same address, with an injectable answer delay.
type DNSServer struct {
	addr    string
	udp     *dns.Server
	tcp     *dns.Server
	done    chan struct{} // closed by Close: wakes handlers sleeping a delay
	served  sync.WaitGroup
	once    sync.Once
	delay   atomic.Int64 // time.Duration
	slept   sleepLog
	queries atomic.Int64

	mu   sync.RWMutex
	zone map[string][]netip.Addr // keyed by canonical (lower-case, fully qualified) name
}

// portTries bounds the search for a port free on both UDP and TCP.
const portTries = 20

// NewDNSServer listens on UDP and TCP at addr. With port 0 it picks a port
// free for both protocols, retrying when the TCP side of a free UDP port is
// taken. zone maps names (any case, trailing dot optional) to addresses; it
// is copied.
func NewDNSServer(addr string, zone map[string][]netip.Addr) (*DNSServer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("lab: dns address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = portTries
	}
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("lab: dns listen udp: %w", err)
		}
		_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err = net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			break
		}
		pc.Close()
		if i+1 >= tries {
			return nil, fmt.Errorf("lab: dns listen tcp: %w", err)
		}
	}
	s := &DNSServer{
		addr: ln.Addr().String(),
		done: make(chan struct{}),
		zone: make(map[string][]netip.Addr, len(zone)),
	}
	for name, addrs := range zone {
		s.zone[dns.CanonicalName(name)] = append([]netip.Addr(nil), addrs...)
	}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: notify}
	errc := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			if err := srv.ActivateAndServe(); err != nil {
				errc <- err
			}
		}()
	}
	// Shutdown fails on a server that has not started yet, so wait for both.
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			s.Close()
			return nil, fmt.Errorf("lab: dns serve: %w", err)
		}
	}
	return s, nil
}

// Addr returns the host:port served on both UDP and TCP.
func (s *DNSServer) Addr() string { return s.addr }

// Port returns the port served on both UDP and TCP.
func (s *DNSServer) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Slept returns how long the delayed answers really waited, in order.
func (s *DNSServer) Slept() []time.Duration { return s.slept.all() }

// Queries returns how many queries arrived (UDP and TCP), delayed or not.
func (s *DNSServer) Queries() int { return int(s.queries.Load()) }

// SetDelay delays every later answer by d. Each query waits on its own, so a
// delay never holds up other queries (except later ones pipelined on the
// same TCP connection, which miekg/dns serves in order).
func (s *DNSServer) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Set replaces the records of name; no addresses makes the name exist with
// no records (NOERROR, empty answer).
func (s *DNSServer) Set(name string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone[dns.CanonicalName(name)] = append([]netip.Addr{}, addrs...)
}

// Remove deletes name, so it answers NXDOMAIN.
func (s *DNSServer) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.zone, dns.CanonicalName(name))
}

// Resolver returns a net.Resolver that sends every query to this server,
// whatever server the system configuration names.
func (s *DNSServer) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.addr)
		},
	}
}

// Close stops both listeners, abandons answers still waiting out a delay and
// waits (bounded) for every handler to return. It is safe to call twice.
func (s *DNSServer) Close() {
	s.once.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		defer cancel()
		for _, srv := range []*dns.Server{s.udp, s.tcp} {
			// Errors only say a server never started; its socket is closed below.
			_ = srv.ShutdownContext(ctx)
		}
		s.udp.PacketConn.Close()
		s.tcp.Listener.Close()
		waitBounded(&s.served, closeWait)
	})
}

func (s *DNSServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	if d := time.Duration(s.delay.Load()); d > 0 {
		t0 := time.Now()
		t := time.NewTimer(d)
		select {
		case <-t.C:
			s.slept.add(time.Since(t0))
		case <-s.done:
			t.Stop()
			return
		}
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	s.mu.RLock()
	addrs, ok := s.zone[dns.CanonicalName(q.Name)]
	s.mu.RUnlock()
	if !ok {
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
		a = a.Unmap()
		switch {
		case q.Qtype == dns.TypeA && a.Is4():
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6():
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	_ = w.WriteMsg(m)
}
