package httptrace

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Probe makes one request to rawURL on a fresh connection, follows
// redirects (each hop on its own connection), and returns what it measured.
// It never panics and returns within opts.Timeout (plus the follow-up
// requests' own timeouts when Reuse or Conditional are set). A failure is
// reported in Result.Err, classified by phase.
func Probe(ctx context.Context, rawURL string, opts Options) *Result {
	opts = opts.withDefaults()
	res := &Result{URL: rawURL, Start: time.Now()}
	if err := opts.Validate(); err != nil {
		res.Err = &Error{Phase: ErrHTTP, Message: err.Error(), err: err}
		return res
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		res.Err = &Error{Phase: ErrHTTP, Message: fmt.Sprintf("bad URL %q: want http(s)://host/path", rawURL), err: err}
		return res
	}
	p := &prober{opts: opts, siteHost: u.Hostname(), user: u.User}
	if u.User != nil {
		// Credentials go in an Authorization header, never in what is
		// reported: samples, hops and messages show the URL without them.
		res.URL = u.Redacted()
		u.User = nil
	}
	p.run(ctx, u, res)
	return res
}

// prober carries one probe's options across its hops.
type prober struct {
	opts     Options
	siteHost string        // the URL's own host: Host/ConnectTo overrides apply to it
	user     *url.Userinfo // the URL's user:password, sent as basic auth to the site
}

func (p *prober) run(ctx context.Context, u *url.URL, res *Result) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	defer func() {
		if len(res.Hops) == 1 {
			res.Hops = nil // a single hop is the result itself
		}
	}()

	method, body := p.opts.Method, p.opts.Body
	seen := map[string]bool{}
	var chain []string
	var cookies []*http.Cookie
	for {
		key := method + " " + u.String()
		if seen[key] {
			res.Err = &Error{Phase: ErrHTTP, Message: "redirect loop: " + strings.Join(append(chain, u.String()), " → ")}
			return
		}
		seen[key] = true
		chain = append(chain, u.String())

		h := &hop{p: p, deadline: deadline, keepAlive: p.opts.Reuse}
		resp := h.do(ctx, method, u, body, cookies, p.opts.NoRedirects)
		res.record(u, h, &resp)
		if resp.err != nil {
			res.Err = resp.err
			h.close()
			return
		}
		next := resp.location
		if next == nil {
			if p.opts.Reuse {
				res.Warm = h.warm(ctx, method, u, body, cookies)
			}
			h.close()
			if p.opts.Conditional && resp.status == http.StatusOK {
				res.Conditional = p.conditional(ctx, u, resp.header)
			}
			return
		}
		h.close()
		if len(chain) > p.opts.MaxRedirects {
			res.Err = &Error{Phase: ErrHTTP, Message: fmt.Sprintf("more than %d redirects (the next to %s): raise max_redirects or probe the final URL", p.opts.MaxRedirects, next)}
			return
		}
		res.Redirects++
		cookies = mergeCookies(cookies, resp.cookies)
		// 301/302/303 turn into GET without a body, as browsers and curl -L do.
		if resp.status != http.StatusTemporaryRedirect && resp.status != http.StatusPermanentRedirect {
			if method != http.MethodGet && method != http.MethodHead {
				method = http.MethodGet
			}
			body = nil
		}
		u = next
	}
}

// record makes the hop just measured the result's latest word.
func (res *Result) record(u *url.URL, h *hop, resp *hopResponse) {
	m := h.marks()
	hop := Hop{URL: u.String(), Status: resp.status, Timings: h.timings}
	res.ConnectAttempts = m.attempts
	res.RemoteAddr, res.IPFamily = "", ""
	if m.remote.IsValid() {
		hop.RemoteAddr = m.remote.String()
		res.RemoteAddr = hop.RemoteAddr
		res.IPFamily = family(m.remote.Addr())
	}
	res.Hops = append(res.Hops, hop)
	res.Timings = h.since(res.Start)
	res.FinalURL = u.String()
	res.Status, res.Proto, res.TLS, res.Header = resp.status, resp.proto, resp.tls, resp.header
	res.BodyBytes, res.Body, res.BodyTruncated = resp.bodyBytes, resp.body, resp.truncated
	res.CDN = ParseCDN(resp.header)
	res.LastModified = resp.header.Get("Last-Modified")
	res.ETag = resp.header.Get("ETag")
	res.Location = resp.header.Get("Location")
}

