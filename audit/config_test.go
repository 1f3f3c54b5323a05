package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/edgeprobe/edgeprobe/audit"
	"github.com/edgeprobe/edgeprobe/audit/audittest"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
)

const (
	goodACM  = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	euACM    = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	albName  = "my-alb-123.eu-west-1.elb.amazonaws.com"
	originID = "alb"
)

func methods(ms ...types.Method) *types.AllowedMethods {
	return &types.AllowedMethods{
		Quantity: aws.Int32(int32(len(ms))), Items: ms,
		CachedMethods: &types.CachedMethods{Quantity: aws.Int32(2), Items: []types.Method{types.MethodGet, types.MethodHead}},
	}
}

var all7 = []types.Method{types.MethodGet, types.MethodHead, types.MethodOptions, types.MethodPut, types.MethodPost, types.MethodPatch, types.MethodDelete}

// goodLegacy is the article's distribution with legacy settings: all seven
// methods, redirect-to-https, TTL 0/0/86400, all cookies and query
// strings, ACM certificate from us-east-1 with TLSv1.2_2021, HTTP/2 and 3,
// IPv6, compression, HTTPS to the ALB with warm connections.
func goodLegacy() *types.DistributionConfig {
	return &types.DistributionConfig{
		Comment: aws.String("audit test"), Enabled: aws.Bool(true),
		Aliases:       &types.Aliases{Quantity: aws.Int32(1), Items: []string{"www.example.com"}},
		HttpVersion:   types.HttpVersionHttp2and3,
		IsIPV6Enabled: aws.Bool(true),
		Origins: &types.Origins{Quantity: aws.Int32(1), Items: []types.Origin{{
			Id: aws.String(originID), DomainName: aws.String(albName),
			CustomOriginConfig: &types.CustomOriginConfig{
				HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443),
				OriginProtocolPolicy:   types.OriginProtocolPolicyHttpsOnly,
				OriginSslProtocols:     &types.OriginSslProtocols{Quantity: aws.Int32(1), Items: []types.SslProtocol{types.SslProtocolTLSv12}},
				OriginKeepaliveTimeout: aws.Int32(60),
				OriginReadTimeout:      aws.Int32(30),
			},
		}}},
		DefaultCacheBehavior: &types.DefaultCacheBehavior{
			TargetOriginId:       aws.String(originID),
			ViewerProtocolPolicy: types.ViewerProtocolPolicyRedirectToHttps,
			AllowedMethods:       methods(all7...),
			Compress:             aws.Bool(true),
			ForwardedValues: &types.ForwardedValues{
				QueryString: aws.Bool(true),
				Cookies:     &types.CookiePreference{Forward: types.ItemSelectionAll},
			},
			MinTTL: aws.Int64(0), DefaultTTL: aws.Int64(0), MaxTTL: aws.Int64(86400),
		},
		ViewerCertificate: &types.ViewerCertificate{
			ACMCertificateArn:      aws.String(goodACM),
			SSLSupportMethod:       types.SSLSupportMethodSniOnly,
			MinimumProtocolVersion: types.MinimumProtocolVersionTLSv122021,
		},
	}
}

// goodPolicy is the same with policies: cache policy cachePolicy, origin
// request policy AllViewer, response headers policy rhp.
func goodPolicy(cachePolicy, rhp string) *types.DistributionConfig {
	c := goodLegacy()
	c.DefaultCacheBehavior.ForwardedValues = nil
	c.DefaultCacheBehavior.MinTTL, c.DefaultCacheBehavior.DefaultTTL, c.DefaultCacheBehavior.MaxTTL = nil, nil, nil
	c.DefaultCacheBehavior.CachePolicyId = aws.String(cachePolicy)
	c.DefaultCacheBehavior.OriginRequestPolicyId = aws.String(audit.AllViewer)
	if rhp != "" {
		c.DefaultCacheBehavior.ResponseHeadersPolicyId = aws.String(rhp)
	}
	return c
}

// want is a finding a case must produce: its check, severity and a piece
// of its path.
type want struct {
	id   string
	sev  audit.Severity
	path string
}

type emulator struct {
	client *cloudfront.Client
	api    *audittest.PolicyAPI
	n      int
}

func startEmulator(t *testing.T) *emulator {
	t.Helper()
	moto := testkit.StartMoto(t) // dummy credentials, us-east-1: never real AWS
	api := audittest.StartPolicyAPI(t, moto.URL())
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &emulator{client: audit.NewClient(cfg, api.URL), api: api}
}

