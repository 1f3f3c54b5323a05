package httptrace

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"time"
)

// IP version policies for choosing among resolved addresses.
const (
	IPAny     = ""        // the resolver's order (RFC 6724), both families
	IPv4Only  = "ip4"     // A records only
	IPv6Only  = "ip6"     // AAAA records only
	IPPrefer4 = "prefer4" // both, IPv4 tried first
	IPPrefer6 = "prefer6" // both, IPv6 tried first
)

// Defaults applied to zero Options fields.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultBodyLimit    = 10 << 20
	DefaultMaxRedirects = 10
	DefaultUserAgent    = "edgeprobe"
	maxConnectAttempts  = 4
)

// Options say how to make one probe. The zero value is a GET with the
// defaults above, following redirects, on a fresh connection.
type Options struct {
	Method    string      // default GET
	Header    http.Header // extra request headers
	Body      []byte      // request body (sent again on 307/308)
	UserAgent string      // default DefaultUserAgent

	// Host overrides the Host header and the TLS server name (SNI) of
	// requests to the URL's own host.
	Host string
	// ConnectTo is "host[:port]" to dial instead of the URL's host, keeping
	// the URL's host for Host and SNI: how the origin way reaches an ALB
	// whose certificate is the site's. It applies to every hop whose host
	// is the URL's host; other hosts a redirect leads to are dialled as is.
	ConnectTo string
	// DNSServer is "ip:port" of the resolver to ask; empty means the system's.
	DNSServer string
	// IPVersion is one of the IP* policies.
	IPVersion string
	// Pin dials this address for the site's host (the DNS lookup is still
	// made and timed): used to probe every address of a name.
	Pin netip.Addr

	RootCAs            *x509.CertPool // nil means the system roots
	InsecureSkipVerify bool           // reported in Result.TLS
	// VerifiedChains, if set, remembers chains that verified against
	// RootCAs; share one per pool. Nil verifies every chain in full.
	VerifiedChains *VerifiedChains
	DisableHTTP2   bool // offer only http/1.1 in ALPN

	Timeout      time.Duration // whole probe (all hops); default DefaultTimeout
	BodyLimit    int64         // bytes read before the probe fails; default DefaultBodyLimit
	MaxRedirects int           // default DefaultMaxRedirects
	NoRedirects  bool          // report the 3xx itself
	KeepBody     bool          // keep the final body (up to BodyLimit) in Result.Body

	// Reuse sends a second, warm request on the same connection after the
	// first, to tell handshake cost from server time (Result.Warm).
	Reuse bool
	// Conditional revalidates after a 200 carrying Last-Modified or ETag:
	// the path a CDN with TTL 0 takes (Result.Conditional).
	Conditional bool
	// ServerTiming asks CloudFront for its Server-Timing header.
	ServerTiming bool
}

// LoadCAFile returns a pool with the system roots plus the PEM certificates
// in path, for private CAs and tests.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate found", path)
	}
	return pool, nil
}

func (o Options) withDefaults() Options {
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	return o
}

// Validate reports option values that cannot work.
func (o Options) Validate() error {
	switch o.IPVersion {
	case IPAny, IPv4Only, IPv6Only, IPPrefer4, IPPrefer6:
	default:
		return fmt.Errorf("ip version %q: want one of ip4, ip6, prefer4, prefer6 or empty", o.IPVersion)
	}
	if o.DNSServer != "" {
		if _, err := netip.ParseAddrPort(o.DNSServer); err != nil {
			return fmt.Errorf("dns server %q: want ip:port (e.g. 127.0.0.1:53): %w", o.DNSServer, err)
		}
	}
	return nil
}
