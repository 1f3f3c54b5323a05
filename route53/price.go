package route53

import "github.com/aws/aws-sdk-go-v2/service/route53/types"

// Route 53 health check list prices, US dollars per check per month
// (docs/route53.md says where they come from). A check costs the basic
// price plus one optional-feature price for each of HTTPS, string
// matching, the fast (10 s) interval and latency measurement. The number
// of checker regions does not change the price.
const (
	PriceBasicAWS      = 0.50 // an AWS endpoint in the same account
	PriceBasicNonAWS   = 0.75 // any other endpoint
	PriceFeatureAWS    = 1.00
	PriceFeatureNonAWS = 2.00
)

// Price is one check's monthly list price.
type Price struct {
	Basic    float64  `json:"basic_usd"`
	Features []string `json:"features"`    // optional features that are billed
	Feature  float64  `json:"feature_usd"` // the price of each
	Monthly  float64  `json:"monthly_usd"`
}

// MonthlyPrice prices the check as an AWS endpoint when AWSEndpoint is set
// (a load balancer name), else as a non-AWS endpoint — the upper bound when
// the endpoint is in fact an AWS resource of this account.
func (c *Check) MonthlyPrice() Price { return c.price(c.AWSEndpoint) }

func (c *Check) price(awsEndpoint bool) Price {
	basic, feature := PriceBasicNonAWS, PriceFeatureNonAWS
	if awsEndpoint {
		basic, feature = PriceBasicAWS, PriceFeatureAWS
	}
	p := Price{Basic: basic, Features: []string{}, Feature: feature}
	t := types.HealthCheckType(c.Type)
	if t == types.HealthCheckTypeHttps || t == types.HealthCheckTypeHttpsStrMatch {
		p.Features = append(p.Features, "https")
	}
	if t == types.HealthCheckTypeHttpStrMatch || t == types.HealthCheckTypeHttpsStrMatch {
		p.Features = append(p.Features, "string_match")
	}
	if c.RequestInterval == 10 {
		p.Features = append(p.Features, "fast_interval")
	}
	if c.MeasureLatency {
		p.Features = append(p.Features, "latency_measurement")
	}
	p.Monthly = basic + feature*float64(len(p.Features))
	return p
}

// TotalPrice sums the checks' monthly prices as priced by MonthlyPrice, and
// the total if every endpoint counted as an AWS endpoint (the lower bound).
func TotalPrice(checks []Check) (monthly, ifAllAWS float64) {
	for i := range checks {
		monthly += checks[i].MonthlyPrice().Monthly
		ifAllAWS += checks[i].price(true).Monthly
	}
	return monthly, ifAllAWS
}
