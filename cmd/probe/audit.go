package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/audit"
	"github.com/edgeprobe/edgeprobe/httptrace"
)

// auditFlags are the flags of probe audit.
type auditFlags struct {
	distributionID string
	endpoint       string
	stateless      bool

	url, httpURL, originURL, connectTo string
	echoPath, methodPath               string
	requests                           int
	caFile, dnsServer                  string
	insecure                           bool
	timeout                            time.Duration

	format string
}

const auditLong = `Check that a CloudFront distribution is set up right for a dynamic web app
(the article behind edgeprobe): from its configuration, from the wire, or both.

--distribution-id ID reads the distribution (GetDistributionConfig) and the
cache, origin request and response headers policies its cache behaviors
reference (managed policies are resolved from a built-in table when the API
does not return them), and checks the default and every ordered cache
behavior: all seven HTTP methods allowed, redirect-to-https, TTLs that do not
cache dynamic pages (MinTTL/DefaultTTL 0) but still let the edge revalidate
(MaxTTL > 0), cookies and query strings forwarded, an ACM certificate from
us-east-1 with TLSv1.2_2021, HTTP/2 and HTTP/3, IPv6, compression, HTTPS to
the origin with sensible keep-alive and read timeouts, and Server-Timing in a
response headers policy. AWS access is the SDK's default chain;
AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_CLOUDFRONT are honoured, --endpoint
overrides them. It needs only cloudfront:GetDistributionConfig,
GetCachePolicy, GetOriginRequestPolicy and GetResponseHeadersPolicy.

--url https://SITE/PAGE checks from the wire, with a dynamic page: plain HTTP
answers with a redirect to HTTPS (and what it costs), OPTIONS passes the edge
(POST, PUT, PATCH and DELETE only to --method-path, a path safe to receive
them; never by default), the origin sends Last-Modified or ETag and answers
a conditional GET with a fast 304, what X-Cache says on repeated requests
(RefreshHit: TTL 0 revalidation works; Hit on a dynamic page is a finding),
TLS version and ALPN at the edge and at the origin, and — with --echo-path,
a path whose answer shows the request — that a cookie and a query string
reach the origin. Give the origin with --origin-url (e.g. the ALB's URL) or
--connect-to ALB (dial it, keeping the site's name for Host and SNI).

Findings are grouped by severity (critical, high, medium, low, info), each
with the setting's path, what it is, what it should be, why, and the fix.
docs/audit.md lists every check.

Exit status: 0 nothing of severity high or above, 1 something high or
critical was found (or the distribution could not be read), 2 usage error.`

const auditExample = `  probe audit --distribution-id E2QWRUHAPOMQZL
  probe audit --url https://www.example.com/account --connect-to my-alb-123.eu-west-1.elb.amazonaws.com
  probe audit --url https://www.example.com/ --origin-url https://origin.example.com --echo-path /echo --method-path /audit-sink
  probe audit --distribution-id E2QWRUHAPOMQZL --url https://www.example.com/ --format json`

func newAuditCommand(a *app) *cobra.Command {
	f := &auditFlags{}
	cmd := &cobra.Command{
		Use:     "audit --distribution-id ID | --url URL",
		Short:   "Check a CloudFront distribution's setup for a dynamic site, from its config and from the wire",
		Long:    auditLong,
		Example: auditExample,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runAudit(cmd, a, f) },
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.distributionID, "distribution-id", "", "CloudFront distribution `ID` to read and check")
	fl.StringVar(&f.url, "url", "", "https:// `URL` of a dynamic page as viewers reach it, to check from the wire")
	fl.StringVar(&f.originURL, "origin-url", "", "`URL` of the origin reached straight (e.g. https://my-alb-123...)")
	fl.StringVar(&f.connectTo, "connect-to", "", "`HOST[:PORT]` to dial for the origin, keeping the URL's host for Host and SNI")
	fl.StringVar(&f.httpURL, "http-url", "", "plain-HTTP `URL` to check the redirect at (default: --url with http:// and no port)")
	fl.StringVar(&f.echoPath, "echo-path", "", "`PATH` whose answer shows the request, to see cookies and query strings reach the origin")
	fl.StringVar(&f.methodPath, "method-path", "", "`PATH` safe to receive POST, PUT, PATCH and DELETE (without it only OPTIONS is sent)")
	fl.IntVar(&f.requests, "requests", 3, "GETs of --url to read the edge's X-Cache from")
	fl.StringVar(&f.format, "format", "table", "`FORMAT` of the report: table or json")
	fl.BoolVar(&f.stateless, "stateless", false, "the app keeps no session in cookies: cookies not forwarded is not a finding")
	fl.StringVar(&f.endpoint, "endpoint", "", "CloudFront API endpoint `URL` (an emulator); default: the SDK's")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM `FILE` of extra trusted CA certificates")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify certificates")
	fl.StringVar(&f.dnsServer, "dns-server", "", "resolver `IP:PORT` to ask instead of the system's")
	fl.DurationVar(&f.timeout, "timeout", httptrace.DefaultTimeout, "limit per request")
	return cmd
}

