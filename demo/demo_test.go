package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startSite(t *testing.T, opts Options) *Site {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// probeOptions trust the demo CA (from its file, as the agent does) and ask
// the demo resolver, so every phase is measured for real.
func probeOptions(t *testing.T, s *Site) httptrace.Options {
	t.Helper()
	pool, err := httptrace.LoadCAFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return httptrace.Options{DNSServer: s.DNSServer(), RootCAs: pool, Timeout: 5 * time.Second}
}

func get(t *testing.T, url string, o httptrace.Options) *httptrace.Result {
	t.Helper()
	r := httptrace.Probe(t.Context(), url, o)
	if r.Err != nil {
		t.Fatalf("probe %s: %v", url, r.Err)
	}
	return r
}

func TestRevalidation(t *testing.T) {
	s := startSite(t, Options{})
	o := probeOptions(t, s)
	o.Conditional = true

	r := get(t, s.EdgeURL(), o)
	if r.Status != http.StatusOK || r.CDN.Cache != httptrace.CacheMiss || r.BodyBytes == 0 {
		t.Fatalf("first GET via edge: status %d, cache %q (%q), %d bytes; want 200 miss with a body", r.Status, r.CDN.Cache, r.CDN.CacheRaw, r.BodyBytes)
	}
	if r.LastModified == "" || r.ETag == "" || !strings.Contains(r.Header.Get("Cache-Control"), "max-age=0") {
		t.Errorf("validators/Cache-Control not passed on: Last-Modified %q, ETag %q, Cache-Control %q", r.LastModified, r.ETag, r.Header.Get("Cache-Control"))
	}
	// The probe's own conditional GET: the edge revalidates and answers the
	// client's validators from its cache.
	c := r.Conditional
	if c == nil || !c.Sent || c.Status != http.StatusNotModified || c.CDN.Cache != httptrace.CacheRefreshHit {
		t.Fatalf("conditional via edge: %+v; want a 304 RefreshHit", c)
	}

	o.Conditional = false
	r = get(t, s.EdgeURL(), o)
	if r.Status != http.StatusOK || r.CDN.Cache != httptrace.CacheRefreshHit || r.BodyBytes == 0 || !r.CDN.HasAge {
		t.Fatalf("second GET via edge: status %d, cache %q, %d bytes, age %v; want 200 refresh_hit with body and Age", r.Status, r.CDN.Cache, r.BodyBytes, r.CDN.HasAge)
	}
	if got := s.OriginCounts(); got.Full != 1 || got.NotModified != 2 {
		t.Errorf("origin answered %+v; want 1 full page and 2 revalidations (304)", got)
	}

	// Straight at the ALB: no CDN, the origin's own 304.
	o.ConnectTo, o.Conditional = s.OriginConnectTo(), true
	r = get(t, s.EdgeURL(), o)
	if r.Status != http.StatusOK || r.CDN.Provider != "" || r.Conditional == nil || r.Conditional.Status != http.StatusNotModified {
		t.Fatalf("origin way: status %d, provider %q, conditional %+v; want 200, no CDN, 304", r.Status, r.CDN.Provider, r.Conditional)
	}
	if got := s.OriginCounts(); got.Full != 2 || got.NotModified != 3 {
		t.Errorf("origin answered %+v; want 2 full pages and 3 revalidations", got)
	}
}

func TestCloudFrontHeaders(t *testing.T) {
	s := startSite(t, Options{})
	o := probeOptions(t, s)
	r := get(t, s.EdgeURL()+"health", o)
	cdn := r.CDN
	if cdn.Provider != httptrace.ProviderCloudFront || cdn.POP != DefaultPOP || cdn.POPCity != "Frankfurt" {
		t.Errorf("CDN = provider %q, POP %q (%q); want cloudfront FRA56-P1 (Frankfurt)", cdn.Provider, cdn.POP, cdn.POPCity)
	}
	if len(cdn.RequestID) != 56 || !strings.HasSuffix(cdn.Via, ".cloudfront.net (CloudFront)") {
		t.Errorf("X-Amz-Cf-Id %q, Via %q: want a 56-character id and a CloudFront Via", cdn.RequestID, cdn.Via)
	}
	if v := r.Header.Get("Server-Timing"); v != "" {
		t.Errorf("Server-Timing without Pragma: %q", v)
	}

	o.ServerTiming = true
	r = get(t, s.EdgeURL()+"health", o)
	cdn = r.CDN
	if cdn.Cache != httptrace.CacheRefreshHit || cdn.Upstream.Layer != "EDGE" || cdn.HitLayer != "EDGE" {
		t.Errorf("with Pragma: cache %q, upstream layer %q, hit layer %q; want refresh_hit, EDGE, EDGE", cdn.Cache, cdn.Upstream.Layer, cdn.HitLayer)
	}
	// The upstream 304 crossed the backbone both ways; the warm pool means
	// no connect at all.
	backboneRTT := 2 * DefaultBackboneOneWay
	if cdn.Upstream.FirstByte < backboneRTT || cdn.Upstream.DownstreamFirst < cdn.Upstream.FirstByte {
		t.Errorf("cdn-upstream-fbl %v, cdn-downstream-fbl %v; want ≥ the backbone RTT %v, downstream ≥ upstream", cdn.Upstream.FirstByte, cdn.Upstream.DownstreamFirst, backboneRTT)
	}
	entries := map[string]httptrace.ServerTiming{}
	for _, e := range cdn.ServerTiming {
		entries[e.Name] = e
	}
	if e, ok := entries["cdn-upstream-connect"]; !ok || !e.HasDuration || e.Duration != 0 {
		t.Errorf("cdn-upstream-connect = %+v; want dur=0 on the warm connection", e)
	}
	if entries["cdn-pop"].Desc != DefaultPOP || entries["cdn-rid"].Desc != cdn.RequestID {
		t.Errorf("cdn-pop %q, cdn-rid %q; want %q and the X-Amz-Cf-Id %q", entries["cdn-pop"].Desc, entries["cdn-rid"].Desc, DefaultPOP, cdn.RequestID)
	}
	t.Logf("Server-Timing: %s", r.Header.Get("Server-Timing"))

	// Origin errors are the edge's "Error".
	r = get(t, s.EdgeURL()+"missing", o)
	if r.Status != http.StatusNotFound || r.CDN.Cache != httptrace.CacheError {
		t.Errorf("missing page: status %d, cache %q; want 404 error", r.Status, r.CDN.Cache)
	}
	// So is an origin the edge cannot reach.
	s.backbone.Close()
	r = get(t, s.EdgeURL(), o)
	if r.Status != http.StatusBadGateway || r.CDN.Cache != httptrace.CacheError || r.CDN.POP != DefaultPOP {
		t.Errorf("origin unreachable: status %d, cache %q, POP %q; want 502 error from %s", r.Status, r.CDN.Cache, r.CDN.POP, DefaultPOP)
	}
}

func TestPOPOption(t *testing.T) {
	s := startSite(t, Options{POP: "NRT57-P2"})
	r := get(t, s.EdgeURL(), probeOptions(t, s))
	if r.CDN.POP != "NRT57-P2" || r.CDN.POPCity != "Tokyo" {
		t.Errorf("POP %q (%q); want NRT57-P2 (Tokyo)", r.CDN.POP, r.CDN.POPCity)
	}
}

func echoVia(t *testing.T, s *Site, path string, o httptrace.Options) (*httptrace.Result, echoReply) {
	t.Helper()
	o.KeepBody = true
	r := get(t, s.EdgeURL()+path, o)
	var e echoReply
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("%s %s: status %d, body %q: %v", o.Method, path, r.Status, r.Body, err)
	}
	return r, e
}

