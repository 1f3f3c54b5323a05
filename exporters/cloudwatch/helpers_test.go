package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dummyAWS points this process's AWS variables at dummy credentials (as
// testkit.StartMoto does), for tests on a fake endpoint.
func dummyAWS(t testing.TB) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		t.Setenv(k, v)
	}
}

func msec(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// okSample is a successful probe through a CDN (cache hit) with every phase.
func okSample(target, role string, start time.Time, total time.Duration) *probe.Sample {
	return &probe.Sample{Target: target, Role: role, Location: "test-loc", Result: &httptrace.Result{
		Start: start, Status: 200,
		Timings: httptrace.Timings{DNS: msec(2), Connect: msec(4), TLS: msec(9), TTFB: total - msec(18), Transfer: msec(3),
			Total: total, FirstByte: total - msec(3)},
		CDN: httptrace.CDN{Provider: httptrace.ProviderCloudFront, Cache: httptrace.CacheHit},
	}}
}

// failSample is a probe that failed to connect.
func failSample(target, role string, start time.Time) *probe.Sample {
	return &probe.Sample{Target: target, Role: role, Location: "test-loc", Result: &httptrace.Result{
		Start: start, Timings: httptrace.Timings{DNS: msec(3), Total: msec(1003)},
		Err: &httptrace.Error{Phase: httptrace.ErrConnect, Message: "refused"},
	}}
}

// testEnv is a sink under test with its registry.
type testEnv struct {
	reg  *prometheus.Registry
	self *selfmetrics.Metrics
	rec  *recorder
}

func newTestEnv() *testEnv {
	reg := prometheus.NewRegistry()
	return &testEnv{reg: reg, self: selfmetrics.New(reg), rec: &recorder{}}
}

// options are Options for a test sink: the registry, a recorder on the
// transport, quick backoff.
func (e *testEnv) options(t testing.TB) Options {
	return Options{
		Metrics: e.self, Registerer: e.reg, Logger: testkit.TestLogger(t, nil),
		FlushInterval: 200 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		RequestTimeout: 5 * time.Second, MaxAttempts: 2,
		WrapTransport: e.rec.wrap,
	}
}

// value reads one series of the registry: name and label pairs.
func (e *testEnv) value(name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	return testkit.GatheredValue(e.reg, name, want)
}

func (e *testEnv) dropped() float64 {
	return e.value("edgeprobe_exporter_dropped_total", "exporter", Name)
}

// recorder is the tests' transport: it records every PutMetricData request
// (datums, values, body sizes, whether the SDK gzipped it) and hands moto
// the body uncompressed. moto 5.2.1 gunzips a JSON body twice (once in its
// server, once in its response layer) and fails; production sends the
// gzipped body as the SDK made it.
type recorder struct {
	mu   sync.Mutex
	puts []putRecord
}

type putRecord struct {
	datums    int
	maxValues int
	wireBytes int // as the SDK sent it (gzipped or not)
	jsonBytes int // uncompressed
	gzipped   bool
	// timestamps of the datums, epoch seconds
	timestamps []float64
	// StorageResolution of the datums (0: absent)
	resolutions []int
}

func (r *recorder) wrap(next http.RoundTripper) http.RoundTripper {
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		target := req.Header.Get("X-Amz-Target")
		if !strings.HasSuffix(target, ".PutMetricData") {
			return next.RoundTrip(req)
		}
		wire, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body := wire
		gz := req.Header.Get("Content-Encoding") == "gzip"
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(wire))
			if err != nil {
				return nil, fmt.Errorf("recorder: gzip: %w", err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				return nil, fmt.Errorf("recorder: gunzip: %w", err)
			}
			req.Header.Del("Content-Encoding")
		}
		var in struct {
			MetricData []struct {
				Values            []float64
				Timestamp         float64
				StorageResolution int
			}
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, fmt.Errorf("recorder: body is not JSON: %w", err)
		}
		rec := putRecord{datums: len(in.MetricData), wireBytes: len(wire), jsonBytes: len(body), gzipped: gz}
		for _, d := range in.MetricData {
			rec.maxValues = max(rec.maxValues, len(d.Values))
			rec.timestamps = append(rec.timestamps, d.Timestamp)
			rec.resolutions = append(rec.resolutions, d.StorageResolution)
		}
		r.mu.Lock()
		r.puts = append(r.puts, rec)
		r.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		return next.RoundTrip(req)
	})
}

func (r *recorder) records() []putRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]putRecord(nil), r.puts...)
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// reader is an independent Go client that reads back from moto.
type reader struct {
	cw *cloudwatch.Client
	tr *http.Transport
}

func newReader(t testing.TB, endpoint string) *reader {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	r := &reader{tr: tr, cw: cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		o.HTTPClient = &http.Client{Transport: tr}
	})}
	t.Cleanup(tr.CloseIdleConnections)
	return r
}

// stats is what GetMetricData says about one series over the test's window.
type stats struct {
	count, sum, min, max float64
}

// stats reads SampleCount, Sum, Minimum and Maximum of one series with
// GetMetricData (60s periods over the last and next hour, summed).
func (r *reader) stats(t testing.TB, ns, metric string, dims []types.Dimension) stats {
	t.Helper()
	m := &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(metric), Dimensions: dims}
	var qs []types.MetricDataQuery
	for _, st := range []string{"SampleCount", "Sum", "Minimum", "Maximum"} {
		qs = append(qs, types.MetricDataQuery{Id: aws.String(strings.ToLower(st)),
			MetricStat: &types.MetricStat{Metric: m, Period: aws.Int32(60), Stat: aws.String(st)}})
	}
	now := time.Now()
	out, err := r.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(time.Hour)), MetricDataQueries: qs,
	})
	if err != nil {
		t.Fatalf("GetMetricData %s: %v", metric, err)
	}
	s := stats{min: -1, max: -1}
	for _, res := range out.MetricDataResults {
		for _, v := range res.Values {
			switch aws.ToString(res.Id) {
			case "samplecount":
				s.count += v
			case "sum":
				s.sum += v
			case "minimum":
				if s.min < 0 || v < s.min {
					s.min = v
				}
			case "maximum":
				s.max = max(s.max, v)
			}
		}
	}
	return s
}
