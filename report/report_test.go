package report

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

const msec = time.Millisecond

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// timings builds consistent phases: dns, connect, tls, a 0.1 ms request
// write, ttfb, transfer; first_byte and total follow from them.
func timings(dns, connect, tlsD, ttfb, transfer time.Duration) httptrace.Timings {
	fb := dns + connect + tlsD + 100*time.Microsecond + ttfb
	return httptrace.Timings{DNS: dns, Connect: connect, TLS: tlsD, TTFB: ttfb, Transfer: transfer, FirstByte: fb, Total: fb + transfer}
}

// sample is a successful 200 with a validator, unless mods say otherwise.
func sample(target, role, url string, t httptrace.Timings, mods ...func(*probe.Sample)) probe.Sample {
	s := probe.Sample{Target: target, Role: role, Location: "lab", Result: &httptrace.Result{
		URL: url, FinalURL: url, Start: t0, Timings: t, Status: http.StatusOK, Proto: "HTTP/1.1",
		Header: http.Header{"Etag": {`"v1"`}},
		CDN:    httptrace.CDN{Cache: httptrace.CacheUnknown},
	}}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func failed(phase, msg string) func(*probe.Sample) {
	return func(s *probe.Sample) {
		s.Err = &httptrace.Error{Phase: phase, Message: msg}
		s.Status = 0
		s.Timings.Total = 9 * time.Second // must not leak into the phase stats
	}
}

func withTTFB(d time.Duration) httptrace.Timings { return timings(msec, 2*msec, 3*msec, d, msec) }

func TestPercentileNearestRank(t *testing.T) {
	seq := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * msec
		}
		return out
	}
	cases := []struct {
		n             int
		p50, p90, p99 time.Duration
	}{
		{1, 1 * msec, 1 * msec, 1 * msec},
		{4, 2 * msec, 4 * msec, 4 * msec}, // ranks ⌈2⌉, ⌈3.6⌉, ⌈3.96⌉
		{5, 3 * msec, 5 * msec, 5 * msec},
		{10, 5 * msec, 9 * msec, 10 * msec}, // 0.9·10 is rank 9 despite float error
		{100, 50 * msec, 90 * msec, 99 * msec},
		{200, 100 * msec, 180 * msec, 198 * msec},
	}
	for _, c := range cases {
		s := seq(c.n)
		if got := [3]time.Duration{Percentile(s, 50), Percentile(s, 90), Percentile(s, 99)}; got != [3]time.Duration{c.p50, c.p90, c.p99} {
			t.Errorf("n=%d: p50/p90/p99 = %v, want %v %v %v", c.n, got, c.p50, c.p90, c.p99)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	// NewStats sorts a copy: the input order is kept.
	in := []time.Duration{7 * msec, 3 * msec, 9 * msec, 1 * msec, 5 * msec}
	st := NewStats(in)
	want := Stats{N: 5, Min: msec, P50: 5 * msec, P90: 9 * msec, P99: 9 * msec, Max: 9 * msec}
	if st != want {
		t.Errorf("NewStats = %+v, want %+v", st, want)
	}
	if in[0] != 7*msec {
		t.Error("NewStats modified its input")
	}
}

func TestSummarizeGroupsAndStats(t *testing.T) {
	const u = "https://www.example.com/"
	var samples []probe.Sample
	// Interleaved rounds, cdn first: groups must come out in first-seen order.
	ttfbs := []time.Duration{30, 10, 50, 20, 40} // ms
	for i, v := range ttfbs {
		samples = append(samples,
			sample("shop", "cdn", u, withTTFB(v*msec)),
			sample("shop", "origin", u, withTTFB(2*v*msec)))
		if i == 2 {
			samples = append(samples, sample("shop", "origin", u, withTTFB(0), failed(httptrace.ErrConnect, "connection refused")))
		}
	}
	samples = append(samples,
		sample("shop", "cdn", u, withTTFB(msec), func(s *probe.Sample) { s.Address = "ipv6-0" }),
		sample("shop", "origin", u, withTTFB(0), failed(httptrace.ErrTLS, "bad cert")),
		sample("shop", "origin", u, withTTFB(0), failed(httptrace.ErrConnect, "connection refused")),
	)

	s := Summarize(samples)
	if len(s.Groups) != 3 {
		t.Fatalf("groups = %d, want 3", len(s.Groups))
	}
	cdn, origin, v6 := s.Groups[0], s.Groups[1], s.Groups[2]
	if cdn.Role != "cdn" || origin.Role != "origin" || v6.Address != "ipv6-0" {
		t.Fatalf("group order: %q %q %q", cdn.Role, origin.Role, v6.Address)
	}
	if cdn.N != 5 || cdn.OK != 5 || origin.N != 8 || origin.OK != 5 || v6.N != 1 {
		t.Errorf("counts: cdn %d/%d origin %d/%d v6 %d", cdn.OK, cdn.N, origin.OK, origin.N, v6.N)
	}
	if origin.Failures[httptrace.ErrConnect] != 2 || origin.Failures[httptrace.ErrTLS] != 1 || len(cdn.Failures) != 0 {
		t.Errorf("failures: origin %v cdn %v", origin.Failures, cdn.Failures)
	}
	if origin.FailureMessages[httptrace.ErrConnect] != "connection refused" {
		t.Errorf("failure message: %q", origin.FailureMessages[httptrace.ErrConnect])
	}
	want := Stats{N: 5, Min: 10 * msec, P50: 30 * msec, P90: 50 * msec, P99: 50 * msec, Max: 50 * msec}
	if got := cdn.Phases[httptrace.PhaseTTFB]; got != want {
		t.Errorf("cdn ttfb = %+v, want %+v", got, want)
	}
	// The failures' 9 s totals stay out of the origin's stats.
	if got := origin.Phases[httptrace.PhaseTotal].Max; got != withTTFB(100*msec).Total {
		t.Errorf("origin total max = %v: failed samples leaked in", got)
	}
	if got := cdn.Phases[httptrace.PhaseDNS]; got.P50 != msec || got.N != 5 {
		t.Errorf("cdn dns = %+v", got)
	}
	if cdn.Median == nil || cdn.Median.Timings.TTFB != 30*msec {
		t.Errorf("median sample should be the 30 ms one, got %+v", cdn.Median)
	}
	if cdn.Label != "cdn" || v6.Label != "cdn ipv6-0" {
		t.Errorf("labels %q %q", cdn.Label, v6.Label)
	}
	if cdn.Statuses[200] != 5 || cdn.HTTPVersions["HTTP/1.1"] != 5 {
		t.Errorf("statuses %v versions %v", cdn.Statuses, cdn.HTTPVersions)
	}
}

func TestMedianSampleEvenCountIsLower(t *testing.T) {
	var samples []probe.Sample
	for _, v := range []time.Duration{40, 10, 30, 20} {
		samples = append(samples, sample("t", "", "https://t/", withTTFB(v*msec)))
	}
	g := Summarize(samples).Groups[0]
	if g.Median.Timings.TTFB != 20*msec {
		t.Errorf("median ttfb = %v, want the lower median 20ms", g.Median.Timings.TTFB)
	}
}

func TestComparisonOriginToCDN(t *testing.T) {
	const u = "https://www.example.com/"
	var samples []probe.Sample
	for range 3 {
		// CDN listed first: the diff is still cdn − origin.
		samples = append(samples,
			sample("shop", "cdn", u, timings(msec, 2*msec, 4*msec, 20*msec, msec)),
			sample("shop", "origin", u, timings(msec, 10*msec, 30*msec, 50*msec, msec)))
	}
	samples = append(samples, sample("other", "", "https://other/", withTTFB(msec)))
	s := Summarize(samples)
	if len(s.Comparisons) != 1 {
		t.Fatalf("comparisons = %d, want 1", len(s.Comparisons))
	}
	c := s.Comparisons[0]
	if s.Groups[c.A].Role != "origin" || s.Groups[c.B].Role != "cdn" {
		t.Fatalf("a=%q b=%q, want origin→cdn", s.Groups[c.A].Role, s.Groups[c.B].Role)
	}
	ttfb, _ := c.Row(httptrace.PhaseTTFB)
	if ttfb.Diff != -30*msec || !ttfb.HasPct || math.Abs(ttfb.Pct-(-60)) > 1e-9 {
		t.Errorf("ttfb diff = %v (%v%%), want -30ms (-60%%)", ttfb.Diff, ttfb.Pct)
	}
	tlsRow, _ := c.Row(httptrace.PhaseTLS)
	if tlsRow.Diff != -26*msec {
		t.Errorf("tls diff = %v, want -26ms", tlsRow.Diff)
	}
	dns, _ := c.Row(httptrace.PhaseDNS)
	if dns.Diff != 0 || dns.Pct != 0 {
		t.Errorf("dns diff = %v %v, want 0", dns.Diff, dns.Pct)
	}

	// Two groups without roles: the second against the first.
	two := Summarize([]probe.Sample{
		sample("a", "", "https://a/", timings(0, msec, msec, 10*msec, msec)),
		sample("b", "", "https://b/", timings(0, msec, msec, 15*msec, msec)),
	})
	if len(two.Comparisons) != 1 || two.Comparisons[0].A != 0 || two.Comparisons[0].B != 1 {
		t.Fatalf("two groups: %+v", two.Comparisons)
	}
	if r, _ := two.Comparisons[0].Row(httptrace.PhaseTTFB); r.Diff != 5*msec || math.Abs(r.Pct-50) > 1e-9 {
		t.Errorf("two groups ttfb diff = %v %v%%, want +5ms +50%%", r.Diff, r.Pct)
	}
	// A phase that is zero on the a side has no relative difference.
	if r, _ := two.Comparisons[0].Row(httptrace.PhaseDNS); r.HasPct {
		t.Errorf("dns equal on both sides: %+v", r)
	}

	// Three unrelated groups: nothing to compare.
	three := Summarize([]probe.Sample{
		sample("a", "", "https://a/", withTTFB(msec)),
		sample("b", "", "https://b/", withTTFB(msec)),
		sample("c", "", "https://c/", withTTFB(msec)),
	})
	if len(three.Comparisons) != 0 {
		t.Errorf("three groups compared: %+v", three.Comparisons)
	}
}

func TestComparisonPairsAddresses(t *testing.T) {
	const u = "https://www.example.com/"
	addr := func(a string) func(*probe.Sample) { return func(s *probe.Sample) { s.Address = a } }
	s := Summarize([]probe.Sample{
		sample("shop", "origin", u, withTTFB(40*msec), addr("ipv4-0")),
		sample("shop", "origin", u, withTTFB(60*msec), addr("ipv4-1")),
		sample("shop", "cdn", u, withTTFB(10*msec), addr("ipv4-0")),
		sample("shop", "cdn", u, withTTFB(10*msec), addr("ipv4-1")),
		sample("shop", "cdn", u, withTTFB(10*msec), addr("ipv6-0")),
	})
	var pairs [][2]string
	for _, c := range s.Comparisons {
		pairs = append(pairs, [2]string{s.Groups[c.A].Address, s.Groups[c.B].Address})
	}
	want := [][2]string{{"ipv4-0", "ipv4-0"}, {"ipv4-1", "ipv4-1"}, {"ipv4-0", "ipv6-0"}}
	if !slices.Equal(pairs, want) {
		t.Errorf("pairs = %v, want %v", pairs, want)
	}
}

func codes(g Group) []string {
	var out []string
	for _, w := range g.Warnings {
		out = append(out, w.Code)
	}
	return out
}

func TestWarnings(t *testing.T) {
	header := func(kv ...string) func(*probe.Sample) {
		return func(s *probe.Sample) {
			s.Header = http.Header{}
			for i := 0; i < len(kv); i += 2 {
				s.Header.Set(kv[i], kv[i+1])
			}
		}
	}
	status := func(code int) func(*probe.Sample) { return func(s *probe.Sample) { s.Status = code } }
	hops := func(urls ...string) func(*probe.Sample) {
		return func(s *probe.Sample) {
			s.Hops = nil
			for i, u := range urls {
				st := http.StatusMovedPermanently
				if i == len(urls)-1 {
					st = http.StatusOK
				}
				s.Hops = append(s.Hops, httptrace.Hop{URL: u, Status: st})
			}
			s.Redirects = len(urls) - 1
		}
	}
	conditional := func(code int, ttfb time.Duration) func(*probe.Sample) {
		return func(s *probe.Sample) {
			s.Conditional = &httptrace.Conditional{Sent: true, IfNoneMatch: `"v1"`, Status: code,
				NotModified: code == http.StatusNotModified, Timings: timings(0, msec, 0, ttfb, 0)}
		}
	}
	tlsInfo := func(notAfter time.Duration, insecure bool) func(*probe.Sample) {
		return func(s *probe.Sample) {
			s.TLS = &httptrace.TLSInfo{Version: "TLS 1.3", Subject: "CN=www.example.com", NotAfter: t0.Add(notAfter), InsecureSkipVerify: insecure}
		}
	}
	cache := func(result string) func(*probe.Sample) {
		return func(s *probe.Sample) {
			s.CDN = httptrace.CDN{Provider: "cloudfront", Cache: result, POP: "FRA56-P1", POPCity: "Frankfurt"}
		}
	}
	const month = 30 * 24 * time.Hour

	cases := []struct {
		name string
		role string
		url  string
		mods []func(*probe.Sample)
		want []string // exactly these codes
	}{
		{"clean https", "", "https://s/", []func(*probe.Sample){tlsInfo(3*month, false)}, nil},
		{"http answered 200", "", "http://s/", nil, []string{WarnHTTPNotRedirected}},
		{"http redirected to https", "", "http://s/", []func(*probe.Sample){hops("http://s/", "https://s/")}, nil},
		{"http redirected to http", "", "http://s/", []func(*probe.Sample){hops("http://s/", "http://s/x")}, []string{WarnHTTPNotRedirected}},
		{"http 301 not followed to https", "", "http://s/", []func(*probe.Sample){status(301), header("Location", "https://s/")}, nil},
		{"http 301 not followed, headers unknown", "", "http://s/", []func(*probe.Sample){status(301), func(s *probe.Sample) { s.Header = nil }}, nil},
		{"no validator", "", "https://s/", []func(*probe.Sample){header("Content-Type", "text/html")}, []string{WarnNoValidator}},
		{"last-modified is a validator", "", "https://s/", []func(*probe.Sample){header("Last-Modified", "Sun, 01 Mar 2026 10:00:00 GMT")}, nil},
		{"validator unknown (read back from JSONL)", "", "https://s/", []func(*probe.Sample){func(s *probe.Sample) { s.Header = nil }}, nil},
		{"no validator told by conditional", "", "https://s/", []func(*probe.Sample){func(s *probe.Sample) {
			s.Header = nil
			s.Conditional = &httptrace.Conditional{Sent: false}
		}}, []string{WarnNoValidator}},
		{"no validator on a 404 is not a warning", "", "https://s/", []func(*probe.Sample){status(404), header()}, nil},
		{"revalidation 200", "", "https://s/", []func(*probe.Sample){conditional(200, msec)}, []string{WarnNo304}},
		{"revalidation 304 fast", "", "https://s/", []func(*probe.Sample){conditional(304, 2*msec)}, nil},
		{"revalidation 304 slow", "", "https://s/", []func(*probe.Sample){conditional(304, 40*msec)}, []string{WarnSlow304}},
		{"revalidation 304 as fast as a tiny 200", "", "https://s/", []func(*probe.Sample){
			func(s *probe.Sample) { s.Timings = withTTFB(1100 * time.Microsecond) }, conditional(304, 1200*time.Microsecond)}, nil},
		{"insecure", "", "https://s/", []func(*probe.Sample){tlsInfo(3*month, true)}, []string{WarnInsecure}},
		{"cert expires in 3 days", "", "https://s/", []func(*probe.Sample){tlsInfo(3*24*time.Hour, false)}, []string{WarnCertExpiring}},
		{"cert expires in 15 days", "", "https://s/", []func(*probe.Sample){tlsInfo(15*24*time.Hour, false)}, nil},
		{"cdn misses", "cdn", "https://s/", []func(*probe.Sample){cache(httptrace.CacheMiss)}, []string{WarnCacheNeverHits}},
		{"cdn refresh hits", "cdn", "https://s/", []func(*probe.Sample){cache(httptrace.CacheRefreshHit)}, nil},
		{"cloudfront misses without a role", "", "https://s/", []func(*probe.Sample){cache(httptrace.CacheMiss)}, []string{WarnCacheNeverHits}},
		{"cdn role without CDN headers", "cdn", "https://s/", nil, []string{WarnCacheNeverHits}},
		{"origin misses nothing", "origin", "https://s/", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var samples []probe.Sample
			for range 3 {
				samples = append(samples, sample("t", c.role, c.url, withTTFB(45*msec), c.mods...))
			}
			g := Summarize(samples).Groups[0]
			if got := codes(g); !slices.Equal(got, c.want) {
				t.Errorf("warnings = %v, want %v (%+v)", got, c.want, g.Warnings)
			}
			for _, w := range g.Warnings {
				if w.Message == "" {
					t.Errorf("%s without a message", w.Code)
				}
			}
		})
	}
}

