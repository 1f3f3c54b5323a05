package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// WireOptions say what to request. Nothing but GET, HEAD and OPTIONS is
// ever sent unless MethodPath names a path that is safe to receive POST,
// PUT, PATCH and DELETE.
type WireOptions struct {
	// URL is the page as viewers reach it (through the CDN): https://.
	URL string
	// HTTPURL is where to check the plain-HTTP redirect; default: URL with
	// http:// and no port.
	HTTPURL string
	// OriginURL reaches the origin straight (e.g. https://my-alb-123...);
	// the audited paths are requested on its host.
	OriginURL string
	// ConnectTo reaches the origin by dialling this host[:port] for URL,
	// keeping URL's host name for Host and SNI. Exclusive with OriginURL.
	ConnectTo string
	// EchoPath names a path whose response body shows the request it got
	// (cookies and query string): a unique cookie and query are sent there
	// through the edge and looked for in the answer.
	EchoPath string
	// MethodPath names a path safe to receive POST, PUT, PATCH and DELETE;
	// without it only OPTIONS is sent (to the URL's path).
	MethodPath string
	// Requests is how many GETs read the edge's cache result (default 3).
	Requests int
	// Probe holds the request options every probe shares (CA roots,
	// timeout, resolver, ...); Method and the like are set per check.
	Probe httptrace.Options
}

// Validate reports options that cannot work.
func (o WireOptions) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--url %q: want https://host/path", o.URL)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("--url %q: want the https:// URL (the http:// redirect is checked from it, or from --http-url)", o.URL)
	}
	if o.OriginURL != "" && o.ConnectTo != "" {
		return errors.New("--origin-url and --connect-to both name the origin: give one")
	}
	if o.OriginURL != "" {
		if ou, err := url.Parse(o.OriginURL); err != nil || ou.Host == "" || (ou.Scheme != "https" && ou.Scheme != "http") {
			return fmt.Errorf("--origin-url %q: want http(s)://host", o.OriginURL)
		}
	}
	if o.HTTPURL != "" {
		if hu, err := url.Parse(o.HTTPURL); err != nil || hu.Scheme != "http" || hu.Host == "" {
			return fmt.Errorf("--http-url %q: want http://host[:port]/path", o.HTTPURL)
		}
	}
	for name, p := range map[string]string{"--echo-path": o.EchoPath, "--method-path": o.MethodPath} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%s %q: want a path starting with /", name, p)
		}
	}
	return o.Probe.Validate()
}

// Thresholds of the wire checks.
const (
	// A 304 is slow when its server wait is more than this share of the
	// full 200's, once the 200 takes long enough for the share to mean
	// anything.
	slow304Share  = 0.5
	slow304Floor  = 20 * time.Millisecond
	conditionals  = 3 // conditional GETs, for a median
	bodyKeepLimit = 256 << 10
	cfMethodError = "not configured to allow the HTTP request method"
)

// Wire checks the site from the wire. Only failures to build the requests
// are errors; a site that does not answer is a finding.
func Wire(ctx context.Context, o WireOptions) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Requests <= 0 {
		o.Requests = 3
	}
	w := &wire{o: o, r: &Report{Subjects: []string{o.URL}}}
	w.site, _ = url.Parse(o.URL)
	if o.OriginURL != "" {
		w.origin, _ = url.Parse(o.OriginURL)
	}
	w.run(ctx)
	w.r.Sort()
	return w.r, nil
}

type wire struct {
	o      WireOptions
	r      *Report
	site   *url.URL
	origin *url.URL // nil: the origin way is ConnectTo, or none
}

func (w *wire) hasOrigin() bool { return w.origin != nil || w.o.ConnectTo != "" }

// edgeURL is the site's URL for path (with its query), "" meaning the URL itself.
func (w *wire) edgeURL(path string) string {
	if path == "" {
		return w.site.String()
	}
	u := *w.site
	ref, _ := url.Parse(path)
	u.Path, u.RawPath, u.RawQuery = ref.Path, ref.RawPath, ref.RawQuery
	return u.String()
}

