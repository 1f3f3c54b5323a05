// Command pprofagent is `probe run` with net/http/pprof on a second
// address, for BenchmarkAgent's EDGEPROBE_BENCH_PPROF mode: the benchmark
// takes a CPU profile of the agent over its measuring window. It lives in
// testdata so the product binary never carries pprof.
//
//	pprofagent --config FILE --pprof 127.0.0.1:PORT
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on the default mux
	"os"
	"os/signal"
	"syscall"

	"github.com/edgeprobe/edgeprobe/agent"
)

func main() {
	config := flag.String("config", "", "the agent's YAML config file")
	pprofAddr := flag.String("pprof", "127.0.0.1:6060", "address for /debug/pprof")
	flag.Parse()
	go func() {
		if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "pprof:", err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := agent.Run(ctx, agent.Options{ConfigPath: *config, Logger: log, Signals: true}); err != nil {
		fmt.Fprintln(os.Stderr, "pprofagent:", err)
		os.Exit(1)
	}
}
