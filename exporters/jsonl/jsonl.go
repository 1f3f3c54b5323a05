// Package jsonl appends every sample to a file as one JSON object per line:
// the documented JSONL object of probe.Sample (the same `probe check
// --format jsonl` prints), which `probe compare` reads back.
//
// Write never blocks the scheduler: it encodes the sample and hands the line
// to a bounded queue; a single writer goroutine owns the file and a buffered
// writer, pushing buffered lines to the file every FlushInterval. When the
// queue is full the sample is dropped, counted and (at most every few
// seconds) logged. Flush syncs the file; Reopen reopens it after log
// rotation (the caller wires SIGHUP to it).
package jsonl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeprobe/edgeprobe/exporters/selfmetrics"
	"github.com/edgeprobe/edgeprobe/probe"
)

// Name is the exporter label of this sink's self-metrics.
const Name = "jsonl"

// Defaults of Options.
const (
	DefaultQueueSize     = 4096
	DefaultFlushInterval = time.Second
	bufferSize           = 64 << 10
	dropLogEvery         = 10 * time.Second
)

// ErrClosed is returned by Flush and Reopen after Close.
var ErrClosed = errors.New("jsonl: sink closed")

// Options are what the config file does not say.
type Options struct {
	// Metrics receive the self-metrics; nil keeps them private.
	Metrics *selfmetrics.Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// QueueSize bounds the lines waiting for the writer (default 4096).
	QueueSize int
	// FlushInterval is how often buffered lines reach the file (default 1s),
	// so that a reader tailing it sees them.
	FlushInterval time.Duration
}

// Sink is the JSONL exporter. Its methods are safe for concurrent use.
type Sink struct {
	path       string
	lines      chan []byte
	ctl        chan ctlReq
	done       chan struct{} // closed by Close: the writer drains and exits
	exited     chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
	dropped    atomic.Int64 // drops not yet logged
	m          *selfmetrics.Exporter
	log        *slog.Logger
	flushEvery time.Duration

	// Owned by the writer goroutine.
	f         *os.File // nil after a failed reopen; retried every tick
	w         *bufio.Writer
	pending   int // lines in w not yet written to f
	failing   bool
	lastDrop  time.Time
	closeErr  error
	writeErrs int
}

type ctlOp int

const (
	opFlush ctlOp = iota
	opReopen
)

type ctlReq struct {
	op    ctlOp
	reply chan error // buffered: the writer never waits for the asker
}

// New opens (creating, appending to) the file at cfg.Path and starts the
// writer. Close stops it.
func New(cfg probe.JSONLConfig, o Options) (*Sink, error) {
	s, err := newSink(cfg, o)
	if err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

// newSink opens the file; the writer is not running yet.
func newSink(cfg probe.JSONLConfig, o Options) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("jsonl: no path")
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Metrics == nil {
		o.Metrics = selfmetrics.New(prometheus.NewRegistry())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f, err := open(cfg.Path)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		path: cfg.Path, lines: make(chan []byte, o.QueueSize), ctl: make(chan ctlReq),
		done: make(chan struct{}), exited: make(chan struct{}),
		m: o.Metrics.For(Name), log: o.Logger.With("exporter", Name, "path", cfg.Path),
		flushEvery: o.FlushInterval, f: f, w: bufio.NewWriterSize(f, bufferSize),
	}
	s.m.Queue(0)
	return s, nil
}

func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jsonl: open: %w", err)
	}
	return f, nil
}

// Write encodes the sample and queues the line; it never blocks. A full
// queue drops the sample (counted).
func (s *Sink) Write(_ context.Context, smp *probe.Sample) {
	if s.closed.Load() {
		s.drop(1)
		return
	}
	b, err := smp.MarshalJSON()
	if err != nil {
		s.drop(1)
		s.log.Error("encode sample", "err", err, "target", smp.Target)
		return
	}
	b = append(b, '\n')
	select {
	case s.lines <- b:
		s.m.Queue(len(s.lines))
	default:
		s.drop(1)
	}
}

func (s *Sink) drop(n int) {
	s.m.Dropped(n)
	s.dropped.Add(int64(n))
}

// Flush writes every sample given to Write before the call to the file and
// syncs it to disk, within ctx.
func (s *Sink) Flush(ctx context.Context) error {
	return s.ask(ctx, opFlush)
}

