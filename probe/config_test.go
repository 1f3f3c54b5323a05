package probe

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// fixtureEnv is the environment the invalid fixtures see. Its values are
// "secrets": no message may contain them.
var fixtureEnv = map[string]string{
	"EP_TEST_TOKEN": "s3cr3t-token\n",            // a secret read from a file, newline and all
	"EP_TEST_URL":   "s3cr3t-host.example.com/x", // no scheme: invalid as a URL
}

func fixtureLookup(name string) (string, bool) {
	v, ok := fixtureEnv[name]
	return v, ok
}

// marker is an error a fixture expects: "# ERROR: text" on the line the
// error must name (several per line separated by " # ERROR: ").
type marker struct {
	line int
	text string
}

func readMarkers(t *testing.T, file string) []marker {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []marker
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		parts := strings.Split(sc.Text(), "# ERROR: ")
		for _, p := range parts[1:] {
			out = append(out, marker{n, strings.TrimSpace(p)})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no # ERROR: markers", file)
	}
	return out
}

func configErrors(t *testing.T, err error) []*ConfigError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var out []*ConfigError
	for _, e := range errs {
		var ce *ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("error is not a *ConfigError: %T %v", e, e)
		}
		out = append(out, ce)
	}
	return out
}

// TestInvalidFixtures: each rule has a fixture whose comments say which
// line must be named and what the message (hint included) says.
func TestInvalidFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseConfig(file, data, fixtureLookup)
			if err == nil {
				t.Fatalf("parsed without error: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("a config came back with the error")
			}
			got := configErrors(t, err)
			used := make([]bool, len(got))
			for _, m := range readMarkers(t, file) {
				prefix := file + ":" + strconv.Itoa(m.line) + ":"
				found := false
				for i, e := range got {
					if !used[i] && e.Line == m.line && strings.Contains(e.Error(), m.text) && strings.HasPrefix(e.Error(), prefix) {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("line %d: no error containing %q\ngot:\n%v", m.line, m.text, err)
				}
			}
			for i, e := range got {
				if !used[i] {
					t.Errorf("unexpected error: %v", e)
				}
				if e.File != file || e.Line == 0 {
					t.Errorf("error not located: %+v", e)
				}
			}
		})
	}
}

func TestErrorsNeverShowEnvironmentValues(t *testing.T) {
	for _, file := range []string{"testdata/invalid-secret.yml", "testdata/invalid-env.yml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseConfig(file, data, fixtureLookup)
		if err == nil {
			t.Fatalf("%s: no error", file)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: a secret leaked into the message:\n%v", file, err)
		}
	}
}

func TestDesignExampleLoadsWithDefaults(t *testing.T) {
	c, err := Load("testdata/valid.yml")
	if err != nil {
		t.Fatal(err)
	}
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if c.Path != "testdata/valid.yml" || c.Location != "eu-west-1" || c.Concurrency != 256 {
		t.Errorf("top level: %+v", c)
	}
	if c.Defaults.Interval.D() != 30*time.Second || c.Defaults.Timeout.D() != 10*time.Second {
		t.Errorf("defaults: %+v", c.Defaults)
	}
	if len(c.Targets) != 1 {
		t.Fatalf("targets: %+v", c.Targets)
	}
	tg := c.Targets[0]
	if tg.Name != "shop" || tg.Line != 5 || tg.Interval.D() != 30*time.Second || tg.Timeout.D() != 10*time.Second ||
		!tg.Conditional || tg.CAFile != abs("corp-ca.pem") || len(tg.Expect.Status) != 1 || tg.Expect.Status[0] != 200 {
		t.Errorf("target: %+v", tg)
	}
	if len(tg.Roles) != 2 || tg.Roles["origin"].ConnectTo != "my-alb-123.eu-west-1.elb.amazonaws.com" || tg.Roles["cdn"].URL != "" || tg.Roles["cdn"].ConnectTo != "" {
		t.Errorf("roles: %+v", tg.Roles)
	}
	e := c.Exporters
	if e.Prometheus == nil || e.Prometheus.Listen != ":9470" || e.Prometheus.WebConfig != abs("web.yml") {
		t.Errorf("prometheus: %+v", e.Prometheus)
	}
	if e.CloudWatch == nil || e.CloudWatch.Namespace != "EdgeProbe" || e.CloudWatch.Region != "us-east-1" || e.CloudWatch.FlushInterval.D() != time.Minute {
		t.Errorf("cloudwatch: %+v", e.CloudWatch)
	}
	if rw := e.RemoteWrite; rw == nil || rw.URL != "https://..." || rw.Interval.D() != 15*time.Second ||
		rw.SigV4 == nil || rw.SigV4.Region != "eu-west-1" || rw.SigV4.Service != "aps" {
		t.Errorf("remote_write: %+v", e.RemoteWrite)
	}
	if pg := e.Pushgateway; pg == nil || pg.URL != "http://..." || pg.Job != "edgeprobe" || pg.Interval.D() != 15*time.Second {
		t.Errorf("pushgateway: %+v", e.Pushgateway)
	}
	if e.JSONL == nil || e.JSONL.Path != abs("samples.jsonl") {
		t.Errorf("jsonl: %+v", e.JSONL)
	}
}

