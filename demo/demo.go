// Package demo starts, in-process on 127.0.0.1, a miniature of the
// architecture edgeprobe is about (DESIGN.md's seed article: a dynamic web
// app served through CloudFront), so `probe demo` can show the whole product
// offline, without root or AWS:
//
//	probe ──edge 2 ms──▶ edge "FRA56-P1" ══backbone 10 ms══▶ ALB ─▶ origin app
//	probe ─────────────────origin 20 ms────────────────────▶ ALB ─▶ origin app
//
// What each part stands for:
//
//   - The origin app stands for the EC2 instances behind an Application Load
//     Balancer: an HTTPS server with the site's certificate answering "/" and
//     "/health" after a think time (default 30 ms), with Last-Modified and
//     ETag, a 304 without think time to If-Modified-Since/If-None-Match,
//     Cache-Control max-age=0, a session cookie, every HTTP method, and
//     "/echo" showing what reached it.
//   - The ALB is a DNS name (ALBHost) resolving to 127.0.0.1. Clients reach it
//     over a long path (Options.OriginOneWay, default 20 ms each way, so
//     40 ms round trip), the edge over AWS's backbone (Options.BackboneOneWay,
//     default 10 ms each way). Both are user-space delay lines
//     (lab.DelayProxy) in front of the same origin server, so the ALB answers
//     on two ports: one per network path.
//   - The edge stands for a CloudFront POP near the client (Options.EdgeOneWay,
//     default 2 ms each way) with the article's distribution settings: TTL 0
//     (every cached GET/HEAD is revalidated with If-Modified-Since and
//     If-None-Match; a 304 from the origin is served from cache as
//     "RefreshHit"), all methods allowed, cookies and query strings forwarded
//     (and part of the cache key), HTTP redirected to HTTPS, TLS terminated at
//     the edge with the site's certificate, one warm keep-alive pool to the
//     origin. It answers with CloudFront's X-Cache, X-Amz-Cf-Pop, X-Amz-Cf-Id,
//     Via and Age headers, and with Server-Timing cdn-* entries (its real,
//     measured upstream times) when asked with "Pragma: server-timing".
//   - A DNS server (lab.DNSServer) resolves SiteHost and ALBHost to 127.0.0.1,
//     so a probe's dns phase is a real lookup.
//
// Delays are one way; a round trip costs twice as much. With the defaults a
// TLS 1.3 handshake takes about 4 ms through the edge and 40 ms straight to
// the ALB, and a revalidated page's first byte about 4+20 ms through the edge
// against 40+30 ms (round trip plus think time) at the ALB.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// Names the demo's DNS server answers.
const (
	// SiteHost is the site's name: the URL users type, the certificate's
	// name, the Host and SNI of both ways in.
	SiteHost = "shop.edgeprobe.demo"
	// ALBHost is the load balancer's DNS name, what an origin role's
	// connect_to names.
	ALBHost = "demo-alb-123.eu-west-1.elb.edgeprobe.demo"
)

// Defaults for zero Options fields.
const (
	DefaultOriginOneWay   = 20 * time.Millisecond
	DefaultBackboneOneWay = 10 * time.Millisecond
	DefaultEdgeOneWay     = 2 * time.Millisecond
	DefaultThink          = 30 * time.Millisecond
	DefaultPOP            = "FRA56-P1"
)

// startTimeout bounds the warm-up request Start makes when ctx has no
// deadline of its own.
const startTimeout = 5 * time.Second

// Options shape the demo site. A zero field takes its default; a negative
// duration means none at all (no delay, no think time).
type Options struct {
	OriginOneWay   time.Duration // client ↔ ALB, each way (default 20 ms)
	BackboneOneWay time.Duration // edge ↔ ALB, each way (default 10 ms)
	EdgeOneWay     time.Duration // client ↔ edge, each way (default 2 ms)
	Think          time.Duration // the app's time to make a full page (default 30 ms)
	POP            string        // edge location code (default "FRA56-P1")
}

func (o Options) withDefaults() Options {
	pick := func(d, def time.Duration) time.Duration {
		switch {
		case d == 0:
			return def
		case d < 0:
			return 0
		}
		return d
	}
	o.OriginOneWay = pick(o.OriginOneWay, DefaultOriginOneWay)
	o.BackboneOneWay = pick(o.BackboneOneWay, DefaultBackboneOneWay)
	o.EdgeOneWay = pick(o.EdgeOneWay, DefaultEdgeOneWay)
	o.Think = pick(o.Think, DefaultThink)
	if o.POP == "" {
		o.POP = DefaultPOP
	}
	return o
}

// Site is a running demo: DNS, origin, delay lines and edge. Close stops it.
type Site struct {
	opts   Options
	dir    string // temp dir owned by the site, removed by Close
	caFile string

	dns          *lab.DNSServer
	app          *originApp
	origin       *lab.HTTPServer
	originPath   *lab.DelayProxy // client ↔ ALB
	backbone     *lab.DelayProxy // edge ↔ ALB
	edge         *edge
	edgeTLS      *lab.HTTPServer
	edgeHTTP     *lab.HTTPServer // plain HTTP: redirects to HTTPS
	edgePath     *lab.DelayProxy // client ↔ edge (HTTPS)
	edgeHTTPPath *lab.DelayProxy // client ↔ edge (HTTP)

	closeOnce sync.Once
}