// conditional revalidates u with the validators of a 200, on a fresh
// connection and with a timeout of its own.
func (p *prober) conditional(parent context.Context, u *url.URL, hdr http.Header) *Conditional {
	c := &Conditional{IfModified: hdr.Get("Last-Modified"), IfNoneMatch: hdr.Get("ETag")}
	if c.IfModified == "" && c.IfNoneMatch == "" {
		return c
	}
	c.Sent = true
	ctx, cancel := context.WithTimeout(parent, p.opts.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	extra := http.Header{}
	if c.IfModified != "" {
		extra.Set("If-Modified-Since", c.IfModified)
	}
	if c.IfNoneMatch != "" {
		extra.Set("If-None-Match", c.IfNoneMatch)
	}
	h := &hop{p: p, deadline: deadline, extra: extra}
	resp := h.do(ctx, http.MethodGet, u, nil, nil, true)
	h.close()
	c.Status = resp.status
	c.NotModified = resp.status == http.StatusNotModified
	c.Timings = h.timings
	c.Error = resp.err
	if resp.header != nil {
		c.CDN = ParseCDN(resp.header)
	}
	return c
}

// hop is one request on its own connection, with the marks its trace hooks
// stamp. The hooks only store time.Now(): no work there that the clock
// could charge to a phase.
type hop struct {
	p         *prober
	deadline  time.Time
	keepAlive bool
	extra     http.Header // headers of a follow-up request (conditional)

	tr      *http.Transport
	timings Timings

	// The transport calls the hooks and the dialer from goroutines of its
	// own, which may outlive a timed-out RoundTrip: marks are guarded.
	mu sync.Mutex
	m  marks
}

// marks are the instants a hop's hooks stamped, and what they saw.
type marks struct {
	dnsStart, dnsDone       time.Time
	connStart, connDone     time.Time
	tlsStart, tlsDone       time.Time
	lastField, wroteHeaders time.Time // the last header field encoded; the headers written
	wrote, firstByte, end   time.Time
	start, stop             time.Time // the hop's RoundTrip start and its end (or failure)
	gotHeaders              bool      // RoundTrip returned a response
	dnsErr, connErr, tlsErr error
	conn                    net.Conn // the raw TCP connection, to bound it by the deadline
	remote                  netip.AddrPort
	attempts                int
}

// stamp records now in one of the hop's marks. The clock is read before
// the lock so that waiting for it is not charged to the phase.
func (h *hop) stamp(mark *time.Time) {
	now := time.Now()
	h.mu.Lock()
	*mark = now
	h.mu.Unlock()
}

func (h *hop) update(f func(m *marks)) {
	h.mu.Lock()
	f(&h.m)
	h.mu.Unlock()
}

func (h *hop) marks() marks {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m
}

// hopResponse is what a hop learned besides its timings.
type hopResponse struct {
	status    int
	proto     string
	header    http.Header
	tls       *TLSInfo
	bodyBytes int64
	body      []byte
	truncated bool
	location  *url.URL // next hop, when redirected and allowed to follow
	cookies   []*http.Cookie
	err       *Error
}

func (h *hop) transport() *http.Transport {
	opts := h.p.opts
	// The chain is verified by verifyPeer (as crypto/tls would, with a
	// memory of chains already verified), so crypto/tls is told to skip
	// its own check; it still checks that the server holds the leaf's key.
	tcfg := &tls.Config{
		RootCAs:            opts.RootCAs,
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection unless the user chose not to
	}
	if !opts.InsecureSkipVerify {
		tcfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPeer(cs, tcfg.ServerName, opts.RootCAs, opts.VerifiedChains)
		}
	}
	tr := &http.Transport{
		Proxy:       nil, // measure the path to the target, not to a proxy
		DialContext: h.dial,
		// The handshake runs in the dialling goroutine, not in one more
		// that the transport would start for it, and is stamped there.
		DialTLSContext:         h.dialTLS,
		TLSClientConfig:        tcfg,
		DisableKeepAlives:      !h.keepAlive,
		DisableCompression:     true, // bytes as on the wire
		MaxResponseHeaderBytes: 1 << 20,
		ForceAttemptHTTP2:      !opts.DisableHTTP2,
	}
	if opts.DisableHTTP2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return tr
}

