//go:build linux

package probe

import (
	"testing"
	"time"
)

func alarms() map[string]func() alarm {
	return map[string]func() alarm{"precise": newAlarm}
}

func TestAlarmRingsAtTheInstantSetLast(t *testing.T) {
	for name, mk := range alarms() {
		t.Run(name, func(t *testing.T) {
			a := mk()
			defer a.Stop()
			start := time.Now()
			a.Set(start.Add(time.Hour))
			at := start.Add(30 * time.Millisecond)
			a.Set(at) // replaces the hour
			select {
			case <-a.C():
			case <-time.After(5 * time.Second):
				t.Fatal("the alarm did not ring")
			}
			if now := time.Now(); now.Before(at) {
				t.Fatalf("rang %v before the instant", at.Sub(now))
			}
		})
	}
}

func TestAlarmInThePastRingsAtOnce(t *testing.T) {
	for name, mk := range alarms() {
		t.Run(name, func(t *testing.T) {
			a := mk()
			defer a.Stop()
			a.Set(time.Now().Add(-time.Second))
			select {
			case <-a.C():
			case <-time.After(5 * time.Second):
				t.Fatal("an instant in the past did not ring")
			}
		})
	}
}

func TestAlarmMovedLaterDoesNotRingEarly(t *testing.T) {
	for name, mk := range alarms() {
		t.Run(name, func(t *testing.T) {
			a := mk()
			defer a.Stop()
			a.Set(time.Now().Add(20 * time.Millisecond))
			a.Set(time.Now().Add(time.Hour))
			select {
			case <-a.C():
				t.Fatal("rang at the instant it was moved from")
			case <-time.After(150 * time.Millisecond):
			}
		})
	}
}