// Start starts every part of the site and warms the edge's connection to
// the origin. ctx bounds start-up only; the site runs until Close.
func Start(ctx context.Context, opts Options) (_ *Site, err error) {
	s := &Site{opts: opts.withDefaults()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir, err = os.MkdirTemp("", "edgeprobe-demo-*"); err != nil {
		return nil, fmt.Errorf("demo: temp dir: %w", err)
	}
	ca, err := lab.NewCA()
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if s.caFile, err = ca.WriteFile(s.dir); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	// One certificate for the site, served by both the ALB and the edge, as
	// when the ALB and the distribution carry the same ACM certificate.
	cert, err := ca.Issue(SiteHost)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	loopback := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	s.dns, err = lab.NewDNSServer("127.0.0.1:0", map[string][]netip.Addr{SiteHost: loopback, ALBHost: loopback})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}

	s.app = newOriginApp(s.opts.Think)
	s.origin, err = lab.NewHTTPServer(lab.ServerOptions{TLS: &cert, HTTP2: true, Handler: s.app})
	if err != nil {
		return nil, fmt.Errorf("demo: origin: %w", err)
	}
	if s.originPath, err = lab.NewDelayProxy(s.origin.Addr().String(), s.opts.OriginOneWay); err != nil {
		return nil, fmt.Errorf("demo: origin path: %w", err)
	}
	if s.backbone, err = lab.NewDelayProxy(s.origin.Addr().String(), s.opts.BackboneOneWay); err != nil {
		return nil, fmt.Errorf("demo: backbone: %w", err)
	}

	if s.edge, err = newEdge(edgeConfig{
		pop:      s.opts.POP,
		site:     SiteHost,
		upstream: net.JoinHostPort(ALBHost, port(s.backbone.Addr())),
		roots:    ca.Pool(),
		resolver: s.dns.Resolver(),
	}); err != nil {
		return nil, err
	}
	s.edgeTLS, err = lab.NewHTTPServer(lab.ServerOptions{TLS: &cert, HTTP2: true, Handler: s.edge})
	if err != nil {
		return nil, fmt.Errorf("demo: edge: %w", err)
	}
	if s.edgePath, err = lab.NewDelayProxy(s.edgeTLS.Addr().String(), s.opts.EdgeOneWay); err != nil {
		return nil, fmt.Errorf("demo: edge path: %w", err)
	}
	s.edgeHTTP, err = lab.NewHTTPServer(lab.ServerOptions{Handler: s.edge.redirectHandler(port(s.edgePath.Addr()))})
	if err != nil {
		return nil, fmt.Errorf("demo: edge http: %w", err)
	}
	if s.edgeHTTPPath, err = lab.NewDelayProxy(s.edgeHTTP.Addr().String(), s.opts.EdgeOneWay); err != nil {
		return nil, fmt.Errorf("demo: edge http path: %w", err)
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	// A real POP keeps connections to busy origins open; without this the
	// first probe through the edge would also pay the backbone handshake.
	if err := s.edge.warm(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops every server, proxy and connection of the site and removes
// its temp dir. It is safe to call twice.
func (s *Site) Close() {
	s.closeOnce.Do(func() {
		// From the client inwards, so nothing new arrives at a part that is
		// still running; the backbone goes before the edge servers so a
		// handler waiting on the origin returns at once.
		for _, p := range []*lab.DelayProxy{s.edgeHTTPPath, s.edgePath, s.backbone} {
			if p != nil {
				p.Close()
			}
		}
		for _, srv := range []*lab.HTTPServer{s.edgeHTTP, s.edgeTLS} {
			if srv != nil {
				srv.Close()
			}
		}
		if s.edge != nil {
			s.edge.close()
		}
		if s.originPath != nil {
			s.originPath.Close()
		}
		if s.origin != nil {
			s.origin.Close()
		}
		if s.dns != nil {
			s.dns.Close()
		}
		if s.dir != "" {
			_ = os.RemoveAll(s.dir)
		}
	})
}

// Options returns the options in effect (defaults applied; "none" as 0).
func (s *Site) Options() Options { return s.opts }

// CAFile returns the path of the demo CA's PEM, for ca_file / --ca-file. The
// file lives in a temp dir that Close removes.
func (s *Site) CAFile() string { return s.caFile }

// DNSServer returns the resolver's "127.0.0.1:PORT", for dns_server.
func (s *Site) DNSServer() string { return s.dns.Addr() }

// EdgeURL is the site's URL as users reach it: through the edge.
func (s *Site) EdgeURL() string {
	return "https://" + net.JoinHostPort(SiteHost, port(s.edgePath.Addr())) + "/"
}

// EdgeHTTPURL is the site's plain-HTTP URL; the edge redirects it to EdgeURL.
func (s *Site) EdgeHTTPURL() string {
	return "http://" + net.JoinHostPort(SiteHost, port(s.edgeHTTPPath.Addr())) + "/"
}

// OriginConnectTo is the ALB's name and port on the client's (long) path:
// what an origin role's connect_to names, keeping SiteHost for Host and SNI.
func (s *Site) OriginConnectTo() string {
	return net.JoinHostPort(ALBHost, port(s.originPath.Addr()))
}

// OriginCounts are what the origin app answered so far.
type OriginCounts struct {
	Requests    int // every request, the edge's warm-up included
	Full        int // full pages ("/", "/health"), each after the think time
	NotModified int // 304s to a conditional GET/HEAD
}

// OriginCounts reports the origin's answers, to show how many full pages the
// edge's revalidation saved.
func (s *Site) OriginCounts() OriginCounts { return s.app.counts() }

// port returns the port of a host:port.
func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return p
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// errStatus makes an error out of an unexpected HTTP status.
func errStatus(what string, code int) error {
	return errors.New("demo: " + what + ": HTTP " + strconv.Itoa(code) + " " + http.StatusText(code))
}
