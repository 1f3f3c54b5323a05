package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
	"github.com/edgeprobe/edgeprobe/report"
)

// checkFlags are the flags of probe check.
type checkFlags struct {
	count        int
	interval     time.Duration
	format       string
	caFile       string
	connectTo    string
	save         string
	host         string
	dnsServer    string
	ipVersion    string
	insecure     bool
	timeout      time.Duration
	method       string
	headers      []string
	body         string
	conditional  bool
	reuse        bool
	serverTiming bool
	maxRedirects int
	noFollow     bool
	location     string
	allAddresses bool
}

const checkLong = `Probe each URL --count times, each time on a new connection, and print a
summary: per URL a waterfall of the median probe, a table of p50/p90/p99 per
phase side by side with the p50 difference origin→CDN, cache results and
POPs, failures, and warnings for what a CDN in front of a dynamic site needs
(HTTP redirected to HTTPS, Last-Modified or ETag on a 200, 304 on
revalidation and a fast one, a certificate far from expiry, cache hits).

Arguments are URLs or ROLE=URL. A plain URL is named after its host; ROLE=URL
arguments are taken as ways into one site (named after the first non-origin
URL's host) and an "origin" group is compared with a "cdn" group:
  probe check origin=https://alb-123.eu-west-1.elb.amazonaws.com/ cdn=https://www.example.com/

With --connect-to HOST[:PORT] each plain URL is probed BOTH ways: role "cdn"
as the URL resolves (through the CDN), and role "origin" dialling HOST while
keeping the URL's host name for Host and TLS SNI (a load balancer behind a CDN
serves the site's certificate, not one for its own DNS name). That is the
origin-vs-CloudFront comparison in one command:
  probe check https://www.example.com/ --connect-to alb-123.eu-west-1.elb.amazonaws.com
--connect-to applies to origin=URL arguments too.

Rounds interleave: round i probes every URL (and role) once, then waits
--interval, so drift over time hits every side alike. Ctrl-C stops early and
still prints the summary of what was measured.

Phases (ms in the table, seconds in JSON), of the final request on its new
connection:
  dns         lookup start → done (0 for an IP literal)
  connect     TCP connect start of the attempt that succeeded → established
  tls         TLS handshake start → done
  ttfb        request fully written → first response byte (the server's wait)
  transfer    first response byte → last body byte read
  total       start → last body byte read, over all redirect hops
  first_byte  start → first response byte of the final hop, over all hops
              (curl's time_starttransfer)
With redirects followed, dns … transfer are the final hop's.

Output: --format table (default) for a person; json for the summary;
jsonl for one object per probe as it arrives (the documented sample form,
the same objects --save writes and the agent's JSONL sink writes).

Exit status: 0 every probe succeeded, 1 a probe failed, 2 usage error.`

const checkExample = `  probe check https://www.example.com/
  probe check https://www.example.com/ --connect-to my-alb-123.eu-west-1.elb.amazonaws.com --count 20
  probe check http://www.example.com/ --conditional --format json
  probe check https://localhost:8443/ --ca-file dev-ca.pem --format jsonl --save samples.jsonl`

