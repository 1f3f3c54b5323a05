// Package report summarizes probe samples (percentiles per phase, the
// median sample, cache results, failures, warnings, origin→CDN differences)
// and renders the summary for a person (WriteTable) or a program
// (WriteJSON).
package report

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Roles the comparison pairs up: the origin way is "a", the CDN way "b".
const (
	RoleOrigin = "origin"
	RoleCDN    = "cdn"
)

// Summary is what a set of samples says, group by group.
type Summary struct {
	Groups []Group
	// Comparisons pair an origin group with a CDN group of the same target
	// (or the only two groups there are) and give b−a per phase.
	Comparisons []Comparison
}

// Stats are order statistics of one phase over a group's successful
// samples. Percentiles use the nearest-rank method (see Percentile).
type Stats struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
}

// Group is every sample of one (target, role, url, address).
type Group struct {
	Target, Role, URL, Address string
	// Label names the group in tables: the shortest of role, target+role,
	// url+role that tells the groups apart.
	Label string

	N  int // samples
	OK int // successful samples

	Failures        map[string]int    // error phase → count
	FailureMessages map[string]string // error phase → its most common message

	// Phases holds Stats per httptrace.Phases name, over successful samples.
	Phases map[string]Stats
	// Median is the successful sample with the median total (the lower
	// median for an even count): the one the waterfall draws.
	Median *probe.Sample

	Cache        map[string]int // normalized cache result → count (answers with a status)
	POPs         []POP          // most seen first
	Statuses     map[int]int
	TLSVersions  map[string]int
	ALPN         map[string]int
	HTTPVersions map[string]int

	// Warm holds Stats of the keep-alive second request, nil when none.
	Warm map[string]Stats
	// Conditional summarizes revalidation, nil when it was not asked for.
	Conditional *ConditionalSummary

	Insecure     bool      // some sample skipped certificate verification
	CertNotAfter time.Time // earliest leaf NotAfter seen (zero without TLS)

	Warnings []Warning
}

// POP is a CDN edge location seen in answers.
type POP struct {
	Code  string
	City  string
	Count int
}

// ConditionalSummary is the revalidation path (If-Modified-Since /
// If-None-Match) over a group's samples.
type ConditionalSummary struct {
	Asked       int         // samples with a conditional result
	Sent        int         // revalidations sent (the 200 had a validator)
	NotModified int         // answered 304
	Errors      int         // revalidations that failed
	Statuses    map[int]int // status of the revalidation answers
	// TTFB and Total of the 304 answers.
	TTFB, Total Stats
}

// Warning is something the article says matters that the samples show is
// wrong. Code is stable, Message is for a person.
type Warning struct {
	Code    string
	Message string
}

// Comparison is b−a per phase for two groups (a: origin, b: CDN).
type Comparison struct {
	A, B int // indexes into Summary.Groups
	Rows []DiffRow
}

// DiffRow is the p50 difference of one phase.
type DiffRow struct {
	Phase  string
	A, B   time.Duration // p50 of each side
	Diff   time.Duration // B − A: negative means b is faster
	Pct    float64       // 100·Diff/A
	HasPct bool          // false when A is zero
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// values sorted ascending: the value at rank ⌈p/100·n⌉ (1-based), so at
// least p% of the values are ≤ it. It is always an observed value, which
// keeps small samples honest (with 5 values p90 and p99 are the maximum).
// It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(ceilPos(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// ceilPos is math.Ceil that tolerates the float error of p/100·n (e.g.
// 0.9·10 = 9.000000000000002 must be rank 9, not 10).
func ceilPos(x float64) float64 {
	const eps = 1e-9
	i := float64(int64(x))
	if x-i > eps {
		return i + 1
	}
	return i
}

// NewStats computes Stats of ds (which it does not modify).
func NewStats(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Stats{
		N: len(s), Min: s[0], Max: s[len(s)-1],
		P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99),
	}
}

type groupKey struct{ target, role, url, address string }

