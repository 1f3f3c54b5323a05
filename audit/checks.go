package audit

// Check is one rule of the audit: its ID, the severity it has unless the
// case says otherwise, where it looks, and the reasoning and fix every
// finding of it carries.
type Check struct {
	ID       string
	Severity Severity
	Source   string
	Why      string
	Fix      string
}

// Configuration checks (the CloudFront API).
var (
	CheckAllowedMethods = Check{"allowed-methods", High, SourceConfig,
		"a dynamic app takes POST, PUT, PATCH, DELETE and OPTIONS; CloudFront answers methods it does not allow with a 403 of its own and never passes them on",
		"set Allowed HTTP Methods to GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE (AllowedMethods, Quantity 7); keep CachedMethods GET, HEAD"}
	CheckViewerProtocol = Check{"viewer-protocol", High, SourceConfig,
		"SSL is a must for a dynamic site: with allow-all, sessions and form posts travel in clear over HTTP (https-only answers plain HTTP with a 403 instead of sending visitors on)",
		"set ViewerProtocolPolicy to redirect-to-https"}
	CheckMinTTL = Check{"cache-min-ttl", Critical, SourceConfig,
		"MinTTL > 0 makes CloudFront cache even what the origin marks no-cache, no-store or private: dynamic pages go stale or reach the wrong user",
		"MinTTL 0 (legacy setting, or the cache policy's, e.g. managed CachingDisabled or a policy with TTLs 0/0/86400)"}
	CheckDefaultTTL = Check{"cache-default-ttl", High, SourceConfig,
		"a dynamic origin sends no Cache-Control, and then DefaultTTL decides: anything above 0 caches its pages that long (24 h by default) instead of asking the origin",
		"DefaultTTL 0 (with MinTTL 0 and MaxTTL e.g. 86400) so every request is revalidated with the origin, or make the origin send Cache-Control on every response"}
	CheckRevalidationOff = Check{"revalidation-off", Low, SourceConfig,
		"with MaxTTL 0 nothing is stored, so CloudFront never revalidates with If-Modified-Since and the origin's fast 304 is never used: every request fetches the full page",
		"keep MinTTL and DefaultTTL 0 but MaxTTL above 0 (the article uses 86400), and send Last-Modified or ETag from the origin"}
	CheckRevalidationCookies = Check{"revalidation-cookies", Low, SourceConfig,
		"CloudFront sends no If-Modified-Since / If-None-Match when cookies are in the cache key, so TTL 0 revalidation cannot end in a 304",
		"forward cookies with an origin request policy (e.g. managed AllViewer) and keep them out of the cache policy's key"}
	CheckCookies = Check{"cookies-not-forwarded", High, SourceConfig,
		"session cookies (a Rails authenticity token, session ids) never reach the origin, so logins and POST/PUT/PATCH requests fail",
		"forward all cookies (legacy ForwardedValues.Cookies.Forward all, or origin request policy AllViewer), or whitelist every cookie the app reads"}
	CheckCookiesWhitelist = Check{"cookies-whitelist", Info, SourceConfig,
		"only the listed cookies reach the origin; one the app reads but the list lacks is silently dropped",
		"make sure every cookie the app reads (session, CSRF) is in the list"}
	CheckQueryStrings = Check{"query-strings-ignored", Medium, SourceConfig,
		"CloudFront drops query strings and answers every variant alike; an app whose pages depend on them breaks",
		"forward query strings (legacy ForwardedValues.QueryString true, or origin request policy AllViewer / query strings all)"}
	CheckCertificate = Check{"certificate-default", Medium, SourceConfig,
		"TLS should terminate at the edge with the site's own certificate; the default *.cloudfront.net one cannot serve the site's name and pins the security policy at TLSv1",
		"request an ACM certificate in us-east-1 for the site's names and set ViewerCertificate.ACMCertificateArn, SSLSupportMethod sni-only, MinimumProtocolVersion TLSv1.2_2021"}
	CheckCertificateRegion = Check{"certificate-region", High, SourceConfig,
		"CloudFront is a global service and takes its ACM certificates only from us-east-1 (N. Virginia)",
		"issue or import the certificate in ACM in us-east-1 and point ViewerCertificate.ACMCertificateArn at it"}
	CheckCertificateACM = Check{"certificate-not-acm", Low, SourceConfig,
		"an IAM server certificate is not renewed automatically the way an ACM certificate is",
		"issue the certificate in ACM in us-east-1 and use ViewerCertificate.ACMCertificateArn"}
	CheckTLSPolicy = Check{"tls-minimum-protocol", High, SourceConfig,
		"viewers may negotiate old TLS versions or weak ciphers; TLSv1.2_2021 is the recommended security policy",
		"set ViewerCertificate.MinimumProtocolVersion to TLSv1.2_2021 (or newer)"}
	CheckHTTPVersion = Check{"http-version", Medium, SourceConfig,
		"HTTP/2 and HTTP/3 carry many requests on the one edge connection whose short handshake is the point of the CDN; HTTP/1.1 opens more connections",
		"set HttpVersion to http2and3"}
	CheckIPv6 = Check{"ipv6", Low, SourceConfig,
		"IPv6 viewers get no AAAA answer and fall back to IPv4; CloudFront serves IPv6 at no extra cost",
		"set IsIPV6Enabled true and add an AAAA alias record beside the A record in Route 53"}
	CheckOriginProtocol = Check{"origin-protocol", High, SourceConfig,
		"between the edge and the load balancer, requests, cookies and form posts cross the internet unencrypted (match-viewer does so for every plain-HTTP viewer)",
		"set the origin's OriginProtocolPolicy to https-only, with a certificate on the ALB that covers the origin domain name (or the forwarded Host)"}
	CheckOriginTLS = Check{"origin-ssl-protocols", Medium, SourceConfig,
		"CloudFront may talk to the origin with TLS versions older than 1.2",
		"set the origin's OriginSslProtocols to TLSv1.2 only"}
	CheckOriginKeepalive = Check{"origin-keepalive", Medium, SourceConfig,
		"CloudFront keeps warm connections to the origin only this long; after a shorter pause each origin fetch pays TCP and TLS again (Server-Timing cdn-upstream-connect > 0), above the ALB's idle timeout it may reuse a connection the ALB closed (502)",
		"set OriginKeepaliveTimeout to 60 (no more than the ALB's idle timeout, 60 s by default)"}
	CheckOriginRead = Check{"origin-read-timeout", Medium, SourceConfig,
		"dynamic requests slower than the origin response timeout end in a 504 from CloudFront, and POST/PUT are not retried; a very long one makes viewers wait that long for an error",
		"set OriginReadTimeout to a little above the app's slowest legitimate response (default 30 s)"}
	CheckCompression = Check{"compression", Low, SourceConfig,
		"without Compress every text byte crosses the viewer's last mile uncompressed",
		"set Compress true (with a cache policy the edge compresses only when it enables gzip/brotli; with CachingDisabled let the origin compress)"}
	CheckServerTiming = Check{"server-timing", Low, SourceConfig,
		"a response headers policy with Server-Timing shows the edge's own timings (cdn-upstream-connect, cdn-upstream-fbl, cache refresh): what edgeprobe needs to tell edge time from origin time",
		"attach a custom response headers policy with ServerTimingHeadersConfig Enabled true (any sampling rate: the agent asks with Pragma: server-timing); no managed policy enables it"}
	CheckPolicyUnreadable = Check{"policy-unreadable", Medium, SourceConfig,
		"the audit cannot judge caching or forwarding rules it cannot read",
		"allow cloudfront:GetCachePolicy, GetOriginRequestPolicy and GetResponseHeadersPolicy, or check the policy ID"}
	CheckLegacy = Check{"legacy-cache-settings", Info, SourceConfig,
		"ForwardedValues and the MinTTL/DefaultTTL/MaxTTL fields are deprecated; policies say the same and can be shared",
		"use cache policy CachingDisabled (or a custom one with TTLs 0/0/86400) and origin request policy AllViewer"}
)

