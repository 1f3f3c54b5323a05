package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

func TestCacheResultReadsNginxWords(t *testing.T) {
	for raw, want := range map[string]string{
		"HIT from nginx":                 httptrace.CacheHit,
		"MISS from nginx":                httptrace.CacheMiss,
		"REVALIDATED from nginx":         httptrace.CacheRefreshHit,
		"EXPIRED from nginx":             httptrace.CacheMiss,
		"STALE from nginx":               httptrace.CacheHit,
		"UPDATING from nginx":            httptrace.CacheHit,
		"BYPASS from nginx":              httptrace.CacheBypass,
		"RefreshHit from cloudfront":     httptrace.CacheRefreshHit,
		"Hit from cloudfront":            httptrace.CacheHit,
		"Miss from cloudfront":           httptrace.CacheMiss,
		"something new from cloudfront2": httptrace.CacheUnknown,
	} {
		h := http.Header{"X-Cache": {raw}}
		if got, gotRaw := cacheResult(httptrace.ParseCDN(h)); got != want || gotRaw != raw {
			t.Errorf("%q: got %s (%q), want %s", raw, got, gotRaw, want)
		}
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range Severities {
		b, _ := s.MarshalText()
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gave %v, %v", s, back, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("no error for an unknown severity")
	}
	if !(Critical > High && High > Medium && Medium > Low && Low > Info) {
		t.Error("severities out of order")
	}
}

// TestChecksDocumented keeps docs/audit.md and the catalogue together.
func TestChecksDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range Checks {
		if seen[c.ID] {
			t.Errorf("check %s listed twice", c.ID)
		}
		seen[c.ID] = true
		if !bytes.Contains(doc, []byte("| `"+c.ID+"` | "+c.Severity.String())) {
			t.Errorf("docs/audit.md has no row for %s with its default severity %s", c.ID, c.Severity)
		}
		if c.Why == "" || c.Fix == "" || (c.Source != SourceConfig && c.Source != SourceWire) {
			t.Errorf("check %s lacks why, fix or source", c.ID)
		}
	}
}

// fakePolicies answers Get*Policy from maps; anything else is AccessDenied.
type fakePolicies struct {
	cache map[string]*types.CachePolicyConfig
	calls int
}

var errDenied = errors.New("AccessDenied: not allowed")

func (f *fakePolicies) GetCachePolicy(_ context.Context, in *cloudfront.GetCachePolicyInput, _ ...func(*cloudfront.Options)) (*cloudfront.GetCachePolicyOutput, error) {
	f.calls++
	if c, ok := f.cache[aws.ToString(in.Id)]; ok {
		return &cloudfront.GetCachePolicyOutput{CachePolicy: &types.CachePolicy{Id: in.Id, CachePolicyConfig: c}}, nil
	}
	return nil, errDenied
}

func (f *fakePolicies) GetOriginRequestPolicy(context.Context, *cloudfront.GetOriginRequestPolicyInput, ...func(*cloudfront.Options)) (*cloudfront.GetOriginRequestPolicyOutput, error) {
	f.calls++
	return nil, errDenied
}

func (f *fakePolicies) GetResponseHeadersPolicy(context.Context, *cloudfront.GetResponseHeadersPolicyInput, ...func(*cloudfront.Options)) (*cloudfront.GetResponseHeadersPolicyOutput, error) {
	f.calls++
	return nil, errDenied
}

