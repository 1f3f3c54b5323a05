package lab

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sleepCtx waits d or until ctx ends; it reports whether the full d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// DelayHandler waits firstByte, then sends headers (with Content-Length) and
// the first half of body (rounded down) at once, waits between and sends the
// rest. So server wait is firstByte, and for a body of at least one byte the
// transfer phase (first response byte to last body byte) is between.
func DelayHandler(firstByte, between time.Duration, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sleepCtx(r.Context(), firstByte) {
			return
		}
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		half := len(body) / 2
		if _, err := w.Write(body[:half]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if len(body) == 0 || !sleepCtx(r.Context(), between) {
			return
		}
		_, _ = w.Write(body[half:])
	})
}

// RevalidatingHandler behaves like a dynamic app behind a TTL-0 cache: full
// answers cost think time, conditional ones are cheap 304s.
type RevalidatingHandler struct {
	lastModified time.Time
	etag         string
	think        time.Duration
	body         []byte
	full         atomic.Int64
	notModified  atomic.Int64
}

// Revalidating returns a handler answering 200 with Last-Modified, ETag and
// Cache-Control: max-age=0 after think, and 304 at once when the request's
// validators match. etag may be given with or without quotes.
func Revalidating(lastModified time.Time, etag string, think time.Duration, body []byte) *RevalidatingHandler {
	if etag != "" && !strings.HasSuffix(etag, `"`) {
		etag = `"` + etag + `"`
	}
	return &RevalidatingHandler{
		// HTTP dates have whole seconds; compare at that precision.
		lastModified: lastModified.UTC().Truncate(time.Second),
		etag:         etag,
		think:        think,
		body:         body,
	}
}

// Full returns how many 200s were answered.
func (h *RevalidatingHandler) Full() int { return int(h.full.Load()) }

// NotModified returns how many 304s were answered.
func (h *RevalidatingHandler) NotModified() int { return int(h.notModified.Load()) }

func (h *RevalidatingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Last-Modified", h.lastModified.Format(http.TimeFormat))
	if h.etag != "" {
		hdr.Set("ETag", h.etag)
	}
	hdr.Set("Cache-Control", "max-age=0")
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && h.fresh(r) {
		h.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if !sleepCtx(r.Context(), h.think) {
		return
	}
	h.full.Add(1)
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(h.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(h.body)
}

// fresh follows RFC 9110 §13.2.2: If-None-Match, when present, decides alone;
// If-Modified-Since counts only without it.
func (h *RevalidatingHandler) fresh(r *http.Request) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, tag := range strings.Split(inm, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || (h.etag != "" && strings.TrimPrefix(tag, "W/") == strings.TrimPrefix(h.etag, "W/")) {
				return true
			}
		}
		return false
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	return err == nil && !ims.Before(h.lastModified)
}

// RedirectChain answers /r/0 → /r/1 → … → /r/<n-1> → /final with 302s (n
// hops starting at /r/0), keeping the query string, and serves final at
// /final. Other paths are 404.
func RedirectChain(n int, final http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			final.ServeHTTP(w, r)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/r/")
		i, err := strconv.Atoi(rest)
		if !ok || err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		next := "/final"
		if i+1 < n {
			next = "/r/" + strconv.Itoa(i+1)
		}
		if r.URL.RawQuery != "" {
			next += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, next, http.StatusFound)
	})
}

// RedirectLoop answers /loop/a → /loop/b → /loop/a … with 302s forever.
func RedirectLoop() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop/a":
			http.Redirect(w, r, "/loop/b", http.StatusFound)
		case "/loop/b":
			http.Redirect(w, r, "/loop/a", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
}

// Drip sends headers (Content-Length n) at once, then one byte every
// interval, flushing each, until n bytes are out or the client goes away: a
// slow-body target whose transfer phase is about n×interval.
func Drip(interval time.Duration, n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusOK)
		if rc.Flush() != nil {
			return
		}
		// Deadlines from the start rather than sleeps per byte, so scheduling
		// latency does not pile up over many bytes.
		start := time.Now()
		for i := range n {
			if !sleepCtx(r.Context(), time.Until(start.Add(time.Duration(i+1)*interval))) {
				return
			}
			if _, err := w.Write([]byte{'.'}); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	})
}

// HugeBody streams size zero bytes with Content-Length set, from one small
// buffer, and returns as soon as a write fails or the client goes away.
func HugeBody(size int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 32<<10)
		ctx := r.Context()
		for left := size; left > 0 && ctx.Err() == nil; {
			chunk := buf
			if int64(len(chunk)) > left {
				chunk = chunk[:left]
			}
			n, err := w.Write(chunk)
			if err != nil {
				return
			}
			left -= int64(n)
		}
	})
}

// resetBodySize is the Content-Length ResetMidBody promises.
const resetBodySize = 1 << 20

// ResetMidBody promises a 1 MiB body, sends prefix bytes of it, then resets
// the TCP connection (SO_LINGER 0, so the kernel sends RST rather than FIN).
// Over HTTP/2, which cannot be hijacked, it aborts the stream instead.
func ResetMidBody(prefix int) http.Handler {
	prefix = max(0, min(prefix, resetBodySize-1))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(resetBodySize))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(make([]byte, prefix))
		_ = rc.Flush()
		conn, _, err := rc.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		resetConn(conn)
	})
}

// resetConn closes c with SO_LINGER 0 so the peer sees a RST.
func resetConn(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
		_ = tcp.Close()
		return
	}
	_ = c.Close()
}
