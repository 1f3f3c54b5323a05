package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// X-Cache words, as CloudFront writes them before " from cloudfront".
const (
	xcMiss       = "Miss"
	xcRefreshHit = "RefreshHit"
	xcError      = "Error"
	xcRedirect   = "Redirect"
)

const (
	maxCacheEntries = 1024    // keys vary with query and cookies: keep memory bounded
	maxObjectBytes  = 8 << 20 // larger objects pass through uncached
	// originTimeout is CloudFront's default origin response timeout.
	originTimeout = 30 * time.Second
	// idleTimeout keeps the pool warm between probes of a slow schedule, as
	// CloudFront's origin keep-alive timeout (up to 60 s) does.
	idleTimeout = 60 * time.Second
	dialTimeout = 5 * time.Second
)

// edgeConfig is what newEdge needs from the site.
type edgeConfig struct {
	pop      string
	site     string // Host and SNI sent to the origin
	upstream string // host:port of the origin on the backbone
	roots    *x509.CertPool
	resolver *net.Resolver // resolves the ALB's name, timed as cdn-upstream-dns
}

// edge is a CloudFront-like caching reverse proxy with TTL 0: every cached
// GET/HEAD is revalidated with the origin before it is served.
type edge struct {
	pop, site string
	via       string // "1.1 <id>.cloudfront.net (CloudFront)": one edge server
	upstream  *url.URL
	tr        *http.Transport // the one warm pool to the origin
	proxy     *httputil.ReverseProxy
	cache     cache
}

func newEdge(cfg edgeConfig) (*edge, error) {
	u, err := url.Parse("https://" + cfg.upstream)
	if err != nil {
		return nil, fmt.Errorf("demo: edge upstream %q: %w", cfg.upstream, err)
	}
	e := &edge{
		pop:      cfg.pop,
		site:     cfg.site,
		via:      "1.1 " + randomHex(16) + ".cloudfront.net (CloudFront)",
		upstream: u,
		cache:    cache{max: maxCacheEntries, m: map[string]*entry{}},
	}
	dialer := &net.Dialer{Resolver: cfg.resolver, Timeout: dialTimeout}
	e.tr = &http.Transport{
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// SNI is the site's name: the ALB carries the site's certificate.
		TLSClientConfig:       &tls.Config{RootCAs: cfg.roots, ServerName: cfg.site},
		TLSHandshakeTimeout:   dialTimeout,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       idleTimeout,
		ResponseHeaderTimeout: originTimeout,
		DisableCompression:    true, // pass the origin's bytes on as they are
	}
	e.proxy = &httputil.ReverseProxy{
		Rewrite:        e.rewrite,
		Transport:      roundTripFunc(e.fetch),
		ModifyResponse: e.decorate,
		ErrorHandler:   e.fail,
		ErrorLog:       log.New(io.Discard, "", 0), // failures are answered with 502s
	}
	return e, nil
}

// ServeHTTP is the edge's HTTPS side.
func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := newExchange(r)
	e.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

// redirectHandler is the edge's plain-HTTP side: the viewer protocol policy
// "Redirect HTTP to HTTPS", answered at the edge without the origin.
func (e *edge) redirectHandler(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := newExchange(r)
		x.setResult(xcRedirect)
		e.stamp(w.Header(), x)
		// The site's own name, not the request's Host: the edge serves one
		// site and must not redirect anywhere else.
		http.Redirect(w, r, "https://"+net.JoinHostPort(e.site, httpsPort)+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
}

// warm opens the pool's first connection to the origin.
func (e *edge) warm(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, e.upstream.JoinPath("/health").String(), nil)
	if err != nil {
		return fmt.Errorf("demo: edge warm-up: %w", err)
	}
	req.Host = e.site
	resp, err := e.tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("demo: edge warm-up: %w", err)
	}
	drain(resp)
	if resp.StatusCode >= 300 {
		return errStatus("edge warm-up", resp.StatusCode)
	}
	return nil
}