func policyDistribution(cachePolicy string) *types.DistributionConfig {
	all := []types.Method{types.MethodGet, types.MethodHead, types.MethodOptions, types.MethodPut, types.MethodPost, types.MethodPatch, types.MethodDelete}
	return &types.DistributionConfig{
		HttpVersion: types.HttpVersionHttp2and3, IsIPV6Enabled: aws.Bool(true),
		ViewerCertificate: &types.ViewerCertificate{ACMCertificateArn: aws.String("arn:aws:acm:us-east-1:1:certificate/x"),
			MinimumProtocolVersion: types.MinimumProtocolVersionTLSv122021},
		DefaultCacheBehavior: &types.DefaultCacheBehavior{
			ViewerProtocolPolicy:  types.ViewerProtocolPolicyRedirectToHttps,
			AllowedMethods:        &types.AllowedMethods{Quantity: aws.Int32(7), Items: all},
			Compress:              aws.Bool(true),
			CachePolicyId:         aws.String(cachePolicy),
			OriginRequestPolicyId: aws.String(AllViewer),
			// Filled in the way the API fills them beside a policy; ignored.
			ForwardedValues: &types.ForwardedValues{QueryString: aws.Bool(false), Cookies: &types.CookiePreference{Forward: types.ItemSelectionNone}},
			MinTTL:          aws.Int64(0), DefaultTTL: aws.Int64(0), MaxTTL: aws.Int64(0),
		},
	}
}

func TestPoliciesFromAPIThenTable(t *testing.T) {
	ctx := context.Background()

	// The API's answer wins over the table, even for a managed ID.
	changed := cachePolicy("Managed-CachingDisabled", 0, 0, 600, types.CachePolicyCookieBehaviorNone, types.CachePolicyQueryStringBehaviorNone, false)
	api := &fakePolicies{cache: map[string]*types.CachePolicyConfig{CachingDisabled: changed}}
	r := Config(ctx, api, policyDistribution(CachingDisabled), ConfigOptions{})
	if r.Has("revalidation-off") {
		t.Errorf("the API's MaxTTL 600 should have been used:\n%+v", r.Findings)
	}
	if r.Has("cookies-not-forwarded") || r.Has("query-strings-ignored") || r.Has("legacy-cache-settings") {
		t.Errorf("legacy fields beside a cache policy must be ignored:\n%+v", r.Findings)
	}

	// Denied: managed IDs come from the table, each asked once.
	api = &fakePolicies{}
	d := policyDistribution(CachingDisabled)
	d.CacheBehaviors = &types.CacheBehaviors{Quantity: aws.Int32(1), Items: []types.CacheBehavior{{
		PathPattern: aws.String("/x/*"), ViewerProtocolPolicy: types.ViewerProtocolPolicyRedirectToHttps,
		AllowedMethods: d.DefaultCacheBehavior.AllowedMethods, Compress: aws.Bool(true),
		CachePolicyId: aws.String(CachingDisabled), OriginRequestPolicyId: aws.String(AllViewer),
	}}}
	r = Config(ctx, api, d, ConfigOptions{})
	if !r.Has("revalidation-off") || r.Has("policy-unreadable") {
		t.Errorf("want the table's CachingDisabled (MaxTTL 0):\n%+v", r.Findings)
	}
	if api.calls != 2 {
		t.Errorf("policies read %d times, want 2 (each ID once)", api.calls)
	}

	// No API at all: the table alone; a custom ID is unreadable.
	r = Config(ctx, nil, policyDistribution("custom-id"), ConfigOptions{})
	if !r.Has("policy-unreadable") || r.Has("cache-default-ttl") {
		t.Errorf("want policy-unreadable and no guessing:\n%+v", r.Findings)
	}
}

func TestWriteJSONShape(t *testing.T) {
	r := &Report{Subjects: []string{"distribution E1"}}
	r.add(CheckAllowedMethods.finding("DefaultCacheBehavior.AllowedMethods", "GET, HEAD", "all seven"))
	r.add(CheckIPv6.finding("IsIPV6Enabled", "false", "true"))
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	sum := doc["summary"].(map[string]any)
	if sum["failed"] != true || sum["max_severity"] != "high" || sum["total"].(float64) != 2 {
		t.Errorf("summary: %v", sum)
	}
	f := doc["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "severity", "source", "path", "is", "should", "why", "fix"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding lacks %q: %v", k, f)
		}
	}
	if _, ok := doc["facts"].([]any); !ok {
		t.Errorf("facts should be a list, even empty: %v", doc["facts"])
	}

	var text strings.Builder
	if err := WriteText(&text, &Report{}, TextOptions{}); err != nil || !strings.Contains(text.String(), "no findings: PASS") {
		t.Errorf("empty report: %q %v", text.String(), err)
	}
}
