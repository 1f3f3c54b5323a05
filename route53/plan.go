// Package route53 manages Route 53 health checks that mirror the agent's
// targets (one per target × role, tagged as edgeprobe's) and holds their
// latency figures (AWS/Route53 ConnectionTime, SSLHandshakeTime,
// TimeToFirstByte) against the agent's own CloudWatch metrics.
//
// The flow is Plan (pure: config → checks), Resolve (fills the IP address of
// checks that reach a load balancer by name), then Create, List, Delete or
// Compare against the API. Everything that real Route 53 would refuse is
// refused by Validate first: neither the SDK nor the emulator checks it.
package route53

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// CheckerRegions are the regions Route 53 runs health checkers in (the
// HealthCheckRegion enum).
var CheckerRegions = []string{
	"us-east-1", "us-west-1", "us-west-2", "eu-west-1",
	"ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1",
}

// DefaultRegions is one checker region per continent with most users. The
// price of a check does not depend on its regions, but the load on the
// endpoint does (every region runs several checkers), and three is the
// minimum Route 53 accepts.
var DefaultRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-1"}

// Defaults of PlanOptions.
const (
	DefaultRequestInterval  = 30
	DefaultFailureThreshold = 3
)

// Tag keys that mark a check as edgeprobe's. List, Delete and Create touch
// only checks whose TagManaged is "true".
const (
	TagName    = "Name"
	TagTarget  = "edgeprobe:target"
	TagRole    = "edgeprobe:role"
	TagManaged = "edgeprobe:managed"
	// ReferencePrefix starts every CallerReference this package makes.
	ReferencePrefix = "edgeprobe-"
)

// OriginMode says how a role that dials another host than the site's
// (connect_to, usually the ALB) becomes a health check.
type OriginMode string

const (
	// OriginIP keeps the site's host name as FullyQualifiedDomainName (so
	// Route 53 sends it as Host and SNI, as the agent does) and points the
	// check at one address of the connect_to name, resolved when the plan is
	// made. ALB addresses change: run `create` again to follow them.
	OriginIP OriginMode = "ip"
	// OriginName makes connect_to's name the FullyQualifiedDomainName:
	// Route 53 resolves it itself at every interval, but sends it as Host and
	// SNI instead of the site's name.
	OriginName OriginMode = "name"
)

// PlanOptions are the settings the config does not hold.
type PlanOptions struct {
	// Regions are 3 to 8 of CheckerRegions; empty means DefaultRegions.
	Regions []string
	// RequestInterval is 10 or 30 seconds; 0 means 30. Fixed at creation.
	RequestInterval int32
	// FailureThreshold is 1 to 10; 0 means 3.
	FailureThreshold int32
	// Target limits the plan to one target name ("" = all).
	Target string
	// OriginMode is OriginIP (default) or OriginName.
	OriginMode OriginMode
}

// Settings are a health check's HealthCheckConfig as far as edgeprobe sets
// it. MeasureLatency, RequestInterval and Type, and whether IPAddress is
// set at all, cannot change after creation.
type Settings struct {
	Type             string   `json:"type"`
	FQDN             string   `json:"fqdn,omitempty"`
	IPAddress        string   `json:"ip_address,omitempty"`
	Port             int32    `json:"port"`
	ResourcePath     string   `json:"resource_path"`
	Regions          []string `json:"regions"`
	RequestInterval  int32    `json:"request_interval"`
	FailureThreshold int32    `json:"failure_threshold"`
	MeasureLatency   bool     `json:"measure_latency"`
	EnableSNI        bool     `json:"enable_sni"`
}

