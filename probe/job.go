package probe

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// DefaultRole names the one way into a target that lists no roles.
const DefaultRole = "default"

// maxAddressesPerFamily bounds all_addresses: a name with dozens of
// addresses must not multiply one target's probes without limit.
const maxAddressesPerFamily = 4

// Job is one way (role) into one target with the config merged (defaults
// → target → role) and compiled: what the scheduler runs every Interval.
// A Job is read-only once built; Run may be called from any goroutine.
type Job struct {
	Target, Role, URL string
	Interval, Timeout time.Duration
	Options           httptrace.Options
	// AllAddresses probes every resolved address of the dialled host
	// (at most four per family), one sample each.
	AllAddresses bool
	Paused       []Window
	Expect       Expectations
	// Line is where the target starts in the config file (0 if unknown).
	Line int
}

// Expectations are a job's compiled assertions; a response that fails one
// gets an error in phase "assert".
type Expectations struct {
	Status       []int // allowed final status codes; empty means 200-399
	BodyRegex    *regexp.Regexp
	BodyNotRegex *regexp.Regexp
	Headers      []string // response headers that must be present
}

// Key is the job's stable identity, "target/role": the scheduler hashes it
// for the start offset and matches it across reloads. Target and role
// names cannot contain "/", so keys do not collide.
func (j *Job) Key() string { return j.Target + "/" + j.Role }

// PausedAt reports whether t falls in one of the job's pause windows
// [From, To).
func (j *Job) PausedAt(t time.Time) bool {
	for _, w := range j.Paused {
		if !t.Before(w.From) && t.Before(w.To) {
			return true
		}
	}
	return false
}

// Equal reports whether two jobs would probe the same way, so that a reload
// can keep a job whose config did not change. CA pools compare by content.
func (j *Job) Equal(o *Job) bool {
	if j == nil || o == nil {
		return j == o
	}
	a, b := *j, *o
	poolA, poolB := a.Options.RootCAs, b.Options.RootCAs
	a.Options.RootCAs, b.Options.RootCAs = nil, nil
	a.Options.VerifiedChains, b.Options.VerifiedChains = nil, nil
	a.Expect, b.Expect = Expectations{}, Expectations{}
	a.Paused, b.Paused = nil, nil
	if !reflect.DeepEqual(a, b) || !j.Expect.equal(o.Expect) {
		return false
	}
	if (poolA == nil) != (poolB == nil) || (poolA != nil && !poolA.Equal(poolB)) {
		return false
	}
	return slices.EqualFunc(j.Paused, o.Paused, func(x, y Window) bool {
		return x.From.Equal(y.From) && x.To.Equal(y.To)
	})
}

func (e Expectations) equal(o Expectations) bool {
	re := func(x, y *regexp.Regexp) bool {
		return (x == nil) == (y == nil) && (x == nil || x.String() == y.String())
	}
	return slices.Equal(e.Status, o.Status) && slices.Equal(e.Headers, o.Headers) &&
		re(e.BodyRegex, o.BodyRegex) && re(e.BodyNotRegex, o.BodyNotRegex)
}