func (e *edge) close() { e.tr.CloseIdleConnections() }

// rewrite forwards the request to the origin as CloudFront does with all
// cookies, query strings and the Host header forwarded.
func (e *edge) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(e.upstream) // keeps the path and the raw query, in its order
	pr.SetXForwarded()
	pr.Out.Host = e.site
	pr.Out.Header.Add("Via", e.via)
	pr.Out.Header.Set("X-Amz-Cf-Id", exchangeOf(pr.In.Context()).id)
	pr.Out.Header.Set("Cloudfront-Forwarded-Proto", "https")
}

// fetch is the proxy's transport: the cache in front of the origin pool.
func (e *edge) fetch(req *http.Request) (*http.Response, error) {
	x := exchangeOf(req.Context())
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), x.trace()))
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		// Only GET and HEAD are cached; other methods pass as they came.
		resp, err := e.tr.RoundTrip(req)
		if err != nil {
			return nil, fmt.Errorf("origin: %w", err)
		}
		x.setResult(passResult(resp.StatusCode))
		return resp, nil
	}

	key := cacheKey(req)
	// The client's validators are answered from the cache; the origin is
	// asked with the cache's own, or for the full object.
	client := takeValidators(req.Header)
	stored := e.cache.get(key)
	if stored != nil {
		stored.ask(req.Header)
	}
	resp, err := e.tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	cookies := resp.Header.Values("Set-Cookie")
	switch {
	case stored != nil && resp.StatusCode == http.StatusNotModified:
		drain(resp)
		fresh := stored.refresh(resp.Header, time.Now())
		e.cache.put(key, fresh)
		x.setResult(xcRefreshHit)
		out := fresh.response(req, client, cookies)
		out.Header.Set("Age", strconv.Itoa(int(time.Since(fresh.validated)/time.Second)))
		return out, nil
	case resp.StatusCode == http.StatusOK && storable(resp):
		ent, err := newEntry(resp, time.Now())
		if err != nil {
			return nil, fmt.Errorf("origin: %w", err)
		}
		e.cache.put(key, ent)
		x.setResult(xcMiss)
		return ent.response(req, client, cookies), nil
	}
	// Whatever the origin says now replaces what the cache held.
	e.cache.delete(key)
	x.setResult(passResult(resp.StatusCode))
	return resp, nil
}

// decorate adds CloudFront's response headers to what the origin or the
// cache answered.
func (e *edge) decorate(resp *http.Response) error {
	e.stamp(resp.Header, exchangeOf(resp.Request.Context()))
	return nil
}

// fail answers when the origin could not be reached or failed mid-answer.
func (e *edge) fail(w http.ResponseWriter, r *http.Request, _ error) {
	x := exchangeOf(r.Context())
	x.setResult(xcError)
	e.stamp(w.Header(), x)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = io.WriteString(w, "<h1>502 ERROR</h1>\n<p>The request could not be satisfied: the edge could not reach the origin.</p>\n")
}

func (e *edge) stamp(h http.Header, x *exchange) {
	h.Set("X-Cache", x.getResult()+" from cloudfront")
	h.Set("X-Amz-Cf-Pop", e.pop)
	h.Set("X-Amz-Cf-Id", x.id)
	h.Add("Via", e.via)
	if x.serverTiming {
		h.Add("Server-Timing", x.serverTimingValue(e.pop, time.Since(x.start)))
	}
}

