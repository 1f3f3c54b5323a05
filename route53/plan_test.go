package route53

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/edgeprobe/edgeprobe/internal/lab"
	"github.com/edgeprobe/edgeprobe/probe"
)

const albName = "my-alb-123.eu-west-1.elb.amazonaws.com"

// albIP is a public address (in an AWS range) that Route 53 would accept;
// nothing is ever sent to it.
var albIP = netip.MustParseAddr("52.95.110.7")

// testConfig writes a config and parses it as `probe` would.
func testConfig(t *testing.T, body string) *probe.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edgeprobe.yml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := probe.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func shopConfig(t *testing.T, dnsServer string) *probe.Config {
	return testConfig(t, `
defaults: {dns_server: "`+dnsServer+`"}
targets:
  - name: shop
    url: https://www.example.com/health?deep=1
    roles:
      cdn: {}
      origin: {connect_to: `+albName+`}
  - name: api
    url: http://api.example.com:8080/ping
    headers: {Authorization: "Bearer x"}
    roles:
      origin: {connect_to: "52.95.110.8:8081"}
`)
}

func findCheck(t *testing.T, checks []Check, key string) *Check {
	t.Helper()
	for i := range checks {
		if checks[i].Key() == key {
			return &checks[i]
		}
	}
	t.Fatalf("no check %s in %d checks", key, len(checks))
	return nil
}

