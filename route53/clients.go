package route53

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

// Route53Region is where Route 53 (a global service) signs its API calls
// and the only region that has its CloudWatch metrics.
const Route53Region = "us-east-1"

// NewClient is the Route 53 client: cfg's credentials, region us-east-1,
// endpoint when not empty (else the SDK's, which honours AWS_ENDPOINT_URL
// and AWS_ENDPOINT_URL_ROUTE_53), and more retries than the default three
// because the whole account shares five Route 53 requests a second.
func NewClient(cfg aws.Config, endpoint string) *r53.Client {
	return r53.NewFromConfig(cfg, func(o *r53.Options) {
		o.Region = Route53Region
		o.RetryMaxAttempts = 6
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// NewCloudWatch is a CloudWatch client in region ("" keeps cfg's) that
// speaks AWS JSON 1.0 — a protocol the service and the emulator both serve
// (the SDK's default, RPC v2 CBOR, is not served by moto) — so what the
// tests exercise is what production sends. endpoint as for NewClient
// (AWS_ENDPOINT_URL_CLOUDWATCH).
func NewCloudWatch(cfg aws.Config, region, endpoint string) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		if region != "" {
			o.Region = region
		}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
	})
}
