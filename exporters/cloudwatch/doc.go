// Package cloudwatch sends the agent's samples to Amazon CloudWatch as
// custom metrics (PutMetricData), aggregated so that CloudWatch's
// percentiles work, and loses nothing to an outage that its buffer can
// hold.
//
// # What is sent
//
// Namespace exporters.cloudwatch.namespace (default "EdgeProbe");
// dimensions Target, Role, Location, plus Address for samples that carry
// one (all_addresses). Metrics (DESIGN.md "Metric contract"):
//
//	DNSLookupTime     dns          Milliseconds
//	ConnectionTime    connect      Milliseconds  (Route 53's name)
//	SSLHandshakeTime  tls          Milliseconds  (Route 53's name)
//	TimeToFirstByte   ttfb         Milliseconds  (Route 53's name)
//	TransferTime      transfer     Milliseconds
//	TotalTime         total        Milliseconds
//	FirstByteTime     first_byte   Milliseconds
//	RevalidationTime  ttfb of the conditional request, Milliseconds
//	Success           1 or 0 per probe, None: Average = success ratio, SampleCount = probes
//	CacheHit          1 hit/refresh_hit, 0 miss/bypass/error, None; only known CDN results
//
// A phase that did not happen (0) is not sent. A failed probe sends
// Success 0 and no durations (CacheHit still, when the CDN's answer was
// read, e.g. an error from CloudFront).
//
// # Aggregation
//
// Samples are grouped by the flush interval (default 60s) their probe
// started in; intervals are aligned to multiples of the interval (whole
// minutes for 60s). Each (metric, dimensions) of an interval becomes one
// datum with Values/Counts arrays (no StatisticValues), timestamped with
// the interval's START. Durations are binned on a log scale (1% wide bins,
// sent as the bin's geometric midpoint), so a percentile read from
// CloudWatch is within RelativeErrorBound (0.5%) of the percentile of the
// raw samples; see bins.go. More than 150 bins in an interval become
// several datums with the same timestamp, which CloudWatch aggregates. A
// sample that arrives after its interval was sent (a slow probe) goes out
// with the next flush under its own interval's timestamp, and CloudWatch
// merges it the same way. With high_resolution the datums carry
// StorageResolution 1 (use a flush_interval under 60s to benefit).
//
// # Sending
//
// After each interval (plus a grace of a tenth of it, at most 5s) the
// datums are queued and packed into requests within the API's limits
// (1,000 datums and 1 MB per request; the uncompressed JSON body is kept
// under 1,000,000 bytes), at most Options.Concurrency (4) in flight. The
// SDK retries a failed call (3 attempts, exponential backoff with jitter,
// at most 2s apart, no client-side retry quota); after that the datums
// stay queued and the sink retries with its own backoff (1s doubling to
// 1m, jittered), first with one request, then the rest. The queue is
// bounded by datums (100,000), bytes (64 MiB of request JSON) and age (24h,
// at most MaxAgeLimit, inside CloudWatch's two-week window): the oldest go
// first. Datums keep their original timestamps, so data sent after an
// outage lands where it was measured. A 4xx about the request itself
// (InvalidParameterValue, ...) drops the request's datums; throttling, 5xx,
// network, credential and permission errors keep them. Flush (the agent
// calls it on SIGTERM, within --drain-timeout) seals the interval in
// progress and sends everything, retrying until its context's deadline;
// Close counts what is left as dropped.
// Every datum given up is counted in
// edgeprobe_exporter_dropped_total{exporter="cloudwatch"} (in datums) and
// logged once per interval with the samples it stood for.
//
// Delivery is at least once: a call that reached CloudWatch but whose
// answer was lost (a connection cut mid-response) is sent again, and
// PutMetricData has no idempotency key.
//
// # Cost transparency
//
// edgeprobe_cloudwatch_metrics is the number of distinct metrics (name +
// dimensions) sent to in the last hour — what CloudWatch bills, prorated
// hourly — and edgeprobe_cloudwatch_api_calls_total{operation,result}
// counts every HTTP attempt (success, throttled, error).
// MonthlyMetricCount and MonthlyPutMetricDataCalls estimate both from a
// config (`probe run --check-config` prints them with a price).
//
// # AWS configuration
//
// The SDK's default chain: credentials from the environment, shared files
// (AWS_PROFILE), SSO, web identity, ECS or EC2 roles; region from
// exporters.cloudwatch.region, else AWS_REGION / AWS_DEFAULT_REGION / the
// profile, else EC2 instance metadata. The endpoint is
// exporters.cloudwatch.endpoint when set, else the standard
// AWS_ENDPOINT_URL_CLOUDWATCH or AWS_ENDPOINT_URL variables (the SDK reads
// them; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns them off), else the
// regional CloudWatch endpoint.
//
// The client speaks AWS JSON 1.0 (X-Amz-Target
// GraniteServiceVersion20100801.PutMetricData), which CloudWatch and the
// moto emulator both serve, instead of the SDK's default Smithy RPC v2
// CBOR, which moto 5.2.1 does not. Request bodies of 10 KiB or more are
// gzipped, as the SDK does by default. The one difference in tests: moto
// 5.2.1 gunzips a JSON body twice and fails, so the tests' transport
// (Options.WrapTransport) checks that the SDK gzipped the body and hands
// moto the decompressed bytes with Content-Encoding removed; everything
// above the transport — protocol, serialization, packing, signing of the
// gzipped body — is what production runs (moto does not check
// signatures).
//
// Least privilege: the agent needs only cloudwatch:PutMetricData, which
// has no resource-level permissions (Resource "*"), limited to its
// namespace with the cloudwatch:namespace condition key:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [{
//	    "Effect": "Allow",
//	    "Action": "cloudwatch:PutMetricData",
//	    "Resource": "*",
//	    "Condition": {"StringEquals": {"cloudwatch:namespace": "EdgeProbe"}}
//	  }]
//	}
//
// (The same file: iam-policy.json in this directory.) Reading the metrics
// back (dashboards, healthchecks compare) needs cloudwatch:GetMetricData
// and cloudwatch:ListMetrics on the reading side, not on the agent.
package cloudwatch
