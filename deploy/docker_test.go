package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// No Docker engine runs here, so the Dockerfile is checked by reading it
// with BuildKit's own parser (the one `docker build` uses) and its linter
// (the parse-time rules of `docker build --check`), and its HEALTHCHECK is
// run against a real agent. hadolint is not packaged in Debian.

func parseDockerfile(t *testing.T) ([]instructions.Stage, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: parser warning: %s", w.Short)
	}
	var lints []string
	lint := linter.New(&linter.Config{Warn: func(rule, desc, url, msg string, loc []parser.Range) {
		lints = append(lints, fmt.Sprintf("%s (line %v): %s", rule, loc, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages, lints
}

func TestDockerfile(t *testing.T) {
	stages, lints := parseDockerfile(t)
	for _, l := range lints {
		t.Errorf("Dockerfile lint: %s", l)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build (builder + runtime)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.BaseName, "golang:${GO_VERSION}") {
		t.Errorf("builder FROM %s, want golang:${GO_VERSION}…", build.BaseName)
	}

	// The builder: a static, trimmed, stripped build of ./cmd/probe with the
	// VCS stamp on.
	var buildCmd string
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
			buildCmd = strings.Join(r.CmdLine, " ")
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "-buildvcs=auto", "./cmd/probe", "go version -m"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("builder's go build lacks %s: %q", want, buildCmd)
		}
	}

	// The runtime stage: distroless static (or scratch), numeric non-root
	// user, the CA bundle, the binary only, the port, a healthcheck that
	// needs nothing but probe itself.
	if final.BaseName != "gcr.io/distroless/static-debian12:nonroot" && final.BaseName != "scratch" {
		t.Errorf("final FROM %s, want distroless static or scratch", final.BaseName)
	}
	var user string
	var copied []string
	var exposed []string
	var health *instructions.HealthCheckCommand
	var entrypoint, cmd []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.CopyCommand:
			if c.From != build.Name {
				t.Errorf("final stage copies from %q, want only the builder %q", c.From, build.Name)
			}
			copied = append(copied, c.DestPath)
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			cmd = c.CmdLine
		case *instructions.RunCommand:
			t.Errorf("final stage runs %q: it has no shell", c.CmdLine)
		}
	}
	if user != "65532:65532" {
		t.Errorf("final USER %q, want the numeric non-root 65532:65532 (runAsNonRoot can check a number, not a name)", user)
	}
	for _, want := range []string{"/etc/ssl/certs/ca-certificates.crt", "/probe"} {
		if !slices.Contains(copied, want) {
			t.Errorf("final stage does not copy %s (copies %v)", want, copied)
		}
	}
	if !slices.Contains(exposed, "9470") {
		t.Errorf("EXPOSE %v, want 9470", exposed)
	}
	if !slices.Equal(entrypoint, []string{"/probe"}) || !slices.Equal(cmd, []string{"run", "--config", "/etc/edgeprobe/edgeprobe.yml"}) {
		t.Errorf("ENTRYPOINT %q CMD %q, want /probe run --config /etc/edgeprobe/edgeprobe.yml", entrypoint, cmd)
	}
	if health == nil || len(health.Health.Test) < 2 || health.Health.Test[0] != "CMD" || health.Health.Test[1] != "/probe" {
		t.Fatalf("HEALTHCHECK %+v, want an exec-form CMD running /probe", health)
	}
	if h := health.Health; h.Interval <= 0 || h.Timeout <= 0 || h.Retries <= 0 {
		t.Errorf("HEALTHCHECK interval %v timeout %v retries %d: set all three", h.Interval, h.Timeout, h.Retries)
	}
}

// TestDockerHealthcheck runs the HEALTHCHECK's command (with a free port
// for 9470) against a real agent: exit 0 while it serves, not 0 once it
// has gone.
func TestDockerHealthcheck(t *testing.T) {
	stages, _ := parseDockerfile(t)
	var test []string
	for _, c := range stages[len(stages)-1].Commands {
		if h, ok := c.(*instructions.HealthCheckCommand); ok {
			test = h.Health.Test[1:]
		}
	}
	if len(test) == 0 {
		t.Fatal("no HEALTHCHECK")
	}
	dir := t.TempDir()
	bin := buildProbe(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "edgeprobe.yml")
	// A target nothing listens on: the agent is healthy whatever its
	// probes find.
	if err := os.WriteFile(cfg, []byte(`location: docker-test
defaults: {interval: 30s, timeout: 2s}
targets:
  - {name: nowhere, url: "http://127.0.0.1:9/"}
exporters:
  prometheus: {listen: "`+addr+`"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	agent := exec.CommandContext(ctx, bin, "run", "--config", cfg)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = agent.Process.Signal(os.Interrupt)
			_ = agent.Wait()
		}
	}
	t.Cleanup(stop)

	health := func() (int, string) {
		args := slices.Clone(test[1:])
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "127.0.0.1:9470", addr)
		}
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	code, out := -1, ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, out = health(); code == 0 {
			break
		}
	}
	if code != 0 {
		t.Fatalf("healthcheck with the agent up: exit %d\n%s", code, out)
	}
	stop()
	if code, out = health(); code == 0 {
		t.Fatalf("healthcheck with the agent gone: exit 0\n%s", out)
	}
}

// buildProbe builds the probe command (the default flags, which share the
// build cache with the other tests; the healthcheck does not depend on the
// image's static ones).
func buildProbe(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "probe")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/edgeprobe/edgeprobe/cmd/probe")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}
	return bin
}
