package promexp

import (
	"net/http"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// secret is planted in every header the samples carry; no output may show it.
const secret = "s3cr3t-planted-header-value"

const testLocation = "test-loc"

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func msec(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// cdnSample is a successful probe through CloudFront with every optional
// fact: TLS, CDN cache result and POP, Server-Timing upstream timings, a
// conditional request answered 304 and a warm request.
func cdnSample() *probe.Sample {
	return &probe.Sample{Target: "shop", Role: "cdn", Location: testLocation, Result: &httptrace.Result{
		URL: "https://www.example.com/health", FinalURL: "https://www.example.com/health", Start: t0,
		Timings: httptrace.Timings{
			DNS: msec(2), Connect: msec(4), TLS: msec(9), TTFB: msec(30), Transfer: msec(3),
			Total: msec(48.5), FirstByte: msec(45.5),
		},
		RemoteAddr: "192.0.2.10:443", IPFamily: "ipv4", ConnectAttempts: 1, Proto: "HTTP/2.0",
		Status: 200, BodyBytes: 512,
		Header: http.Header{"X-Amz-Cf-Id": {secret}, "Set-Cookie": {"session=" + secret}, "X-Cache": {"Hit from cloudfront"}},
		TLS: &httptrace.TLSInfo{
			Version: "TLS 1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ALPN: "h2", ServerName: "www.example.com",
			NotAfter: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		},
		CDN: httptrace.CDN{
			Provider: httptrace.ProviderCloudFront, Cache: httptrace.CacheHit, CacheRaw: "Hit from cloudfront " + secret,
			CacheSource: httptrace.SourceXCache, POP: "FRA56-P1", POPCity: "Frankfurt", RequestID: secret,
			Upstream: httptrace.Upstream{DNS: msec(1), Connect: msec(12), FirstByte: msec(80), DownstreamFirst: msec(25)},
		},
		Warm: &httptrace.Timings{TTFB: msec(20), Transfer: msec(1), Total: msec(21), FirstByte: msec(20)},
		Conditional: &httptrace.Conditional{
			Sent: true, IfModified: "Sat, 01 Mar 2025 11:00:00 GMT", IfNoneMatch: `"` + secret + `"`,
			Status: 304, NotModified: true,
			Timings: httptrace.Timings{DNS: msec(2), Connect: msec(4), TLS: msec(9), TTFB: msec(15), Total: msec(31), FirstByte: msec(30)},
		},
	}}
}

// originSample is a successful plain-HTTP probe of an IP literal: no DNS,
// no TLS, no CDN; the conditional request was skipped for lack of a
// validator.
func originSample() *probe.Sample {
	return &probe.Sample{Target: "shop", Role: "origin", Location: testLocation, Address: "ipv4-0", Result: &httptrace.Result{
		URL: "http://192.0.2.20/health", Start: t0,
		Timings:    httptrace.Timings{Connect: msec(40), TTFB: msec(120), Transfer: msec(5), Total: msec(166), FirstByte: msec(161)},
		RemoteAddr: "192.0.2.20:80", IPFamily: "ipv4", ConnectAttempts: 1, Proto: "HTTP/1.1", Status: 200,
		CDN:         httptrace.CDN{Cache: httptrace.CacheUnknown},
		Conditional: &httptrace.Conditional{},
	}}
}

// failedSample fails in phase; its timings hold what a real probe failing
// there measures (httptrace stamps the end of DNS and TLS even on failure).
func failedSample(target, phase string) *probe.Sample {
	r := &httptrace.Result{URL: "https://" + target + ".example.com/", Start: t0, Err: &httptrace.Error{Phase: phase, Message: phase + " failed"}}
	t := &r.Timings
	switch phase {
	case httptrace.ErrDNS:
		t.DNS, t.Total = msec(5000), msec(5000)
	case httptrace.ErrConnect:
		t.DNS, t.Total, r.ConnectAttempts = msec(3), msec(1003), 2
	case httptrace.ErrTLS:
		t.DNS, t.Connect, t.TLS, t.Total, r.ConnectAttempts = msec(3), msec(10), msec(20), msec(34), 1
	case httptrace.ErrHTTP: // the connection broke while reading the body
		*t = httptrace.Timings{DNS: msec(3), Connect: msec(10), TLS: msec(20), TTFB: msec(50), Transfer: msec(7), Total: msec(91), FirstByte: msec(84)}
		r.ConnectAttempts, r.Status, r.Proto, r.IPFamily = 1, 200, "HTTP/1.1", "ipv6"
		r.TLS = &httptrace.TLSInfo{Version: "TLS 1.2", NotAfter: t0.Add(30 * 24 * time.Hour)}
	case httptrace.ErrTimeout: // timed out waiting for the first byte
		*t = httptrace.Timings{DNS: msec(3), Connect: msec(10), TLS: msec(20), Total: msec(10000)}
		r.ConnectAttempts = 1
	case httptrace.ErrAssert: // a 503 from the CDN
		*t = httptrace.Timings{DNS: msec(3), Connect: msec(10), TLS: msec(20), TTFB: msec(2), Transfer: msec(1), Total: msec(37), FirstByte: msec(36)}
		r.ConnectAttempts, r.Status, r.Proto, r.IPFamily = 1, 503, "HTTP/2.0", "ipv4"
		r.TLS = &httptrace.TLSInfo{Version: "TLS 1.3", NotAfter: t0.Add(60 * 24 * time.Hour)}
		r.CDN = httptrace.CDN{Provider: httptrace.ProviderCloudFront, Cache: httptrace.CacheError, POP: "IAD89-C1"}
	}
	return &probe.Sample{Target: target, Role: "cdn", Location: testLocation, Result: r}
}

// revalidationSamples cover the conditional results not in cdnSample.
func revalidationSamples() []*probe.Sample {
	modified := cdnSample()
	modified.Target = "blog"
	modified.Conditional = &httptrace.Conditional{Sent: true, IfModified: "x", Status: 200,
		Timings: httptrace.Timings{TTFB: msec(60), Total: msec(90), FirstByte: msec(80)}}
	failed := cdnSample()
	failed.Target = "blog"
	failed.Conditional = &httptrace.Conditional{Sent: true, IfNoneMatch: `"x"`,
		Error: &httptrace.Error{Phase: httptrace.ErrTimeout, Message: "timed out"}}
	return []*probe.Sample{modified, failed}
}

// allSamples is every representative sample: the input of the catalogue.
func allSamples() []*probe.Sample {
	out := []*probe.Sample{cdnSample(), originSample()}
	for _, p := range []string{httptrace.ErrDNS, httptrace.ErrConnect, httptrace.ErrTLS, httptrace.ErrHTTP, httptrace.ErrTimeout, httptrace.ErrAssert} {
		out = append(out, failedSample("fail-"+p, p))
	}
	return append(out, revalidationSamples()...)
}
