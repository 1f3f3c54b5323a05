package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/internal/lab"
)

func mustParse(t *testing.T, yml string) *Config {
	t.Helper()
	c, err := Parse("job_test.yml", []byte(yml))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, yml)
	}
	return c
}

func mustJobs(t *testing.T, c *Config) map[string]*Job {
	t.Helper()
	jobs, err := c.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Job{}
	for _, j := range jobs {
		out[j.Key()] = j
	}
	return out
}

const mergeYAML = `
defaults:
  interval: 20s
  ip_version: prefer4
  dns_server: 127.0.0.1:53
  headers: {X-Team: edge, X-Override: defaults}
  user_agent: ua-test
targets:
  - name: shop
    url: https://www.example.com/health
    method: POST
    body: hello
    headers: {x-override: target, X-Target: t}
    roles:
      origin: {connect_to: "my-alb.example:443", headers: {X-Override: origin}}
      cdn: {url: "https://d111.cloudfront.net/health", host: www.example.com}
    expect: {body_regex: ok, headers: [X-Cache]}
    keep_alive: true
    conditional: true
    server_timing: true
    insecure_skip_verify: true
    http2: false
    follow_redirects: false
    timeout: 3s
    ca_file: testdata/corp-ca.pem
    ip_version: ip6
  - name: api
    url: http://127.0.0.1:8080/
    ca_file: testdata/corp-ca.pem
    max_redirects: 2
    body_limit: 1000
    all_addresses: true
    paused: [{from: 2025-06-01T22:00:00Z, to: 2025-06-01T23:00:00Z}]
`

func TestJobsMerge(t *testing.T) {
	c := mustParse(t, mergeYAML)
	list, err := c.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, j := range list {
		keys = append(keys, j.Key())
	}
	if want := []string{"shop/cdn", "shop/origin", "api/default"}; !slices.Equal(keys, want) {
		t.Fatalf("jobs %v, want %v (target order, then role name)", keys, want)
	}
	jobs := mustJobs(t, c)

	origin := jobs["shop/origin"]
	o := origin.Options
	if origin.URL != "https://www.example.com/health" || o.ConnectTo != "my-alb.example:443" || o.Host != "" {
		t.Errorf("origin way: url %q connect_to %q host %q", origin.URL, o.ConnectTo, o.Host)
	}
	if got := o.Header; got.Get("X-Override") != "origin" || got.Get("X-Team") != "edge" || got.Get("X-Target") != "t" || len(got) != 3 {
		t.Errorf("origin headers (role > target > defaults): %v", got)
	}
	if o.Method != "POST" || string(o.Body) != "hello" || o.UserAgent != "ua-test" || o.IPVersion != "ip6" || o.DNSServer != "127.0.0.1:53" {
		t.Errorf("origin request options: %+v", o)
	}
	if !o.DisableHTTP2 || !o.NoRedirects || !o.Reuse || !o.Conditional || !o.ServerTiming || !o.InsecureSkipVerify || !o.KeepBody {
		t.Errorf("origin flags: %+v", o)
	}
	if origin.Interval != 20*time.Second || origin.Timeout != 3*time.Second || o.Timeout != 3*time.Second || o.RootCAs == nil {
		t.Errorf("origin timing/CA: %v %v %v %v", origin.Interval, origin.Timeout, o.Timeout, o.RootCAs)
	}
	if origin.Expect.BodyRegex == nil || !slices.Equal(origin.Expect.Headers, []string{"X-Cache"}) || origin.Line != 9 {
		t.Errorf("origin expectations/line: %+v line %d", origin.Expect, origin.Line)
	}

	cdn := jobs["shop/cdn"]
	if cdn.URL != "https://d111.cloudfront.net/health" || cdn.Options.Host != "www.example.com" || cdn.Options.ConnectTo != "" {
		t.Errorf("cdn way: url %q host %q connect_to %q", cdn.URL, cdn.Options.Host, cdn.Options.ConnectTo)
	}
	if got := cdn.Options.Header; got.Get("X-Override") != "target" || got.Get("X-Team") != "edge" {
		t.Errorf("cdn headers (target > defaults, names case-insensitive): %v", got)
	}

	api := jobs["api/default"]
	if api.Role != DefaultRole || api.Target != "api" || api.URL != "http://127.0.0.1:8080/" {
		t.Errorf("default role: %+v", api)
	}
	if api.Options.RootCAs != o.RootCAs {
		t.Errorf("a CA file named twice is loaded twice")
	}
	if api.Options.MaxRedirects != 2 || api.Options.BodyLimit != 1000 || !api.AllAddresses || api.Options.KeepBody ||
		api.Options.IPVersion != "prefer4" || api.Timeout != 10*time.Second || api.Options.Method != "" || api.Options.Body != nil {
		t.Errorf("api options: %+v", api)
	}
	if len(api.Paused) != 1 || api.Options.Header.Get("X-Target") != "" {
		t.Errorf("api paused/headers: %+v %v", api.Paused, api.Options.Header)
	}
}