// originProbe requests path ("" for the URL's own) straight at the origin.
func (w *wire) originProbe(ctx context.Context, path string, opts httptrace.Options) *httptrace.Result {
	if w.origin == nil {
		opts.ConnectTo = w.o.ConnectTo
		return httptrace.Probe(ctx, w.edgeURL(path), opts)
	}
	u := *w.origin
	if path == "" {
		path = w.site.RequestURI()
	}
	ref, _ := url.Parse(path)
	u.Path, u.RawPath, u.RawQuery = ref.Path, ref.RawPath, ref.RawQuery
	return httptrace.Probe(ctx, u.String(), opts)
}

func (w *wire) opts() httptrace.Options {
	o := w.o.Probe
	o.Method, o.Body, o.Header = "", nil, o.Header.Clone()
	o.Reuse, o.Conditional, o.KeepBody, o.NoRedirects = false, false, false, false
	return o
}

func (w *wire) run(ctx context.Context) {
	first, ok := w.cache(ctx)
	if !ok {
		return
	}
	w.redirect(ctx)
	w.methods(ctx)
	originTLS := w.conditional(ctx)
	w.tls(first, originTLS)
	w.echo(ctx)
}

// cache sends Requests GETs to the page through the edge and reads what
// its cache did with each. It returns the first result; ok is false when
// the site did not answer at all.
func (w *wire) cache(ctx context.Context) (first *httptrace.Result, ok bool) {
	opts := w.opts()
	opts.ServerTiming = true
	var words []string
	var results []string
	for i := range w.o.Requests {
		res := httptrace.Probe(ctx, w.site.String(), opts)
		if i == 0 {
			first = res
			if !res.OK() {
				w.r.add(CheckUnreachable.finding("GET "+w.site.String(), res.Err.Error(), "an answer"))
				return res, false
			}
			w.r.measure("edge_ttfb_seconds", res.Timings.TTFB.Seconds())
		}
		if !res.OK() {
			words = append(words, "error: "+res.Err.Message)
			continue
		}
		result, raw := cacheResult(res.CDN)
		results = append(results, result)
		words = append(words, fmt.Sprintf("%d %s", res.Status, orDash(raw)))
		if i == 0 && len(res.CDN.ServerTiming) > 0 {
			parts := make([]string, len(res.CDN.ServerTiming))
			for j, t := range res.CDN.ServerTiming {
				parts[j] = t.String()
			}
			w.r.fact("edge Server-Timing", "%s", strings.Join(parts, ", "))
		}
	}
	w.r.fact("edge cache", "%d GETs of %s: %s", w.o.Requests, w.site.String(), strings.Join(words, "; "))
	if first.CDN.POP != "" {
		w.r.fact("edge POP", "%s %s", first.CDN.POP, first.CDN.POPCity)
	}
	if slices.Contains(results, httptrace.CacheRefreshHit) {
		w.r.fact("edge revalidation", "RefreshHit seen: the edge keeps a copy and revalidates it with the origin (TTL 0 at work)")
	}
	path := "GET " + w.site.String() + " (X-Cache)"
	switch {
	case slices.Contains(results, httptrace.CacheHit):
		w.r.add(CheckCacheHit.finding(path, strings.Join(words, "; "), "Miss or RefreshHit on every request (TTL 0)"))
	case len(results) > 0 && !slices.ContainsFunc(results, func(s string) bool { return s != httptrace.CacheUnknown }) && first.CDN.CacheRaw == "":
		w.r.add(CheckCacheHeader.finding(path, "no cache header in the answers", "X-Cache: RefreshHit from cloudfront (or Miss)"))
	case !slices.Contains(results, httptrace.CacheRefreshHit) && (first.LastModified != "" || first.ETag != "") &&
		slices.Contains(results, httptrace.CacheMiss):
		w.r.add(CheckRefreshHit.finding(path, strings.Join(words, "; "), "RefreshHit after the first request"))
	}
	return first, true
}

// cacheResult reads the normalized cache result, with nginx's
// $upstream_cache_status words (as an X-Cache-like header of a test edge)
// mapped too: REVALIDATED is a refresh hit, EXPIRED a miss (a stale copy
// fetched again in full), STALE and UPDATING hits.
func cacheResult(c httptrace.CDN) (result, raw string) {
	raw = c.CacheRaw
	if c.Cache != httptrace.CacheUnknown {
		return c.Cache, raw
	}
	word, _, _ := strings.Cut(strings.TrimSpace(raw), " ")
	switch strings.ToUpper(word) {
	case "REVALIDATED":
		return httptrace.CacheRefreshHit, raw
	case "EXPIRED":
		return httptrace.CacheMiss, raw
	case "STALE", "UPDATING":
		return httptrace.CacheHit, raw
	case "BYPASS":
		return httptrace.CacheBypass, raw
	}
	return httptrace.CacheUnknown, raw
}

