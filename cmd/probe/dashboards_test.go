package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/edgeprobe/edgeprobe/dashboards"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/route53"
)

// generatedFiles lists the files under root, relative and slash-separated,
// skipping Go sources (the committed dashboards/ also holds the package).
func generatedFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDashboardsExport: `probe dashboards export --dir DIR` writes exactly
// the files committed under dashboards/, byte for byte.
func TestDashboardsExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := runProbe(t, nil, "dashboards", "export", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("export: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := generatedFiles(t, dir)
	want := generatedFiles(t, filepath.Join("..", "..", "dashboards"))
	if len(got) < 7 || len(got) != len(want) {
		t.Errorf("export wrote %d files, %d are committed", len(got), len(want))
	}
	for path, b := range want {
		if !bytes.Equal(got[path], b) {
			t.Errorf("%s: exported file differs from the committed one", path)
		}
		if !strings.Contains(r.stdout, filepath.Join(dir, filepath.FromSlash(path))) {
			t.Errorf("stdout does not name %s:\n%s", path, r.stdout)
		}
	}

	// Writing again replaces the files and leaves others alone.
	other := filepath.Join(dir, "grafana", "mine.json")
	if err := os.WriteFile(other, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runProbe(t, nil, "dashboards", "export", "--dir", dir); r.code != 0 {
		t.Fatalf("second export: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("export removed a file of the user's: %v", err)
	}

	// A folder that cannot be written: exit 1.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runProbe(t, nil, "dashboards", "export", "--dir", blocker); r.code != 1 || !strings.Contains(r.stderr, "export:") {
		t.Errorf("export into a file: exit %d\n%s", r.code, r.stderr)
	}
}

// TestDashboardsInstallUsage: install without a destination or with a name
// CloudWatch refuses is a usage error, and no AWS call is made.
func TestDashboardsInstallUsage(t *testing.T) {
	env := []string{"AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x"}
	for _, args := range [][]string{
		{"dashboards", "install"},
		{"dashboards", "install", "--cloudwatch", "--name", "has space"},
		{"dashboards", "install", "--cloudwatch", "--namespace", ""},
		{"dashboards", "export", "extra"},
	} {
		r := runProbe(t, env, args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}

// TestDashboardsInstallMoto: install --cloudwatch against the emulator puts
// the overview for the region asked, the first time and again; GetDashboard
// reads back the body the generator makes.
func TestDashboardsInstallMoto(t *testing.T) {
	m := testkit.StartMoto(t)
	for i := range 2 {
		r := runProbe(t, nil, "dashboards", "install", "--cloudwatch", "--endpoint", m.URL(), "--region", "eu-west-1", "--name", "EdgeProbe-CLI")
		if r.code != 0 || !strings.Contains(r.stdout, "EdgeProbe-CLI put in eu-west-1") {
			t.Fatalf("install %d: exit %d\n%s%s", i+1, r.code, r.stdout, r.stderr)
		}
	}
	// The region from the environment, the endpoint from AWS_ENDPOINT_URL_CLOUDWATCH.
	r := runProbe(t, []string{"AWS_ENDPOINT_URL_CLOUDWATCH=" + m.URL()}, "dashboards", "install", "--cloudwatch")
	if r.code != 0 || !strings.Contains(r.stdout, dashboards.DefaultCWDashboardName+" put in us-east-1") {
		t.Fatalf("install with defaults: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, region := range map[string]string{"EdgeProbe-CLI": "eu-west-1", dashboards.DefaultCWDashboardName: "us-east-1"} {
		// The emulator keeps dashboards per region.
		client := route53.NewCloudWatch(awsCfg, region, m.URL())
		got, err := client.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetDashboard %s: %v", name, err)
		}
		body, err := dashboards.CloudWatchBody("EdgeProbe", region)
		if err != nil {
			t.Fatal(err)
		}
		want, err := body.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(aws.ToString(got.DashboardBody)), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the dashboard read back is not the overview for %s", name, region)
		}
	}
}
