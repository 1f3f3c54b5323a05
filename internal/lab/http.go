package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ServerOptions configures an HTTPServer.
type ServerOptions struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// TLS, when set, serves HTTPS with this certificate; nil serves plain HTTP.
	TLS *tls.Certificate
	// HandshakeDelay is slept inside the TLS handshake, after the ClientHello
	// arrives and before the server's first flight, so the client's TLS phase
	// grows by this much while connect and ttfb do not.
	HandshakeDelay time.Duration
	// HTTP2 offers h2 via ALPN (TLS only); otherwise only http/1.1.
	HTTP2 bool
	// Handler serves requests; nil means http.NotFoundHandler.
	Handler http.Handler
	// ErrorLog receives net/http's connection errors; nil discards them,
	// since hostile tests provoke many on purpose.
	ErrorLog *log.Logger
}

// HTTPServer is a net/http server on a real loopback socket, with keep-alives
// on so tests can exercise connection reuse.
type HTTPServer struct {
	srv            *http.Server
	ln             *stampListener
	url            string
	addr           netip.AddrPort
	done           chan struct{} // closed by Close: wakes handshakes sleeping HandshakeDelay
	handshakeSlept sleepLog
	served         chan struct{} // closed when Serve returns
	conns          sync.WaitGroup
	handlers       tracker
	closeOnce      sync.Once
}

// NewHTTPServer listens and starts serving.
func NewHTTPServer(opts ServerOptions) (*HTTPServer, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Handler == nil {
		opts.Handler = http.NotFoundHandler()
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.New(io.Discard, "", 0)
	}
	if opts.TLS == nil && (opts.HandshakeDelay != 0 || opts.HTTP2) {
		return nil, errors.New("lab: HandshakeDelay and HTTP2 need TLS")
	}
	inner, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("lab: http listen: %w", err)
	}
	s := &HTTPServer{
		ln:     &stampListener{Listener: inner},
		done:   make(chan struct{}),
		served: make(chan struct{}),
	}
	s.addr = netip.MustParseAddrPort(inner.Addr().String())
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(opts.HTTP2)
	s.srv = &http.Server{
		Handler:           s.handlers.wrap(opts.Handler),
		Protocols:         &protocols,
		ErrorLog:          opts.ErrorLog,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.connState,
	}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
		delay := opts.HandshakeDelay
		s.srv.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{*opts.TLS},
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				if delay > 0 {
					t0 := time.Now()
					t := time.NewTimer(delay)
					defer t.Stop()
					select {
					case <-t.C:
						s.handshakeSlept.add(time.Since(t0))
					case <-s.done:
						return nil, errors.New("lab: server closing")
					case <-hello.Context().Done():
						return nil, hello.Context().Err()
					}
				}
				return nil, nil // nil: carry on with the server's own config
			},
		}
	}
	s.url = scheme + "://" + s.addr.String()
	go func() {
		defer close(s.served)
		if opts.TLS != nil {
			// ServeTLS adds the ALPN protocols matching Protocols.
			_ = s.srv.ServeTLS(s.ln, "", "")
		} else {
			_ = s.srv.Serve(s.ln)
		}
	}()
	return s, nil
}

// URL returns the base URL, e.g. "https://127.0.0.1:40123".
func (s *HTTPServer) URL() string { return s.url }

// Addr returns the listening address.
func (s *HTTPServer) Addr() netip.AddrPort { return s.addr }

// HandshakeSlept returns how long delayed handshakes really waited.
func (s *HTTPServer) HandshakeSlept() []time.Duration { return s.handshakeSlept.all() }

// Accepts returns when each TCP connection was accepted, stamped right at
// Accept (before any TLS), in order.
func (s *HTTPServer) Accepts() []time.Time { return s.ln.stamps() }

// Active returns how many handler calls are running now; tests use it to
// see a handler give up once its client has gone.
func (s *HTTPServer) Active() int { return s.handlers.active() }

// Close closes the listener and every connection, then waits (bounded) for
// connection and handler goroutines to return. It is safe to call twice.
func (s *HTTPServer) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.srv.Close()
		<-s.served
		// After Serve returns no connection is added, so the Wait is safe.
		waitBounded(&s.conns, closeWait)
		s.handlers.close(closeWait)
	})
}

func (s *HTTPServer) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		// A hijacked connection belongs to its handler, which the handler
		// tracker waits for.
		s.conns.Done()
	}
}

// stampListener records the time of each Accept.
type stampListener struct {
	net.Listener
	mu sync.Mutex
	at []time.Time
}

func (l *stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		now := time.Now()
		l.mu.Lock()
		l.at = append(l.at, now)
		l.mu.Unlock()
	}
	return c, err
}

func (l *stampListener) stamps() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// tracker counts running handler calls so Close can wait for them, including
// HTTP/2 handlers and hijacked connections that net/http does not wait for.
type tracker struct {
	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
	n      atomic.Int64
}

func (t *tracker) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mu.RLock()
		if t.closed {
			t.mu.RUnlock()
			panic(http.ErrAbortHandler) // server closing: drop the request
		}
		t.wg.Add(1)
		t.n.Add(1)
		t.mu.RUnlock()
		defer func() {
			t.n.Add(-1)
			t.wg.Done()
		}()
		h.ServeHTTP(w, r)
	})
}

func (t *tracker) active() int { return int(t.n.Load()) }

func (t *tracker) close(d time.Duration) {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	waitBounded(&t.wg, d)
}
