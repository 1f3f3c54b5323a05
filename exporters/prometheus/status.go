package promexp

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"math/bits"
	"slices"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// lastSample is what the status page shows of a series' last sample, and
// what its last-sample gauges report. Only these facts are kept, never the
// sample: no headers, bodies or URLs are held (or shown), and memory per
// target stays small.
type lastSample struct {
	start       int64 // unix ns; the time of the write if the sample had none
	startKnown  bool  // the sample had a start time
	status      int32
	timings     httptrace.Timings
	errPhase    string
	errMessage  string
	cache       string
	pop         string
	popCity     string
	httpVersion string
}

func (sr *series) remember(r *httptrace.Result, now func() time.Time) {
	sr.last = lastSample{
		startKnown: !r.Start.IsZero(), timings: r.Timings, status: int32(r.Status),
		cache: r.CDN.Cache, pop: r.CDN.POP, popCity: r.CDN.POPCity, httpVersion: r.Proto,
	}
	if sr.last.startKnown {
		sr.last.start = r.Start.UnixNano()
	} else {
		sr.last.start = now().UnixNano()
	}
	if r.Err != nil {
		sr.last.errPhase, sr.last.errMessage = r.Err.Phase, r.Err.Message
	}
	sr.history <<= 1
	if r.Err == nil {
		sr.history |= 1
	}
	sr.history &= 1<<recentProbes - 1
	sr.historyLen = min(sr.historyLen+1, recentProbes)
}

// Status is one row of the status page: one target × role (× location,
// address) and its last sample.
type Status struct {
	Target, Role, Location, Address string
	Start                           time.Time
	Timings                         httptrace.Timings
	HTTPStatus                      int
	ErrPhase, ErrMessage            string // empty on success
	Cache, POP, POPCity             string
	HTTPVersion                     string
	// Recent probes (at most 20) and how many of them succeeded.
	Recent, RecentOK int
}

// Status returns the last sample of every series, sorted by target, role,
// location and address.
func (e *Exporter) Status() []Status {
	all := e.allSeries()
	out := make([]Status, 0, len(all))
	for _, sr := range all {
		sr.job.mu.Lock()
		if sr.job.dead {
			sr.job.mu.Unlock()
			continue
		}
		l := sr.last
		st := Status{
			Target: sr.key.target, Role: sr.key.role, Location: sr.key.location, Address: sr.key.address,
			Timings: l.timings, HTTPStatus: int(l.status), ErrPhase: l.errPhase, ErrMessage: l.errMessage,
			Cache: l.cache, POP: l.pop, POPCity: l.popCity, HTTPVersion: l.httpVersion,
			Recent: int(sr.historyLen), RecentOK: bits.OnesCount32(sr.history),
		}
		if l.startKnown {
			st.Start = time.Unix(0, l.start)
		}
		sr.job.mu.Unlock()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Role, b.Role),
			cmp.Compare(a.Location, b.Location), cmp.Compare(a.Address, b.Address))
	})
	return out
}

// bar is one segment of a waterfall, in percent of its target's scale:
// the rows of one target (its roles and addresses) share a time axis, so
// origin and CDN compare at a glance, and a slow target elsewhere on the
// page does not squash them.
type bar struct {
	Phase       string
	Left, Width float64 // percent
	Ms          string
}

type statusRow struct {
	Status
	Bars    []bar
	TotalMs string
	Ratio   string
	OK      bool
	Age     string
}

type statusPage struct {
	Rows        []statusRow
	MetricsPath string
	Now         string
	Phases      []string
}

// waterfall lays the phases of one sample out on a time axis of length
// scale. ttfb ends at first_byte and transfer follows it, as measured; dns,
// connect and tls are laid out back to back before ttfb, so any remainder
// at the start is earlier redirect hops and the writing of the request.
// Bars beyond the scale (a failed probe on a successful one's axis) are
// clipped.
func waterfall(t httptrace.Timings, scale time.Duration) []bar {
	if scale <= 0 {
		return nil
	}
	pct := func(d time.Duration) float64 { return float64(d) / float64(scale) * 100 }
	var bars []bar
	add := func(phase string, from, d time.Duration) {
		if d <= 0 {
			return
		}
		left := min(max(pct(from), 0), 99.7)
		width := min(max(pct(d), 0.3), 100-left)
		bars = append(bars, bar{Phase: phase, Left: left, Width: width, Ms: ms(d)})
	}
	setup := t.DNS + t.Connect + t.TLS
	ttfbStart := setup
	if t.FirstByte > 0 {
		ttfbStart = t.FirstByte - t.TTFB
	}
	at := ttfbStart - setup
	add(httptrace.PhaseDNS, at, t.DNS)
	add(httptrace.PhaseConnect, at+t.DNS, t.Connect)
	add(httptrace.PhaseTLS, at+t.DNS+t.Connect, t.TLS)
	add(httptrace.PhaseTTFB, ttfbStart, t.TTFB)
	add(httptrace.PhaseTransfer, ttfbStart+t.TTFB, t.Transfer)
	return bars
}