// Summarize groups samples by (target, role, url, address) in first-seen
// order and summarizes each group. Samples without a Result count as
// failures of phase "unknown".
func Summarize(samples []probe.Sample) Summary {
	var keys []groupKey
	members := map[groupKey][]*probe.Sample{}
	for i := range samples {
		s := &samples[i]
		k := groupKey{s.Target, s.Role, "", s.Address}
		if s.Result != nil {
			k.url = s.URL
		}
		if _, ok := members[k]; !ok {
			keys = append(keys, k)
		}
		members[k] = append(members[k], s)
	}
	var sum Summary
	for _, k := range keys {
		sum.Groups = append(sum.Groups, summarizeGroup(k, members[k]))
	}
	labelGroups(sum.Groups)
	sum.Comparisons = compare(sum.Groups)
	return sum
}

func summarizeGroup(k groupKey, samples []*probe.Sample) Group {
	g := Group{
		Target: k.target, Role: k.role, URL: k.url, Address: k.address,
		N:        len(samples),
		Failures: map[string]int{}, FailureMessages: map[string]string{},
		Phases: map[string]Stats{}, Cache: map[string]int{}, Statuses: map[int]int{},
		TLSVersions: map[string]int{}, ALPN: map[string]int{}, HTTPVersions: map[string]int{},
	}
	var ok []*probe.Sample
	messages := map[string]map[string]int{}
	pops := map[string]*POP{}
	var popOrder []string
	var warm []httptrace.Timings
	for _, s := range samples {
		r := s.Result
		if r == nil {
			g.Failures["unknown"]++
			continue
		}
		if r.Err != nil {
			g.Failures[r.Err.Phase]++
			if messages[r.Err.Phase] == nil {
				messages[r.Err.Phase] = map[string]int{}
			}
			messages[r.Err.Phase][r.Err.Message]++
		} else {
			ok = append(ok, s)
			if r.Warm != nil {
				warm = append(warm, *r.Warm)
			}
		}
		if r.Status > 0 {
			g.Statuses[r.Status]++
			g.Cache[cmp.Or(r.CDN.Cache, httptrace.CacheUnknown)]++
			if r.Proto != "" {
				g.HTTPVersions[r.Proto]++
			}
			if code := r.CDN.POP; code != "" {
				if pops[code] == nil {
					pops[code] = &POP{Code: code, City: r.CDN.POPCity}
					popOrder = append(popOrder, code)
				}
				pops[code].Count++
			}
		}
		if t := r.TLS; t != nil {
			if t.Version != "" {
				g.TLSVersions[t.Version]++
			}
			if t.ALPN != "" {
				g.ALPN[t.ALPN]++
			}
			g.Insecure = g.Insecure || t.InsecureSkipVerify
			if !t.NotAfter.IsZero() && (g.CertNotAfter.IsZero() || t.NotAfter.Before(g.CertNotAfter)) {
				g.CertNotAfter = t.NotAfter
			}
		}
	}
	g.OK = len(ok)
	for phase, m := range messages {
		g.FailureMessages[phase] = mostCommon(m)
	}
	for _, code := range popOrder {
		g.POPs = append(g.POPs, *pops[code])
	}
	slices.SortStableFunc(g.POPs, func(a, b POP) int { return b.Count - a.Count })

	timings := make([]httptrace.Timings, len(ok))
	for i, s := range ok {
		timings[i] = s.Timings
	}
	g.Phases = phaseStats(timings)
	if len(warm) > 0 {
		g.Warm = phaseStats(warm)
	}
	if len(ok) > 0 {
		byTotal := slices.Clone(ok)
		slices.SortStableFunc(byTotal, func(a, b *probe.Sample) int { return cmp.Compare(a.Timings.Total, b.Timings.Total) })
		g.Median = byTotal[(len(byTotal)+1)/2-1]
	}
	g.Conditional = summarizeConditional(ok)
	g.Warnings = warnings(&g, ok)
	return g
}

func phaseStats(ts []httptrace.Timings) map[string]Stats {
	out := make(map[string]Stats, len(httptrace.Phases))
	ds := make([]time.Duration, len(ts))
	for _, phase := range httptrace.Phases {
		for i, t := range ts {
			ds[i] = t.Get(phase)
		}
		out[phase] = NewStats(ds)
	}
	return out
}

