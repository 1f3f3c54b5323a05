package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/demo"
	"github.com/edgeprobe/edgeprobe/probe"
	"github.com/edgeprobe/edgeprobe/report"
)

func newDemoCommand(a *app) *cobra.Command {
	var (
		duration, interval time.Duration
		listen             string
	)
	cmd := &cobra.Command{
		Use:   "demo [--duration D]",
		Short: "Run the whole pipeline offline: an app, a caching edge, the agent probing both, the comparison",
		Long: `demo starts, on this machine and offline, a dynamic app behind a
load balancer 40 ms of round trip away (the origin), a CloudFront-like
caching edge 4 ms away with a 20 ms backbone to the origin (TTL 0: every
request is revalidated with If-Modified-Since / If-None-Match), and a DNS
server for their names. It runs the agent against both ways in, serves
/metrics and the status page while it runs, and ends with the side-by-side
comparison. No root, no AWS, no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= 0 || interval <= 0 {
				return usageErrorf("--duration and --interval must be positive")
			}
			if !cmd.Flags().Changed("listen") && !portFree(listen) {
				// Another agent (or demo) has the default port: any port will do.
				listen = "127.0.0.1:0"
			}
			return runDemo(cmd.Context(), a, duration, interval, listen)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 15*time.Second, "how long the agent runs")
	f.DurationVar(&interval, "interval", time.Second, "probe interval of each way in")
	f.StringVar(&listen, "listen", "127.0.0.1:9470", "address of /metrics and the status page (127.0.0.1:0 picks a free port)")
	return cmd
}

// portFree reports whether addr can be listened on right now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// memorySink keeps every sample for the closing comparison.
type memorySink struct {
	mu      sync.Mutex
	samples []probe.Sample
}

func (m *memorySink) Write(_ context.Context, s *probe.Sample) {
	m.mu.Lock()
	m.samples = append(m.samples, *s)
	m.mu.Unlock()
}

func runDemo(ctx context.Context, a *app, duration, interval time.Duration, listen string) error {
	site, err := demo.Start(ctx, demo.Options{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer site.Close()
	dir, err := os.MkdirTemp("", "edgeprobe-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "edgeprobe.yml")
	samplesPath := filepath.Join(dir, "samples.jsonl")
	// The listen address goes to the agent as an override (Options.Listen),
	// as `probe run --listen` does.
	if err := os.WriteFile(cfgPath, site.ConfigYAML(interval, samplesPath, ""), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	o := site.Options()
	fmt.Fprintf(a.stdout, `edgeprobe demo: the same site, two ways in, probed every %v for %v
  origin  %s  (the "ALB": %v round trip, app think time %v)
  cdn     %s  (the edge "%s": %v round trip; %v to the origin, TTL 0)
`, interval, duration, site.OriginConnectTo(), 2*o.OriginOneWay, o.Think, site.EdgeURL(), o.POP, 2*o.EdgeOneWay, 2*o.BackboneOneWay)

	// The agent's own info lines would drown the story: warnings only.
	quiet, _ := newLogger(a.stderr, "text", "warn")
	mem := &memorySink{}
	runCtx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	err = agent.Run(runCtx, agent.Options{
		ConfigPath: cfgPath,
		Listen:     listen,
		Logger:     quiet,
		Sinks:      []probe.Sink{mem},
		RunAtStart: true,
		Ready: func(addr string) {
			if addr != "" {
				fmt.Fprintf(a.stdout, "  status page http://%s/  ·  metrics http://%s/metrics  ·  samples %s\n\n", addr, addr, samplesPath)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	mem.mu.Lock()
	samples := mem.samples
	mem.mu.Unlock()
	if len(samples) == 0 {
		return failedErrorf("demo: no samples in %v", duration)
	}
	if err := report.WriteTable(a.stdout, report.Summarize(samples), a.tableOptions()); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	c := site.OriginCounts()
	fmt.Fprintf(a.stdout, "\norigin answered %d requests: %d full pages, %d × 304 Not Modified (revalidations the edge made instead of fetching)\n", c.Requests, c.Full, c.NotModified)
	return nil
}