// do sends one request. With noFollow a 3xx is the final answer.
func (h *hop) do(ctx context.Context, method string, u *url.URL, body []byte, cookies []*http.Cookie, noFollow bool) (out hopResponse) {
	opts := h.p.opts
	if h.tr == nil {
		h.tr = h.transport()
	}
	h.tr.TLSClientConfig.ServerName = u.Hostname()
	if u.Hostname() == h.p.siteHost && opts.Host != "" {
		h.tr.TLSClientConfig.ServerName = opts.Host
	}

	// The TLS hooks are left out: dialTLS stamps the handshake itself.
	trace := &httptrace.ClientTrace{
		// HTTP/2 stamps "written" in the stream's writer goroutine after the
		// flush, which can run after the read loop saw a fast answer; the
		// header fields are encoded before any byte leaves, so the last one
		// bounds the write from below (see finish).
		WroteHeaderField:     func(string, []string) { h.stamp(&h.m.lastField) },
		WroteHeaders:         func() { h.stamp(&h.m.wroteHeaders) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { h.stamp(&h.m.wrote) },
		GotFirstResponseByte: func() { h.stamp(&h.m.firstByte) },
	}
	req, err := h.newRequest(httptrace.WithClientTrace(ctx, trace), method, u, body, cookies)
	if err != nil {
		out.err = &Error{Phase: ErrHTTP, Message: err.Error(), err: err}
		return out
	}
	hopStart := time.Now()
	resp, err := h.tr.RoundTrip(req)
	if err != nil {
		h.finish(hopStart, time.Now())
		out.err = h.classify(ctx, err, "")
		return out
	}
	defer resp.Body.Close()
	h.update(func(m *marks) { m.gotHeaders = true })
	out.status, out.proto, out.header = resp.StatusCode, resp.Proto, resp.Header
	out.tls = tlsInfo(resp.TLS, opts.InsecureSkipVerify)
	out.cookies = resp.Cookies()

	if loc := resp.Header.Get("Location"); !noFollow && isRedirect(resp.StatusCode) && loc != "" {
		next, perr := u.Parse(loc)
		if perr != nil {
			h.finish(hopStart, time.Now())
			out.err = &Error{Phase: ErrHTTP, Message: fmt.Sprintf("redirect to unparsable Location %q", loc), err: perr}
			return out
		}
		out.location = next
	}

	var sink io.Writer = io.Discard
	var kept *bytes.Buffer
	if opts.KeepBody && out.location == nil {
		kept = &bytes.Buffer{}
		sink = kept
	}
	n, rerr := io.Copy(sink, io.LimitReader(resp.Body, opts.BodyLimit+1))
	h.stamp(&h.m.end)
	h.finish(hopStart, time.Time{})
	out.bodyBytes = n
	if kept != nil {
		out.body = kept.Bytes()
	}
	switch {
	case rerr != nil:
		out.err = h.classify(ctx, rerr, fmt.Sprintf(" after %d body bytes", n))
	case n > opts.BodyLimit:
		out.bodyBytes, out.truncated = opts.BodyLimit, true
		out.err = &Error{Phase: ErrHTTP, Message: fmt.Sprintf("body larger than the read limit of %d bytes (Content-Length %d): raise body_limit or probe a smaller resource", opts.BodyLimit, resp.ContentLength)}
	}
	return out
}

func (h *hop) newRequest(ctx context.Context, method string, u *url.URL, body []byte, cookies []*http.Cookie) (*http.Request, error) {
	opts := h.p.opts
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	for k, vs := range opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for k, vs := range h.extra {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", opts.UserAgent)
	}
	if opts.ServerTiming {
		req.Header.Add("Pragma", "server-timing")
	}
	if u.Hostname() == h.p.siteHost {
		if opts.Host != "" {
			req.Host = opts.Host
		}
		if user := h.p.user; user != nil && req.Header.Get("Authorization") == "" {
			pass, _ := user.Password()
			req.SetBasicAuth(user.Username(), pass)
		}
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return req, nil
}

// finish turns the hop's marks into the phase durations of the contract,
// total and first_byte counted from the hop's own start.
// A zero end means the body's end.
func (h *hop) finish(hopStart, end time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := &h.m
	if end.IsZero() {
		end = m.end
	}
	m.start, m.stop = hopStart, end
	t := &h.timings
	t.DNS = span(m.dnsStart, m.dnsDone)
	t.Connect = span(m.connStart, m.connDone)
	t.TLS = span(m.tlsStart, m.tlsDone)
	t.TTFB = span(m.requestWritten(), m.firstByte)
	t.Transfer = span(m.firstByte, m.end)
	t.FirstByte = span(hopStart, m.firstByte)
	t.Total = span(hopStart, end)
}

// requestWritten is when the request was fully written: the WroteRequest
// stamp, unless a goroutine took it after the answer arrived (HTTP/2 with
// a fast server). Then the latest stamp that cannot be late stands in: the
// headers' (a request without a body is written with them), else the last
// header field's, taken before any byte left.
func (m *marks) requestWritten() time.Time {
	for _, t := range []time.Time{m.wrote, m.wroteHeaders, m.lastField} {
		if !t.IsZero() && (m.firstByte.IsZero() || !t.After(m.firstByte)) {
			return t
		}
	}
	return m.wrote
}

// since gives the hop's timings with total and first_byte counted from the
// probe's start instead, so that they cover every hop before it.
func (h *hop) since(start time.Time) Timings {
	m := h.marks()
	t := h.timings
	t.Total = span(start, m.stop)
	t.FirstByte = span(start, m.firstByte)
	return t
}

func span(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}

// dial resolves and connects, timing both, honouring ConnectTo, the IP
// version policy and Pin. The connection is bounded by the probe deadline
// because the transport lets dials and handshakes outlive a cancelled
// request.
func (h *hop) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, h.deadline)
	defer cancel()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	opts := h.p.opts
	site := host == h.p.siteHost
	if site && opts.ConnectTo != "" {
		host, port = splitConnectTo(opts.ConnectTo, port)
	}
	ips, err := h.resolve(ctx, host, site)
	if err != nil {
		return nil, err
	}
	// No TCP keep-alive: a probe's connection lives for one request, and
	// its four setsockopt calls are a measurable share of a probe's CPU.
	d := net.Dialer{KeepAlive: -1}
	var lastErr error
	for i, ip := range ips {
		if i == maxConnectAttempts {
			break
		}
		target := netip.AddrPortFrom(ip, uint16(atoiPort(port)))
		h.update(func(m *marks) { m.attempts++; m.connDone = time.Time{} })
		h.stamp(&h.m.connStart)
		conn, err := d.DialContext(ctx, "tcp", target.String())
		if err == nil {
			h.stamp(&h.m.connDone)
			h.update(func(m *marks) { m.remote, m.conn = target, conn })
			_ = conn.SetDeadline(h.deadline)
			return conn, nil
		}
		lastErr = err
		h.update(func(m *marks) { m.connErr = err })
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// dialTLS dials as dial does, then makes the TLS handshake with the
// transport's config (its ALPN list included), stamping it.
func (h *hop) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := h.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, h.tr.TLSClientConfig)
	growStack()
	h.stamp(&h.m.tlsStart)
	err = conn.HandshakeContext(ctx)
	h.stamp(&h.m.tlsDone)
	if err != nil {
		h.update(func(m *marks) { m.tlsErr = err })
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// growStack grows the goroutine's stack to what a TLS handshake needs in
// one step, while the stack is shallow and cheap to copy, instead of
// doubling it several times deep inside the handshake (3–5 % of a probe's
// CPU was stack copying).
//
//go:noinline
func growStack() {
	var pad [handshakeStack]byte
	touchStack(pad[:])
}

// handshakeStack is about the deepest a handshake's frames reach.
const handshakeStack = 16 << 10

//go:noinline
func touchStack(b []byte) { b[len(b)-1] = 0 }

// resolve times the lookup of host. A pinned site is dialled at its pinned
// address even when the answer has moved on (CDN answers rotate): the
// lookup is still made and timed, as a client would.
func (h *hop) resolve(ctx context.Context, host string, site bool) ([]netip.Addr, error) {
	opts := h.p.opts
	if ip, err := netip.ParseAddr(host); err == nil {
		if site && opts.Pin.IsValid() {
			return []netip.Addr{opts.Pin}, nil
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	h.stamp(&h.m.dnsStart)
	ips, err := LookupAddrs(ctx, host, opts)
	h.stamp(&h.m.dnsDone)
	if err != nil {
		h.update(func(m *marks) { m.dnsErr = err })
		return nil, err
	}
	if site && opts.Pin.IsValid() {
		return []netip.Addr{opts.Pin}, nil
	}
	return ips, nil
}

// LookupAddrs resolves host as a probe with opts would: through
// opts.DNSServer (or the system's resolver), asking for the families of
// opts.IPVersion, in its order of preference. A named server with a
// family policy is asked directly (lookupAt: one exchange, fewer
// goroutines and hand-offs between the probe's start and its connect);
// both families in the resolver's order (RFC 6724, which depends on the
// host's own addresses) are the Go resolver's job.
func LookupAddrs(ctx context.Context, host string, opts Options) ([]netip.Addr, error) {
	network := "ip"
	switch opts.IPVersion {
	case IPv4Only:
		network = "ip4"
	case IPv6Only:
		network = "ip6"
	}
	var ips []netip.Addr
	var err error
	if opts.DNSServer != "" && opts.IPVersion != IPAny {
		ips, err = lookupAt(ctx, opts.DNSServer, host, network)
	} else {
		ips, err = resolver(opts.DNSServer).LookupNetIP(ctx, network, host)
	}
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", host, err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no " + network + " address", Name: host}
	}
	return orderByFamily(ips, opts.IPVersion), nil
}

func resolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// warm sends the same request again on the hop's (kept-alive) connection.
func (h *hop) warm(parent context.Context, method string, u *url.URL, body []byte, cookies []*http.Cookie) *Timings {
	ctx, cancel := context.WithTimeout(parent, h.p.opts.Timeout)
	defer cancel()
	h.deadline, _ = ctx.Deadline()
	if conn := h.marks().conn; conn != nil {
		_ = conn.SetDeadline(h.deadline)
	}
	w := &hop{p: h.p, deadline: h.deadline, keepAlive: true, tr: h.tr}
	resp := w.do(ctx, method, u, body, cookies, true)
	if resp.err != nil {
		return nil
	}
	return &w.timings
}

func (h *hop) close() {
	if h.tr != nil {
		h.tr.CloseIdleConnections()
	}
	if conn := h.marks().conn; conn != nil {
		conn.Close()
	}
}

func orderByFamily(ips []netip.Addr, policy string) []netip.Addr {
	var first func(netip.Addr) bool
	switch policy {
	case IPPrefer4:
		first = netip.Addr.Is4
	case IPPrefer6:
		first = netip.Addr.Is6
	default:
		return ips
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if first(ip) {
			out = append(out, ip)
		}
	}
	for _, ip := range ips {
		if !first(ip) {
			out = append(out, ip)
		}
	}
	return out
}

func splitConnectTo(connectTo, defaultPort string) (host, port string) {
	if h, p, err := net.SplitHostPort(connectTo); err == nil {
		return h, p
	}
	return strings.Trim(connectTo, "[]"), defaultPort
}

func atoiPort(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func family(ip netip.Addr) string {
	if ip.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func mergeCookies(have, got []*http.Cookie) []*http.Cookie {
	for _, c := range got {
		replaced := false
		for i, h := range have {
			if h.Name == c.Name {
				have[i], replaced = c, true
			}
		}
		if !replaced {
			have = append(have, c)
		}
	}
	return have
}

func tlsInfo(cs *tls.ConnectionState, insecure bool) *TLSInfo {
	if cs == nil {
		return nil
	}
	info := &TLSInfo{
		Version:            tls.VersionName(cs.Version),
		CipherSuite:        tls.CipherSuiteName(cs.CipherSuite),
		ALPN:               cs.NegotiatedProtocol,
		ServerName:         cs.ServerName,
		InsecureSkipVerify: insecure,
		Resumed:            cs.DidResume,
	}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		info.Subject = leaf.Subject.String()
		info.Issuer = leaf.Issuer.String()
		info.DNSNames = leaf.DNSNames
		info.NotAfter = leaf.NotAfter
	}
	return info
}