// redirect checks that plain HTTP answers with a redirect to HTTPS, and
// what that costs.
func (w *wire) redirect(ctx context.Context) {
	target := w.o.HTTPURL
	if target == "" {
		u := *w.site
		u.Scheme, u.Host = "http", u.Hostname()
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]"
		}
		target = u.String()
	}
	opts := w.opts()
	opts.NoRedirects = true
	res := httptrace.Probe(ctx, target, opts)
	path := "GET " + target
	const want = "301 to https:// (redirect-to-https)"
	if !res.OK() {
		w.r.add(CheckHTTPRedirect.at(Low, path, "no answer on plain HTTP ("+res.Err.Error()+"): visitors typing the bare name get an error", want))
		return
	}
	loc := res.Location
	switch {
	case res.Status >= 300 && res.Status < 400 && strings.HasPrefix(strings.ToLower(loc), "https://"):
		cost := res.Timings.Total
		w.r.measure("redirect_cost_seconds", cost.Seconds())
		w.r.fact("http redirect", "%s → %d %s (%s: connect %s, wait %s)", target, res.Status, loc,
			ms(cost), ms(res.Timings.Connect), ms(res.Timings.TTFB))
		w.r.add(CheckRedirectCost.finding(path, fmt.Sprintf("%d to %s: %s before the https request can start (a connection and a round trip)", res.Status, loc, ms(cost)),
			"no redirect for returning visitors (HSTS)"))
	case res.Status >= 300 && res.Status < 400:
		w.r.add(CheckHTTPRedirect.finding(path, fmt.Sprintf("%d to %s (not https)", res.Status, orDash(loc)), want))
	case res.Status == http.StatusForbidden:
		w.r.add(CheckHTTPRedirect.at(Low, path, "403 (https-only): plain-HTTP visitors get an error", want))
	default:
		w.r.add(CheckHTTPRedirect.finding(path, fmt.Sprintf("%d: the page is served over plain HTTP", res.Status), want))
	}
}

// methods checks that OPTIONS (and, on a safe path, POST, PUT, PATCH and
// DELETE) pass the edge. An edge 403 counts as blocked when CloudFront says
// so, or when the origin answers the same request otherwise, or (no origin
// given) when a GET of the same path is not refused.
func (w *wire) methods(ctx context.Context) {
	optionsPath := w.o.MethodPath
	methods := []string{http.MethodOptions}
	if w.o.MethodPath != "" {
		methods = append(methods, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete)
	}
	var blocked, seen []string
	getStatus := -1
	for _, m := range methods {
		path := w.o.MethodPath
		if m == http.MethodOptions {
			path = optionsPath
		}
		opts := w.opts()
		opts.Method, opts.NoRedirects, opts.KeepBody, opts.BodyLimit = m, true, true, bodyKeepLimit
		if m != http.MethodOptions && m != http.MethodDelete {
			opts.Body = []byte("edgeprobe audit: method check\n")
			opts.Header = cloneOrNew(opts.Header)
			opts.Header.Set("Content-Type", "text/plain")
		}
		edge := httptrace.Probe(ctx, w.edgeURL(path), opts)
		if !edge.OK() {
			seen = append(seen, fmt.Sprintf("%s: error %s", m, edge.Err.Message))
			continue
		}
		desc := fmt.Sprintf("%s → %d", m, edge.Status)
		originStatus := 0
		if w.hasOrigin() {
			if o := w.originProbe(ctx, path, opts); o.OK() {
				originStatus = o.Status
				desc += fmt.Sprintf(" (origin %d)", o.Status)
			}
		}
		seen = append(seen, desc)
		if edge.Status != http.StatusForbidden && edge.Status != http.StatusMethodNotAllowed {
			continue
		}
		cloudfront := bytes.Contains(edge.Body, []byte(cfMethodError)) ||
			(edge.CDN.Provider == httptrace.ProviderCloudFront && edge.CDN.Cache == httptrace.CacheError)
		var isBlocked bool
		switch {
		case cloudfront:
			isBlocked = true
		case originStatus != 0:
			isBlocked = originStatus != edge.Status
		case edge.Status == http.StatusForbidden:
			if getStatus < 0 {
				g := w.opts()
				g.NoRedirects = true
				getStatus = httptrace.Probe(ctx, w.edgeURL(path), g).Status
			}
			isBlocked = getStatus > 0 && getStatus != http.StatusForbidden
		}
		if isBlocked {
			blocked = append(blocked, desc)
		}
	}
	where := w.edgeURL(optionsPath)
	w.r.fact("methods", "%s: %s", where, strings.Join(seen, "; "))
	if w.o.MethodPath == "" {
		w.r.fact("methods", "POST, PUT, PATCH and DELETE not sent: give --method-path PATH (a path safe to receive them) to check them")
	}
	if len(blocked) > 0 {
		w.r.add(CheckMethodBlocked.finding(strings.Join(methods, ", ")+" "+where, strings.Join(blocked, "; ")+" at the edge",
			"every method reaches the origin"))
	}
}

