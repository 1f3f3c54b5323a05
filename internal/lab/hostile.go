package lab

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connSet holds a listener's open connections so Close can cut them all.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

// add tracks c, or closes it and reports false once the set is closed.
func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// acceptLoop is the shared skeleton of the raw listeners: accept, track,
// hand each connection to serve in its own goroutine, all waited for on Close.
type acceptLoop struct {
	ln       net.Listener
	conns    connSet
	wg       sync.WaitGroup
	accepted atomic.Int64
	once     sync.Once
}

func (a *acceptLoop) start(ln net.Listener, serve func(net.Conn)) {
	a.ln = ln
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			a.accepted.Add(1)
			if !a.conns.add(c) {
				return
			}
			if serve == nil {
				continue // held open, untouched, until Close
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				defer a.conns.remove(c)
				serve(c)
			}()
		}
	}()
}

func (a *acceptLoop) close() {
	a.once.Do(func() {
		a.ln.Close()
		a.conns.closeAll()
		waitBounded(&a.wg, closeWait)
	})
}

// Blackhole accepts TCP connections (the kernel completes the handshake) and
// never reads or writes: the client's connect succeeds and then nothing comes
// back, so TLS handshakes and requests hang until the client's timeout.
type Blackhole struct{ loop acceptLoop }

// NewBlackhole listens on 127.0.0.1 with a free port.
func NewBlackhole() (*Blackhole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lab: blackhole listen: %w", err)
	}
	b := &Blackhole{}
	b.loop.start(ln, nil)
	return b, nil
}

// Addr returns the host:port.
func (b *Blackhole) Addr() string { return b.loop.ln.Addr().String() }

// Accepted returns how many connections were accepted.
func (b *Blackhole) Accepted() int { return int(b.loop.accepted.Load()) }

// Close closes the listener and every held connection.
func (b *Blackhole) Close() { b.loop.close() }

// NewRefusingAddr returns a 127.0.0.1:port on which nothing listens, so a
// connect is refused at once. The port was just free (bound, noted, closed);
// another process could take it later, which tests on loopback can accept.
func NewRefusingAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lab: refusing addr: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("lab: refusing addr: %w", err)
	}
	return addr, nil
}

// garbage is what GarbageServer answers: not an HTTP status line, not a TLS
// record.
const garbage = "\x00\x00\x00\x00SSH-2.0-not-http \xff\xfe garbage\r\n\r\n"

// garbageReadWait bounds how long GarbageServer waits for a request before
// answering anyway.
const garbageReadWait = time.Second

// GarbageServer answers whatever arrives first with non-HTTP bytes, then
// closes the connection.
type GarbageServer struct{ loop acceptLoop }

// NewGarbageServer listens on 127.0.0.1 with a free port.
func NewGarbageServer() (*GarbageServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lab: garbage listen: %w", err)
	}
	g := &GarbageServer{}
	g.loop.start(ln, func(c net.Conn) {
		defer c.Close()
		// One read is enough: the point is to answer after the client spoke
		// (a request, or a ClientHello), not to parse it.
		_ = c.SetReadDeadline(time.Now().Add(garbageReadWait))
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte(garbage))
		// Half-close and drain: closing with unread request bytes would make
		// the kernel send RST, and the client would see a reset instead of
		// the garbage.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(garbageReadWait))
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
	return g, nil
}

// Addr returns the host:port.
func (g *GarbageServer) Addr() string { return g.loop.ln.Addr().String() }

// Accepted returns how many connections were accepted.
func (g *GarbageServer) Accepted() int { return int(g.loop.accepted.Load()) }

// Close closes the listener and any connection still open.
func (g *GarbageServer) Close() { g.loop.close() }
