package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// CloudFrontRegion is where CloudFront (a global service) signs its API
// calls and the only region it takes ACM certificates from.
const CloudFrontRegion = "us-east-1"

// PolicyAPI is the part of the CloudFront API that reads policies.
type PolicyAPI interface {
	GetCachePolicy(context.Context, *cloudfront.GetCachePolicyInput, ...func(*cloudfront.Options)) (*cloudfront.GetCachePolicyOutput, error)
	GetOriginRequestPolicy(context.Context, *cloudfront.GetOriginRequestPolicyInput, ...func(*cloudfront.Options)) (*cloudfront.GetOriginRequestPolicyOutput, error)
	GetResponseHeadersPolicy(context.Context, *cloudfront.GetResponseHeadersPolicyInput, ...func(*cloudfront.Options)) (*cloudfront.GetResponseHeadersPolicyOutput, error)
}

// API is the part of the CloudFront API the audit uses (read-only:
// cloudfront:GetDistributionConfig, GetCachePolicy, GetOriginRequestPolicy,
// GetResponseHeadersPolicy). *cloudfront.Client implements it.
type API interface {
	PolicyAPI
	GetDistributionConfig(context.Context, *cloudfront.GetDistributionConfigInput, ...func(*cloudfront.Options)) (*cloudfront.GetDistributionConfigOutput, error)
}