func cloneOrNew(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h
}

// conditional checks the origin's validators and its 304 (straight at the
// origin when one is given, else through the edge), and returns the
// origin's TLS facts.
func (w *wire) conditional(ctx context.Context) *httptrace.TLSInfo {
	opts := w.opts()
	opts.Conditional = true
	where, via := w.site.String(), "through the edge"
	if w.hasOrigin() {
		via = "at the origin"
		if w.origin != nil {
			where = w.origin.Scheme + "://" + w.origin.Host + w.site.RequestURI()
		} else {
			where += " (connect to " + w.o.ConnectTo + ")"
		}
	}
	var full, cond []time.Duration
	var originTLS *httptrace.TLSInfo
	for i := range conditionals {
		var res *httptrace.Result
		if w.hasOrigin() {
			res = w.originProbe(ctx, "", opts)
		} else {
			res = httptrace.Probe(ctx, w.site.String(), opts)
		}
		if !res.OK() {
			if w.hasOrigin() {
				w.r.add(CheckOriginUnreachable.finding("GET "+where, res.Err.Error(), "an answer"))
			}
			return nil
		}
		if i == 0 {
			if w.hasOrigin() {
				originTLS = res.TLS
				w.r.measure("origin_ttfb_seconds", res.Timings.TTFB.Seconds())
				if res.TLS != nil {
					w.r.measure("origin_tls_seconds", res.Timings.TLS.Seconds())
				}
			}
			if res.LastModified == "" && res.ETag == "" {
				w.r.add(CheckValidators.finding("GET "+where, fmt.Sprintf("%d without Last-Modified or ETag (%s)", res.Status, via),
					"Last-Modified or ETag on every 200"))
				return originTLS
			}
			w.r.fact("validators", "%s %s: Last-Modified %q, ETag %q", where, via, res.LastModified, res.ETag)
		}
		c := res.Conditional
		if c == nil || !c.Sent {
			return originTLS
		}
		if c.Error != nil || !c.NotModified {
			is := fmt.Sprintf("conditional GET answered %d", c.Status)
			if c.Error != nil {
				is = "conditional GET failed: " + c.Error.Error()
			}
			w.r.add(CheckNotModified.finding("GET "+where+" (If-Modified-Since / If-None-Match)", is+" ("+via+")", "304 Not Modified"))
			return originTLS
		}
		full = append(full, res.Timings.TTFB)
		cond = append(cond, c.Timings.TTFB)
	}
	t200, t304 := median(full), median(cond)
	w.r.measure("ttfb_200_seconds", t200.Seconds())
	w.r.measure("ttfb_304_seconds", t304.Seconds())
	w.r.fact("revalidation", "%s %s: 304 wait %s vs 200 wait %s (median of %d)", where, via, ms(t304), ms(t200), len(full))
	if t200 >= slow304Floor && float64(t304) > slow304Share*float64(t200) {
		w.r.add(CheckNotModifiedSlow.finding("GET "+where+" (conditional)",
			fmt.Sprintf("304 after %s, the full 200 after %s", ms(t304), ms(t200)),
			fmt.Sprintf("a 304 well under half the 200's wait (< %s)", ms(time.Duration(slow304Share*float64(t200))))))
	}
	return originTLS
}

