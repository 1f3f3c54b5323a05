package route53

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
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
)

// counting counts the HTTP requests AWS clients send.
type counting struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

type motoEnv struct {
	moto  *testkit.Moto
	r53   *r53.Client
	cw    *cloudwatch.Client
	calls *counting
	dns   *lab.DNSServer
}

// startMoto runs the emulator with clients built as the command builds
// them (NewClient, NewCloudWatch), through a request counter.
func startMoto(t *testing.T) *motoEnv {
	t.Helper()
	m := testkit.StartMoto(t) // dummy credentials only: nothing can reach real AWS
	// The counting client is a plain *http.Client, to which the SDK cannot
	// add a CA bundle; the emulator is plain HTTP anyway.
	t.Setenv("AWS_CA_BUNDLE", "")
	calls := &counting{next: http.DefaultTransport}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(&http.Client{Transport: calls}))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lab.NewDNSServer("127.0.0.1:0", map[string][]netip.Addr{albName: {albIP}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &motoEnv{moto: m, r53: NewClient(cfg, m.URL()), cw: NewCloudWatch(cfg, "us-east-1", m.URL()), calls: calls, dns: srv}
}

func (e *motoEnv) reset(t *testing.T) {
	t.Helper()
	resp, err := http.Post(e.moto.URL()+"/moto-api/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func (e *motoEnv) plan(t *testing.T, opts PlanOptions) []Check {
	t.Helper()
	checks, err := Plan(shopConfig(t, e.dns.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := Resolve(context.Background(), checks); err != nil {
		t.Fatal(err)
	}
	return checks
}

func (e *motoEnv) create(t *testing.T, checks []Check, opts CreateOptions) []Result {
	t.Helper()
	res, err := Create(context.Background(), e.r53, checks, opts)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res
}

// foreign creates a check that is not edgeprobe's (tagged by someone else).
func (e *motoEnv) foreign(t *testing.T) string {
	t.Helper()
	out, err := e.r53.CreateHealthCheck(context.Background(), &r53.CreateHealthCheckInput{
		CallerReference: aws.String("someone-else-1"),
		HealthCheckConfig: &types.HealthCheckConfig{
			Type: types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String("other.example.org"),
			Port: aws.Int32(443), ResourcePath: aws.String("/"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.HealthCheck.Id)
	_, err = e.r53.ChangeTagsForResource(context.Background(), &r53.ChangeTagsForResourceInput{
		ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id),
		AddTags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("theirs")}, {Key: aws.String("team"), Value: aws.String("web")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *motoEnv) allIDs(t *testing.T) []string {
	t.Helper()
	out, err := e.r53.ListHealthChecks(context.Background(), &r53.ListHealthChecksInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, hc := range out.HealthChecks {
		ids = append(ids, aws.ToString(hc.Id))
	}
	slices.Sort(ids)
	return ids
}

func actions(res []Result) map[string]Action {
	m := map[string]Action{}
	for _, r := range res {
		m[r.Key()] = r.Action
	}
	return m
}

// awsCLIChecks reads the health checks with the Debian awscli, a client
// independent of the Go SDK.
func awsCLIChecks(t *testing.T, endpoint string) map[string]map[string]any {
	t.Helper()
	out, err := exec.Command("aws", "route53", "list-health-checks", "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("aws route53 list-health-checks: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var doc struct {
		HealthChecks []struct {
			ID                string         `json:"Id"`
			CallerReference   string         `json:"CallerReference"`
			HealthCheckConfig map[string]any `json:"HealthCheckConfig"`
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("awscli output: %v\n%s", err, out)
	}
	m := map[string]map[string]any{}
	for _, hc := range doc.HealthChecks {
		hc.HealthCheckConfig["CallerReference"] = hc.CallerReference
		m[hc.ID] = hc.HealthCheckConfig
	}
	return m
}

// TestHealthChecksMoto: create, idempotency, immutable changes, list,
// delete against the emulator. One emulator, reset between steps.
func TestHealthChecksMoto(t *testing.T) {
	e := startMoto(t)
	ctx := context.Background()

	t.Run("create", func(t *testing.T) {
		e.reset(t)
		checks := e.plan(t, PlanOptions{Regions: []string{"us-east-1", "eu-west-1", "ap-northeast-1", "sa-east-1"}})
		res := e.create(t, checks, CreateOptions{})
		if len(res) != 3 {
			t.Fatalf("%d results, want 3", len(res))
		}
		cli := awsCLIChecks(t, e.moto.URL())
		for i, r := range res {
			c := &checks[i]
			if r.Action != Created || r.ID == "" {
				t.Fatalf("%s: %+v", r.Key(), r)
			}
			// Read back with the SDK...
			got, err := e.r53.GetHealthCheck(ctx, &r53.GetHealthCheckInput{HealthCheckId: aws.String(r.ID)})
			if err != nil {
				t.Fatal(err)
			}
			if s := settingsOf(got.HealthCheck.HealthCheckConfig); !settingsEqual(s, c.Settings) {
				t.Errorf("%s: stored %+v, planned %+v", c.Key(), s, c.Settings)
			}
			if ref := aws.ToString(got.HealthCheck.CallerReference); ref != c.CallerReference {
				t.Errorf("%s: reference %q, want %q", c.Key(), ref, c.CallerReference)
			}
			tags, err := e.r53.ListTagsForResource(ctx, &r53.ListTagsForResourceInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(r.ID)})
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]string{}
			for _, tg := range tags.ResourceTagSet.Tags {
				have[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			if !mapsEqual(have, c.Tags) {
				t.Errorf("%s: tags %v, want %v", c.Key(), have, c.Tags)
			}
			// ...and with awscli.
			hc := cli[r.ID]
			if hc == nil {
				t.Fatalf("awscli does not list %s", r.ID)
			}
			wantIP := any(nil)
			if c.IPAddress != "" {
				wantIP = c.IPAddress
			}
			for k, want := range map[string]any{
				"Type": c.Type, "FullyQualifiedDomainName": c.FQDN, "IPAddress": wantIP, "Port": float64(c.Port),
				"ResourcePath": c.ResourcePath, "RequestInterval": 30.0, "FailureThreshold": 3.0,
				"MeasureLatency": true, "EnableSNI": c.EnableSNI, "CallerReference": c.CallerReference,
			} {
				if hc[k] != want {
					t.Errorf("awscli %s %s = %v, want %v", c.Key(), k, hc[k], want)
				}
			}
			regions, _ := hc["Regions"].([]any)
			if len(regions) != 4 || regions[0] != "us-east-1" {
				t.Errorf("awscli %s Regions = %v", c.Key(), hc["Regions"])
			}
		}
		origin := cli[res[slices.IndexFunc(res, func(r Result) bool { return r.Key() == "shop/origin" })].ID]
		if origin["FullyQualifiedDomainName"] != "www.example.com" || origin["IPAddress"] != albIP.String() {
			t.Errorf("shop/origin: site host with the ALB's address, got %v", origin)
		}
	})

	t.Run("second create changes nothing", func(t *testing.T) {
		e.reset(t)
		e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		before := e.allIDs(t)
		res := e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		for _, r := range res {
			if r.Action != Unchanged {
				t.Errorf("%s: %s %v, want unchanged", r.Key(), r.Action, r.Changes)
			}
		}
		if after := e.allIDs(t); !slices.Equal(before, after) {
			t.Errorf("checks %v became %v", before, after)
		}
		// The ALB answering with another of its addresses is not a change.
		e.dns.Set(albName, netip.MustParseAddr("52.95.110.5"), albIP)
		res = e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		if a := actions(res)["shop/origin"]; a != Unchanged {
			t.Errorf("ALB address order changed: %s", a)
		}
		// It no longer having the address is (in place: IPAddress can change).
		e.dns.Set(albName, netip.MustParseAddr("52.95.110.6"))
		defer e.dns.Set(albName, albIP)
		res = e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		if a := actions(res)["shop/origin"]; a != Updated {
			t.Errorf("ALB address gone: %s", a)
		}
		if after := e.allIDs(t); !slices.Equal(before, after) {
			t.Errorf("checks %v became %v", before, after)
		}
	})

	t.Run("mutable change updates in place", func(t *testing.T) {
		e.reset(t)
		e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		before := e.allIDs(t)
		res := e.create(t, e.plan(t, PlanOptions{Regions: CheckerRegions, FailureThreshold: 5}), CreateOptions{})
		for _, r := range res {
			if r.Action != Updated || len(r.Changes) != 2 {
				t.Errorf("%s: %s %v, want updated (regions, threshold)", r.Key(), r.Action, r.Changes)
			}
		}
		if after := e.allIDs(t); !slices.Equal(before, after) {
			t.Errorf("checks %v became %v", before, after)
		}
		ours, err := List(ctx, e.r53, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ours {
			if len(o.Regions) != 8 || o.FailureThreshold != 5 {
				t.Errorf("%s: regions %v threshold %d", o.Key(), o.Regions, o.FailureThreshold)
			}
		}
	})

	t.Run("immutable change needs replace", func(t *testing.T) {
		e.reset(t)
		e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		before := e.allIDs(t)
		n := e.calls.n.Load()
		res, err := Create(ctx, e.r53, e.plan(t, PlanOptions{RequestInterval: 10}), CreateOptions{})
		if !errors.Is(err, ErrNeedsReplace) || !strings.Contains(err.Error(), "cannot change after creation: run `probe healthchecks create --replace`") {
			t.Fatalf("error %v, want ErrNeedsReplace", err)
		}
		if len(res) != 3 || res[0].Action != Refused || !slices.Contains(res[0].Changes, "RequestInterval 30 → 10") {
			t.Errorf("refused results %+v", res)
		}
		// Refused before any change: only the list and tag reads were sent.
		if sent := e.calls.n.Load() - n; sent != 2 {
			t.Errorf("%d requests, want 2 (list, tags)", sent)
		}
		if after := e.allIDs(t); !slices.Equal(before, after) {
			t.Errorf("refused create changed %v to %v", before, after)
		}
		res = e.create(t, e.plan(t, PlanOptions{RequestInterval: 10}), CreateOptions{Replace: true})
		ours, err := List(ctx, e.r53, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != 3 {
			t.Fatalf("%d checks after replace, want 3", len(ours))
		}
		for i, r := range res {
			if r.Action != Replaced || r.OldID == "" || r.OldID == r.ID || slices.Contains(e.allIDs(t), r.OldID) {
				t.Errorf("%s: %+v", r.Key(), r)
			}
			if ours[i].RequestInterval != 10 {
				t.Errorf("%s: interval %d", ours[i].Key(), ours[i].RequestInterval)
			}
		}
	})

	t.Run("list and delete touch only ours", func(t *testing.T) {
		e.reset(t)
		theirs := e.foreign(t)
		res := e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		ours, err := List(ctx, e.r53, ListOptions{Status: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != 3 {
			t.Fatalf("list: %d checks, want 3 of ours", len(ours))
		}
		for _, o := range ours {
			if o.ID == theirs || o.Target == "" || o.Status != "1/1 checkers ok" {
				t.Errorf("listed %+v", o)
			}
		}
		if shop, _ := List(ctx, e.r53, ListOptions{Target: "shop"}); len(shop) != 2 {
			t.Errorf("list --target shop: %d", len(shop))
		}
		// An untagged check with our reference (a run stopped before
		// tagging) is adopted, not duplicated.
		_, err = e.r53.DeleteHealthCheck(ctx, &r53.DeleteHealthCheckInput{HealthCheckId: aws.String(res[0].ID)})
		if err != nil {
			t.Fatal(err)
		}
		c := e.plan(t, PlanOptions{})
		out, err := e.r53.CreateHealthCheck(ctx, &r53.CreateHealthCheckInput{CallerReference: aws.String(c[0].CallerReference), HealthCheckConfig: c[0].Config()})
		if err != nil {
			t.Fatal(err)
		}
		res = e.create(t, c, CreateOptions{})
		if res[0].ID != aws.ToString(out.HealthCheck.Id) || res[0].Action != Updated || len(res[0].Notes) == 0 {
			t.Errorf("untagged check with our reference: %+v", res[0])
		}

		gone, err := Delete(ctx, e.r53, DeleteOptions{Target: "api", DryRun: true})
		if err != nil || len(gone) != 1 || len(e.allIDs(t)) != 4 {
			t.Fatalf("delete --dry-run: %v %v, %d checks left", gone, err, len(e.allIDs(t)))
		}
		if gone, err = Delete(ctx, e.r53, DeleteOptions{Target: "api"}); err != nil || len(gone) != 1 || gone[0].Key() != "api/origin" {
			t.Fatalf("delete --target api: %v %v", gone, err)
		}
		if gone, err = Delete(ctx, e.r53, DeleteOptions{}); err != nil || len(gone) != 2 {
			t.Fatalf("delete: %v %v", gone, err)
		}
		if left := e.allIDs(t); !slices.Equal(left, []string{theirs}) {
			t.Errorf("left %v, want only %s", left, theirs)
		}
	})

	t.Run("invalid settings are refused before any call", func(t *testing.T) {
		checks := e.plan(t, PlanOptions{})
		n := e.calls.n.Load()
		checks[0].Regions = checks[0].Regions[:2]
		checks[1].RequestInterval = 20
		_, err := Create(ctx, e.r53, checks, CreateOptions{})
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), "2 regions") || !strings.Contains(err.Error(), "request interval 20 s") {
			t.Errorf("error %v", err)
		}
		if sent := e.calls.n.Load() - n; sent != 0 {
			t.Errorf("%d requests sent", sent)
		}
	})

	t.Run("compare", func(t *testing.T) {
		e.reset(t)
		e.create(t, e.plan(t, PlanOptions{}), CreateOptions{})
		ours, err := List(ctx, e.r53, ListOptions{Target: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		cdn := ours[0]
		now := time.Now().UTC()
		at := now.Add(-10 * time.Minute)
		dims := func(kv ...string) []cwtypes.Dimension {
			var ds []cwtypes.Dimension
			for i := 0; i < len(kv); i += 2 {
				ds = append(ds, cwtypes.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
			}
			return ds
		}
		datum := func(name string, d []cwtypes.Dimension, values, counts []float64) cwtypes.MetricDatum {
			return cwtypes.MetricDatum{MetricName: aws.String(name), Dimensions: d, Timestamp: aws.Time(at),
				Unit: cwtypes.StandardUnitMilliseconds, Values: values, Counts: counts}
		}
		// Route 53's metrics, as its checkers publish them (moto lets a test
		// write to AWS/Route53; AWS would not).
		r53Data := []cwtypes.MetricDatum{
			datum("ConnectionTime", dims("HealthCheckId", cdn.ID, "Region", "us-east-1"), []float64{10, 20}, nil),
			datum("ConnectionTime", dims("HealthCheckId", cdn.ID, "Region", "eu-west-1"), []float64{30}, nil),
			datum("ConnectionTime", dims("HealthCheckId", cdn.ID), []float64{10, 20, 30}, nil),
			datum("SSLHandshakeTime", dims("HealthCheckId", cdn.ID, "Region", "eu-west-1"), []float64{44}, nil),
			datum("TimeToFirstByte", dims("HealthCheckId", cdn.ID, "Region", "eu-west-1"), []float64{100, 120}, nil),
			datum("TimeToFirstByte", dims("HealthCheckId", "someone-elses", "Region", "eu-west-1"), []float64{999}, nil),
		}
		agent := func(name string, values, counts []float64) cwtypes.MetricDatum {
			return datum(name, dims("Target", "shop", "Role", "cdn", "Location", "eu-west-1"), values, counts)
		}
		agentData := []cwtypes.MetricDatum{
			agent("ConnectionTime", []float64{8, 12}, []float64{3, 1}),
			agent("SSLHandshakeTime", []float64{20}, []float64{4}),
			agent("TimeToFirstByte", []float64{50}, []float64{4}),
			agent("FirstByteTime", []float64{90, 110}, []float64{2, 2}),
			agent("TotalTime", []float64{200}, []float64{4}),
			datum("ConnectionTime", dims("Target", "shop", "Role", "origin", "Location", "eu-west-1"), []float64{1}, nil),
		}
		for ns, data := range map[string][]cwtypes.MetricDatum{Route53Namespace: r53Data, "EdgeProbe": agentData} {
			if _, err := e.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: data}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := Compare(ctx, e.cw, e.cw, []Existing{cdn}, CompareOptions{Window: time.Hour, End: now})
		if err != nil {
			t.Fatal(err)
		}
		type key struct{ phase, where, source, metric string }
		want := map[key][2]float64{ // average, samples
			{"connect", AllRegions, SourceRoute53, "ConnectionTime"}:  {20, 3},
			{"connect", "eu-west-1", SourceRoute53, "ConnectionTime"}: {30, 1},
			{"connect", "eu-west-1", SourceAgent, "ConnectionTime"}:   {9, 4},
			{"connect", "us-east-1", SourceRoute53, "ConnectionTime"}: {15, 2},
			{"tls", "eu-west-1", SourceRoute53, "SSLHandshakeTime"}:   {44, 1},
			{"tls", "eu-west-1", SourceAgent, "SSLHandshakeTime"}:     {20, 4},
			{"ttfb", "eu-west-1", SourceRoute53, "TimeToFirstByte"}:   {110, 2},
			{"ttfb", "eu-west-1", SourceAgent, "TimeToFirstByte"}:     {50, 4},
			{"ttfb", "eu-west-1", SourceAgent, "FirstByteTime"}:       {100, 4},
		}
		var order []key
		for _, r := range got.Rows {
			k := key{r.Phase, r.Where, r.Source, r.Metric}
			order = append(order, k)
			w, ok := want[k]
			if !ok {
				t.Errorf("unexpected row %+v", r)
				continue
			}
			if r.AverageMS == nil || *r.AverageMS != w[0] || r.Samples != w[1] || r.HealthCheckID != cdn.ID || r.Target != "shop" || r.Role != "cdn" {
				t.Errorf("%v: avg %v samples %v, want %v", k, ptr(r.AverageMS), r.Samples, w)
			}
			if r.P50MS != nil {
				t.Errorf("%v: p50 %v from an emulator that computes no percentiles", k, *r.P50MS)
			}
		}
		if len(got.Rows) != len(want) {
			t.Errorf("%d rows, want %d: %v", len(got.Rows), len(want), order)
		}
		if order[0] != (key{"connect", AllRegions, SourceRoute53, "ConnectionTime"}) || order[len(order)-1] != (key{"ttfb", "eu-west-1", SourceAgent, "FirstByteTime"}) {
			t.Errorf("row order %v", order)
		}
		t.Logf("notes: %q", got.Notes)
		var b strings.Builder
		if err := WriteComparison(&b, got); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"shop/cdn (health check " + cdn.ID, "TimeToFirstByte (ttfb)", "FirstByteTime (first_byte)", "110.0"} {
			if !strings.Contains(b.String(), s) {
				t.Errorf("table lacks %q:\n%s", s, b.String())
			}
		}
	})
}

func ptr(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}
