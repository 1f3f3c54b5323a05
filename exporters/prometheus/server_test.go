package promexp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"

	"github.com/edgeprobe/edgeprobe/httptrace"
	"github.com/edgeprobe/edgeprobe/probe"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestHealthAndReady(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewServer(probe.PrometheusConfig{}, reg, New(reg, nil), testLogger(t))
	h := s.Handler()
	if rec := get(t, h, "/healthz"); rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("/healthz: %d %q", rec.Code, rec.Body)
	}
	if rec := get(t, h, "/ready"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/ready before SetReady: %d, want 503", rec.Code)
	}
	s.SetReady(true)
	if rec := get(t, h, "/ready"); rec.Code != http.StatusOK {
		t.Errorf("/ready after SetReady: %d, want 200", rec.Code)
	}
	// Nothing takes a target from the request: /probe does not exist.
	if rec := get(t, h, "/probe?target=http://169.254.169.254/"); rec.Code != http.StatusNotFound {
		t.Errorf("/probe: %d, want 404", rec.Code)
	}
	rec := get(t, h, "/metrics")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "edgeprobe_build_info{") {
		t.Errorf("/metrics: %d, no build_info:\n%s", rec.Code, rec.Body)
	}
}

func TestStatusPage(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	s := NewServer(probe.PrometheusConfig{}, reg, e, testLogger(t))

	if rec := get(t, s.Handler(), "/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No samples yet") {
		t.Errorf("empty status page: %d\n%s", rec.Code, rec.Body)
	}

	cdn := cdnSample()
	for range 3 {
		write(e, cdn)
	}
	write(e, failedSample("shop", httptrace.ErrTimeout)) // shop/cdn: 3 of 4 ok, last failed
	write(e, cdn)                                        // ... 4 of 5, last ok
	write(e, originSample())
	evil := failedSample(`<script>alert(1)</script>`, httptrace.ErrTLS)
	evil.Err.Message = `<img src=x onerror=alert(1)>`
	write(e, evil)

	rec := get(t, s.Handler(), "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("status page: %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	if strings.Contains(body, secret) {
		t.Fatalf("the status page shows a header value")
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Errorf("values not escaped:\n%s", body)
	}

	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var rows [][]string // text of the cells of each body row
	var segs []string   // class attributes of waterfall segments
	var links, externals []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "tr":
				var cells []string
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "td" {
						cells = append(cells, strings.Join(strings.Fields(text(c)), " "))
					}
				}
				if cells != nil {
					rows = append(rows, cells)
				}
			case "a":
				links = append(links, attr(n, "href"))
			case "div":
				if strings.HasPrefix(attr(n, "class"), "seg ") {
					segs = append(segs, attr(n, "class"))
					if !strings.HasPrefix(attr(n, "style"), "left: ") {
						t.Errorf("segment style %q", attr(n, "style"))
					}
				}
			case "script", "link", "img", "iframe":
				externals = append(externals, n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)

	if len(externals) > 0 {
		t.Errorf("page has %v elements; it must be self-contained", externals)
	}
	if len(links) != 1 || links[0] != "/metrics" {
		t.Errorf("links %v, want just /metrics", links)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %v", len(rows), rows)
	}
	// Sorted by target then role: the hostile name sorts first ("<").
	if !strings.HasPrefix(rows[0][0], "<script>") || !strings.Contains(rows[0][4], "tls") || !strings.Contains(rows[0][4], "<img") {
		t.Errorf("failed row: %q", rows[0])
	}
	cdnRow, originRow := rows[1], rows[2]
	for i, want := range map[int]string{0: "shop", 1: "cdn", 2: testLocation, 4: "ok 200 HTTP/2.0", 6: "48.5 ms", 7: "4/5 (80%)", 8: "hit", 9: "FRA56-P1 Frankfurt"} {
		if cdnRow[i] != want {
			t.Errorf("cdn row cell %d: %q, want %q", i, cdnRow[i], want)
		}
	}
	for _, want := range []string{"dns 2.0 ms", "connect 4.0 ms", "tls 9.0 ms", "ttfb 30.0 ms", "transfer 3.0 ms"} {
		if !strings.Contains(cdnRow[5], want) {
			t.Errorf("cdn waterfall %q lacks %q", cdnRow[5], want)
		}
	}
	if !strings.Contains(originRow[0], "ipv4-0") || strings.Contains(originRow[5], "dns") || strings.Contains(originRow[5], "tls") {
		t.Errorf("origin row: %q", originRow)
	}
	// cdn 5 + origin 3 (connect, ttfb, transfer) + failed 3 (dns, connect, tls)
	if len(segs) != 11 {
		t.Errorf("%d waterfall segments, want 11: %v", len(segs), segs)
	}
}