// waterfallSpan is how long a sample's waterfall is.
func waterfallSpan(t httptrace.Timings) time.Duration {
	return max(t.Total, t.DNS+t.Connect+t.TLS+t.TTFB+t.Transfer)
}

// scales gives each target the time axis of its rows: the longest
// successful sample, or the longest sample when none succeeded.
func scales(rows []Status) map[string]time.Duration {
	ok, all := map[string]time.Duration{}, map[string]time.Duration{}
	for _, r := range rows {
		d := waterfallSpan(r.Timings)
		all[r.Target] = max(all[r.Target], d)
		if r.ErrPhase == "" {
			ok[r.Target] = max(ok[r.Target], d)
		}
	}
	for target, d := range ok {
		if d > 0 {
			all[target] = d
		}
	}
	return all
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func renderStatus(w io.Writer, rows []Status, metricsPath string, now time.Time) error {
	scale := scales(rows)
	page := statusPage{
		MetricsPath: metricsPath,
		Now:         now.UTC().Format(time.RFC3339),
		Phases:      []string{httptrace.PhaseDNS, httptrace.PhaseConnect, httptrace.PhaseTLS, httptrace.PhaseTTFB, httptrace.PhaseTransfer},
	}
	for _, r := range rows {
		row := statusRow{Status: r, Bars: waterfall(r.Timings, scale[r.Target]), TotalMs: ms(r.Timings.Total), OK: r.ErrPhase == ""}
		if r.Recent > 0 {
			row.Ratio = fmt.Sprintf("%d/%d (%.0f%%)", r.RecentOK, r.Recent, 100*float64(r.RecentOK)/float64(r.Recent))
		}
		if !r.Start.IsZero() {
			row.Age = now.Sub(r.Start).Round(time.Second).String() + " ago"
		}
		page.Rows = append(page.Rows, row)
	}
	if err := statusTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	return nil
}

// The page is self-contained (inline CSS, no scripts, no external assets)
// and html/template escapes every value.
var statusTemplate = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeprobe status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.wf { width: 40%; min-width: 16em; }
.track { position: relative; height: 1.1em; background: #f7f7f7; }
.seg { position: absolute; top: 0; height: 100%; }
.ms { font-size: .8em; color: #555; }
.dns { background: #4e79a7; } .connect { background: #f28e2b; } .tls { background: #e15759; }
.ttfb { background: #76b7b2; } .transfer { background: #59a14f; }
.ok { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: middle; }
.err { max-width: 30em; overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>edgeprobe status</h1>
<p>Last sample of every target and role, as of {{.Now}}. The rows of one target share a time axis. Metrics: <a href="{{.MetricsPath}}">{{.MetricsPath}}</a></p>
<p class="legend">{{range .Phases}}<span><i class="{{.}}"></i>{{.}}</span>{{end}}</p>
{{if not .Rows}}<p>No samples yet.</p>{{else}}
<table>
<thead><tr><th>target</th><th>role</th><th>location</th><th>last</th><th>status</th><th>waterfall</th><th>total</th><th>recent success</th><th>cache</th><th>POP</th></tr></thead>
<tbody>
{{range .Rows}}<tr>
<td>{{.Target}}{{if .Address}} <span class="ms">{{.Address}}</span>{{end}}</td>
<td>{{.Role}}</td>
<td>{{.Location}}</td>
<td>{{.Age}}</td>
<td>{{if .OK}}<span class="ok">ok</span>{{else}}<span class="fail">{{.ErrPhase}}</span>{{end}}{{if .HTTPStatus}} {{.HTTPStatus}}{{end}}{{if .HTTPVersion}} <span class="ms">{{.HTTPVersion}}</span>{{end}}{{if not .OK}}<div class="err ms">{{.ErrMessage}}</div>{{end}}</td>
<td class="wf"><div class="track">{{range .Bars}}<div class="seg {{.Phase}}" style="left: {{printf "%.2f" .Left}}%; width: {{printf "%.2f" .Width}}%" title="{{.Phase}} {{.Ms}}"></div>{{end}}</div>
<div class="ms">{{range $i, $b := .Bars}}{{if $i}} · {{end}}{{$b.Phase}} {{$b.Ms}}{{end}}</div></td>
<td>{{.TotalMs}}</td>
<td>{{.Ratio}}</td>
<td>{{.Cache}}</td>
<td>{{.POP}}{{if .POPCity}} <span class="ms">{{.POPCity}}</span>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{end}}
</body>
</html>
`))