// Check is one planned health check: one way (role) into one target.
type Check struct {
	Target string `json:"target"`
	Role   string `json:"role"`
	URL    string `json:"url"`
	Settings
	// ResolveHost is the name whose address becomes IPAddress (OriginIP with
	// a connect_to name); Resolve fills IPAddress and ResolvedIPs.
	ResolveHost string `json:"resolve_host,omitempty"`
	// ResolvedIPs are all addresses ResolveHost had; an existing check whose
	// IPAddress is one of them is left alone.
	ResolvedIPs     []string          `json:"resolved_ips,omitempty"`
	CallerReference string            `json:"caller_reference"`
	Tags            map[string]string `json:"tags"`
	// AWSEndpoint: priced as an AWS endpoint (a load balancer name under
	// elb.amazonaws.com); everything else is priced as non-AWS.
	AWSEndpoint bool     `json:"aws_endpoint"`
	Warnings    []string `json:"warnings,omitempty"`

	job *probe.Job
}

// Key is "target/role".
func (c *Check) Key() string { return c.Target + "/" + c.Role }

// ValidationError lists every setting real Route 53 would refuse. Nothing
// has been sent when it is returned.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string { return strings.Join(e.Problems, "; ") }

// ErrNoTarget is returned by Plan when PlanOptions.Target names no target.
var ErrNoTarget = errors.New("no such target in the config")