// Wire checks (requests to the site).
var (
	CheckUnreachable = Check{"unreachable", Critical, SourceWire,
		"the site did not answer, so nothing else could be checked",
		"check the URL, DNS and the distribution's state, then run the audit again"}
	CheckOriginUnreachable = Check{"origin-unreachable", Medium, SourceWire,
		"the origin did not answer directly, so the edge could not be compared with it",
		"check --origin-url / --connect-to and that the origin is reachable from here"}
	CheckHTTPRedirect = Check{"http-redirect", High, SourceWire,
		"SSL is a must for a dynamic site: plain http:// should answer only with a redirect to https://",
		"set ViewerProtocolPolicy redirect-to-https on every cache behavior"}
	CheckRedirectCost = Check{"redirect-cost", Info, SourceWire,
		"the http:// to https:// redirect costs a connection and a round trip before the real request starts",
		"send Strict-Transport-Security from the origin (or a response headers policy) and link https:// URLs, so browsers skip the redirect"}
	CheckMethodBlocked = Check{"method-blocked", High, SourceWire,
		"the edge answers the method with a 403 of its own instead of passing it to the origin, so the app's forms and API calls fail",
		"allow all seven methods (AllowedMethods GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE) on the behavior serving this path"}
	CheckValidators = Check{"validators-missing", High, SourceWire,
		"TTL 0 revalidation needs a validator: without Last-Modified or ETag the edge cannot ask If-Modified-Since and the origin cannot answer 304",
		"send Last-Modified (or ETag) on 200 responses of dynamic pages"}
	CheckNotModified = Check{"not-modified-missing", High, SourceWire,
		"with TTL 0 the edge revalidates every request; an origin that answers a conditional GET with a full 200 instead of a 304 gains nothing from the cached copy",
		"answer If-Modified-Since / If-None-Match with 304 Not Modified when the page has not changed"}
	CheckNotModifiedSlow = Check{"not-modified-slow", Medium, SourceWire,
		"the origin should decide that nothing changed as fast as possible, without running the page's logic; a slow 304 saves bytes but not time",
		"answer conditional requests from a cheap check (a stored version or timestamp) before rendering"}
	CheckCacheHit = Check{"cache-hit-dynamic", High, SourceWire,
		"the edge served a dynamic page from its cache without asking the origin: it can be stale or another user's",
		"use TTL 0 (MinTTL 0, DefaultTTL 0, or cache policy CachingDisabled) for dynamic paths, or send Cache-Control: no-cache / private from the origin"}
	CheckRefreshHit = Check{"refresh-hit-missing", Low, SourceWire,
		"the origin sends validators, yet the edge never revalidated (no RefreshHit): every request fetches the full page from the origin",
		"keep MaxTTL above 0 with MinTTL/DefaultTTL 0, and keep cookies out of the cache key (origin request policy instead)"}
	CheckCacheHeader = Check{"x-cache-missing", Info, SourceWire,
		"no X-Cache or Cache-Status header: the URL does not look like it goes through a CDN",
		"probe the URL viewers use (the distribution's alias), not the origin"}
	CheckEdgeTLS = Check{"edge-tls", High, SourceWire,
		"viewers negotiate an old TLS version at the edge",
		"set ViewerCertificate.MinimumProtocolVersion TLSv1.2_2021 (a custom certificate is needed for that)"}
	CheckEdgeALPN = Check{"edge-alpn", Medium, SourceWire,
		"the edge did not offer HTTP/2, so a browser needs more connections (and handshakes) for the same page",
		"set HttpVersion http2and3"}
	CheckOriginWireTLS = Check{"origin-tls", Medium, SourceWire,
		"the origin negotiates a TLS version older than 1.2",
		"use an ALB security policy with TLS 1.2 or newer (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06)"}
	CheckEchoCookie = Check{"echo-cookie-missing", High, SourceWire,
		"a cookie sent to the edge did not reach the origin: session cookies are dropped and POST/PUT/PATCH requests fail",
		"forward cookies (origin request policy AllViewer, or legacy Cookies.Forward all)"}
	CheckEchoQuery = Check{"echo-query-missing", Medium, SourceWire,
		"a query string sent to the edge did not reach the origin: pages that depend on it break",
		"forward query strings (origin request policy AllViewer, or legacy QueryString true)"}
)