// Reopen closes and reopens the file by its path (after log rotation moved
// it away), writing what is buffered to the old file first.
func (s *Sink) Reopen(ctx context.Context) error {
	return s.ask(ctx, opReopen)
}

func (s *Sink) ask(ctx context.Context, op ctlOp) error {
	r := ctlReq{op: op, reply: make(chan error, 1)}
	select {
	case s.ctl <- r:
	case <-s.exited:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("jsonl: %w", ctx.Err())
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("jsonl: %w", ctx.Err())
	}
}

// Close writes what is queued, syncs and closes the file, and stops the
// writer. Later Writes are dropped (counted).
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
	})
	<-s.exited
	// A Write racing with Close may have queued after the writer's drain.
	if n := len(s.lines); n > 0 {
		for range n {
			<-s.lines
		}
		s.drop(n)
	}
	s.logDrops(time.Time{})
	return s.closeErr
}

func (s *Sink) loop() {
	defer close(s.exited)
	t := time.NewTicker(s.flushEvery)
	defer t.Stop()
	for {
		select {
		case line := <-s.lines:
			s.write(line)
		case now := <-t.C:
			if s.f == nil {
				s.reopen()
			}
			s.flushBuffer()
			s.m.Queue(len(s.lines))
			s.logDrops(now)
		case r := <-s.ctl:
			s.drain()
			switch r.op {
			case opFlush:
				r.reply <- s.sync()
			case opReopen:
				r.reply <- s.reopen()
			}
		case <-s.done:
			s.drain()
			err := s.sync()
			if s.f != nil {
				if cerr := s.f.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("jsonl: close: %w", cerr)
				}
				s.f = nil
			}
			s.closeErr = err
			return
		}
	}
}

// drain writes every line queued so far: all Writes that returned before a
// Flush was asked for are in the queue by then.
func (s *Sink) drain() {
	for {
		select {
		case line := <-s.lines:
			s.write(line)
		default:
			s.m.Queue(0)
			return
		}
	}
}

func (s *Sink) write(line []byte) {
	if s.f == nil {
		s.drop(1)
		return
	}
	if _, err := s.w.Write(line); err != nil {
		// bufio keeps the error: the lines it held are lost; start afresh.
		s.failed(err, s.pending+1)
		return
	}
	s.pending++
}

// flushBuffer moves buffered lines to the file.
func (s *Sink) flushBuffer() error {
	if s.f == nil || s.w.Buffered() == 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		s.failed(err, s.pending)
		return fmt.Errorf("jsonl: write: %w", err)
	}
	s.m.Sent(nil, false)
	s.pending = 0
	if s.failing {
		s.failing = false
		s.log.Info("writing again", "failed_writes", s.writeErrs)
		s.writeErrs = 0
	}
	return nil
}

func (s *Sink) failed(err error, lost int) {
	s.m.Sent(err, false)
	s.m.Dropped(lost)
	s.writeErrs++
	if !s.failing {
		s.failing = true
		s.log.Error("write failed; dropping buffered samples", "err", err, "samples", lost)
	}
	s.w.Reset(s.f)
	s.pending = 0
}

func (s *Sink) sync() error {
	if s.f == nil {
		return fmt.Errorf("jsonl: %s is not open", s.path)
	}
	if err := s.flushBuffer(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("jsonl: sync: %w", err)
	}
	return nil
}

func (s *Sink) reopen() error {
	var first error
	if s.f != nil {
		first = s.flushBuffer()
		if err := s.f.Close(); err != nil && first == nil {
			first = fmt.Errorf("jsonl: close: %w", err)
		}
		s.f = nil
	}
	f, err := open(s.path)
	if err != nil {
		if !s.failing {
			s.failing = true
			s.log.Error("reopen failed; dropping samples until it works", "err", err)
		}
		return err
	}
	s.f = f
	s.w.Reset(f)
	s.pending = 0
	s.failing = false
	s.log.Info("reopened")
	return first
}

// logDrops reports drops (queue full, file not open) at most every
// dropLogEvery (always when now is zero).
func (s *Sink) logDrops(now time.Time) {
	if !now.IsZero() && now.Sub(s.lastDrop) < dropLogEvery {
		return
	}
	if n := s.dropped.Swap(0); n > 0 {
		s.lastDrop = now
		s.log.Warn("dropped samples (queue full or file not open)", "samples", n, "queue_size", cap(s.lines))
	}
}
