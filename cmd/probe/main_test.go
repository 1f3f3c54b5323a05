package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/probe"
)

// binary is the probe command built once for all tests: they run it as a
// user would, as a subprocess, against real servers on 127.0.0.1.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "probe-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "probe")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build probe:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runProbe runs the binary with a bounded wall time.
func runProbe(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
	default:
		t.Fatalf("run probe %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// sleepHandler waits d before answering 200 with a Last-Modified, and
// answers a revalidation (If-Modified-Since) with a fast 304.
func sleepHandler(d time.Duration) http.HandlerFunc {
	lastModified := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		time.Sleep(d)
		w.Header().Set("Last-Modified", lastModified)
		fmt.Fprintln(w, "hello")
	}
}

// tlsServer starts an HTTPS server on 127.0.0.1 and writes its certificate
// to a PEM file for --ca-file.
func tlsServer(t *testing.T, h http.Handler) (srv *httptest.Server, caFile string) {
	t.Helper()
	srv = httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

var contractFields = []string{
	"time", "target", "role", "location", "url", "dns_seconds", "connect_seconds", "tls_seconds",
	"ttfb_seconds", "transfer_seconds", "total_seconds", "first_byte_seconds", "status", "error",
}

func TestCheckJSONL(t *testing.T) {
	const wait = 25 * time.Millisecond
	srv, ca := tlsServer(t, sleepHandler(wait))
	r := runProbe(t, []string{"EDGEPROBE_LOCATION=lab-1"},
		"check", srv.URL+"/", "--count", "3", "--interval", "10ms", "--format", "jsonl", "--ca-file", ca)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	lines := jsonLines(t, r.stdout)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), r.stdout)
	}
	for i, m := range lines {
		for _, f := range contractFields {
			if _, ok := m[f]; !ok {
				t.Errorf("line %d lacks %q", i, f)
			}
		}
		if m["error"] != nil || m["status"] != 200.0 || m["target"] != "127.0.0.1" || m["role"] != "" || m["location"] != "lab-1" || m["url"] != srv.URL+"/" {
			t.Errorf("line %d: %v", i, m)
		}
		if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
			t.Errorf("line %d time: %v", i, err)
		}
		ttfb := m["ttfb_seconds"].(float64)
		if ttfb < wait.Seconds() || ttfb > wait.Seconds()+0.5 {
			t.Errorf("line %d: ttfb %v s, want ≥ the handler's %v", i, ttfb, wait)
		}
		if m["tls_seconds"].(float64) <= 0 || m["connect_seconds"].(float64) <= 0 || m["total_seconds"].(float64) < ttfb {
			t.Errorf("line %d: phases %v", i, m)
		}
	}
	if strings.Contains(r.stderr, "probing") {
		t.Errorf("progress line on a pipe: %q", r.stderr)
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused

	r := runProbe(t, nil, "check", "http://"+addr+"/", "--count", "2", "--interval", "10ms", "--format", "jsonl", "--location", "here")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", r.code, r.stderr)
	}
	lines := jsonLines(t, r.stdout)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	for _, m := range lines {
		e, _ := m["error"].(map[string]any)
		if e == nil || e["phase"] != "connect" || e["message"] == "" {
			t.Errorf("error = %v, want phase connect", m["error"])
		}
	}
	if !strings.Contains(r.stderr, "2 of 2 probes failed") {
		t.Errorf("stderr: %q", r.stderr)
	}

	// The table names the failure too.
	r = runProbe(t, nil, "check", "http://"+addr+"/", "--count", "1")
	if r.code != 1 || !strings.Contains(r.stdout, "failed ×1 in connect") {
		t.Errorf("exit %d, table:\n%s", r.code, r.stdout)
	}
}

func TestCheckUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--bogus", "http://127.0.0.1:1/"}, "unknown flag: --bogus"},
		{[]string{"check", "ftp://127.0.0.1/"}, `bad URL "ftp://127.0.0.1/"`},
		{[]string{"check", "not a url"}, "bad URL"},
		{[]string{"check", "cdn=127.0.0.1"}, "bad URL"},
		{[]string{"check"}, "at least one URL"},
		{[]string{"check", "--count", "0", "http://127.0.0.1:1/"}, "--count 0"},
		{[]string{"check", "--count", "many", "http://127.0.0.1:1/"}, "invalid argument"},
		{[]string{"check", "--format", "xml", "http://127.0.0.1:1/"}, "--format"},
		{[]string{"check", "--ip-version", "ip5", "http://127.0.0.1:1/"}, "ip version"},
		{[]string{"check", "--dns-server", "nowhere", "http://127.0.0.1:1/"}, "dns server"},
		{[]string{"check", "-H", "no colon", "http://127.0.0.1:1/"}, "Name: value"},
		{[]string{"check", "--connect-to", "host:99999", "http://127.0.0.1:1/"}, "--connect-to"},
		{[]string{"check", "--ca-file", "/nonexistent.pem", "http://127.0.0.1:1/"}, "--ca-file"},
		{[]string{"check", "http://127.0.0.1:1/", "http://127.0.0.1:1/"}, "given twice"},
		{[]string{"--log-format", "xml", "check", "http://127.0.0.1:1/"}, "--log-format"},
		{[]string{"nosuchcommand"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runProbe(t, nil, c.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, c.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout on a usage error: %q", r.stdout)
			}
		})
	}
}

