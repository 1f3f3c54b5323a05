package compare

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// artifactsDir is where tests leave files for a person to look at:
// $EDGEPROBE_ARTIFACTS when set, else the test's temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("EDGEPROBE_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// chromium runs Debian's headless Chromium on a local file with the given
// extra arguments and returns its stdout and stderr.
func chromium(t *testing.T, page string, args ...string) (stdout, stderr string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed to check the HTML report (scripts/deps.sh installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleProblems are Chromium's log lines for the page's console (the
// report has no script, so any is a problem) and uncaught errors.
var consoleProblems = regexp.MustCompile(`(?m)^.*(:CONSOLE|Uncaught).*$`)

// reportResult is a comparison with everything a report shows: two
// locations (one with too few samples), a faster b, failures, warnings.
func reportResult(t *testing.T) *Result {
	rng := rand.New(rand.NewPCG(31, 32))
	slow := func(rng *rand.Rand) time.Duration { return latency(rng, 60*msec) }
	a := side(rng, gen{n: 300, location: "eu-west-1", ttfb: slow, failures: 2, role: "origin"},
		gen{n: 120, location: "us-east-1", ttfb: slow, role: "origin"})
	b := side(rng, gen{n: 300, location: "eu-west-1", failures: 9, role: "cdn"},
		gen{n: 12, location: "us-east-1", role: "cdn"})
	res, err := Compare("origin", a, "cdn", b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestHTMLReportInChromium(t *testing.T) {
	res := reportResult(t)
	dir := artifactsDir(t)
	page := filepath.Join(dir, "compare-report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Self-contained: nothing to fetch, no script.
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url(http", "//fonts."} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains %q: it must not fetch anything", bad)
		}
	}

	shot := filepath.Join(dir, "compare-report.png")
	_, stderr := chromium(t, page, "--screenshot="+shot, "--window-size=1280,2000")
	if bad := consoleProblems.FindAllString(stderr, -1); len(bad) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(bad, "\n"))
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v (%v)", shot, err, fi)
	}
	t.Logf("screenshot: %s", shot)
	t.Logf("report: %s", page)

	dom, stderr := chromium(t, page, "--dump-dom")
	if bad := consoleProblems.FindAllString(stderr, -1); len(bad) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(bad, "\n"))
	}
	// One ECDF per phase and the waterfall, each drawing both sides.
	if n := strings.Count(dom, `<svg class="chart"`); n != len(httptrace.Phases) {
		t.Errorf("%d ECDF charts in the DOM, want %d", n, len(httptrace.Phases))
	}
	if n := strings.Count(dom, `<svg class="chart waterfall"`); n != 1 {
		t.Errorf("%d waterfalls in the DOM", n)
	}
	for _, c := range []string{colorA, colorB} {
		if n := strings.Count(dom, `stroke="`+c+`" stroke-width="2"`); n != len(httptrace.Phases) {
			t.Errorf("%d ECDF curves in %s, want one per phase", n, c)
		}
	}
	for _, want := range []string{"probe compare: cdn vs origin", "eu-west-1", "us-east-1", "faster", "insufficient", "Warnings", "Fisher"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
}
