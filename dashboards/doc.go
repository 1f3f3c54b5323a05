// Package dashboards generates edgeprobe's dashboards from a typed model:
// Grafana dashboards built with the grafana-foundation-sdk (Overview,
// Locations and Target detail on Prometheus; a CloudWatch overview on
// Grafana's CloudWatch data source), a CloudWatch dashboard body
// (PutDashboard) and Grafana provisioning examples.
//
// The generated files are committed under dashboards/ (grafana/*.json,
// cloudwatch/overview.json, provisioning/*.yml); a test fails when they
// and the generator differ, and rewrites them with
//
//	go test ./dashboards -run TestGeneratedFilesCommitted -update
//
// `probe dashboards export` writes the same files, `probe dashboards
// install --cloudwatch` puts the CloudWatch dashboard.
//
// Metric names come from constants (metrics.go here for Prometheus, the
// CloudWatch exporter's for CloudWatch). The tests hold them to the
// exporter's metric catalogue and run every PromQL expression of every
// panel against a real agent scraped by a real Prometheus, so a renamed
// metric fails a test instead of leaving a dashboard empty.
package dashboards
