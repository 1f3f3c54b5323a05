package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/audit"
	"github.com/edgeprobe/edgeprobe/audit/audittest"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

// wireOptions audits the page /page of site through its nginx edge, with
// the origin given by URL, an echo path and a path safe for every method.
func wireOptions(site *audittest.Site) audit.WireOptions {
	return audit.WireOptions{
		URL:        site.Edge.HTTPSURL + "/page",
		HTTPURL:    site.Edge.HTTPURL + "/page",
		OriginURL:  site.OriginURL,
		EchoPath:   "/echo",
		MethodPath: "/safe",
		Probe:      httptrace.Options{RootCAs: site.CA.Pool()},
	}
}

func wireAudit(t *testing.T, o audit.WireOptions) *audit.Report {
	t.Helper()
	r, err := audit.Wire(context.Background(), o)
	if err != nil {
		t.Fatalf("Wire: %v", err)
	}
	return r
}

func fact(r *audit.Report, name string) string {
	var out []string
	for _, f := range r.Facts {
		if f.Name == name {
			out = append(out, f.Value)
		}
	}
	return strings.Join(out, "\n")
}

// TestWireGoodEdge: nginx in front of the origin as the article wants
// CloudFront: HTTP 301 to HTTPS, every method passes, TTL 0 revalidated
// with a fast 304 (X-Cache REVALIDATED = RefreshHit), cookies and query
// strings reach the origin.
func TestWireGoodEdge(t *testing.T) {
	site := audittest.StartSite(t, nil, audittest.EdgeOptions{})
	ignore := goleak.IgnoreCurrent()
	r := wireAudit(t, wireOptions(site))
	goleak.VerifyNone(t, ignore) // every probe's connection is closed
	noneAtOrAbove(t, r, audit.Medium)
	if r.Failed() {
		t.Fatalf("good edge failed:\n%s", dump(r))
	}
	cache := fact(r, "edge cache")
	if !strings.Contains(cache, "MISS from nginx") || !strings.Contains(cache, "REVALIDATED from nginx") {
		t.Errorf("want a MISS then REVALIDATED (TTL 0 revalidation), got %q", cache)
	}
	if r.Has("refresh-hit-missing") || r.Has("cache-hit-dynamic") {
		t.Errorf("REVALIDATED must read as a refresh hit:\n%s", dump(r))
	}
	if !hasFinding(r, want{"redirect-cost", audit.Info, "GET " + site.Edge.HTTPURL}) {
		t.Errorf("no redirect-cost note:\n%s", dump(r))
	}
	m := r.Measurements
	if m["redirect_cost_seconds"] <= 0 {
		t.Errorf("redirect cost not measured: %v", m)
	}
	if m["ttfb_304_seconds"] <= 0 || m["ttfb_304_seconds"] >= m["ttfb_200_seconds"] {
		t.Errorf("the 304 should be measured and faster than the 200: %v", m)
	}
	if echo := fact(r, "echo"); !strings.Contains(echo, "cookie seen, query string seen") {
		t.Errorf("echo: %q", echo)
	}
	if tls := fact(r, "edge TLS"); !strings.Contains(tls, "ALPN h2") {
		t.Errorf("edge TLS: %q", tls)
	}
	if site.Origin.NotModified() == 0 {
		t.Error("the origin never answered 304")
	}
}

