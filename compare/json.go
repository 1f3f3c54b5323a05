package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// The JSON form (DESIGN.md's contract: "rows" with phase, location, a and
// b {n, p50, p90, p99}, diff_p50_seconds, ci_low_seconds,
// ci_high_seconds and verdict; the other fields are additions). Durations
// are seconds; a value that does not exist (no samples, no test) is null
// rather than a misleading 0.
type jsonResult struct {
	Sides    jsonSides     `json:"sides"`
	Method   jsonMethod    `json:"method"`
	Rows     []jsonRow     `json:"rows"`
	Failures []jsonFailure `json:"failures"`
	Warnings []jsonWarning `json:"warnings"`
}

type jsonSides struct {
	A jsonSide `json:"a"`
	B jsonSide `json:"b"`
}

type jsonSide struct {
	Label       string     `json:"label"`
	From        *time.Time `json:"from,omitempty"` // the query's window
	To          *time.Time `json:"to,omitempty"`
	Match       string     `json:"match,omitempty"` // the query's selector
	Probes      int        `json:"probes"`
	OK          int        `json:"ok"`
	First       *time.Time `json:"first"` // the probes' own span
	Last        *time.Time `json:"last"`
	Locations   []string   `json:"locations"`
	Approximate bool       `json:"approximate"`
}

type jsonMethod struct {
	Confidence float64 `json:"confidence"`
	Alpha      float64 `json:"alpha"`
	MinSamples int     `json:"min_samples"`
	Resamples  int     `json:"resamples"`
	Seed       uint64  `json:"seed"`
	CI         string  `json:"ci"`
	Test       string  `json:"test"`
	EffectSize string  `json:"effect_size"`
	Percentile string  `json:"percentile"`
}

type jsonStats struct {
	N    int      `json:"n"`
	P50  *float64 `json:"p50"`
	P90  *float64 `json:"p90"`
	P99  *float64 `json:"p99"`
	Mean *float64 `json:"mean"`
}

type jsonRow struct {
	Phase         string    `json:"phase"`
	Location      string    `json:"location"`
	A             jsonStats `json:"a"`
	B             jsonStats `json:"b"`
	DiffP50       *float64  `json:"diff_p50_seconds"`
	DiffP50Pct    *float64  `json:"diff_p50_pct"`
	CILow         *float64  `json:"ci_low_seconds"`
	CIHigh        *float64  `json:"ci_high_seconds"`
	DiffP90       *float64  `json:"diff_p90_seconds"`
	CIP90Low      *float64  `json:"ci_p90_low_seconds"`
	CIP90High     *float64  `json:"ci_p90_high_seconds"`
	PValue        *float64  `json:"p_value"`
	HodgesLehmann *float64  `json:"hodges_lehmann_seconds"`
	EffectSize    *float64  `json:"effect_size"`
	ProbBFaster   *float64  `json:"prob_b_faster"`
	Verdict       Verdict   `json:"verdict"`
	Reason        string    `json:"reason"`
	Approximate   bool      `json:"approximate"`
}

type jsonFailures struct {
	Probes  int            `json:"probes"`
	Failed  int            `json:"failed"`
	Rate    float64        `json:"rate"`
	ByPhase map[string]int `json:"by_phase"`
}

type jsonFailure struct {
	Location string       `json:"location"`
	A        jsonFailures `json:"a"`
	B        jsonFailures `json:"b"`
	PValue   float64      `json:"p_value"` // Fisher's exact, two-sided
}

type jsonWarning struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Location string `json:"location,omitempty"`
}

// WriteJSON writes the result as one indented JSON document.
func WriteJSON(w io.Writer, r *Result) error {
	out := jsonResult{
		Sides: jsonSides{A: toJSONSide(r.A), B: toJSONSide(r.B)},
		Method: jsonMethod{
			Confidence: r.Options.Confidence(), Alpha: r.Options.Alpha, MinSamples: r.Options.MinSamples,
			Resamples: r.Options.Resamples, Seed: r.Options.Seed,
			CI:         "bootstrap percentile interval of b − a (exact values); bucket bounds (histograms)",
			Test:       "Mann–Whitney U, two-sided, with the Hodges–Lehmann shift",
			EffectSize: "Cliff's delta P(b > a) − P(b < a): negative when b tends to be faster",
			Percentile: "nearest rank over successful probes",
		},
		Rows: []jsonRow{}, Failures: []jsonFailure{}, Warnings: []jsonWarning{},
	}
	for _, row := range r.Rows {
		out.Rows = append(out.Rows, toJSONRow(row))
	}
	for _, f := range r.Failures {
		out.Failures = append(out.Failures, jsonFailure{Location: f.Location, A: toJSONFailures(f.A), B: toJSONFailures(f.B), PValue: f.PValue})
	}
	for _, wn := range r.Warnings {
		out.Warnings = append(out.Warnings, jsonWarning(wn))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

func toJSONSide(s SideInfo) jsonSide {
	j := jsonSide{Label: s.Label, Match: s.Query.Match.String(), Probes: s.Probes, OK: s.OK,
		First: timePtr(s.First), Last: timePtr(s.Last), Locations: s.Locations, Approximate: s.Approximate}
	j.From, j.To = timePtr(s.Query.Window.From), timePtr(s.Query.Window.To)
	if j.Locations == nil {
		j.Locations = []string{}
	}
	return j
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toJSONStats(s Summary) jsonStats {
	j := jsonStats{N: s.N}
	if s.N > 0 {
		j.P50, j.P90, j.P99 = secs(s.P50), secs(s.P90), secs(s.P99)
		if s.HasMean {
			j.Mean = secs(s.Mean)
		}
	}
	return j
}

func toJSONRow(r Row) jsonRow {
	j := jsonRow{Phase: r.Phase, Location: r.Location, A: toJSONStats(r.A), B: toJSONStats(r.B),
		Verdict: r.Verdict, Reason: r.Reason, Approximate: r.Approximate}
	if r.A.N > 0 && r.B.N > 0 {
		j.DiffP50, j.DiffP90 = secs(r.DiffP50), secs(r.DiffP90)
		if r.HasPct {
			j.DiffP50Pct = &r.DiffPct
		}
	}
	if r.HasCI {
		j.CILow, j.CIHigh = secs(r.CIP50.Low), secs(r.CIP50.High)
		j.CIP90Low, j.CIP90High = secs(r.CIP90.Low), secs(r.CIP90.High)
	}
	if r.HasTest {
		j.PValue, j.HodgesLehmann = &r.PValue, secs(r.HodgesLehmann)
		j.EffectSize, j.ProbBFaster = &r.CliffsDelta, &r.ProbBFaster
	}
	return j
}

func toJSONFailures(f FailureCount) jsonFailures {
	return jsonFailures{Probes: f.Probes, Failed: f.Failed, Rate: f.Rate(), ByPhase: f.ByPhase}
}

// secs is d in seconds; an unbounded end (a +Inf bucket) is null.
func secs(d time.Duration) *float64 {
	if d == unbounded || d == -unbounded {
		return nil
	}
	v := d.Seconds()
	return &v
}