func TestWarningsFromFailedSamplesOnly(t *testing.T) {
	// A plain-HTTP target that refuses connections tells nothing about redirects.
	s := Summarize([]probe.Sample{sample("t", "", "http://s/", withTTFB(0), failed(httptrace.ErrConnect, "refused"))})
	if got := codes(s.Groups[0]); len(got) != 0 {
		t.Errorf("warnings from a failed probe: %v", got)
	}
}

func TestConditionalSummary(t *testing.T) {
	var samples []probe.Sample
	for i, ttfb := range []time.Duration{3, 1, 2} {
		samples = append(samples, sample("t", "", "https://s/", withTTFB(40*msec), func(s *probe.Sample) {
			st := http.StatusNotModified
			if i == 2 {
				st = http.StatusOK
			}
			s.Conditional = &httptrace.Conditional{Sent: true, Status: st, NotModified: st == 304, Timings: timings(0, msec, 0, ttfb*msec, 0)}
		}))
	}
	c := Summarize(samples).Groups[0].Conditional
	if c == nil || c.Sent != 3 || c.NotModified != 2 || c.Statuses[304] != 2 || c.Statuses[200] != 1 {
		t.Fatalf("conditional = %+v", c)
	}
	// Only the 304 answers (ttfb 3 and 1 ms): nearest-rank p50 of 2 is the lower.
	if c.TTFB.N != 2 || c.TTFB.P50 != msec || c.TTFB.Max != 3*msec {
		t.Errorf("304 ttfb = %+v", c.TTFB)
	}
}

