package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/probe"
)

func newRunCommand(a *app) *cobra.Command {
	var (
		opts        agent.Options
		checkConfig bool
	)
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the agent: probe the configured targets on schedule and export the results",
		Long: `run is the long-lived agent. It probes every target's ways in (roles) on
their intervals, exports to Prometheus (/metrics, plus a status page at /),
Pushgateway, remote write, CloudWatch and a JSONL file as configured, reloads the config
on SIGHUP (or when the file changes, with --watch-config) and drains
probes in flight and flushes the exporters on SIGTERM.

--check-config only validates the file: exit 0 when good, 2 with file:line
messages when not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.ConfigPath == "" {
				return usageErrorf("--config is required")
			}
			if checkConfig {
				return runCheckConfig(a, opts.ConfigPath)
			}
			opts.Logger, opts.Signals = a.log, true
			err := agent.Run(cmd.Context(), opts)
			var ce *probe.ConfigError
			if errors.As(err, &ce) {
				return &exitError{code: exitUsage, err: err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ConfigPath, "config", "", "the agent's YAML config file")
	f.StringVar(&opts.Listen, "listen", "", "address for /metrics and the status page (overrides exporters.prometheus.listen)")
	f.StringVar(&opts.Location, "location", "", "location label of every sample (default: config, then EDGEPROBE_LOCATION, AWS_REGION, ECS/EC2 metadata, hostname)")
	f.BoolVar(&checkConfig, "check-config", false, "validate the config and exit")
	f.BoolVar(&opts.WatchConfig, "watch-config", false, "reload the config when the file changes")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", 15*time.Second, "on shutdown, how long to wait for probes in flight and exporter flushes")
	return cmd
}

// runCheckConfig validates the config and says what it implies.
func runCheckConfig(a *app, path string) error {
	cfg, err := probe.Load(path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	jobs, err := cfg.Jobs()
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	perMinute := 0.0
	for _, j := range jobs {
		perMinute += float64(time.Minute) / float64(j.Interval)
	}
	fmt.Fprintf(a.stdout, "%s: ok: %s, %s (target × role), %.0f probes a minute\n", path, plural(len(cfg.Targets), "target"), plural(len(jobs), "job"), perMinute)
	if cfg.Exporters.CloudWatch != nil {
		metrics, calls := cloudwatch.MonthlyMetricCount(cfg), cloudwatch.MonthlyPutMetricDataCalls(cfg)
		metricsUSD, callsUSD := cloudwatch.MonthlyCostUSD(metrics, calls)
		fmt.Fprintf(a.stdout, "cloudwatch: up to %d metrics (jobs × metrics, per location): estimate $%.2f/month at the first-10k list price of $%.2f per metric-month; ~%d PutMetricData calls a month: estimate $%.2f at $%.2f per 1,000 requests\n",
			metrics, metricsUSD, cloudwatch.PricePerMetricMonthUSD, calls, callsUSD, cloudwatch.PricePer1000RequestsUSD)
	}
	return nil
}

// plural writes "1 target", "2 targets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