func TestEveryKeyAndEnvExpansion(t *testing.T) {
	t.Setenv("EP_TEST_TOKEN", "tok-123")
	t.Setenv("EP_TEST_HOST", "www.example.com")
	t.Setenv("EP_TEST_EMPTY", "")
	c, err := Load("testdata/valid-all.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Location != "eu-central-1" { // ${EP_TEST_UNSET_REGION:-eu-central-1}
		t.Errorf("location %q", c.Location)
	}
	if c.Labels["env"] != "prod" || c.Concurrency != 64 {
		t.Errorf("labels/concurrency: %+v %d", c.Labels, c.Concurrency)
	}
	d := c.Defaults
	if d.Interval.D() != 15*time.Second || d.Timeout.D() != 5*time.Second || d.IPVersion != "prefer4" ||
		d.DNSServer != "127.0.0.1:53" || d.Headers["X-Team"] != "edge" || d.UserAgent != "edgeprobe-test" {
		t.Errorf("defaults: %+v", d)
	}
	shop := c.Targets[0]
	if shop.URL != "https://www.example.com/health" || shop.Headers["Authorization"] != "Bearer tok-123" ||
		shop.Headers["X-Literal"] != "${NOT_EXPANDED} and $HOME" || shop.Headers["X-Empty"] != "fallback" {
		t.Errorf("expansion: url %q headers %q", shop.URL, shop.Headers)
	}
	if shop.Body != "{\"q\": \"tok-123\"}\n" || shop.Method != "POST" {
		t.Errorf("body %q method %q", shop.Body, shop.Method)
	}
	if shop.Interval.D() != time.Minute || shop.Timeout.D() != 5*time.Second { // timeout from defaults
		t.Errorf("timing: %v %v", shop.Interval, shop.Timeout)
	}
	if !shop.KeepAlive || !shop.ServerTiming || !shop.AllAddresses || !shop.InsecureSkipVerify ||
		shop.HTTP2 == nil || *shop.HTTP2 || shop.FollowRedirects == nil || *shop.FollowRedirects ||
		shop.MaxRedirects != 3 || shop.BodyLimit != 65536 || shop.IPVersion != "ip4" || shop.DNSServer != "[::1]:5353" {
		t.Errorf("target options: %+v", shop)
	}
	if shop.Expect.BodyRegex != `"status":\s*"ok"` || shop.Expect.BodyNotRegex != "error" ||
		len(shop.Expect.Headers) != 2 || len(shop.Expect.Status) != 2 {
		t.Errorf("expect: %+v", shop.Expect)
	}
	if len(shop.Paused) != 1 || !shop.Paused[0].From.Equal(time.Date(2025, 6, 1, 22, 0, 0, 0, time.UTC)) ||
		!shop.Paused[0].To.Equal(time.Date(2025, 6, 1, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("paused: %+v", shop.Paused)
	}
	if o := shop.Roles["origin"]; o.ConnectTo != "10.0.0.5:443" || o.Host != "www.example.com" || o.Headers["X-Role"] != "origin" {
		t.Errorf("origin role: %+v", o)
	}
	if c.Targets[1].Interval.D() != 15*time.Second || c.Targets[1].Timeout.D() != 5*time.Second {
		t.Errorf("second target timing from defaults: %+v", c.Targets[1])
	}
	if cw := c.Exporters.CloudWatch; cw.Endpoint != "http://127.0.0.1:5000" || !cw.HighResolution {
		t.Errorf("cloudwatch: %+v", cw)
	}
	if rw := c.Exporters.RemoteWrite; rw.Headers["X-Scope-OrgID"] != "tok-123" || rw.SigV4.Service != "aps" {
		t.Errorf("remote_write: %+v", rw)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("edgeprobe.yml", []byte("targets: [{name: a, url: 'http://127.0.0.1/'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Defaults.Interval.D() != 30*time.Second || c.Defaults.Timeout.D() != 10*time.Second || c.Concurrency != 256 {
		t.Errorf("defaults: %+v %d", c.Defaults, c.Concurrency)
	}
	if e := c.Exporters; e.Prometheus != nil || e.CloudWatch != nil || e.RemoteWrite != nil || e.Pushgateway != nil || e.JSONL != nil {
		t.Errorf("exporters are off unless configured: %+v", e)
	}

	// A short interval shortens the default timeout instead of failing;
	// a bare exporter key turns it on with its defaults.
	c, err = Parse("edgeprobe.yml", []byte("defaults: {interval: 5s}\ntargets: [{name: a, url: 'http://127.0.0.1/'}]\nexporters:\n  prometheus:\n  cloudwatch:\n  pushgateway: {url: 'http://127.0.0.1:9091'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Targets[0].Timeout.D() != 5*time.Second || c.Defaults.Timeout.D() != 5*time.Second {
		t.Errorf("timeout: %v %v", c.Targets[0].Timeout, c.Defaults.Timeout)
	}
	if p := c.Exporters.Prometheus; p == nil || p.Listen != ":9470" {
		t.Errorf("prometheus: %+v", p)
	}
	if cw := c.Exporters.CloudWatch; cw == nil || cw.Namespace != "EdgeProbe" || cw.FlushInterval.D() != time.Minute {
		t.Errorf("cloudwatch: %+v", cw)
	}
	if pg := c.Exporters.Pushgateway; pg.Job != "edgeprobe" || pg.Interval.D() != 15*time.Second {
		t.Errorf("pushgateway: %+v", pg)
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1m30s"), &v); err != nil || v.D.D() != 90*time.Second {
		t.Errorf("1m30s: %v %v", v.D, err)
	}
	err := yaml.Unmarshal([]byte("d: 30"), &v)
	if err == nil || !strings.Contains(err.Error(), `"30" is not a duration; write e.g. 30s or 1m`) {
		t.Errorf("bare integer: %v", err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || strings.TrimSpace(string(out)) != "d: 1m30s" {
		t.Errorf("marshal: %q %v", out, err)
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "x", "E": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"${A}":          "x",
		"a${A}b${A}":    "axbx",
		"${U:-d}":       "d",
		"${E:-d}":       "d",
		"${E}":          "",
		"${A:-d}":       "x",
		"$${A}":         "${A}",
		"$A and $":      "$A and $",
		"cost: 5$":      "cost: 5$",
		"${U:-a:b/c}x":  "a:b/cx",
		"no references": "no references",
	} {
		got, _, err := expandEnv(in, lookup)
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${U}", "${", "${A", "${1A}", "${A B}"} {
		if _, _, err := expandEnv(in, lookup); err == nil {
			t.Errorf("expandEnv(%q): no error", in)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such.yml")
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "testdata/no-such.yml: cannot read") {
		t.Errorf("got %v", err)
	}
}

func TestConfigErrorString(t *testing.T) {
	for _, c := range []struct {
		e    ConfigError
		want string
	}{
		{ConfigError{File: "e.yml", Line: 12, Col: 15, Path: "targets[1].interval", Msg: "m"}, "e.yml:12:15: targets[1].interval: m"},
		{ConfigError{File: "e.yml", Line: 3, Msg: "m"}, "e.yml:3: m"},
		{ConfigError{File: "e.yml", Msg: "m"}, "e.yml: m"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestNearestKey(t *testing.T) {
	known := []string{"name", "url", "interval", "timeout", "connect_to", "body_regex"}
	for in, want := range map[string]string{
		"intreval": "interval", "Interval": "interval", "timout": "timeout", "nmae": "name",
		"uri": "url", "connect-to": "connect_to", "connect": "connect_to", "retries": "", "x": "",
	} {
		if got := nearestKey(in, known); got != want {
			t.Errorf("nearestKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c, err := Parse("edgeprobe.yml", []byte(`
defaults:
  headers: &h {X-A: "1"}
targets:
  - &shop {name: shop, url: "https://www.example.com/", headers: *h, interval: 10s}
  - <<: *shop
    name: shop2
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Targets) != 2 || c.Targets[1].Name != "shop2" || c.Targets[1].URL != "https://www.example.com/" ||
		c.Targets[1].Interval.D() != 10*time.Second || c.Targets[1].Headers["X-A"] != "1" {
		t.Errorf("merged target: %+v", c.Targets)
	}
}