func (e *emulator) create(t *testing.T, c *types.DistributionConfig) string {
	t.Helper()
	e.n++
	c.CallerReference = aws.String(fmt.Sprintf("audit-%d-%d", time.Now().UnixNano(), e.n))
	out, err := e.client.CreateDistribution(context.Background(), &cloudfront.CreateDistributionInput{DistributionConfig: c})
	if err != nil {
		t.Fatalf("CreateDistribution: %v", err)
	}
	return aws.ToString(out.Distribution.Id)
}

func (e *emulator) cachePolicy(t *testing.T, name string, minTTL, defTTL, maxTTL int64, cookies types.CachePolicyCookieBehavior) string {
	t.Helper()
	out, err := e.client.CreateCachePolicy(context.Background(), &cloudfront.CreateCachePolicyInput{CachePolicyConfig: &types.CachePolicyConfig{
		Name: aws.String(name), MinTTL: aws.Int64(minTTL), DefaultTTL: aws.Int64(defTTL), MaxTTL: aws.Int64(maxTTL),
		ParametersInCacheKeyAndForwardedToOrigin: &types.ParametersInCacheKeyAndForwardedToOrigin{
			CookiesConfig:            &types.CachePolicyCookiesConfig{CookieBehavior: cookies},
			HeadersConfig:            &types.CachePolicyHeadersConfig{HeaderBehavior: types.CachePolicyHeaderBehaviorNone},
			QueryStringsConfig:       &types.CachePolicyQueryStringsConfig{QueryStringBehavior: types.CachePolicyQueryStringBehaviorAll},
			EnableAcceptEncodingGzip: aws.Bool(maxTTL > 0),
		},
	}})
	if err != nil {
		t.Fatalf("CreateCachePolicy: %v", err)
	}
	return aws.ToString(out.CachePolicy.Id)
}

func (e *emulator) originRequestPolicy(t *testing.T, name string, cookies types.OriginRequestPolicyCookieBehavior, qs types.OriginRequestPolicyQueryStringBehavior) string {
	t.Helper()
	out, err := e.client.CreateOriginRequestPolicy(context.Background(), &cloudfront.CreateOriginRequestPolicyInput{OriginRequestPolicyConfig: &types.OriginRequestPolicyConfig{
		Name:               aws.String(name),
		CookiesConfig:      &types.OriginRequestPolicyCookiesConfig{CookieBehavior: cookies},
		HeadersConfig:      &types.OriginRequestPolicyHeadersConfig{HeaderBehavior: types.OriginRequestPolicyHeaderBehaviorAllViewer},
		QueryStringsConfig: &types.OriginRequestPolicyQueryStringsConfig{QueryStringBehavior: qs},
	}})
	if err != nil {
		t.Fatalf("CreateOriginRequestPolicy: %v", err)
	}
	return aws.ToString(out.OriginRequestPolicy.Id)
}

func (e *emulator) responseHeadersPolicy(t *testing.T, name string, serverTiming bool) string {
	t.Helper()
	cfg := &types.ResponseHeadersPolicyConfig{Name: aws.String(name)}
	if serverTiming {
		cfg.ServerTimingHeadersConfig = &types.ResponseHeadersPolicyServerTimingHeadersConfig{Enabled: aws.Bool(true), SamplingRate: aws.Float64(1)}
	}
	out, err := e.client.CreateResponseHeadersPolicy(context.Background(), &cloudfront.CreateResponseHeadersPolicyInput{ResponseHeadersPolicyConfig: cfg})
	if err != nil {
		t.Fatalf("CreateResponseHeadersPolicy: %v", err)
	}
	return aws.ToString(out.ResponseHeadersPolicy.Id)
}

func (e *emulator) audit(t *testing.T, c *types.DistributionConfig, opts audit.ConfigOptions) *audit.Report {
	t.Helper()
	id := e.create(t, c)
	r, err := audit.Distribution(context.Background(), e.client, id, opts)
	if err != nil {
		t.Fatalf("audit %s: %v", id, err)
	}
	return r
}

func dump(r *audit.Report) string {
	var b strings.Builder
	_ = audit.WriteText(&b, r, audit.TextOptions{Width: 200})
	return b.String()
}

func hasFinding(r *audit.Report, w want) bool {
	for _, f := range r.ByID(w.id) {
		if f.Severity == w.sev && strings.Contains(f.Path, w.path) {
			return true
		}
	}
	return false
}

