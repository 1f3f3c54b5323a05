package demo

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Config defaults for the demo agent.
const (
	DefaultConfigInterval = 2 * time.Second
	maxConfigTimeout      = 5 * time.Second
)

// ConfigYAML returns an agent config (probe/config.go's schema) that probes
// the site both ways: target "shop" with role cdn (EdgeURL, through the
// edge) and role origin (same URL, connect_to the ALB), conditional requests
// and Server-Timing on, trusting the demo CA and asking the demo DNS server.
// interval ≤ 0 takes DefaultConfigInterval; an empty jsonlPath or listen
// leaves that exporter out.
func (s *Site) ConfigYAML(interval time.Duration, jsonlPath, listen string) []byte {
	if interval <= 0 {
		interval = DefaultConfigInterval
	}
	// The timeout must not exceed the interval.
	timeout := min(interval, maxConfigTimeout)
	q := strconv.Quote // a Go quoted string is a valid YAML double-quoted scalar
	var b bytes.Buffer
	fmt.Fprintf(&b, `# edgeprobe demo agent: one site, two ways in (package demo).
#   cdn:    through the CloudFront-like edge %s (%v each way from here,
#           %v each way over the backbone to the ALB)
#   origin: straight to the ALB %s (%v each way)
location: demo
defaults:
  interval: %v
  timeout: %v
targets:
  - name: shop
    url: %s
    roles:
      cdn: {}
      origin:
        connect_to: %s
    expect:
      status: [200]
    conditional: true
    server_timing: true
    ca_file: %s
    dns_server: %s
`, s.opts.POP, s.opts.EdgeOneWay, s.opts.BackboneOneWay, ALBHost, s.opts.OriginOneWay,
		interval, timeout,
		q(s.EdgeURL()), q(s.OriginConnectTo()), q(s.CAFile()), q(s.DNSServer()))
	if listen == "" && jsonlPath == "" {
		b.WriteString("exporters: {}\n")
		return b.Bytes()
	}
	b.WriteString("exporters:\n")
	if listen != "" {
		fmt.Fprintf(&b, "  prometheus:\n    listen: %s\n", q(listen))
	}
	if jsonlPath != "" {
		fmt.Fprintf(&b, "  jsonl:\n    path: %s\n", q(jsonlPath))
	}
	return b.Bytes()
}
