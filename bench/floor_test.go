package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// wakeFloor is the machine's own timing noise during a tool's window: how
// late a bare OS thread wakes from an absolute clock_nanosleep every 10 ms,
// and the share of CPU time the hypervisor stole. No probe can start more
// punctually than this thread wakes, so it is the floor under every jitter
// figure of the same window.
type wakeFloor struct {
	n             int
	p50, p99, max time.Duration
	steal         float64 // fraction of all CPU time, from /proc/stat
}

func (f wakeFloor) String() string {
	if f.n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f / %.3f / %.1f (%.1f%%)", msf(f.p50), msf(f.p99), msf(f.max), 100*f.steal)
}

// measureWakeFloor wakes every 10 ms until the wall clock reaches until.
func measureWakeFloor(until time.Time) wakeFloor {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	steal0, total0 := cpuStat()
	const period = 10 * time.Millisecond
	var late []time.Duration
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	next := ts.Nano()
	for time.Now().Before(until) {
		next += int64(period)
		at := unix.NsecToTimespec(next)
		if err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &at, nil); err != nil && err != unix.EINTR {
			break
		}
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		late = append(late, time.Duration(ts.Nano()-next))
	}
	steal1, total1 := cpuStat()
	f := wakeFloor{n: len(late)}
	if total1 > total0 {
		f.steal = float64(steal1-steal0) / float64(total1-total0)
	}
	if len(late) > 0 {
		slices.Sort(late)
		f.p50, f.p99, f.max = percentile(late, 0.50), percentile(late, 0.99), late[len(late)-1]
	}
	return f
}

// cpuStat returns the steal and total ticks of /proc/stat's cpu line.
func cpuStat() (steal, total uint64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i == 7 {
			steal = v
		}
	}
	return steal, total
}