func TestJobsFromConfigBuiltInCode(t *testing.T) {
	c := &Config{Targets: []Target{{Name: "a", URL: "http://127.0.0.1/"}}}
	jobs, err := c.Jobs()
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%v %v", jobs, err)
	}
	if j := jobs[0]; j.Interval != 30*time.Second || j.Timeout != 10*time.Second || j.Key() != "a/default" {
		t.Errorf("defaults: %+v", j)
	}
	c.Targets[0].Expect.BodyRegex = "("
	c.Targets = append(c.Targets, Target{Name: "b", URL: "http://127.0.0.1/", CAFile: "testdata/no-such.pem"})
	_, err = c.Jobs()
	if err == nil || !strings.Contains(err.Error(), `target "a": expect.body_regex`) || !strings.Contains(err.Error(), `target "b": ca_file`) {
		t.Errorf("got %v", err)
	}
}

func TestJobEqual(t *testing.T) {
	a := mustJobs(t, mustParse(t, mergeYAML))
	b := mustJobs(t, mustParse(t, mergeYAML))
	for k, j := range a {
		if !j.Equal(b[k]) {
			t.Errorf("%s: the same config gives unequal jobs", k)
		}
	}
	changed := mustJobs(t, mustParse(t, strings.Replace(mergeYAML, "X-Override: origin", "X-Override: other", 1)))
	if a["shop/origin"].Equal(changed["shop/origin"]) || !a["shop/cdn"].Equal(changed["shop/cdn"]) {
		t.Errorf("a changed header is not seen, or is seen where it did not change")
	}
}

func TestPausedAt(t *testing.T) {
	from := time.Date(2025, 6, 1, 22, 0, 0, 0, time.UTC)
	j := &Job{Paused: []Window{{From: from, To: from.Add(time.Hour)}}}
	for at, want := range map[time.Duration]bool{-time.Second: false, 0: true, 30 * time.Minute: true, time.Hour: false} {
		if got := j.PausedAt(from.Add(at)); got != want {
			t.Errorf("PausedAt(from%+v) = %v", at, got)
		}
	}
}

