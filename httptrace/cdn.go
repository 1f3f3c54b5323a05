package httptrace

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Normalized cache results, whichever CDN answered.
const (
	CacheHit        = "hit"
	CacheMiss       = "miss"
	CacheRefreshHit = "refresh_hit" // stale copy revalidated with the origin (304)
	CacheBypass     = "bypass"
	CacheError      = "error"
	CacheUnknown    = "unknown"
)

// Providers recognised by ParseCDN.
const (
	ProviderCloudFront = "cloudfront"
	ProviderCloudflare = "cloudflare"
	ProviderFastly     = "fastly"
	ProviderAkamai     = "akamai"
)

// Where CDN.Cache was read from.
const (
	SourceXCache        = "x-cache"
	SourceXCacheHits    = "x-cache-hits"
	SourceCFCacheStatus = "cf-cache-status"
	SourceCacheStatus   = "cache-status"
	SourceServerTiming  = "server-timing"
)

// MaxHeaderEntries caps the entries the parsers return for one header
// field, so a hostile or broken response cannot make them allocate without
// bound.
const MaxHeaderEntries = 64

// maxServerTimingMs bounds a Server-Timing dur (about 11.6 days). Anything
// larger is nonsense, and staying below 2^53 ns keeps the ms <-> Duration
// conversion exact, so formatting and re-parsing an entry is lossless.
const maxServerTimingMs = 1e9

// CDN holds the CDN facts read from one response's headers.
type CDN struct {
	Provider     string         `json:"provider,omitempty"`     // "cloudfront", "cloudflare", "fastly", "akamai", "" when none recognised
	Cache        string         `json:"cache"`                  // one of the Cache* constants
	CacheRaw     string         `json:"cache_raw,omitempty"`    // the header value the result came from
	CacheSource  string         `json:"cache_source,omitempty"` // the header it came from: one of the Source* constants
	POP          string         `json:"pop,omitempty"`          // edge location code, e.g. "FRA56-P1"
	POPCity      string         `json:"pop_city,omitempty"`     // city of the POP's airport code, e.g. "Frankfurt"
	RequestID    string         `json:"request_id,omitempty"`   // X-Amz-Cf-Id, CF-Ray, ...
	HitLayer     string         `json:"hit_layer,omitempty"`    // cdn-hit-layer: "EDGE", "REC", "REC_SHIELD"/"Origin Shield"
	Age          time.Duration  `json:"-"`
	HasAge       bool           `json:"-"`
	Via          string         `json:"via,omitempty"`
	ServerTiming []ServerTiming `json:"server_timing,omitempty"` // cdn-* entries only
	Upstream     Upstream       `json:"upstream"`
}

// ServerTiming is one entry of a Server-Timing header.
type ServerTiming struct {
	Name        string        `json:"name"`
	Duration    time.Duration `json:"-"`
	HasDuration bool          `json:"-"`
	Desc        string        `json:"desc,omitempty"`
}

// Upstream are the edge's own timings towards the origin, from CloudFront's
// Server-Timing entries (zero when absent).
type Upstream struct {
	DNS             time.Duration `json:"-"`               // cdn-upstream-dns
	Connect         time.Duration `json:"-"`               // cdn-upstream-connect; 0 also means a reused connection
	FirstByte       time.Duration `json:"-"`               // cdn-upstream-fbl
	DownstreamFirst time.Duration `json:"-"`               // cdn-downstream-fbl
	Layer           string        `json:"layer,omitempty"` // cdn-upstream-layer: the tier that asked the origin
}