// TestCheckConnectTo probes one URL both ways: cdn as it resolves (a fast
// server) and origin through --connect-to (a slow one, same certificate).
func TestCheckConnectTo(t *testing.T) {
	cdn, ca := tlsServer(t, sleepHandler(5*time.Millisecond))
	origin, _ := tlsServer(t, sleepHandler(40*time.Millisecond)) // httptest servers share one certificate
	originAddr := origin.Listener.Addr().String()
	save := filepath.Join(t.TempDir(), "samples.jsonl")
	common := []string{"check", cdn.URL + "/", "--connect-to", originAddr, "--ca-file", ca, "--count", "3", "--interval", "10ms"}

	r := runProbe(t, nil, append(common, "--save", save)...)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	t.Log("\n" + r.stdout)
	for _, want := range []string{"origin (3/3 ok)", "cdn (3/3 ok)", "cdn−origin p50", "phase (ms)", "ttfb", "first_byte", "█"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour on a pipe")
	}

	// --save: count × groups lines, each a sample, the origin role dialled
	// through connect-to and the cdn role as the URL resolves.
	data, err := os.ReadFile(save)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 6 {
		t.Fatalf("--save has %d lines, want 6", len(lines))
	}
	roles := map[string]int{}
	for i, line := range lines {
		var s probe.Sample
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		roles[s.Role]++
		want := map[string]string{"origin": originAddr, "cdn": cdn.Listener.Addr().String()}[s.Role]
		if s.RemoteAddr != want || s.Target != "127.0.0.1" {
			t.Errorf("line %d: role %q target %q reached %s, want %s", i, s.Role, s.Target, s.RemoteAddr, want)
		}
		// Rounds interleave: origin, cdn, origin, cdn, …
		if wantRole := []string{"origin", "cdn"}[i%2]; s.Role != wantRole {
			t.Errorf("line %d is %q, want %q (interleaved rounds)", i, s.Role, wantRole)
		}
	}
	if roles["origin"] != 3 || roles["cdn"] != 3 {
		t.Errorf("roles %v", roles)
	}

	// --format json: the summary, with the cdn faster than the origin in ttfb.
	r = runProbe(t, nil, append(common, "--format", "json")...)
	if r.code != 0 {
		t.Fatalf("json: exit %d, stderr: %s", r.code, r.stderr)
	}
	var sum struct {
		Groups []struct {
			Role   string
			N      int
			Phases map[string]map[string]float64
		}
		Diff []struct {
			Phase string
			ARole string  `json:"a_role"`
			BRole string  `json:"b_role"`
			Diff  float64 `json:"diff_p50_seconds"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("json output: %v\n%s", err, r.stdout)
	}
	if len(sum.Groups) != 2 || sum.Groups[0].Role != "origin" || sum.Groups[1].Role != "cdn" || sum.Groups[0].N != 3 {
		t.Fatalf("groups: %+v", sum.Groups)
	}
	if ttfb := sum.Groups[0].Phases["ttfb"]["p50"]; ttfb < 0.040 {
		t.Errorf("origin ttfb p50 %v s, want ≥ 40 ms", ttfb)
	}
	found := false
	for _, d := range sum.Diff {
		if d.Phase == "ttfb" {
			found = true
			if d.ARole != "origin" || d.BRole != "cdn" || d.Diff > -0.020 {
				t.Errorf("ttfb diff %+v: want cdn − origin well below zero", d)
			}
		}
	}
	if !found {
		t.Errorf("no ttfb diff: %+v", sum.Diff)
	}
}

func TestCheckWarnings(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "no redirect, no validator")
	}))
	defer plain.Close()
	secure, ca := tlsServer(t, sleepHandler(time.Millisecond))
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, secure.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	defer redirecting.Close()
	// Ignores If-Modified-Since: revalidation never gets its 304.
	stubborn, _ := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Last-Modified", "Sun, 01 Mar 2026 10:00:00 GMT")
		fmt.Fprintln(w, "always 200")
	}))

	r := runProbe(t, nil, "check", "--count", "2", "--interval", "10ms", "--ca-file", ca, "--conditional",
		"plain="+plain.URL+"/", "redirecting="+redirecting.URL+"/", "good="+secure.URL+"/", "stubborn="+stubborn.URL+"/")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	t.Log("\n" + r.stdout)
	_, warnings, ok := strings.Cut(r.stdout, "\nwarnings (")
	if !ok {
		t.Fatalf("no warnings section:\n%s", r.stdout)
	}
	for _, want := range []string{
		"plain: " + plain.URL + "/ answered 200 instead of redirecting to https://",
		"plain: 2 of 2 200 answers carry neither Last-Modified nor ETag",
		"stubborn: revalidation (If-Modified-Since / If-None-Match) answered 304 in 0 of 2",
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q", want)
		}
	}
	for _, not := range []string{"redirecting:", "good:"} {
		if strings.Contains(warnings, not) {
			t.Errorf("unexpected warning for %s", not)
		}
	}
	if !strings.Contains(r.stdout, "revalidation: 304 in 2 of 2 sent") {
		t.Error("the good server's 304s are not reported")
	}
}

func TestCheckAllAddresses(t *testing.T) {
	srv, _ := tlsServer(t, sleepHandler(0))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// localhost resolves (from /etc/hosts) to 127.0.0.1, where the server
	// listens; the certificate has no "localhost", so keep SNI on the IP.
	r := runProbe(t, nil, "check", "https://localhost:"+port+"/", "--all-addresses", "--ip-version", "ip4",
		"--insecure", "--count", "2", "--interval", "10ms", "--format", "jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s\n%s", r.code, r.stderr, r.stdout)
	}
	lines := jsonLines(t, r.stdout)
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, m := range lines {
		if m["address"] != "ipv4-0" || m["remote_addr"] != "127.0.0.1:"+port {
			t.Errorf("address %v remote %v", m["address"], m["remote_addr"])
		}
		if tls, _ := m["tls"].(map[string]any); tls == nil || tls["insecure_skip_verify"] != true {
			t.Errorf("insecure not reported: %v", m["tls"])
		}
	}
}

func TestCheckInterrupt(t *testing.T) {
	srv, ca := tlsServer(t, sleepHandler(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	save := filepath.Join(t.TempDir(), "samples.jsonl")
	cmd := exec.CommandContext(ctx, binary, "check", srv.URL+"/", "--ca-file", ca, "--count", "100", "--interval", "50ms", "--save", save)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once a few probes are saved: the signal handler is surely
	// installed by then.
	for {
		data, _ := os.ReadFile(save)
		if bytes.Count(data, []byte("\n")) >= 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no samples saved")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d (%v), stderr: %s", code, err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "phase (ms)") || strings.Contains(out, "(100/100 ok)") {
		t.Errorf("want a summary of fewer than 100 probes:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr: %q", stderr.String())
	}
}

func TestVersion(t *testing.T) {
	r := runProbe(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "probe ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestLogFormatJSON(t *testing.T) {
	srv, ca := tlsServer(t, sleepHandler(0))
	r := runProbe(t, nil, "--log-format", "json", "--log-level", "debug", "check", srv.URL+"/", "--ca-file", ca, "--count", "1", "--format", "jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := jsonLines(t, r.stderr)
	if len(lines) != 1 || lines[0]["msg"] != "probed" || lines[0]["level"] != "DEBUG" {
		t.Errorf("debug log: %v", lines)
	}
}
