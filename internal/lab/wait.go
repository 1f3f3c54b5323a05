package lab

import (
	"sync"
	"time"
)

// closeWait bounds how long a Close waits for goroutines it cannot interrupt
// (a caller's handler ignoring its context, say); past it Close returns and
// goleak reports what is left, which beats a hung test.
const closeWait = 5 * time.Second

func waitBounded(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// sleepLog records how long injected delays really lasted: a timer fires
// late by the scheduler's slack, and accuracy tests hold measurements
// against what was slept, not what was asked for. It keeps the last 10,000.
type sleepLog struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *sleepLog) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 10000 {
		l.d = append(l.d[:0], l.d[5000:]...)
	}
	l.d = append(l.d, d)
}

func (l *sleepLog) all() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.d...)
}
