package probe

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fdAlarm is a timerfd read through the runtime's poller: the kernel makes
// the descriptor readable at the instant, microseconds late where a
// runtime timer of an idle process is up to a millisecond late.
type fdAlarm struct {
	f  *os.File
	fd int
	ch chan struct{}
}

// newAlarm returns a timerfd alarm, or none if the kernel refuses one.
func newAlarm() alarm {
	a, err := newFDAlarm()
	if err != nil {
		return noAlarm{}
	}
	return a
}

func newFDAlarm() (*fdAlarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	a := &fdAlarm{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd, ch: make(chan struct{}, 1)}
	go a.read()
	return a, nil
}

// read forwards every expiry to the channel until Stop closes the file.
func (a *fdAlarm) read() {
	var buf [8]byte // the number of expiries
	for {
		if _, err := a.f.Read(buf[:]); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// Not expected from a timerfd; do not spin on it.
			time.Sleep(time.Millisecond)
		}
		select {
		case a.ch <- struct{}{}:
		default:
		}
	}
}

func (a *fdAlarm) C() <-chan struct{} { return a.ch }

func (a *fdAlarm) Set(at time.Time) {
	ns := at.UnixNano()
	if ns <= 0 {
		ns = 1 // zero would disarm it
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(ns)}
	// An instant in the past expires at once, as it should.
	_ = unix.TimerfdSettime(a.fd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func (a *fdAlarm) Stop() { _ = a.f.Close() }