func TestMethodsPassThrough(t *testing.T) {
	s := startSite(t, Options{Think: -1})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		o := probeOptions(t, s)
		o.Method, o.Body = m, []byte(`{"cart":"`+m+`"}`)
		o.Header = http.Header{"Content-Type": {"application/json"}}
		r, e := echoVia(t, s, "echo", o)
		if r.Status != http.StatusOK || e.Method != m || e.Body != string(o.Body) {
			t.Errorf("%s: status %d, origin saw %s with body %q", m, r.Status, e.Method, e.Body)
		}
		if r.CDN.Cache != httptrace.CacheMiss || !strings.Contains(e.Headers["Via"], "cloudfront.net") || e.Headers["X-Amz-Cf-Id"] != r.CDN.RequestID {
			t.Errorf("%s: cache %q, origin saw Via %q, X-Amz-Cf-Id %q (response's %q); want a miss that went through the edge", m, r.CDN.Cache, e.Headers["Via"], e.Headers["X-Amz-Cf-Id"], r.CDN.RequestID)
		}
		if e.Headers["Host"] != SiteHost || e.Headers["Content-Type"] != "application/json" {
			t.Errorf("%s: origin saw Host %q, Content-Type %q", m, e.Headers["Host"], e.Headers["Content-Type"])
		}
	}

	o := probeOptions(t, s)
	o.Method = http.MethodOptions
	if r := get(t, s.EdgeURL(), o); r.Status != http.StatusNoContent || r.Header.Get("Allow") != allowMethods {
		t.Errorf("OPTIONS /: %d, Allow %q; want 204 and %q", r.Status, r.Header.Get("Allow"), allowMethods)
	}
	// HEAD is cached (under its own key) like GET.
	o.Method = http.MethodHead
	for i, want := range []string{httptrace.CacheMiss, httptrace.CacheRefreshHit} {
		r := get(t, s.EdgeURL()+"health", o)
		if r.Status != http.StatusOK || r.CDN.Cache != want || r.BodyBytes != 0 {
			t.Errorf("HEAD %d: status %d, cache %q, %d body bytes; want 200 %s without body", i, r.Status, r.CDN.Cache, r.BodyBytes, want)
		}
	}
}

