package report

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Warning codes.
const (
	WarnHTTPNotRedirected = "http_not_redirected" // an http:// URL did not redirect to https://
	WarnNoValidator       = "no_validator"        // a 200 without Last-Modified or ETag
	WarnNo304             = "no_304"              // revalidation did not answer 304
	WarnSlow304           = "slow_304"            // the 304 is not clearly faster than the 200
	WarnInsecure          = "insecure_skip_verify"
	WarnCertExpiring      = "cert_expiring"
	WarnCacheNeverHits    = "cache_never_hits" // the CDN way never answered from cache
)

// Thresholds of the warnings.
const (
	// CertExpiryWindow: warn when the certificate expires this soon after
	// the probe.
	CertExpiryWindow = 14 * 24 * time.Hour
	// A 304 is slow when its server time (ttfb − connect, i.e. ttfb less
	// one round trip) is at least SlowRevalidationRatio of the 200's and at
	// least SlowRevalidationFloor: a revalidation should skip rendering.
	SlowRevalidationRatio = 0.8
	SlowRevalidationFloor = 5 * time.Millisecond
)

// warnings checks a summarized group and its successful samples against
// what the article says matters.
func warnings(g *Group, ok []*probe.Sample) []Warning {
	var out []Warning
	add := func(code, format string, args ...any) {
		out = append(out, Warning{Code: code, Message: fmt.Sprintf(format, args...)})
	}

	if strings.HasPrefix(strings.ToLower(g.URL), "http://") {
		var notRedirected int
		answer := ""
		for _, s := range ok {
			if redirected, known, what := redirectsToHTTPS(s.Result); known && !redirected {
				notRedirected++
				answer = what
			}
		}
		if notRedirected > 0 {
			add(WarnHTTPNotRedirected, "%s %s instead of redirecting to https:// (%d of %d answers): set the viewer protocol policy to \"Redirect HTTP to HTTPS\"",
				g.URL, answer, notRedirected, len(ok))
		}
	}

	var twoHundreds, noValidator int
	for _, s := range ok {
		if s.Status != http.StatusOK {
			continue
		}
		if has, known := hasValidator(s.Result); known {
			twoHundreds++
			if !has {
				noValidator++
			}
		}
	}
	if noValidator > 0 {
		add(WarnNoValidator, "%d of %d 200 answers carry neither Last-Modified nor ETag: with TTL 0 the edge cannot revalidate (If-Modified-Since) and fetches the whole page every time",
			noValidator, twoHundreds)
	}

	if c := g.Conditional; c != nil && c.Sent > 0 {
		if c.NotModified < c.Sent {
			add(WarnNo304, "revalidation (If-Modified-Since / If-None-Match) answered 304 in %d of %d (%s): the origin should answer 304 Not Modified when the content did not change",
				c.NotModified, c.Sent, conditionalOutcome(c))
		}
		if w, ok := slow304(ok); ok {
			out = append(out, w)
		}
	}

	if g.Insecure {
		add(WarnInsecure, "certificate verification was skipped (insecure): timings are real, but the chain and name were not checked")
	}

	for _, s := range ok {
		t := s.TLS
		if t == nil || t.NotAfter.IsZero() {
			continue
		}
		left := t.NotAfter.Sub(s.Start)
		if left >= CertExpiryWindow {
			continue
		}
		name, when := cmpOr(t.Subject, t.ServerName), t.NotAfter.UTC().Format(time.DateOnly)
		if left < 0 {
			add(WarnCertExpiring, "certificate %s expired on %s: renew it", name, when)
		} else {
			add(WarnCertExpiring, "certificate %s expires on %s, %s after the probe: renew it", name, when, roundDays(left))
		}
		break
	}

	if looksLikeCDN(g, ok) {
		answers, unknown := 0, g.Cache[httptrace.CacheUnknown]
		for _, n := range g.Cache {
			answers += n
		}
		hits := g.Cache[httptrace.CacheHit] + g.Cache[httptrace.CacheRefreshHit]
		switch {
		case answers == 0 || hits > 0:
		case unknown == answers:
			add(WarnCacheNeverHits, "no CDN cache result (X-Cache, Cache-Status, CF-Cache-Status) in %d answers: is this way really through the CDN?", answers)
		default:
			add(WarnCacheNeverHits, "the CDN never answered from cache in %d answers (%s): with TTL 0 expect RefreshHit once the edge holds a copy; check the cache policy and the origin's Cache-Control and validators",
				answers, countsString(g.Cache))
		}
	}
	return out
}

