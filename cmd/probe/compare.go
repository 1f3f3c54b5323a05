package main

import (
	"cmp"
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/compare"
	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/route53"
)

// compareFlags are the flags of probe compare.
type compareFlags struct {
	before, after, during string
	at                    string
	window                time.Duration
	a, b, where           string
	format                string
	html                  string
	alpha                 float64
	minSamples            int
	resamples             int
	seed                  uint64
	// The source when not JSONL files: at most one of these.
	prometheus                  string
	cloudwatch, route53         bool
	namespace, region, endpoint string
}

// remote reports whether a server, not files, holds the samples.
func (f *compareFlags) remote() bool { return f.prometheus != "" || f.cloudwatch || f.route53 }

// sourceName names the remote source for messages.
func (f *compareFlags) sourceName() string {
	switch {
	case f.prometheus != "":
		return "--prometheus"
	case f.cloudwatch:
		return "--cloudwatch"
	case f.route53:
		return "--route53"
	}
	return ""
}

const compareLong = `Compare two sets of probe samples and say, per phase and location, whether
b is faster than a, by how much, and whether the difference is real.

The samples are JSONL files as 'probe check --save' and the agent's jsonl
exporter write them. The two sides are:
  two files          probe compare BEFORE.jsonl AFTER.jsonl
  two time windows   probe compare FILE --before START/END --after START/END
                     probe compare FILE --at ROLLOUT-TIME [--window 24h]
                       (before = [at − window, at), after = [at, at + window))
  two ways in        probe compare FILE --a role=origin --b role=cdn
                       (selectors: target=, role=, location=, comma-joined)
--where SELECTOR narrows both sides, --during START/END both windows. Times
are RFC 3339 or shorter (2026-03-01T12:00, 2026-03-01), UTC unless a zone
is given; END may be a duration after START (2026-03-01T00:00/24h).

For each phase (dns, connect, tls, ttfb, transfer, total, first_byte), over
all locations and per location when there are several, over successful
probes:
  n, p50, p90, p99 and mean of each side (p50/p90/p99 as 'probe check' does)
  Δp50 = b − a (negative: b is faster), absolute and relative
  a bootstrap confidence interval (1 − alpha) of the differences of
    medians and of p90s (percentile method, --resamples, --seed)
  a Mann–Whitney U test with the Hodges–Lehmann shift, and Cliff's delta
  a verdict: "insufficient" with fewer than --min-samples successful probes
    on a side; "faster" or "slower" when p < alpha AND the interval of the
    medians' difference excludes 0; else "no_change".
Failure rates are compared with Fisher's exact test. Warnings point out
the usual traps: b faster but failing more often, a location sampled much
more on one side, sides covering different hours of the day, sides mixing
several targets or roles, too few samples, malformed input lines.

Instead of files, the samples can come from where the agent's exporters put
them (no FILE arguments then; the sides need windows or selectors as with
one file, and --a/--b alone compare the last 24 hours):
  --prometheus URL   a Prometheus server scraping the agent: the
                     edgeprobe_phase_duration_seconds histograms (classic
                     buckets, else native) and edgeprobe_probes_total over
                     each window, via the HTTP API
  --cloudwatch       the agent's CloudWatch metrics (--namespace, default
                     EdgeProbe; --region, default the SDK's): counts and
                     percentile ranks PR(lo:hi) per bucket via GetMetricData
  --route53          Route 53's own latency of edgeprobe's health checks
                     (AWS/Route53 ConnectionTime, SSLHandshakeTime,
                     TimeToFirstByte in us-east-1), a location per checker
                     region; Route 53 publishes only minute averages, so n
                     counts minutes and the verdict compares averages
--endpoint URL points the AWS clients at an emulator. Histograms (Prometheus,
CloudWatch) know durations to their buckets: rows are marked approximate and
their intervals span whole buckets, without a rank test.

Output: --format table (default), json or markdown on stdout; --html FILE
also writes a self-contained report (ECDF per phase, medians waterfall per
location, the table) that needs no network.

Exit status: 0 compared (whatever the verdicts), 1 a server could not be
read or the output written, 2 usage error or a side without samples.`

