package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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

// auditJSON is what the tests read of `probe audit --format json`.
type auditJSON struct {
	Summary struct {
		Total       int            `json:"total"`
		BySeverity  map[string]int `json:"by_severity"`
		MaxSeverity string         `json:"max_severity"`
		Failed      bool           `json:"failed"`
	} `json:"summary"`
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Path     string `json:"path"`
		Is       string `json:"is"`
		Should   string `json:"should"`
		Why      string `json:"why"`
		Fix      string `json:"fix"`
	} `json:"findings"`
	Measurements map[string]float64 `json:"measurements"`
}

func parseAudit(t *testing.T, res result) auditJSON {
	t.Helper()
	var doc auditJSON
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s\nstderr: %s", err, res.stdout, res.stderr)
	}
	for _, f := range doc.Findings {
		if f.ID == "" || f.Severity == "" || f.Path == "" || f.Is == "" || f.Should == "" || f.Why == "" || f.Fix == "" {
			t.Errorf("finding with an empty field: %+v", f)
		}
	}
	return doc
}

func (d auditJSON) ids() []string {
	var out []string
	for _, f := range d.Findings {
		out = append(out, f.ID+"/"+f.Severity)
	}
	return out
}

// wireArgs audits /page of site through its nginx edge.
func wireArgs(site *audittest.Site, extra ...string) []string {
	return append([]string{"audit",
		"--url", site.Edge.HTTPSURL + "/page", "--http-url", site.Edge.HTTPURL + "/page",
		"--origin-url", site.OriginURL, "--echo-path", "/echo", "--method-path", "/safe",
		"--ca-file", site.CAFile}, extra...)
}

// TestAuditWireCLI runs `probe audit --url` against nginx in front of a
// dynamic origin: the good setup passes (exit 0), each bad one exits 1
// with its finding.
func TestAuditWireCLI(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		site := audittest.StartSite(t, nil, audittest.EdgeOptions{})
		res := runProbe(t, nil, wireArgs(site)...)
		if res.code != exitOK {
			t.Fatalf("exit %d, want 0\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		for _, s := range []string{"probe audit: " + site.Edge.HTTPSURL + "/page", "PASS", "INFO", "[redirect-cost]",
			"REVALIDATED from nginx", "fix"} {
			if !strings.Contains(res.stdout, s) {
				t.Errorf("table lacks %q:\n%s", s, res.stdout)
			}
		}
		doc := parseAudit(t, runProbe(t, nil, wireArgs(site, "--format", "json")...))
		if doc.Summary.Failed || doc.Summary.BySeverity["high"] != 0 || doc.Measurements["redirect_cost_seconds"] <= 0 {
			t.Errorf("good setup: %+v %v", doc.Summary, doc.ids())
		}
	})

	cases := []struct {
		name   string
		origin func(*audittest.Origin)
		edge   audittest.EdgeOptions
		want   string
	}{
		{"no 304", func(o *audittest.Origin) { o.NoValidators = true }, audittest.EdgeOptions{}, "validators-missing/high"},
		{"POST and OPTIONS blocked", nil, audittest.EdgeOptions{BlockMethods: true}, "method-blocked/high"},
		{"no redirect", nil, audittest.EdgeOptions{NoRedirect: true}, "http-redirect/high"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			site := audittest.StartSite(t, tc.origin, tc.edge)
			res := runProbe(t, nil, wireArgs(site, "--format", "json")...)
			if res.code != exitFailed {
				t.Errorf("exit %d, want 1\nstderr: %s", res.code, res.stderr)
			}
			doc := parseAudit(t, res)
			if !slices.Contains(doc.ids(), tc.want) || !doc.Summary.Failed {
				t.Errorf("want %s, got %v", tc.want, doc.ids())
			}
			if !strings.Contains(res.stderr, "severity high or above") {
				t.Errorf("stderr: %q", res.stderr)
			}
		})
	}
}

