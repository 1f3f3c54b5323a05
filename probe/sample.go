// Package probe holds targets and their config, the scheduler, and the
// Sample a probe produces for the sinks.
package probe

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// Sample is one probe of one way (role) into one target, labelled with
// where it was measured. It is what every sink receives.
type Sample struct {
	Target   string
	Role     string
	Location string
	// Address labels one of several resolved addresses when a target probes
	// them all ("ipv4-0", "ipv6-1"); empty otherwise.
	Address string
	*httptrace.Result
}

// Success reports whether the probe and its assertions passed.
func (s *Sample) Success() bool { return s.Result != nil && s.Err == nil }

// phaseSeconds is the JSON form of httptrace.Timings (contract names).
type phaseSeconds struct {
	DNS       float64 `json:"dns_seconds"`
	Connect   float64 `json:"connect_seconds"`
	TLS       float64 `json:"tls_seconds"`
	TTFB      float64 `json:"ttfb_seconds"`
	Transfer  float64 `json:"transfer_seconds"`
	Total     float64 `json:"total_seconds"`
	FirstByte float64 `json:"first_byte_seconds"`
}

func toSeconds(t httptrace.Timings) phaseSeconds {
	return phaseSeconds{
		DNS: t.DNS.Seconds(), Connect: t.Connect.Seconds(), TLS: t.TLS.Seconds(),
		TTFB: t.TTFB.Seconds(), Transfer: t.Transfer.Seconds(), Total: t.Total.Seconds(),
		FirstByte: t.FirstByte.Seconds(),
	}
}

func (p phaseSeconds) timings() httptrace.Timings {
	d := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return httptrace.Timings{
		DNS: d(p.DNS), Connect: d(p.Connect), TLS: d(p.TLS), TTFB: d(p.TTFB),
		Transfer: d(p.Transfer), Total: d(p.Total), FirstByte: d(p.FirstByte),
	}
}

type hopJSON struct {
	URL        string `json:"url"`
	Status     int    `json:"status"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	phaseSeconds
}

type conditionalJSON struct {
	*httptrace.Conditional
	Timings *phaseSeconds `json:"timings,omitempty"`
}

// sampleJSON is the documented JSONL object (DESIGN.md, `probe check
// --format jsonl` and the agent's JSONL sink). Its field names are a contract.
type sampleJSON struct {
	Time     time.Time `json:"time"`
	Target   string    `json:"target"`
	Role     string    `json:"role"`
	Location string    `json:"location"`
	Address  string    `json:"address,omitempty"`
	URL      string    `json:"url"`
	phaseSeconds
	Status          int                `json:"status"`
	Error           *httptrace.Error   `json:"error"`
	FinalURL        string             `json:"final_url,omitempty"`
	Redirects       int                `json:"redirects"`
	Hops            []hopJSON          `json:"hops,omitempty"`
	RemoteAddr      string             `json:"remote_addr,omitempty"`
	IPFamily        string             `json:"ip_family,omitempty"`
	ConnectAttempts int                `json:"connect_attempts"`
	HTTPVersion     string             `json:"http_version,omitempty"`
	BodyBytes       int64              `json:"body_bytes"`
	LastModified    string             `json:"last_modified,omitempty"`
	ETag            string             `json:"etag,omitempty"`
	RedirectTo      string             `json:"redirect_location,omitempty"` // Location of a 3xx not followed
	TLS             *httptrace.TLSInfo `json:"tls,omitempty"`
	CDN             httptrace.CDN      `json:"cdn"`
	Warm            *phaseSeconds      `json:"warm,omitempty"`
	Conditional     *conditionalJSON   `json:"conditional,omitempty"`
}

// MarshalJSON writes the documented JSONL object.
func (s Sample) MarshalJSON() ([]byte, error) {
	r := s.Result
	if r == nil {
		r = &httptrace.Result{}
	}
	out := sampleJSON{
		Time: r.Start.UTC(), Target: s.Target, Role: s.Role, Location: s.Location, Address: s.Address,
		URL: r.URL, phaseSeconds: toSeconds(r.Timings), Status: r.Status, Error: r.Err,
		FinalURL: r.FinalURL, Redirects: r.Redirects, RemoteAddr: r.RemoteAddr, IPFamily: r.IPFamily,
		ConnectAttempts: r.ConnectAttempts, HTTPVersion: r.Proto, BodyBytes: r.BodyBytes,
		LastModified: r.LastModified, ETag: r.ETag, RedirectTo: r.Location, TLS: r.TLS, CDN: r.CDN,
	}
	if out.FinalURL == out.URL {
		out.FinalURL = ""
	}
	for _, h := range r.Hops {
		out.Hops = append(out.Hops, hopJSON{URL: h.URL, Status: h.Status, RemoteAddr: h.RemoteAddr, phaseSeconds: toSeconds(h.Timings)})
	}
	if r.Warm != nil {
		w := toSeconds(*r.Warm)
		out.Warm = &w
	}
	if c := r.Conditional; c != nil {
		cj := &conditionalJSON{Conditional: c}
		if c.Sent {
			t := toSeconds(c.Timings)
			cj.Timings = &t
		}
		out.Conditional = cj
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a JSONL object back (the input of compare). Facts
// that are not timings come back as far as the JSON carries them.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var in sampleJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	r := &httptrace.Result{
		URL: in.URL, FinalURL: in.FinalURL, Start: in.Time, Timings: in.phaseSeconds.timings(),
		Redirects: in.Redirects, RemoteAddr: in.RemoteAddr, IPFamily: in.IPFamily,
		ConnectAttempts: in.ConnectAttempts, Proto: in.HTTPVersion, Status: in.Status,
		BodyBytes: in.BodyBytes, LastModified: in.LastModified, ETag: in.ETag, Location: in.RedirectTo,
		TLS: in.TLS, CDN: in.CDN, Err: in.Error,
	}
	if r.FinalURL == "" {
		r.FinalURL = r.URL
	}
	for _, h := range in.Hops {
		r.Hops = append(r.Hops, httptrace.Hop{URL: h.URL, Status: h.Status, RemoteAddr: h.RemoteAddr, Timings: h.phaseSeconds.timings()})
	}
	if in.Warm != nil {
		w := in.Warm.timings()
		r.Warm = &w
	}
	if in.Conditional != nil && in.Conditional.Conditional != nil {
		c := in.Conditional.Conditional
		if in.Conditional.Timings != nil {
			c.Timings = in.Conditional.Timings.timings()
		}
		r.Conditional = c
	}
	*s = Sample{Target: in.Target, Role: in.Role, Location: in.Location, Address: in.Address, Result: r}
	return nil
}