// Plan turns every target × role of cfg into a health check: HTTPS or
// HTTP from the URL's scheme, the URL's port (connect_to's when it names
// one), its path and query as ResourcePath, MeasureLatency and (HTTPS) SNI
// on. It makes no call and no lookup; checks with ResolveHost need Resolve
// before Create. An invalid option or check is a *ValidationError.
func Plan(cfg *probe.Config, opts PlanOptions) ([]Check, error) {
	opts = opts.withDefaults()
	var problems []string
	problems = append(problems, validateOptions(opts)...)
	jobs, err := cfg.Jobs()
	if err != nil {
		return nil, err
	}
	var checks []Check
	for _, j := range jobs {
		if opts.Target != "" && j.Target != opts.Target {
			continue
		}
		c, err := planJob(j, opts)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: %v", j.Target, j.Role, err))
			continue
		}
		checks = append(checks, c)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	if opts.Target != "" && len(checks) == 0 {
		return nil, fmt.Errorf("target %q: %w", opts.Target, ErrNoTarget)
	}
	for i := range checks {
		if p := checks[i].Validate(); len(p) > 0 {
			problems = append(problems, p...)
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return checks, nil
}

func (o PlanOptions) withDefaults() PlanOptions {
	if len(o.Regions) == 0 {
		o.Regions = DefaultRegions
	}
	o.Regions = slices.Clone(o.Regions)
	if o.RequestInterval == 0 {
		o.RequestInterval = DefaultRequestInterval
	}
	if o.FailureThreshold == 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.OriginMode == "" {
		o.OriginMode = OriginIP
	}
	return o
}

func validateOptions(o PlanOptions) []string {
	var p []string
	p = append(p, validateRegions(o.Regions)...)
	if o.RequestInterval != 10 && o.RequestInterval != 30 {
		p = append(p, fmt.Sprintf("request interval %d s: Route 53 allows 10 or 30", o.RequestInterval))
	}
	if o.FailureThreshold < 1 || o.FailureThreshold > 10 {
		p = append(p, fmt.Sprintf("failure threshold %d: Route 53 allows 1 to 10", o.FailureThreshold))
	}
	if o.OriginMode != OriginIP && o.OriginMode != OriginName {
		p = append(p, fmt.Sprintf("origin mode %q: want %q or %q", o.OriginMode, OriginIP, OriginName))
	}
	return p
}

func validateRegions(regions []string) []string {
	var p []string
	seen := map[string]bool{}
	for _, r := range regions {
		switch {
		case !slices.Contains(CheckerRegions, r):
			p = append(p, fmt.Sprintf("region %q is not a Route 53 checker region (%s)", r, strings.Join(CheckerRegions, ", ")))
		case seen[r]:
			p = append(p, fmt.Sprintf("region %q is listed twice", r))
		}
		seen[r] = true
	}
	if n := len(seen); n < 3 || n > len(CheckerRegions) {
		p = append(p, fmt.Sprintf("%d regions: Route 53 needs 3 to %d (%s)", n, len(CheckerRegions), strings.Join(CheckerRegions, ", ")))
	}
	return p
}

// Validate returns what real Route 53 would refuse in c (empty when
// nothing), named by the check's target/role.
func (c *Check) Validate() []string {
	var p []string
	add := func(format string, args ...any) {
		p = append(p, c.Key()+": "+fmt.Sprintf(format, args...))
	}
	for _, msg := range validateRegions(c.Regions) {
		add("%s", msg)
	}
	if c.Type != string(types.HealthCheckTypeHttp) && c.Type != string(types.HealthCheckTypeHttps) {
		add("type %q: want HTTP or HTTPS", c.Type)
	}
	if c.RequestInterval != 10 && c.RequestInterval != 30 {
		add("request interval %d s: Route 53 allows 10 or 30", c.RequestInterval)
	}
	if c.FailureThreshold < 1 || c.FailureThreshold > 10 {
		add("failure threshold %d: Route 53 allows 1 to 10", c.FailureThreshold)
	}
	if c.FQDN == "" && c.IPAddress == "" && c.ResolveHost == "" {
		add("no host name and no IP address")
	}
	if len(c.FQDN) > 255 {
		add("host name is %d characters; Route 53 allows 255", len(c.FQDN))
	}
	if len(c.ResourcePath) > 255 {
		add("path and query are %d characters; Route 53 allows 255", len(c.ResourcePath))
	}
	if c.Port < 1 || c.Port > 65535 {
		add("port %d out of range", c.Port)
	}
	if c.IPAddress != "" {
		if err := checkPublic(c.IPAddress); err != nil {
			add("%v", err)
		}
	}
	if n := len(c.CallerReference); n < 1 || n > 64 {
		add("caller reference is %d characters; Route 53 allows 1 to 64", n)
	}
	for k, v := range c.Tags {
		if len(k) > 128 || len(v) > 256 {
			add("tag %s is longer than Route 53 allows (key 128, value 256)", k)
		}
	}
	return p
}

// planJob maps one job: the host the agent sends (Host/SNI) and the host it
// dials differ only with connect_to (or a role's host override).
func planJob(j *probe.Job, opts PlanOptions) (Check, error) {
	u, err := url.Parse(j.URL)
	if err != nil {
		return Check{}, fmt.Errorf("url: %v", err)
	}
	c := Check{Target: j.Target, Role: j.Role, URL: j.URL, job: j}
	s := &c.Settings
	var defaultPort int32
	switch strings.ToLower(u.Scheme) {
	case "https":
		s.Type, defaultPort = string(types.HealthCheckTypeHttps), 443
	case "http":
		s.Type, defaultPort = string(types.HealthCheckTypeHttp), 80
	default:
		return Check{}, fmt.Errorf("scheme %q: Route 53 checks http and https only", u.Scheme)
	}
	s.Port = defaultPort
	if p := u.Port(); p != "" {
		if s.Port, err = parsePort(p); err != nil {
			return Check{}, err
		}
	}
	s.ResourcePath = cmp.Or(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		s.ResourcePath += "?" + u.RawQuery
	}
	s.Regions = slices.Clone(opts.Regions)
	slices.SortFunc(s.Regions, func(a, b string) int {
		return slices.Index(CheckerRegions, a) - slices.Index(CheckerRegions, b)
	})
	s.RequestInterval, s.FailureThreshold, s.MeasureLatency = opts.RequestInterval, opts.FailureThreshold, true

	// The name the agent sends as Host and SNI, and the host it dials.
	siteHost := u.Hostname()
	if h := j.Options.Host; h != "" {
		siteHost = hostOnly(h)
	}
	dialHost := u.Hostname()
	if ct := j.Options.ConnectTo; ct != "" {
		host, port := splitHostPort(ct)
		dialHost = host
		if port != "" {
			p, err := parsePort(port)
			if err != nil {
				return Check{}, fmt.Errorf("connect_to: %v", err)
			}
			if p != s.Port && p != defaultPort {
				c.Warnings = append(c.Warnings, fmt.Sprintf("Route 53 sends Host %s:%d (the port it dials), the agent sends %s", siteHost, p, u.Host))
			}
			s.Port = p
		}
	}
	siteIP, siteIsIP := parseIP(siteHost)
	dialIP, dialIsIP := parseIP(dialHost)
	switch {
	case dialIsIP:
		s.IPAddress = dialIP.String()
		if !siteIsIP {
			s.FQDN = siteHost
		}
	case strings.EqualFold(dialHost, siteHost):
		s.FQDN = siteHost
	case opts.OriginMode == OriginName:
		s.FQDN = dialHost
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"Route 53 sends Host and SNI %s, not %s as the agent does: listener rules that match the host name do not apply (origin mode name)",
			dialHost, siteHost))
	default: // OriginIP
		s.FQDN = siteHost
		c.ResolveHost = dialHost
		if siteIsIP {
			s.FQDN = siteIP.String()
		}
	}
	s.EnableSNI = s.Type == string(types.HealthCheckTypeHttps) && s.FQDN != "" && !isIP(s.FQDN)
	c.AWSEndpoint = isAWSLoadBalancer(dialHost)

	if m := j.Options.Method; m != "" && m != "GET" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("Route 53 sends GET, the agent sends %s", m))
	}
	if len(j.Options.Header) > 0 {
		names := make([]string, 0, len(j.Options.Header))
		for k := range j.Options.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		c.Warnings = append(c.Warnings, "Route 53 cannot send the configured headers ("+strings.Join(names, ", ")+")")
	}

	c.CallerReference = callerReference(&c, opts.OriginMode)
	c.Tags = map[string]string{
		TagName:    "edgeprobe " + c.Key(),
		TagTarget:  c.Target,
		TagRole:    c.Role,
		TagManaged: "true",
	}
	return c, nil
}

