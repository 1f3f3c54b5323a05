package main

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edgeprobe/edgeprobe/dashboards"
	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/route53"
)

func newDashboardsCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Grafana and CloudWatch dashboards for the agent's metrics",
		Long: `dashboards writes edgeprobe's dashboards as files (export) and puts the
CloudWatch one in your account (install --cloudwatch).

The Grafana dashboards (Overview, Locations and Target detail on a Prometheus
data source; a CloudWatch overview on Grafana's CloudWatch data source) are
importable JSON: Dashboards → New → Import, upload the file, pick the data
source. provisioning/ holds example Grafana provisioning files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDashboardsExportCommand(a), newDashboardsInstallCommand(a))
	return cmd
}

func newDashboardsExportCommand(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "export [--dir DIR]",
		Short: "Write the dashboards and provisioning examples under a folder",
		Long: `export writes, under --dir (default ./dashboards):

  grafana/overview.json     origin vs CDN per phase, success, errors, cache (Prometheus)
  grafana/locations.json    locations × phases, slowest locations, POPs (Prometheus)
  grafana/target.json       histograms, status, TLS expiry, revalidation, Server-Timing (Prometheus)
  grafana/cloudwatch.json   the overview on CloudWatch, with Route 53 health checks (CloudWatch)
  cloudwatch/overview.json  a CloudWatch dashboard body (widgets in us-east-1; install
                            --cloudwatch puts one for your region)
  provisioning/*.yml        Grafana provisioning examples (dashboards, data sources)

Files of the same name are replaced; nothing else in the folder is touched.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			written, err := dashboards.Write(dir)
			for _, p := range written {
				fmt.Fprintln(a.stdout, p)
			}
			if err != nil {
				return failedErrorf("export: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "dashboards", "folder to write the files under")
	return cmd
}

func newDashboardsInstallCommand(a *app) *cobra.Command {
	var (
		toCloudWatch                      bool
		name, region, endpoint, namespace string
	)
	cmd := &cobra.Command{
		Use:   "install --cloudwatch [--name N] [--region R] [--endpoint URL]",
		Short: "Put the CloudWatch dashboard (PutDashboard)",
		Long: `install --cloudwatch puts the overview as a CloudWatch dashboard (PutDashboard;
a dashboard of the same name is replaced). Its graphs read the agent's
metrics in --region and --namespace (the agent's exporters.cloudwatch region
and namespace) and Route 53 health checks' metrics in us-east-1.

AWS access is the SDK's default chain; the region is --region, else
AWS_REGION or the profile's. AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_CLOUDWATCH
are honoured; --endpoint overrides them. IAM: cloudwatch:PutDashboard.

Grafana dashboards are imported from the files export writes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !toCloudWatch {
				return usageErrorf("install: say where: --cloudwatch (Grafana dashboards are imported from the files `probe dashboards export` writes)")
			}
			if !dashboards.ValidDashboardName(name) {
				return usageErrorf("--name %q: CloudWatch takes letters, digits, - and _ (at most 255)", name)
			}
			if namespace == "" {
				return usageErrorf("--namespace must not be empty")
			}
			ctx := cmd.Context()
			awsCfg, err := awsConfig(ctx)
			if err != nil {
				return err
			}
			region = cmp.Or(region, awsCfg.Region)
			if region == "" {
				return usageErrorf("no AWS region: give --region or set AWS_REGION")
			}
			client := route53.NewCloudWatch(awsCfg, region, endpoint)
			msgs, err := dashboards.InstallCloudWatch(ctx, client, name, namespace, region)
			if err != nil {
				return failedErrorf("install: %v", err)
			}
			for _, m := range msgs {
				a.log.Warn("CloudWatch validation message", "dashboard", name, "message", m)
			}
			fmt.Fprintf(a.stdout, "CloudWatch dashboard %s put in %s (metrics of namespace %s)\n", name, region, namespace)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&toCloudWatch, "cloudwatch", false, "put the CloudWatch dashboard")
	f.StringVar(&name, "name", dashboards.DefaultCWDashboardName, "dashboard name")
	f.StringVar(&region, "region", "", "AWS region of the dashboard and the agent's metrics (default: the SDK's)")
	f.StringVar(&endpoint, "endpoint", "", "CloudWatch endpoint URL (an emulator); default: the SDK's")
	f.StringVar(&namespace, "namespace", cwexp.DefaultNamespace, "namespace of the agent's metrics (exporters.cloudwatch.namespace)")
	return cmd
}
