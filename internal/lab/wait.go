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
