package testkit

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Prioritize sets the nice value of every thread of the test process to
// nice (negative: more CPU, sooner) until the test ends; threads and child
// processes started later inherit it. On a shared machine a timing lab's
// servers, delay line and probes then wait less behind other work (builds,
// other tests), which is noise, not the delays under test. Needs root for
// a negative value; the test fails without.
func Prioritize(tb testing.TB, nice int) {
	tb.Helper()
	set := func(v int) error {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, v); err != nil && err != unix.ESRCH {
				return err
			}
		}
		return nil
	}
	// The kernel's getpriority returns 20 − nice.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		tb.Fatalf("lab: getpriority: %v", err)
	}
	old := 20 - raw
	if err := set(nice); err != nil {
		tb.Fatalf("lab: set nice %d: %v (needs root)", nice, err)
	}
	tb.Cleanup(func() { _ = set(old) })
}