// TestConcurrentProbes runs both ways at once, as the agent does, so the
// race detector sees the edge's cache and trace marks under contention.
func TestConcurrentProbes(t *testing.T) {
	s := startSite(t, Options{Think: time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 6 {
		wg.Go(func() {
			o := probeOptions(t, s)
			o.ServerTiming, o.Conditional = i%2 == 0, i%3 == 0
			if i%4 == 3 {
				o.ConnectTo = s.OriginConnectTo()
			}
			for _, path := range []string{"", "health?i=" + strconv.Itoa(i%2)} {
				r := httptrace.Probe(t.Context(), s.EdgeURL()+path, o)
				switch {
				case r.Err != nil:
					errs <- fmt.Sprintf("%d %s: %v", i, path, r.Err)
				case r.Status != http.StatusOK:
					errs <- fmt.Sprintf("%d %s: status %d", i, path, r.Status)
				case o.ConnectTo == "" && r.CDN.Cache != httptrace.CacheMiss && r.CDN.Cache != httptrace.CacheRefreshHit:
					errs <- fmt.Sprintf("%d %s: cache %q", i, path, r.CDN.Cache)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestCookiesAndQueryStrings(t *testing.T) {
	s := startSite(t, Options{Think: -1})
	o := probeOptions(t, s)
	o.Header = http.Header{"Cookie": {"session=abc123; theme=dark"}}
	r, e := echoVia(t, s, "echo?b=2&a=1&a=3", o)
	if e.Query != "b=2&a=1&a=3" || !slices.Equal(e.Params["a"], []string{"1", "3"}) {
		t.Errorf("origin saw query %q %v; want b=2&a=1&a=3 as sent", e.Query, e.Params)
	}
	if e.Cookies["session"] != "abc123" || e.Cookies["theme"] != "dark" {
		t.Errorf("origin saw cookies %v; want session and theme", e.Cookies)
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("Set-Cookie %q for a visitor who has a session", sc)
	}

	// A new visitor gets a session from the origin, through the cache too.
	anon := probeOptions(t, s)
	for i, want := range []string{httptrace.CacheMiss, httptrace.CacheRefreshHit} {
		r := get(t, s.EdgeURL(), anon)
		if r.CDN.Cache != want || !strings.HasPrefix(r.Header.Get("Set-Cookie"), "session=") {
			t.Errorf("anonymous GET %d: cache %q, Set-Cookie %q; want %s with a session cookie", i, r.CDN.Cache, r.Header.Get("Set-Cookie"), want)
		}
	}
	// Forwarded cookies are part of the cache key.
	r = get(t, s.EdgeURL(), o)
	if r.CDN.Cache != httptrace.CacheMiss {
		t.Errorf("GET with a session cookie after anonymous ones: cache %q; want miss (cookies are in the key)", r.CDN.Cache)
	}
}

func TestHTTPRedirectsToHTTPS(t *testing.T) {
	s := startSite(t, Options{})
	o := probeOptions(t, s)
	o.NoRedirects = true
	r := get(t, s.EdgeHTTPURL()+"health?x=1", o)
	if want := s.EdgeURL() + "health?x=1"; r.Status != http.StatusMovedPermanently || r.Location != want {
		t.Errorf("plain HTTP: %d to %q; want 301 to %q", r.Status, r.Location, want)
	}
	if r.CDN.Provider != httptrace.ProviderCloudFront || r.CDN.Cache != httptrace.CacheBypass || r.CDN.CacheRaw != "Redirect from cloudfront" {
		t.Errorf("redirect CDN facts: %+v; want CloudFront's Redirect", r.CDN)
	}
	if n := s.OriginCounts().Requests; n != 1 {
		t.Errorf("origin saw %d requests; want only the edge's warm-up (the edge redirects by itself)", n)
	}
	o.NoRedirects = false
	r = get(t, s.EdgeHTTPURL(), o)
	if r.Redirects != 1 || r.FinalURL != s.EdgeURL() || r.Status != http.StatusOK || r.TLS == nil {
		t.Errorf("followed: %d redirects to %q, status %d; want 1 to %q over TLS, 200", r.Redirects, r.FinalURL, r.Status, s.EdgeURL())
	}
}

// TestEdgeIsFaster is the article's claim in numbers: TLS ends at the nearby
// edge, and the first byte comes over the backbone (and from a fast 304).
func TestEdgeIsFaster(t *testing.T) {
	s := startSite(t, Options{})
	edge := probeOptions(t, s)
	origin := probeOptions(t, s)
	origin.ConnectTo = s.OriginConnectTo()
	get(t, s.EdgeURL(), edge) // the one Miss, so every edge sample below is a RefreshHit

	const n = 5
	var eTLS, oTLS, eTTFB, oTTFB []time.Duration
	for range n {
		re, ro := get(t, s.EdgeURL(), edge), get(t, s.EdgeURL(), origin)
		eTLS, eTTFB = append(eTLS, re.Timings.TLS), append(eTTFB, re.Timings.TTFB)
		oTLS, oTTFB = append(oTLS, ro.Timings.TLS), append(oTTFB, ro.Timings.TTFB)
	}
	et, ot, ef, of := median(eTLS), median(oTLS), median(eTTFB), median(oTTFB)
	t.Logf("median of %d: tls edge %v origin %v; ttfb edge %v origin %v", n, et, ot, ef, of)
	// Noise only adds time: no sample may beat its path's round trip.
	if slices.Min(eTLS) < 2*DefaultEdgeOneWay || slices.Min(oTLS) < 2*DefaultOriginOneWay {
		t.Errorf("tls shorter than the injected RTT: edge %v (RTT %v), origin %v (RTT %v)", eTLS, 2*DefaultEdgeOneWay, oTLS, 2*DefaultOriginOneWay)
	}
	if ot-et <= 20*time.Millisecond {
		t.Errorf("origin tls %v − edge tls %v ≤ 20ms; want the 36 ms RTT difference", ot, et)
	}
	// ttfb: edge 4 + backbone 20 + 304 ≈ 24 ms against 40 + think 30 = 70 ms.
	if of-ef <= 20*time.Millisecond {
		t.Errorf("origin ttfb %v − edge ttfb %v ≤ 20ms; want about 45 ms", of, ef)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestCloseStopsEverything(t *testing.T) {
	s := startSite(t, Options{})
	get(t, s.EdgeURL(), probeOptions(t, s))
	ca := s.CAFile()
	s.Close()
	s.Close()
	if _, err := os.Stat(ca); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CA file after Close: %v; want it removed", err)
	}
	goleak.VerifyNone(t)
}

func TestOptionsDefaults(t *testing.T) {
	got := Options{EdgeOneWay: -1}.withDefaults()
	want := Options{OriginOneWay: DefaultOriginOneWay, BackboneOneWay: DefaultBackboneOneWay, EdgeOneWay: 0, Think: DefaultThink, POP: DefaultPOP}
	if got != want {
		t.Errorf("withDefaults = %+v; want %+v", got, want)
	}
}

func TestConfigYAML(t *testing.T) {
	s := startSite(t, Options{})
	y := s.ConfigYAML(time.Second, "/tmp/demo dir/samples.jsonl", "127.0.0.1:9470")
	var doc map[string]any
	if err := yaml.Unmarshal(y, &doc); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	checkSchema(t, "config", doc, reflect.TypeFor[probe.Config]())

	targets, _ := doc["targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("targets = %v; want one", doc["targets"])
	}
	tg, _ := targets[0].(map[string]any)
	roles, _ := tg["roles"].(map[string]any)
	origin, _ := roles["origin"].(map[string]any)
	exp, _ := doc["exporters"].(map[string]any)
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", tg["name"], "shop"},
		{"url", tg["url"], s.EdgeURL()},
		{"origin connect_to", origin["connect_to"], s.OriginConnectTo()},
		{"cdn role", reflect.TypeOf(roles["cdn"]), reflect.TypeOf(map[string]any{})},
		{"conditional", tg["conditional"], true},
		{"server_timing", tg["server_timing"], true},
		{"ca_file", tg["ca_file"], s.CAFile()},
		{"dns_server", tg["dns_server"], s.DNSServer()},
		{"prometheus listen", exp["prometheus"].(map[string]any)["listen"], "127.0.0.1:9470"},
		{"jsonl path", exp["jsonl"].(map[string]any)["path"], "/tmp/demo dir/samples.jsonl"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v; want %#v", c.what, c.got, c.want)
		}
	}
	def, _ := doc["defaults"].(map[string]any)
	iv, _ := time.ParseDuration(def["interval"].(string))
	to, _ := time.ParseDuration(def["timeout"].(string))
	if iv != time.Second || to <= 0 || to > iv {
		t.Errorf("interval %v, timeout %v; want 1s and 0 < timeout ≤ interval", iv, to)
	}

	bare := s.ConfigYAML(0, "", "")
	if err := yaml.Unmarshal(bare, &doc); err != nil {
		t.Fatal(err)
	}
	if e, _ := doc["exporters"].(map[string]any); len(e) != 0 {
		t.Errorf("exporters without listen and path: %v; want none", e)
	}
}

var durationType = reflect.TypeFor[probe.Duration]()

// checkSchema holds a decoded YAML value against the Go type the agent
// decodes it into, by yaml tag: an unknown key or a wrong kind fails, as the
// agent's strict loader would.
func checkSchema(t *testing.T, path string, v any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == durationType:
		if s, ok := v.(string); !ok {
			t.Errorf("%s: %#v; want a duration string", path, v)
		} else if _, err := time.ParseDuration(s); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return
	case typ.Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %#v; want a mapping", path, v)
			return
		}
		fields := map[string]reflect.Type{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		for k, sub := range m {
			ft, ok := fields[k]
			if !ok {
				t.Errorf("%s: unknown key %q", path, k)
				continue
			}
			checkSchema(t, path+"."+k, sub, ft)
		}
	case typ.Kind() == reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %#v; want a mapping", path, v)
			return
		}
		for k, sub := range m {
			checkSchema(t, path+"."+k, sub, typ.Elem())
		}
	case typ.Kind() == reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %#v; want a sequence", path, v)
			return
		}
		for _, sub := range l {
			checkSchema(t, path+"[]", sub, typ.Elem())
		}
	case typ.Kind() == reflect.String:
		if _, ok := v.(string); !ok {
			t.Errorf("%s: %#v; want a string", path, v)
		}
	case typ.Kind() == reflect.Bool:
		if _, ok := v.(bool); !ok {
			t.Errorf("%s: %#v; want a bool", path, v)
		}
	default: // numbers: goccy decodes them as int64/uint64/float64
		switch v.(type) {
		case int, int64, uint64, float64:
		default:
			t.Errorf("%s: %#v; want a number", path, v)
		}
	}
}
