package dashboards

import (
	"fmt"
	"os"
	"path/filepath"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
)

// File is one generated file: its path under the dashboards directory
// (slash-separated) and its content.
type File struct {
	Path string
	Data []byte
}

// Grafana builds every Grafana dashboard, in a fixed order.
func Grafana() ([]GrafanaDashboard, error) {
	var out []GrafanaDashboard
	for _, build := range []func() (GrafanaDashboard, error){Overview, Locations, TargetDetail, CloudWatchOverview} {
		d, err := build()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Files generates everything this package ships, as committed under
// dashboards/ and as `probe dashboards export` writes it: the Grafana
// dashboards (grafana/*.json), the CloudWatch dashboard body for region
// DefaultCWRegion (cloudwatch/overview.json) and Grafana provisioning
// examples (provisioning/*.yml).
func Files() ([]File, error) {
	boards, err := Grafana()
	if err != nil {
		return nil, err
	}
	var out []File
	for _, g := range boards {
		b, err := g.JSON()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", g.File, err)
		}
		out = append(out, File{Path: "grafana/" + g.File, Data: b})
	}
	cw, err := CloudWatchBody(cwexp.DefaultNamespace, DefaultCWRegion)
	if err != nil {
		return nil, err
	}
	body, err := cw.JSON()
	if err != nil {
		return nil, err
	}
	out = append(out, File{Path: "cloudwatch/overview.json", Data: body})
	return append(out, provisioning()...), nil
}

// Write writes Files under dir, creating the folders; files of the same
// name are replaced, others left alone. It returns the paths written.
func Write(dir string) ([]string, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}