// tlsRank orders TLS version names as tls.VersionName writes them.
var tlsRank = map[string]int{"SSLv3": 0, "TLS 1.0": 1, "TLS 1.1": 2, "TLS 1.2": 3, "TLS 1.3": 4}

func (w *wire) tls(edge *httptrace.Result, origin *httptrace.TLSInfo) {
	if edge.TLS != nil {
		t := edge.TLS
		w.r.measure("edge_tls_seconds", edge.Timings.TLS.Seconds())
		w.r.fact("edge TLS", "%s, ALPN %s, cipher %s, handshake %s, certificate %s (expires %s)", t.Version, orDash(t.ALPN), t.CipherSuite,
			ms(edge.Timings.TLS), t.Subject, t.NotAfter.Format("2006-01-02"))
		if r, ok := tlsRank[t.Version]; ok && r < tlsRank["TLS 1.2"] {
			w.r.add(CheckEdgeTLS.finding("TLS "+w.site.Host, t.Version, "TLS 1.2 or 1.3"))
		}
		if t.ALPN != "h2" && !w.o.Probe.DisableHTTP2 {
			w.r.add(CheckEdgeALPN.finding("TLS "+w.site.Host+" (ALPN)", orDash(t.ALPN)+" (no HTTP/2)", "h2"))
		}
	}
	if origin != nil {
		w.r.fact("origin TLS", "%s, ALPN %s, cipher %s", origin.Version, orDash(origin.ALPN), origin.CipherSuite)
		if r, ok := tlsRank[origin.Version]; ok && r < tlsRank["TLS 1.2"] {
			w.r.add(CheckOriginWireTLS.finding("TLS origin", origin.Version, "TLS 1.2 or 1.3"))
		}
	}
	if e, o := w.r.Measurements["edge_tls_seconds"], w.r.Measurements["origin_tls_seconds"]; e > 0 && o > 0 {
		w.r.fact("TLS handshake", "edge %s vs origin %s", ms(seconds(e)), ms(seconds(o)))
	}
}

// echo sends a unique cookie and query string through the edge to the echo
// path and looks for them in the answer.
func (w *wire) echo(ctx context.Context) {
	if w.o.EchoPath == "" {
		return
	}
	ctoken, qtoken := "c"+token(), "q"+token()
	u := *w.site
	ref, _ := url.Parse(w.o.EchoPath)
	u.Path, u.RawPath = ref.Path, ref.RawPath
	q := ref.Query()
	q.Set("edgeprobe_audit", qtoken)
	u.RawQuery = q.Encode()
	opts := w.opts()
	opts.KeepBody, opts.BodyLimit = true, bodyKeepLimit
	opts.Header = cloneOrNew(opts.Header)
	opts.Header.Add("Cookie", "edgeprobe_audit="+ctoken)
	res := httptrace.Probe(ctx, u.String(), opts)
	path := "GET " + u.String()
	if !res.OK() || res.Status >= 400 {
		msg := fmt.Sprintf("%d", res.Status)
		if !res.OK() {
			msg = res.Err.Error()
		}
		w.r.fact("echo", "%s failed (%s): cookie and query forwarding not checked", u.String(), msg)
		return
	}
	gotCookie, gotQuery := bytes.Contains(res.Body, []byte(ctoken)), bytes.Contains(res.Body, []byte(qtoken))
	w.r.fact("echo", "%s: cookie %s, query string %s at the origin", u.String(), seenWord(gotCookie), seenWord(gotQuery))
	if !gotCookie {
		w.r.add(CheckEchoCookie.finding(path+" (Cookie: edgeprobe_audit=…)", "the cookie did not reach the origin", "the cookie in the echoed request"))
	}
	if !gotQuery {
		w.r.add(CheckEchoQuery.finding(path, "the query string did not reach the origin", "the query string in the echoed request"))
	}
}

func seenWord(b bool) string {
	if b {
		return "seen"
	}
	return "NOT seen"
}

func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// ms writes a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