// CacheStatusEntry is one member of an RFC 9211 Cache-Status list: what one
// cache on the path did with the request.
type CacheStatusEntry struct {
	Cache     string `json:"cache"`                // the cache's identifier
	Hit       bool   `json:"hit,omitempty"`        // served from cache without going forward
	Fwd       string `json:"fwd,omitempty"`        // why it went forward: bypass, method, uri-miss, vary-miss, miss, request, stale, partial
	FwdStatus int    `json:"fwd_status,omitempty"` // status the next hop answered (0 = absent)
	TTL       int64  `json:"ttl,omitempty"`        // seconds of freshness left; negative when stale
	HasTTL    bool   `json:"has_ttl,omitempty"`
	Stored    bool   `json:"stored,omitempty"`    // the forwarded response was stored
	Collapsed bool   `json:"collapsed,omitempty"` // the request was collapsed with another
	Key       string `json:"key,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

// ParseCDN reads the CDN facts from response headers.
//
// Provider: CloudFront when X-Amz-Cf-Pop/X-Amz-Cf-Id is present, X-Cache
// says "... from cloudfront" or Via mentions CloudFront; else Cloudflare
// (CF-Ray, CF-Cache-Status); else Fastly (X-Served-By "cache-..."); else
// Akamai (X-Cache "... from ...akamai..."). CloudFront wins when stacked
// CDNs leave several sets of headers, since it is the CDN this tool measures.
//
// Cache result, first one that is not unknown: the provider's own header
// (X-Cache, CF-Cache-Status; Fastly falls back to X-Cache-Hits), then RFC
// 9211 Cache-Status, then a generic X-Cache (only with no provider, so an
// origin's own X-Cache behind Cloudflare is not taken for the CDN's), then
// Server-Timing cdn-cache-*.
func ParseCDN(h http.Header) CDN {
	c := CDN{Cache: CacheUnknown}

	xcache := joinedHeader(h, "X-Cache")
	xcResult, xcProvider := ParseXCache(xcache)
	amzPop := strings.TrimSpace(firstHeader(h, "X-Amz-Cf-Pop"))
	amzID := strings.TrimSpace(firstHeader(h, "X-Amz-Cf-Id"))
	ray := strings.TrimSpace(firstHeader(h, "Cf-Ray"))
	cfStatus := strings.TrimSpace(firstHeader(h, "Cf-Cache-Status"))
	servedBy := lastListMember(joinedHeader(h, "X-Served-By"))
	c.Via = joinedHeader(h, "Via")

	switch {
	case amzPop != "" || amzID != "" || xcProvider == ProviderCloudFront || containsFold(c.Via, "cloudfront"):
		c.Provider = ProviderCloudFront
	case ray != "" || cfStatus != "":
		c.Provider = ProviderCloudflare
	case hasPrefixFold(servedBy, "cache-"):
		c.Provider = ProviderFastly
	case xcProvider == ProviderAkamai:
		c.Provider = ProviderAkamai
	}

	c.Age, c.HasAge = parseAge(firstHeader(h, "Age"))

	// Server-Timing: keep the cdn-* entries and pull out what they say.
	var stCache, stCacheRaw, stPop, stRID string
	var seen [4]bool // dns, connect, fbl, downstream fbl: the first entry wins
	setUp := func(i int, d *time.Duration, t ServerTiming) {
		if t.HasDuration && !seen[i] {
			*d, seen[i] = t.Duration, true
		}
	}
	for _, t := range ParseServerTiming(headerValues(h, "Server-Timing")) {
		if !hasPrefixFold(t.Name, "cdn-") {
			continue
		}
		c.ServerTiming = append(c.ServerTiming, t)
		switch asciiLower(t.Name) {
		case "cdn-upstream-dns":
			setUp(0, &c.Upstream.DNS, t)
		case "cdn-upstream-connect":
			setUp(1, &c.Upstream.Connect, t)
		case "cdn-upstream-fbl":
			setUp(2, &c.Upstream.FirstByte, t)
		case "cdn-downstream-fbl":
			setUp(3, &c.Upstream.DownstreamFirst, t)
		case "cdn-upstream-layer":
			c.Upstream.Layer = firstNonEmpty(c.Upstream.Layer, t.Desc)
		case "cdn-hit-layer":
			c.HitLayer = firstNonEmpty(c.HitLayer, t.Desc)
		case "cdn-pop":
			stPop = firstNonEmpty(stPop, t.Desc)
		case "cdn-rid":
			stRID = firstNonEmpty(stRID, t.Desc)
		case "cdn-cache-hit", "cdn-cache-miss", "cdn-cache-refresh", "cdn-cache":
			if r := serverTimingCache(t); stCache == "" && r != CacheUnknown {
				stCache, stCacheRaw = r, t.String()
			}
		}
	}

	// Candidate sources of the cache result, in precedence order.
	type source struct{ name, raw, result string }
	var srcs []source
	switch c.Provider {
	case ProviderCloudFront, ProviderAkamai:
		srcs = append(srcs, source{SourceXCache, xcache, xcResult})
	case ProviderCloudflare:
		srcs = append(srcs, source{SourceCFCacheStatus, cfStatus, cloudflareCache(cfStatus)})
	case ProviderFastly:
		srcs = append(srcs, source{SourceXCache, xcache, xcResult})
		hits := strings.TrimSpace(lastListMember(joinedHeader(h, "X-Cache-Hits")))
		srcs = append(srcs, source{SourceXCacheHits, hits, fastlyHitsCache(hits)})
	}
	if cs := joinedHeader(h, "Cache-Status"); cs != "" {
		srcs = append(srcs, source{SourceCacheStatus, cs, cacheStatusResult(ParseCacheStatus(cs))})
	}
	if c.Provider == "" {
		srcs = append(srcs, source{SourceXCache, xcache, xcResult})
	}
	if stCache != "" {
		srcs = append(srcs, source{SourceServerTiming, stCacheRaw, stCache})
	}
	for _, s := range srcs {
		if s.result != CacheUnknown && s.result != "" {
			c.Cache, c.CacheRaw, c.CacheSource = s.result, s.raw, s.name
			break
		}
	}
	if c.CacheSource == "" {
		// Nothing mapped; still show what was there, so a new vocabulary
		// word is visible in the output instead of silently "unknown".
		for _, s := range srcs {
			if s.raw != "" {
				c.CacheRaw, c.CacheSource = s.raw, s.name
				break
			}
		}
	}

	switch c.Provider {
	case ProviderCloudFront:
		c.POP, c.RequestID = amzPop, amzID
	case ProviderCloudflare:
		c.POP, c.RequestID = dashSuffix(ray), ray
	case ProviderFastly:
		c.POP = dashSuffix(servedBy)
	}
	c.POP = firstNonEmpty(c.POP, stPop)
	c.RequestID = firstNonEmpty(c.RequestID, stRID)
	c.POPCity = AirportCity(c.POP)
	return c
}

// ParseXCache maps an X-Cache value to a normalized cache result and, when
// the value names it, the provider. A comma list (Fastly shielding:
// "MISS, HIT", or several X-Cache lines joined) is read from its last
// member, the cache nearest the client.
//
// Mappings (case-insensitive):
//
//	Hit, HIT, HIT-STALE, HIT-SYNTH, TCP_HIT, TCP_MEM_HIT, TCP_IMS_HIT,
//	TCP_NEGATIVE_HIT, TCP_REFRESH_FAIL_HIT         -> hit (served from cache,
//	                                                   stale ones included)
//	RefreshHit, TCP_REFRESH_HIT                     -> refresh_hit (revalidated
//	                                                   with the origin)
//	Miss, MISS, MISS-CLUSTER, TCP_MISS,
//	TCP_REFRESH_MISS                                -> miss
//	PASS                                            -> bypass (Fastly pass)
//	Redirect                                        -> bypass (CloudFront's own
//	                                                   HTTP->HTTPS 301; no cache
//	                                                   lookup, no origin)
//	LambdaGeneratedResponse,
//	FunctionGeneratedResponse                       -> bypass (made at the edge)
//	Error, LimitExceeded, CapacityExceeded,
//	TCP_DENIED                                      -> error (the edge answered
//	                                                   with an error of its own or
//	                                                   the origin's 4xx/5xx)
//	anything else                                   -> unknown
//
// Provider is "cloudfront" for "... from cloudfront", "akamai" when the
// host after "from" is an Akamai one, otherwise "" (bare Fastly/Varnish
// words do not say who sent them).
func ParseXCache(value string) (result, provider string) {
	m := strings.TrimSpace(lastListMember(value))
	if m == "" {
		return CacheUnknown, ""
	}
	word, host := m, ""
	if i := strings.IndexAny(m, " \t"); i >= 0 {
		word, host = m[:i], strings.TrimSpace(m[i+1:])
		if j := strings.IndexAny(host, " \t"); j >= 0 && asciiEqualFold(host[:j], "from") {
			host = strings.TrimSpace(host[j+1:])
		} else if asciiEqualFold(host, "from") {
			host = ""
		}
	}
	switch {
	case containsFold(host, "cloudfront"):
		provider = ProviderCloudFront
	case containsFold(host, "akamai"):
		provider = ProviderAkamai
	}
	return xcacheWord(asciiLower(word)), provider
}

func xcacheWord(w string) string {
	switch w {
	case "hit", "tcp_hit", "tcp_mem_hit", "tcp_ims_hit", "tcp_negative_hit", "tcp_refresh_fail_hit":
		return CacheHit
	case "refreshhit", "tcp_refresh_hit":
		return CacheRefreshHit
	case "miss", "tcp_miss", "tcp_refresh_miss":
		return CacheMiss
	case "pass", "redirect", "lambdageneratedresponse", "functiongeneratedresponse":
		return CacheBypass
	case "error", "limitexceeded", "capacityexceeded", "tcp_denied":
		return CacheError
	}
	// Fastly decorates its words: HIT-STALE, HIT-WAIT, MISS-CLUSTER, ...
	switch {
	case strings.HasPrefix(w, "hit-"):
		return CacheHit
	case strings.HasPrefix(w, "miss-"):
		return CacheMiss
	case strings.HasPrefix(w, "pass-"):
		return CacheBypass
	}
	return CacheUnknown
}

// cloudflareCache maps CF-Cache-Status:
//
//	HIT                 -> hit
//	STALE, UPDATING     -> hit (a stale copy served from cache; the origin was
//	                       unreachable or is being asked in the background)
//	REVALIDATED         -> refresh_hit (served after the origin confirmed it)
//	MISS, EXPIRED       -> miss (fetched from the origin; EXPIRED had a copy
//	                       but it was too old)
//	BYPASS, DYNAMIC     -> bypass (not eligible for cache, went to origin)
//	NONE, UNKNOWN, else -> unknown (e.g. a Worker made the response)
func cloudflareCache(v string) string {
	switch asciiLower(strings.TrimSpace(v)) {
	case "hit", "stale", "updating":
		return CacheHit
	case "revalidated":
		return CacheRefreshHit
	case "miss", "expired":
		return CacheMiss
	case "bypass", "dynamic":
		return CacheBypass
	}
	return CacheUnknown
}

// fastlyHitsCache reads the edge's X-Cache-Hits count when X-Cache is
// missing: a positive count means the object came from cache.
func fastlyHitsCache(v string) string {
	switch {
	case !isAllDigits(v):
		return CacheUnknown
	case strings.Trim(v, "0") == "":
		return CacheMiss
	}
	return CacheHit
}

// serverTimingCache maps CloudFront's cdn-cache-hit|miss|refresh flags and
// Akamai's cdn-cache;desc=HIT|MISS|REFRESH_HIT.
func serverTimingCache(t ServerTiming) string {
	switch asciiLower(t.Name) {
	case "cdn-cache-hit":
		return CacheHit
	case "cdn-cache-miss":
		return CacheMiss
	case "cdn-cache-refresh":
		return CacheRefreshHit
	case "cdn-cache":
		switch asciiLower(t.Desc) {
		case "hit":
			return CacheHit
		case "miss":
			return CacheMiss
		case "refresh_hit", "refresh":
			return CacheRefreshHit
		}
	}
	return CacheUnknown
}

// cacheStatusResult maps the LAST Cache-Status member: RFC 9211 has each
// cache append its member, so the first is nearest the origin and the last
// is the one that answered the client.
//
//	hit                              -> hit
//	fwd=stale with fwd-status=304    -> refresh_hit (stale copy revalidated)
//	fwd=bypass | method | request    -> bypass (the cache was not allowed or
//	                                    configured not to use a stored copy)
//	any other fwd (uri-miss, vary-miss, miss, partial, stale without 304,
//	unknown values)                  -> miss
//	neither                          -> unknown
func cacheStatusResult(entries []CacheStatusEntry) string {
	if len(entries) == 0 {
		return CacheUnknown
	}
	e := entries[len(entries)-1]
	switch fwd := asciiLower(e.Fwd); {
	case e.Hit:
		return CacheHit
	case fwd == "":
		return CacheUnknown
	case fwd == "stale" && e.FwdStatus == http.StatusNotModified:
		return CacheRefreshHit
	case fwd == "bypass" || fwd == "method" || fwd == "request":
		return CacheBypass
	}
	return CacheMiss
}

// parseAge reads Age (RFC 9111 delta-seconds). An overflowing value is
// taken as 2^31 s, as the RFC asks; anything that is not digits is ignored.
func parseAge(v string) (time.Duration, bool) {
	if i := strings.IndexByte(v, ','); i >= 0 { // "Age: 12, 12" from joined lines
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	if !isAllDigits(v) {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > 1<<31 {
		n = 1 << 31
	}
	return time.Duration(n) * time.Second, true
}

// ParseServerTiming parses Server-Timing header values (W3C Server Timing:
// `name;dur=12.3;desc="x", other`), one element per header line. It keeps
// every entry in order, at most MaxHeaderEntries in all. dur is in
// milliseconds; a dur that is not a non-negative decimal number (or is
// absurdly large) leaves HasDuration false. The first dur and desc of an
// entry win, as in the spec; unknown params are ignored. Garbage skips to the
// next entry, never failing the whole header.
func ParseServerTiming(values []string) []ServerTiming {
	var out []ServerTiming
	for _, v := range values {
		if len(out) >= MaxHeaderEntries {
			break
		}
		out = parseServerTimingValue(v, out)
	}
	return out
}

func parseServerTimingValue(s string, out []ServerTiming) []ServerTiming {
	i := 0
	for i < len(s) && len(out) < MaxHeaderEntries {
		i = skipOWS(s, i)
		if i >= len(s) {
			break
		}
		if s[i] == ',' {
			i++
			continue
		}
		start := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		if i == start {
			i = skipGarbage(s, i, false)
			continue
		}
		e := ServerTiming{Name: s[start:i]}
		hasDesc := false
		for {
			i = skipOWS(s, i)
			if i >= len(s) || s[i] == ',' {
				break
			}
			if s[i] != ';' {
				i = skipGarbage(s, i, true)
				continue
			}
			i = skipOWS(s, i+1)
			ps := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			pname := s[ps:i]
			i = skipOWS(s, i)
			if i >= len(s) || s[i] != '=' {
				continue // a param without a value says nothing
			}
			i = skipOWS(s, i+1)
			var val string
			if i < len(s) && s[i] == '"' {
				val, i = readQuoted(s, i)
			} else {
				// Lenient: an unquoted value runs to the next ; or , so
				// desc=Origin Shield survives.
				vs := i
				for i < len(s) && s[i] != ';' && s[i] != ',' {
					i++
				}
				val = trimOWS(s[vs:i])
			}
			switch asciiLower(pname) {
			case "dur":
				if !e.HasDuration {
					e.Duration, e.HasDuration = parseDurMs(val)
				}
			case "desc":
				if !hasDesc {
					e.Desc, hasDesc = val, true
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// parseDurMs reads a dur value in milliseconds. Only plain decimal numbers:
// strconv would also take hex floats, "Inf" and "NaN".
func parseDurMs(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if !strings.ContainsRune("0123456789.eE+-", rune(v[i])) {
			return 0, false
		}
	}
	ms, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(ms) || ms < 0 || ms > maxServerTimingMs {
		return 0, false
	}
	return time.Duration(math.Round(ms * float64(time.Millisecond))), true
}

// String formats the entry as Server-Timing syntax; ParseServerTiming reads
// it back to the same entry.
func (t ServerTiming) String() string {
	var b strings.Builder
	b.WriteString(t.Name)
	if t.HasDuration {
		b.WriteString(";dur=")
		b.WriteString(strconv.FormatFloat(float64(t.Duration)/float64(time.Millisecond), 'f', -1, 64))
	}
	if t.Desc != "" {
		b.WriteString(";desc=")
		writeQuoted(&b, t.Desc)
	}
	return b.String()
}

// ParseCacheStatus parses an RFC 9211 Cache-Status value (a Structured
// Fields list: `OriginCache; hit; ttl=1100, "CDN Co"; fwd=uri-miss; stored`)
// into its members, in header order (nearest the origin first), at most
// MaxHeaderEntries. It is lenient where RFC 8941 is strict: whitespace around
// ';', upper-case keys and tokens starting with a digit are accepted, a
// member that does not start with an identifier is skipped, and a bad
// parameter is skipped rather than failing the list.
func ParseCacheStatus(value string) []CacheStatusEntry {
	var out []CacheStatusEntry
	s, i := value, 0
	for i < len(s) && len(out) < MaxHeaderEntries {
		i = skipOWS(s, i)
		if i >= len(s) {
			break
		}
		if s[i] == ',' {
			i++
			continue
		}
		var e CacheStatusEntry
		switch {
		case s[i] == '"':
			e.Cache, i = readQuoted(s, i)
		case isTchar(s[i]):
			e.Cache, i = readSFToken(s, i)
		default:
			i = skipGarbage(s, i, false)
			continue
		}
		for {
			i = skipOWS(s, i)
			if i >= len(s) || s[i] == ',' {
				break
			}
			if s[i] != ';' {
				i = skipGarbage(s, i, true)
				continue
			}
			i = skipOWS(s, i+1)
			ks := i
			for i < len(s) && isSFKeyChar(s[i]) {
				i++
			}
			key := asciiLower(s[ks:i])
			var v bareItem
			hasVal := false
			if i < len(s) && s[i] == '=' {
				v, i = parseBareItem(s, i+1)
				hasVal = true
			}
			e.apply(key, v, hasVal)
		}
		out = append(out, e)
	}
	return out
}

// apply sets one parameter; later ones override earlier ones (RFC 8941
// parameters are a map).
func (e *CacheStatusEntry) apply(key string, v bareItem, hasVal bool) {
	flag := func(dst *bool) {
		switch {
		case !hasVal:
			*dst = true
		case v.kind == itemBool:
			*dst = v.b
		}
	}
	switch key {
	case "hit":
		flag(&e.Hit)
	case "stored":
		flag(&e.Stored)
	case "collapsed":
		flag(&e.Collapsed)
	case "fwd":
		if v.kind == itemToken || v.kind == itemString {
			e.Fwd = v.s
		}
	case "fwd-status":
		if v.kind == itemInteger && v.n >= 0 && v.n <= 999 {
			e.FwdStatus = int(v.n)
		}
	case "ttl":
		if v.kind == itemInteger {
			e.TTL, e.HasTTL = v.n, true
		}
	case "key":
		if v.kind == itemString || v.kind == itemToken {
			e.Key = v.s
		}
	case "detail":
		if v.kind == itemString || v.kind == itemToken {
			e.Detail = v.s
		}
	}
}

// String formats the member as Structured Fields; ParseCacheStatus reads it
// back to the same entry.
func (e CacheStatusEntry) String() string {
	var b strings.Builder
	writeSFTokenOrString(&b, e.Cache)
	if e.Hit {
		b.WriteString("; hit")
	}
	if e.Fwd != "" {
		b.WriteString("; fwd=")
		writeSFTokenOrString(&b, e.Fwd)
	}
	if e.FwdStatus != 0 {
		b.WriteString("; fwd-status=")
		b.WriteString(strconv.Itoa(e.FwdStatus))
	}
	if e.HasTTL {
		b.WriteString("; ttl=")
		b.WriteString(strconv.FormatInt(e.TTL, 10))
	}
	if e.Stored {
		b.WriteString("; stored")
	}
	if e.Collapsed {
		b.WriteString("; collapsed")
	}
	if e.Key != "" {
		b.WriteString("; key=")
		writeQuoted(&b, e.Key)
	}
	if e.Detail != "" {
		b.WriteString("; detail=")
		writeSFTokenOrString(&b, e.Detail)
	}
	return b.String()
}

type itemKind int

const (
	itemNone itemKind = iota
	itemInteger
	itemDecimal
	itemString
	itemToken
	itemBool
	itemBytes
)

type bareItem struct {
	kind itemKind
	s    string
	n    int64
	b    bool
}

// parseBareItem reads an RFC 8941 bare item at s[i:]. On garbage it returns
// itemNone without consuming it; the caller skips to the next ; or ,.
func parseBareItem(s string, i int) (bareItem, int) {
	if i >= len(s) {
		return bareItem{}, i
	}
	switch c := s[i]; {
	case c == '"':
		str, j := readQuoted(s, i)
		return bareItem{kind: itemString, s: str}, j
	case c == '?':
		if i+1 < len(s) && (s[i+1] == '0' || s[i+1] == '1') {
			return bareItem{kind: itemBool, b: s[i+1] == '1'}, i + 2
		}
	case c == '-' || isDigit(c):
		j := i + 1
		for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			j++
		}
		num := s[i:j]
		if strings.Contains(num, ".") {
			return bareItem{kind: itemDecimal, s: num}, j
		}
		digits := strings.TrimPrefix(num, "-")
		if digits == "" || len(digits) > 15 { // RFC 8941 integers have at most 15 digits
			return bareItem{}, j
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return bareItem{}, j
		}
		return bareItem{kind: itemInteger, n: n}, j
	case c == ':':
		if k := strings.IndexByte(s[i+1:], ':'); k >= 0 {
			return bareItem{kind: itemBytes, s: s[i+1 : i+1+k]}, i + k + 2
		}
		return bareItem{}, len(s)
	case isTchar(c):
		tok, j := readSFToken(s, i)
		return bareItem{kind: itemToken, s: tok}, j
	}
	return bareItem{}, i
}

// readSFToken reads a Structured Fields token (tchar plus ':' and '/').
func readSFToken(s string, i int) (string, int) {
	j := i
	for j < len(s) && (isTchar(s[j]) || s[j] == ':' || s[j] == '/') {
		j++
	}
	return s[i:j], j
}

func writeSFTokenOrString(b *strings.Builder, v string) {
	if isStrictSFToken(v) {
		b.WriteString(v)
		return
	}
	writeQuoted(b, v)
}

// isStrictSFToken reports whether v can be written as an RFC 8941 token
// (first char ALPHA or '*').
func isStrictSFToken(v string) bool {
	if v == "" || !(isAlpha(v[0]) || v[0] == '*') {
		return false
	}
	for i := 1; i < len(v); i++ {
		if !isTchar(v[i]) && v[i] != ':' && v[i] != '/' {
			return false
		}
	}
	return true
}

// readQuoted reads a quoted-string starting at s[i] == '"' and returns its
// unescaped content and the index after the closing quote. An unterminated
// string runs to the end of s.
func readQuoted(s string, i int) (string, int) {
	i++ // opening quote
	start := i
	for i < len(s) && s[i] != '"' && s[i] != '\\' {
		i++
	}
	if i >= len(s) || s[i] == '"' { // common case: no escapes, no copy
		str := s[start:i]
		if i < len(s) {
			i++
		}
		return str, i
	}
	var b strings.Builder
	b.WriteString(s[start:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1
		case c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i += 2
		default:
			if c != '\\' { // a lone trailing backslash is dropped
				b.WriteByte(c)
			}
			i++
		}
	}
	return b.String(), i
}

func writeQuoted(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// skipGarbage skips to the next ',' (or ';' when atSemicolon), stepping over
// quoted strings so a quoted comma does not end the entry early.
func skipGarbage(s string, i int, atSemicolon bool) int {
	for i < len(s) {
		switch s[i] {
		case ',':
			return i
		case ';':
			if atSemicolon {
				return i
			}
		case '"':
			_, i = readQuoted(s, i)
			continue
		}
		i++
	}
	return i
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// isTchar reports an RFC 9110 token character.
func isTchar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isSFKeyChar accepts RFC 8941 key characters, upper case too (leniency).
func isSFKeyChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// asciiLower lower-cases ASCII letters only: header vocabularies are ASCII,
// and Unicode folding would let "miſs" (long s) pass for "miss".
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && asciiEqualFold(s[:len(prefix)], prefix)
}

// containsFold is an ASCII case-insensitive strings.Contains for a lower-case
// needle.
func containsFold(s, lowerNeedle string) bool {
	for i := 0; i+len(lowerNeedle) <= len(s); i++ {
		if asciiEqualFold(s[i:i+len(lowerNeedle)], lowerNeedle) {
			return true
		}
	}
	return false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lastListMember returns the last non-empty member of a comma list, trimmed,
// without splitting the whole list.
func lastListMember(v string) string {
	for v != "" {
		i := strings.LastIndexByte(v, ',')
		if m := strings.TrimSpace(v[i+1:]); m != "" {
			return m
		}
		if i < 0 {
			break
		}
		v = v[:i]
	}
	return ""
}

// dashSuffix returns the upper-cased part after the last '-' when it looks
// like a location code: "8a1b2c3d4e5f6789-FRA" and "cache-lhr7330-LHR" give
// the airport code.
func dashSuffix(v string) string {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return ""
	}
	suf := strings.TrimSpace(v[i+1:])
	if suf == "" || len(suf) > 8 {
		return ""
	}
	for j := 0; j < len(suf); j++ {
		if !isAlpha(suf[j]) && !isDigit(suf[j]) {
			return ""
		}
	}
	return strings.ToUpper(suf)
}

// headerValues is h.Values, plus a case-insensitive search for maps built
// by hand with non-canonical keys. Matches are taken in key order so the
// result does not depend on map iteration.
func headerValues(h http.Header, canonical string) []string {
	if v, ok := h[canonical]; ok {
		return v
	}
	var keys []string
	for k := range h {
		if asciiEqualFold(k, canonical) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 1 {
		return h[keys[0]]
	}
	sort.Strings(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, h[k]...)
	}
	return vs
}

func firstHeader(h http.Header, name string) string {
	if v := headerValues(h, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// joinedHeader joins all lines of a header into one comma list, as RFC 9110
// allows for list-valued fields.
func joinedHeader(h http.Header, name string) string {
	v := headerValues(h, name)
	if len(v) == 1 {
		return strings.TrimSpace(v[0])
	}
	return strings.TrimSpace(strings.Join(v, ", "))
}

// JSON: durations appear as float seconds, omitted when absent.

func seconds(d time.Duration) *float64 {
	if d == 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

// fromSeconds converts JSON seconds back, clamping what a Duration cannot hold.
func fromSeconds(p *float64) time.Duration {
	if p == nil || math.IsNaN(*p) || *p <= 0 {
		return 0
	}
	ns := *p * float64(time.Second)
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(math.Round(ns))
}

// MarshalJSON adds age_seconds (when HasAge).
func (c CDN) MarshalJSON() ([]byte, error) {
	type plain CDN
	var age *float64
	if c.HasAge {
		s := c.Age.Seconds()
		age = &s
	}
	return json.Marshal(struct {
		plain
		AgeSeconds *float64 `json:"age_seconds,omitempty"`
	}{plain(c), age})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *CDN) UnmarshalJSON(b []byte) error {
	type plain CDN
	aux := struct {
		*plain
		AgeSeconds *float64 `json:"age_seconds"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	c.HasAge = aux.AgeSeconds != nil
	if c.HasAge {
		c.Age = fromSeconds(aux.AgeSeconds)
	}
	return nil
}

