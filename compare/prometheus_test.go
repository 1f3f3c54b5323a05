package compare

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

func TestClassicHistogram(t *testing.T) {
	// Cumulative, out of order, with increase()'s extrapolation noise (the
	// 0.05 bucket a hair below the 0.025 one).
	h := classicHistogram([]Bucket{{0.05, 9.99}, {0.01, 2}, {math.Inf(1), 12}, {0.025, 10}})
	want := []Bucket{{0.01, 2}, {0.025, 8}, {0.05, 0}, {math.Inf(1), 2}}
	if !slices.Equal(h.Buckets, want) {
		t.Errorf("buckets %v, want %v", h.Buckets, want)
	}
}

func TestNativeHistogram(t *testing.T) {
	// As the HTTP API gives them: only populated buckets, a zero bucket
	// [−z, z] (rule 3), positive buckets (lower, upper] (rule 0), a gap.
	sh := &model.SampleHistogram{Count: 10, Sum: 0.2, Buckets: model.HistogramBuckets{
		{Boundaries: 0, Lower: 0.04, Upper: 0.05, Count: 3},
		{Boundaries: 3, Lower: -0.001, Upper: 0.001, Count: 1},
		{Boundaries: 0, Lower: 0.01, Upper: 0.02, Count: 4},
		{Boundaries: 0, Lower: 0.02, Upper: 0.04, Count: 2},
		{Boundaries: 0, Lower: -0.5, Upper: -0.25, Count: 1}, // negative: no duration is
	}}
	h := nativeHistogram(sh)
	want := []Bucket{{0.001, 1}, {0.01, 0}, {0.02, 4}, {0.04, 2}, {0.05, 3}}
	if !slices.Equal(h.Buckets, want) || h.Sum != 0.2 || !h.HasSum {
		t.Errorf("buckets %v sum %v, want %v", h.Buckets, h.Sum, want)
	}
	s := summarizeHist(h)
	if s.N != 10 || s.p50Range != (Interval{10 * time.Millisecond, 20 * time.Millisecond}) {
		t.Errorf("summary %+v: want n 10, median in (10, 20] ms", s)
	}
}

func TestUnifyLayouts(t *testing.T) {
	side := NewSide()
	mk := func(loc string, bs ...Bucket) *Histogram {
		h := &Histogram{Buckets: bs, HasSum: true}
		side.Location(loc).Phases[httptrace.PhaseTTFB] = &Dist{Hist: h}
		return h
	}
	a := mk("a", Bucket{0, 0}, Bucket{0.01, 0}, Bucket{0.02, 4})
	b := mk("b", Bucket{0, 1}, Bucket{0.04, 0}, Bucket{0.05, 3})
	unifyLayouts(side)
	les := func(h *Histogram) (out []float64) {
		for _, b := range h.Buckets {
			out = append(out, b.Le)
		}
		return out
	}
	if want := []float64{0, 0.01, 0.02, 0.04, 0.05}; !slices.Equal(les(a), want) || !slices.Equal(les(b), want) || a.Count() != 4 || b.Count() != 4 {
		t.Fatalf("layouts %v and %v, want both %v", a.Buckets, b.Buckets, want)
	}
	if d, err := side.dist(AllLocations, httptrace.PhaseTTFB); err != nil || d.N() != 8 {
		t.Errorf("pooled: %v, %v", d, err)
	}

	// A coarser bucket (0.01, 0.04] holding values cannot be split at 0.02.
	side = NewSide()
	a = mk("a", Bucket{0.01, 0}, Bucket{0.02, 4})
	c := mk("c", Bucket{0.01, 0}, Bucket{0.04, 2})
	unifyLayouts(side)
	if len(a.Buckets) != 2 || len(c.Buckets) != 2 {
		t.Errorf("split a populated bucket: %v %v", a.Buckets, c.Buckets)
	}
	if _, err := side.dist(AllLocations, httptrace.PhaseTTFB); err == nil {
		t.Error("pooled different layouts")
	}
}

// fakeProm answers the Prometheus HTTP API from canned results chosen by
// a substring of the query, and records the requests.
type fakeProm struct {
	srv     *httptest.Server
	answers [][2]string // substring of the query → data JSON
	mu      sync.Mutex
	forms   []map[string]string
	auth    string
}

