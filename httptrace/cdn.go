package httptrace

import (
	"net/http"
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

// CDN holds the CDN facts read from one response's headers.
type CDN struct {
	Provider     string        `json:"provider,omitempty"` // "cloudfront", "cloudflare", "fastly", "" when none recognised
	Cache        string        `json:"cache"`              // one of the Cache* constants
	CacheRaw     string        `json:"cache_raw,omitempty"` // the header value the result came from
	POP          string        `json:"pop,omitempty"`       // edge location code, e.g. "FRA56-P1"
	POPCity      string        `json:"pop_city,omitempty"`  // city of the POP's airport code, e.g. "Frankfurt"
	RequestID    string        `json:"request_id,omitempty"` // X-Amz-Cf-Id, CF-Ray, ...
	Age          time.Duration `json:"-"`
	HasAge       bool          `json:"-"`
	Via          string        `json:"via,omitempty"`
	ServerTiming []ServerTiming `json:"server_timing,omitempty"` // cdn-* entries only
	Upstream     Upstream      `json:"upstream"`
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
	DNS             time.Duration `json:"-"` // cdn-upstream-dns
	Connect         time.Duration `json:"-"` // cdn-upstream-connect
	FirstByte       time.Duration `json:"-"` // cdn-upstream-fbl
	DownstreamFirst time.Duration `json:"-"` // cdn-downstream-fbl
}

// ParseCDN reads the CDN facts from response headers.
func ParseCDN(h http.Header) CDN {
	return CDN{Cache: CacheUnknown}
}