// MarshalJSON adds duration_seconds (when HasDuration, zero included).
func (t ServerTiming) MarshalJSON() ([]byte, error) {
	type plain ServerTiming
	var dur *float64
	if t.HasDuration {
		s := t.Duration.Seconds()
		dur = &s
	}
	return json.Marshal(struct {
		plain
		DurationSeconds *float64 `json:"duration_seconds,omitempty"`
	}{plain(t), dur})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *ServerTiming) UnmarshalJSON(b []byte) error {
	type plain ServerTiming
	aux := struct {
		*plain
		DurationSeconds *float64 `json:"duration_seconds"`
	}{plain: (*plain)(t)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	t.HasDuration = aux.DurationSeconds != nil
	t.Duration = fromSeconds(aux.DurationSeconds)
	return nil
}

type upstreamJSON struct {
	DNS             *float64 `json:"dns_seconds,omitempty"`
	Connect         *float64 `json:"connect_seconds,omitempty"`
	FirstByte       *float64 `json:"first_byte_seconds,omitempty"`
	DownstreamFirst *float64 `json:"downstream_first_byte_seconds,omitempty"`
	Layer           string   `json:"layer,omitempty"`
}

// MarshalJSON writes the timings as seconds, omitting zero ones (the
// cdn-* Server-Timing entries keep an explicit 0, e.g. a reused connection).
func (u Upstream) MarshalJSON() ([]byte, error) {
	return json.Marshal(upstreamJSON{
		DNS:             seconds(u.DNS),
		Connect:         seconds(u.Connect),
		FirstByte:       seconds(u.FirstByte),
		DownstreamFirst: seconds(u.DownstreamFirst),
		Layer:           u.Layer,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (u *Upstream) UnmarshalJSON(b []byte) error {
	var j upstreamJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*u = Upstream{
		DNS:             fromSeconds(j.DNS),
		Connect:         fromSeconds(j.Connect),
		FirstByte:       fromSeconds(j.FirstByte),
		DownstreamFirst: fromSeconds(j.DownstreamFirst),
		Layer:           j.Layer,
	}
	return nil
}
