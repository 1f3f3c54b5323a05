package compare

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
	"github.com/edgeprobe/edgeprobe/route53"
)

// fakeCW is a CloudWatch endpoint speaking AWS JSON 1.0, as the real
// service and the SDK client of route53.NewCloudWatch do. It keeps the
// datums PutMetricData gives it and answers from them the way CloudWatch
// defines its statistics: SampleCount, Sum, Average, Minimum, Maximum and
// the percentile rank PR(lo:hi) — the percentage of a period's values v
// with lo < v ≤ hi, a bound left out meaning unbounded — per period of
// the query's Period counted from StartTime; a metric matches a query
// when its name, namespace and dimension set (in any order) are equal.
//
// It checks every request (the test fails on a violation): the
// X-Amz-Target and Content-Type of AWS JSON 1.0; at most 500 queries per
// GetMetricData; IDs unique and of the form [a-z][a-zA-Z0-9_]*; a Period
// that is a positive multiple of 60; a known statistic, PR bounds that
// are numbers with lower < upper; StartTime before EndTime. It answers at
// most pageSize results per page with a NextToken, so clients must page.
//
// With an upstream (moto), everything but a GetMetricData asking for
// percentile ranks — which moto 5.2.1 cannot compute — is forwarded there
// (gunzipped: moto gunzips a body twice), and the datums that pass through
// to it are the ones the fake answers from: moto stores, lists and counts,
// the fake only ranks.
type fakeCW struct {
	t        testing.TB
	srv      *httptest.Server
	upstream string
	pageSize int
	// unlisted: ListMetrics lists nothing (series without data for two
	// weeks); prError: PR queries come back InternalError.
	unlisted, prError bool

	mu        sync.Mutex
	data      []fakeDatum
	gmd       []int // queries per GetMetricData call answered here
	forwarded map[string]int
}

type fakeDim struct{ Name, Value string }

type fakeDatum struct {
	ns, name string
	dims     []fakeDim
	ts       time.Time
	values   []float64
	counts   []float64
}

func newFakeCW(t testing.TB, upstream string) *fakeCW {
	f := &fakeCW{t: t, upstream: upstream, pageSize: 1000, forwarded: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCW) URL() string { return f.srv.URL }

// client is a CloudWatch client on the fake, built as the CLI builds it.
func (f *fakeCW) client() *cloudwatch.Client { return cwClient(f.URL()) }

// cwClient is a CloudWatch client (AWS JSON 1.0, route53.NewCloudWatch)
// on endpoint with dummy credentials.
func cwClient(endpoint string) *cloudwatch.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	})}
	return route53.NewCloudWatch(cfg, "us-east-1", endpoint)
}

