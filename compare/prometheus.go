package compare

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// The agent's Prometheus metrics a Prometheus source reads (DESIGN.md's
// metric contract, exporters/prometheus/testdata/metrics.golden).
const (
	promPhaseMetric  = "edgeprobe_phase_duration_seconds"       // histogram {target, role, location, address, phase}
	promProbesMetric = "edgeprobe_probes_total"                 // counter {target, role, location, address, result}
	promLastProbe    = "edgeprobe_last_probe_timestamp_seconds" // gauge {target, role, location, address}
)

// DefaultRemoteWindow is the window a remote source (Prometheus,
// CloudWatch, Route 53) reads when the query leaves it open: the last 24
// hours, whole days being what the time-of-day guard wants.
const DefaultRemoteWindow = 24 * time.Hour

// WarnSource passes on what a source's server said about its answer (a
// Prometheus warning, CloudWatch partial data).
const WarnSource = "source"

// Prometheus is a source of the agent's histograms in a Prometheus server,
// read through its HTTP API. For a query's window [From, To) and
// selector it evaluates, at To and over the window's length:
//
//	sum by (location, phase, le) (increase(edgeprobe_phase_duration_seconds_bucket{…}[W]))
//	sum by (location, phase)     (increase(edgeprobe_phase_duration_seconds_sum{…}[W]))
//	sum by (location, phase)     (increase(edgeprobe_phase_duration_seconds{…}[W]))   native histograms
//	sum by (target, role, location, result) (increase(edgeprobe_probes_total{…}[W]))
//
// the classic buckets (cumulative le counts, made per-bucket) and, for a
// location and phase without them, the native histogram (a Prometheus with
// the native-histograms feature keeps only that form); the probes by
// result give the failures; a range query of the probes' hourly increase
// gives the hours of the day, and min/max_over_time of
// edgeprobe_last_probe_timestamp_seconds the first and last probe.
//
// What the numbers are: increase() extrapolates to the window's edges, so
// counts are not whole numbers and can be off by a fraction of a scrape
// interval's probes at each edge; the distribution is known only to its
// buckets (rows are approximate, their intervals span whole buckets). The
// setup phases (dns, connect, tls) are observed for failed probes too when
// they finished, the others only for successful ones; a phase that did not
// happen is not observed, and counts here, as in the JSONL source, as a 0
// of each successful probe the phase's histogram lacks. Series of several
// addresses (all_addresses) of one location are added up. Two scrape jobs
// on the same agent would count it twice.
type Prometheus struct {
	base   *url.URL
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	describe string
}

// NewPrometheus is the source for the Prometheus server at rawURL
// ("http://prometheus:9090", with its path prefix when it is served under
// one; user:password@ is sent as basic auth). client nil: a client with a
// 30 s timeout.
func NewPrometheus(rawURL string, client *http.Client) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://host:port[/prefix]", rawURL)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Prometheus{base: u, client: client, now: time.Now}, nil
}

// String names the server (without credentials).
func (p *Prometheus) String() string {
	u := *p.base
	u.User = nil
	return "Prometheus at " + u.String()
}

// Describe says what the window held when the last Load found nothing.
func (p *Prometheus) Describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.describe
}

// remoteWindow closes an open window: the end defaults to now (to the
// second), the start to DefaultRemoteWindow before the end.
func remoteWindow(w Window, now time.Time) Window {
	if w.To.IsZero() {
		w.To = now.UTC().Truncate(time.Second)
	}
	if w.From.IsZero() {
		w.From = w.To.Add(-DefaultRemoteWindow)
	}
	return w
}

