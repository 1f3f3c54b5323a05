package promexp

import (
	"context"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// chunkSize is how much of the page is handed on at a time, and
// pageBuffers how many chunks there are: one being filled, the others
// queued or being written.
const (
	chunkSize   = 64 << 10
	pageBuffers = 4
)

// pageWriter takes the page as it is made and writes it out a chunk at a
// time from a goroutine of its own, so that making the page and writing
// (compressing) it run side by side. It is expfmt's writer too (it has
// the methods expfmt looks for, so expfmt adds no buffer of its own).
// After an error, or once ctx is done, it writes nothing more.
type pageWriter struct {
	buf  []byte
	err  error       // the first error, as far as the page's maker knows
	full chan []byte // chunks to write
	free chan []byte // chunks written, to fill again
	sent chan struct{}
	done bool // finish was called

	// The sender's; read after a receive from free or once sent is closed.
	mu      sync.Mutex
	sendErr error
	wrote   bool // something was handed to w: the response has started
}

func newPageWriter(ctx context.Context, w io.Writer) *pageWriter {
	p := &pageWriter{
		buf:  make([]byte, 0, chunkSize+chunkSize/2),
		full: make(chan []byte, pageBuffers),
		free: make(chan []byte, pageBuffers),
		sent: make(chan struct{}),
	}
	for range pageBuffers - 1 {
		p.free <- make([]byte, 0, chunkSize+chunkSize/2)
	}
	go p.send(ctx, w)
	return p
}

func (p *pageWriter) send(ctx context.Context, w io.Writer) {
	defer close(p.sent)
	var err error
	for b := range p.full {
		if err == nil {
			if err = ctx.Err(); err == nil {
				p.mu.Lock()
				p.wrote = true
				p.mu.Unlock()
				if _, werr := w.Write(b); werr != nil {
					err = fmt.Errorf("write: %w", werr)
				}
			}
			if err != nil {
				p.mu.Lock()
				p.sendErr = err
				p.mu.Unlock()
			}
		}
		p.free <- b[:0]
	}
}

func (p *pageWriter) maybeFlush() {
	if len(p.buf) >= chunkSize {
		p.flush()
	}
}

// flush hands the chunk to the sender and takes a free one.
func (p *pageWriter) flush() {
	if p.err != nil || len(p.buf) == 0 {
		p.buf = p.buf[:0]
		return
	}
	p.full <- p.buf
	p.buf = <-p.free
	p.mu.Lock()
	p.err = p.sendErr
	p.mu.Unlock()
}

// finish writes the rest, waits until the sender is done and says whether
// the response has started, and the first error. It may be called again.
func (p *pageWriter) finish() (wrote bool, err error) {
	if !p.done {
		p.done = true
		p.flush()
		close(p.full)
		<-p.sent
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = p.sendErr
	}
	return p.wrote, p.err
}

func (p *pageWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	p.maybeFlush()
	return len(b), p.err
}

func (p *pageWriter) WriteString(s string) (int, error) {
	p.buf = append(p.buf, s...)
	p.maybeFlush()
	return len(s), p.err
}

func (p *pageWriter) WriteByte(c byte) error {
	p.buf = append(p.buf, c)
	p.maybeFlush()
	return p.err
}

func (p *pageWriter) WriteRune(r rune) (int, error) {
	n := len(p.buf)
	p.buf = utf8.AppendRune(p.buf, r)
	n = len(p.buf) - n
	p.maybeFlush()
	return n, p.err
}
