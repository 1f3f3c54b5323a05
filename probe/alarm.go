package probe

import "time"

// An alarm wakes the scheduler at an instant of the wall clock. Its channel
// receives after the instant set last; a receive may also come early (an
// older setting that had already expired), so the scheduler checks the
// time itself after every wake-up.
type alarm interface {
	C() <-chan struct{}
	Set(at time.Time)
	Stop()
}

// timerAlarm is the portable alarm: a runtime timer. Where the runtime
// sleeps in the poller with millisecond timeouts (Linux epoll), it wakes up
// to a millisecond late when the process is idle.
type timerAlarm struct {
	t  *time.Timer
	ch chan struct{}
}

func newTimerAlarm() *timerAlarm {
	a := &timerAlarm{ch: make(chan struct{}, 1)}
	a.t = time.AfterFunc(time.Hour, a.ring)
	return a
}

func (a *timerAlarm) ring() {
	select {
	case a.ch <- struct{}{}:
	default:
	}
}

func (a *timerAlarm) C() <-chan struct{} { return a.ch }
func (a *timerAlarm) Set(at time.Time)   { a.t.Reset(time.Until(at)) }
func (a *timerAlarm) Stop()              { a.t.Stop() }