func newCheckCommand(a *app) *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:     "check URL|ROLE=URL...",
		Short:   "Probe URLs a few times and summarize where the time goes",
		Long:    checkLong,
		Example: checkExample,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("check needs at least one URL")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), a, f, cmd.Flags().Changed("method"), args)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false // in the order a user reaches for them
	fl.IntVar(&f.count, "count", 5, "probes per URL (and role)")
	fl.DurationVar(&f.interval, "interval", time.Second, "pause between rounds")
	fl.StringVar(&f.format, "format", "table", "`FORMAT` of the output: table, json (the summary) or jsonl (one object per probe, as it arrives)")
	fl.StringVar(&f.connectTo, "connect-to", "", "`HOST[:PORT]` to dial for the origin way, keeping the URL's host for Host and SNI (see above)")
	fl.StringVar(&f.save, "save", "", "also write every probe as JSONL to `FILE` (input for probe compare)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM `FILE` of extra trusted CA certificates")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify the certificate (reported in the samples and warned about)")
	fl.StringVar(&f.host, "host", "", "Host header and TLS SNI `NAME` instead of the URL's host")
	fl.StringVar(&f.dnsServer, "dns-server", "", "resolver `IP:PORT` to ask instead of the system's")
	fl.StringVar(&f.ipVersion, "ip-version", "", "`POLICY`: ip4 or ip6 (only), prefer4 or prefer6 (default: the resolver's order)")
	fl.BoolVar(&f.allAddresses, "all-addresses", false, "probe every resolved address (at most 4 per IP family), labelled ipv4-0, ipv6-0, …")
	fl.DurationVar(&f.timeout, "timeout", httptrace.DefaultTimeout, "limit per probe, all redirect hops included")
	fl.StringVar(&f.method, "method", http.MethodGet, "HTTP `METHOD` (POST when --body is given)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "extra request header 'Name: value' (repeatable)")
	fl.StringVar(&f.body, "body", "", "request body")
	fl.BoolVar(&f.conditional, "conditional", false, "after a 200 with Last-Modified or ETag, revalidate (If-Modified-Since / If-None-Match) and time the 304")
	fl.BoolVar(&f.reuse, "reuse", false, "also time a warm second request on the same (kept-alive) connection")
	fl.BoolVar(&f.serverTiming, "server-timing", false, "send Pragma: server-timing so CloudFront adds its Server-Timing header")
	fl.IntVar(&f.maxRedirects, "max-redirects", httptrace.DefaultMaxRedirects, "redirects to follow (0: none, as --no-follow)")
	fl.BoolVar(&f.noFollow, "no-follow", false, "report a 3xx answer itself instead of following it")
	fl.StringVar(&f.location, "location", "", "`NAME` of where this runs, for the samples (default $EDGEPROBE_LOCATION, else the host name)")
	return cmd
}

// group is one way into one target: what a round probes once.
type group struct {
	target, role, url, address string
	opts                       httptrace.Options
}

func (g group) label() string {
	return strings.Join(slices.DeleteFunc([]string{g.role, g.address, g.url}, func(s string) bool { return s == "" }), " ")
}

func runCheck(ctx context.Context, a *app, f *checkFlags, methodSet bool, args []string) error {
	opts, err := f.options(methodSet)
	if err != nil {
		return err
	}
	groups, err := parseTargets(args, f.connectTo, opts)
	if err != nil {
		return err
	}
	if f.allAddresses {
		groups = expandAddresses(ctx, a, groups)
	}
	location := f.location
	if location == "" {
		location = defaultLocation(a.getenv)
	}

	var save *os.File
	if f.save != "" {
		if save, err = os.Create(f.save); err != nil {
			return usageErrorf("--save: %w", err)
		}
		defer save.Close() // closed and checked below; this covers early returns
	}
	emit := func(s probe.Sample) error {
		if f.format != "jsonl" && save == nil {
			return nil
		}
		line, err := json.Marshal(s)
		if err != nil {
			return failedErrorf("encode sample: %w", err)
		}
		line = append(line, '\n')
		if f.format == "jsonl" {
			if _, err := a.stdout.Write(line); err != nil {
				return failedErrorf("write sample: %w", err)
			}
		}
		if save != nil {
			if _, err := save.Write(line); err != nil {
				return failedErrorf("--save: %w", err)
			}
		}
		return nil
	}

	planned := f.count * len(groups)
	prog := &progress{w: a.stderr, on: a.stderrTTY && planned > 1, total: planned}
	samples, err := measure(ctx, a, groups, f, location, prog, emit)
	prog.clear()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		a.log.Info("interrupted: summarizing what was measured", "probes", len(samples), "planned", planned)
	}
	if save != nil {
		if err := save.Close(); err != nil {
			return failedErrorf("--save: %w", err)
		}
	}

	sum := report.Summarize(samples)
	switch f.format {
	case "table":
		err = report.WriteTable(a.stdout, sum, a.tableOptions())
	case "json":
		err = report.WriteJSON(a.stdout, sum)
	}
	if err != nil {
		return failedErrorf("%w", err)
	}

	if len(samples) == 0 {
		return failedErrorf("interrupted before any probe finished")
	}
	failed := 0
	for i := range samples {
		if !samples[i].Success() {
			failed++
		}
	}
	if failed > 0 {
		return failedErrorf("%d of %d probes failed", failed, len(samples))
	}
	return nil
}

