package testkit

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCurlPhases(t *testing.T) {
	got, err := CurlPhases([]byte("0.010 0.015 0.030 0.031 0.052 0.062"))
	if err != nil {
		t.Fatal(err)
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	want := map[string]time.Duration{
		"dns": ms(10), "connect": ms(5), "tls": ms(15), "ttfb": ms(21), "transfer": ms(10), "total": ms(62), "first_byte": ms(52),
	}
	for p, w := range want {
		if d := got[p] - w; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("%s = %v, want %v", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("phases %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for _, bad := range []string{"", "1 2 3 4 5", "1 2 3 4 5 x"} {
		if _, err := CurlPhases([]byte(bad)); err == nil || !strings.Contains(err.Error(), "curl printed") {
			t.Errorf("CurlPhases(%q): err %v, want curl printed …", bad, err)
		}
	}
	if n := strings.Count(CurlFormat, "%{"); n != 6 {
		t.Errorf("CurlFormat has %d marks, want 6", n)
	}
}

// The configurations the benchmarks and the lab wrote by hand before
// BlackboxConfig: the same bytes.
func TestBlackboxConfig(t *testing.T) {
	ca, site := "/tmp/ca.pem", "shop.lab.edgeprobe.test"
	for _, c := range []struct {
		modules []BlackboxModule
		want    string
	}{
		{[]BlackboxModule{{Name: "https", Timeout: 5 * time.Second, CAFile: ca, DisableHTTP2: true}}, fmt.Sprintf(`modules:
  https:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      enable_http2: false
      tls_config: {ca_file: %q}
`, ca)},
		{[]BlackboxModule{{Name: "https", Timeout: 2 * time.Second, CAFile: ca}}, fmt.Sprintf(`modules:
  https:
    prober: http
    timeout: %s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config: {ca_file: %q}
`, 2*time.Second, ca)},
		{[]BlackboxModule{
			{Name: "cdn", Timeout: 5 * time.Second, CAFile: ca, DisableHTTP2: true},
			{Name: "origin", Timeout: 5 * time.Second, CAFile: ca, DisableHTTP2: true, ServerName: site},
		}, fmt.Sprintf(`modules:
  cdn:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      enable_http2: false
      tls_config: {ca_file: %[1]q}
  origin:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      enable_http2: false
      headers: {Host: %[2]q}
      tls_config: {ca_file: %[1]q, server_name: %[2]q}
`, ca, site)},
	} {
		if got := string(BlackboxConfig(c.modules...)); got != c.want {
			t.Errorf("BlackboxConfig(%+v) =\n%s\nwant\n%s", c.modules, got, c.want)
		}
	}
}

func TestBlackboxPhases(t *testing.T) {
	got := BlackboxPhases(map[string]float64{
		`probe_success`:                                   1,
		`probe_dns_lookup_time_seconds`:                   0.001,
		`probe_http_duration_seconds{phase="resolve"}`:    0.001,
		`probe_http_duration_seconds{phase="connect"}`:    0.002,
		`probe_http_duration_seconds{phase="tls"}`:        0.003,
		`probe_http_duration_seconds{phase="processing"}`: 0.004,
		`probe_http_duration_seconds{phase="transfer"}`:   0.005,
		`probe_duration_seconds`:                          0.02,
	})
	want := map[string]time.Duration{
		"dns": time.Millisecond, "connect": 2 * time.Millisecond, "tls": 3 * time.Millisecond,
		"ttfb": 4 * time.Millisecond, "transfer": 5 * time.Millisecond, "total": 20 * time.Millisecond,
	}
	if !maps.Equal(got, want) {
		t.Errorf("BlackboxPhases = %v, want %v", got, want)
	}
}

func TestWithResolvConf(t *testing.T) {
	got := strings.Join(WithResolvConf("/tmp/resolv.conf", "curl", "-s"), " ")
	want := `unshare --mount -- sh -c mount --bind "$0" /etc/resolv.conf && exec "$@" /tmp/resolv.conf curl -s`
	if got != want {
		t.Errorf("WithResolvConf = %s, want %s", got, want)
	}
}