func (f *fakeCW) violation(format string, args ...any) {
	f.t.Errorf("fake CloudWatch: "+format, args...)
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func fromEpoch(s float64) time.Time { return time.Unix(0, int64(math.Round(s*1e9))).UTC() }

func (f *fakeCW) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "GraniteServiceVersion20100801.")
	if !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" {
		f.violation("not AWS JSON 1.0: X-Amz-Target %q, Content-Type %q", r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"))
		http.Error(w, "bad protocol", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err == nil && r.Header.Get("Content-Encoding") == "gzip" {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, err = io.ReadAll(zr)
		}
	}
	if err != nil {
		f.violation("%s: body: %v", op, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch op {
	case "PutMetricData":
		f.put(body)
	case "GetMetricData":
		if out, ok := f.getMetricData(body); ok {
			writeJSON(w, out)
			return
		}
	case "ListMetrics":
		if f.upstream == "" || f.unlisted {
			writeJSON(w, f.listMetrics(body))
			return
		}
	}
	if f.upstream == "" {
		writeJSON(w, map[string]any{})
		return
	}
	f.forward(w, r, op, body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeCW) forward(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, f.upstream+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for k, vs := range r.Header {
		if k != "Content-Encoding" && k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	f.mu.Lock()
	f.forwarded[op]++
	f.mu.Unlock()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (f *fakeCW) put(body []byte) {
	var in struct {
		Namespace  string
		MetricData []struct {
			MetricName string
			Dimensions []fakeDim
			Timestamp  float64
			Value      *float64
			Values     []float64
			Counts     []float64
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.violation("PutMetricData: %v", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range in.MetricData {
		values, counts := d.Values, d.Counts
		if d.Value != nil {
			values = []float64{*d.Value}
		}
		if counts == nil {
			counts = slices.Repeat([]float64{1}, len(values))
		}
		f.data = append(f.data, fakeDatum{ns: in.Namespace, name: d.MetricName, dims: d.Dimensions, ts: fromEpoch(d.Timestamp), values: values, counts: counts})
	}
}

// add stores values (each counted once) directly.
func (f *fakeCW) add(ns, name string, dims []fakeDim, ts time.Time, values ...float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = append(f.data, fakeDatum{ns: ns, name: name, dims: dims, ts: ts, values: values, counts: slices.Repeat([]float64{1}, len(values))})
}

func sameDims(a, b []fakeDim) bool {
	if len(a) != len(b) {
		return false
	}
	for _, d := range a {
		if !slices.Contains(b, d) {
			return false
		}
	}
	return true
}

func (f *fakeCW) listMetrics(body []byte) map[string]any {
	var in struct {
		Namespace, MetricName string
		Dimensions            []fakeDim
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.violation("ListMetrics: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	var seen [][]fakeDim
	var names []string
	for _, d := range f.data {
		if f.unlisted || d.ns != in.Namespace || (in.MetricName != "" && d.name != in.MetricName) {
			continue
		}
		match := true
		for _, want := range in.Dimensions {
			match = match && slices.Contains(d.dims, want)
		}
		dup := false
		for i := range seen {
			dup = dup || (names[i] == d.name && sameDims(seen[i], d.dims))
		}
		if match && !dup {
			seen, names = append(seen, d.dims), append(names, d.name)
			out = append(out, map[string]any{"Namespace": d.ns, "MetricName": d.name, "Dimensions": d.dims})
		}
	}
	return map[string]any{"Metrics": out}
}

var (
	queryIDRE = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
	prRE      = regexp.MustCompile(`^PR\(([^:]*):([^:]*)\)$`)
)

// getMetricData answers a GetMetricData (ok false: forward it upstream).
func (f *fakeCW) getMetricData(body []byte) (map[string]any, bool) {
	var in struct {
		MetricDataQueries []struct {
			Id         string
			MetricStat struct {
				Metric struct {
					Namespace, MetricName string
					Dimensions            []fakeDim
				}
				Period int
				Stat   string
			}
		}
		StartTime, EndTime float64
		NextToken          string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		f.violation("GetMetricData: %v", err)
		return nil, false
	}
	qs := in.MetricDataQueries
	start, end := fromEpoch(in.StartTime), fromEpoch(in.EndTime)
	if len(qs) == 0 || len(qs) > 500 {
		f.violation("GetMetricData with %d queries", len(qs))
	}
	if !start.Before(end) {
		f.violation("StartTime %v not before EndTime %v", start, end)
	}
	ids, prs := map[string]bool{}, 0
	for _, q := range qs {
		st := q.MetricStat
		if !queryIDRE.MatchString(q.Id) || ids[q.Id] {
			f.violation("query ID %q invalid or repeated", q.Id)
		}
		ids[q.Id] = true
		if st.Period <= 0 || st.Period%60 != 0 {
			f.violation("query %s: period %d", q.Id, st.Period)
		}
		if len(st.Metric.Dimensions) == 0 || st.Metric.Namespace == "" || st.Metric.MetricName == "" {
			f.violation("query %s: metric %+v", q.Id, st.Metric)
		}
		if m := prRE.FindStringSubmatch(st.Stat); m != nil {
			prs++
			lo, hi, ok := prBounds(m)
			if !ok || lo >= hi {
				f.violation("query %s: statistic %q", q.Id, st.Stat)
			}
		} else if !slices.Contains([]string{"SampleCount", "Sum", "Average", "Minimum", "Maximum"}, st.Stat) {
			f.violation("query %s: statistic %q", q.Id, st.Stat)
		}
	}
	if f.upstream != "" {
		if prs == 0 {
			return nil, false
		}
		if prs != len(qs) {
			f.violation("a call mixes %d PR queries with %d others: the fake cannot split it between itself and moto", prs, len(qs)-prs)
		}
	}
	if in.NextToken == "" {
		f.mu.Lock()
		f.gmd = append(f.gmd, len(qs))
		f.mu.Unlock()
	}

	type result struct {
		ID         string `json:"Id"`
		Label      string
		Timestamps []float64
		Values     []float64
		StatusCode string
	}
	var results []result
	f.mu.Lock()
	for _, q := range qs {
		st := q.MetricStat
		period := time.Duration(max(st.Period, 60)) * time.Second
		type acc struct{ values, counts []float64 }
		periods := map[int]*acc{}
		for _, d := range f.data {
			if d.ns != st.Metric.Namespace || d.name != st.Metric.MetricName || !sameDims(d.dims, st.Metric.Dimensions) ||
				d.ts.Before(start) || !d.ts.Before(end) {
				continue
			}
			i := int(d.ts.Sub(start) / period)
			if periods[i] == nil {
				periods[i] = &acc{}
			}
			periods[i].values = append(periods[i].values, d.values...)
			periods[i].counts = append(periods[i].counts, d.counts...)
		}
		res := result{ID: q.Id, Label: st.Metric.MetricName + " " + st.Stat, StatusCode: "Complete"}
		if f.prError && strings.HasPrefix(st.Stat, "PR(") {
			res.StatusCode = "InternalError"
		}
		for _, i := range slices.Sorted(maps.Keys(periods)) {
			a := periods[i]
			res.Timestamps = append(res.Timestamps, epoch(start.Add(time.Duration(i)*period)))
			res.Values = append(res.Values, statistic(st.Stat, a.values, a.counts))
		}
		results = append(results, res)
	}
	f.mu.Unlock()

	from, _ := strconv.Atoi(in.NextToken)
	out := map[string]any{"MetricDataResults": results[from:min(from+f.pageSize, len(results))], "Messages": []any{}}
	if from+f.pageSize < len(results) {
		out["NextToken"] = strconv.Itoa(from + f.pageSize)
	}
	return out, true
}

func prBounds(m []string) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(-1), math.Inf(1)
	var err error
	if m[1] != "" {
		if lo, err = strconv.ParseFloat(m[1], 64); err != nil {
			return 0, 0, false
		}
	}
	if m[2] != "" {
		if hi, err = strconv.ParseFloat(m[2], 64); err != nil {
			return 0, 0, false
		}
	}
	return lo, hi, m[1] != "" || m[2] != ""
}

// statistic computes one CloudWatch statistic of values with counts.
func statistic(stat string, values, counts []float64) float64 {
	var n, sum, in float64
	lo, hi := math.Inf(1), math.Inf(-1)
	var prLo, prHi float64
	m := prRE.FindStringSubmatch(stat)
	isPR := m != nil
	if isPR {
		prLo, prHi, _ = prBounds(m)
	}
	for i, v := range values {
		c := counts[i]
		n += c
		sum += v * c
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		if isPR && v > prLo && v <= prHi {
			in += c
		}
	}
	switch stat {
	case "SampleCount":
		return n
	case "Sum":
		return sum
	case "Average":
		return sum / n
	case "Minimum":
		return lo
	case "Maximum":
		return hi
	}
	return 100 * in / n
}

func (f *fakeCW) calls() (gmd []int, forwarded map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gmd), func() map[string]int {
		m := map[string]int{}
		for k, v := range f.forwarded {
			m[k] = v
		}
		return m
	}()
}

// agentDims are the exporter's dimensions, in its order.
func agentDims(target, role, location string, address ...string) []fakeDim {
	d := []fakeDim{{cwexp.DimTarget, target}, {cwexp.DimRole, role}, {cwexp.DimLocation, location}}
	if len(address) > 0 {
		d = append(d, fakeDim{cwexp.DimAddress, address[0]})
	}
	return d
}

// truthCount is how many of values (ms) lie in (lo, hi] seconds.
func truthCount(values []float64, lo, hi float64) float64 {
	n := 0.0
	for _, v := range values {
		if v/1000 > lo && v/1000 <= hi {
			n++
		}
	}
	return n
}

// nearestRankMS is report.Percentile's nearest rank of values (ms).
func nearestRankMS(values []float64, p float64) time.Duration {
	s := slices.Sorted(slices.Values(values))
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return time.Duration(s[max(i, 0)] * float64(time.Millisecond))
}

// checkHist compares a histogram read from CloudWatch with the values
// that were put: every bucket's count, the count, and that the median's
// bucket holds the true median.
func checkHist(t *testing.T, what string, d *Dist, values []float64) {
	t.Helper()
	if d == nil || d.Hist == nil {
		t.Errorf("%s: no histogram", what)
		return
	}
	h := d.Hist
	lo := math.Inf(-1)
	for _, b := range h.Buckets {
		if want := truthCount(values, lo, b.Le); math.Abs(b.Count-want) > 1e-6 {
			t.Errorf("%s: bucket (%g, %g] s holds %g, want %g", what, lo, b.Le, b.Count, want)
		}
		lo = b.Le
	}
	s := summarizeHist(h)
	if truth := nearestRankMS(values, 50); s.N != len(values) || !s.p50Range.Contains(truth) {
		t.Errorf("%s: n %d (want %d), median's bucket %v lacks the true median %v", what, s.N, len(values), s.p50Range, truth)
	}
}

// TestCloudWatchSource reads the agent's metrics from the fake: the
// requests' shape, discovery, the two passes, batching and paging, the
// conversion to histograms, and the fallbacks.
func TestCloudWatchSource(t *testing.T) {
	f := newFakeCW(t, "")
	const ns = "EdgeProbe"
	now := time.Now().UTC().Truncate(time.Hour)
	h1, h2 := now.Add(-2*time.Hour+5*time.Minute), now.Add(-time.Hour+5*time.Minute) // in two hours of the day
	rng := rand.New(rand.NewPCG(7, 7))
	values := map[string][]float64{} // role/location/phase → ms put
	put := func(role, loc, metric string, ts time.Time, n int, base, spread float64, address ...string) {
		vs := make([]float64, n)
		for i := range vs {
			vs[i] = base + spread*rng.Float64()
		}
		f.add(ns, metric, agentDims("shop", role, loc, address...), ts, vs...)
		values[role+"/"+loc+"/"+metric] = append(values[role+"/"+loc+"/"+metric], vs...)
	}
	success := func(role, loc string, ts time.Time, ok, failed int, address ...string) {
		vs := append(slices.Repeat([]float64{1}, ok), slices.Repeat([]float64{0}, failed)...)
		f.add(ns, cwexp.MetricSuccess, agentDims("shop", role, loc, address...), ts, vs...)
	}
	for _, ts := range []time.Time{h1, h2} {
		// eu: origin 40–60 ms, cdn 10–14 ms, cdn over two addresses.
		success("origin", "eu", ts, 30, 2)
		put("origin", "eu", cwexp.MetricTimeToFirstByte, ts, 30, 40, 20)
		put("origin", "eu", cwexp.MetricDNSLookupTime, ts, 30, 1, 1)
		for _, addr := range []string{"ipv4-0", "ipv6-0"} {
			success("cdn", "eu", ts, 15, 0, addr)
			put("cdn", "eu", cwexp.MetricTimeToFirstByte, ts, 15, 10, 4, addr)
		}
		// us: origin only; no DNS (an IP literal: the exporter sends none).
		success("origin", "us", ts, 25, 0)
		put("origin", "us", cwexp.MetricTimeToFirstByte, ts, 25, 70, 630)
	}
	// Data of another namespace, target and an unknown metric: not read.
	f.add("Other", cwexp.MetricTimeToFirstByte, agentDims("shop", "origin", "eu"), h1, 1000)
	f.add(ns, cwexp.MetricTimeToFirstByte, agentDims("blog", "origin", "eu"), h1, 1000)
	f.add(ns, cwexp.MetricCacheHit, agentDims("shop", "origin", "eu"), h1, 1)

	src := NewCloudWatch(f.client(), "")
	w := Window{From: now.Add(-3 * time.Hour), To: now}
	side, err := src.Load(context.Background(), Query{Window: w, Match: Selector{Target: "shop", Role: "origin"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := side.LocationNames(); !slices.Equal(got, []string{"eu", "us"}) {
		t.Fatalf("locations %v", got)
	}
	eu, us := side.Locations["eu"], side.Locations["us"]
	if eu.Probes != 64 || eu.Failures[cwFailure] != 4 || us.Probes != 50 || us.Failed() != 0 || side.Series["shop/origin"] != 114 || len(side.Series) != 1 {
		t.Errorf("eu %d probes, failures %v; us %d probes; series %v", eu.Probes, eu.Failures, us.Probes, side.Series)
	}
	checkHist(t, "eu ttfb", eu.Phases[httptrace.PhaseTTFB], values["origin/eu/"+cwexp.MetricTimeToFirstByte])
	checkHist(t, "eu dns", eu.Phases[httptrace.PhaseDNS], values["origin/eu/"+cwexp.MetricDNSLookupTime])
	checkHist(t, "us ttfb", us.Phases[httptrace.PhaseTTFB], values["origin/us/"+cwexp.MetricTimeToFirstByte])
	// us's DNS: 50 successful probes without one, 0 as in the JSONL source.
	if d := us.Phases[httptrace.PhaseDNS]; d != nil {
		t.Errorf("us dns %v: the phase was never sent there", d.Hist)
	}
	if b := eu.Phases[httptrace.PhaseTTFB].Hist.Buckets[0]; b.Le != 0 || b.Count != 0 {
		t.Errorf("eu ttfb zeros %v", b)
	}
	// The pooled row adds the locations: one layout per phase.
	if d, err := side.dist(AllLocations, httptrace.PhaseTTFB); err != nil || d.N() != 110 {
		t.Errorf("pooled ttfb: %v %v", d, err)
	}
	if eu.Hours[h1.Hour()] != 32 || eu.Hours[h2.Hour()] != 32 || !side.First.Equal(h1) || !side.Last.Equal(h2.Add(time.Minute)) {
		t.Errorf("hours %v, first %v, last %v", eu.Hours, side.First, side.Last)
	}
	if n := len(eu.Phases[httptrace.PhaseTTFB].Hist.Buckets); n > DefaultCloudWatchBuckets+3 {
		t.Errorf("%d buckets", n)
	}
	gmd, _ := f.calls()
	if len(gmd) != 2 {
		t.Errorf("GetMetricData calls %v, want two passes", gmd)
	}

	// Batching (more than 500 queries) and paging (NextToken) give the
	// same histograms.
	f.pageSize = 37
	src.MaxBuckets = 400
	fine, err := src.Load(context.Background(), Query{Window: w, Match: Selector{Target: "shop", Role: "origin"}})
	if err != nil {
		t.Fatal(err)
	}
	gmd, _ = f.calls()
	if len(gmd) != 5 || slices.Max(gmd[2:]) != 500 {
		t.Errorf("GetMetricData calls %v: want the ranks split in calls of 500", gmd[2:])
	}
	checkHist(t, "fine eu ttfb", fine.Locations["eu"].Phases[httptrace.PhaseTTFB], values["origin/eu/"+cwexp.MetricTimeToFirstByte])
	checkHist(t, "fine us ttfb", fine.Locations["us"].Phases[httptrace.PhaseTTFB], values["origin/us/"+cwexp.MetricTimeToFirstByte])
	if n := len(fine.Locations["us"].Phases[httptrace.PhaseTTFB].Hist.Buckets); n < 250 {
		t.Errorf("%d buckets at MaxBuckets 400", n)
	}
	f.pageSize = 1000
	src.MaxBuckets = DefaultCloudWatchBuckets

	// The cdn side adds up its two addresses.
	cdn, err := src.Load(context.Background(), Query{Window: w, Match: Selector{Role: "cdn", Location: "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	checkHist(t, "cdn eu ttfb", cdn.Locations["eu"].Phases[httptrace.PhaseTTFB], values["cdn/eu/"+cwexp.MetricTimeToFirstByte])
	if cdn.Locations["eu"].Probes != 60 || cdn.Series["shop/cdn"] != 60 {
		t.Errorf("cdn: %d probes", cdn.Locations["eu"].Probes)
	}

	// a origin vs b cdn at eu: cdn faster, approximately.
	res, err := Run(context.Background(), Spec{Label: "origin", Source: src, Query: Query{Window: w, Match: Selector{Role: "origin", Location: "eu"}}},
		Spec{Label: "cdn", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn", Location: "eu"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if row, ok := res.Row(httptrace.PhaseTTFB, AllLocations); !ok || row.Verdict != Faster || !row.Approximate {
		t.Errorf("ttfb row %+v", row)
	}

	// Not listed (no data for two weeks): a selector naming target, role
	// and location still reads the series; a partial one cannot.
	f.unlisted = true
	old, err := src.Load(context.Background(), Query{Window: w, Match: Selector{Target: "shop", Role: "origin", Location: "us"}})
	if err != nil {
		t.Fatal(err)
	}
	checkHist(t, "unlisted us ttfb", old.Locations["us"].Phases[httptrace.PhaseTTFB], values["origin/us/"+cwexp.MetricTimeToFirstByte])
	_, err = Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Window: w, Match: Selector{Role: "origin"}}},
		Spec{Label: "b", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no samples: CloudWatch namespace EdgeProbe lists no metrics of the agent's") {
		t.Errorf("unlisted: %v", err)
	}
	f.unlisted = false

	// A selector matching nothing says what there is.
	_, err = Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Window: w, Match: Selector{Role: "edge"}}},
		Spec{Label: "b", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `has no series matching "role=edge"; it has target=shop,role=cdn,location=eu; target=shop,role=origin,location=eu; target=shop,role=origin,location=us`) {
		t.Errorf("no match: %v", err)
	}
	// Series but no data in the window.
	_, err = Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Window: Window{From: now.Add(-30 * time.Minute), To: now}, Match: Selector{Role: "origin"}}},
		Spec{Label: "b", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "but no data in") {
		t.Errorf("empty window: %v", err)
	}

	// A rank CloudWatch cannot compute fails the read.
	f.prError = true
	_, err = src.Load(context.Background(), Query{Window: w, Match: Selector{Role: "origin"}})
	if err == nil || !strings.Contains(err.Error(), "percentile ranks (PR)") || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("PR error: %v", err)
	}
}

func TestPRLayout(t *testing.T) {
	b := prLayout(10.3, 61.7, 30)
	if len(b) > 31 || b[0] > 10.3 || b[len(b)-1] < 61.7 {
		t.Fatalf("bounds %v do not cover 10.3..61.7 ms in 30 buckets", b)
	}
	// Every bound is an edge of the exporter's bins (1.01^k ms).
	for _, v := range b {
		k := math.Log(v) / math.Log(1.01)
		if math.Abs(k-math.Round(k)) > 1e-6 {
			t.Errorf("bound %v is not a bin edge (k = %v)", v, k)
		}
	}
	if got := prStats([]float64{1, 2.5}); !slices.Equal(got, []string{"PR(:1)", "PR(1:2.5)", "PR(2.5:)"}) {
		t.Errorf("stats %v", got)
	}
	if got := prLayout(5, 5, 30); len(got) != 2 {
		t.Errorf("one value: bounds %v", got)
	}
}

// TestAWSSourcesMoto runs the CloudWatch and Route 53 sources against the
// moto emulator with data put there.
func TestAWSSourcesMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto")
	}
	m := testkit.StartMoto(t)
	t.Run("cloudwatch", func(t *testing.T) { testCloudWatchMoto(t, m) })
	t.Run("route53", func(t *testing.T) { testRoute53Moto(t, m) })
}

// testCloudWatchMoto: the agent's exporter puts samples of two roles at
// two locations into moto (through the fake, which keeps what passes). On
// moto alone: the source's discovery, and SampleCount and Average per
// location as its first pass asks them. Through the fake (moto lists and
// counts, the fake ranks): the whole source, whose histograms hold, bucket
// for bucket, the samples the exporter was given.
func testCloudWatchMoto(t *testing.T, m *testkit.Moto) {
	const ns = "EdgeProbeCompare"
	shim := newFakeCW(t, m.URL())
	sink, err := cwexp.New(context.Background(), probe.CloudWatchConfig{Namespace: ns, Endpoint: shim.URL()},
		cwexp.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })

	now := time.Now().UTC()
	start := now.Add(-100 * time.Minute)
	rng := rand.New(rand.NewPCG(3, 3))
	truth := map[string][]float64{} // role/location → ttfb ms
	sent := map[string][2]int{}     // role/location → probes, failed
	for _, loc := range []string{"eu-west-1", "us-east-1"} {
		for _, role := range []string{"origin", "cdn"} {
			base := map[string]float64{"origin": 60, "cdn": 12}[role]
			for i := range 90 {
				at := start.Add(time.Duration(i) * time.Minute)
				s := &probe.Sample{Target: "shop", Role: role, Location: loc, Result: &httptrace.Result{Start: at, Status: 200}}
				k := role + "/" + loc
				c := sent[k]
				c[0]++
				if i%30 == 7 {
					s.Err = &httptrace.Error{Phase: httptrace.ErrTimeout, Message: "slow"}
					c[1]++
				} else {
					ttfb := base * (1 + 0.3*rng.Float64())
					s.Timings = httptrace.Timings{Connect: time.Millisecond, TTFB: time.Duration(ttfb * float64(time.Millisecond))}
					s.Timings.Total = s.Timings.Connect + s.Timings.TTFB
					s.Timings.FirstByte = s.Timings.Total
					truth[k] = append(truth[k], float64(s.Timings.TTFB)/float64(time.Millisecond))
				}
				sent[k] = c
				sink.Write(context.Background(), s)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w := Window{From: start.Add(-time.Minute), To: now.Add(time.Minute)}

	// moto alone: discovery and the first pass's counts and averages.
	direct := NewCloudWatch(cwClient(m.URL()), ns)
	series, err := direct.discover(context.Background(), Selector{Target: "shop", Role: "cdn"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range series {
		names = append(names, s.location+" "+s.name)
	}
	slices.Sort(names)
	if want := []string{"eu-west-1 ConnectionTime", "eu-west-1 FirstByteTime", "eu-west-1 Success", "eu-west-1 TimeToFirstByte", "eu-west-1 TotalTime",
		"us-east-1 ConnectionTime", "us-east-1 FirstByteTime", "us-east-1 Success", "us-east-1 TimeToFirstByte", "us-east-1 TotalTime"}; !slices.Equal(names, want) {
		t.Errorf("discovered on moto %v, want %v", names, want)
	}
	qstart, _, whole, _ := cwPeriods(w, time.Now())
	for i, s := range series {
		if s.name != cwexp.MetricTimeToFirstByte {
			continue
		}
		got, _, err := getMetricData(context.Background(), cwClient(m.URL()), []cwtypes.MetricDataQuery{
			cwQuery(s, i, "n", "SampleCount", whole), cwQuery(s, i, "avg", "Average", whole)}, qstart, qstart.Add(time.Duration(whole)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		vs := truth["cdn/"+s.location]
		mean := 0.0
		for _, v := range vs {
			mean += v / float64(len(vs))
		}
		n, avg := got[cwID(i, "n")], got[cwID(i, "avg")]
		if len(n) != 1 || int(n[0].v) != len(vs) || len(avg) != 1 || math.Abs(avg[0].v-mean) > cwexp.RelativeErrorBound*mean {
			t.Errorf("moto %s: SampleCount %v Average %v, want %d and %.3f (within the exporter's 0.5%% binning)", s.location, n, avg, len(vs), mean)
		}
	}

	// Through the fake: the whole source.
	src := NewCloudWatch(shim.client(), ns)
	res, err := Run(context.Background(),
		Spec{Label: "origin", Source: src, Query: Query{Window: w, Match: Selector{Target: "shop", Role: "origin"}}},
		Spec{Label: "cdn", Source: src, Query: Query{Window: w, Match: Selector{Target: "shop", Role: "cdn"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, fwd := shim.calls(); fwd["ListMetrics"] == 0 || fwd["GetMetricData"] == 0 {
		t.Errorf("moto answered %v: want the listing and the counts", fwd)
	}
	for _, side := range []struct {
		role string
		s    *Side
	}{{"origin", res.sideA}, {"cdn", res.sideB}} {
		for _, loc := range []string{"eu-west-1", "us-east-1"} {
			k := side.role + "/" + loc
			l := side.s.Locations[loc]
			if l == nil || l.Probes != sent[k][0] || l.Failed() != sent[k][1] || l.Failures[cwFailure] != sent[k][1] {
				t.Errorf("%s: %+v, want %v probes, failed", k, l, sent[k])
				continue
			}
			// The exporter's bins lie inside the buckets: the counts are
			// those of the raw samples.
			checkHist(t, k+" ttfb", l.Phases[httptrace.PhaseTTFB], truth[k])
		}
	}
	for _, loc := range []string{AllLocations, "eu-west-1", "us-east-1"} {
		row, ok := res.Row(httptrace.PhaseTTFB, loc)
		if !ok || row.Verdict != Faster || !row.Approximate || row.A.N != len(truth["origin/eu-west-1"])*map[bool]int{true: 2, false: 1}[loc == AllLocations] {
			t.Errorf("%s ttfb: %+v", loc, row)
		}
	}
	if row, _ := res.Row(httptrace.PhaseConnect, AllLocations); row.Verdict != NoChange {
		t.Errorf("connect (1 ms on both sides): %+v", row)
	}
}