func comparedSummary() Summary {
	const u = "https://www.example.com/"
	var samples []probe.Sample
	for range 3 {
		samples = append(samples,
			sample("shop", "origin", u, timings(msec, 10*msec, 30*msec, 50*msec, msec)),
			sample("shop", "cdn", u, timings(msec, 2*msec, 4*msec, 20*msec, msec), func(s *probe.Sample) {
				s.CDN = httptrace.CDN{Provider: "cloudfront", Cache: httptrace.CacheRefreshHit, POP: "FRA56-P1", POPCity: "Frankfurt"}
			}))
	}
	samples = append(samples, sample("shop", "origin", u, withTTFB(0), failed(httptrace.ErrConnect, "connection refused by 10.0.0.1:443")))
	samples = append(samples, sample("plain", "", "http://plain.example/", withTTFB(5*msec)))
	return Summarize(samples)
}

func TestWriteTable(t *testing.T) {
	s := comparedSummary()
	var buf bytes.Buffer
	if err := WriteTable(&buf, s, TableOptions{Width: 80}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	if strings.Contains(out, "\x1b[") {
		t.Error("ANSI escapes without Color")
	}
	lines := strings.Split(out, "\n")

	// The side-by-side table: a header with p50/p90/p99 per group and the
	// diff column, one row per phase, all rows equally wide.
	hdr := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "phase (ms)") })
	if hdr < 1 {
		t.Fatalf("no table header in\n%s", out)
	}
	for _, label := range []string{"origin (3/4 ok)", "cdn (3/3 ok)", "plain (1/1 ok)"} {
		if !strings.Contains(lines[hdr-1], label) {
			t.Errorf("group header %q missing: %q", label, lines[hdr-1])
		}
	}
	if got := strings.Count(lines[hdr], "p50"); got != 4 { // 3 groups + the diff column
		t.Errorf("header has %d p50 columns, want 4: %q", got, lines[hdr])
	}
	if !strings.Contains(lines[hdr], "cdn−origin p50") {
		t.Errorf("no diff column: %q", lines[hdr])
	}
	width := utf8.RuneCountInString(lines[hdr])
	for i, phase := range httptrace.Phases {
		row := lines[hdr+1+i]
		if f := strings.Fields(row); len(f) == 0 || f[0] != phase {
			t.Fatalf("row %d = %q, want phase %s", i, row, phase)
		}
		if w := utf8.RuneCountInString(row); w != width {
			t.Errorf("row %s is %d wide, header %d: columns misaligned", phase, w, width)
		}
	}
	ttfbRow := strings.Fields(lines[hdr+1+slices.Index(httptrace.Phases, httptrace.PhaseTTFB)])
	// ttfb origin p50 p90 p99, cdn p50 p90 p99, plain p50 p90 p99, diff.
	if want := []string{"ttfb", "50.00", "50.00", "50.00", "20.00", "20.00", "20.00", "5.00", "5.00", "5.00", "-30.00", "(-60%)"}; !slices.Equal(ttfbRow, want) {
		t.Errorf("ttfb row = %v, want %v", ttfbRow, want)
	}

	// Waterfalls: one per group, bars scaled within the width.
	for _, label := range []string{"origin  https://www.example.com/", "cdn  https://www.example.com/", "plain  http://plain.example/"} {
		if !strings.Contains(out, label) {
			t.Errorf("waterfall heading %q missing", label)
		}
	}
	var ttfbBars []string
	for _, l := range lines {
		if utf8.RuneCountInString(l) > 80 && strings.ContainsRune(l, '█') {
			t.Errorf("waterfall line wider than 80: %q", l)
		}
		if strings.HasPrefix(l, "  ttfb ") {
			ttfbBars = append(ttfbBars, l)
		}
	}
	if len(ttfbBars) != 3 || !strings.Contains(ttfbBars[0], "█") {
		t.Fatalf("ttfb bars: %q", ttfbBars)
	}
	// In the origin's waterfall ttfb is 50 of 92.1 ms: more than half the bar.
	if n := strings.Count(ttfbBars[0], "█"); n < 25 || n > 30 {
		t.Errorf("origin ttfb bar has %d full blocks, want about 54%% of 52", n)
	}

	for _, want := range []string{
		"cache refresh_hit ×3 · POPs FRA56-P1 (Frankfurt) ×3",
		"failed ×1 in connect: connection refused by 10.0.0.1:443",
		"warnings (1)",
		"plain: http://plain.example/ answered 200 instead of redirecting to https://",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	buf.Reset()
	if err := WriteTable(&buf, s, TableOptions{Color: true, Width: 80}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\x1b[32m-30.00 (-60%)\x1b[0m") {
		t.Error("with Color, a 60% faster CDN should be green")
	}
}

func TestWriteTableNoSuccess(t *testing.T) {
	s := Summarize([]probe.Sample{sample("t", "", "https://s/", withTTFB(0), failed(httptrace.ErrDNS, "no such host"))})
	var buf bytes.Buffer
	if err := WriteTable(&buf, s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no successful probe", "failed ×1 in dns: no such host", "ttfb"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := WriteTable(&buf, Summary{}, TableOptions{}); err != nil || !strings.Contains(buf.String(), "no samples") {
		t.Errorf("empty summary: %q %v", buf.String(), err)
	}
}

func TestDrawBar(t *testing.T) {
	cases := []struct {
		start, length float64
		nonEmpty      bool
		want          string
	}{
		{0, 3, true, "███"},
		{2, 1.5, true, "  █▌"},
		{1, 0.01, true, " ▏"}, // a real phase is never invisible
		{1, 0, false, " "},
		{8, 5, true, "        ██"}, // clipped to the width
	}
	for _, c := range cases {
		if got := drawBar(c.start, c.length, c.nonEmpty, 10); got != c.want {
			t.Errorf("drawBar(%v, %v) = %q, want %q", c.start, c.length, got, c.want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, comparedSummary()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Groups []struct {
			Target, Role, URL string
			N, OK             int
			Failures          map[string]int
			Phases            map[string]map[string]float64
			Cache             map[string]int
			POPs              []struct{ Code, City string } `json:"pops"`
			Warnings          []struct{ Code, Message string }
			Median            map[string]any
		}
		Diff []struct {
			Phase          string
			ARole          string   `json:"a_role"`
			BRole          string   `json:"b_role"`
			AP50           float64  `json:"a_p50"`
			BP50           float64  `json:"b_p50"`
			DiffP50Seconds float64  `json:"diff_p50_seconds"`
			DiffPct        *float64 `json:"diff_pct"`
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(got.Groups) != 3 {
		t.Fatalf("groups: %d", len(got.Groups))
	}
	origin, cdn, plain := got.Groups[0], got.Groups[1], got.Groups[2]
	if origin.Role != "origin" || origin.N != 4 || origin.OK != 3 || origin.Failures["connect"] != 1 {
		t.Errorf("origin: %+v", origin)
	}
	if p := origin.Phases["ttfb"]; math.Abs(p["p50"]-0.050) > 1e-12 || math.Abs(p["max"]-0.050) > 1e-12 || p["n"] != 3 {
		t.Errorf("origin ttfb in seconds: %v", p)
	}
	if cdn.Cache["refresh_hit"] != 3 || len(cdn.POPs) != 1 || cdn.POPs[0].City != "Frankfurt" {
		t.Errorf("cdn cache %v pops %v", cdn.Cache, cdn.POPs)
	}
	if cdn.Median["ttfb_seconds"] != 0.02 || cdn.Median["role"] != "cdn" {
		t.Errorf("median is not the sample's JSONL object: %v", cdn.Median)
	}
	if len(plain.Warnings) != 1 || plain.Warnings[0].Code != WarnHTTPNotRedirected {
		t.Errorf("plain warnings %v", plain.Warnings)
	}
	var ttfb, dns bool
	for _, d := range got.Diff {
		if d.ARole != "origin" || d.BRole != "cdn" {
			t.Errorf("diff roles %q→%q", d.ARole, d.BRole)
		}
		switch d.Phase {
		case "ttfb":
			ttfb = true
			if math.Abs(d.DiffP50Seconds-(-0.030)) > 1e-12 || d.DiffPct == nil || math.Abs(*d.DiffPct-(-60)) > 1e-9 {
				t.Errorf("ttfb diff %+v", d)
			}
		case "dns":
			dns = true
			if d.DiffP50Seconds != 0 {
				t.Errorf("dns diff %+v", d)
			}
		}
	}
	if !ttfb || !dns || len(got.Diff) != len(httptrace.Phases) {
		t.Errorf("diff rows: %d", len(got.Diff))
	}
}

func TestWaterfallAfterRedirect(t *testing.T) {
	// Hop 1 took 10 ms; the final hop's own timings; total and first_byte
	// count from the probe's start (DESIGN.md).
	final := timings(msec, 2*msec, 3*msec, 20*msec, msec) // own total 27.1 ms
	cum := final
	cum.Total += 10 * msec
	cum.FirstByte += 10 * msec
	r := &httptrace.Result{Timings: cum, Redirects: 1, Hops: []httptrace.Hop{
		{URL: "http://s/", Status: 301, Timings: timings(0, msec, 0, 8*msec, msec)},
		{URL: "https://s/", Status: 200, Timings: final},
	}}
	got := map[string]bar{}
	for _, b := range waterfall(r) {
		got[b.name] = b
	}
	want := map[string]bar{
		"redirects":             {"redirects", 0, 10 * msec},
		httptrace.PhaseDNS:      {httptrace.PhaseDNS, 10 * msec, msec},
		httptrace.PhaseConnect:  {httptrace.PhaseConnect, 11 * msec, 2 * msec},
		httptrace.PhaseTLS:      {httptrace.PhaseTLS, 13 * msec, 3 * msec},
		httptrace.PhaseTTFB:     {httptrace.PhaseTTFB, 16*msec + 100*time.Microsecond, 20 * msec},
		httptrace.PhaseTransfer: {httptrace.PhaseTransfer, 36*msec + 100*time.Microsecond, msec},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %+v, want %+v", name, got[name], w)
		}
	}
	// Without redirects nothing precedes dns.
	if bars := waterfall(&httptrace.Result{Timings: final}); bars[0].name != httptrace.PhaseDNS || bars[0].start != 0 {
		t.Errorf("no redirect: %+v", bars[0])
	}
}
