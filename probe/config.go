package probe

import (
	"fmt"
	"time"
)

// Config is the agent's YAML file (DESIGN.md "Config"). Key names are a
// contract: users' files depend on them.
type Config struct {
	// Location labels every sample; empty means detected at start-up.
	Location string `yaml:"location"`
	// Labels are constant labels added to every exported series.
	Labels   map[string]string `yaml:"labels"`
	Defaults Defaults          `yaml:"defaults"`
	// Concurrency bounds the probes in flight at once (default 256).
	Concurrency int       `yaml:"concurrency"`
	Targets     []Target  `yaml:"targets"`
	Exporters   Exporters `yaml:"exporters"`

	// Path is the file the config was read from (for messages and reload).
	Path string `yaml:"-"`
}

// Defaults apply to every target that does not set its own value.
type Defaults struct {
	Interval  Duration `yaml:"interval"`   // default 30s
	Timeout   Duration `yaml:"timeout"`    // default 10s (or the interval, if shorter); must be ≤ interval
	IPVersion string   `yaml:"ip_version"` // "", ip4, ip6, prefer4, prefer6
	DNSServer string   `yaml:"dns_server"` // ip:port; empty = system resolver
	// Headers are sent with every request (values expand ${ENV}).
	Headers   map[string]string `yaml:"headers"`
	UserAgent string            `yaml:"user_agent"`
}

// Target names one site; its roles are the ways in.
type Target struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Roles: "origin" (usually with connect_to the load balancer), "cdn", or
	// any name. No roles means one role named "default".
	Roles map[string]Role `yaml:"roles"`

	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	Expect  Expect            `yaml:"expect"`

	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`

	Conditional  bool `yaml:"conditional"`   // also measure If-Modified-Since / If-None-Match
	KeepAlive    bool `yaml:"keep_alive"`    // also measure a warm request on the same connection
	ServerTiming bool `yaml:"server_timing"` // send Pragma: server-timing (CloudFront)
	AllAddresses bool `yaml:"all_addresses"` // probe every resolved address (bounded)

	IPVersion          string `yaml:"ip_version"`
	DNSServer          string `yaml:"dns_server"`
	CAFile             string `yaml:"ca_file"` // relative to the config file; Parse makes it absolute
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	HTTP2              *bool  `yaml:"http2"` // default true
	FollowRedirects    *bool  `yaml:"follow_redirects"`
	MaxRedirects       int    `yaml:"max_redirects"`
	BodyLimit          int64  `yaml:"body_limit"` // bytes

	// Paused lists windows in which the target is not probed (a rollout).
	Paused []Window `yaml:"paused"`

	// Line is where the target starts in its file, for messages (set by
	// Parse; 0 for a config built in code).
	Line int `yaml:"-"`
}

// Role is one way into a target.
type Role struct {
	URL       string            `yaml:"url"`        // default: the target's URL
	ConnectTo string            `yaml:"connect_to"` // host[:port] dialled instead, Host/SNI kept
	Host      string            `yaml:"host"`       // Host header and SNI override
	Headers   map[string]string `yaml:"headers"`
}

// Expect are the assertions a response must pass (failures are phase
// "assert").
type Expect struct {
	Status       []int    `yaml:"status"`         // default: 200-399 after redirects
	BodyRegex    string   `yaml:"body_regex"`     // must match the body
	BodyNotRegex string   `yaml:"body_not_regex"` // must not match
	Headers      []string `yaml:"headers"`        // must be present
}

// Window is a span of time [From, To) in RFC 3339.
type Window struct {
	From time.Time `yaml:"from"`
	To   time.Time `yaml:"to"`
}

// Exporters are the sinks; each is off unless configured.
type Exporters struct {
	Prometheus  *PrometheusConfig  `yaml:"prometheus"`
	CloudWatch  *CloudWatchConfig  `yaml:"cloudwatch"`
	RemoteWrite *RemoteWriteConfig `yaml:"remote_write"`
	Pushgateway *PushgatewayConfig `yaml:"pushgateway"`
	JSONL       *JSONLConfig       `yaml:"jsonl"`
}

// PrometheusConfig serves /metrics (and /, /healthz, /ready).
type PrometheusConfig struct {
	Listen    string `yaml:"listen"`     // default ":9470"
	WebConfig string `yaml:"web_config"` // exporter-toolkit web config file (TLS, basic auth); Parse makes it absolute
}

// CloudWatchConfig sends aggregated metrics with PutMetricData.
type CloudWatchConfig struct {
	Namespace      string   `yaml:"namespace"` // default "EdgeProbe"
	Region         string   `yaml:"region"`
	Endpoint       string   `yaml:"endpoint"`
	FlushInterval  Duration `yaml:"flush_interval"` // default 60s
	HighResolution bool     `yaml:"high_resolution"`
}

// RemoteWriteConfig pushes series with Prometheus remote write 1.0.
type RemoteWriteConfig struct {
	URL      string            `yaml:"url"`
	Interval Duration          `yaml:"interval"` // default 15s
	Headers  map[string]string `yaml:"headers"`
	SigV4    *SigV4Config      `yaml:"sigv4"`
}

// SigV4Config signs remote write requests for Amazon Managed Service for
// Prometheus with the default AWS credential chain.
type SigV4Config struct {
	Region  string `yaml:"region"`
	Service string `yaml:"service"` // default "aps"
}

// PushgatewayConfig pushes the agent's registry to a Pushgateway.
type PushgatewayConfig struct {
	URL      string   `yaml:"url"`
	Job      string   `yaml:"job"`      // default "edgeprobe"
	Interval Duration `yaml:"interval"` // default 15s
}

// JSONLConfig appends every raw sample to a file (the input of compare).
type JSONLConfig struct {
	Path string `yaml:"path"` // relative to the config file; Parse makes it absolute
}

// Duration is a time.Duration written as "30s", "1m30s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration as in the config ("30s", "1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads "30s", "1m30s". A bare number is refused: 30 could
// mean seconds or nanoseconds, and guessing wrong silently is worse.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	if v == nil {
		return nil // an empty value keeps the default
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%q is not a duration; write e.g. 30s or 1m", fmt.Sprint(v))
	}
	p, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(p)
	return nil
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// parseDuration is the one rule for durations in the file, shared by
// UnmarshalYAML and the loader (which adds the line number). time's own
// message is left out: it repeats the value and has no hint.
func parseDuration(s string) (time.Duration, error) {
	p, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write e.g. 30s or 1m", s)
	}
	if p <= 0 {
		return 0, fmt.Errorf("%q must be longer than zero; write e.g. 30s", s)
	}
	return p, nil
}