func (f *auditFlags) wireOptions() (audit.WireOptions, error) {
	o := audit.WireOptions{
		URL: f.url, HTTPURL: f.httpURL, OriginURL: f.originURL, ConnectTo: f.connectTo,
		EchoPath: f.echoPath, MethodPath: f.methodPath, Requests: f.requests,
		Probe: httptrace.Options{
			InsecureSkipVerify: f.insecure, Timeout: f.timeout, DNSServer: f.dnsServer,
			UserAgent: "edgeprobe-audit",
		},
	}
	if f.caFile != "" {
		pool, err := httptrace.LoadCAFile(f.caFile)
		if err != nil {
			return o, usageErrorf("--ca-file: %v", err)
		}
		o.Probe.RootCAs = pool
	}
	if err := o.Validate(); err != nil {
		return o, usageErrorf("%v", err)
	}
	return o, nil
}

func runAudit(cmd *cobra.Command, a *app, f *auditFlags) error {
	if f.format != "table" && f.format != "json" {
		return usageErrorf("--format %q: want table or json", f.format)
	}
	if f.distributionID == "" && f.url == "" {
		return usageErrorf("audit needs --distribution-id ID, --url URL or both")
	}
	if f.url == "" {
		for _, name := range []string{"origin-url", "connect-to", "http-url", "echo-path", "method-path"} {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--%s needs --url", name)
			}
		}
	}
	if f.requests < 1 || f.requests > 20 {
		return usageErrorf("--requests %d: want 1 to 20", f.requests)
	}
	var wopts audit.WireOptions
	if f.url != "" {
		var err error
		if wopts, err = f.wireOptions(); err != nil {
			return err
		}
	}

	ctx := cmd.Context()
	report := &audit.Report{}
	var readErr error
	if f.distributionID != "" {
		awsCfg, err := awsConfig(ctx)
		if err != nil {
			return err
		}
		r, err := audit.Distribution(ctx, audit.NewClient(awsCfg, f.endpoint), f.distributionID, audit.ConfigOptions{Stateless: f.stateless})
		if err != nil {
			readErr = err
			if f.url == "" {
				return failedErrorf("%v", err)
			}
			a.log.Error("distribution not audited", "err", err)
		} else {
			report.Merge(r)
		}
	}
	if f.url != "" {
		r, err := audit.Wire(ctx, wopts)
		if err != nil {
			return usageErrorf("%v", err)
		}
		report.Merge(r)
	}
	report.Sort()

	var werr error
	if f.format == "json" {
		werr = audit.WriteJSON(a.stdout, report)
	} else {
		opts := a.tableOptions()
		werr = audit.WriteText(a.stdout, report, audit.TextOptions{Color: opts.Color, Width: opts.Width})
	}
	if werr != nil {
		return failedErrorf("write report: %v", werr)
	}
	switch {
	case report.Failed():
		n := report.Count(audit.Critical) + report.Count(audit.High)
		return failedErrorf("audit found %d finding(s) of severity high or above", n)
	case readErr != nil:
		return failedErrorf("%v", readErr)
	}
	return nil
}