// promDuration writes a range for PromQL in milliseconds ("86400000ms"),
// which every Prometheus 2 parses.
func promDuration(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// promSelector is the label matchers of a selector ("" when it has none).
func promSelector(s Selector) string {
	var parts []string
	for _, kv := range [][2]string{{"target", s.Target}, {"role", s.Role}, {"location", s.Location}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+strconv.Quote(kv[1]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Load reads one side from Prometheus.
func (p *Prometheus) Load(ctx context.Context, q Query) (*Side, error) {
	w := remoteWindow(q.Window, p.now())
	if !w.To.After(w.From) {
		return nil, fmt.Errorf("%s: empty window %s", p, w)
	}
	length := w.To.Sub(w.From)
	rng, sel, at := promDuration(length), promSelector(q.Match), w.To
	side := NewSide()
	warn := func(ws []string) {
		for _, s := range ws {
			side.Warnings = append(side.Warnings, Warning{Code: WarnSource, Message: p.String() + ": " + s})
		}
	}

	// Probes by result: how many, the failures, the target/role mix.
	probes, ws, err := p.query(ctx, fmt.Sprintf(`sum by (target, role, location, result) (increase(%s%s[%s]))`, promProbesMetric, sel, rng), at)
	if err != nil {
		return nil, err
	}
	warn(ws)
	type counts struct {
		success  float64
		failures map[string]float64
	}
	byLoc := map[string]*counts{}
	series := map[string]float64{}
	for _, s := range probes {
		v := float64(s.Value)
		if s.Histogram != nil || !(v > 0) {
			continue
		}
		loc := string(s.Metric["location"])
		c := byLoc[loc]
		if c == nil {
			c = &counts{failures: map[string]float64{}}
			byLoc[loc] = c
		}
		if r := string(s.Metric["result"]); r == "success" {
			c.success += v
		} else {
			c.failures[cmp.Or(r, "unknown")] += v
		}
		series[string(s.Metric["target"])+"/"+string(s.Metric["role"])] += v
	}
	if len(byLoc) == 0 {
		p.setDescribe(ctx, w, rng, at)
		return side, nil
	}
	for key, v := range series {
		if n := int(math.Round(v)); n > 0 {
			side.Series[key] = n
		}
	}

	// Classic buckets, their sums, and native histograms.
	classic, ws, err := p.query(ctx, fmt.Sprintf(`sum by (location, phase, le) (increase(%s_bucket%s[%s]))`, promPhaseMetric, sel, rng), at)
	if err != nil {
		return nil, err
	}
	warn(ws)
	sums, ws, err := p.query(ctx, fmt.Sprintf(`sum by (location, phase) (increase(%s_sum%s[%s]))`, promPhaseMetric, sel, rng), at)
	if err != nil {
		return nil, err
	}
	warn(ws)
	native, ws, err := p.query(ctx, fmt.Sprintf(`sum by (location, phase) (increase(%s%s[%s]))`, promPhaseMetric, sel, rng), at)
	if err != nil {
		return nil, err
	}
	warn(ws)
	hists := histogramsOf(classic, sums, native)

	for loc, c := range byLoc {
		l := side.Location(loc)
		failed := 0
		for r, v := range c.failures {
			if n := int(math.Round(v)); n > 0 {
				l.Failures[r] = n
				failed += n
			}
		}
		l.Probes = int(math.Round(c.success)) + failed
		for _, phase := range httptrace.Phases {
			h := hists[loc][phase]
			if h == nil || !(h.Count() > 0) {
				continue
			}
			addZeros(h, c.success)
			l.Phases[phase] = &Dist{Hist: h}
		}
	}
	unifyLayouts(side)

	if err := p.loadTimes(ctx, side, w, sel, rng); err != nil {
		return nil, err
	}
	return side, nil
}

// histogramsOf turns the query results into histograms by location and
// phase: classic buckets where there are any, else the native histogram.
func histogramsOf(classic, sums, native model.Vector) map[string]map[string]*Histogram {
	type key struct{ loc, phase string }
	cum := map[key][]Bucket{}
	for _, s := range classic {
		le, err := strconv.ParseFloat(string(s.Metric["le"]), 64)
		if err != nil || s.Histogram != nil || math.IsNaN(float64(s.Value)) {
			continue
		}
		k := key{string(s.Metric["location"]), string(s.Metric["phase"])}
		cum[k] = append(cum[k], Bucket{Le: le, Count: float64(s.Value)})
	}
	sumOf := map[key]float64{}
	for _, s := range sums {
		if s.Histogram == nil && !math.IsNaN(float64(s.Value)) {
			sumOf[key{string(s.Metric["location"]), string(s.Metric["phase"])}] = float64(s.Value)
		}
	}
	out := map[string]map[string]*Histogram{}
	put := func(k key, h *Histogram) {
		if out[k.loc] == nil {
			out[k.loc] = map[string]*Histogram{}
		}
		out[k.loc][k.phase] = h
	}
	for k, bs := range cum {
		h := classicHistogram(bs)
		if h.Count() > 0 {
			h.Sum, h.HasSum = sumOf[k]
			put(k, h)
		}
	}
	for _, s := range native {
		k := key{string(s.Metric["location"]), string(s.Metric["phase"])}
		if s.Histogram == nil || out[k.loc][k.phase] != nil {
			continue
		}
		if h := nativeHistogram(s.Histogram); h.Count() > 0 {
			put(k, h)
		}
	}
	return out
}

// classicHistogram makes cumulative le buckets (in any order) per-bucket
// counts. increase() extrapolates each bucket's counter on its own, so a
// count may come out a hair below the previous one: no bucket goes below 0.
func classicHistogram(cumulative []Bucket) *Histogram {
	bs := slices.Clone(cumulative)
	slices.SortFunc(bs, func(a, b Bucket) int { return cmp.Compare(a.Le, b.Le) })
	h := &Histogram{}
	prev := 0.0
	for _, b := range bs {
		h.Buckets = append(h.Buckets, Bucket{Le: b.Le, Count: math.Max(0, b.Count-prev)})
		prev = math.Max(prev, b.Count)
	}
	return h
}

// nativeHistogram maps a native histogram as the HTTP API gives it
// (buckets [boundary rule, lower, upper, count], only the populated ones)
// to Histogram buckets: each bucket (lower, upper] becomes one with Le
// upper, preceded by an empty one with Le lower where the previous bucket
// ended below lower; the zero bucket [−z, z] counts as [0, z]. Durations
// are not negative: buckets below 0 are left out.
func nativeHistogram(sh *model.SampleHistogram) *Histogram {
	h := &Histogram{Sum: float64(sh.Sum), HasSum: true}
	bs := slices.Clone(sh.Buckets)
	slices.SortFunc(bs, func(a, b *model.HistogramBucket) int { return cmp.Compare(a.Upper, b.Upper) })
	prev := 0.0
	for _, b := range bs {
		lower, upper, count := float64(b.Lower), float64(b.Upper), float64(b.Count)
		if upper < 0 || !(count > 0) {
			continue
		}
		if lower > prev {
			h.Buckets = append(h.Buckets, Bucket{Le: lower})
		}
		h.Buckets = append(h.Buckets, Bucket{Le: upper, Count: count})
		prev = upper
	}
	return h
}

// addZeros puts a 0 bucket first and counts in it the successful probes
// the phase's histogram lacks (a phase that did not happen is not
// recorded: an IP literal has no DNS), as the JSONL source holds them as
// 0. Differences below one probe or 1% are taken as the counters' noise.
// Every histogram of a side gets the bucket, so layouts stay alike.
func addZeros(h *Histogram, successes float64) {
	zeros := successes - h.Count()
	if zeros < 0.5 || zeros < 0.01*successes {
		zeros = 0
	}
	if len(h.Buckets) > 0 && h.Buckets[0].Le == 0 {
		h.Buckets[0].Count += zeros
		return
	}
	h.Buckets = slices.Insert(h.Buckets, 0, Bucket{Le: 0, Count: zeros})
}

// unifyLayouts gives a phase's histograms of all locations one bucket
// layout, the union of their bounds, so that the rows over all locations
// can add them up. Native histograms list only populated buckets, so
// locations differ; an empty bucket can be split at a bound another
// location has, a populated one cannot (a coarser schema): then the phase
// keeps its layouts and Compare says it has no pooled row.
func unifyLayouts(side *Side) {
	for _, phase := range httptrace.Phases {
		var hs []*Histogram
		for _, name := range side.LocationNames() {
			if d := side.Locations[name].Phases[phase]; d != nil && d.Hist != nil {
				hs = append(hs, d.Hist)
			}
		}
		if len(hs) < 2 {
			continue
		}
		var les []float64
		for _, h := range hs {
			for _, b := range h.Buckets {
				les = append(les, b.Le)
			}
		}
		slices.Sort(les)
		les = slices.Compact(les)
		expanded := make([][]Bucket, len(hs))
		ok := true
		for i, h := range hs {
			out, j := make([]Bucket, 0, len(les)), 0
			for _, le := range les {
				switch {
				case j < len(h.Buckets) && h.Buckets[j].Le == le:
					out = append(out, h.Buckets[j])
					j++
				case j < len(h.Buckets) && h.Buckets[j].Count != 0:
					ok = false // le would split a populated bucket
				default:
					out = append(out, Bucket{Le: le})
				}
			}
			expanded[i] = out
		}
		if !ok {
			continue
		}
		for i, h := range hs {
			h.Buckets = expanded[i]
		}
	}
}

// loadTimes fills the hours of the day (the probes' increase per hour, or
// per window when it is shorter) and the first and last probe's start.
func (p *Prometheus) loadTimes(ctx context.Context, side *Side, w Window, sel, rng string) error {
	length := w.To.Sub(w.From)
	step := min(time.Hour, length)
	steps := int(length / step)
	start := w.To.Add(-time.Duration(steps-1) * step)
	m, ws, err := p.queryRange(ctx, fmt.Sprintf(`sum by (location) (increase(%s%s[%s]))`, promProbesMetric, sel, promDuration(step)), start, w.To, step)
	if err != nil {
		return err
	}
	for _, s := range ws {
		side.Warnings = append(side.Warnings, Warning{Code: WarnSource, Message: p.String() + ": " + s})
	}
	for _, ss := range m {
		l := side.Locations[string(ss.Metric["location"])]
		if l == nil {
			continue
		}
		for _, pt := range ss.Values {
			if v := float64(pt.Value); v > 0 {
				// The point covers (t − step, t]: its middle's hour.
				l.Hours[pt.Timestamp.Time().Add(-step/2).UTC().Hour()] += v
			}
		}
	}
	for _, f := range []struct {
		agg string
		dst *time.Time
	}{{"min", &side.First}, {"max", &side.Last}} {
		v, _, err := p.query(ctx, fmt.Sprintf(`%s(%s_over_time(%s%s[%s]))`, f.agg, f.agg, promLastProbe, sel, rng), w.To)
		if err != nil {
			return err
		}
		if len(v) == 1 && v[0].Histogram == nil && float64(v[0].Value) > 0 {
			sec := float64(v[0].Value)
			t := time.Unix(0, int64(sec*1e9)).UTC()
			// The gauge's first value in the window may be a probe that
			// started a little before it.
			*f.dst = maxTime(minTime(t, w.To), w.From)
		}
	}
	return nil
}

// setDescribe records what the window holds when the query matched
// nothing, for Run's message.
func (p *Prometheus) setDescribe(ctx context.Context, w Window, rng string, at time.Time) {
	msg := fmt.Sprintf("%s has no %s in %s", p, promProbesMetric, w)
	v, _, err := p.query(ctx, fmt.Sprintf(`sum by (target, role, location) (increase(%s[%s]))`, promProbesMetric, rng), at)
	if err == nil {
		var found []string
		for _, s := range v {
			if s.Histogram == nil && float64(s.Value) > 0 {
				found = append(found, fmt.Sprintf("target=%s,role=%s,location=%s", s.Metric["target"], s.Metric["role"], s.Metric["location"]))
			}
		}
		slices.Sort(found)
		if len(found) > 0 {
			msg += " matching the selector; it has " + strings.Join(found, "; ")
		} else {
			msg += " at all: is it scraping the agent (exporters.prometheus), and is the window right?"
		}
	}
	p.mu.Lock()
	p.describe = msg
	p.mu.Unlock()
}

// promResponse is the HTTP API's envelope.
type promResponse struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// query runs an instant query at t and returns its vector.
func (p *Prometheus) query(ctx context.Context, q string, t time.Time) (model.Vector, []string, error) {
	form := url.Values{"query": {q}, "time": {promTime(t)}}
	var v model.Vector
	ws, err := p.call(ctx, "/api/v1/query", form, "vector", &v)
	return v, ws, err
}

// queryRange runs a range query and returns its matrix.
func (p *Prometheus) queryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) (model.Matrix, []string, error) {
	form := url.Values{"query": {q}, "start": {promTime(start)}, "end": {promTime(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	var m model.Matrix
	ws, err := p.call(ctx, "/api/v1/query_range", form, "matrix", &m)
	return m, ws, err
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}

// call POSTs a query form to an API endpoint and decodes its result of
// the wanted type into out.
func (p *Prometheus) call(ctx context.Context, path string, form url.Values, want string, out any) ([]string, error) {
	u := *p.base
	u.User = nil
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if ui := p.base.User; ui != nil {
		pw, _ := ui.Password()
		req.SetBasicAuth(ui.Username(), pw)
	}
	what := fmt.Sprintf("%s: %s", p, form.Get("query"))
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", what, err)
	}
	var r promResponse
	if err := json.Unmarshal(body, &r); err != nil {
		snippet := strings.TrimSpace(string(body[:min(len(body), 200)]))
		return nil, fmt.Errorf("%s: HTTP %d, not the Prometheus API: %q", what, resp.StatusCode, snippet)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: HTTP %d: %s: %s", what, resp.StatusCode, cmp.Or(r.ErrorType, "error"), r.Error)
	}
	if r.Data.ResultType != want {
		return nil, fmt.Errorf("%s: result type %q, want %q", what, r.Data.ResultType, want)
	}
	if err := json.Unmarshal(r.Data.Result, out); err != nil {
		return nil, fmt.Errorf("%s: decode %s: %w", what, want, err)
	}
	return r.Warnings, nil
}