// measure runs the rounds: each probes every group once, then waits the
// interval, so slow drift (time of day, a busy neighbour) hits all groups
// alike. It stops early when ctx is cancelled.
func measure(ctx context.Context, a *app, groups []group, f *checkFlags, location string, prog *progress, emit func(probe.Sample) error) ([]probe.Sample, error) {
	var samples []probe.Sample
	for round := range f.count {
		if round > 0 && !sleep(ctx, f.interval) {
			break
		}
		for _, g := range groups {
			prog.show(len(samples)+1, g.label())
			res := httptrace.Probe(ctx, g.url, g.opts)
			if ctx.Err() != nil {
				// Cut short by Ctrl-C: a measurement of our own interruption.
				return samples, nil
			}
			s := probe.Sample{Target: g.target, Role: g.role, Location: location, Address: g.address, Result: res}
			a.log.Debug("probed", "target", g.target, "role", g.role, "address", g.address, "url", g.url,
				"status", res.Status, "total", res.Timings.Total, "error", res.Err)
			samples = append(samples, s)
			prog.clear() // a jsonl line must not land behind the progress line
			if err := emit(s); err != nil {
				return samples, err
			}
		}
	}
	return samples, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// progress redraws one status line on a terminal.
type progress struct {
	w     io.Writer
	on    bool
	total int
	shown bool
}

func (p *progress) show(i int, label string) {
	if !p.on {
		return
	}
	const maxLabel = 60
	if r := []rune(label); len(r) > maxLabel {
		label = string(r[:maxLabel-1]) + "…"
	}
	fmt.Fprintf(p.w, "\r\x1b[Kprobing %d/%d … %s", i, p.total, label)
	p.shown = true
}

func (p *progress) clear() {
	if p.on && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

func defaultLocation(getenv func(string) string) string {
	if l := getenv("EDGEPROBE_LOCATION"); l != "" {
		return l
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

// options turns the flags into probe options, rejecting what cannot work.
func (f *checkFlags) options(methodSet bool) (httptrace.Options, error) {
	switch {
	case f.count < 1:
		return httptrace.Options{}, usageErrorf("--count %d: want at least 1", f.count)
	case f.interval < 0:
		return httptrace.Options{}, usageErrorf("--interval %s: want 0 or more", f.interval)
	case f.timeout <= 0:
		return httptrace.Options{}, usageErrorf("--timeout %s: want more than 0", f.timeout)
	case f.maxRedirects < 0:
		return httptrace.Options{}, usageErrorf("--max-redirects %d: want 0 or more", f.maxRedirects)
	}
	switch f.format {
	case "table", "json", "jsonl":
	default:
		return httptrace.Options{}, usageErrorf("--format %q: want table, json or jsonl", f.format)
	}
	opts := httptrace.Options{
		Method: f.method, Host: f.host, DNSServer: f.dnsServer, IPVersion: f.ipVersion,
		InsecureSkipVerify: f.insecure, Timeout: f.timeout,
		MaxRedirects: f.maxRedirects, NoRedirects: f.noFollow || f.maxRedirects == 0,
		Reuse: f.reuse, Conditional: f.conditional, ServerTiming: f.serverTiming,
	}
	if f.body != "" {
		opts.Body = []byte(f.body)
		if !methodSet {
			opts.Method = http.MethodPost // as curl -d does
		}
	}
	if !isToken(opts.Method) {
		return opts, usageErrorf("--method %q: not an HTTP method", opts.Method)
	}
	if f.host != "" {
		if _, _, err := net.SplitHostPort(f.host); err == nil || strings.ContainsAny(f.host, "/ ") {
			return opts, usageErrorf("--host %q: want a host name without port or path (it is also the TLS SNI)", f.host)
		}
	}
	if f.connectTo != "" {
		if err := checkConnectTo(f.connectTo); err != nil {
			return opts, err
		}
	}
	hdr, err := parseHeaders(f.headers)
	if err != nil {
		return opts, err
	}
	opts.Header = hdr
	if f.caFile != "" {
		pool, err := httptrace.LoadCAFile(f.caFile)
		if err != nil {
			return opts, usageErrorf("--ca-file: %w", err)
		}
		opts.RootCAs = pool
	}
	if err := opts.Validate(); err != nil {
		return opts, usageErrorf("%w", err)
	}
	return opts, nil
}

func checkConnectTo(s string) error {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.ContainsAny(host, "/ ") {
		return usageErrorf("--connect-to %q: want HOST[:PORT]", s)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return usageErrorf("--connect-to %q: port %q is not a number from 1 to 65535", s, port)
		}
	}
	return nil
}

func parseHeaders(lines []string) (http.Header, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	hdr := http.Header{}
	for _, line := range lines {
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || !isToken(name) {
			return nil, usageErrorf("-H %q: want 'Name: value'", line)
		}
		if strings.EqualFold(name, "Host") {
			return nil, usageErrorf("-H %q: use --host NAME, which sets the Host header and TLS SNI together", line)
		}
		hdr.Add(name, strings.TrimSpace(value))
	}
	return hdr, nil
}

// isToken reports whether s is an RFC 9110 token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c >= 0x7f || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// parseTargets turns the arguments into groups, in the order given. With
// connectTo each plain URL becomes two groups, origin first, so the table
// reads origin → cdn.
func parseTargets(args []string, connectTo string, opts httptrace.Options) ([]group, error) {
	type arg struct {
		role, raw, host string
		hasRole         bool
	}
	var parsed []arg
	for _, s := range args {
		role, raw, hasRole := splitRole(s)
		if hasRole && !validRole(role) {
			return nil, usageErrorf("argument %q: role %q: want letters, digits, '-', '_' or '.'", s, role)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return nil, usageErrorf("bad URL %q: want http(s)://host[:port]/path (or ROLE=URL)", raw)
		}
		parsed = append(parsed, arg{role: role, raw: raw, host: u.Hostname(), hasRole: hasRole})
	}
	// ROLE=URL arguments are ways into one site: name it by its public
	// (non-origin) host, so origin and cdn share a target and compare.
	site := ""
	for _, p := range parsed {
		if p.hasRole && p.role != report.RoleOrigin {
			site = p.host
			break
		}
	}
	for _, p := range parsed {
		if p.hasRole && site == "" {
			site = p.host
		}
	}

	var groups []group
	seen := map[[3]string]bool{}
	add := func(g group) error {
		key := [3]string{g.target, g.role, g.url}
		if seen[key] {
			return usageErrorf("%s given twice", strings.TrimSpace(g.role+" "+g.url))
		}
		seen[key] = true
		groups = append(groups, g)
		return nil
	}
	for _, p := range parsed {
		var err error
		switch {
		case p.hasRole:
			o := opts
			if p.role == report.RoleOrigin {
				o.ConnectTo = connectTo
			}
			err = add(group{target: site, role: p.role, url: p.raw, opts: o})
		case connectTo != "":
			origin := opts
			origin.ConnectTo = connectTo
			if err = add(group{target: p.host, role: report.RoleOrigin, url: p.raw, opts: origin}); err == nil {
				err = add(group{target: p.host, role: report.RoleCDN, url: p.raw, opts: opts})
			}
		default:
			err = add(group{target: p.host, url: p.raw, opts: opts})
		}
		if err != nil {
			return nil, err
		}
	}
	return groups, nil
}

// splitRole splits "ROLE=URL"; an "=" after "://" belongs to the URL.
func splitRole(s string) (role, raw string, ok bool) {
	eq, scheme := strings.Index(s, "="), strings.Index(s, "://")
	if eq > 0 && (scheme < 0 || eq < scheme) {
		return s[:eq], s[eq+1:], true
	}
	return "", s, false
}

func validRole(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != ""
}
