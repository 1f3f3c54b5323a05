package testkit

import (
	"net"
	"testing"
)

// Moto is the AWS emulator (moto 5.2.1's moto_server, which the machine's
// Python has) on a loopback port, for CloudWatch, Route 53, CloudFront and
// CloudFormation tests. Stop and Start keep the port, so a test can stage
// an outage; the emulator's state does not survive a Stop.
type Moto struct {
	tb   testing.TB
	addr string
	dir  string
	proc *Proc
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
	m := &Moto{tb: tb, dir: tb.TempDir()}
	m.proc, m.addr = StartProcOnFreePort(tb, m.dir, "moto_server", func(addr string) (string, []string) {
		host, port, _ := net.SplitHostPort(addr)
		return "http://" + addr + "/moto-api/", []string{"-H", host, "-p", port}
	})
	return m
}

// URL is the endpoint to give AWS clients ("http://127.0.0.1:PORT").
func (m *Moto) URL() string { return "http://" + m.addr }

// Start restarts a stopped emulator on its port and waits until it answers.
func (m *Moto) Start() {
	m.tb.Helper()
	if m.proc != nil {
		return
	}
	host, port, _ := net.SplitHostPort(m.addr)
	m.proc = StartProc(m.tb, m.dir, m.URL()+"/moto-api/", "moto_server", "-H", host, "-p", port)
}

// Stop ends the emulator (by its PID) and waits for it to exit.
func (m *Moto) Stop() {
	if m.proc != nil {
		m.proc.Stop()
		m.proc = nil
	}
}
