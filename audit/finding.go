// Package audit checks whether a CloudFront distribution is set up right
// for a dynamic web application, from its configuration (the CloudFront
// API: the distribution and the cache, origin request and response headers
// policies it references) and from the wire (what the edge and the origin
// really answer). The rules come from the article behind edgeprobe: all
// seven HTTP methods pass, HTTP redirects to HTTPS, TTL 0 with fast 304
// revalidation, cookies and query strings forwarded, TLS at the edge with
// an ACM certificate from us-east-1.
//
// Every finding says where the setting lives, what it is, what it should
// be, why (one line of the reasoning) and how to fix it. Checks lists them
// all; docs/audit.md explains them.
package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Severity orders findings; High and Critical fail a CI run.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// Severities lists every severity, highest first (the report's order).
var Severities = []Severity{Critical, High, Medium, Low, Info}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("severity %q: want one of %s", name, strings.Join(severityNames[:], ", "))
}

// MarshalText writes the severity's name, as JSON shows it.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Finding is one thing the audit found wrong (or worth knowing).
type Finding struct {
	ID       string   `json:"id"`       // the check, one of Checks
	Severity Severity `json:"severity"` // may differ from the check's default with the case
	Source   string   `json:"source"`   // SourceConfig or SourceWire
	Path     string   `json:"path"`     // the setting, e.g. DefaultCacheBehavior.AllowedMethods, or the request made
	Is       string   `json:"is"`       // what it is now
	Should   string   `json:"should"`   // what it should be
	Why      string   `json:"why"`      // one line of reasoning
	Fix      string   `json:"fix"`      // what to change
}

// Where a finding came from.
const (
	SourceConfig = "config" // the CloudFront API
	SourceWire   = "wire"   // requests to the site
)

// Fact is an observation worth showing beside the findings: a policy
// resolved, a header seen, a time measured.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Report is what one audit found.
type Report struct {
	Subjects []string  `json:"subjects"` // "distribution E123", "https://www.example.com/"
	Findings []Finding `json:"findings"`
	Facts    []Fact    `json:"facts"`
	// Measurements are the wire timings the findings rest on, in seconds,
	// e.g. "redirect_cost_seconds", "ttfb_200_seconds", "ttfb_304_seconds".
	Measurements map[string]float64 `json:"measurements,omitempty"`
}

// Max returns the highest severity found, and false when nothing was.
func (r *Report) Max() (Severity, bool) {
	if r == nil || len(r.Findings) == 0 {
		return Info, false
	}
	m := Info
	for _, f := range r.Findings {
		m = max(m, f.Severity)
	}
	return m, true
}

// Failed reports whether anything of severity High or above was found:
// what makes `probe audit` exit 1.
func (r *Report) Failed() bool {
	m, ok := r.Max()
	return ok && m >= High
}

// Count returns how many findings have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Has reports whether a finding with this check ID is in the report.
func (r *Report) Has(id string) bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.ID == id })
}

// ByID returns the findings of one check.
func (r *Report) ByID(id string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

// Merge appends other's subjects, findings, facts and measurements to r.
func (r *Report) Merge(other *Report) {
	if other == nil {
		return
	}
	r.Subjects = append(r.Subjects, other.Subjects...)
	r.Findings = append(r.Findings, other.Findings...)
	r.Facts = append(r.Facts, other.Facts...)
	for k, v := range other.Measurements {
		if r.Measurements == nil {
			r.Measurements = map[string]float64{}
		}
		r.Measurements[k] = v
	}
}

// Sort orders findings by severity (highest first), then source, path and
// check, so a report reads the same every run.
func (r *Report) Sort() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.ID, b.ID),
		)
	})
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

func (r *Report) fact(name, format string, args ...any) {
	r.Facts = append(r.Facts, Fact{Name: name, Value: fmt.Sprintf(format, args...)})
}

func (r *Report) measure(name string, seconds float64) {
	if r.Measurements == nil {
		r.Measurements = map[string]float64{}
	}
	r.Measurements[name] = seconds
}

// MarshalJSON keeps empty lists as [] rather than null.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Subjects == nil {
		r.Subjects = []string{}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	if r.Facts == nil {
		r.Facts = []Fact{}
	}
	return json.Marshal(plain(r))
}