// TestWireBadEdges: each bad setup gives its finding.
func TestWireBadEdges(t *testing.T) {
	cases := []struct {
		name   string
		origin func(*audittest.Origin)
		edge   audittest.EdgeOptions
		adjust func(*audit.WireOptions)
		want   []want
		absent []string
	}{
		{name: "origin without validators", origin: func(o *audittest.Origin) { o.NoValidators = true },
			want: []want{{"validators-missing", audit.High, "GET https://127.0.0.1"}}, absent: []string{"refresh-hit-missing"}},
		{name: "origin without 304", origin: func(o *audittest.Origin) { o.NoNotModified = true },
			want: []want{{"not-modified-missing", audit.High, "If-Modified-Since"}}},
		{name: "methods blocked at the edge", edge: audittest.EdgeOptions{BlockMethods: true},
			want: []want{{"method-blocked", audit.High, "POST"}}},
		{name: "OPTIONS blocked, no method path", edge: audittest.EdgeOptions{BlockMethods: true},
			adjust: func(o *audit.WireOptions) { o.MethodPath = "" },
			want:   []want{{"method-blocked", audit.High, "OPTIONS"}}},
		{name: "OPTIONS blocked, no origin to compare", edge: audittest.EdgeOptions{BlockMethods: true},
			adjust: func(o *audit.WireOptions) { o.MethodPath, o.OriginURL = "", "" },
			want:   []want{{"method-blocked", audit.High, "OPTIONS"}}},
		{name: "plain HTTP serves the page", edge: audittest.EdgeOptions{NoRedirect: true},
			want: []want{{"http-redirect", audit.High, "GET http://"}}, absent: []string{"redirect-cost"}},
		{name: "dynamic page cached", edge: audittest.EdgeOptions{CacheFor: time.Minute},
			want: []want{{"cache-hit-dynamic", audit.High, "X-Cache"}}},
		{name: "cookies and query strings dropped", edge: audittest.EdgeOptions{StripCookies: true, StripQuery: true},
			want: []want{{"echo-cookie-missing", audit.High, "/echo"}, {"echo-query-missing", audit.Medium, "/echo"}}},
		{name: "no HTTP/2 at the edge", edge: audittest.EdgeOptions{NoHTTP2: true},
			want: []want{{"edge-alpn", audit.Medium, "ALPN"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			site := audittest.StartSite(t, tc.origin, tc.edge)
			o := wireOptions(site)
			if tc.adjust != nil {
				tc.adjust(&o)
			}
			r := wireAudit(t, o)
			wantFail := false
			for _, w := range tc.want {
				wantFail = wantFail || w.sev >= audit.High
				if !hasFinding(r, w) {
					t.Errorf("want %s (%s) at %q; got:\n%s", w.id, w.sev, w.path, dump(r))
				}
			}
			for _, id := range tc.absent {
				if r.Has(id) {
					t.Errorf("did not want %s:\n%s", id, dump(r))
				}
			}
			if r.Failed() != wantFail {
				t.Errorf("Failed() = %v, want %v:\n%s", r.Failed(), wantFail, dump(r))
			}
		})
	}
}

// TestWireConnectTo reaches the origin by dialling it under the site's
// URL (Host and SNI kept), as --connect-to ALB does.
func TestWireConnectTo(t *testing.T) {
	site := audittest.StartSite(t, func(o *audittest.Origin) { o.NoNotModified = true }, audittest.EdgeOptions{})
	o := wireOptions(site)
	o.OriginURL, o.ConnectTo = "", strings.TrimPrefix(site.OriginURL, "https://")
	r := wireAudit(t, o)
	if !hasFinding(r, want{"not-modified-missing", audit.High, "connect to 127.0.0.1"}) {
		t.Errorf("want not-modified-missing at the origin via connect-to:\n%s", dump(r))
	}
	if !strings.Contains(fact(r, "origin TLS"), "TLS 1.3") {
		t.Errorf("origin TLS not read: %q", fact(r, "origin TLS"))
	}
}

func TestWireUnreachable(t *testing.T) {
	addr := testkit.FreeLoopbackAddr(t) // nothing listens there
	r := wireAudit(t, audit.WireOptions{URL: "https://" + addr + "/", Probe: httptrace.Options{Timeout: 2 * time.Second}})
	if !hasFinding(r, want{"unreachable", audit.Critical, addr}) || !r.Failed() {
		t.Errorf("want unreachable (critical):\n%s", dump(r))
	}
}

func TestWireOptionsValidate(t *testing.T) {
	for _, o := range []audit.WireOptions{
		{URL: "http://www.example.com/"},
		{URL: "www.example.com"},
		{URL: "https://www.example.com/", OriginURL: "https://alb", ConnectTo: "alb"},
		{URL: "https://www.example.com/", EchoPath: "echo"},
		{URL: "https://www.example.com/", HTTPURL: "https://www.example.com/"},
	} {
		if _, err := audit.Wire(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