// NewClient is the CloudFront client: cfg's credentials, region us-east-1,
// endpoint when not empty (else the SDK's, which honours AWS_ENDPOINT_URL
// and AWS_ENDPOINT_URL_CLOUDFRONT).
func NewClient(cfg aws.Config, endpoint string) *cloudfront.Client {
	return cloudfront.NewFromConfig(cfg, func(o *cloudfront.Options) {
		o.Region = CloudFrontRegion
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// ConfigOptions tune the configuration checks.
type ConfigOptions struct {
	// Stateless says the app keeps no session in cookies: cookies that do
	// not reach the origin are then not a finding.
	Stateless bool
}

// Distribution reads distribution id's configuration and the policies its
// cache behaviors reference, and checks them. An error means the
// distribution could not be read at all.
func Distribution(ctx context.Context, api API, id string, opts ConfigOptions) (*Report, error) {
	out, err := api.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		var nf *types.NoSuchDistribution
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("distribution %s not found: %w", id, err)
		}
		return nil, fmt.Errorf("read distribution %s: %w", id, err)
	}
	if out.DistributionConfig == nil {
		return nil, fmt.Errorf("read distribution %s: the answer has no DistributionConfig", id)
	}
	r := Config(ctx, api, out.DistributionConfig, opts)
	r.Subjects = []string{"distribution " + id}
	return r, nil
}

// Config checks one distribution configuration. Policies referenced by ID
// are read with api (nil: only the built-in table of managed policies is
// used); a managed policy the API does not return is taken from the
// table, and said so in the facts.
//
// Precedence: a cache behavior with a CachePolicyId is judged by its
// policies alone, its legacy ForwardedValues and TTLs are ignored (the
// API, and the emulator, fill them in regardless).
func Config(ctx context.Context, api PolicyAPI, cfg *types.DistributionConfig, opts ConfigOptions) *Report {
	a := &configAudit{r: &Report{}, pol: newPolicies(api), opts: opts}
	a.distribution(ctx, cfg)
	a.r.Sort()
	return a.r
}

type configAudit struct {
	r    *Report
	pol  *policies
	opts ConfigOptions
}

var allMethods = []types.Method{
	types.MethodGet, types.MethodHead, types.MethodOptions, types.MethodPut,
	types.MethodPost, types.MethodPatch, types.MethodDelete,
}

func (a *configAudit) distribution(ctx context.Context, cfg *types.DistributionConfig) {
	a.certificate(cfg.ViewerCertificate)
	a.httpVersion(cfg.HttpVersion)
	if !aws.ToBool(cfg.IsIPV6Enabled) {
		a.r.add(CheckIPv6.finding("IsIPV6Enabled", "false", "true"))
	}
	if cfg.Origins != nil {
		for _, o := range cfg.Origins.Items {
			a.origin(o)
		}
	}
	if b := cfg.DefaultCacheBehavior; b != nil {
		a.behavior(ctx, behavior{
			path: "DefaultCacheBehavior", viewer: b.ViewerProtocolPolicy, allowed: b.AllowedMethods,
			cachePolicy: aws.ToString(b.CachePolicyId), originPolicy: aws.ToString(b.OriginRequestPolicyId),
			headersPolicy: aws.ToString(b.ResponseHeadersPolicyId), compress: b.Compress,
			fv: b.ForwardedValues, minTTL: b.MinTTL, defaultTTL: b.DefaultTTL, maxTTL: b.MaxTTL, //nolint:staticcheck // the legacy fields are what is audited
		})
	}
	if cfg.CacheBehaviors != nil {
		for _, b := range cfg.CacheBehaviors.Items {
			a.behavior(ctx, behavior{
				path: "CacheBehaviors[" + aws.ToString(b.PathPattern) + "]", viewer: b.ViewerProtocolPolicy, allowed: b.AllowedMethods,
				cachePolicy: aws.ToString(b.CachePolicyId), originPolicy: aws.ToString(b.OriginRequestPolicyId),
				headersPolicy: aws.ToString(b.ResponseHeadersPolicyId), compress: b.Compress,
				fv: b.ForwardedValues, minTTL: b.MinTTL, defaultTTL: b.DefaultTTL, maxTTL: b.MaxTTL, //nolint:staticcheck // the legacy fields are what is audited
			})
		}
	}
}

// weakPolicies are security policies below TLS 1.2; oldTLS12 allow TLS 1.2
// with ciphers the 2021 policy dropped.
var (
	weakPolicies = []types.MinimumProtocolVersion{"", types.MinimumProtocolVersionSSLv3, types.MinimumProtocolVersionTLSv1,
		types.MinimumProtocolVersionTLSv12016, types.MinimumProtocolVersionTLSv112016}
	oldTLS12 = []types.MinimumProtocolVersion{types.MinimumProtocolVersionTLSv122018, types.MinimumProtocolVersionTLSv122019}
)

func (a *configAudit) certificate(vc *types.ViewerCertificate) {
	if vc == nil {
		vc = &types.ViewerCertificate{CloudFrontDefaultCertificate: aws.Bool(true)}
	}
	acmARN, iamID := aws.ToString(vc.ACMCertificateArn), aws.ToString(vc.IAMCertificateId)
	// A certificate ARN or ID decides: the emulator reports
	// CloudFrontDefaultCertificate true beside an ACM ARN.
	if acmARN == "" && iamID == "" {
		a.r.add(CheckCertificate.finding("ViewerCertificate", "CloudFront default certificate (*.cloudfront.net), security policy TLSv1",
			"an ACM certificate from us-east-1 for the site's names"))
		return
	}
	switch {
	case acmARN != "":
		parsed, err := arn.Parse(acmARN)
		switch {
		case err != nil || parsed.Service != "acm":
			a.r.add(CheckCertificateRegion.finding("ViewerCertificate.ACMCertificateArn", acmARN+" (not an ACM certificate ARN)",
				"arn:aws:acm:us-east-1:ACCOUNT:certificate/ID"))
		case parsed.Region != CloudFrontRegion:
			a.r.add(CheckCertificateRegion.finding("ViewerCertificate.ACMCertificateArn", "ACM certificate in "+parsed.Region+" ("+acmARN+")",
				"an ACM certificate in us-east-1"))
		}
	default:
		a.r.add(CheckCertificateACM.finding("ViewerCertificate.IAMCertificateId", "IAM server certificate "+iamID,
			"an ACM certificate from us-east-1 (ACMCertificateArn)"))
	}
	mpv := vc.MinimumProtocolVersion
	shown := string(mpv)
	if shown == "" {
		shown = "not set"
	}
	switch {
	case slices.Contains(weakPolicies, mpv):
		a.r.add(CheckTLSPolicy.finding("ViewerCertificate.MinimumProtocolVersion", shown, "TLSv1.2_2021 or newer"))
	case slices.Contains(oldTLS12, mpv):
		a.r.add(CheckTLSPolicy.at(Medium, "ViewerCertificate.MinimumProtocolVersion", shown, "TLSv1.2_2021 or newer"))
	}
}

func (a *configAudit) httpVersion(v types.HttpVersion) {
	const path, want = "HttpVersion", "http2and3"
	switch v {
	case types.HttpVersionHttp2and3:
	case types.HttpVersionHttp11:
		a.r.add(CheckHTTPVersion.finding(path, "http1.1 (HTTP/2 and HTTP/3 off)", want))
	case types.HttpVersionHttp3:
		a.r.add(CheckHTTPVersion.finding(path, "http3 (HTTP/2 off)", want))
	case types.HttpVersionHttp2, "":
		a.r.add(CheckHTTPVersion.at(Low, path, "http2 (HTTP/3 off)", want))
	default:
		a.r.add(CheckHTTPVersion.at(Low, path, string(v), want))
	}
}

// Origin timeouts: CloudFront's defaults, and the ALB's default idle
// timeout that the keep-alive should not exceed.
const (
	defaultKeepalive = 5
	defaultRead      = 30
	albIdleTimeout   = 60
)

func (a *configAudit) origin(o types.Origin) {
	c := o.CustomOriginConfig
	if c == nil {
		return // S3 and VPC origins: the dynamic-app rules do not apply
	}
	path := "Origins[" + aws.ToString(o.Id) + "].CustomOriginConfig"
	target := aws.ToString(o.DomainName)
	switch c.OriginProtocolPolicy {
	case types.OriginProtocolPolicyHttpOnly:
		a.r.add(CheckOriginProtocol.finding(path+".OriginProtocolPolicy", "http-only (to "+target+")", "https-only"))
	case types.OriginProtocolPolicyMatchViewer:
		a.r.add(CheckOriginProtocol.at(Low, path+".OriginProtocolPolicy", "match-viewer (to "+target+")", "https-only"))
	}
	if c.OriginProtocolPolicy != types.OriginProtocolPolicyHttpOnly && c.OriginSslProtocols != nil && len(c.OriginSslProtocols.Items) > 0 {
		var old []string
		has12 := false
		for _, p := range c.OriginSslProtocols.Items {
			if p == types.SslProtocolTLSv12 {
				has12 = true
			} else {
				old = append(old, string(p))
			}
		}
		is := joinSSL(c.OriginSslProtocols.Items)
		switch {
		case !has12:
			a.r.add(CheckOriginTLS.finding(path+".OriginSslProtocols", is, "TLSv1.2"))
		case len(old) > 0:
			a.r.add(CheckOriginTLS.at(Low, path+".OriginSslProtocols", is, "TLSv1.2"))
		}
	}

	keep := int32(defaultKeepalive)
	if c.OriginKeepaliveTimeout != nil {
		keep = *c.OriginKeepaliveTimeout
	}
	keepIs := strconv.Itoa(int(keep)) + " s"
	if c.OriginKeepaliveTimeout == nil {
		keepIs += " (default)"
	}
	const keepWant = "60 s (at most the ALB's idle timeout)"
	switch {
	case keep <= defaultKeepalive:
		a.r.add(CheckOriginKeepalive.finding(path+".OriginKeepaliveTimeout", keepIs, keepWant))
	case keep < 30:
		a.r.add(CheckOriginKeepalive.at(Low, path+".OriginKeepaliveTimeout", keepIs, keepWant))
	case keep > albIdleTimeout:
		a.r.add(CheckOriginKeepalive.at(Low, path+".OriginKeepaliveTimeout", keepIs+" (above the ALB's default idle timeout of 60 s)", keepWant))
	}

	read := int32(defaultRead)
	if c.OriginReadTimeout != nil {
		read = *c.OriginReadTimeout
	}
	readIs := strconv.Itoa(int(read)) + " s"
	switch {
	case read < 10:
		a.r.add(CheckOriginRead.finding(path+".OriginReadTimeout", readIs, "a little above the app's slowest response (default 30 s)"))
	case read > 60:
		a.r.add(CheckOriginRead.at(Low, path+".OriginReadTimeout", readIs, "a little above the app's slowest response (default 30 s)"))
	}
}

func joinSSL(ps []types.SslProtocol) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// behavior is a default or ordered cache behavior, the fields the audit reads.
type behavior struct {
	path                                     string
	viewer                                   types.ViewerProtocolPolicy
	allowed                                  *types.AllowedMethods
	cachePolicy, originPolicy, headersPolicy string
	compress                                 *bool
	fv                                       *types.ForwardedValues
	minTTL, defaultTTL, maxTTL               *int64
}

// caching is what a behavior's cache policy or legacy settings amount to.
type caching struct {
	source                     string // "cache policy NAME" or "legacy settings"
	minTTL, defaultTTL, maxTTL int64
	cookiesInKey               bool     // cookies are part of the cache key
	cookiesAll                 bool     // every cookie reaches the origin
	cookieNames                []string // whitelisted cookies that reach the origin
	cookiesSetting             string   // the setting(s) that decide cookies, for findings
	queryForwarded             bool
	querySetting               string
}

func (a *configAudit) behavior(ctx context.Context, b behavior) {
	a.methods(b)
	switch b.viewer {
	case types.ViewerProtocolPolicyRedirectToHttps:
	case types.ViewerProtocolPolicyHttpsOnly:
		a.r.add(CheckViewerProtocol.at(Low, b.path+".ViewerProtocolPolicy", "https-only (plain HTTP gets a 403)", "redirect-to-https"))
	default:
		a.r.add(CheckViewerProtocol.finding(b.path+".ViewerProtocolPolicy", orDash(string(b.viewer)), "redirect-to-https"))
	}
	if !aws.ToBool(b.compress) {
		a.r.add(CheckCompression.finding(b.path+".Compress", "false", "true"))
	}

	c, ok := a.caching(ctx, b)
	if ok {
		a.ttls(b, c)
		a.forwarding(b, c)
	}
	a.serverTiming(ctx, b)
}

func (a *configAudit) methods(b behavior) {
	var have []types.Method
	if b.allowed != nil {
		have = b.allowed.Items
	}
	var missing []string
	for _, m := range allMethods {
		if !slices.Contains(have, m) {
			missing = append(missing, string(m))
		}
	}
	if len(missing) == 0 {
		return
	}
	is := joinMethods(have)
	if is == "" {
		is = "GET, HEAD (default)"
	}
	f := CheckAllowedMethods.finding(b.path+".AllowedMethods", is+" — blocked: "+strings.Join(missing, ", "),
		joinMethods(allMethods))
	a.r.add(f)
}

func joinMethods(ms []types.Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// caching works out the behavior's TTLs and forwarding from its cache and
// origin request policies, or from its legacy settings. ok is false when
// that cannot be known (a policy that could not be read).
func (a *configAudit) caching(ctx context.Context, b behavior) (c caching, ok bool) {
	if b.cachePolicy == "" {
		if b.fv == nil {
			return c, false
		}
		return a.legacy(b), true
	}
	cp := a.pol.cache(ctx, b.cachePolicy)
	a.r.fact(b.path+".CachePolicyId", "%s", cp.describe(b.cachePolicy))
	if cp.err != nil {
		a.r.add(CheckPolicyUnreadable.finding(b.path+".CachePolicyId", b.cachePolicy+": "+short(cp.err), "a readable cache policy"))
		return c, false
	}
	cfg := cp.cfg
	c = caching{
		source: "cache policy " + cp.name(),
		minTTL: aws.ToInt64(cfg.MinTTL), defaultTTL: aws.ToInt64(cfg.DefaultTTL), maxTTL: aws.ToInt64(cfg.MaxTTL),
	}
	if cfg.DefaultTTL == nil {
		c.defaultTTL = 86400
	}
	if cfg.MaxTTL == nil {
		c.maxTTL = 31536000
	}
	var cookieB types.CachePolicyCookieBehavior = types.CachePolicyCookieBehaviorNone
	var qsB types.CachePolicyQueryStringBehavior = types.CachePolicyQueryStringBehaviorNone
	var cookieNames []string
	if p := cfg.ParametersInCacheKeyAndForwardedToOrigin; p != nil {
		if p.CookiesConfig != nil {
			cookieB = p.CookiesConfig.CookieBehavior
			if p.CookiesConfig.Cookies != nil {
				cookieNames = p.CookiesConfig.Cookies.Items
			}
		}
		if p.QueryStringsConfig != nil {
			qsB = p.QueryStringsConfig.QueryStringBehavior
		}
	}
	c.cookiesInKey = cookieB != types.CachePolicyCookieBehaviorNone && cookieB != ""
	switch cookieB {
	case types.CachePolicyCookieBehaviorAll, types.CachePolicyCookieBehaviorAllExcept:
		c.cookiesAll = true
	case types.CachePolicyCookieBehaviorWhitelist:
		c.cookieNames = append(c.cookieNames, cookieNames...)
	}
	c.queryForwarded = qsB != types.CachePolicyQueryStringBehaviorNone && qsB != ""
	c.cookiesSetting = fmt.Sprintf("cache policy %s cookies %s", cp.name(), orDash(string(cookieB)))
	c.querySetting = fmt.Sprintf("cache policy %s query strings %s", cp.name(), orDash(string(qsB)))

	if b.originPolicy == "" {
		c.cookiesSetting += ", no origin request policy"
		c.querySetting += ", no origin request policy"
		return c, true
	}
	op := a.pol.origin(ctx, b.originPolicy)
	a.r.fact(b.path+".OriginRequestPolicyId", "%s", op.describe(b.originPolicy))
	if op.err != nil {
		a.r.add(CheckPolicyUnreadable.finding(b.path+".OriginRequestPolicyId", b.originPolicy+": "+short(op.err), "a readable origin request policy"))
		return c, false
	}
	var ocB types.OriginRequestPolicyCookieBehavior = types.OriginRequestPolicyCookieBehaviorNone
	var oqB types.OriginRequestPolicyQueryStringBehavior = types.OriginRequestPolicyQueryStringBehaviorNone
	if cc := op.cfg.CookiesConfig; cc != nil {
		ocB = cc.CookieBehavior
		if ocB == types.OriginRequestPolicyCookieBehaviorWhitelist && cc.Cookies != nil {
			c.cookieNames = append(c.cookieNames, cc.Cookies.Items...)
		}
	}
	if qc := op.cfg.QueryStringsConfig; qc != nil {
		oqB = qc.QueryStringBehavior
	}
	if ocB == types.OriginRequestPolicyCookieBehaviorAll || ocB == types.OriginRequestPolicyCookieBehaviorAllExcept {
		c.cookiesAll = true
	}
	if oqB != types.OriginRequestPolicyQueryStringBehaviorNone && oqB != "" {
		c.queryForwarded = true
	}
	c.cookiesSetting += fmt.Sprintf(", origin request policy %s cookies %s", op.name(), orDash(string(ocB)))
	c.querySetting += fmt.Sprintf(", origin request policy %s query strings %s", op.name(), orDash(string(oqB)))
	return c, true
}

// legacy reads ForwardedValues and the TTL fields. Unset TTLs take
// CloudFront's defaults (0, 86400, 31536000).
func (a *configAudit) legacy(b behavior) caching {
	a.r.add(CheckLegacy.finding(b.path+".ForwardedValues", "ForwardedValues and MinTTL/DefaultTTL/MaxTTL", "a cache policy and an origin request policy"))
	c := caching{source: "legacy settings", defaultTTL: 86400, maxTTL: 31536000}
	if b.minTTL != nil {
		c.minTTL = *b.minTTL
	}
	if b.defaultTTL != nil {
		c.defaultTTL = *b.defaultTTL
	}
	if b.maxTTL != nil {
		c.maxTTL = *b.maxTTL
	}
	forward := types.ItemSelectionNone
	if ck := b.fv.Cookies; ck != nil {
		forward = ck.Forward
		if forward == types.ItemSelectionWhitelist && ck.WhitelistedNames != nil {
			c.cookieNames = ck.WhitelistedNames.Items
		}
	}
	c.cookiesAll = forward == types.ItemSelectionAll
	c.cookiesInKey = forward == types.ItemSelectionAll || forward == types.ItemSelectionWhitelist
	c.cookiesSetting = "ForwardedValues.Cookies.Forward " + orDash(string(forward))
	c.queryForwarded = aws.ToBool(b.fv.QueryString)
	c.querySetting = "ForwardedValues.QueryString " + strconv.FormatBool(c.queryForwarded)
	return c
}

func (a *configAudit) ttls(b behavior, c caching) {
	path := b.path + ".MinTTL"
	if b.cachePolicy != "" {
		path = b.path + ".CachePolicyId"
	}
	at := func(field string) string {
		if b.cachePolicy != "" {
			return path + " (" + c.source + " " + field + ")"
		}
		return b.path + "." + field
	}
	if c.minTTL > 0 {
		a.r.add(CheckMinTTL.finding(at("MinTTL"), fmt.Sprintf("MinTTL %d s", c.minTTL), "MinTTL 0"))
	}
	if c.defaultTTL > 0 {
		a.r.add(CheckDefaultTTL.finding(at("DefaultTTL"),
			fmt.Sprintf("DefaultTTL %d s: responses without Cache-Control are cached %s", c.defaultTTL, humanSeconds(c.defaultTTL)),
			"DefaultTTL 0"))
	}
	if c.maxTTL == 0 {
		a.r.add(CheckRevalidationOff.finding(at("MaxTTL"), "MaxTTL 0 (nothing stored, no If-Modified-Since revalidation)",
			"MinTTL 0, DefaultTTL 0, MaxTTL > 0 (e.g. 86400)"))
	} else if c.cookiesInKey {
		a.r.add(CheckRevalidationCookies.finding(at("cookies"), c.cookiesSetting+" (cookies in the cache key)",
			"cookies forwarded by an origin request policy, not in the cache key"))
	}
}

func (a *configAudit) forwarding(b behavior, c caching) {
	path := b.path + ".ForwardedValues"
	if b.cachePolicy != "" {
		path = b.path + ".OriginRequestPolicyId"
	}
	switch {
	case c.cookiesAll:
	case len(c.cookieNames) > 0:
		a.r.add(CheckCookiesWhitelist.finding(path+" (cookies)", c.cookiesSetting+": "+strings.Join(c.cookieNames, ", "),
			"every cookie the app reads (or all)"))
	case a.opts.Stateless:
		a.r.fact(b.path+" cookies", "%s (not a finding: the app is stateless)", c.cookiesSetting)
	default:
		a.r.add(CheckCookies.finding(path+" (cookies)", c.cookiesSetting, "all cookies forwarded (e.g. origin request policy AllViewer)"))
	}
	if !c.queryForwarded {
		a.r.add(CheckQueryStrings.finding(path+" (query strings)", c.querySetting, "all query strings forwarded (e.g. origin request policy AllViewer)"))
	}
}

func (a *configAudit) serverTiming(ctx context.Context, b behavior) {
	path := b.path + ".ResponseHeadersPolicyId"
	const want = "a response headers policy with ServerTimingHeadersConfig Enabled true"
	if b.headersPolicy == "" {
		a.r.add(CheckServerTiming.finding(path, "no response headers policy", want))
		return
	}
	rp := a.pol.headers(ctx, b.headersPolicy)
	a.r.fact(path, "%s", rp.describe(b.headersPolicy))
	if rp.err != nil {
		a.r.add(CheckPolicyUnreadable.finding(path, b.headersPolicy+": "+short(rp.err), "a readable response headers policy"))
		return
	}
	st := rp.cfg.ServerTimingHeadersConfig
	if st == nil || !aws.ToBool(st.Enabled) {
		is := "policy " + rp.name() + " without Server-Timing"
		if rp.managed {
			is = "managed policy " + rp.name() + " (no managed policy enables Server-Timing)"
		}
		a.r.add(CheckServerTiming.finding(path, is, want))
	}
}

func humanSeconds(s int64) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case s%86400 == 0:
		return unit(s/86400, "day")
	case s%3600 == 0:
		return unit(s/3600, "hour")
	case s%60 == 0:
		return unit(s/60, "minute")
	}
	return unit(s, "second")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// short is the first line of an error, bounded, for a finding's "is".
func short(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
