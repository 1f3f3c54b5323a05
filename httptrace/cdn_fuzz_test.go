package httptrace

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var validCache = map[string]bool{
	CacheHit: true, CacheMiss: true, CacheRefreshHit: true, CacheBypass: true, CacheError: true, CacheUnknown: true,
}

var serverTimingSeeds = []string{
	`cdn-upstream-layer;desc="EDGE",cdn-upstream-dns;dur=0,cdn-upstream-connect;dur=114,cdn-upstream-fbl;dur=177,cdn-cache-miss,cdn-pop;desc="PHX50-C2",cdn-rid;desc="yNPs==",cdn-downstream-fbl;dur=436`,
	`miss, db;dur=53, app;dur=47.2`,
	"cache;desc=\"Cache Read\";dur=23.2\ncdn-cache-hit, cdn-hit-layer;desc=\"REC_SHIELD\"",
	`a;desc="x, y; z";dur=1, b;desc="say \"hi\" \\o/"`,
	`a;dur=-1, b;dur=1e400, c;dur=0x10, d;dur=NaN, e;desc="unterminated`,
	`@@@, x y;dur=3, ;;;,,, =;=, a;dur`,
	`cdn-hit-layer;desc=Origin Shield`,
}

var cacheStatusSeeds = []string{
	`OriginCache; hit; ttl=1100, "CDN Company Here"; fwd=uri-miss; stored`,
	`ReverseProxyCache; fwd=stale; fwd-status=304; collapsed; key="https://a/b"; detail=max-age; ttl=-30; stored=?0`,
	`Origin;hit=?1 ,  Shield ; fwd=vary-miss;fwd-status=200,Edge;hit=?0;fwd=miss`,
	`@@, (inner list), good; hit, ; , "s,t"; fwd=request; key=:AQID:; ttl=1.5`,
	`c; ttl=1234567890123456; fwd-status=-1; detail="a \"b\""`,
}

var xcacheSeeds = []string{
	"Hit from cloudfront", "Miss from cloudfront", "RefreshHit from cloudfront", "Error from cloudfront",
	"LimitExceeded from cloudfront", "Redirect from cloudfront", "CapacityExceeded from cloudfront",
	"HIT, MISS", "MISS, HIT, ", "HIT-STALE", "PASS",
	"TCP_MEM_HIT from a23-45-67-89.deploy.akamaitechnologies.com (AkamaiGHost/11.4.2-1) (-)",
	"", ",,,", "miſs",
}

var cdnSeeds = []string{
	"X-Cache: Hit from cloudfront\nX-Amz-Cf-Pop: FRA56-P1\nX-Amz-Cf-Id: abc==\nAge: 12\nVia: 1.1 x.cloudfront.net (CloudFront)",
	"X-Cache: Miss from cloudfront\nServer-Timing: cdn-upstream-dns;dur=0,cdn-upstream-connect;dur=114,cdn-cache-miss\nServer-Timing: cdn-pop;desc=\"PHX50-C2\"",
	"Cf-Cache-Status: HIT\nCf-Ray: 8a1b2c3d4e5f6789-FRA",
	"X-Served-By: cache-fra19120-FRA, cache-lhr7330-LHR\nX-Cache: HIT, MISS\nX-Cache-Hits: 3, 0",
	"Cache-Status: OriginCache; hit, Edge; fwd=stale; fwd-status=304",
	"x-cache: hit from cloudfront\nx-amz-cf-pop: dub2-c1\nX-CACHE: MISS",
	"Age: 99999999999999999999999\nServer-Timing: cdn-cache-refresh",
}

// checkServerTiming holds the invariants of any ParseServerTiming result.
func checkServerTiming(t *testing.T, got []ServerTiming) {
	t.Helper()
	if len(got) > MaxHeaderEntries {
		t.Fatalf("%d entries, cap is %d", len(got), MaxHeaderEntries)
	}
	for _, e := range got {
		if e.Name == "" {
			t.Fatalf("entry without a name: %+v", e)
		}
		for i := 0; i < len(e.Name); i++ {
			if !isTchar(e.Name[i]) {
				t.Fatalf("name %q is not a token", e.Name)
			}
		}
		if e.Duration < 0 || e.Duration > time.Duration(maxServerTimingMs)*time.Millisecond {
			t.Fatalf("duration out of range: %+v", e)
		}
		if !e.HasDuration && e.Duration != 0 {
			t.Fatalf("duration without HasDuration: %+v", e)
		}
	}
}

