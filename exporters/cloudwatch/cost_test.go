package cloudwatch

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/edgeprobe/edgeprobe/probe"
)

func TestMonthlyEstimates(t *testing.T) {
	cfg, err := probe.Parse("test.yml", []byte(`
location: eu-west-1
defaults: {interval: 30s}
targets:
  - name: shop
    url: https://www.example.com/health
    roles:
      cdn: {}
      origin: {connect_to: alb.example.com}
    conditional: true
  - name: api
    url: https://api.example.com/
    interval: 5m
  - name: many
    url: https://many.example.com/
    all_addresses: true
    ip_version: ip4
exporters:
  cloudwatch: {flush_interval: 60s}
`))
	if err != nil {
		t.Fatal(err)
	}
	// shop: 2 roles × 10 (conditional); api: 9; many: 4 addresses × 9 + 1.
	if n := MonthlyMetricCount(cfg); n != 2*10+9+(4*9+1) {
		t.Errorf("MonthlyMetricCount = %d, want 66", n)
	}
	// 43,800 one-minute flushes, each under 1,000 datums: one call each.
	if n := MonthlyPutMetricDataCalls(cfg); n != 43800 {
		t.Errorf("MonthlyPutMetricDataCalls = %d, want 43800", n)
	}
	m, c := MonthlyCostUSD(66, 43800)
	if m != 66*0.30 || c != 0.438 {
		t.Errorf("MonthlyCostUSD = %v, %v", m, c)
	}

	cfg.Targets = nil
	if MonthlyMetricCount(cfg) != 0 || MonthlyPutMetricDataCalls(cfg) != 0 {
		t.Error("no targets, yet metrics or calls")
	}
}

// TestIAMPolicy: the shipped policy is valid JSON and grants exactly
// PutMetricData in the default namespace.
func TestIAMPolicy(t *testing.T) {
	b, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Statement []struct {
			Effect, Action, Resource string
			Condition                map[string]map[string]string
		}
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Statement) != 1 {
		t.Fatalf("statements: %+v", p.Statement)
	}
	s := p.Statement[0]
	if s.Effect != "Allow" || s.Action != "cloudwatch:PutMetricData" || s.Condition["StringEquals"]["cloudwatch:namespace"] != DefaultNamespace {
		t.Errorf("policy: %+v", s)
	}
}