// Jobs expands the config into one Job per (target, role), in target order
// and then by role name; a target without roles gives one job with role
// DefaultRole. Headers merge (a role's win over its target's, which win
// over the defaults'); a role's url, connect_to and host replace the
// target's. CA files are loaded once each. A config from Parse is already
// valid; one built in code gets the same defaults, and an error for what
// cannot be compiled (regexes, CA files).
func (c *Config) Jobs() ([]*Job, error) {
	roots := map[string]trust{"": {verified: &httptrace.VerifiedChains{}}}
	var jobs []*Job
	var errs []error
	for i := range c.Targets {
		t := &c.Targets[i]
		base, err := c.targetJob(t, roots)
		if err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", t.Name, err))
			continue
		}
		if len(t.Roles) == 0 {
			j := base.withRole(DefaultRole, Role{}, c.Defaults.Headers, t.Headers)
			jobs = append(jobs, j)
			continue
		}
		for _, name := range sortedKeys(t.Roles) {
			jobs = append(jobs, base.withRole(name, t.Roles[name], c.Defaults.Headers, t.Headers))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return jobs, nil
}

// trust is a root pool (nil: the system's) with its memory of verified
// chains, shared by the jobs that trust it.
type trust struct {
	pool     *x509.CertPool
	verified *httptrace.VerifiedChains
}

// targetJob builds what a target's roles share; roots holds the trusts
// made so far by CA file ("" for the system roots).
func (c *Config) targetJob(t *Target, roots map[string]trust) (*Job, error) {
	interval, timeout := t.Interval.D(), t.Timeout.D()
	if interval <= 0 {
		interval = c.Defaults.Interval.D()
	}
	if interval <= 0 {
		interval = defaultProbeInterval
	}
	if timeout <= 0 {
		timeout = c.Defaults.Timeout.D()
	}
	if timeout <= 0 {
		timeout = min(defaultProbeTimeout, interval)
	}
	j := &Job{
		Target: t.Name, URL: t.URL, Interval: interval, Timeout: timeout,
		AllAddresses: t.AllAddresses, Paused: slices.Clone(t.Paused), Line: t.Line,
		Expect: Expectations{Status: slices.Clone(t.Expect.Status), Headers: slices.Clone(t.Expect.Headers)},
	}
	var err error
	if j.Expect.BodyRegex, err = compileOptional(t.Expect.BodyRegex); err != nil {
		return nil, fmt.Errorf("expect.body_regex: %w", err)
	}
	if j.Expect.BodyNotRegex, err = compileOptional(t.Expect.BodyNotRegex); err != nil {
		return nil, fmt.Errorf("expect.body_not_regex: %w", err)
	}
	o := &j.Options
	o.Method = strings.ToUpper(t.Method)
	if t.Body != "" {
		o.Body = []byte(t.Body)
	}
	o.UserAgent = c.Defaults.UserAgent
	o.DNSServer = cmp.Or(t.DNSServer, c.Defaults.DNSServer)
	o.IPVersion = cmp.Or(t.IPVersion, c.Defaults.IPVersion)
	o.InsecureSkipVerify = t.InsecureSkipVerify
	o.DisableHTTP2 = t.HTTP2 != nil && !*t.HTTP2
	o.NoRedirects = t.FollowRedirects != nil && !*t.FollowRedirects
	o.MaxRedirects = t.MaxRedirects
	o.BodyLimit = t.BodyLimit
	o.Timeout = timeout
	o.KeepBody = j.Expect.BodyRegex != nil || j.Expect.BodyNotRegex != nil
	o.Reuse = t.KeepAlive
	o.Conditional = t.Conditional
	o.ServerTiming = t.ServerTiming
	file := t.CAFile
	if file != "" && !filepath.IsAbs(file) && c.Path != "" {
		file = filepath.Join(filepath.Dir(c.Path), file)
	}
	tr, ok := roots[file]
	if !ok {
		pool, err := httptrace.LoadCAFile(file)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tr = trust{pool: pool, verified: &httptrace.VerifiedChains{}}
		roots[file] = tr
	}
	o.RootCAs, o.VerifiedChains = tr.pool, tr.verified
	return j, nil
}

// withRole copies the target's job for one role.
func (base *Job) withRole(name string, r Role, defaults, target map[string]string) *Job {
	j := *base
	j.Role = name
	j.URL = cmp.Or(r.URL, base.URL)
	j.Options.ConnectTo = r.ConnectTo
	j.Options.Host = r.Host
	var h http.Header
	for _, m := range []map[string]string{defaults, target, r.Headers} {
		for k, v := range m {
			if h == nil {
				h = http.Header{}
			}
			h.Set(k, v)
		}
	}
	j.Options.Header = h
	return &j
}

func compileOptional(re string) (*regexp.Regexp, error) {
	if re == "" {
		return nil, nil
	}
	return regexp.Compile(re)
}

// Run probes the job once and returns its samples, assertions applied:
// one sample, or with AllAddresses one per address probed (each pinned
// with Options.Pin and labelled "ipv4-0", "ipv6-0", …). Addresses are
// probed one after another so that they do not disturb each other's
// timings; a pin holds for the site's own host only. It never panics; failures are in the
// samples.
func (j *Job) Run(ctx context.Context, location string) []*Sample {
	if j.AllAddresses {
		if addrs, err := httptrace.Addresses(ctx, j.URL, j.Options, maxAddressesPerFamily); err == nil && len(addrs) > 0 {
			var out []*Sample
			for _, a := range addrs {
				opts := j.Options
				opts.Pin = a.IP
				out = append(out, j.sample(httptrace.Probe(ctx, j.URL, opts), location, a.Label))
			}
			return out
		}
		// The lookup failed: a plain probe fails the same way and reports
		// it classified and timed like any other DNS failure.
	}
	return []*Sample{j.sample(httptrace.Probe(ctx, j.URL, j.Options), location, "")}
}

func (j *Job) sample(r *httptrace.Result, location, address string) *Sample {
	if r.Err == nil {
		if msg := j.Expect.failure(r); msg != "" {
			r.Err = &httptrace.Error{Phase: httptrace.ErrAssert, Message: msg}
		}
	}
	// The body was kept only for the assertions; sinks queue samples and
	// must not hold bodies.
	r.Body = nil
	return &Sample{Target: j.Target, Role: j.Role, Location: location, Address: address, Result: r}
}

// failure says which expectation r fails, or "" when it passes. Patterns
// are not quoted: they may have come from the environment.
func (e *Expectations) failure(r *httptrace.Result) string {
	if len(e.Status) > 0 {
		if !slices.Contains(e.Status, r.Status) {
			return fmt.Sprintf("status %d, expected one of %v", r.Status, e.Status)
		}
	} else if r.Status < 200 || r.Status > 399 {
		return fmt.Sprintf("status %d, expected 200-399", r.Status)
	}
	for _, h := range e.Headers {
		if len(r.Header.Values(h)) == 0 {
			return fmt.Sprintf("response has no %s header (expect.headers)", http.CanonicalHeaderKey(h))
		}
	}
	if e.BodyRegex != nil && !e.BodyRegex.Match(r.Body) {
		return "body does not match expect.body_regex"
	}
	if e.BodyNotRegex != nil && e.BodyNotRegex.Match(r.Body) {
		return "body matches expect.body_not_regex"
	}
	return ""
}
