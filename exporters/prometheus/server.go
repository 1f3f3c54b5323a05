package promexp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/edgeprobe/edgeprobe/probe"
)

// DefaultListen is the agent's port when the config names none.
const DefaultListen = ":9470"

const (
	metricsPath     = "/metrics"
	shutdownTimeout = 5 * time.Second
)

// Server serves /metrics, /healthz, /ready and the status page at /.
//
// No endpoint takes a target (or any URL) from the request: the agent only
// probes what its config names. The blackbox exporter's /probe?target=
// lets anyone who reaches it make the exporter send requests anywhere (an
// open proxy into the network it runs in); this server does not repeat
// that.
type Server struct {
	cfg    probe.PrometheusConfig
	logger *slog.Logger
	ready  atomic.Bool
	mux    *http.ServeMux

	mu sync.Mutex
	ln net.Listener
}

// NewServer builds the server. gatherer is what /metrics exposes (the
// caller registers process and Go collectors on it if it wants them);
// status, if not nil, feeds the status page, and when gatherer is the
// registry status was registered on, /metrics writes status's families
// in the text formats itself (handler.go). TLS and basic auth come from
// cfg.WebConfig, an exporter-toolkit web config file.
func NewServer(cfg probe.PrometheusConfig, gatherer prometheus.Gatherer, status *Exporter, logger *slog.Logger) *Server {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, logger: logger, mux: http.NewServeMux()}
	s.mux.Handle("GET "+metricsPath, newMetricsHandler(gatherer, status, slog.NewLogLogger(logger.Handler(), slog.LevelError)))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		var rows []Status
		if status != nil {
			rows = status.Status()
		}
		// Rendered to a buffer first, so a template error is a clean 500.
		var buf bytes.Buffer
		if err := renderStatus(&buf, rows, metricsPath, time.Now()); err != nil {
			logger.Error("status page", "err", err)
			http.Error(w, "status page failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	})
	return s
}

// Handler is the server's routes without TLS or auth (for tests and for
// callers that serve them on a mux of their own).
func (s *Server) Handler() http.Handler { return s.mux }

// SetReady switches /ready between 503 (the default) and 200.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Listen validates the web config and binds the listen address, so that
// the caller learns a bad config or a taken port before it starts probing,
// and the bound address when it asked for port 0. Run calls it if the
// caller did not.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr(), nil
	}
	if err := web.Validate(s.cfg.WebConfig); err != nil {
		return nil, fmt.Errorf("prometheus web config %s: %w", s.cfg.WebConfig, err)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("prometheus listen: %w", err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Run serves until ctx ends, then shuts down gracefully (in-flight scrapes
// get a few seconds to finish). It returns nil after a clean shutdown.
//
// It hands its own listener to exporter-toolkit's web.Serve rather than
// calling web.ListenAndServe, which binds inside and so could report
// neither the port it got for ":0" nor a bind error before serving.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	listen, webConfig := []string{s.cfg.Listen}, s.cfg.WebConfig
	flags := &web.FlagConfig{WebListenAddresses: &listen, WebConfigFile: &webConfig}

	served := make(chan error, 1)
	go func() {
		err := web.Serve(ln, srv, flags, s.logger)
		ln.Close() // web.Serve leaves it open when it fails before serving
		served <- err
	}()

	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("prometheus server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("prometheus server shutdown: %w", err)
	}
	return nil
}