// TestPlanMapping: each role becomes the check that requests what the agent
// requests, as closely as Route 53 allows.
func TestPlanMapping(t *testing.T) {
	checks, err := Plan(shopConfig(t, "127.0.0.1:53"), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 3 {
		t.Fatalf("%d checks, want 3", len(checks))
	}
	cdn := findCheck(t, checks, "shop/cdn")
	want := Settings{
		Type: "HTTPS", FQDN: "www.example.com", Port: 443, ResourcePath: "/health?deep=1",
		Regions: DefaultRegions, RequestInterval: 30, FailureThreshold: 3, MeasureLatency: true, EnableSNI: true,
	}
	if !settingsEqual(cdn.Settings, want) || cdn.ResolveHost != "" || cdn.AWSEndpoint {
		t.Errorf("cdn: %+v resolve %q aws %v, want %+v", cdn.Settings, cdn.ResolveHost, cdn.AWSEndpoint, want)
	}
	// origin: the site's name as Host/SNI, the ALB's address to connect to.
	origin := findCheck(t, checks, "shop/origin")
	if origin.FQDN != "www.example.com" || origin.ResolveHost != albName || origin.IPAddress != "" || !origin.EnableSNI || !origin.AWSEndpoint {
		t.Errorf("origin: %+v resolve %q aws %v", origin.Settings, origin.ResolveHost, origin.AWSEndpoint)
	}
	wantTags := map[string]string{TagName: "edgeprobe shop/origin", TagTarget: "shop", TagRole: "origin", TagManaged: "true"}
	if !mapsEqual(origin.Tags, wantTags) {
		t.Errorf("tags %v, want %v", origin.Tags, wantTags)
	}
	// An IP literal connect_to: no lookup, its port, HTTP without SNI.
	api := findCheck(t, checks, "api/origin")
	if api.Type != "HTTP" || api.FQDN != "api.example.com" || api.IPAddress != "52.95.110.8" || api.Port != 8081 || api.EnableSNI || api.ResourcePath != "/ping" {
		t.Errorf("api/origin: %+v", api.Settings)
	}
	if !hasWarning(api, "Authorization") || !hasWarning(api, "Host api.example.com:8081") {
		t.Errorf("api/origin warnings %q: want the header and the Host port", api.Warnings)
	}

	// The caller reference is stable, prefixed, and follows the settings.
	again, err := Plan(shopConfig(t, "127.0.0.1:53"), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range checks {
		if checks[i].CallerReference != again[i].CallerReference {
			t.Errorf("%s: reference %s then %s", checks[i].Key(), checks[i].CallerReference, again[i].CallerReference)
		}
		if !strings.HasPrefix(checks[i].CallerReference, ReferencePrefix) || len(checks[i].CallerReference) > 64 {
			t.Errorf("reference %q", checks[i].CallerReference)
		}
	}
	fast, err := Plan(shopConfig(t, "127.0.0.1:53"), PlanOptions{RequestInterval: 10, Target: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fast) != 2 || fast[0].CallerReference == findCheck(t, checks, fast[0].Key()).CallerReference {
		t.Errorf("--target shop --interval 10: %d checks, reference unchanged", len(fast))
	}

	// The name mode keeps Route 53 resolving the ALB itself, and says what
	// it costs.
	named, err := Plan(shopConfig(t, "127.0.0.1:53"), PlanOptions{OriginMode: OriginName})
	if err != nil {
		t.Fatal(err)
	}
	o := findCheck(t, named, "shop/origin")
	if o.FQDN != albName || o.ResolveHost != "" || o.IPAddress != "" || !hasWarning(o, "Host and SNI "+albName) {
		t.Errorf("origin mode name: %+v warnings %q", o.Settings, o.Warnings)
	}
	if _, err := Plan(shopConfig(t, "127.0.0.1:53"), PlanOptions{Target: "nope"}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("unknown target: %v", err)
	}
}

// TestPlanValidation: what real Route 53 refuses (and neither the SDK nor
// the emulator checks) is refused by Plan, with every problem named.
func TestPlanValidation(t *testing.T) {
	cfg := shopConfig(t, "127.0.0.1:53")
	for _, tc := range []struct {
		opts PlanOptions
		want []string
	}{
		{PlanOptions{Regions: []string{"us-east-1", "eu-west-1"}}, []string{"2 regions: Route 53 needs 3 to 8"}},
		{PlanOptions{RequestInterval: 20}, []string{"request interval 20 s: Route 53 allows 10 or 30"}},
		{PlanOptions{Regions: []string{"us-east-1", "eu-central-1", "eu-west-1", "eu-west-1"}}, []string{
			`region "eu-central-1" is not a Route 53 checker region`, `region "eu-west-1" is listed twice`}},
		{PlanOptions{FailureThreshold: 11, OriginMode: "dns"}, []string{"failure threshold 11", `origin mode "dns"`}},
	} {
		_, err := Plan(cfg, tc.opts)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%+v: error %v, want a *ValidationError", tc.opts, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %q", tc.opts, err, w)
			}
		}
	}
	long := testConfig(t, `
targets:
  - name: long
    url: https://www.example.com/`+strings.Repeat("a", 256)+`
  - name: private
    url: https://www.example.com/
    roles: {origin: {connect_to: "10.1.2.3"}}
`)
	_, err := Plan(long, PlanOptions{})
	for _, w := range []string{"long/default: path and query are 257 characters", "private/origin: 10.1.2.3, an address Route 53 cannot check"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

// TestResolve: the ALB name is looked up with the target's own resolver
// (dns_server); a private answer (an internal ALB) is refused.
func TestResolve(t *testing.T) {
	srv, err := lab.NewDNSServer("127.0.0.1:0", map[string][]netip.Addr{
		albName: {netip.MustParseAddr("52.95.110.9"), albIP},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	checks, err := Plan(shopConfig(t, srv.Addr()), PlanOptions{Target: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Resolve(context.Background(), checks); err != nil {
		t.Fatal(err)
	}
	o := findCheck(t, checks, "shop/origin")
	if o.IPAddress != albIP.String() || !slices.Equal(o.ResolvedIPs, []string{albIP.String(), "52.95.110.9"}) {
		t.Errorf("resolved %q %q, want the first of the sorted addresses", o.IPAddress, o.ResolvedIPs)
	}
	if !hasWarning(o, "load balancer addresses change") {
		t.Errorf("warnings %q", o.Warnings)
	}
	if findCheck(t, checks, "shop/cdn").IPAddress != "" {
		t.Error("the cdn way got an address")
	}

	srv.Set(albName, netip.MustParseAddr("10.0.3.4"))
	checks, _ = Plan(shopConfig(t, srv.Addr()), PlanOptions{Target: "shop"})
	if err := Resolve(context.Background(), checks); err == nil || !strings.Contains(err.Error(), "internal load balancer") {
		t.Errorf("private ALB address: %v", err)
	}
}

// TestPrice: list prices per check; regions do not count.
func TestPrice(t *testing.T) {
	for _, tc := range []struct {
		s    Settings
		aws  bool
		want float64
	}{
		{Settings{Type: "HTTP", RequestInterval: 30}, true, 0.50},
		{Settings{Type: "HTTP", RequestInterval: 30}, false, 0.75},
		{Settings{Type: "HTTPS", RequestInterval: 30, MeasureLatency: true}, true, 2.50},
		{Settings{Type: "HTTPS", RequestInterval: 30, MeasureLatency: true}, false, 4.75},
		{Settings{Type: "HTTPS", RequestInterval: 10, MeasureLatency: true, Regions: CheckerRegions}, false, 6.75},
		{Settings{Type: "HTTP", RequestInterval: 10, MeasureLatency: true}, true, 2.50},
	} {
		c := Check{Settings: tc.s, AWSEndpoint: tc.aws}
		if got := c.MonthlyPrice().Monthly; math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%+v aws=%v: $%.2f, want $%.2f", tc.s, tc.aws, got, tc.want)
		}
	}
	checks := []Check{
		{Settings: Settings{Type: "HTTPS", RequestInterval: 30, MeasureLatency: true}, AWSEndpoint: true},
		{Settings: Settings{Type: "HTTPS", RequestInterval: 30, MeasureLatency: true}},
	}
	if total, allAWS := TotalPrice(checks); math.Abs(total-7.25) > 1e-9 || math.Abs(allAWS-5) > 1e-9 {
		t.Errorf("total $%.2f (all AWS $%.2f), want $7.25 ($5.00)", total, allAWS)
	}
}

func settingsEqual(a, b Settings) bool { return reflect.DeepEqual(a, b) }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func hasWarning(c *Check, sub string) bool {
	for _, w := range c.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}
