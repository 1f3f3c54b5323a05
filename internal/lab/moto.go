package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Moto is the AWS emulator (moto 5.2.1's moto_server, which the machine's
// Python has) on a loopback port, for CloudWatch, Route 53, CloudFront and
// CloudFormation tests. Stop and Start keep the port, so a test can stage
// an outage; the emulator's state does not survive a Stop.
type Moto struct {
	tb      testing.TB
	addr    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// StartMoto runs moto_server on a free 127.0.0.1 port until the test ends.
// It also points the standard AWS variables of this process at dummy
// credentials, so nothing a test does can reach real AWS with real keys.
func StartMoto(tb testing.TB) *Moto {
	tb.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		tb.Setenv(k, v)
	}
	m := &Moto{tb: tb, addr: FreeLoopbackAddr(tb), dir: tb.TempDir()}
	m.Start()
	tb.Cleanup(m.Stop)
	return m
}

// URL is the endpoint to give AWS clients ("http://127.0.0.1:PORT").
func (m *Moto) URL() string { return "http://" + m.addr }

// Start (re)starts the emulator on its port and waits until it answers.
func (m *Moto) Start() {
	m.tb.Helper()
	if m.cmd != nil {
		return
	}
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		m.tb.Fatalf("moto_server not found (moto 5.2.1 with its server extras comes with the machine's Python): %v", err)
	}
	host, port, _ := net.SplitHostPort(m.addr)
	m.logPath = filepath.Join(m.dir, fmt.Sprintf("moto-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(m.logPath)
	if err != nil {
		m.tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-H", host, "-p", port)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		m.tb.Fatalf("start moto_server: %v", err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); close(exited) }(m.exited)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitMoto(ctx, m.URL()+"/moto-api/", m.exited); err != nil {
		b, _ := os.ReadFile(m.logPath)
		m.tb.Fatalf("moto_server (pid %d) not ready: %v\n%s", cmd.Process.Pid, err, b)
	}
}

// Stop ends the emulator (by its PID) and waits for it to exit.
func (m *Moto) Stop() {
	if m.cmd == nil {
		return
	}
	_ = syscall.Kill(m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
	m.cmd = nil
}

func waitMoto(ctx context.Context, u string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