// callerReference is stable for the same target, role and settings, so a
// create that is repeated (or retried after a crash) asks Route 53 for the
// same check. The resolved address is left out: it changes on its own.
func callerReference(c *Check, mode OriginMode) string {
	h := sha256.New()
	s := c.Settings
	fields := []string{
		c.Target, c.Role, s.Type, s.FQDN, c.ResolveHost, string(mode),
		strconv.Itoa(int(s.Port)), s.ResourcePath, strings.Join(s.Regions, ","),
		strconv.Itoa(int(s.RequestInterval)), strconv.Itoa(int(s.FailureThreshold)),
		strconv.FormatBool(s.MeasureLatency), strconv.FormatBool(s.EnableSNI),
	}
	if c.ResolveHost == "" {
		fields = append(fields, s.IPAddress)
	}
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return ReferencePrefix + hex.EncodeToString(h.Sum(nil))[:32]
}

// Resolve looks up the address of every check with a ResolveHost, with the
// target's own resolver settings (dns_server, ip_version), and sets
// IPAddress to the first IPv4 address (IPv6 when there is none). An
// address Route 53 cannot check (private, reserved) is an error: an
// internal load balancer cannot be health-checked from the internet.
func Resolve(ctx context.Context, checks []Check) error {
	var errs []error
	for i := range checks {
		c := &checks[i]
		if c.ResolveHost == "" {
			continue
		}
		opts := httptrace.Options{}
		u := "https://" + c.ResolveHost + "/"
		if c.job != nil {
			opts, u = c.job.Options, c.job.URL
		} else {
			opts.ConnectTo = c.ResolveHost
		}
		addrs, err := httptrace.Addresses(ctx, u, opts, 8)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: resolve %s: %w", c.Key(), c.ResolveHost, err))
			continue
		}
		var v4, v6 []string
		for _, a := range addrs {
			if a.IP.Is4() {
				v4 = append(v4, a.IP.String())
			} else {
				v6 = append(v6, a.IP.String())
			}
		}
		all := append(v4, v6...)
		if len(all) == 0 {
			errs = append(errs, fmt.Errorf("%s: %s has no address", c.Key(), c.ResolveHost))
			continue
		}
		c.ResolvedIPs, c.IPAddress = all, all[0]
		if err := checkPublic(c.IPAddress); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s resolves to %w (an internal load balancer?)", c.Key(), c.ResolveHost, err))
			continue
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"checks %s, one address of %s resolved now; load balancer addresses change, run `probe healthchecks create` again to follow them",
			c.IPAddress, c.ResolveHost))
	}
	return errors.Join(errs...)
}

