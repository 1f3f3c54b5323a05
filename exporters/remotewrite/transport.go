package remotewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// headerTransport adds the configured headers and the URL's basic auth.
// Credentials are taken out of the URL so that no error message (which Go's
// HTTP client builds from the request URL) can carry them.
type headerTransport struct {
	next    http.RoundTripper
	headers map[string]string
	user    *url.Userinfo
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not modify its request
	req.Header.Set("User-Agent", "edgeprobe")
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	if t.user != nil {
		pw, _ := t.user.Password()
		req.SetBasicAuth(t.user.Username(), pw)
	}
	return t.next.RoundTrip(req)
}

// sigv4Transport signs each request for Amazon Managed Service for
// Prometheus (service "aps") with AWS Signature Version 4.
type sigv4Transport struct {
	next    http.RoundTripper
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	region  string
	service string
	now     func() time.Time
}

func newSigV4Transport(ctx context.Context, next http.RoundTripper, region, service string) (*sigv4Transport, error) {
	opts := []func(*awsconfig.LoadOptions) error{}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("remote write: sigv4: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("remote write: sigv4: no region (set sigv4.region or AWS_REGION)")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("remote write: sigv4: no AWS credentials provider")
	}
	if service == "" {
		service = "aps"
	}
	return &sigv4Transport{next: next, creds: cfg.Credentials, signer: v4.NewSigner(), region: cfg.Region, service: service, now: time.Now}, nil
}

func (t *sigv4Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sigv4: read body: %w", err)
		}
		body = b
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])

	req = req.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	// AMP, like S3, wants the payload hash as a header as well as in the signature.
	req.Header.Set("X-Amz-Content-Sha256", hash)

	creds, err := t.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("sigv4: credentials: %w", err)
	}
	if err := t.signer.SignHTTP(ctx, creds, req, hash, t.service, t.region, t.now()); err != nil {
		return nil, fmt.Errorf("sigv4: sign: %w", err)
	}
	return t.next.RoundTrip(req)
}
