package tracer

import (
	"testing"
	"time"
)

// One offset maps every kernel timestamp of a run, so a hold's two times
// differ by exactly its length; only a step of the wall clock moves it.
func TestWallClockUnit(t *testing.T) {
	c := wallClock{offset: 1_700_000_000_000_000_000}
	alloc, release := uint64(5_000_000_000), uint64(5_605_242_644)
	if d := c.wall(release).Sub(c.wall(alloc)); d != time.Duration(release-alloc) {
		t.Fatalf("release - alloc = %v, want %v", d, time.Duration(release-alloc))
	}
	for _, jitter := range []int64{0, 11_000, -75_000, 999_999, -999_999} {
		if _, stepped := c.adjust(c.offset + jitter); stepped {
			t.Errorf("a reading %v off moved the offset: only a step may", time.Duration(jitter))
		}
	}
	if c.offset != 1_700_000_000_000_000_000 {
		t.Fatalf("offset drifted to %d", c.offset)
	}
	step, stepped := c.adjust(c.offset + int64(2*time.Second))
	if !stepped || step != 2*time.Second {
		t.Fatalf("a 2s step: %v, %v", step, stepped)
	}
	if got := c.wall(alloc); !got.Equal(time.Unix(0, 1_700_000_002_000_000_000+5_000_000_000)) {
		t.Errorf("after the step, %d maps to %v", alloc, got)
	}
	step, stepped = c.adjust(c.offset - int64(time.Hour))
	if !stepped || step != -time.Hour {
		t.Errorf("a step back: %v, %v", step, stepped)
	}
}

// Two readings of the offset taken in a row agree to well within a step.
func TestMonoToWallUnit(t *testing.T) {
	a, b := monoToWall(), monoToWall()
	if d := time.Duration(b - a); d <= -clockStep || d >= clockStep {
		t.Errorf("two readings %v apart", d)
	}
}
