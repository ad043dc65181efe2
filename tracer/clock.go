package tracer

import (
	"time"

	"golang.org/x/sys/unix"
)

// clockStep is the least change of the wall clock against the kernel's
// monotonic clock that counts as a step (settimeofday, an NTP step). NTP's
// slewing moves both clocks alike and never changes their distance; what
// is left is the error of one reading, a few microseconds at worst.
const clockStep = time.Millisecond

// wallClock turns the kernel's CLOCK_MONOTONIC timestamps (bpf_ktime_get_ns)
// into wall time with one offset for the whole run, so that the times of
// one hold always differ by exactly its length. The offset changes only
// when the wall clock steps.
type wallClock struct {
	offset int64 // Unix nanoseconds minus CLOCK_MONOTONIC nanoseconds
}

func newWallClock() wallClock { return wallClock{offset: monoToWall()} }

// wall is the wall time of a monotonic timestamp.
func (c *wallClock) wall(mono uint64) time.Time { return time.Unix(0, int64(mono)+c.offset).UTC() }

// adjust takes a fresh reading of the offset. If the wall clock stepped, it
// follows the step and returns how far the clock moved.
func (c *wallClock) adjust(offset int64) (time.Duration, bool) {
	d := time.Duration(offset - c.offset)
	if d > -clockStep && d < clockStep {
		return 0, false
	}
	c.offset = offset
	return d, true
}

// monoToWall returns what to add to a CLOCK_MONOTONIC reading to get Unix
// nanoseconds: the monotonic clock read between two wall-clock reads, the
// closest pair of three tries, so a preempted reading does not count.
func monoToWall() int64 {
	var best, width int64
	for i := 0; i < 3; i++ {
		var ts unix.Timespec
		a := time.Now().UnixNano()
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		b := time.Now().UnixNano()
		if i == 0 || b-a < width {
			best, width = (a+b)/2-ts.Nano(), b-a
		}
	}
	return best
}
