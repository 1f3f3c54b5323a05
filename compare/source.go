package compare

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Source gives the data of one side of a comparison. The JSONL source
// (raw samples) gives exact durations; metric stores that keep histograms
// (Prometheus, CloudWatch, Route 53) give bucket counts in Dist.Hist, which
// the statistics treat as approximate. A source applies the query itself
// so a remote one can push the window and labels into its own query.
type Source interface {
	Load(ctx context.Context, q Query) (*Side, error)
}

// Query asks a source for one side: a time window and label selectors.
type Query struct {
	Window Window
	Match  Selector
}

func (q Query) String() string {
	return join(", ", q.Window.String(), q.Match.String())
}

// Window is the half-open time range [From, To); a zero bound is open.
type Window struct {
	From, To time.Time
}

// Contains reports whether t is in the window.
func (w Window) Contains(t time.Time) bool {
	return (w.From.IsZero() || !t.Before(w.From)) && (w.To.IsZero() || t.Before(w.To))
}

// IsZero reports whether the window is unbounded.
func (w Window) IsZero() bool { return w.From.IsZero() && w.To.IsZero() }

func (w Window) String() string {
	if w.IsZero() {
		return ""
	}
	return fmtTime(w.From, "…") + " → " + fmtTime(w.To, "…")
}

// fmtTime writes UTC times as short as they can be: no seconds when zero.
func fmtTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	t = t.UTC()
	if t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format("2006-01-02 15:04Z")
	}
	return t.Format("2006-01-02 15:04:05Z")
}

// Selector picks samples by their contract labels; an empty field matches
// anything.
type Selector struct {
	Target, Role, Location string
}

// Matches reports whether a sample with these labels is selected.
func (s Selector) Matches(target, role, location string) bool {
	return (s.Target == "" || s.Target == target) && (s.Role == "" || s.Role == role) &&
		(s.Location == "" || s.Location == location)
}

// IsZero reports whether the selector selects everything.
func (s Selector) IsZero() bool { return s == Selector{} }

// String is the selector in the form ParseSelector reads.
func (s Selector) String() string {
	var parts []string
	for _, kv := range [][2]string{{"target", s.Target}, {"role", s.Role}, {"location", s.Location}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, ",")
}

// And is the selector matching what both match; it fails when they ask
// for different values of one label (nothing would match).
func (s Selector) And(o Selector) (Selector, error) {
	out := s
	for _, f := range []struct {
		name     string
		dst, src *string
	}{{"target", &out.Target, &o.Target}, {"role", &out.Role, &o.Role}, {"location", &out.Location, &o.Location}} {
		switch {
		case *f.src == "":
		case *f.dst == "" || *f.dst == *f.src:
			*f.dst = *f.src
		default:
			return Selector{}, fmt.Errorf("%s=%s and %s=%s select nothing together", f.name, *f.dst, f.name, *f.src)
		}
	}
	return out, nil
}

// Side is what a source returns for one side of the comparison.
type Side struct {
	// Locations by the samples' location label.
	Locations map[string]*Location
	// Series counts probes per "target/role", so a side that mixes ways in
	// can be pointed out.
	Series map[string]int
	// First and Last bound the probes' start times (zero without any).
	First, Last time.Time
	// Warnings from reading the data (malformed lines, …).
	Warnings []Warning
}

// Location is one side's data at one probe location.
type Location struct {
	// Phases holds the successful probes' durations per httptrace phase.
	Phases map[string]*Dist
	// Probes and the failed ones by error phase (httptrace.Err*).
	Probes   int
	Failures map[string]int
	// Hours counts probes per hour of the day (UTC), for the time-of-day
	// guard. Histogram sources fill it from their counts over time.
	Hours [24]float64
}

// Failed is the number of failed probes.
func (l *Location) Failed() int {
	n := 0
	for _, c := range l.Failures {
		n += c
	}
	return n
}

// Dist is one phase's durations on one side at one location: exact
// values, or a histogram when the source keeps only bucket counts.
type Dist struct {
	Values []time.Duration
	Hist   *Histogram
}

// N is the number of successful probes the distribution holds.
func (d *Dist) N() int {
	switch {
	case d == nil:
		return 0
	case d.Hist != nil:
		return int(d.Hist.Count())
	}
	return len(d.Values)
}

// Approximate reports whether the distribution is known by buckets only.
func (d *Dist) Approximate() bool { return d != nil && d.Hist != nil }

// Histogram is a distribution known by bucket counts (seconds, like the
// Prometheus and CloudWatch metrics).
type Histogram struct {
	// Buckets ascend by Le; each counts the values in (previous Le, Le]
	// (the first from 0). The last Le may be +Inf.
	Buckets []Bucket
	// Sum of the values in seconds, when the source knows it (for the mean).
	Sum    float64
	HasSum bool
}

// Bucket is one histogram bucket: Count values ≤ Le seconds (and above
// the previous bucket's Le). Counts are floats: rates and increases are.
type Bucket struct {
	Le    float64
	Count float64
}

// Count is the number of values in the histogram.
func (h *Histogram) Count() float64 {
	n := 0.0
	for _, b := range h.Buckets {
		n += b.Count
	}
	return n
}

// NewSide returns an empty side for a source to fill.
func NewSide() *Side {
	return &Side{Locations: map[string]*Location{}, Series: map[string]int{}}
}

// Location returns the named location's data, creating it when new.
func (s *Side) Location(name string) *Location {
	l := s.Locations[name]
	if l == nil {
		l = &Location{Phases: map[string]*Dist{}, Failures: map[string]int{}}
		s.Locations[name] = l
	}
	return l
}

// Probes is the number of probes on the side, failed ones included.
func (s *Side) Probes() int {
	n := 0
	for _, l := range s.Locations {
		n += l.Probes
	}
	return n
}

// Failed is the number of failed probes on the side.
func (s *Side) Failed() int {
	n := 0
	for _, l := range s.Locations {
		n += l.Failed()
	}
	return n
}

// LocationNames are the side's locations, sorted.
func (s *Side) LocationNames() []string {
	return slices.Sorted(maps.Keys(s.Locations))
}

// AddSample adds one raw probe sample (exact values).
func (s *Side) AddSample(ps *probe.Sample) {
	r := record{target: ps.Target, role: ps.Role, location: ps.Location}
	switch {
	case ps.Result == nil:
		r.errPhase = "unknown"
	case ps.Err != nil:
		r.errPhase = ps.Err.Phase
		r.time = ps.Start
	default:
		r.time, r.timings = ps.Start, ps.Timings
	}
	s.add(&r)
}

// record is the part of a sample compare needs: a few hundred bytes of
// JSON become about a hundred bytes here, so large agent files fit.
type record struct {
	time                   time.Time
	target, role, location string
	errPhase               string // "" when the probe succeeded
	timings                httptrace.Timings
}

func (s *Side) add(r *record) {
	l := s.Location(r.location)
	l.Probes++
	s.Series[r.target+"/"+r.role]++
	if !r.time.IsZero() {
		l.Hours[r.time.UTC().Hour()]++
		if s.First.IsZero() || r.time.Before(s.First) {
			s.First = r.time
		}
		if r.time.After(s.Last) {
			s.Last = r.time
		}
	}
	if r.errPhase != "" {
		l.Failures[r.errPhase]++
		return
	}
	for _, phase := range httptrace.Phases {
		d := l.Phases[phase]
		if d == nil {
			d = &Dist{}
			l.Phases[phase] = d
		}
		d.Values = append(d.Values, r.timings.Get(phase))
	}
}

// join joins the non-empty parts.
func join(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}
