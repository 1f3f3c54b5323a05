package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/probe"
	"github.com/edgeprobe/edgeprobe/route53"
)

// hcFlags are the flags every healthchecks subcommand shares.
type hcFlags struct {
	config, endpoint, format, target string
}

func newHealthchecksCommand(a *app) *cobra.Command {
	f := &hcFlags{}
	cmd := &cobra.Command{
		Use:   "healthchecks",
		Short: "Route 53 health checks for the targets' ways in, and their latency beside the agent's",
		Long: `healthchecks manages one Route 53 health check per target and role of the
config (HTTPS or HTTP, latency measurement on, 3 to 8 checker regions), tagged
as edgeprobe's so that list and delete never touch anyone else's, and compares
Route 53's ConnectionTime, SSLHandshakeTime and TimeToFirstByte with the
agent's own CloudWatch metrics.

AWS access is the SDK's default chain (environment, profile, SSO, instance
role); Route 53 and its metrics are used in us-east-1. AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_ROUTE_53 and AWS_ENDPOINT_URL_CLOUDWATCH are honoured;
--endpoint overrides them all. docs/route53.md lists the IAM permissions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.config, "config", "", "the agent's YAML config file (required by create)")
	pf.StringVar(&f.endpoint, "endpoint", "", "endpoint URL for Route 53 and CloudWatch (an emulator); default: the SDK's")
	pf.StringVar(&f.format, "format", "table", "output: table or json")
	pf.StringVar(&f.target, "target", "", "only the checks of this target")
	cmd.AddCommand(newHCCreateCommand(a, f), newHCListCommand(a, f), newHCDeleteCommand(a, f), newHCCompareCommand(a, f))
	return cmd
}

func (f *hcFlags) check() error {
	if f.format != "table" && f.format != "json" {
		return usageErrorf("--format %q: want table or json", f.format)
	}
	return nil
}

// loadConfig reads --config; required says whether it must be given.
func (f *hcFlags) loadConfig(required bool) (*probe.Config, error) {
	if f.config == "" {
		if required {
			return nil, usageErrorf("--config is required")
		}
		return nil, nil
	}
	cfg, err := probe.Load(f.config)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// awsConfig is the SDK's default chain; no region is needed (Route 53 is
// global, its metrics are in us-east-1).
func awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, failedErrorf("AWS configuration: %v", err)
	}
	return cfg, nil
}

func newHCCreateCommand(a *app, f *hcFlags) *cobra.Command {
	var (
		dryRun, replace bool
		opts            route53.PlanOptions
		originMode      string
	)
	cmd := &cobra.Command{
		Use:   "create --config FILE",
		Short: "Create or update the health checks the config implies (idempotent)",
		Long: `create makes one health check per target and role exist as planned: a
second run changes nothing, mutable settings are updated in place, and a
check whose RequestInterval, MeasureLatency or type would change is only
replaced (deleted and re-created, with a new ID) with --replace.

A role with connect_to (the ALB) keeps the site's host name as the check's
domain name, so Route 53 sends it as Host and SNI as the agent does, and
points the check at one address of the connect_to name resolved now
(--origin-mode ip, the default); run create again when the load balancer's
addresses change. --origin-mode name checks the connect_to name instead:
Route 53 follows its addresses, but sends that name as Host and SNI.

--dry-run prints the plan and its monthly list price and calls no AWS API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cfg, err := f.loadConfig(true)
			if err != nil {
				return err
			}
			opts.Target, opts.OriginMode = f.target, route53.OriginMode(originMode)
			checks, err := route53.Plan(cfg, opts)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			ctx := cmd.Context()
			if err := route53.Resolve(ctx, checks); err != nil {
				if !dryRun {
					return failedErrorf("%v", err)
				}
				a.log.Warn("load balancer address not resolved; create would fail", "err", err)
			}
			if dryRun {
				if f.format == "json" {
					return route53.WriteJSON(a.stdout, route53.NewPlanJSON(checks))
				}
				return route53.WritePlan(a.stdout, checks)
			}
			awsCfg, err := awsConfig(ctx)
			if err != nil {
				return err
			}
			results, err := route53.Create(ctx, route53.NewClient(awsCfg, f.endpoint), checks, route53.CreateOptions{Replace: replace})
			if werr := writeCreate(a, f.format, results, checks); werr != nil && err == nil {
				err = werr
			}
			var ve *route53.ValidationError
			switch {
			case errors.Is(err, route53.ErrNeedsReplace), errors.As(err, &ve):
				return &exitError{code: exitUsage, err: err}
			case err != nil:
				return failedErrorf("%v", err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan and its monthly price; call no AWS API")
	fl.BoolVar(&replace, "replace", false, "delete and re-create checks whose immutable settings changed")
	fl.StringSliceVar(&opts.Regions, "regions", nil, "3 to 8 checker regions, comma-separated (default "+strings.Join(route53.DefaultRegions, ",")+"; any of "+strings.Join(route53.CheckerRegions, ",")+")")
	fl.Int32Var(&opts.RequestInterval, "interval", route53.DefaultRequestInterval, "seconds between checks of each checker: 30, or 10 (fast, extra charge); fixed at creation")
	fl.Int32Var(&opts.FailureThreshold, "failure-threshold", route53.DefaultFailureThreshold, "consecutive failures (1-10) that make the check unhealthy")
	fl.StringVar(&originMode, "origin-mode", string(route53.OriginIP), "how a role with connect_to is checked: ip (site name as Host/SNI, the load balancer's address) or name (the load balancer's name)")
	return cmd
}

func writeCreate(a *app, format string, results []route53.Result, checks []route53.Check) error {
	if format == "json" {
		warnings := []string{}
		for i := range checks {
			for _, w := range checks[i].Warnings {
				warnings = append(warnings, checks[i].Key()+": "+w)
			}
		}
		return route53.WriteJSON(a.stdout, map[string]any{"results": orEmpty(results), "warnings": warnings})
	}
	if err := route53.WriteWarnings(a.stderr, checks); err != nil {
		return err
	}
	if len(results) == 0 {
		return nil
	}
	return route53.WriteResults(a.stdout, results)
}

func newHCListCommand(a *app, f *hcFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List edgeprobe's health checks (found by tag) with their checkers' status",
		Long: `list shows the health checks tagged as edgeprobe's — no one else's — with
their settings and what their checkers last saw. With --config it also says
which of them no longer match a target and role of the config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cfg, err := f.loadConfig(false)
			if err != nil {
				return err
			}
			awsCfg, err := awsConfig(cmd.Context())
			if err != nil {
				return err
			}
			checks, err := route53.List(cmd.Context(), route53.NewClient(awsCfg, f.endpoint), route53.ListOptions{Target: f.target, Status: true})
			if err != nil {
				return failedErrorf("%v", err)
			}
			var inConfig map[string]string
			if cfg != nil {
				jobs, err := cfg.Jobs()
				if err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				keys := map[string]bool{}
				for _, j := range jobs {
					keys[j.Key()] = true
				}
				inConfig = map[string]string{}
				for _, c := range checks {
					inConfig[c.ID] = "ok"
					if !keys[c.Key()] {
						inConfig[c.ID] = "not in config"
					}
				}
			}
			if f.format == "json" {
				return route53.WriteJSON(a.stdout, map[string]any{"health_checks": orEmpty(checks), "config": inConfig})
			}
			return route53.WriteList(a.stdout, checks, inConfig)
		},
	}
}

func newHCDeleteCommand(a *app, f *hcFlags) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete edgeprobe's health checks (all, or one target's)",
		Long: `delete removes the health checks tagged as edgeprobe's, all of them or
those of --target; checks without edgeprobe's tags are never touched.
--dry-run lists what would be deleted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if _, err := f.loadConfig(false); err != nil {
				return err
			}
			awsCfg, err := awsConfig(cmd.Context())
			if err != nil {
				return err
			}
			gone, err := route53.Delete(cmd.Context(), route53.NewClient(awsCfg, f.endpoint), route53.DeleteOptions{Target: f.target, DryRun: dryRun})
			if f.format == "json" {
				if werr := route53.WriteJSON(a.stdout, map[string]any{"deleted": orEmpty(gone), "dry_run": dryRun}); werr != nil && err == nil {
					err = werr
				}
			} else {
				verb := "deleted"
				if dryRun {
					verb = "would delete"
				}
				for _, e := range gone {
					fmt.Fprintf(a.stdout, "%s %s %s\n", verb, e.ID, e.Key())
				}
				fmt.Fprintf(a.stdout, "%s %d health checks of edgeprobe's\n", verb, len(gone))
			}
			if err != nil {
				return failedErrorf("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be deleted")
	return cmd
}

func newHCCompareCommand(a *app, f *hcFlags) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Route 53's latency per checker region beside the agent's per location",
		Long: `compare reads, over --window, Route 53's ConnectionTime, SSLHandshakeTime
and TimeToFirstByte of edgeprobe's health checks (us-east-1, per checker
region and over all) and the agent's CloudWatch metrics of the same target
and role in every location (namespace and region from the config's
exporters.cloudwatch), and prints them side by side per phase, with average,
p50 and sample count. The agent's ttfb appears twice, as TimeToFirstByte
(request written → first byte) and FirstByteTime (start → first byte), so
that one can see which of them Route 53's figure matches.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if window <= 0 {
				return usageErrorf("--window %v: must be positive", window)
			}
			cfg, err := f.loadConfig(false)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			awsCfg, err := awsConfig(ctx)
			if err != nil {
				return err
			}
			namespace, region, endpoint := route53.DefaultNamespace, awsCfg.Region, ""
			if cfg != nil && cfg.Exporters.CloudWatch != nil {
				cw := cfg.Exporters.CloudWatch
				namespace = cmp.Or(cw.Namespace, namespace)
				region, endpoint = cmp.Or(cw.Region, region), cw.Endpoint
			}
			checks, err := route53.List(ctx, route53.NewClient(awsCfg, f.endpoint), route53.ListOptions{Target: f.target})
			if err != nil {
				return failedErrorf("%v", err)
			}
			if len(checks) == 0 {
				return failedErrorf("no health checks of edgeprobe's%s: run `probe healthchecks create` first", targetSuffix(f.target))
			}
			r53cw := route53.NewCloudWatch(awsCfg, route53.Route53Region, f.endpoint)
			agentCW := route53.NewCloudWatch(awsCfg, cmp.Or(region, route53.Route53Region), cmp.Or(f.endpoint, endpoint))
			res, err := route53.Compare(ctx, r53cw, agentCW, checks, route53.CompareOptions{Window: window, Namespace: namespace})
			if err != nil {
				return failedErrorf("%v", err)
			}
			if f.format == "json" {
				return route53.WriteJSON(a.stdout, res)
			}
			return route53.WriteComparison(a.stdout, res)
		},
	}
	cmd.Flags().DurationVar(&window, "window", time.Hour, "how far back to read, up to now")
	return cmd
}

func targetSuffix(target string) string {
	if target == "" {
		return ""
	}
	return " for target " + target
}

// orEmpty makes a nil slice encode as [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
