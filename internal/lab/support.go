package lab

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// QueryDelay is a handler whose delays come from the request: ?fb= is the
// server wait before the first byte, ?tx= the pause between the two halves
// of the body. It records what it really slept (a sleep overshoots its
// argument by the timer's slack), the ground truth of accuracy tests.
type QueryDelay struct {
	size int
	mu   sync.Mutex
	fb   []time.Duration
	tx   []time.Duration
}

// QueryDelayHandler answers with a body of size bytes (at least 2).
func QueryDelayHandler(size int) *QueryDelay {
	return &QueryDelay{size: max(size, 2)}
}

func (q *QueryDelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fb, _ := time.ParseDuration(r.URL.Query().Get("fb"))
	tx, _ := time.ParseDuration(r.URL.Query().Get("tx"))
	t0 := time.Now()
	if !sleepCtx(r.Context(), fb) {
		return
	}
	slept := time.Since(t0)
	body := make([]byte, q.size)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	_ = http.NewResponseController(w).Flush()
	t1 := time.Now()
	if !sleepCtx(r.Context(), tx) {
		return
	}
	q.mu.Lock()
	q.fb, q.tx = append(q.fb, slept), append(q.tx, time.Since(t1))
	q.mu.Unlock()
	_, _ = w.Write(body[len(body)/2:])
}

// Waits returns what the handler slept, request by request, in order.
func (q *QueryDelay) Waits() (firstByte, transfer []time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]time.Duration(nil), q.fb...), append([]time.Duration(nil), q.tx...)
}

// Reset forgets the recorded waits.
func (q *QueryDelay) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.fb, q.tx = nil, nil
}