// passResult is the X-Cache word for an answer that was not cached.
func passResult(status int) string {
	if status >= 400 {
		return xcError // CloudFront says Error for the origin's 4xx/5xx too
	}
	return xcMiss
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// exchange is one client request at the edge: its id, the cache result and
// the upstream request's trace marks. The transport calls the hooks from
// its own goroutines, so the marks are guarded.
type exchange struct {
	start        time.Time
	id           string
	serverTiming bool // the client sent "Pragma: server-timing"

	mu                  sync.Mutex
	result              string
	reused              bool
	dnsStart, dnsDone   time.Time
	connStart, connDone time.Time // connDone: TLS handshake done
	wrote, firstByte    time.Time
}

type exchangeKey struct{}

func newExchange(r *http.Request) *exchange {
	return &exchange{start: time.Now(), id: requestID(), serverTiming: wantsServerTiming(r.Header), result: xcMiss}
}

// exchangeOf returns the request's exchange; a fresh one if it has none, so
// a missing value can never panic the edge.
func exchangeOf(ctx context.Context) *exchange {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		return x
	}
	return &exchange{start: time.Now(), id: requestID(), result: xcMiss}
}

func (x *exchange) setResult(r string) {
	x.mu.Lock()
	x.result = r
	x.mu.Unlock()
}

func (x *exchange) getResult() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.result
}

func (x *exchange) trace() *httptrace.ClientTrace {
	stamp := func(t *time.Time) {
		now := time.Now()
		x.mu.Lock()
		*t = now
		x.mu.Unlock()
	}
	return &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			x.mu.Lock()
			x.reused = info.Reused
			x.mu.Unlock()
		},
		DNSStart:     func(httptrace.DNSStartInfo) { stamp(&x.dnsStart) },
		DNSDone:      func(httptrace.DNSDoneInfo) { stamp(&x.dnsDone) },
		ConnectStart: func(_, _ string) { stamp(&x.connStart) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				stamp(&x.connDone)
			}
		},
		// CloudFront's cdn-upstream-connect covers TCP and TLS.
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				stamp(&x.connDone)
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { stamp(&x.wrote) },
		GotFirstResponseByte: func() { stamp(&x.firstByte) },
	}
}

// serverTimingValue is CloudFront's Server-Timing header, durations in
// whole milliseconds. On a reused connection dns and connect are 0, as
// CloudFront reports them.
func (x *exchange) serverTimingValue(pop string, downstream time.Duration) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	parts := []string{`cdn-upstream-layer;desc="EDGE"`}
	if !x.wrote.IsZero() {
		var dns, connect time.Duration
		if !x.reused {
			dns, connect = span(x.dnsStart, x.dnsDone), span(x.connStart, x.connDone)
		}
		parts = append(parts,
			"cdn-upstream-dns;dur="+ms(dns),
			"cdn-upstream-connect;dur="+ms(connect),
			"cdn-upstream-fbl;dur="+ms(span(x.wrote, x.firstByte)))
	}
	switch x.result {
	case xcMiss:
		parts = append(parts, "cdn-cache-miss")
	case xcRefreshHit:
		parts = append(parts, "cdn-cache-refresh")
	}
	parts = append(parts, `cdn-pop;desc="`+pop+`"`, `cdn-rid;desc="`+x.id+`"`)
	if x.result == xcRefreshHit {
		parts = append(parts, `cdn-hit-layer;desc="EDGE"`)
	}
	parts = append(parts, "cdn-downstream-fbl;dur="+ms(downstream))
	return strings.Join(parts, ",")
}

func ms(d time.Duration) string {
	return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10)
}

func span(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}

// wantsServerTiming reports whether a Pragma header asks for Server-Timing.
func wantsServerTiming(h http.Header) bool {
	for _, v := range h.Values("Pragma") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "server-timing") {
				return true
			}
		}
	}
	return false
}

// requestID is an X-Amz-Cf-Id lookalike: 40 random bytes, base64url (56
// characters ending in "==").
func requestID() string {
	b := make([]byte, 40)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.URLEncoding.EncodeToString(b)
}

// cacheKey: method, path and query (in the order sent) and the cookies,
// since the distribution forwards all cookies and query strings.
func cacheKey(req *http.Request) string {
	return req.Method + " " + req.URL.RequestURI() + "\n" + strings.Join(req.Header.Values("Cookie"), "; ")
}

