package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/agent"
	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// syncBuffer is a bytes.Buffer safe for the agent's many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secretsSeen records the credentials that reached the server, to show
// they were really in use while the logs stayed clean of them.
type secretsSeen struct {
	mu           sync.Mutex
	auth, cookie string
}

func (s *secretsSeen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.auth, s.cookie = r.Header.Get("Authorization"), r.Header.Get("Cookie")
	s.mu.Unlock()
	http.Error(w, "unavailable", http.StatusServiceUnavailable) // a failing target
}

func (s *secretsSeen) get() (auth, cookie string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth, s.cookie
}

// Secret values of TestLogsHaveNoSecrets: none may appear in a log line.
const (
	secretToken    = "tok-7f3a9c1e5b"
	secretCookie   = "ck-5e8d2b7a41"
	secretURLPass  = "urlpw-9c1e66d0"
	secretPushPass = "pgpw-3b7f0a12"
	secretRWPass   = "rwpw-81d4c0ee"
)

// redactConfig probes a target with a bearer token from the environment, a
// cookie and URL credentials, another that refuses connections, and
// pushes with credentials to a Pushgateway and a remote-write receiver
// that refuse connections too, so every error path logs.
func redactConfig(api, refused, interval, extra string) string {
	q := strconv.Quote
	return fmt.Sprintf(`location: lab
defaults:
  headers:
    Cookie: "session=%s"
targets:
  - name: api
    url: %s
    interval: %s
    timeout: 200ms
    headers:
      Authorization: "Bearer ${SECRET_TOKEN}"
  - name: down
    url: %s
    interval: 200ms
    timeout: 200ms
%sexporters:
  prometheus: {}
  pushgateway: {url: %s, interval: 200ms}
  remote_write: {url: %s, interval: 200ms}
`, secretCookie,
		q("http://probe:"+secretURLPass+"@"+api+"/"), interval,
		q("http://probe:"+secretURLPass+"@"+refused+"/"), extra,
		q("http://pusher:"+secretPushPass+"@"+refused),
		q("http://writer:"+secretRWPass+"@"+refused+"/api/v1/write"))
}

// TestLogsHaveNoSecrets runs the agent with debug JSON logs through failing
// probes, failing pushes, a good reload and a refused one, and finds none
// of the secrets in the logs (nor in /metrics or the status page).
func TestLogsHaveNoSecrets(t *testing.T) {
	t.Setenv("SECRET_TOKEN", secretToken)
	seen := &secretsSeen{}
	api := httpServer(t, seen)
	refused, err := lab.NewRefusingAddr()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	cfg := configPath(t)
	apiAddr := api.Addr().String()
	writeFile(t, cfg, redactConfig(apiAddr, refused, "200ms", ""))
	r := startAgent(t, agent.Options{ConfigPath: cfg, Listen: "127.0.0.1:0", RunAtStart: true, Logger: logger})

	// The token and the cookie reach the server: they are in use, not
	// dropped. (The URL's user:password does not: httptrace does not turn
	// URL credentials into basic auth.)
	eventually(t, 5*time.Second, "the api target did not send its credentials", func() bool {
		auth, cookie := seen.get()
		return auth == "Bearer "+secretToken && cookie == "session="+secretCookie
	})
	// Pushes fail once and again (the debug line).
	eventually(t, 5*time.Second, "no repeated push failure logged", func() bool {
		l := logs.String()
		return strings.Contains(l, "push failed again") && strings.Contains(l, "remote write retry failed")
	})

	// A good reload, then a refused one (an error with the file's message).
	writeFile(t, cfg, redactConfig(apiAddr, refused, "300ms", "    keep_alive: true\n"))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	writeFile(t, cfg, redactConfig(apiAddr, refused, "fast", ""))
	if err := r.Reload(context.Background()); err == nil {
		t.Fatal("a bad interval was accepted")
	}
	metrics := get(t, "http://"+r.addr+"/metrics")
	status := get(t, "http://"+r.addr+"/")
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	out := logs.String()
	for _, want := range []string{"config reloaded", "config reload refused", "push failed", "remote write failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %q: the test did not exercise that path", want)
		}
	}
	for _, where := range []struct{ name, text string }{{"logs", out}, {"/metrics", metrics}, {"status page", status}} {
		for _, secret := range []string{secretToken, secretCookie, secretURLPass, secretPushPass, secretRWPass} {
			if i := strings.Index(where.text, secret); i >= 0 {
				t.Errorf("%s contain the secret %q: …%s…", where.name, secret, where.text[max(0, i-200):min(len(where.text), i+50)])
			}
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", out)
	}
}

// TestReloadErrorHidesURLCredentials: a refused reload logs the config's
// message, which must not quote a URL's password.
func TestReloadErrorHidesURLCredentials(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httpServer(t, okHandler())
	cfg := configPath(t)
	good := "targets:\n  - name: a\n    url: " + strconv.Quote("http://u:"+secretURLPass+"@"+srv.Addr().String()+"/") + "\n"
	writeFile(t, cfg, good)
	r := startAgent(t, agent.Options{ConfigPath: cfg, Logger: logger})
	writeFile(t, cfg, strings.Replace(good, srv.Addr().String(), "127.0.0.1:99999", 1))
	if err := r.Reload(context.Background()); err == nil {
		t.Fatal("port 99999 was accepted")
	} else if strings.Contains(err.Error(), secretURLPass) {
		t.Errorf("the reload error quotes the URL's password: %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), secretURLPass) {
		t.Errorf("the logs quote the URL's password:\n%s", logs.String())
	}
}

// get fetches a URL and returns its body.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
