// Package httptrace measures one HTTP request on a fresh connection and
// splits its time into the phases of edgeprobe's contract (dns, connect, tls,
// ttfb, transfer, total and the cumulative first_byte). It also reads the
// TLS, HTTP and CDN facts of the response. It imports nothing else of the
// project, so every other package can build on it.
package httptrace

import (
	"net/http"
	"time"
)

// Timings are the phase durations of one request, as defined in DESIGN.md.
// A phase that did not happen (no DNS for an IP literal, no TLS for http://)
// is zero.
type Timings struct {
	DNS       time.Duration // lookup start → lookup done
	Connect   time.Duration // TCP connect start (of the attempt that succeeded) → established
	TLS       time.Duration // TLS handshake start → done
	TTFB      time.Duration // request fully written → first response byte (server wait)
	Transfer  time.Duration // first response byte → last body byte read
	Total     time.Duration // start → last body byte read (all hops)
	FirstByte time.Duration // start → first response byte (curl's time_starttransfer)
}

// Phase names, as used in metrics, JSON and tables.
const (
	PhaseDNS       = "dns"
	PhaseConnect   = "connect"
	PhaseTLS       = "tls"
	PhaseTTFB      = "ttfb"
	PhaseTransfer  = "transfer"
	PhaseTotal     = "total"
	PhaseFirstByte = "first_byte"
)

// Phases lists the phase names in wire order; FirstByte is cumulative and
// comes last.
var Phases = []string{PhaseDNS, PhaseConnect, PhaseTLS, PhaseTTFB, PhaseTransfer, PhaseTotal, PhaseFirstByte}

// Get returns the duration of the named phase (one of Phases).
func (t Timings) Get(phase string) time.Duration {
	switch phase {
	case PhaseDNS:
		return t.DNS
	case PhaseConnect:
		return t.Connect
	case PhaseTLS:
		return t.TLS
	case PhaseTTFB:
		return t.TTFB
	case PhaseTransfer:
		return t.Transfer
	case PhaseTotal:
		return t.Total
	case PhaseFirstByte:
		return t.FirstByte
	}
	return 0
}

// Error phases: where a failed probe failed.
const (
	ErrDNS     = "dns"
	ErrConnect = "connect"
	ErrTLS     = "tls"
	ErrHTTP    = "http"
	ErrTimeout = "timeout"
	ErrAssert  = "assert"
)

// Error is a classified probe failure: the phase it happened in and a reason
// a person can act on.
type Error struct {
	Phase   string `json:"phase"`
	Message string `json:"message"`
	err     error
}

func (e *Error) Error() string { return e.Phase + ": " + e.Message }
func (e *Error) Unwrap() error { return e.err }

// TLSInfo describes the negotiated TLS session and the peer's leaf certificate.
type TLSInfo struct {
	Version            string    `json:"version"`        // "TLS 1.3"
	CipherSuite        string    `json:"cipher_suite"`   // "TLS_AES_128_GCM_SHA256"
	ALPN               string    `json:"alpn,omitempty"` // "h2", "http/1.1"
	ServerName         string    `json:"server_name"`    // SNI sent
	Subject            string    `json:"cert_subject"`
	Issuer             string    `json:"cert_issuer"`
	DNSNames           []string  `json:"cert_dns_names,omitempty"`
	NotAfter           time.Time `json:"cert_not_after"`
	InsecureSkipVerify bool      `json:"insecure_skip_verify"` // the chain was NOT verified
	Resumed            bool      `json:"resumed,omitempty"`
}

// Hop is one request of a redirect chain, measured on its own connection.
type Hop struct {
	URL        string
	Status     int
	Timings    Timings
	RemoteAddr string
}

// Conditional is the revalidation path: after a 200 carrying Last-Modified
// or ETag, the same request with If-Modified-Since / If-None-Match.
type Conditional struct {
	Sent        bool    `json:"sent"` // false when the first answer had no validator
	IfModified  string  `json:"if_modified_since,omitempty"`
	IfNoneMatch string  `json:"if_none_match,omitempty"`
	Status      int     `json:"status,omitempty"` // 304 when revalidation works
	NotModified bool    `json:"not_modified"`     // Status == 304
	Timings     Timings `json:"-"`
	Error       *Error  `json:"error,omitempty"`
	CDN         CDN     `json:"cdn"`
}

// Result is everything one probe learned (probe.Sample gives it the
// documented JSON form). On failure Err is set and the
// timings hold what was measured up to the failure.
type Result struct {
	URL             string // the URL asked for
	FinalURL        string // after redirects
	Start           time.Time
	Timings         Timings
	Hops            []Hop // every hop incl. the final one, when redirected
	Redirects       int
	RemoteAddr      string // ip:port of the final hop
	IPFamily        string // "ipv4" | "ipv6"
	ConnectAttempts int
	Proto           string // "HTTP/1.1", "HTTP/2.0"
	Status          int
	BodyBytes       int64
	BodyTruncated   bool        // the read limit was reached
	Header          http.Header // final response headers, for assertions
	LastModified    string      // validators of the final response
	ETag            string
	Location        string // of the final response (a 3xx not followed)
	Body            []byte // kept only when Options.KeepBody
	TLS             *TLSInfo
	CDN             CDN
	Warm            *Timings // a second request on the same connection (Options.Reuse)
	Conditional     *Conditional
	Err             *Error
}

// OK reports whether the probe succeeded.
func (r *Result) OK() bool { return r.Err == nil }
