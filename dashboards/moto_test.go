package dashboards

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/route53"
)

// TestCloudWatchDashboardOnMoto puts the committed CloudWatch dashboard
// body, and one InstallCloudWatch makes, on the AWS emulator with the
// project's CloudWatch client (AWS JSON 1.0), and reads them back with
// GetDashboard: the same JSON.
func TestCloudWatchDashboardOnMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the AWS emulator")
	}
	m := testkit.StartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := route53.NewCloudWatch(cfg, "eu-west-1", m.URL())

	committed, err := os.ReadFile("cloudwatch/overview.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.PutDashboard(ctx, &cloudwatch.PutDashboardInput{
		DashboardName: aws.String("EdgeProbe-Committed"), DashboardBody: aws.String(string(committed)),
	})
	if err != nil {
		t.Fatalf("PutDashboard: %v", err)
	}
	if len(out.DashboardValidationMessages) > 0 {
		t.Errorf("validation messages: %+v", out.DashboardValidationMessages)
	}
	readBack(t, ctx, client, "EdgeProbe-Committed", committed)

	msgs, err := InstallCloudWatch(ctx, client, "EdgeProbe-Install", cwexp.DefaultNamespace, "eu-west-1")
	if err != nil || len(msgs) > 0 {
		t.Fatalf("InstallCloudWatch: %v %v", msgs, err)
	}
	want, err := CloudWatchBody(cwexp.DefaultNamespace, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := want.JSON()
	if err != nil {
		t.Fatal(err)
	}
	readBack(t, ctx, client, "EdgeProbe-Install", wantJSON)

	if _, err := InstallCloudWatch(ctx, client, "bad name!", cwexp.DefaultNamespace, "eu-west-1"); err == nil {
		t.Error("a name CloudWatch refuses was sent")
	}
	list, err := client.ListDashboards(ctx, &cloudwatch.ListDashboardsInput{DashboardNamePrefix: aws.String("EdgeProbe-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.DashboardEntries) != 2 {
		t.Errorf("ListDashboards: %d dashboards, want 2", len(list.DashboardEntries))
	}
}

// readBack gets the dashboard and compares its body, as JSON, with want.
func readBack(t *testing.T, ctx context.Context, client *cloudwatch.Client, name string, want []byte) {
	t.Helper()
	got, err := client.GetDashboard(ctx, &cloudwatch.GetDashboardInput{DashboardName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetDashboard %s: %v", name, err)
	}
	if aws.ToString(got.DashboardName) != name {
		t.Errorf("GetDashboard: name %q", aws.ToString(got.DashboardName))
	}
	var a, b any
	if err := json.Unmarshal([]byte(aws.ToString(got.DashboardBody)), &a); err != nil {
		t.Fatalf("%s: body read back is not JSON: %v", name, err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("%s: the body read back differs from the one put", name)
	}
	if !strings.Contains(aws.ToString(got.DashboardArn), name) {
		t.Errorf("%s: ARN %q", name, aws.ToString(got.DashboardArn))
	}
}
