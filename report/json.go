package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/edgeprobe/edgeprobe/probe"
)

// The JSON form of a Summary: durations in seconds, snake_case names.
type jsonSummary struct {
	Groups []jsonGroup `json:"groups"`
	Diff   []jsonDiff  `json:"diff"`
}

type jsonStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

type jsonPOP struct {
	Code  string `json:"code"`
	City  string `json:"city,omitempty"`
	Count int    `json:"count"`
}

type jsonWarning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type jsonConditional struct {
	Asked       int            `json:"asked"`
	Sent        int            `json:"sent"`
	NotModified int            `json:"not_modified"`
	Errors      int            `json:"errors"`
	Statuses    map[string]int `json:"statuses"`
	TTFB        *jsonStats     `json:"ttfb,omitempty"`  // of the 304 answers
	Total       *jsonStats     `json:"total,omitempty"` // of the 304 answers
}

type jsonGroup struct {
	Label           string               `json:"label"`
	Target          string               `json:"target"`
	Role            string               `json:"role"`
	URL             string               `json:"url"`
	Address         string               `json:"address,omitempty"`
	N               int                  `json:"n"`
	OK              int                  `json:"ok"`
	Failures        map[string]int       `json:"failures"`
	FailureMessages map[string]string    `json:"failure_messages,omitempty"`
	Phases          map[string]jsonStats `json:"phases"`
	Median          *probe.Sample        `json:"median"` // the documented JSONL object
	Cache           map[string]int       `json:"cache"`
	POPs            []jsonPOP            `json:"pops"`
	Statuses        map[string]int       `json:"statuses"`
	TLSVersions     map[string]int       `json:"tls_versions"`
	ALPN            map[string]int       `json:"alpn"`
	HTTPVersions    map[string]int       `json:"http_versions"`
	Warm            map[string]jsonStats `json:"warm,omitempty"`
	Conditional     *jsonConditional     `json:"conditional,omitempty"`
	Insecure        bool                 `json:"insecure_skip_verify"`
	CertNotAfter    *time.Time           `json:"cert_not_after,omitempty"`
	Warnings        []jsonWarning        `json:"warnings"`
}

type jsonDiff struct {
	Phase   string   `json:"phase"`
	Target  string   `json:"target"`
	ALabel  string   `json:"a_label"`
	BLabel  string   `json:"b_label"`
	ARole   string   `json:"a_role"`
	BRole   string   `json:"b_role"`
	AP50    float64  `json:"a_p50"`
	BP50    float64  `json:"b_p50"`
	Diff    float64  `json:"diff_p50_seconds"` // b − a
	DiffPct *float64 `json:"diff_pct"`         // 100·(b − a)/a; null when a is 0
}

// WriteJSON writes the summary as one indented JSON document.
func WriteJSON(w io.Writer, s Summary) error {
	out := jsonSummary{Groups: []jsonGroup{}, Diff: []jsonDiff{}}
	for _, g := range s.Groups {
		out.Groups = append(out.Groups, toJSONGroup(g))
	}
	for _, c := range s.Comparisons {
		a, b := s.Groups[c.A], s.Groups[c.B]
		for _, r := range c.Rows {
			d := jsonDiff{
				Phase: r.Phase, Target: b.Target, ALabel: a.Label, BLabel: b.Label, ARole: a.Role, BRole: b.Role,
				AP50: r.A.Seconds(), BP50: r.B.Seconds(), Diff: r.Diff.Seconds(),
			}
			if r.HasPct {
				pct := r.Pct
				d.DiffPct = &pct
			}
			out.Diff = append(out.Diff, d)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write json summary: %w", err)
	}
	return nil
}

func toJSONGroup(g Group) jsonGroup {
	j := jsonGroup{
		Label: g.Label, Target: g.Target, Role: g.Role, URL: g.URL, Address: g.Address,
		N: g.N, OK: g.OK, Failures: g.Failures, Phases: jsonPhases(g.Phases), Median: g.Median,
		Cache: g.Cache, POPs: []jsonPOP{}, Statuses: statusKeys(g.Statuses),
		TLSVersions: g.TLSVersions, ALPN: g.ALPN, HTTPVersions: g.HTTPVersions,
		Insecure: g.Insecure, Warnings: []jsonWarning{},
	}
	if len(g.FailureMessages) > 0 {
		j.FailureMessages = g.FailureMessages
	}
	for _, p := range g.POPs {
		j.POPs = append(j.POPs, jsonPOP(p))
	}
	if g.Warm != nil {
		j.Warm = jsonPhases(g.Warm)
	}
	if c := g.Conditional; c != nil {
		jc := &jsonConditional{Asked: c.Asked, Sent: c.Sent, NotModified: c.NotModified, Errors: c.Errors, Statuses: statusKeys(c.Statuses)}
		if c.TTFB.N > 0 {
			t, tot := toJSONStats(c.TTFB), toJSONStats(c.Total)
			jc.TTFB, jc.Total = &t, &tot
		}
		j.Conditional = jc
	}
	if !g.CertNotAfter.IsZero() {
		t := g.CertNotAfter.UTC()
		j.CertNotAfter = &t
	}
	for _, w := range g.Warnings {
		j.Warnings = append(j.Warnings, jsonWarning(w))
	}
	return j
}

// jsonPhases leaves out phases without data, so a missing phase is never
// mistaken for a zero duration.
func jsonPhases(m map[string]Stats) map[string]jsonStats {
	out := map[string]jsonStats{}
	for phase, st := range m {
		if st.N > 0 {
			out[phase] = toJSONStats(st)
		}
	}
	return out
}

func toJSONStats(s Stats) jsonStats {
	return jsonStats{N: s.N, P50: s.P50.Seconds(), P90: s.P90.Seconds(), P99: s.P99.Seconds(), Min: s.Min.Seconds(), Max: s.Max.Seconds()}
}

func statusKeys(m map[int]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[strconv.Itoa(k)] = v
	}
	return out
}
