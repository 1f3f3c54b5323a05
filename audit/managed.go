package audit

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// IDs of CloudFront's managed policies (every account has them; the
// CloudFront Developer Guide lists them under "Use managed cache / origin
// request / response headers policies").
const (
	CachingDisabled                        = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	CachingOptimized                       = "658327ea-f89d-4fab-a63d-7e88639e58f6"
	CachingOptimizedForUncompressedObjects = "b2884449-e4de-46a7-ac36-70bc7f1ddd6d"
	UseOriginCacheControlHeaders           = "83da9c7e-98b4-4e11-a168-04f0df8e2c65"
	UseOriginCacheControlHeadersQS         = "4cc15a8a-d715-48a4-82b8-cc0b614638fe"
	AmplifyCachePolicy                     = "2e54312d-136d-493c-8eb9-b001f22f67d2"
	ElementalMediaPackageCachePolicy       = "08627262-05a9-4f76-9ded-b50ca2e3a84f"

	AllViewer                             = "216adef6-5c7f-47e4-b989-5492eafa07d3"
	AllViewerExceptHostHeader             = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
	AllViewerAndCloudFrontHeaders         = "33f36d7e-f396-46d9-90e0-52428a34d9dc"
	CORSCustomOrigin                      = "59781a5b-3903-41f3-afcb-af62929ccde1"
	CORSS3Origin                          = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"
	UserAgentRefererHeaders               = "acba4595-bd28-49b8-b9fe-13317c0390fa"
	ElementalMediaTailorPersonalizedManif = "775133bc-15f2-49f9-abea-afb2e0bf67d2"

	SecurityHeadersPolicy                  = "67f7725c-6f97-4210-82d7-5512b31e9d03"
	SimpleCORS                             = "60669652-455b-4ae9-85a4-c4c02393f86c"
	CORSWithPreflight                      = "5cc3b908-e619-4b99-88e5-2cf7f45965bd"
	CORSAndSecurityHeadersPolicy           = "e61eb60c-9c35-4d20-a928-2b84e02af89c"
	CORSWithPreflightAndSecurityHeadersPol = "eaab4381-ed33-4a86-88ca-d9558dc6cd63"
)

// cachePolicy builds a managed cache policy's configuration.
func cachePolicy(name string, minTTL, defTTL, maxTTL int64, cookies types.CachePolicyCookieBehavior,
	qs types.CachePolicyQueryStringBehavior, compress bool, headers ...string) *types.CachePolicyConfig {
	hc := &types.CachePolicyHeadersConfig{HeaderBehavior: types.CachePolicyHeaderBehaviorNone}
	if len(headers) > 0 {
		hc = &types.CachePolicyHeadersConfig{
			HeaderBehavior: types.CachePolicyHeaderBehaviorWhitelist,
			Headers:        &types.Headers{Quantity: aws.Int32(int32(len(headers))), Items: headers},
		}
	}
	return &types.CachePolicyConfig{
		Name:   aws.String(name),
		MinTTL: aws.Int64(minTTL), DefaultTTL: aws.Int64(defTTL), MaxTTL: aws.Int64(maxTTL),
		ParametersInCacheKeyAndForwardedToOrigin: &types.ParametersInCacheKeyAndForwardedToOrigin{
			CookiesConfig:              &types.CachePolicyCookiesConfig{CookieBehavior: cookies},
			QueryStringsConfig:         &types.CachePolicyQueryStringsConfig{QueryStringBehavior: qs},
			HeadersConfig:              hc,
			EnableAcceptEncodingGzip:   aws.Bool(compress),
			EnableAcceptEncodingBrotli: aws.Bool(compress),
		},
	}
}

func originRequestPolicy(name string, cookies types.OriginRequestPolicyCookieBehavior,
	qs types.OriginRequestPolicyQueryStringBehavior, headers types.OriginRequestPolicyHeaderBehavior, names ...string) *types.OriginRequestPolicyConfig {
	hc := &types.OriginRequestPolicyHeadersConfig{HeaderBehavior: headers}
	if len(names) > 0 {
		hc.Headers = &types.Headers{Quantity: aws.Int32(int32(len(names))), Items: names}
	}
	return &types.OriginRequestPolicyConfig{
		Name:               aws.String(name),
		CookiesConfig:      &types.OriginRequestPolicyCookiesConfig{CookieBehavior: cookies},
		QueryStringsConfig: &types.OriginRequestPolicyQueryStringsConfig{QueryStringBehavior: qs},
		HeadersConfig:      hc,
	}
}

