package tracer

import (
	"time"

	"golang.org/x/sys/unix"
)

// monoToWall returns what to add to a CLOCK_MONOTONIC reading (the clock of
// bpf_ktime_get_ns) to get Unix nanoseconds. Taken between two wall-clock
// reads so the error is at most their distance.
func monoToWall() int64 {
	var ts unix.Timespec
	a := time.Now().UnixNano()
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	b := time.Now().UnixNano()
	return (a+b)/2 - ts.Nano()
}
