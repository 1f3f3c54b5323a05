// Command probe is edgeprobe's one binary: one-off checks (probe check), and
// the other subcommands as they arrive. This package parses flags and wires
// the feature packages together; it holds no measurement logic.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/edgeprobe/edgeprobe/report"
)

// Exit codes (DESIGN.md).
const (
	exitOK     = 0
	exitFailed = 1 // a probe failed
	exitUsage  = 2 // usage or config error
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr *os.File) int {
	// The first SIGINT cancels the context so a check can still print what
	// it measured; after that the default handling applies again, so a
	// second Ctrl-C kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	a := &app{
		stdout: stdout, stderr: stderr,
		stdoutTTY: isTerminal(stdout), stderrTTY: isTerminal(stderr),
		stdoutWidth: terminalWidth(stdout),
		getenv:      os.Getenv,
		log:         slog.New(slog.NewTextHandler(stderr, nil)),
	}
	root := newRootCommand(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage // cobra's own errors (unknown command, arguments) are usage errors
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "probe: %v\n", err)
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// app is what every subcommand shares: the output streams, whether they
// are terminals, the environment and the logger.
type app struct {
	stdout, stderr       io.Writer
	stdoutTTY, stderrTTY bool
	stdoutWidth          int // columns of the stdout terminal, 0 when not one
	getenv               func(string) string
	log                  *slog.Logger
}

// tableOptions fit report tables to stdout: colour on a terminal unless
// NO_COLOR is set, the terminal's width up to 140 columns.
func (a *app) tableOptions() report.TableOptions {
	width := a.stdoutWidth
	if width <= 0 {
		width = report.DefaultWidth
	}
	return report.TableOptions{Color: a.stdoutTTY && a.getenv("NO_COLOR") == "", Width: min(width, 140)}
}

// exitError carries the exit code an error should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage or config error: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failedErrorf is a failed probe (or run): exit code 1.
func failedErrorf(format string, args ...any) error {
	return &exitError{code: exitFailed, err: fmt.Errorf(format, args...)}
}

func isTerminal(f *os.File) bool {
	return f != nil && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func terminalWidth(f *os.File) int {
	if !isTerminal(f) {
		return 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return w
}

func newRootCommand(a *app) *cobra.Command {
	var logFormat, logLevel string
	root := &cobra.Command{
		Use:   "probe",
		Short: "Measure where the time of an HTTP request goes, origin vs CDN",
		Long: `probe measures HTTP requests phase by phase (dns, connect, tls, ttfb,
transfer) on fresh connections, for a site reached straight at its origin
and through its CDN, and says which way is faster, in which phase.`,
		SilenceUsage:  true, // a failed probe is not a usage problem
		SilenceErrors: true, // run prints the error once, with the exit code
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(a.stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			a.log = logger
			return nil
		},
	}
	root.PersistentFlags().StringVar(&logFormat, "log-format", "text", "log format on stderr: text or json")
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(newCheckCommand(a), newRunCommand(a), newDemoCommand(a), newCompareCommand(a), newVersionCommand(a), newHealthchecksCommand(a), newAuditCommand(a), newDashboardsCommand(a))
	return root
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", format)
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.stdout, versionString())
			if err != nil {
				return fmt.Errorf("version: %w", err)
			}
			return nil
		},
	}
}

// versionString reads the module version and VCS stamp from the build info.
func versionString() string {
	version, revision, modified := "(devel)", "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v := info.Main.Version; v != "" {
			version = v
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	out := "probe " + version
	if revision != "" {
		out += " " + revision[:min(len(revision), 12)]
		if modified {
			out += "+dirty"
		}
	}
	return out + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