// redirectsToHTTPS tells whether an http:// probe was redirected to https://
// and, when not, what it answered. known is false when the answer is a
// redirect whose target the sample does not carry.
func redirectsToHTTPS(r *httptrace.Result) (redirected, known bool, answer string) {
	status, location := r.Status, ""
	if len(r.Hops) > 1 {
		status, location = r.Hops[0].Status, r.Hops[1].URL
	} else if r.Header != nil {
		location = r.Header.Get("Location")
	}
	if !isRedirect(status) {
		return false, true, fmt.Sprintf("answered %d", status)
	}
	if location == "" {
		return false, r.Header != nil, fmt.Sprintf("answered %d without Location", status)
	}
	if strings.HasPrefix(strings.ToLower(location), "https://") {
		return true, true, ""
	}
	return false, true, fmt.Sprintf("redirected (%d) to %s", status, location)
}

// hasValidator tells whether a 200 carried Last-Modified or ETag. The
// response headers are only in a live Result; a sample read back from JSONL
// still tells through its conditional result.
func hasValidator(r *httptrace.Result) (has, known bool) {
	if r.Header != nil {
		return r.Header.Get("Last-Modified") != "" || r.Header.Get("ETag") != "", true
	}
	if c := r.Conditional; c != nil {
		return c.Sent || c.IfModified != "" || c.IfNoneMatch != "", true
	}
	return false, false
}

// slow304 compares the server time of the 304 answers with the 200s'.
// Server time is ttfb less connect (one round trip), so a far-away server
// whose ttfb is mostly network does not look slow to revalidate. It speaks
// of the origin: through a CDN with TTL 0 both answers wait for the edge's
// own revalidation with the origin, so there they cost the same by design.
func slow304(ok []*probe.Sample) (Warning, bool) {
	var full, revalidated []time.Duration
	for _, s := range ok {
		if s.CDN.Provider != "" {
			return Warning{}, false
		}
		if s.Status == http.StatusOK {
			full = append(full, serverTime(s.Timings))
		}
		if c := s.Conditional; c != nil && c.Sent && c.Error == nil && c.Status == http.StatusNotModified {
			revalidated = append(revalidated, serverTime(c.Timings))
		}
	}
	if len(full) == 0 || len(revalidated) == 0 {
		return Warning{}, false
	}
	f, r := NewStats(full).P50, NewStats(revalidated).P50
	if r < SlowRevalidationFloor || float64(r) < SlowRevalidationRatio*float64(f) {
		return Warning{}, false
	}
	return Warning{Code: WarnSlow304, Message: fmt.Sprintf(
		"the 304 is not clearly faster than the 200: server time (ttfb − connect, p50) %s for the 304 vs %s for the full answer; decide \"not modified\" before rendering the page",
		fmtDuration(r), fmtDuration(f))}, true
}

func serverTime(t httptrace.Timings) time.Duration {
	return max(t.TTFB-t.Connect, 0)
}

func looksLikeCDN(g *Group, ok []*probe.Sample) bool {
	if g.Role == RoleCDN {
		return true
	}
	for _, s := range ok {
		if s.CDN.Provider != "" {
			return true
		}
	}
	return false
}

func conditionalOutcome(c *ConditionalSummary) string {
	var parts []string
	for _, code := range sortedKeys(c.Statuses) {
		parts = append(parts, fmt.Sprintf("%d ×%d", code, c.Statuses[code]))
	}
	if c.Errors > 0 {
		parts = append(parts, fmt.Sprintf("failed ×%d", c.Errors))
	}
	return "got " + strings.Join(parts, ", ")
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func roundDays(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%.0fh", d.Hours())
	}
	return fmt.Sprintf("%.0fd", d.Hours()/24)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