func noneAtOrAbove(t *testing.T, r *audit.Report, s audit.Severity) {
	t.Helper()
	for _, f := range r.Findings {
		if f.Severity >= s {
			t.Errorf("unexpected %s finding %s at %s: %s", f.Severity, f.ID, f.Path, f.Is)
		}
	}
}

// TestDistributionsOnEmulator creates distributions on moto, good and bad,
// legacy and policy-based, and audits each through the CloudFront API.
func TestDistributionsOnEmulator(t *testing.T) {
	e := startEmulator(t)

	// Custom policies go through the test policy API (moto lacks it).
	ttl0 := e.cachePolicy(t, "ttl0-revalidate", 0, 0, 86400, types.CachePolicyCookieBehaviorNone)
	ttlDay := e.cachePolicy(t, "cache-a-day", 0, 3600, 86400, types.CachePolicyCookieBehaviorNone)
	cookieKey := e.cachePolicy(t, "cookies-in-key", 0, 0, 86400, types.CachePolicyCookieBehaviorAll)
	noCookies := e.originRequestPolicy(t, "no-cookies", types.OriginRequestPolicyCookieBehaviorNone, types.OriginRequestPolicyQueryStringBehaviorAll)
	timing := e.responseHeadersPolicy(t, "server-timing", true)
	noTiming := e.responseHeadersPolicy(t, "security-only", false)

	t.Run("good legacy", func(t *testing.T) {
		r := e.audit(t, goodLegacy(), audit.ConfigOptions{})
		noneAtOrAbove(t, r, audit.Medium)
		// TTL 0 revalidation and cookies in the legacy cache key conflict
		// (CloudFront's own documentation): a low finding, not silence.
		if !hasFinding(r, want{"revalidation-cookies", audit.Low, "DefaultCacheBehavior"}) {
			t.Errorf("no revalidation-cookies warning:\n%s", dump(r))
		}
		if r.Failed() {
			t.Errorf("good distribution failed:\n%s", dump(r))
		}
	})

	t.Run("good policies", func(t *testing.T) {
		r := e.audit(t, goodPolicy(ttl0, timing), audit.ConfigOptions{})
		noneAtOrAbove(t, r, audit.Low)
		if len(r.Findings) != 0 {
			t.Errorf("want no findings at all:\n%s", dump(r))
		}
		if e.api.Gets("cache-policy", ttl0) == 0 || e.api.Gets("response-headers-policy", timing) == 0 {
			t.Error("custom policies were not read through GetCachePolicy / GetResponseHeadersPolicy")
		}
		facts := dump(r)
		if !strings.Contains(facts, "ttl0-revalidate (read from the API)") {
			t.Errorf("custom policy not reported as read from the API:\n%s", facts)
		}
		// Managed AllViewer: moto has no policy API, so the table answers.
		if !strings.Contains(facts, "Managed-AllViewer (managed; settings from the built-in table") {
			t.Errorf("managed policy not resolved from the table:\n%s", facts)
		}
	})

	t.Run("good managed CachingDisabled", func(t *testing.T) {
		r := e.audit(t, goodPolicy(audit.CachingDisabled, timing), audit.ConfigOptions{})
		noneAtOrAbove(t, r, audit.Medium)
		if !hasFinding(r, want{"revalidation-off", audit.Low, "Managed-CachingDisabled"}) {
			t.Errorf("CachingDisabled stores nothing, want revalidation-off (low):\n%s", dump(r))
		}
	})

	cases := []struct {
		name   string
		cfg    func() *types.DistributionConfig
		opts   audit.ConfigOptions
		want   []want
		absent []string
	}{
		{"legacy GET HEAD only", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.AllowedMethods = methods(types.MethodGet, types.MethodHead)
			return c
		}, audit.ConfigOptions{}, []want{{"allowed-methods", audit.High, "DefaultCacheBehavior.AllowedMethods"}}, nil},
		{"legacy GET HEAD OPTIONS", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.AllowedMethods = methods(types.MethodGet, types.MethodHead, types.MethodOptions)
			return c
		}, audit.ConfigOptions{}, []want{{"allowed-methods", audit.High, "DefaultCacheBehavior.AllowedMethods"}}, nil},
		{"legacy allow-all", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.ViewerProtocolPolicy = types.ViewerProtocolPolicyAllowAll
			return c
		}, audit.ConfigOptions{}, []want{{"viewer-protocol", audit.High, "DefaultCacheBehavior.ViewerProtocolPolicy"}}, nil},
		{"legacy https-only", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.ViewerProtocolPolicy = types.ViewerProtocolPolicyHttpsOnly
			return c
		}, audit.ConfigOptions{}, []want{{"viewer-protocol", audit.Low, "ViewerProtocolPolicy"}}, nil},
		{"legacy MinTTL", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.MinTTL = aws.Int64(60)
			return c
		}, audit.ConfigOptions{}, []want{{"cache-min-ttl", audit.Critical, "DefaultCacheBehavior.MinTTL"}}, nil},
		{"legacy DefaultTTL a day", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.DefaultTTL = aws.Int64(86400)
			return c
		}, audit.ConfigOptions{}, []want{{"cache-default-ttl", audit.High, "DefaultCacheBehavior.DefaultTTL"}}, nil},
		{"legacy MaxTTL 0", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.MaxTTL = aws.Int64(0)
			return c
		}, audit.ConfigOptions{}, []want{{"revalidation-off", audit.Low, "DefaultCacheBehavior.MaxTTL"}}, []string{"revalidation-cookies"}},
		{"legacy cookies none", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.ForwardedValues.Cookies.Forward = types.ItemSelectionNone
			return c
		}, audit.ConfigOptions{}, []want{{"cookies-not-forwarded", audit.High, "DefaultCacheBehavior.ForwardedValues"}}, []string{"revalidation-cookies"}},
		{"legacy cookies none, stateless app", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.ForwardedValues.Cookies.Forward = types.ItemSelectionNone
			return c
		}, audit.ConfigOptions{Stateless: true}, nil, []string{"cookies-not-forwarded"}},
		{"legacy cookies whitelist", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.ForwardedValues.Cookies = &types.CookiePreference{Forward: types.ItemSelectionWhitelist,
				WhitelistedNames: &types.CookieNames{Quantity: aws.Int32(1), Items: []string{"theme"}}}
			return c
		}, audit.ConfigOptions{}, []want{{"cookies-whitelist", audit.Info, "DefaultCacheBehavior"}}, []string{"cookies-not-forwarded"}},
		{"legacy query strings off", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.ForwardedValues.QueryString = aws.Bool(false)
			return c
		}, audit.ConfigOptions{}, []want{{"query-strings-ignored", audit.Medium, "DefaultCacheBehavior.ForwardedValues"}}, nil},
		{"default certificate", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Aliases = nil
			c.ViewerCertificate = &types.ViewerCertificate{CloudFrontDefaultCertificate: aws.Bool(true)}
			return c
		}, audit.ConfigOptions{}, []want{{"certificate-default", audit.Medium, "ViewerCertificate"}}, []string{"tls-minimum-protocol"}},
		{"ACM outside us-east-1", func() *types.DistributionConfig {
			c := goodLegacy()
			c.ViewerCertificate.ACMCertificateArn = aws.String(euACM)
			return c
		}, audit.ConfigOptions{}, []want{{"certificate-region", audit.High, "ViewerCertificate.ACMCertificateArn"}}, nil},
		{"IAM certificate", func() *types.DistributionConfig {
			c := goodLegacy()
			c.ViewerCertificate.ACMCertificateArn = nil
			c.ViewerCertificate.IAMCertificateId = aws.String("ASCAEXAMPLE")
			return c
		}, audit.ConfigOptions{}, []want{{"certificate-not-acm", audit.Low, "IAMCertificateId"}}, nil},
		{"TLSv1 policy", func() *types.DistributionConfig {
			c := goodLegacy()
			c.ViewerCertificate.MinimumProtocolVersion = types.MinimumProtocolVersionTLSv1
			return c
		}, audit.ConfigOptions{}, []want{{"tls-minimum-protocol", audit.High, "MinimumProtocolVersion"}}, nil},
		{"TLSv1.2_2019 policy", func() *types.DistributionConfig {
			c := goodLegacy()
			c.ViewerCertificate.MinimumProtocolVersion = types.MinimumProtocolVersionTLSv122019
			return c
		}, audit.ConfigOptions{}, []want{{"tls-minimum-protocol", audit.Medium, "MinimumProtocolVersion"}}, nil},
		{"HTTP/1.1 only", func() *types.DistributionConfig {
			c := goodLegacy()
			c.HttpVersion = types.HttpVersionHttp11
			return c
		}, audit.ConfigOptions{}, []want{{"http-version", audit.Medium, "HttpVersion"}}, nil},
		{"no HTTP/3", func() *types.DistributionConfig {
			c := goodLegacy()
			c.HttpVersion = types.HttpVersionHttp2
			return c
		}, audit.ConfigOptions{}, []want{{"http-version", audit.Low, "HttpVersion"}}, nil},
		{"IPv6 off", func() *types.DistributionConfig {
			c := goodLegacy()
			c.IsIPV6Enabled = aws.Bool(false)
			return c
		}, audit.ConfigOptions{}, []want{{"ipv6", audit.Low, "IsIPV6Enabled"}}, nil},
		{"http-only to the ALB", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Origins.Items[0].CustomOriginConfig.OriginProtocolPolicy = types.OriginProtocolPolicyHttpOnly
			return c
		}, audit.ConfigOptions{}, []want{{"origin-protocol", audit.High, "Origins[alb].CustomOriginConfig.OriginProtocolPolicy"}}, nil},
		{"old TLS to the ALB", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Origins.Items[0].CustomOriginConfig.OriginSslProtocols = &types.OriginSslProtocols{Quantity: aws.Int32(1), Items: []types.SslProtocol{types.SslProtocolTLSv1}}
			return c
		}, audit.ConfigOptions{}, []want{{"origin-ssl-protocols", audit.Medium, "OriginSslProtocols"}}, nil},
		{"default keep-alive", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Origins.Items[0].CustomOriginConfig.OriginKeepaliveTimeout = aws.Int32(5)
			return c
		}, audit.ConfigOptions{}, []want{{"origin-keepalive", audit.Medium, "OriginKeepaliveTimeout"}}, nil},
		{"keep-alive above the ALB's idle timeout", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Origins.Items[0].CustomOriginConfig.OriginKeepaliveTimeout = aws.Int32(120)
			return c
		}, audit.ConfigOptions{}, []want{{"origin-keepalive", audit.Low, "OriginKeepaliveTimeout"}}, nil},
		{"short read timeout", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Origins.Items[0].CustomOriginConfig.OriginReadTimeout = aws.Int32(4)
			return c
		}, audit.ConfigOptions{}, []want{{"origin-read-timeout", audit.Medium, "OriginReadTimeout"}}, nil},
		{"long read timeout", func() *types.DistributionConfig {
			c := goodLegacy()
			c.Origins.Items[0].CustomOriginConfig.OriginReadTimeout = aws.Int32(120)
			return c
		}, audit.ConfigOptions{}, []want{{"origin-read-timeout", audit.Low, "OriginReadTimeout"}}, nil},
		{"compression off", func() *types.DistributionConfig {
			c := goodLegacy()
			c.DefaultCacheBehavior.Compress = aws.Bool(false)
			return c
		}, audit.ConfigOptions{}, []want{{"compression", audit.Low, "DefaultCacheBehavior.Compress"}}, nil},
		{"ordered behavior: static defaults on /api/*", func() *types.DistributionConfig {
			c := goodLegacy()
			c.CacheBehaviors = &types.CacheBehaviors{Quantity: aws.Int32(1), Items: []types.CacheBehavior{{
				PathPattern: aws.String("/api/*"), TargetOriginId: aws.String(originID),
				ViewerProtocolPolicy: types.ViewerProtocolPolicyAllowAll,
				AllowedMethods:       methods(types.MethodGet, types.MethodHead),
				Compress:             aws.Bool(true),
				ForwardedValues: &types.ForwardedValues{QueryString: aws.Bool(false),
					Cookies: &types.CookiePreference{Forward: types.ItemSelectionNone}},
				MinTTL: aws.Int64(0), DefaultTTL: aws.Int64(86400), MaxTTL: aws.Int64(31536000),
			}}}
			return c
		}, audit.ConfigOptions{}, []want{
			{"allowed-methods", audit.High, "CacheBehaviors[/api/*].AllowedMethods"},
			{"viewer-protocol", audit.High, "CacheBehaviors[/api/*].ViewerProtocolPolicy"},
			{"cache-default-ttl", audit.High, "CacheBehaviors[/api/*].DefaultTTL"},
			{"cookies-not-forwarded", audit.High, "CacheBehaviors[/api/*]"},
			{"query-strings-ignored", audit.Medium, "CacheBehaviors[/api/*]"},
		}, nil},
		{"managed CachingOptimized on a dynamic site", func() *types.DistributionConfig {
			return goodPolicy(audit.CachingOptimized, timing)
		}, audit.ConfigOptions{}, []want{
			{"cache-min-ttl", audit.Critical, "Managed-CachingOptimized"},
			{"cache-default-ttl", audit.High, "Managed-CachingOptimized"},
		}, nil},
		{"cache policy without origin request policy", func() *types.DistributionConfig {
			c := goodPolicy(audit.CachingDisabled, timing)
			c.DefaultCacheBehavior.OriginRequestPolicyId = nil
			return c
		}, audit.ConfigOptions{}, []want{
			{"cookies-not-forwarded", audit.High, "DefaultCacheBehavior"},
			{"query-strings-ignored", audit.Medium, "DefaultCacheBehavior"},
		}, nil},
		{"managed CORS-CustomOrigin origin request policy", func() *types.DistributionConfig {
			c := goodPolicy(audit.CachingDisabled, timing)
			c.DefaultCacheBehavior.OriginRequestPolicyId = aws.String(audit.CORSCustomOrigin)
			return c
		}, audit.ConfigOptions{}, []want{
			{"cookies-not-forwarded", audit.High, "DefaultCacheBehavior.OriginRequestPolicyId"},
			{"query-strings-ignored", audit.Medium, "DefaultCacheBehavior.OriginRequestPolicyId"},
		}, nil},
		{"custom cache policy caching an hour", func() *types.DistributionConfig {
			return goodPolicy(ttlDay, timing)
		}, audit.ConfigOptions{}, []want{{"cache-default-ttl", audit.High, "cache-a-day"}}, []string{"cache-min-ttl"}},
		{"custom origin request policy without cookies", func() *types.DistributionConfig {
			c := goodPolicy(ttl0, timing)
			c.DefaultCacheBehavior.OriginRequestPolicyId = aws.String(noCookies)
			return c
		}, audit.ConfigOptions{}, []want{{"cookies-not-forwarded", audit.High, "DefaultCacheBehavior.OriginRequestPolicyId"}}, []string{"query-strings-ignored"}},
		{"cookies in the cache policy's key", func() *types.DistributionConfig {
			return goodPolicy(cookieKey, timing)
		}, audit.ConfigOptions{}, []want{{"revalidation-cookies", audit.Low, "cookies-in-key"}}, nil},
		{"no response headers policy", func() *types.DistributionConfig {
			return goodPolicy(ttl0, "")
		}, audit.ConfigOptions{}, []want{{"server-timing", audit.Low, "DefaultCacheBehavior.ResponseHeadersPolicyId"}}, nil},
		{"managed response headers policy", func() *types.DistributionConfig {
			return goodPolicy(ttl0, audit.SecurityHeadersPolicy)
		}, audit.ConfigOptions{}, []want{{"server-timing", audit.Low, "DefaultCacheBehavior.ResponseHeadersPolicyId"}}, nil},
		{"custom response headers policy without Server-Timing", func() *types.DistributionConfig {
			return goodPolicy(ttl0, noTiming)
		}, audit.ConfigOptions{}, []want{{"server-timing", audit.Low, "DefaultCacheBehavior.ResponseHeadersPolicyId"}}, nil},
		{"unknown custom cache policy", func() *types.DistributionConfig {
			return goodPolicy("00000000-0000-0000-0000-000000000000", timing)
		}, audit.ConfigOptions{}, []want{{"policy-unreadable", audit.Medium, "DefaultCacheBehavior.CachePolicyId"}}, []string{"cookies-not-forwarded"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.audit(t, tc.cfg(), tc.opts)
			for _, w := range tc.want {
				if !hasFinding(r, w) {
					t.Errorf("want %s (%s) at %q; got:\n%s", w.id, w.sev, w.path, dump(r))
				}
			}
			for _, id := range tc.absent {
				if r.Has(id) {
					t.Errorf("did not want %s; got:\n%s", id, dump(r))
				}
			}
			wantFail := false
			for _, w := range tc.want {
				wantFail = wantFail || w.sev >= audit.High
			}
			if r.Failed() != wantFail {
				t.Errorf("Failed() = %v, want %v:\n%s", r.Failed(), wantFail, dump(r))
			}
		})
	}

	t.Run("missing distribution", func(t *testing.T) {
		_, err := audit.Distribution(context.Background(), e.client, "E0000000000000", audit.ConfigOptions{})
		if err == nil {
			t.Fatal("no error for a distribution that does not exist")
		}
	})
}