// managedCachePolicies are the managed cache policies' settings, used when
// GetCachePolicy cannot be called (no permission, or an emulator that does
// not serve it).
var managedCachePolicies = map[string]*types.CachePolicyConfig{
	CachingDisabled: cachePolicy("Managed-CachingDisabled", 0, 0, 0,
		types.CachePolicyCookieBehaviorNone, types.CachePolicyQueryStringBehaviorNone, false),
	CachingOptimized: cachePolicy("Managed-CachingOptimized", 1, 86400, 31536000,
		types.CachePolicyCookieBehaviorNone, types.CachePolicyQueryStringBehaviorNone, true),
	CachingOptimizedForUncompressedObjects: cachePolicy("Managed-CachingOptimizedForUncompressedObjects", 1, 86400, 31536000,
		types.CachePolicyCookieBehaviorNone, types.CachePolicyQueryStringBehaviorNone, false),
	UseOriginCacheControlHeaders: cachePolicy("UseOriginCacheControlHeaders", 0, 0, 31536000,
		types.CachePolicyCookieBehaviorAll, types.CachePolicyQueryStringBehaviorNone, true,
		"host", "origin", "x-http-method", "x-http-method-override", "x-method-override"),
	UseOriginCacheControlHeadersQS: cachePolicy("UseOriginCacheControlHeaders-QueryStrings", 0, 0, 31536000,
		types.CachePolicyCookieBehaviorAll, types.CachePolicyQueryStringBehaviorAll, true,
		"host", "origin", "x-http-method", "x-http-method-override", "x-method-override"),
	AmplifyCachePolicy: cachePolicy("Managed-Amplify", 2, 2, 600,
		types.CachePolicyCookieBehaviorAll, types.CachePolicyQueryStringBehaviorAll, true,
		"Authorization", "CloudFront-Viewer-Country", "Host"),
	ElementalMediaPackageCachePolicy: cachePolicy("Managed-Elemental-MediaPackage", 0, 86400, 31536000,
		types.CachePolicyCookieBehaviorNone, types.CachePolicyQueryStringBehaviorWhitelist, true, "origin"),
}

// managedOriginRequestPolicies are the managed origin request policies'
// settings (headers are what matters least here and are abbreviated).
var managedOriginRequestPolicies = map[string]*types.OriginRequestPolicyConfig{
	AllViewer: originRequestPolicy("Managed-AllViewer", types.OriginRequestPolicyCookieBehaviorAll,
		types.OriginRequestPolicyQueryStringBehaviorAll, types.OriginRequestPolicyHeaderBehaviorAllViewer),
	AllViewerExceptHostHeader: originRequestPolicy("Managed-AllViewerExceptHostHeader", types.OriginRequestPolicyCookieBehaviorAll,
		types.OriginRequestPolicyQueryStringBehaviorAll, types.OriginRequestPolicyHeaderBehaviorAllExcept, "host"),
	AllViewerAndCloudFrontHeaders: originRequestPolicy("Managed-AllViewerAndCloudFrontHeaders-2022-06", types.OriginRequestPolicyCookieBehaviorAll,
		types.OriginRequestPolicyQueryStringBehaviorAll, types.OriginRequestPolicyHeaderBehaviorAllViewerAndWhitelistCloudFront),
	CORSCustomOrigin: originRequestPolicy("Managed-CORS-CustomOrigin", types.OriginRequestPolicyCookieBehaviorNone,
		types.OriginRequestPolicyQueryStringBehaviorNone, types.OriginRequestPolicyHeaderBehaviorWhitelist, "origin"),
	CORSS3Origin: originRequestPolicy("Managed-CORS-S3Origin", types.OriginRequestPolicyCookieBehaviorNone,
		types.OriginRequestPolicyQueryStringBehaviorNone, types.OriginRequestPolicyHeaderBehaviorWhitelist,
		"origin", "access-control-request-headers", "access-control-request-method"),
	UserAgentRefererHeaders: originRequestPolicy("Managed-UserAgentRefererHeaders", types.OriginRequestPolicyCookieBehaviorNone,
		types.OriginRequestPolicyQueryStringBehaviorAll, types.OriginRequestPolicyHeaderBehaviorWhitelist, "user-agent", "referer"),
	ElementalMediaTailorPersonalizedManif: originRequestPolicy("Managed-Elemental-MediaTailor-PersonalizedManifests", types.OriginRequestPolicyCookieBehaviorNone,
		types.OriginRequestPolicyQueryStringBehaviorAll, types.OriginRequestPolicyHeaderBehaviorWhitelist,
		"origin", "access-control-request-headers", "x-forwarded-for", "access-control-request-method", "user-agent"),
}

// managedResponseHeadersPolicies: none of them enables Server-Timing, which
// is all the audit reads from a response headers policy.
var managedResponseHeadersPolicies = map[string]*types.ResponseHeadersPolicyConfig{
	SecurityHeadersPolicy:                  {Name: aws.String("Managed-SecurityHeadersPolicy")},
	SimpleCORS:                             {Name: aws.String("Managed-SimpleCORS")},
	CORSWithPreflight:                      {Name: aws.String("Managed-CORS-With-Preflight")},
	CORSAndSecurityHeadersPolicy:           {Name: aws.String("Managed-CORS-and-SecurityHeadersPolicy")},
	CORSWithPreflightAndSecurityHeadersPol: {Name: aws.String("Managed-CORS-with-preflight-and-SecurityHeadersPolicy")},
}
