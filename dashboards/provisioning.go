package dashboards

// Grafana provisioning examples: a dashboard provider that loads the JSON
// files of grafana/ from a folder, and the data sources they read.

const provisioningDashboards = `# Grafana provisioning of edgeprobe's dashboards (an example; written by
# ` + "`probe dashboards export`" + `). Copy this file to Grafana's
# provisioning/dashboards/ folder (/etc/grafana/provisioning/dashboards/ for
# the Debian package) and the JSON files of grafana/ to options.path.
#
# A provisioned dashboard is not imported, so nothing asks for its data
# source: its "Data source" variable starts on the default data source of
# its kind (Prometheus, or CloudWatch for cloudwatch.json). Mark yours
# isDefault (see datasources.yml) or pick it in the dashboard.
apiVersion: 1
providers:
  - name: edgeprobe
    orgId: 1
    folder: EdgeProbe
    folderUid: edgeprobe
    type: file
    disableDeletion: false
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/edgeprobe
      foldersFromFilesStructure: false
`

const provisioningDatasources = `# Grafana data sources for edgeprobe's dashboards (an example; written by
# ` + "`probe dashboards export`" + `). Copy to Grafana's provisioning/datasources/
# folder and change the URL and region.
apiVersion: 1
datasources:
  - name: Prometheus
    type: prometheus
    uid: edgeprobe-prometheus
    access: proxy
    url: http://localhost:9090
    isDefault: true
    jsonData:
      # Prometheus's scrape interval: Grafana's $__rate_interval follows it.
      timeInterval: 30s
  - name: CloudWatch
    type: cloudwatch
    uid: edgeprobe-cloudwatch
    jsonData:
      # The SDK's default chain: environment, shared config, instance role.
      authType: default
      defaultRegion: us-east-1
`

func provisioning() []File {
	return []File{
		{Path: "provisioning/dashboards.yml", Data: []byte(provisioningDashboards)},
		{Path: "provisioning/datasources.yml", Data: []byte(provisioningDatasources)},
	}
}
