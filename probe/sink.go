package probe

import "context"

// Sink receives every sample the agent produces. Write is called from the
// scheduler's goroutines and must not block for long: a sink that does I/O
// buffers (within a bound) and says what it dropped.
type Sink interface {
	Write(ctx context.Context, s *Sample)
}

// Flusher is a Sink that holds data back; Flush sends it, within ctx's
// deadline, on shutdown and reload.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Sinks fans a sample out to several sinks, in order.
type Sinks []Sink

// Write gives s to every sink.
func (ss Sinks) Write(ctx context.Context, s *Sample) {
	for _, sink := range ss {
		sink.Write(ctx, s)
	}
}

// Flush flushes every sink that holds data, returning the first error.
func (ss Sinks) Flush(ctx context.Context) error {
	var first error
	for _, sink := range ss {
		if f, ok := sink.(Flusher); ok {
			if err := f.Flush(ctx); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