// testSite answers like a small app; /echo answers 200 only when the
// origin way's Host and headers arrived.
func testSite(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Cache", "Hit from cloudfront")
		io.WriteString(w, `{"status": "ok"}`)
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/error", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "internal error") })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Host, "shop.test:") || r.Header.Get("X-Role") != "origin" || r.Header.Get("X-Target") != "t" {
			http.Error(w, "host "+r.Host, http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestJobRunAssertions(t *testing.T) {
	srv := testSite(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := mustParse(t, fmt.Sprintf(`
defaults: {interval: 5s, timeout: 2s}
targets:
  - name: ok
    url: %[1]s/ok
    expect: {status: [200], body_regex: '"status":\s*"ok"', body_not_regex: error, headers: [x-cache]}
  - {name: default-status, url: %[1]s/down}
  - {name: wrong-status, url: %[1]s/down, expect: {status: [200]}}
  - {name: body-mismatch, url: %[1]s/ok, expect: {body_regex: healthy}}
  - {name: body-forbidden, url: %[1]s/error, expect: {body_not_regex: error}}
  - {name: missing-header, url: %[1]s/ok, expect: {headers: [X-Amz-Cf-Pop]}}
  - {name: refused, url: "http://%[2]s/", expect: {status: [200]}}
  - name: site
    url: http://shop.test:%[3]s/echo
    headers: {X-Target: t}
    roles: {origin: {connect_to: "127.0.0.1:%[3]s", headers: {X-Role: origin}}}
`, srv.URL, closedPort(t), port))
	want := map[string]struct{ phase, msg string }{
		"ok/default":             {},
		"default-status/default": {httptrace.ErrAssert, "status 503, expected 200-399"},
		"wrong-status/default":   {httptrace.ErrAssert, "status 503, expected one of [200]"},
		"body-mismatch/default":  {httptrace.ErrAssert, "body does not match expect.body_regex"},
		"body-forbidden/default": {httptrace.ErrAssert, "body matches expect.body_not_regex"},
		"missing-header/default": {httptrace.ErrAssert, "response has no X-Amz-Cf-Pop header"},
		"refused/default":        {httptrace.ErrConnect, ""}, // the probe's own error is kept
		"site/origin":            {},
	}
	ctx := context.Background()
	for key, j := range mustJobs(t, c) {
		samples := j.Run(ctx, "test-loc")
		if len(samples) != 1 {
			t.Fatalf("%s: %d samples", key, len(samples))
		}
		s := samples[0]
		if s.Target != j.Target || s.Role != j.Role || s.Location != "test-loc" || s.Address != "" || s.Body != nil {
			t.Errorf("%s: sample labels/body: %+v", key, s)
		}
		w, ok := want[key]
		if !ok {
			t.Fatalf("unexpected job %s", key)
		}
		switch {
		case w.phase == "" && !s.Success():
			t.Errorf("%s: failed: %v (status %d)", key, s.Err, s.Status)
		case w.phase != "" && (s.Err == nil || s.Err.Phase != w.phase || !strings.Contains(s.Err.Message, w.msg)):
			t.Errorf("%s: got %v, want %s: %s", key, s.Err, w.phase, w.msg)
		}
	}
}

func TestJobRunAllAddresses(t *testing.T) {
	srv := testSite(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dnsSrv, err := lab.NewDNSServer("127.0.0.1:0", map[string][]netip.Addr{"shop.test": {netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dnsSrv.Close)
	c := mustParse(t, fmt.Sprintf(`
defaults: {interval: 5s, timeout: 2s, dns_server: "%[2]s"}
targets:
  - {name: named, url: "http://shop.test:%[1]s/ok", all_addresses: true, expect: {status: [200]}}
  - {name: literal, url: "http://127.0.0.1:%[1]s/ok", all_addresses: true}
  - {name: gone, url: "http://gone.test:%[1]s/ok", all_addresses: true}
`, port, dnsSrv.Addr()))
	jobs := mustJobs(t, c)
	for _, key := range []string{"named/default", "literal/default"} {
		samples := jobs[key].Run(context.Background(), "loc")
		if len(samples) != 1 || samples[0].Address != "ipv4-0" || !samples[0].Success() ||
			samples[0].RemoteAddr != "127.0.0.1:"+port {
			t.Errorf("%s: %d samples, first %+v", key, len(samples), samples[0])
		}
	}
	// A name that does not resolve: one sample, the DNS failure as a plain
	// probe reports it.
	samples := jobs["gone/default"].Run(context.Background(), "loc")
	if len(samples) != 1 || samples[0].Address != "" || samples[0].Err == nil || samples[0].Err.Phase != httptrace.ErrDNS {
		t.Errorf("gone: %d samples, first %+v err %v", len(samples), samples[0], samples[0].Err)
	}
}
