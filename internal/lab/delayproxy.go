package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DelayProxy is a user-space delay line in front of a TCP target (the kernel
// here has no netem). Each chunk read from either side is written to the
// other side oneWay after it was read, in order; delays do not add up across
// chunks, because each chunk waits for its own deadline, not a sleep after
// the previous one. A request/response round trip thus gains 2×oneWay.
//
// Accept is immediate (the kernel completes the TCP handshake before the
// proxy sees the connection), so the client's connect phase is NOT delayed;
// the TLS handshake, time to first byte and every later round trip are.
type DelayProxy struct {
	target string
	oneWay time.Duration
	loop   acceptLoop
	ctx    context.Context // cancelled by Close: stops dials and waits
	cancel context.CancelFunc
}

// DelayListener is another name for DelayProxy.
type DelayListener = DelayProxy

// proxyDialTimeout bounds the dial to the target.
const proxyDialTimeout = 2 * time.Second

// NewDelayProxy listens on 127.0.0.1 with a free port and forwards each
// connection to target (host:port) with oneWay delay in each direction.
func NewDelayProxy(target string, oneWay time.Duration) (*DelayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lab: delay proxy listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &DelayProxy{target: target, oneWay: oneWay, ctx: ctx, cancel: cancel}
	p.loop.start(ln, p.serve)
	return p, nil
}

// Addr returns the proxy's host:port.
func (p *DelayProxy) Addr() string { return p.loop.ln.Addr().String() }

// Accepted returns how many client connections were accepted.
func (p *DelayProxy) Accepted() int { return int(p.loop.accepted.Load()) }

// Close stops accepting, cuts every connection (both sides) and drops data
// still in the delay line.
func (p *DelayProxy) Close() {
	p.cancel()
	p.loop.close()
}

// chunk is one read, due for writing at due; err marks the end of the
// stream (io.EOF for an orderly close).
type chunk struct {
	due time.Time
	b   []byte
	err error
}

func (p *DelayProxy) serve(client net.Conn) {
	// The dial happens after accept; on loopback it costs tens of
	// microseconds, which the first chunk's delay includes.
	d := net.Dialer{Timeout: proxyDialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		resetConn(client)
		return
	}
	if !p.loop.conns.add(server) {
		return
	}
	defer p.loop.conns.remove(server)

	ctx, abort := context.WithCancel(p.ctx)
	defer abort()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(ctx, abort, client, server) }()
	go func() { defer wg.Done(); p.pipe(ctx, abort, server, client) }()
	// Close (ctx) or a failure in either direction (abort) cuts both sides,
	// which unblocks any Read or Write still pending.
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		server.Close()
	})
	wg.Wait()
	stop()
	client.Close()
	server.Close()
}

// pipe copies src to dst through the delay line until src ends and its end
// has been delivered, or ctx ends.
func (p *DelayProxy) pipe(ctx context.Context, abort context.CancelFunc, src, dst net.Conn) {
	// Buffered so the reader is not held back by the writer sleeping; a full
	// queue (a slow reader on dst) is backpressure, as in a real network.
	q := make(chan chunk, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			now := time.Now()
			if n > 0 {
				select {
				case q <- chunk{due: now.Add(p.oneWay), b: buf[:n]}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				select {
				case q <- chunk{due: now.Add(p.oneWay), err: err}:
				case <-ctx.Done():
				}
				return
			}
		}
	}()
	defer wg.Wait()
	// One timer, re-armed per chunk (Go ≥1.23 timers need no draining).
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for c := range q {
		if wait := time.Until(c.due); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		switch {
		case c.err == nil:
			if _, err := dst.Write(c.b); err != nil {
				abort()
				return
			}
		case errors.Is(c.err, io.EOF):
			// Pass the orderly close on as a half-close; the other
			// direction may still have data to deliver.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		default:
			// A reset or other failure: pass it on as a reset.
			resetConn(dst)
			abort()
			return
		}
	}
}