// storable reports whether a 200 may be kept: the origin allows it, it
// carries a validator to revalidate with (TTL 0 revalidates every time),
// and it is not too large.
func storable(resp *http.Response) bool {
	if resp.Request.Method == http.MethodGet && (resp.ContentLength < 0 || resp.ContentLength > maxObjectBytes) {
		return false
	}
	for _, v := range resp.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-store" || d == "private" || strings.HasPrefix(d, "private=") {
				return false
			}
		}
	}
	if strings.TrimSpace(resp.Header.Get("Vary")) == "*" {
		return false
	}
	return resp.Header.Get("Last-Modified") != "" || resp.Header.Get("ETag") != ""
}

// validators are a request's conditional headers.
type validators struct{ ims, inm string }

// takeValidators removes the conditional headers from h and returns them.
func takeValidators(h http.Header) validators {
	v := validators{ims: h.Get("If-Modified-Since"), inm: h.Get("If-None-Match")}
	h.Del("If-Modified-Since")
	h.Del("If-None-Match")
	return v
}

// match follows RFC 9110 §13.2.2: If-None-Match, when present, decides
// alone (weak comparison); If-Modified-Since counts only without it.
func (v validators) match(stored http.Header) bool {
	if v.inm != "" {
		etag := strings.TrimPrefix(stored.Get("ETag"), "W/")
		for _, tag := range strings.Split(v.inm, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || (etag != "" && strings.TrimPrefix(tag, "W/") == etag) {
				return true
			}
		}
		return false
	}
	ims, err := http.ParseTime(v.ims)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(stored.Get("Last-Modified"))
	return err == nil && !lm.After(ims)
}

// entry is a stored response. It is never modified once made, so a served
// copy needs no lock; refresh makes a new one.
type entry struct {
	header    http.Header // without Set-Cookie: a visitor's cookie is not everyone's
	body      []byte
	validated time.Time // last fetched or revalidated
}

func newEntry(resp *http.Response, now time.Time) (*entry, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxObjectBytes))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	h := resp.Header.Clone()
	h.Del("Set-Cookie")
	if resp.Request.Method == http.MethodGet {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return &entry{header: h, body: body, validated: now}, nil
}

// ask puts the entry's validators on the request to the origin.
func (en *entry) ask(h http.Header) {
	if lm := en.header.Get("Last-Modified"); lm != "" {
		h.Set("If-Modified-Since", lm)
	}
	if etag := en.header.Get("ETag"); etag != "" {
		h.Set("If-None-Match", etag)
	}
}

// refresh is the entry updated with a 304's headers (RFC 9111 §4.3.4).
func (en *entry) refresh(notModified http.Header, now time.Time) *entry {
	h := en.header.Clone()
	for k, vs := range notModified {
		switch k {
		case "Set-Cookie", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive":
			continue
		}
		h[k] = slices.Clone(vs)
	}
	return &entry{header: h, body: en.body, validated: now}
}

// response serves the entry to req, as a 304 when the client's validators
// match, with this answer's own cookies.
func (en *entry) response(req *http.Request, client validators, cookies []string) *http.Response {
	h := en.header.Clone()
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	resp := &http.Response{
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        h,
		Request:       req,
		ContentLength: int64(len(en.body)),
		Body:          io.NopCloser(bytes.NewReader(en.body)),
	}
	if req.Method == http.MethodHead {
		resp.ContentLength, resp.Body = 0, http.NoBody
	}
	if client.match(en.header) {
		resp.StatusCode = http.StatusNotModified
		resp.ContentLength, resp.Body = 0, http.NoBody
		h.Del("Content-Length")
		h.Del("Content-Type")
	}
	resp.Status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	return resp
}

// cache maps keys to entries, bounded.
type cache struct {
	mu  sync.Mutex
	max int
	m   map[string]*entry
}

func (c *cache) get(key string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *cache) put(key string, en *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m { // any victim will do in a demo
			delete(c.m, k)
			break
		}
	}
	c.m[key] = en
}

func (c *cache) delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// drain reads a little of the body and closes it, so the connection can go
// back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