func text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
		b.WriteString(" ")
	}
	return b.String()
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func TestWaterfallLayout(t *testing.T) {
	// A redirected probe: total and first_byte include an earlier hop.
	// ttfb starts at first_byte − ttfb (140 ms) and the setup phases are
	// laid out right before it, so the first 100 ms are the earlier hop.
	tm := httptrace.Timings{DNS: msec(10), Connect: msec(10), TLS: msec(20), TTFB: msec(40), Transfer: msec(20), FirstByte: msec(180), Total: msec(200)}
	bars := waterfall(tm, msec(200))
	want := []struct {
		phase       string
		left, width float64
	}{{"dns", 50, 5}, {"connect", 55, 5}, {"tls", 60, 10}, {"ttfb", 70, 20}, {"transfer", 90, 10}}
	if len(bars) != len(want) {
		t.Fatalf("bars %v", bars)
	}
	for i, w := range want {
		b := bars[i]
		if b.Phase != w.phase || !approx(b.Left, w.left) || !approx(b.Width, w.width) {
			t.Errorf("bar %d: %+v, want %+v", i, b, w)
		}
	}
}

func TestWaterfallScales(t *testing.T) {
	ok := cdnSample()
	rows := []Status{
		{Target: "a", Timings: ok.Timings},
		{Target: "a", Timings: failedSample("a", httptrace.ErrTimeout).Timings, ErrPhase: httptrace.ErrTimeout},
		{Target: "b", Timings: failedSample("b", httptrace.ErrDNS).Timings, ErrPhase: httptrace.ErrDNS},
	}
	sc := scales(rows)
	if sc["a"] != msec(48.5) || sc["b"] != msec(5000) {
		t.Errorf("scales %v: want a on its success (48.5ms), b on its failure (5s)", sc)
	}
	// A failure longer than its target's axis is clipped to it.
	bars := waterfall(failedSample("a", httptrace.ErrDNS).Timings, sc["a"])
	if len(bars) != 1 || bars[0].Left != 0 || bars[0].Width != 100 {
		t.Errorf("clipped bars %+v", bars)
	}
}

// startServer runs a Server on a free loopback port until the test ends.
func startServer(t *testing.T, cfg probe.PrometheusConfig, reg *prometheus.Registry, e *Exporter) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s := NewServer(cfg, reg, e, testLogger(t))
	addr, err := s.Listen()
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return addr.String()
}

func TestPlainHTTPWithoutWebConfig(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	write(e, cdnSample())
	addr := startServer(t, probe.PrometheusConfig{}, reg, e)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	code, body := fetch(t, client, "http://"+addr+"/metrics", "", "")
	if code != http.StatusOK || !strings.Contains(body, `edgeprobe_probe_success{address="",location="test-loc",role="cdn",target="shop"} 1`) {
		t.Errorf("plain /metrics: %d\n%s", code, body)
	}
}

func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := writeCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("probe-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webYML := filepath.Join(dir, "web.yml")
	cfgText := "tls_server_config:\n  cert_file: " + filepath.Join(dir, "cert.pem") + "\n  key_file: " + filepath.Join(dir, "key.pem") +
		"\nbasic_auth_users:\n  scraper: " + string(hash) + "\n"
	if err := os.WriteFile(webYML, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	e := New(reg, nil)
	write(e, cdnSample())
	addr := startServer(t, probe.PrometheusConfig{WebConfig: webYML}, reg, e)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	defer client.CloseIdleConnections()

	base := "https://" + addr
	if code, _ := fetch(t, client, base+"/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials: %d, want 401", code)
	}
	if code, _ := fetch(t, client, base+"/metrics", "scraper", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong password: %d, want 401", code)
	}
	if code, _ := fetch(t, client, base+"/", "", ""); code != http.StatusUnauthorized {
		t.Errorf("status page without credentials: %d, want 401", code)
	}
	code, body := fetch(t, client, base+"/metrics", "scraper", "probe-pass")
	if code != http.StatusOK || !strings.Contains(body, "edgeprobe_probes_total{") {
		t.Errorf("/metrics with credentials: %d\n%s", code, body)
	}
	// Plain HTTP to the TLS port is refused.
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if code, _ := fetch(t, plain, "http://"+addr+"/metrics", "scraper", "probe-pass"); code == http.StatusOK {
		t.Errorf("plain HTTP served with TLS configured")
	}
}

func TestBadWebConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(path, []byte("tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewServer(probe.PrometheusConfig{Listen: "127.0.0.1:0", WebConfig: path}, prometheus.NewRegistry(), nil, testLogger(t))
	if _, err := s.Listen(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Listen with a bad web config: %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Errorf("Run with a bad web config returned nil")
	}
}

func fetch(t *testing.T, c *http.Client, url, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		var uerr interface{ Timeout() bool }
		if errors.As(err, &uerr) && uerr.Timeout() {
			t.Fatalf("GET %s: %v", url, err)
		}
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// writeCert writes a self-signed certificate for localhost and 127.0.0.1
// to dir/cert.pem and dir/key.pem and returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}