func newFakeProm(t *testing.T, answers ...[2]string) *fakeProm {
	f := &fakeProm{answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		form := map[string]string{"path": r.URL.Path}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		user, pw, _ := r.BasicAuth()
		f.mu.Lock()
		f.forms = append(f.forms, form)
		f.auth = user + ":" + pw
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		q := form["query"]
		if strings.Contains(q, "syntax error") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:1: parse error: unexpected identifier"}`)
			return
		}
		for i, a := range f.answers {
			if strings.Contains(q, a[0]) {
				fmt.Fprintf(w, `{"status":"success","data":%s,"warnings":["answered by canned result %d"]}`, a[1], i)
				return
			}
		}
		typ := "vector"
		if r.URL.Path == "/prefix/api/v1/query_range" {
			typ = "matrix"
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":%q,"result":[]}}`, typ)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProm) queries() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forms)
}

func vector(samples ...string) string {
	return `{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}`
}

// TestPrometheusSource: the queries sent (window, selector, range, the
// time of evaluation) and what the answers become: classic buckets at one
// location, a native histogram at another, zeros for a phase that did not
// happen, failures by result, hours, first and last probe.
func TestPrometheusSource(t *testing.T) {
	const ts = "1772366400" // 2026-03-01T12:00:00Z
	classic := func(loc, phase, le string, v float64) string {
		return fmt.Sprintf(`{"metric":{"location":%q,"phase":%q,"le":%q},"value":[%s,"%g"]}`, loc, phase, le, ts, v)
	}
	f := newFakeProm(t,
		[2]string{"edgeprobe_probes_total{target=\"shop\",role=\"cdn\"}[7200000ms]", vector(
			`{"metric":{"target":"shop","role":"cdn","location":"eu","result":"success"},"value":[`+ts+`,"39.6"]}`,
			`{"metric":{"target":"shop","role":"cdn","location":"eu","result":"connect"},"value":[`+ts+`,"2.2"]}`,
			`{"metric":{"target":"shop","role":"cdn","location":"us","result":"success"},"value":[`+ts+`,"10"]}`,
			`{"metric":{"target":"shop","role":"cdn","location":"gone","result":"success"},"value":[`+ts+`,"0"]}`)},
		[2]string{"_bucket{", vector(
			classic("eu", "ttfb", "0.01", 10), classic("eu", "ttfb", "0.025", 30), classic("eu", "ttfb", "0.05", 39.6), classic("eu", "ttfb", "+Inf", 39.6),
			// connect observed for the two connect failures' neighbours too
			classic("eu", "connect", "0.01", 41.8), classic("eu", "connect", "+Inf", 41.8))},
		[2]string{"_sum{", vector(`{"metric":{"location":"eu","phase":"ttfb"},"value":[` + ts + `,"0.8"]}`)},
		[2]string{"edgeprobe_phase_duration_seconds{", vector(
			`{"metric":{"location":"us","phase":"ttfb"},"histogram":[`+ts+`,{"count":"10","sum":"0.3","buckets":[[0,"0.02","0.04","6"],[0,"0.04","0.08","4"]]}]}`,
			// eu has classic buckets: its native form is not used
			`{"metric":{"location":"eu","phase":"ttfb"},"histogram":[`+ts+`,{"count":"1","sum":"1","buckets":[[0,"0.5","1","1"]]}]}`)},
		[2]string{"[3600000ms]", `{"resultType":"matrix","result":[{"metric":{"location":"eu"},"values":[[1772362800,"20"],[1772366400,"21.8"]]}]}`},
		[2]string{"min(min_over_time(", vector(`{"metric":{},"value":[` + ts + `,"1772355000"]}`)},
		[2]string{"max(max_over_time(", vector(`{"metric":{},"value":[` + ts + `,"1772366390.5"]}`)},
	)
	src, err := NewPrometheus(strings.Replace(f.srv.URL, "http://", "http://u:p@", 1)+"/prefix/", nil)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	w := Window{From: from, To: from.Add(2 * time.Hour)}
	side, err := src.Load(context.Background(), Query{Window: w, Match: Selector{Target: "shop", Role: "cdn"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.auth != "u:p" {
		t.Errorf("basic auth %q", f.auth)
	}
	for _, q := range f.queries() {
		if q["path"] == "/prefix/api/v1/query" && q["time"] != "1772366400.000" {
			t.Errorf("query %q at %s, want the window's end", q["query"], q["time"])
		}
		if q["path"] == "/prefix/api/v1/query_range" && (q["start"] != "1772362800.000" || q["end"] != "1772366400.000" || q["step"] != "3600") {
			t.Errorf("range query %v: want hourly steps ending at the window's end", q)
		}
		if !strings.Contains(q["query"], `{target="shop",role="cdn"}`) {
			t.Errorf("query %q lacks the selector", q["query"])
		}
	}

	if got := side.LocationNames(); !slices.Equal(got, []string{"eu", "us"}) {
		t.Fatalf("locations %v (a location without probes in the window is left out)", got)
	}
	eu, us := side.Locations["eu"], side.Locations["us"]
	if eu.Probes != 42 || eu.Failures["connect"] != 2 || side.Series["shop/cdn"] != 52 || us.Probes != 10 {
		t.Errorf("eu probes %d failures %v, us probes %d, series %v", eu.Probes, eu.Failures, us.Probes, side.Series)
	}
	ttfb := eu.Phases[httptrace.PhaseTTFB].Hist
	if want := []Bucket{{0, 0}, {0.01, 10}, {0.025, 20}, {0.05, 9.6}, {math.Inf(1), 0}}; !slices.EqualFunc(ttfb.Buckets, want, func(a, b Bucket) bool {
		return a.Le == b.Le && math.Abs(a.Count-b.Count) < 1e-9
	}) || ttfb.Sum != 0.8 {
		t.Errorf("eu ttfb %v sum %v, want %v", ttfb.Buckets, ttfb.Sum, want)
	}
	if c := eu.Phases[httptrace.PhaseConnect].Hist; c.Buckets[0].Count != 0 {
		t.Errorf("connect has zeros %v: it was observed more often than probes succeeded", c.Buckets)
	}
	// us: native only; no connect, dns, … histograms at all.
	usTTFB := us.Phases[httptrace.PhaseTTFB]
	if usTTFB == nil || usTTFB.N() != 10 || !usTTFB.Approximate() || len(us.Phases) != 1 {
		t.Fatalf("us phases %v", us.Phases)
	}
	if want := []Bucket{{0, 0}, {0.02, 0}, {0.04, 6}, {0.08, 4}}; !slices.Equal(usTTFB.Hist.Buckets, want) {
		t.Errorf("us ttfb %v, want %v", usTTFB.Hist.Buckets, want)
	}
	if eu.Hours[10] != 20 || eu.Hours[11] != 21.8 || us.Hours != [24]float64{} {
		t.Errorf("hours: eu %v us %v", eu.Hours, us.Hours)
	}
	if !side.First.Equal(from) || !side.Last.Equal(time.Unix(1772366390, 5e8).UTC()) {
		t.Errorf("first %v last %v: want the window's start (the gauge began before it) and the last probe", side.First, side.Last)
	}
	if len(side.Warnings) == 0 || side.Warnings[0].Code != WarnSource || !strings.Contains(side.Warnings[0].Message, "answered") {
		t.Errorf("Prometheus' warnings not passed on: %v", side.Warnings)
	}

	// Nothing matches: Run's error says what the window holds.
	_, err = Run(context.Background(), Spec{Label: "a", Source: src, Query: Query{Window: w, Match: Selector{Role: "origin"}}},
		Spec{Label: "b", Source: src, Query: Query{Window: w, Match: Selector{Role: "cdn"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no samples: Prometheus at http://127.0.0.1") || !strings.Contains(err.Error(), "has no edgeprobe_probes_total in 2026-03-01 10:00Z → 2026-03-01 12:00Z") {
		t.Errorf("no samples: %v", err)
	}

	// API errors carry Prometheus' message.
	_, _, err = src.query(context.Background(), "syntax error", w.To)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400: bad_data: 1:1: parse error") {
		t.Errorf("API error: %v", err)
	}
	for _, bad := range []string{"prometheus:9090", "ftp://x", "http://"} {
		if _, err := NewPrometheus(bad, nil); err == nil {
			t.Errorf("NewPrometheus(%q) accepted", bad)
		}
	}
}