// TestAuditDistributionCLI audits distributions on moto through the binary
// (AWS_ENDPOINT_URL_CLOUDFRONT, dummy credentials).
func TestAuditDistributionCLI(t *testing.T) {
	moto := testkit.StartMoto(t) // sets dummy credentials in this process's environment
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cf := audit.NewClient(cfg, moto.URL())
	create := func(ref string, bad bool) string {
		t.Helper()
		all7 := []types.Method{types.MethodGet, types.MethodHead, types.MethodOptions, types.MethodPut, types.MethodPost, types.MethodPatch, types.MethodDelete}
		b := &types.DefaultCacheBehavior{
			TargetOriginId: aws.String("alb"), ViewerProtocolPolicy: types.ViewerProtocolPolicyRedirectToHttps,
			AllowedMethods: &types.AllowedMethods{Quantity: aws.Int32(7), Items: all7},
			Compress:       aws.Bool(true),
			CachePolicyId:  aws.String(audit.CachingDisabled), OriginRequestPolicyId: aws.String(audit.AllViewer),
		}
		if bad { // the console's static-site defaults, legacy style
			b = &types.DefaultCacheBehavior{
				TargetOriginId: aws.String("alb"), ViewerProtocolPolicy: types.ViewerProtocolPolicyAllowAll,
				AllowedMethods: &types.AllowedMethods{Quantity: aws.Int32(2), Items: []types.Method{types.MethodGet, types.MethodHead}},
				ForwardedValues: &types.ForwardedValues{QueryString: aws.Bool(false),
					Cookies: &types.CookiePreference{Forward: types.ItemSelectionNone}},
				MinTTL: aws.Int64(0), DefaultTTL: aws.Int64(86400), MaxTTL: aws.Int64(31536000),
			}
		}
		out, err := cf.CreateDistribution(ctx, &cloudfront.CreateDistributionInput{DistributionConfig: &types.DistributionConfig{
			CallerReference: aws.String(fmt.Sprintf("%s-%d", ref, time.Now().UnixNano())), Comment: aws.String(ref), Enabled: aws.Bool(true),
			HttpVersion: types.HttpVersionHttp2and3, IsIPV6Enabled: aws.Bool(true),
			Origins: &types.Origins{Quantity: aws.Int32(1), Items: []types.Origin{{Id: aws.String("alb"), DomainName: aws.String("my-alb.eu-west-1.elb.amazonaws.com"),
				CustomOriginConfig: &types.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443),
					OriginProtocolPolicy: types.OriginProtocolPolicyHttpsOnly, OriginKeepaliveTimeout: aws.Int32(60), OriginReadTimeout: aws.Int32(30)}}}},
			DefaultCacheBehavior: b,
			ViewerCertificate: &types.ViewerCertificate{ACMCertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/abc"),
				SSLSupportMethod: types.SSLSupportMethodSniOnly, MinimumProtocolVersion: types.MinimumProtocolVersionTLSv122021},
		}})
		if err != nil {
			t.Fatalf("CreateDistribution: %v", err)
		}
		return aws.ToString(out.Distribution.Id)
	}
	env := []string{"AWS_ENDPOINT_URL_CLOUDFRONT=" + moto.URL()}

	good := runProbe(t, env, "audit", "--distribution-id", create("good", false))
	if good.code != exitOK || !strings.Contains(good.stdout, "PASS") {
		t.Errorf("good distribution: exit %d\n%s\n%s", good.code, good.stdout, good.stderr)
	}

	badID := create("bad", true)
	if testing.Verbose() {
		show := runProbe(t, env, "audit", "--distribution-id", badID)
		t.Logf("%s", show.stdout)
	}
	res := runProbe(t, env, "audit", "--distribution-id", badID, "--format", "json")
	if res.code != exitFailed {
		t.Errorf("bad distribution: exit %d, want 1\n%s", res.code, res.stderr)
	}
	doc := parseAudit(t, res)
	for _, id := range []string{"allowed-methods/high", "viewer-protocol/high", "cache-default-ttl/high", "cookies-not-forwarded/high", "query-strings-ignored/medium"} {
		if !slices.Contains(doc.ids(), id) {
			t.Errorf("want %s, got %v", id, doc.ids())
		}
	}

	// --endpoint overrides the environment.
	missing := runProbe(t, nil, "audit", "--distribution-id", "E0000000000000", "--endpoint", moto.URL())
	if missing.code != exitFailed || !strings.Contains(missing.stderr, "not found") {
		t.Errorf("missing distribution: exit %d, stderr %q", missing.code, missing.stderr)
	}
}

func TestAuditUsage(t *testing.T) {
	for _, args := range [][]string{
		{"audit"},
		{"audit", "--url", "https://127.0.0.1:1/", "--format", "xml"},
		{"audit", "--url", "http://www.example.com/"},
		{"audit", "--url", "https://www.example.com/", "--origin-url", "https://alb", "--connect-to", "alb"},
		{"audit", "--distribution-id", "E1", "--echo-path", "/echo"},
		{"audit", "--url", "https://www.example.com/", "--method-path", "safe"},
		{"audit", "--url", "https://www.example.com/", "--ca-file", "/nonexistent.pem"},
		{"audit", "stray-argument"},
	} {
		res := runProbe(t, nil, args...)
		if res.code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", args, res.code, res.stderr)
		}
	}
}