// Config is the HealthCheckConfig sent to CreateHealthCheck.
func (s *Settings) Config() *types.HealthCheckConfig {
	hc := &types.HealthCheckConfig{
		Type:             types.HealthCheckType(s.Type),
		Port:             aws.Int32(s.Port),
		ResourcePath:     aws.String(s.ResourcePath),
		RequestInterval:  aws.Int32(s.RequestInterval),
		FailureThreshold: aws.Int32(s.FailureThreshold),
		MeasureLatency:   aws.Bool(s.MeasureLatency),
		EnableSNI:        aws.Bool(s.EnableSNI),
	}
	if s.FQDN != "" {
		hc.FullyQualifiedDomainName = aws.String(s.FQDN)
	}
	if s.IPAddress != "" {
		hc.IPAddress = aws.String(s.IPAddress)
	}
	for _, r := range s.Regions {
		hc.Regions = append(hc.Regions, types.HealthCheckRegion(r))
	}
	return hc
}

// settingsOf reads back what Route 53 stores.
func settingsOf(hc *types.HealthCheckConfig) Settings {
	if hc == nil {
		return Settings{}
	}
	s := Settings{
		Type:             string(hc.Type),
		FQDN:             aws.ToString(hc.FullyQualifiedDomainName),
		IPAddress:        aws.ToString(hc.IPAddress),
		Port:             aws.ToInt32(hc.Port),
		ResourcePath:     aws.ToString(hc.ResourcePath),
		RequestInterval:  aws.ToInt32(hc.RequestInterval),
		FailureThreshold: aws.ToInt32(hc.FailureThreshold),
		MeasureLatency:   aws.ToBool(hc.MeasureLatency),
		EnableSNI:        aws.ToBool(hc.EnableSNI),
	}
	for _, r := range hc.Regions {
		s.Regions = append(s.Regions, string(r))
	}
	slices.SortFunc(s.Regions, func(a, b string) int {
		return slices.Index(CheckerRegions, a) - slices.Index(CheckerRegions, b)
	})
	return s
}

// specialPrefixes are the ranges Route 53 refuses for IPAddress (RFC 5735,
// RFC 6598, RFC 5156) beyond what netip classifies itself.
var specialPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"2001:db8::/32", "2001:10::/28", "2002::/16", "64:ff9b::/96", "::ffff:0:0/96",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

func checkPublic(s string) error {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("IP address %q is not valid", s)
	}
	bad := !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()
	for _, p := range specialPrefixes {
		bad = bad || p.Contains(ip)
	}
	if bad {
		return fmt.Errorf("%s, an address Route 53 cannot check (private, shared or reserved)", ip)
	}
	return nil
}

func isAWSLoadBalancer(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.HasSuffix(h, ".elb.amazonaws.com") || strings.HasSuffix(h, ".elb.amazonaws.com.cn")
}

func parsePort(p string) (int32, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range", p)
	}
	return int32(n), nil
}

// splitHostPort splits "host", "host:port", "[v6]:port" or a bare IPv6.
func splitHostPort(s string) (host, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		return h, p
	}
	return strings.Trim(s, "[]"), ""
}

func hostOnly(s string) string { h, _ := splitHostPort(s); return h }

func parseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return ip.Unmap(), err == nil
}

func isIP(s string) bool { _, ok := parseIP(s); return ok }