const compareExample = `  probe compare before.jsonl after.jsonl
  probe compare samples.jsonl --at 2026-03-01T12:00Z --window 24h --where role=cdn
  probe compare samples.jsonl --a role=origin --b role=cdn --during 2026-03-01/2026-03-08 --html report.html
  probe compare samples.jsonl --before 2026-03-01/2026-03-02 --after 2026-03-08/24h --format markdown
  probe compare --prometheus http://prometheus:9090 --at 2026-03-01T12:00Z --window 24h --where role=cdn
  probe compare --cloudwatch --region eu-west-1 --a role=origin --b role=cdn --during 2026-03-01/24h
  probe compare --route53 --a role=origin --b role=cdn`

func newCompareCommand(a *app) *cobra.Command {
	f := &compareFlags{}
	cmd := &cobra.Command{
		Use:     "compare [FILE [FILE]]",
		Short:   "Compare two sets of samples: before vs after, origin vs CDN, with statistics",
		Long:    compareLong,
		Example: compareExample,
		Args: func(_ *cobra.Command, args []string) error {
			if f.remote() {
				if len(args) > 0 {
					return usageErrorf("%s reads the samples from a server: no FILE arguments (got %d)", f.sourceName(), len(args))
				}
				return nil
			}
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf("compare needs one or two JSONL files of samples (or --prometheus URL, --cloudwatch, --route53), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompare(cmd.Context(), a, f, cmd.Flags().Changed("window"), args)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.before, "before", "", "`START/END` of side a's window (with --after)")
	fl.StringVar(&f.after, "after", "", "`START/END` of side b's window (with --before)")
	fl.StringVar(&f.at, "at", "", "rollout `TIME`: a is the --window before it, b the --window after")
	fl.DurationVar(&f.window, "window", 24*time.Hour, "length of each side's window around --at")
	fl.StringVar(&f.a, "a", "", "`SELECTOR` of side a, e.g. role=origin (keys target, role, location)")
	fl.StringVar(&f.b, "b", "", "`SELECTOR` of side b, e.g. role=cdn")
	fl.StringVar(&f.where, "where", "", "`SELECTOR` both sides must match, e.g. target=shop,role=cdn")
	fl.StringVar(&f.during, "during", "", "`START/END` window of both sides")
	fl.StringVar(&f.format, "format", "table", "`FORMAT` of the output: table, json or markdown")
	fl.StringVar(&f.html, "html", "", "also write a self-contained HTML report to `FILE`")
	fl.Float64Var(&f.alpha, "alpha", compare.DefaultAlpha, "significance level of the rank test; intervals are at 1 − alpha")
	fl.IntVar(&f.minSamples, "min-samples", compare.DefaultMinSamples, "fewest successful probes per side for a verdict")
	fl.IntVar(&f.resamples, "resamples", compare.DefaultResamples, "bootstrap resamples")
	fl.Uint64Var(&f.seed, "seed", compare.DefaultSeed, "bootstrap seed (same seed, same intervals)")
	fl.StringVar(&f.prometheus, "prometheus", "", "read the agent's histograms from the Prometheus server at `URL` instead of files")
	fl.BoolVar(&f.cloudwatch, "cloudwatch", false, "read the agent's CloudWatch metrics instead of files")
	fl.BoolVar(&f.route53, "route53", false, "read Route 53's latency of edgeprobe's health checks (minute averages per checker region)")
	fl.StringVar(&f.namespace, "namespace", "", "CloudWatch `NAMESPACE` of the agent's metrics (default "+cwexp.DefaultNamespace+")")
	fl.StringVar(&f.region, "region", "", "AWS `REGION` of the agent's CloudWatch metrics (default: AWS_REGION, the profile's)")
	fl.StringVar(&f.endpoint, "endpoint", "", "AWS endpoint `URL` for CloudWatch and Route 53 (an emulator); default: the SDK's")
	return cmd
}

func runCompare(ctx context.Context, a *app, f *compareFlags, windowSet bool, args []string) error {
	switch f.format {
	case "table", "json", "markdown":
	default:
		return usageErrorf("--format %q: want table, json or markdown", f.format)
	}
	opts := compare.Options{Alpha: f.alpha, MinSamples: f.minSamples, Resamples: f.resamples, Seed: f.seed}
	if err := opts.Validate(); err != nil {
		return usageErrorf("%w", err)
	}
	if err := checkSourceFlags(f); err != nil {
		return err
	}
	specA, specB, err := compareSides(f, windowSet, args)
	if err != nil {
		return err
	}
	if f.remote() {
		if specA.Query.Window.IsZero() && specB.Query.Window.IsZero() {
			// --a/--b alone: the last 24 hours, whole minutes.
			end := time.Now().UTC().Truncate(time.Minute)
			w := compare.Window{From: end.Add(-compare.DefaultRemoteWindow), To: end}
			specA.Query.Window, specB.Query.Window = w, w
		}
		src, err := remoteSource(ctx, f)
		if err != nil {
			return err
		}
		specA.Source, specB.Source = src, src
		return runSides(ctx, a, f, specA, specB, opts)
	}
	sources := map[string]*compare.JSONL{}
	for _, path := range args {
		if sources[path] != nil {
			continue
		}
		src, err := compare.ReadJSONLFile(path)
		if err != nil {
			return usageErrorf("%w", err)
		}
		sources[path] = src
		a.log.Debug("samples read", "file", path, "samples", src.Len())
	}
	specA.Source, specB.Source = sources[args[0]], sources[args[len(args)-1]]
	return runSides(ctx, a, f, specA, specB, opts)
}

// checkSourceFlags refuses source flags that do not go together.
func checkSourceFlags(f *compareFlags) error {
	n := 0
	for _, on := range []bool{f.prometheus != "", f.cloudwatch, f.route53} {
		if on {
			n++
		}
	}
	switch {
	case n > 1:
		return usageErrorf("--prometheus, --cloudwatch and --route53 each name the source: give one")
	case (f.namespace != "" || f.region != "") && !f.cloudwatch:
		if f.route53 {
			return usageErrorf("--namespace and --region go with --cloudwatch: Route 53's metrics are in AWS/Route53, us-east-1")
		}
		return usageErrorf("--namespace and --region go with --cloudwatch")
	case f.endpoint != "" && !f.cloudwatch && !f.route53:
		return usageErrorf("--endpoint goes with --cloudwatch or --route53")
	}
	return nil
}

// remoteSource builds the source the flags name. AWS access is the SDK's
// default chain, as for `probe healthchecks`.
func remoteSource(ctx context.Context, f *compareFlags) (compare.Source, error) {
	if f.prometheus != "" {
		src, err := compare.NewPrometheus(f.prometheus, nil)
		if err != nil {
			return nil, usageErrorf("--prometheus: %w", err)
		}
		return src, nil
	}
	awsCfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if f.route53 {
		return compare.NewRoute53(route53.NewClient(awsCfg, f.endpoint),
			route53.NewCloudWatch(awsCfg, route53.Route53Region, f.endpoint)), nil
	}
	region := cmp.Or(f.region, awsCfg.Region)
	if region == "" {
		return nil, usageErrorf("--cloudwatch: no AWS region: give --region (the exporter's region), or set AWS_REGION or a profile's region")
	}
	return compare.NewCloudWatch(route53.NewCloudWatch(awsCfg, region, f.endpoint), f.namespace), nil
}

// runSides compares the two sides and writes the result.
func runSides(ctx context.Context, a *app, f *compareFlags, specA, specB compare.Spec, opts compare.Options) error {
	res, err := compare.Run(ctx, specA, specB, opts)
	if errors.Is(err, compare.ErrNoSamples) {
		return usageErrorf("%w", err)
	}
	if err != nil {
		return failedErrorf("compare: %w", err)
	}
	switch f.format {
	case "table":
		err = compare.WriteTable(a.stdout, res, compare.TableOptions{Color: a.tableOptions().Color})
	case "json":
		err = compare.WriteJSON(a.stdout, res)
	case "markdown":
		err = compare.WriteMarkdown(a.stdout, res)
	}
	if err != nil {
		return failedErrorf("%w", err)
	}
	if f.html != "" {
		if err := writeHTMLReport(f.html, res); err != nil {
			return failedErrorf("--html: %w", err)
		}
		a.log.Info("HTML report written", "file", f.html)
	}
	return nil
}

func writeHTMLReport(path string, res *compare.Result) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := compare.WriteHTML(out, res); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// compareSides turns the flags into the two sides' queries and labels.
func compareSides(f *compareFlags, windowSet bool, args []string) (a, b compare.Spec, err error) {
	sel := func(flag, s string) (compare.Selector, error) {
		if s == "" {
			return compare.Selector{}, nil
		}
		v, err := compare.ParseSelector(s)
		if err != nil {
			return v, usageErrorf("--%s: %w", flag, err)
		}
		return v, nil
	}
	where, err := sel("where", f.where)
	if err != nil {
		return a, b, err
	}
	selA, err := sel("a", f.a)
	if err != nil {
		return a, b, err
	}
	selB, err := sel("b", f.b)
	if err != nil {
		return a, b, err
	}
	if a.Query.Match, err = where.And(selA); err != nil {
		return a, b, usageErrorf("--where and --a: %w", err)
	}
	if b.Query.Match, err = where.And(selB); err != nil {
		return a, b, usageErrorf("--where and --b: %w", err)
	}

	win := func(flag, s string) (compare.Window, error) {
		w, err := compare.ParseWindow(s)
		if err != nil {
			return w, usageErrorf("--%s: %w", flag, err)
		}
		return w, nil
	}
	windowed := false
	switch {
	case f.at != "" && (f.before != "" || f.after != "" || f.during != ""):
		return a, b, usageErrorf("--at sets both windows: it does not go with --before, --after or --during")
	case f.during != "" && (f.before != "" || f.after != ""):
		return a, b, usageErrorf("--during sets both windows: it does not go with --before or --after")
	case windowSet && f.at == "":
		return a, b, usageErrorf("--window goes with --at")
	case (f.before == "") != (f.after == ""):
		return a, b, usageErrorf("--before and --after go together: each gives one side's window")
	case f.at != "":
		t, err := compare.ParseTime(f.at)
		if err != nil {
			return a, b, usageErrorf("--at: %w", err)
		}
		if f.window <= 0 {
			return a, b, usageErrorf("--window %v: want a positive duration", f.window)
		}
		a.Query.Window, b.Query.Window = compare.Around(t, f.window)
		windowed = true
	case f.before != "":
		if a.Query.Window, err = win("before", f.before); err != nil {
			return a, b, err
		}
		if b.Query.Window, err = win("after", f.after); err != nil {
			return a, b, err
		}
		windowed = true
	case f.during != "":
		if a.Query.Window, err = win("during", f.during); err != nil {
			return a, b, err
		}
		b.Query.Window = a.Query.Window
	}

	switch {
	case f.remote():
		if a.Query == b.Query {
			return a, b, usageErrorf("%s needs two sides: give --before/--after, --at, or --a/--b", f.sourceName())
		}
	case len(args) == 2:
		if windowed {
			return a, b, usageErrorf("with two files each file is a side: --before/--after and --at split one file (use --during to narrow both)")
		}
		a.Label, b.Label = args[0], args[1]
		return a, b, nil
	case a.Query == b.Query:
		return a, b, usageErrorf("one file needs two sides: give --before/--after, --at, or --a/--b (or a second file)")
	}
	labelA, labelB := []string{}, []string{}
	if windowed {
		labelA, labelB = append(labelA, "before"), append(labelB, "after")
	}
	if selA != selB {
		labelA, labelB = append(labelA, selectorLabel(selA)), append(labelB, selectorLabel(selB))
	}
	a.Label, b.Label = strings.Join(labelA, " "), strings.Join(labelB, " ")
	return a, b, nil
}

// selectorLabel names a side by the values it selects ("origin", "shop
// cdn"), or "all" when it selects everything.
func selectorLabel(s compare.Selector) string {
	var parts []string
	for _, v := range []string{s.Target, s.Role, s.Location} {
		if v != "" {
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}
