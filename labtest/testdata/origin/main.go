// Command origin is the multi-location lab's origin app (labtest): HTTPS on
// -listen with the site's certificate, HTTP/1.1, key exchange X25519 (as
// nginx at the edge picks), every answer waiting ?fb= before the first byte
// and ?tx= mid-body (lab.QueryDelayHandler, which records what it really
// slept). It is a process of its own, built without the race detector, so
// that a `go test -race` run does not slow its TLS handshakes. -admin (plain
// HTTP) serves /ready, /waits (JSON, nanoseconds) and /reset.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
)

func main() {
	listen := flag.String("listen", "", "HTTPS address")
	admin := flag.String("admin", "127.0.0.1:8082", "plain-HTTP address of /ready, /waits, /reset")
	certFile := flag.String("cert", "", "certificate PEM")
	keyFile := flag.String("key", "", "key PEM")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	page := lab.QueryDelayHandler(4096)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	app := &http.Server{
		Addr:              *listen,
		Handler:           page,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, CurvePreferences: []tls.CurveID{tls.X25519}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ready\n") })
	mux.HandleFunc("GET /waits", func(w http.ResponseWriter, _ *http.Request) {
		fb, tx := page.Waits()
		_ = json.NewEncoder(w).Encode(map[string][]time.Duration{"fb": fb, "tx": tx})
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) { page.Reset() })
	adm := &http.Server{Addr: *admin, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- app.ListenAndServeTLS("", "") }()
	go func() { errc <- adm.ListenAndServe() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	_ = app.Close()
	_ = adm.Close()
}
