package testkit

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// The peers: curl and prometheus-blackbox-exporter measure the same
// requests as edgeprobe in the accuracy benchmark and the multi-location
// lab. What follows turns their numbers into edgeprobe's phases, as
// docs/phases.md defines them.

// CurlFormat is the curl -w format CurlPhases reads: curl's cumulative
// marks, in seconds.
const CurlFormat = "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total}"

// CurlPhases turns what curl printed for CurlFormat into the contract's
// phases: dns = namelookup, connect = connect − namelookup, tls =
// appconnect − connect, ttfb = starttransfer − pretransfer, transfer =
// total − starttransfer, total = total, first_byte = starttransfer.
func CurlPhases(out []byte) (map[string]time.Duration, error) {
	f := strings.Fields(string(out))
	if len(f) != 6 {
		return nil, fmt.Errorf("curl printed %q", out)
	}
	v := make([]time.Duration, 6)
	for i, s := range f {
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("curl printed %q: %w", out, err)
		}
		v[i] = time.Duration(sec * float64(time.Second))
	}
	return map[string]time.Duration{
		httptrace.PhaseDNS: v[0], httptrace.PhaseConnect: v[1] - v[0], httptrace.PhaseTLS: v[2] - v[1],
		httptrace.PhaseTTFB: v[4] - v[3], httptrace.PhaseTransfer: v[5] - v[4], httptrace.PhaseTotal: v[5],
		httptrace.PhaseFirstByte: v[4],
	}, nil
}

// WithResolvConf returns the argv that runs argv with resolvConf bind-mounted
// on /etc/resolv.conf, in a private mount namespace (unshare): nothing
// outside it changes. Needs root.
func WithResolvConf(resolvConf string, argv ...string) []string {
	const script = `mount --bind "$0" /etc/resolv.conf && exec "$@"`
	return append([]string{"unshare", "--mount", "--", "sh", "-c", script, resolvConf}, argv...)
}

// BlackboxModule is one http module of a blackbox exporter configuration.
type BlackboxModule struct {
	Name    string
	Timeout time.Duration
	CAFile  string
	// DisableHTTP2 writes enable_http2: false (the exporter's default is
	// HTTP/2 when the server offers it).
	DisableHTTP2 bool
	// ServerName, when set, is sent as Host and SNI (the target URL then
	// names the address to dial), as edgeprobe's connect_to does.
	ServerName string
}

// BlackboxConfig is a blackbox exporter configuration with the modules, all
// of them IPv4 only, without fallback.
func BlackboxConfig(modules ...BlackboxModule) []byte {
	var b strings.Builder
	b.WriteString("modules:\n")
	for _, m := range modules {
		fmt.Fprintf(&b, "  %s:\n    prober: http\n    timeout: %s\n    http:\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n", m.Name, m.Timeout)
		if m.DisableHTTP2 {
			b.WriteString("      enable_http2: false\n")
		}
		if m.ServerName == "" {
			fmt.Fprintf(&b, "      tls_config: {ca_file: %q}\n", m.CAFile)
			continue
		}
		fmt.Fprintf(&b, "      headers: {Host: %q}\n      tls_config: {ca_file: %q, server_name: %q}\n", m.ServerName, m.CAFile, m.ServerName)
	}
	return []byte(b.String())
}

// BlackboxProbe asks the blackbox exporter at base ("http://host:port") for
// one probe of target with module, and returns the gauges it answered
// (ParseGauges); a probe that did not succeed is an error.
func BlackboxProbe(ctx context.Context, client *http.Client, base, module, target string) (map[string]float64, error) {
	u := base + "/probe?module=" + module + "&target=" + url.QueryEscape(target)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m, err := ParseGauges(resp.Body)
	if err != nil {
		return nil, err
	}
	if m[`probe_success`] != 1 {
		return nil, fmt.Errorf("blackbox probe of %s failed: %v", target, m)
	}
	return m, nil
}

// BlackboxPhases reads a blackbox exporter probe's gauges as the contract's
// phases: dns = probe_dns_lookup_time_seconds, connect, tls and transfer =
// probe_http_duration_seconds of the same phase, ttfb = its processing
// (which counts from the connection, so it includes writing the request),
// total = probe_duration_seconds. It has no first_byte.
func BlackboxPhases(gauges map[string]float64) map[string]time.Duration {
	d := func(k string) time.Duration { return time.Duration(gauges[k] * float64(time.Second)) }
	return map[string]time.Duration{
		httptrace.PhaseDNS:      d(`probe_dns_lookup_time_seconds`),
		httptrace.PhaseConnect:  d(`probe_http_duration_seconds{phase="connect"}`),
		httptrace.PhaseTLS:      d(`probe_http_duration_seconds{phase="tls"}`),
		httptrace.PhaseTTFB:     d(`probe_http_duration_seconds{phase="processing"}`),
		httptrace.PhaseTransfer: d(`probe_http_duration_seconds{phase="transfer"}`),
		httptrace.PhaseTotal:    d(`probe_duration_seconds`),
	}
}
