package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/route53"
)

const hcALB = "my-alb-123.eu-west-1.elb.amazonaws.com"

// hcConfig writes a config whose ALB name resolves (through its
// dns_server) to a public address; nothing is sent to it.
func hcConfig(t *testing.T) string {
	t.Helper()
	srv, err := lab.NewDNSServer("127.0.0.1:0", map[string][]netip.Addr{hcALB: {netip.MustParseAddr("52.95.110.7")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "edgeprobe.yml")
	body := `
defaults: {dns_server: "` + srv.Addr() + `"}
targets:
  - name: shop
    url: https://www.example.com/health
    roles:
      cdn: {}
      origin: {connect_to: ` + hcALB + `}
exporters:
  cloudwatch: {namespace: EdgeProbeTest, region: us-east-1}
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHealthchecksDryRunAndValidation: --dry-run prints the plan and its
// price without a single request to AWS, and invalid settings exit 2
// before any request, whichever endpoint variable points where.
func TestHealthchecksDryRunAndValidation(t *testing.T) {
	var requests atomic.Int64
	fakeAWS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer fakeAWS.Close()
	cfg := hcConfig(t)
	env := []string{
		"AWS_ENDPOINT_URL=" + fakeAWS.URL, "AWS_ENDPOINT_URL_ROUTE_53=" + fakeAWS.URL, "AWS_ENDPOINT_URL_CLOUDWATCH=" + fakeAWS.URL,
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true",
	}

	r := runProbe(t, env, "healthchecks", "create", "--config", cfg, "--dry-run", "--endpoint", fakeAWS.URL)
	if r.code != 0 {
		t.Fatalf("dry-run: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"shop/cdn", "www.example.com:443", "/health", "us-east-1,eu-west-1,ap-southeast-1", "4.75 (non-AWS: basic 0.75 + https 2.00 + latency_measurement 2.00)",
		"shop/origin", "via 52.95.110.7 (" + hcALB + ")", "2.50 (AWS:",
		"2 health checks: $7.25 a month", "regions do not change the price",
		"warning: shop/origin: checks 52.95.110.7",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runProbe(t, env, "healthchecks", "create", "--config", cfg, "--dry-run", "--format", "json", "--interval", "10", "--regions", strings.Join(route53.CheckerRegions, ","))
	var plan route53.PlanJSON
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || r.code != 0 {
		t.Fatalf("dry-run json: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(plan.Checks) != 2 || plan.MonthlyUSD != 3.50+6.75 || plan.IfAllAWSUSD != 7 || len(plan.Checks[0].Regions) != 8 || plan.Checks[0].RequestInterval != 10 {
		t.Errorf("plan %+v", plan)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--regions", "us-east-1,eu-west-1"}, "2 regions: Route 53 needs 3 to 8"},
		{[]string{"--interval", "20"}, "request interval 20 s: Route 53 allows 10 or 30"},
		{[]string{"--regions", "us-east-1,eu-west-1,mars-1", "--dry-run"}, `region "mars-1" is not a Route 53 checker region`},
		{[]string{"--target", "nope"}, `target "nope": no such target`},
	} {
		r := runProbe(t, env, append([]string{"healthchecks", "create", "--config", cfg}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached AWS", n)
	}
}

// TestHealthchecksMotoCLI: the binary against the emulator, reached only
// through the standard endpoint variables (no --endpoint) for create and
// compare: create, a second create, a refused interval change, list (ours
// only), compare with seeded metrics, delete.
func TestHealthchecksMotoCLI(t *testing.T) {
	m := testkit.StartMoto(t)
	ctx := context.Background()
	cfgFile := hcConfig(t)
	env := []string{"AWS_ENDPOINT_URL_ROUTE_53=" + m.URL(), "AWS_ENDPOINT_URL_CLOUDWATCH=" + m.URL()}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r53c := route53.NewClient(awsCfg, m.URL())

	// Someone else's check, before ours.
	out, err := r53c.CreateHealthCheck(ctx, &r53.CreateHealthCheckInput{
		CallerReference: aws.String("theirs"),
		HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp, FullyQualifiedDomainName: aws.String("other.example.org"),
			Port: aws.Int32(80), ResourcePath: aws.String("/")},
	})
	if err != nil {
		t.Fatal(err)
	}
	theirs := aws.ToString(out.HealthCheck.Id)

	r := runProbe(t, env, "healthchecks", "create", "--config", cfgFile)
	if r.code != 0 || strings.Count(r.stdout, " created ") != 2 {
		t.Fatalf("create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runProbe(t, env, "healthchecks", "create", "--config", cfgFile)
	if r.code != 0 || strings.Count(r.stdout, " unchanged ") != 2 {
		t.Fatalf("second create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runProbe(t, env, "healthchecks", "create", "--config", cfgFile, "--interval", "10")
	if r.code != 2 || !strings.Contains(r.stderr, "cannot change after creation: run `probe healthchecks create --replace`") ||
		!strings.Contains(r.stdout, "RequestInterval 30 → 10") {
		t.Fatalf("interval change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = runProbe(t, nil, "healthchecks", "list", "--config", cfgFile, "--endpoint", m.URL(), "--format", "json")
	var listed struct {
		HealthChecks []route53.Existing `json:"health_checks"`
		Config       map[string]string  `json:"config"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || r.code != 0 {
		t.Fatalf("list: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	var cdnID string
	for _, e := range listed.HealthChecks {
		if e.ID == theirs || listed.Config[e.ID] != "ok" || e.RequestInterval != 30 || !e.MeasureLatency || e.Status == "" {
			t.Errorf("listed %+v (config %q)", e, listed.Config[e.ID])
		}
		if e.Role == "cdn" {
			cdnID = e.ID
		}
	}
	if len(listed.HealthChecks) != 2 || cdnID == "" {
		t.Fatalf("list: %+v", listed.HealthChecks)
	}
	r = runProbe(t, nil, "healthchecks", "list", "--endpoint", m.URL())
	if r.code != 0 || !strings.Contains(r.stdout, "shop/origin") || strings.Contains(r.stdout, theirs) || !strings.Contains(r.stdout, "2 health checks of edgeprobe's") {
		t.Errorf("list table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// compare: Route 53's figures and the agent's (namespace from the
	// config), seeded as both would publish them.
	cw := route53.NewCloudWatch(awsCfg, "us-east-1", m.URL())
	at := aws.Time(time.Now().Add(-5 * time.Minute))
	for ns, d := range map[string]cwtypes.MetricDatum{
		route53.Route53Namespace: {MetricName: aws.String("TimeToFirstByte"), Timestamp: at, Unit: cwtypes.StandardUnitMilliseconds, Values: []float64{80, 100},
			Dimensions: []cwtypes.Dimension{{Name: aws.String("HealthCheckId"), Value: aws.String(cdnID)}, {Name: aws.String("Region"), Value: aws.String("eu-west-1")}}},
		"EdgeProbeTest": {MetricName: aws.String("FirstByteTime"), Timestamp: at, Unit: cwtypes.StandardUnitMilliseconds, Values: []float64{85}, Counts: []float64{5},
			Dimensions: []cwtypes.Dimension{{Name: aws.String("Target"), Value: aws.String("shop")}, {Name: aws.String("Role"), Value: aws.String("cdn")}, {Name: aws.String("Location"), Value: aws.String("eu-west-1")}}},
	} {
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []cwtypes.MetricDatum{d}}); err != nil {
			t.Fatal(err)
		}
	}
	r = runProbe(t, env, "healthchecks", "compare", "--config", cfgFile, "--window", "30m", "--format", "json")
	var cmpn route53.Comparison
	if err := json.Unmarshal([]byte(r.stdout), &cmpn); err != nil || r.code != 0 {
		t.Fatalf("compare: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	got := map[string]float64{}
	for _, row := range cmpn.Rows {
		if row.AverageMS != nil {
			got[row.Target+"/"+row.Role+" "+row.Source+" "+row.Where+" "+row.Metric] = *row.AverageMS
		}
	}
	want := map[string]float64{"shop/cdn route53 eu-west-1 TimeToFirstByte": 90, "shop/cdn agent eu-west-1 FirstByteTime": 85}
	if len(got) != len(want) || got["shop/cdn route53 eu-west-1 TimeToFirstByte"] != 90 || got["shop/cdn agent eu-west-1 FirstByteTime"] != 85 {
		t.Errorf("compare rows %v, want %v", got, want)
	}
	if cmpn.Namespace != "EdgeProbeTest" || cmpn.PeriodSeconds != 1800 {
		t.Errorf("namespace %q period %d", cmpn.Namespace, cmpn.PeriodSeconds)
	}

	r = runProbe(t, env, "healthchecks", "delete", "--target", "shop")
	if r.code != 0 || !strings.Contains(r.stdout, "deleted 2 health checks") {
		t.Fatalf("delete: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	all, err := r53c.ListHealthChecks(ctx, &r53.ListHealthChecksInput{})
	if err != nil || len(all.HealthChecks) != 1 || aws.ToString(all.HealthChecks[0].Id) != theirs {
		t.Errorf("after delete: %v %v", all, err)
	}
}
