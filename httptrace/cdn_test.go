package httptrace

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hdr builds headers the way net/http does (canonical keys); pairs are
// name, value, name, value...
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestParseCDN(t *testing.T) {
	cfMissTiming := `cdn-upstream-layer;desc="EDGE",cdn-upstream-dns;dur=0,cdn-upstream-connect;dur=114,cdn-upstream-fbl;dur=177,cdn-cache-miss,cdn-pop;desc="PHX50-C2",cdn-rid;desc="yNPsyYn7skvTzwWkq3Wcc8Nj_foxUjQUe9H1ifslzWhb0w7aLbFvGg==",cdn-downstream-fbl;dur=436`

	tests := []struct {
		name string
		h    http.Header
		want CDN // compared field by field below; zero fields must be zero
	}{
		{
			name: "nothing recognised",
			h:    hdr("Content-Type", "text/html", "Server", "nginx"),
			want: CDN{Cache: CacheUnknown},
		},
		{
			name: "cloudfront hit",
			h: hdr("X-Cache", "Hit from cloudfront", "X-Amz-Cf-Pop", "FRA56-P1",
				"X-Amz-Cf-Id", "c5M_0Yq3fGdVw3T0xHBWk4pWaFEXZBL3DPyLIUnXTh2eZZHf0jCX8A==",
				"Age", "1234", "Via", "1.1 0e4f3c0b1a9a2b7e8d5c6f4e3d2c1b0a.cloudfront.net (CloudFront)"),
			want: CDN{Provider: "cloudfront", Cache: CacheHit, CacheRaw: "Hit from cloudfront", CacheSource: SourceXCache,
				POP: "FRA56-P1", POPCity: "Frankfurt", RequestID: "c5M_0Yq3fGdVw3T0xHBWk4pWaFEXZBL3DPyLIUnXTh2eZZHf0jCX8A==",
				Age: 1234 * time.Second, HasAge: true, Via: "1.1 0e4f3c0b1a9a2b7e8d5c6f4e3d2c1b0a.cloudfront.net (CloudFront)"},
		},
		{
			name: "cloudfront miss, Ashburn",
			h:    hdr("X-Cache", "Miss from cloudfront", "X-Amz-Cf-Pop", "IAD89-C3", "X-Amz-Cf-Id", "abc=="),
			want: CDN{Provider: "cloudfront", Cache: CacheMiss, CacheRaw: "Miss from cloudfront", CacheSource: SourceXCache,
				POP: "IAD89-C3", POPCity: "Ashburn", RequestID: "abc=="},
		},
		{
			name: "cloudfront refresh hit, upper case",
			h:    hdr("X-Cache", "REFRESHHIT FROM CLOUDFRONT", "X-Amz-Cf-Pop", "lhr50-p1"),
			want: CDN{Provider: "cloudfront", Cache: CacheRefreshHit, CacheRaw: "REFRESHHIT FROM CLOUDFRONT", CacheSource: SourceXCache,
				POP: "lhr50-p1", POPCity: "London"},
		},
		{
			name: "cloudfront error 502",
			h:    hdr("X-Cache", "Error from cloudfront", "X-Amz-Cf-Pop", "NRT57-P2"),
			want: CDN{Provider: "cloudfront", Cache: CacheError, CacheRaw: "Error from cloudfront", CacheSource: SourceXCache,
				POP: "NRT57-P2", POPCity: "Tokyo"},
		},
		{
			name: "cloudfront limit exceeded",
			h:    hdr("X-Cache", "LimitExceeded from cloudfront"),
			want: CDN{Provider: "cloudfront", Cache: CacheError, CacheRaw: "LimitExceeded from cloudfront", CacheSource: SourceXCache},
		},
		{
			name: "cloudfront capacity exceeded",
			h:    hdr("X-Cache", "CapacityExceeded from cloudfront"),
			want: CDN{Provider: "cloudfront", Cache: CacheError, CacheRaw: "CapacityExceeded from cloudfront", CacheSource: SourceXCache},
		},
		{
			name: "cloudfront http->https redirect",
			h:    hdr("X-Cache", "Redirect from cloudfront", "X-Amz-Cf-Pop", "GRU3-C1"),
			want: CDN{Provider: "cloudfront", Cache: CacheBypass, CacheRaw: "Redirect from cloudfront", CacheSource: SourceXCache,
				POP: "GRU3-C1", POPCity: "São Paulo"},
		},
		{
			name: "cloudfront function generated",
			h:    hdr("X-Cache", "FunctionGeneratedResponse from cloudfront"),
			want: CDN{Provider: "cloudfront", Cache: CacheBypass, CacheRaw: "FunctionGeneratedResponse from cloudfront", CacheSource: SourceXCache},
		},
		{
			name: "cloudfront unknown word kept raw",
			h:    hdr("X-Cache", "Teleported from cloudfront", "X-Amz-Cf-Pop", "XXX1-C1"),
			want: CDN{Provider: "cloudfront", Cache: CacheUnknown, CacheRaw: "Teleported from cloudfront", CacheSource: SourceXCache,
				POP: "XXX1-C1"},
		},
		{
			name: "cloudfront detected by Via only",
			h:    hdr("Via", "1.1 abc.cloudfront.net (CloudFront)"),
			want: CDN{Provider: "cloudfront", Cache: CacheUnknown, Via: "1.1 abc.cloudfront.net (CloudFront)"},
		},
		{
			name: "cloudfront miss with server-timing",
			h: hdr("X-Cache", "Miss from cloudfront", "X-Amz-Cf-Pop", "PHX50-C2",
				"Server-Timing", cfMissTiming),
			want: CDN{Provider: "cloudfront", Cache: CacheMiss, CacheRaw: "Miss from cloudfront", CacheSource: SourceXCache,
				POP: "PHX50-C2", POPCity: "Phoenix", RequestID: "yNPsyYn7skvTzwWkq3Wcc8Nj_foxUjQUe9H1ifslzWhb0w7aLbFvGg==",
				ServerTiming: []ServerTiming{
					{Name: "cdn-upstream-layer", Desc: "EDGE"},
					{Name: "cdn-upstream-dns", Duration: 0, HasDuration: true},
					{Name: "cdn-upstream-connect", Duration: ms(114), HasDuration: true},
					{Name: "cdn-upstream-fbl", Duration: ms(177), HasDuration: true},
					{Name: "cdn-cache-miss"},
					{Name: "cdn-pop", Desc: "PHX50-C2"},
					{Name: "cdn-rid", Desc: "yNPsyYn7skvTzwWkq3Wcc8Nj_foxUjQUe9H1ifslzWhb0w7aLbFvGg=="},
					{Name: "cdn-downstream-fbl", Duration: ms(436), HasDuration: true},
				},
				Upstream: Upstream{Connect: ms(114), FirstByte: ms(177), DownstreamFirst: ms(436), Layer: "EDGE"}},
		},
		{
			name: "server-timing alone: hit, pop, layer; origin entries dropped; two header lines",
			h: hdr("Server-Timing", `app;dur=12.5;desc="db, cache; warm", cdn-cache-hit`,
				"Server-Timing", `cdn-pop;desc="FRA56-P1", cdn-hit-layer;desc="REC", cdn-downstream-fbl;dur=3.25`),
			want: CDN{Cache: CacheHit, CacheRaw: "cdn-cache-hit", CacheSource: SourceServerTiming,
				POP: "FRA56-P1", POPCity: "Frankfurt", HitLayer: "REC",
				ServerTiming: []ServerTiming{
					{Name: "cdn-cache-hit"},
					{Name: "cdn-pop", Desc: "FRA56-P1"},
					{Name: "cdn-hit-layer", Desc: "REC"},
					{Name: "cdn-downstream-fbl", Duration: ms(3.25), HasDuration: true},
				},
				Upstream: Upstream{DownstreamFirst: ms(3.25)}},
		},
		{
			name: "server-timing refresh, REC_SHIELD",
			h:    hdr("Server-Timing", `cdn-cache-refresh, cdn-hit-layer;desc="REC_SHIELD"`),
			want: CDN{Cache: CacheRefreshHit, CacheRaw: "cdn-cache-refresh", CacheSource: SourceServerTiming, HitLayer: "REC_SHIELD",
				ServerTiming: []ServerTiming{{Name: "cdn-cache-refresh"}, {Name: "cdn-hit-layer", Desc: "REC_SHIELD"}}},
		},
		{
			name: "x-cache beats server-timing; cdn-pop does not override X-Amz-Cf-Pop",
			h: hdr("X-Cache", "Hit from cloudfront", "X-Amz-Cf-Pop", "SIN2-P1",
				"Server-Timing", `cdn-cache-miss, cdn-pop;desc="LAX54-P11"`),
			want: CDN{Provider: "cloudfront", Cache: CacheHit, CacheRaw: "Hit from cloudfront", CacheSource: SourceXCache,
				POP: "SIN2-P1", POPCity: "Singapore",
				ServerTiming: []ServerTiming{{Name: "cdn-cache-miss"}, {Name: "cdn-pop", Desc: "LAX54-P11"}}},
		},
		{
			name: "cloudfront unknown X-Cache falls back to server-timing",
			h:    hdr("X-Amz-Cf-Pop", "SYD1-C1", "Server-Timing", "cdn-cache-miss"),
			want: CDN{Provider: "cloudfront", Cache: CacheMiss, CacheRaw: "cdn-cache-miss", CacheSource: SourceServerTiming,
				POP: "SYD1-C1", POPCity: "Sydney", ServerTiming: []ServerTiming{{Name: "cdn-cache-miss"}}},
		},
		{
			name: "cache-status: last member is nearest the client",
			h:    hdr("Cache-Status", `OriginCache; hit; ttl=1100, "CDN Company Here"; fwd=uri-miss; stored`),
			want: CDN{Cache: CacheMiss, CacheRaw: `OriginCache; hit; ttl=1100, "CDN Company Here"; fwd=uri-miss; stored`, CacheSource: SourceCacheStatus},
		},
		{
			name: "cache-status beats server-timing",
			h:    hdr("Cache-Status", `ExampleCache; hit`, "Server-Timing", "cdn-cache-miss"),
			want: CDN{Cache: CacheHit, CacheRaw: "ExampleCache; hit", CacheSource: SourceCacheStatus,
				ServerTiming: []ServerTiming{{Name: "cdn-cache-miss"}}},
		},
		{
			name: "cache-status beats a generic X-Cache when no provider",
			h:    hdr("Cache-Status", `edge; fwd=bypass`, "X-Cache", "HIT"),
			want: CDN{Cache: CacheBypass, CacheRaw: "edge; fwd=bypass", CacheSource: SourceCacheStatus},
		},
		{
			name: "cache-status on two lines joins into one list",
			h:    hdr("Cache-Status", `OriginCache; hit`, "Cache-Status", `Edge; fwd=stale; fwd-status=304`),
			want: CDN{Cache: CacheRefreshHit, CacheRaw: "OriginCache; hit, Edge; fwd=stale; fwd-status=304", CacheSource: SourceCacheStatus},
		},
		{
			name: "provider X-Cache beats cache-status",
			h:    hdr("X-Cache", "RefreshHit from cloudfront", "Cache-Status", `CloudFront; hit`),
			want: CDN{Provider: "cloudfront", Cache: CacheRefreshHit, CacheRaw: "RefreshHit from cloudfront", CacheSource: SourceXCache},
		},
		{
			name: "generic X-Cache (squid) with no provider",
			h:    hdr("X-Cache", "MISS from proxy.example.net"),
			want: CDN{Cache: CacheMiss, CacheRaw: "MISS from proxy.example.net", CacheSource: SourceXCache},
		},
		{
			name: "cloudflare hit",
			h:    hdr("Cf-Cache-Status", "HIT", "Cf-Ray", "8a1b2c3d4e5f6789-FRA", "Age", "59"),
			want: CDN{Provider: "cloudflare", Cache: CacheHit, CacheRaw: "HIT", CacheSource: SourceCFCacheStatus,
				POP: "FRA", POPCity: "Frankfurt", RequestID: "8a1b2c3d4e5f6789-FRA", Age: 59 * time.Second, HasAge: true},
		},
		{
			name: "cloudflare dynamic; origin X-Cache ignored",
			h:    hdr("Cf-Cache-Status", "DYNAMIC", "Cf-Ray", "4a807f60ca5727a4-AMS", "X-Cache", "HIT"),
			want: CDN{Provider: "cloudflare", Cache: CacheBypass, CacheRaw: "DYNAMIC", CacheSource: SourceCFCacheStatus,
				POP: "AMS", POPCity: "Amsterdam", RequestID: "4a807f60ca5727a4-AMS"},
		},
		{
			name: "cloudflare revalidated, lower case",
			h:    hdr("cf-cache-status", "revalidated", "cf-ray", "8a1b2c3d4e5f6789-sjc"),
			want: CDN{Provider: "cloudflare", Cache: CacheRefreshHit, CacheRaw: "revalidated", CacheSource: SourceCFCacheStatus,
				POP: "SJC", POPCity: "San Jose", RequestID: "8a1b2c3d4e5f6789-sjc"},
		},
		{
			name: "cloudflare none falls back to cache-status",
			h:    hdr("Cf-Cache-Status", "NONE", "Cache-Status", "cloudflare; fwd=uri-miss"),
			want: CDN{Provider: "cloudflare", Cache: CacheMiss, CacheRaw: "cloudflare; fwd=uri-miss", CacheSource: SourceCacheStatus},
		},
		{
			name: "cloudflare unknown keeps raw",
			h:    hdr("Cf-Cache-Status", "UNKNOWN"),
			want: CDN{Provider: "cloudflare", Cache: CacheUnknown, CacheRaw: "UNKNOWN", CacheSource: SourceCFCacheStatus},
		},
		{
			name: "fastly shielded: last X-Cache and X-Served-By are the edge",
			h: hdr("X-Served-By", "cache-fra19120-FRA, cache-lhr7330-LHR", "X-Cache", "HIT, MISS",
				"X-Cache-Hits", "3, 0"),
			want: CDN{Provider: "fastly", Cache: CacheMiss, CacheRaw: "HIT, MISS", CacheSource: SourceXCache,
				POP: "LHR", POPCity: "London"},
		},
		{
			name: "fastly X-Cache on two lines",
			h:    hdr("X-Served-By", "cache-jfk1041-JFK", "X-Served-By", "cache-ord1720-ORD", "X-Cache", "MISS", "X-Cache", "HIT"),
			want: CDN{Provider: "fastly", Cache: CacheHit, CacheRaw: "MISS, HIT", CacheSource: SourceXCache,
				POP: "ORD", POPCity: "Chicago"},
		},
		{
			name: "fastly without X-Cache uses X-Cache-Hits",
			h:    hdr("X-Served-By", "cache-syd10134-SYD", "X-Cache-Hits", "0, 2"),
			want: CDN{Provider: "fastly", Cache: CacheHit, CacheRaw: "2", CacheSource: SourceXCacheHits,
				POP: "SYD", POPCity: "Sydney"},
		},
		{
			name: "fastly pass",
			h:    hdr("X-Served-By", "cache-bos4620-BOS", "X-Cache", "PASS"),
			want: CDN{Provider: "fastly", Cache: CacheBypass, CacheRaw: "PASS", CacheSource: SourceXCache,
				POP: "BOS", POPCity: "Boston"},
		},
		{
			name: "akamai",
			h:    hdr("X-Cache", "TCP_MEM_HIT from a23-45-67-89.deploy.akamaitechnologies.com (AkamaiGHost/11.4.2-1) (-)"),
			want: CDN{Provider: "akamai", Cache: CacheHit, CacheRaw: "TCP_MEM_HIT from a23-45-67-89.deploy.akamaitechnologies.com (AkamaiGHost/11.4.2-1) (-)",
				CacheSource: SourceXCache},
		},
		{
			name: "bad age ignored",
			h:    hdr("Age", "-5"),
			want: CDN{Cache: CacheUnknown},
		},
		{
			name: "huge age is 2^31 s (RFC 9111)",
			h:    hdr("Age", "99999999999999999999999"),
			want: CDN{Cache: CacheUnknown, Age: (1 << 31) * time.Second, HasAge: true},
		},
		{
			name: "hand-built map with lower-case keys",
			h:    http.Header{"x-cache": {"Hit from cloudfront"}, "x-amz-cf-pop": {"DUB2-C1"}},
			want: CDN{Provider: "cloudfront", Cache: CacheHit, CacheRaw: "Hit from cloudfront", CacheSource: SourceXCache,
				POP: "DUB2-C1", POPCity: "Dublin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseCDN(tt.h)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCDN:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestParseXCache(t *testing.T) {
	tests := []struct {
		in, result, provider string
	}{
		{"Hit from cloudfront", CacheHit, "cloudfront"},
		{"hit from cloudfront", CacheHit, "cloudfront"},
		{"Miss from cloudfront", CacheMiss, "cloudfront"},
		{"RefreshHit from cloudfront", CacheRefreshHit, "cloudfront"},
		{"Error from cloudfront", CacheError, "cloudfront"},
		{"LimitExceeded from cloudfront", CacheError, "cloudfront"},
		{"CapacityExceeded from cloudfront", CacheError, "cloudfront"},
		{"Redirect from cloudfront", CacheBypass, "cloudfront"},
		{"LambdaGeneratedResponse from cloudfront", CacheBypass, "cloudfront"},
		{"FunctionGeneratedResponse from cloudfront", CacheBypass, "cloudfront"},
		{"Whatever from cloudfront", CacheUnknown, "cloudfront"},
		{"  Hit   from   cloudfront  ", CacheHit, "cloudfront"},
		{"HIT", CacheHit, ""},
		{"MISS", CacheMiss, ""},
		{"HIT, MISS", CacheMiss, ""},
		{"MISS, HIT", CacheHit, ""},
		{"MISS, HIT, ", CacheHit, ""},
		{"HIT-STALE", CacheHit, ""},
		{"MISS-CLUSTER", CacheMiss, ""},
		{"PASS", CacheBypass, ""},
		{"TCP_HIT from a1.deploy.akamaitechnologies.com (AkamaiGHost/1)", CacheHit, "akamai"},
		{"TCP_REFRESH_HIT from a1.deploy.akamaitechnologies.com", CacheRefreshHit, "akamai"},
		{"TCP_REFRESH_MISS from a1.deploy.akamaitechnologies.com", CacheMiss, "akamai"},
		{"TCP_MISS from a1.deploy.akamaitechnologies.com", CacheMiss, "akamai"},
		{"TCP_DENIED from a1.deploy.akamaitechnologies.com", CacheError, "akamai"},
		{"HIT from squid.example (squid/5.7)", CacheHit, ""},
		{"", CacheUnknown, ""},
		{",,, ,", CacheUnknown, ""},
		{"from cloudfront", CacheUnknown, "cloudfront"}, // says who, not what
		{"miſs", CacheUnknown, ""},                      // long s must not fold to "miss"
	}
	for _, tt := range tests {
		r, p := ParseXCache(tt.in)
		if r != tt.result || p != tt.provider {
			t.Errorf("ParseXCache(%q) = %q, %q; want %q, %q", tt.in, r, p, tt.result, tt.provider)
		}
	}
}

func TestCloudflareCache(t *testing.T) {
	want := map[string]string{
		"HIT": CacheHit, "MISS": CacheMiss, "EXPIRED": CacheMiss, "STALE": CacheHit,
		"BYPASS": CacheBypass, "DYNAMIC": CacheBypass, "REVALIDATED": CacheRefreshHit,
		"UPDATING": CacheHit, "NONE": CacheUnknown, "UNKNOWN": CacheUnknown, "": CacheUnknown,
		"hit": CacheHit, " Miss ": CacheMiss,
	}
	for in, w := range want {
		got := ParseCDN(hdr("Cf-Cache-Status", in, "Cf-Ray", "0123456789abcdef-LHR")).Cache
		if got != w {
			t.Errorf("CF-Cache-Status %q -> %q, want %q", in, got, w)
		}
	}
}

func TestParseServerTiming(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []ServerTiming
	}{
		{"empty", nil, nil},
		{"blank", []string{"", " , ,"}, nil},
		{"name only", []string{"miss"}, []ServerTiming{{Name: "miss"}}},
		{
			"w3c example",
			[]string{`miss, db;dur=53, app;dur=47.2`},
			[]ServerTiming{{Name: "miss"}, {Name: "db", Duration: ms(53), HasDuration: true}, {Name: "app", Duration: ms(47.2), HasDuration: true}},
		},
		{
			"params in any order, whitespace, case",
			[]string{`cache ; desc = "Cache Read" ; DUR = 23.2`},
			[]ServerTiming{{Name: "cache", Desc: "Cache Read", Duration: ms(23.2), HasDuration: true}},
		},
		{
			"quoted desc with comma, semicolon, escapes",
			[]string{`a;desc="x, y; z";dur=1, b;desc="say \"hi\" \\o/"`},
			[]ServerTiming{{Name: "a", Desc: "x, y; z", Duration: ms(1), HasDuration: true}, {Name: "b", Desc: `say "hi" \o/`}},
		},
		{
			"multiple header lines keep order",
			[]string{"a;dur=1", "b;dur=2, c"},
			[]ServerTiming{{Name: "a", Duration: ms(1), HasDuration: true}, {Name: "b", Duration: ms(2), HasDuration: true}, {Name: "c"}},
		},
		{
			"first dur and desc win",
			[]string{`x;dur=1;dur=2;desc=a;desc=b`},
			[]ServerTiming{{Name: "x", Duration: ms(1), HasDuration: true, Desc: "a"}},
		},
		{
			"unquoted desc with a space (lenient)",
			[]string{`cdn-hit-layer;desc=Origin Shield, next`},
			[]ServerTiming{{Name: "cdn-hit-layer", Desc: "Origin Shield"}, {Name: "next"}},
		},
		{
			"bad durations rejected",
			[]string{`a;dur=-1, b;dur=abc, c;dur=NaN, d;dur=Inf, e;dur=0x10, f;dur=1e400, g;dur=, h;dur=1e10`},
			[]ServerTiming{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e"}, {Name: "f"}, {Name: "g"}, {Name: "h"}},
		},
		{
			"garbage skipped, rest kept",
			[]string{`@@@, ok;dur=5, "quoted,name";dur=1, x y;dur=3, z;desc="unterminated, w`},
			[]ServerTiming{{Name: "ok", Duration: ms(5), HasDuration: true}, {Name: "x", Duration: ms(3), HasDuration: true}, {Name: "z", Desc: "unterminated, w"}},
		},
		{
			"unknown params ignored, param without value ignored",
			[]string{`a;foo=bar;dur;desc="d";dur=7`},
			[]ServerTiming{{Name: "a", Desc: "d", Duration: ms(7), HasDuration: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseServerTiming(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseServerTiming(%q)\n got  %+v\n want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseServerTimingCap(t *testing.T) {
	line := strings.Repeat("a;dur=1,", 50)
	got := ParseServerTiming([]string{line, line, line})
	if len(got) != MaxHeaderEntries {
		t.Fatalf("got %d entries, want the cap %d", len(got), MaxHeaderEntries)
	}
}

func TestServerTimingString(t *testing.T) {
	in := []ServerTiming{
		{Name: "cdn-pop", Desc: `FRA "56", P1\`},
		{Name: "db", Duration: ms(12.345), HasDuration: true},
		{Name: "zero", Duration: 0, HasDuration: true},
		{Name: "flag"},
	}
	var parts []string
	for _, e := range in {
		parts = append(parts, e.String())
	}
	if got := ParseServerTiming([]string{strings.Join(parts, ", ")}); !reflect.DeepEqual(got, in) {
		t.Errorf("round trip: got %+v, want %+v", got, in)
	}
	if s := in[1].String(); s != "db;dur=12.345" {
		t.Errorf("String = %q", s)
	}
}

func TestParseCacheStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []CacheStatusEntry
	}{
		{"empty", "", nil},
		{
			"rfc 9211 example",
			`OriginCache; hit; ttl=1100, "CDN Company Here"; fwd=uri-miss; stored`,
			[]CacheStatusEntry{
				{Cache: "OriginCache", Hit: true, TTL: 1100, HasTTL: true},
				{Cache: "CDN Company Here", Fwd: "uri-miss", Stored: true},
			},
		},
		{
			"all params",
			`ReverseProxyCache; fwd=stale; fwd-status=304; collapsed; key="https://a/b?c"; detail=max-age; ttl=-30; stored=?0`,
			[]CacheStatusEntry{{Cache: "ReverseProxyCache", Fwd: "stale", FwdStatus: 304, Collapsed: true,
				Key: "https://a/b?c", Detail: "max-age", TTL: -30, HasTTL: true}},
		},
		{
			"three members, whitespace, explicit booleans",
			`Origin;hit=?1 ,  Shield ; fwd=vary-miss;fwd-status=200,Edge;hit=?0;fwd=miss`,
			[]CacheStatusEntry{
				{Cache: "Origin", Hit: true},
				{Cache: "Shield", Fwd: "vary-miss", FwdStatus: 200},
				{Cache: "Edge", Fwd: "miss"},
			},
		},
		{
			"later params override",
			`c; fwd=miss; fwd=bypass; hit; hit=?0`,
			[]CacheStatusEntry{{Cache: "c", Fwd: "bypass"}},
		},
		{
			"detail as string, escapes, bad values ignored",
			`c; detail="a \"b\""; ttl=1.5; fwd-status=abc; ttl=1234567890123456; key=:AQID:, d`,
			[]CacheStatusEntry{{Cache: "c", Detail: `a "b"`}, {Cache: "d"}},
		},
		{
			"garbage members skipped",
			`@@, (inner list), good; hit, ; , "s,t"; fwd=request`,
			[]CacheStatusEntry{{Cache: "good", Hit: true}, {Cache: "s,t", Fwd: "request"}},
		},
		{
			"garbage inside a member skipped to next param",
			`c; hit @@@; ttl=5`,
			[]CacheStatusEntry{{Cache: "c", Hit: true, TTL: 5, HasTTL: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseCacheStatus(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCacheStatus(%q)\n got  %+v\n want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCacheStatusResult(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Edge; hit`, CacheHit},
		{`Edge; hit; fwd=stale`, CacheHit},
		{`Edge; fwd=stale; fwd-status=304`, CacheRefreshHit},
		{`Edge; fwd=stale; fwd-status=200`, CacheMiss},
		{`Edge; fwd=stale`, CacheMiss},
		{`Edge; fwd=bypass`, CacheBypass},
		{`Edge; fwd=method`, CacheBypass},
		{`Edge; fwd=request`, CacheBypass},
		{`Edge; fwd=uri-miss`, CacheMiss},
		{`Edge; fwd=vary-miss`, CacheMiss},
		{`Edge; fwd=miss`, CacheMiss},
		{`Edge; fwd=partial`, CacheMiss},
		{`Edge; fwd=uri-miss; fwd-status=304`, CacheMiss}, // client's own conditional, not a refresh
		{`Edge; fwd=BYPASS`, CacheBypass},
		{`Edge; detail=weird`, CacheUnknown},
		{`Origin; fwd=miss, Edge; hit`, CacheHit},
		{`Origin; hit, Edge; fwd=uri-miss`, CacheMiss},
	}
	for _, tt := range tests {
		if got := cacheStatusResult(ParseCacheStatus(tt.in)); got != tt.want {
			t.Errorf("Cache-Status %q -> %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCacheStatusString(t *testing.T) {
	in := []CacheStatusEntry{
		{Cache: "Origin Cache", Hit: true, TTL: -3, HasTTL: true, Stored: true, Collapsed: true, Key: `k "1"`, Detail: "d e"},
		{Cache: "edge", Fwd: "uri-miss", FwdStatus: 200, Detail: "tok"},
		{Cache: ""},
	}
	var parts []string
	for _, e := range in {
		parts = append(parts, e.String())
	}
	if got := ParseCacheStatus(strings.Join(parts, ", ")); !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got  %+v\n want %+v", got, in)
	}
	if s := in[1].String(); s != "edge; fwd=uri-miss; fwd-status=200; detail=tok" {
		t.Errorf("String = %q", s)
	}
}

func TestAirportCity(t *testing.T) {
	tests := map[string]string{
		"IAD": "Ashburn", "JFK": "New York", "EWR": "Newark", "ATL": "Atlanta", "ORD": "Chicago",
		"DFW": "Dallas", "SFO": "San Francisco", "SEA": "Seattle", "LAX": "Los Angeles", "MIA": "Miami",
		"YUL": "Montreal", "YTO": "Toronto", "YYZ": "Toronto", "GRU": "São Paulo", "GIG": "Rio de Janeiro",
		"SCL": "Santiago", "BOG": "Bogotá", "EZE": "Buenos Aires", "LIM": "Lima", "QRO": "Querétaro",
		"LHR": "London", "MAN": "Manchester", "DUB": "Dublin", "FRA": "Frankfurt", "MUC": "Munich",
		"DUS": "Düsseldorf", "HAM": "Hamburg", "TXL": "Berlin", "BER": "Berlin", "AMS": "Amsterdam",
		"CDG": "Paris", "MRS": "Marseille", "MAD": "Madrid", "BCN": "Barcelona", "LIS": "Lisbon",
		"MXP": "Milan", "FCO": "Rome", "PMO": "Palermo", "ZRH": "Zurich", "VIE": "Vienna",
		"PRG": "Prague", "WAW": "Warsaw", "BUD": "Budapest", "OTP": "Bucharest", "SOF": "Sofia",
		"ATH": "Athens", "ARN": "Stockholm", "CPH": "Copenhagen", "HEL": "Helsinki", "OSL": "Oslo",
		"ZAG": "Zagreb", "BRU": "Brussels", "TLV": "Tel Aviv", "DXB": "Dubai", "FJR": "Fujairah",
		"BAH": "Manama", "JED": "Jeddah", "DOH": "Doha", "MCT": "Muscat", "CAI": "Cairo",
		"JNB": "Johannesburg", "CPT": "Cape Town", "NBO": "Nairobi", "LOS": "Lagos", "BOM": "Mumbai",
		"DEL": "New Delhi", "MAA": "Chennai", "BLR": "Bangalore", "HYD": "Hyderabad", "CCU": "Kolkata",
		"SIN": "Singapore", "KUL": "Kuala Lumpur", "BKK": "Bangkok", "CGK": "Jakarta", "MNL": "Manila",
		"HAN": "Hanoi", "SGN": "Ho Chi Minh City", "HKG": "Hong Kong", "TPE": "Taipei", "NRT": "Tokyo",
		"HND": "Tokyo", "KIX": "Osaka", "ICN": "Seoul", "GMP": "Seoul", "PEK": "Beijing",
		"PVG": "Shanghai", "SZX": "Shenzhen", "SYD": "Sydney", "MEL": "Melbourne", "BNE": "Brisbane",
		"PER": "Perth", "AKL": "Auckland",
		// forms
		"fra": "Frankfurt", "FRA56-P1": "Frankfurt", "iad89-c3": "Ashburn", "LAX54-P11": "Los Angeles",
		"HIO52-P1": "Hillsboro", "MEL50-C1": "Melbourne",
		// unknown
		"": "", "FR": "", "XXX": "", "FRANKFURT": "", "F1A": "", "123": "", "ZZZ1-C1": "", "Ä": "",
	}
	for in, want := range tests {
		if got := AirportCity(in); got != want {
			t.Errorf("AirportCity(%q) = %q, want %q", in, got, want)
		}
	}
	if n := len(airportCities); n < 120 {
		t.Errorf("only %d airport codes", n)
	}
	for code, city := range airportCities {
		if len(code) != 3 || strings.ToUpper(code) != code || city == "" {
			t.Errorf("bad table entry %q: %q", code, city)
		}
	}
}

func TestCDNJSON(t *testing.T) {
	c := ParseCDN(hdr("X-Cache", "Miss from cloudfront", "X-Amz-Cf-Pop", "FRA56-P1", "Age", "0",
		"Server-Timing", `cdn-upstream-dns;dur=0, cdn-upstream-connect;dur=12.5, cdn-upstream-fbl;dur=40, cdn-downstream-fbl;dur=55, cdn-hit-layer;desc="EDGE"`))
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["provider"] != "cloudfront" || m["cache"] != "miss" || m["pop_city"] != "Frankfurt" || m["hit_layer"] != "EDGE" {
		t.Errorf("fields: %s", b)
	}
	if v, ok := m["age_seconds"]; !ok || v != 0.0 {
		t.Errorf("age_seconds: %s", b)
	}
	up := m["upstream"].(map[string]any)
	want := map[string]any{"connect_seconds": 0.0125, "first_byte_seconds": 0.04, "downstream_first_byte_seconds": 0.055}
	if !reflect.DeepEqual(up, want) { // dns 0 omitted
		t.Errorf("upstream = %v, want %v", up, want)
	}
	st := m["server_timing"].([]any)
	if first := st[0].(map[string]any); first["name"] != "cdn-upstream-dns" || first["duration_seconds"] != 0.0 {
		t.Errorf("server_timing[0] = %v (a present zero dur must stay)", first)
	}
	if last := st[4].(map[string]any); last["desc"] != "EDGE" || last["duration_seconds"] != nil {
		t.Errorf("server_timing[4] = %v", last)
	}

	var back CDN
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("JSON round trip:\n got  %+v\n want %+v", back, c)
	}

	empty, _ := json.Marshal(ParseCDN(http.Header{}))
	if string(empty) != `{"cache":"unknown","upstream":{}}` {
		t.Errorf("empty = %s", empty)
	}
}