func FuzzParseServerTiming(f *testing.F) {
	for _, s := range serverTimingSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := ParseServerTiming(strings.Split(in, "\n")) // each line one header field line
		checkServerTiming(t, got)

		// Formatting and re-parsing gives the same entries.
		parts := make([]string, len(got))
		for i, e := range got {
			parts[i] = e.String()
		}
		again := ParseServerTiming([]string{strings.Join(parts, ", ")})
		if len(got) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of %q:\n got  %+v\n want %+v", strings.Join(parts, ", "), again, got)
		}
	})
}

func FuzzParseCacheStatus(f *testing.F) {
	for _, s := range cacheStatusSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := ParseCacheStatus(in)
		if len(got) > MaxHeaderEntries {
			t.Fatalf("%d entries, cap is %d", len(got), MaxHeaderEntries)
		}
		for _, e := range got {
			if e.FwdStatus < 0 || e.FwdStatus > 999 {
				t.Fatalf("fwd-status out of range: %+v", e)
			}
			if !e.HasTTL && e.TTL != 0 {
				t.Fatalf("ttl without HasTTL: %+v", e)
			}
		}
		if r := cacheStatusResult(got); !validCache[r] {
			t.Fatalf("result %q", r)
		}

		parts := make([]string, len(got))
		for i, e := range got {
			parts[i] = e.String()
		}
		again := ParseCacheStatus(strings.Join(parts, ", "))
		if len(got) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of %q:\n got  %+v\n want %+v", strings.Join(parts, ", "), again, got)
		}
	})
}

// asciiUpper upper-cases ASCII only; strings.ToUpper would also turn "ſ"
// into "S" and change what the value means.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

func FuzzParseXCache(f *testing.F) {
	for _, s := range xcacheSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, p := ParseXCache(in)
		if !validCache[r] {
			t.Fatalf("result %q", r)
		}
		if p != "" && p != ProviderCloudFront && p != ProviderAkamai {
			t.Fatalf("provider %q", p)
		}
		if r2, p2 := ParseXCache(asciiUpper(in)); r2 != r || p2 != p {
			t.Fatalf("case matters: %q -> %q,%q but upper -> %q,%q", in, r, p, r2, p2)
		}
		// Only the last member counts: anything before it is ignored.
		if lastListMember(in) != "" {
			if r3, p3 := ParseXCache("Error from cloudfront, " + in); r3 != r || p3 != p {
				t.Fatalf("prefix changed %q: %q,%q vs %q,%q", in, r3, p3, r, p)
			}
		}
	})
}

// parseHeaderBlock reads "Name: value" lines into a header, keeping the
// names as written so the case-insensitive lookup is exercised too.
func parseHeaderBlock(in string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(in, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	return h
}

func FuzzParseCDN(f *testing.F) {
	for _, s := range cdnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h := parseHeaderBlock(in)
		c := ParseCDN(h)
		if !validCache[c.Cache] {
			t.Fatalf("cache %q", c.Cache)
		}
		switch c.Provider {
		case "", ProviderCloudFront, ProviderCloudflare, ProviderFastly, ProviderAkamai:
		default:
			t.Fatalf("provider %q", c.Provider)
		}
		if c.CacheSource == "" && (c.Cache != CacheUnknown || c.CacheRaw != "") {
			t.Fatalf("result without a source: %+v", c)
		}
		if c.POPCity != AirportCity(c.POP) {
			t.Fatalf("pop city %q for %q", c.POPCity, c.POP)
		}
		if c.Age < 0 || (!c.HasAge && c.Age != 0) || c.Age > (1<<31)*time.Second {
			t.Fatalf("age %v (has %v)", c.Age, c.HasAge)
		}
		checkServerTiming(t, c.ServerTiming)
		for _, e := range c.ServerTiming {
			if !hasPrefixFold(e.Name, "cdn-") {
				t.Fatalf("non-cdn entry kept: %+v", e)
			}
		}
		for _, d := range []time.Duration{c.Upstream.DNS, c.Upstream.Connect, c.Upstream.FirstByte, c.Upstream.DownstreamFirst} {
			if d < 0 || d > time.Duration(maxServerTimingMs)*time.Millisecond {
				t.Fatalf("upstream duration %v", d)
			}
		}
		if again := ParseCDN(h); !reflect.DeepEqual(again, c) {
			t.Fatalf("not deterministic:\n%+v\n%+v", c, again)
		}

		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back CDN
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		// JSON replaces invalid UTF-8, so only valid input must round-trip.
		if utf8.ValidString(in) && !reflect.DeepEqual(back, c) {
			t.Fatalf("JSON round trip:\n got  %+v\n want %+v\n json %s", back, c, b)
		}
	})
}
