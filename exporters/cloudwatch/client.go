package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeprobe/edgeprobe/probe"
)

// sdkMaxBackoff caps the SDK's own wait between attempts of one call; the
// queue does the patient retrying across flushes.
const sdkMaxBackoff = 2 * time.Second

// newClient builds the CloudWatch client: the SDK's default chain for
// credentials, region (config, then AWS_REGION / AWS_DEFAULT_REGION /
// profile, then EC2 instance metadata) and profile (AWS_PROFILE); the
// config's endpoint as BaseEndpoint, else the standard AWS_ENDPOINT_URL /
// AWS_ENDPOINT_URL_CLOUDWATCH variables (the SDK reads them); AWS JSON 1.0
// on the wire; request compression (gzip) as the SDK does by default.
func newClient(ctx context.Context, cfg probe.CloudWatchConfig, o Options, rt http.RoundTripper, calls *prometheus.CounterVec) (*cloudwatch.Client, string, error) {
	var load []func(*config.LoadOptions) error
	if cfg.Region != "" {
		load = append(load, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, "", fmt.Errorf("cloudwatch: aws config: %w", err)
	}
	if awsCfg.Region == "" {
		// On EC2, the instance's region. (Not config.WithEC2IMDSRegion:
		// there an unreachable or refusing metadata service fails the
		// whole config load.)
		awsCfg.Region = imdsRegion(ctx, awsCfg)
	}
	if awsCfg.Region == "" {
		return nil, "", errors.New("cloudwatch: no AWS region: set exporters.cloudwatch.region, AWS_REGION or a profile's region")
	}
	client := cloudwatch.NewFromConfig(awsCfg, func(co *cloudwatch.Options) {
		if cfg.Endpoint != "" {
			co.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// The service and moto both serve AWS JSON 1.0; the client's
		// default, Smithy RPC v2 CBOR, is not served by moto, and tests
		// must exercise what production sends.
		co.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		co.HTTPClient = &http.Client{Transport: rt}
		co.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = sdkMaxBackoff
			// No client-side retry quota: during a long outage it would
			// fail calls before they reach the network; the queue's
			// backoff already spaces them out.
			so.RateLimiter = ratelimit.None
		})
		co.APIOptions = append(co.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(&attemptCounter{calls: calls}, "Retry", middleware.After)
		})
	})
	return client, awsCfg.Region, nil
}

// imdsRegion asks EC2 instance metadata for the region, briefly; "" when
// it does not answer (not on EC2, AWS_EC2_METADATA_DISABLED=true).
func imdsRegion(ctx context.Context, cfg aws.Config) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := imds.NewFromConfig(cfg).GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		return ""
	}
	return out.Region
}

// attemptCounter counts every HTTP attempt (the SDK's retries included) in
// edgeprobe_cloudwatch_api_calls_total{operation,result}. It sits inside
// the retry loop, after the response is deserialized.
type attemptCounter struct{ calls *prometheus.CounterVec }

func (*attemptCounter) ID() string { return "EdgeProbeCountAttempts" }

func (c *attemptCounter) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleFinalize(ctx, in)
	c.calls.WithLabelValues(middleware.GetOperationName(ctx), callResult(err)).Inc()
	return out, md, err
}

// Results of edgeprobe_cloudwatch_api_calls_total.
const (
	resultSuccess   = "success"
	resultThrottled = "throttled"
	resultError     = "error"
)

func callResult(err error) string {
	switch {
	case err == nil:
		return resultSuccess
	case isThrottle(err):
		return resultThrottled
	}
	return resultError
}

func isThrottle(err error) bool {
	for _, t := range retry.DefaultThrottles {
		if t.IsErrorThrottle(err).Bool() {
			return true
		}
	}
	return false
}

// authCodes are 4xx error codes an operator can fix without the request
// changing (credentials, permissions): worth keeping the data for.
var authCodes = map[string]bool{
	"AccessDenied": true, "AccessDeniedException": true, "ExpiredToken": true, "ExpiredTokenException": true,
	"RequestExpired": true, "InvalidClientTokenId": true, "UnrecognizedClientException": true,
	"SignatureDoesNotMatch": true, "IncompleteSignature": true, "InvalidSignatureException": true,
	"MissingAuthenticationToken": true, "RequestTimeTooSkewed": true,
}

// retryable says whether a failed put is worth sending again: throttling,
// 5xx, network errors, timeouts and credential or permission problems are;
// a 4xx about the request itself (InvalidParameterValue, ...) is not.
func retryable(err error) bool {
	if isThrottle(err) {
		return true
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return true // never answered: network, timeout, credentials
	}
	code := re.HTTPStatusCode()
	if code >= 500 || code == http.StatusTooManyRequests || code == http.StatusUnauthorized || code == http.StatusForbidden {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && authCodes[ae.ErrorCode()] {
		return true
	}
	return code < 400
}

// redactEndpoint drops user info and query from an endpoint for logs.
func redactEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
