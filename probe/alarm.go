package probe

import "time"

// An alarm wakes the scheduler at an instant of the wall clock, more
// punctually than a runtime timer when the process is idle: the runtime
// sleeps in the poller with millisecond timeouts (epoll), so an idle agent
// woke up to a millisecond late. Under load the runtime's timers are the
// prompter ones (they are checked at every goroutine switch), so the
// scheduler waits for whichever rings first. C receives after the instant
// set last; it may also receive early (an older setting that had expired
// already), so the scheduler checks the time after every wake-up.
type alarm interface {
	C() <-chan struct{}
	Set(at time.Time)
	Stop()
}

// noAlarm never rings: where there is no precise alarm, the runtime timer
// alone wakes the scheduler.
type noAlarm struct{}

func (noAlarm) C() <-chan struct{} { return nil }
func (noAlarm) Set(time.Time)      {}
func (noAlarm) Stop()              {}