func summarizeConditional(ok []*probe.Sample) *ConditionalSummary {
	var c *ConditionalSummary
	var ttfb, total []time.Duration
	for _, s := range ok {
		rc := s.Conditional
		if rc == nil {
			continue
		}
		if c == nil {
			c = &ConditionalSummary{Statuses: map[int]int{}}
		}
		c.Asked++
		if !rc.Sent {
			continue
		}
		c.Sent++
		if rc.Error != nil {
			c.Errors++
			continue
		}
		if rc.Status > 0 {
			c.Statuses[rc.Status]++
		}
		if rc.NotModified || rc.Status == http.StatusNotModified {
			c.NotModified++
			ttfb = append(ttfb, rc.Timings.TTFB)
			total = append(total, rc.Timings.Total)
		}
	}
	if c != nil {
		c.TTFB, c.Total = NewStats(ttfb), NewStats(total)
	}
	return c
}

// mostCommon returns the most frequent key, the smallest on ties so the
// output does not depend on map order.
func mostCommon(m map[string]int) string {
	best, n := "", 0
	for k, c := range m {
		if c > n || (c == n && k < best) {
			best, n = k, c
		}
	}
	return best
}

// labelGroups gives each group the shortest label that tells it apart:
// its role when that is unique, else target and role, else the URL too.
func labelGroups(groups []Group) {
	candidates := []func(g Group) string{
		func(g Group) string { return join(g.Role, g.Address) },
		func(g Group) string { return join(g.Target, g.Role, g.Address) },
		func(g Group) string { return join(g.URL, g.Role, g.Address) },
		func(g Group) string { return join(g.Target, g.URL, g.Role, g.Address) },
	}
	count := make([]map[string]int, len(candidates))
	for i, label := range candidates {
		count[i] = map[string]int{}
		for _, g := range groups {
			count[i][label(g)]++
		}
	}
	seen := map[string]bool{}
	for gi := range groups {
		g := &groups[gi]
		for i, label := range candidates {
			if l := label(*g); l != "" && count[i][l] == 1 {
				g.Label = l
				break
			}
		}
		// Labels of different levels can still meet ("cdn" the role and
		// "cdn" the target): number the latecomer.
		if g.Label == "" || seen[g.Label] {
			g.Label = join(g.Label, "#"+strconv.Itoa(gi+1))
		}
		seen[g.Label] = true
	}
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// compare pairs every CDN group with the origin group of the same target
// (the same address label when there is one); without such pairs, two
// groups are compared second against first.
func compare(groups []Group) []Comparison {
	var out []Comparison
	for b, gb := range groups {
		if gb.Role != RoleCDN {
			continue
		}
		a := -1
		for i, ga := range groups {
			if ga.Role != RoleOrigin || ga.Target != gb.Target {
				continue
			}
			if a < 0 || (ga.Address == gb.Address && groups[a].Address != gb.Address) {
				a = i
			}
		}
		if a >= 0 {
			out = append(out, diff(groups, a, b))
		}
	}
	if len(out) == 0 && len(groups) == 2 {
		out = append(out, diff(groups, 0, 1))
	}
	return out
}

func diff(groups []Group, a, b int) Comparison {
	c := Comparison{A: a, B: b}
	for _, phase := range httptrace.Phases {
		sa, sb := groups[a].Phases[phase], groups[b].Phases[phase]
		if sa.N == 0 || sb.N == 0 {
			continue
		}
		row := DiffRow{Phase: phase, A: sa.P50, B: sb.P50, Diff: sb.P50 - sa.P50}
		if sa.P50 > 0 {
			row.Pct, row.HasPct = 100*float64(row.Diff)/float64(sa.P50), true
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

// Row returns the comparison's row for phase.
func (c Comparison) Row(phase string) (DiffRow, bool) {
	for _, r := range c.Rows {
		if r.Phase == phase {
			return r, true
		}
	}
	return DiffRow{}, false
}