// Checks lists every check, configuration ones first.
var Checks = []Check{
	CheckAllowedMethods, CheckViewerProtocol, CheckMinTTL, CheckDefaultTTL, CheckRevalidationOff,
	CheckRevalidationCookies, CheckCookies, CheckCookiesWhitelist, CheckQueryStrings, CheckCertificate,
	CheckCertificateRegion, CheckCertificateACM, CheckTLSPolicy, CheckHTTPVersion, CheckIPv6,
	CheckOriginProtocol, CheckOriginTLS, CheckOriginKeepalive, CheckOriginRead, CheckCompression,
	CheckServerTiming, CheckPolicyUnreadable, CheckLegacy,

	CheckUnreachable, CheckOriginUnreachable, CheckHTTPRedirect, CheckRedirectCost, CheckMethodBlocked,
	CheckValidators, CheckNotModified, CheckNotModifiedSlow, CheckCacheHit, CheckRefreshHit,
	CheckCacheHeader, CheckEdgeTLS, CheckEdgeALPN, CheckOriginWireTLS, CheckEchoCookie, CheckEchoQuery,
}

// finding makes a finding of check c with its default severity.
func (c Check) finding(path, is, should string) Finding {
	return Finding{ID: c.ID, Severity: c.Severity, Source: c.Source, Path: path, Is: is, Should: should, Why: c.Why, Fix: c.Fix}
}

// at makes a finding of check c with severity s.
func (c Check) at(s Severity, path, is, should string) Finding {
	f := c.finding(path, is, should)
	f.Severity = s
	return f
}
