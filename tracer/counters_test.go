package tracer_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// With Count and FailuresOnly, allocations, releases and hold times are counted in
// the kernel and never queued; failures are both counted and queued.
func TestCountersFailuresOnly(t *testing.T) {
	ns := newNS(t)
	full := nstest.New(t, 40123, 40123)
	serve(t, full)
	s := openTracer(t, tracer.Options{Count: true, FailuresOnly: true}).start()

	p := ns.Start(t, "python3", nstest.Script(), "hold-n", "127.0.0.1", fmt.Sprint(holdPort), "3")
	nstest.Next(t, p.Reports)
	c := counters(t, s.tr)
	if got := c.Held[tracer.NSProto{NetNS: ns.Inode, Proto: tracer.TCP}]; got != 3 {
		t.Errorf("sockets counted holding ports = %d, want 3", got)
	}
	time.Sleep(50 * time.Millisecond)
	p.Stdin.Close()
	p.Cmd.Wait()

	rs := full.Python(t, nstest.Script(), "exhaust", "tcp-connect", "127.0.0.1", fmt.Sprint(drainPort))
	if len(rs) != 2 || rs[1].Str("errno") != "EADDRNOTAVAIL" {
		t.Fatalf("sockets.py exhaust: %v", rs)
	}
	f := s.find("fail", in(full, tracer.KindFail, 0))
	if f.Errno != syscall.EADDRNOTAVAIL {
		t.Errorf("queued failure errno = %v, want EADDRNOTAVAIL", f.Errno)
	}
	s.none("alloc or release", 300*time.Millisecond, func(e *tracer.Event) bool {
		return e.Kind == tracer.KindAlloc || e.Kind == tracer.KindRelease
	})

	c = counters(t, s.tr)
	count := func(netns uint32, via tracer.Via, errno syscall.Errno) uint64 {
		for _, e := range c.Events {
			if e.NetNS == netns && e.Proto == tracer.TCP && e.Via == via && e.Errno == errno {
				return e.Count
			}
		}
		return 0
	}
	if got := count(ns.Inode, tracer.ViaConnect, 0); got != 3 {
		t.Errorf("connects counted = %d, want 3", got)
	}
	if got := count(full.Inode, tracer.ViaConnect, 0); got != 1 {
		t.Errorf("connects counted in the full namespace = %d, want 1", got)
	}
	if got := count(full.Inode, tracer.ViaConnect, syscall.EADDRNOTAVAIL); got != 1 {
		t.Errorf("failed connects counted = %d, want 1", got)
	}
	var holds uint64
	var sum time.Duration
	for _, h := range c.Holds {
		if h.NetNS == ns.Inode && h.Proto == tracer.TCP {
			for i, n := range h.Buckets {
				holds += n
				// Held at least 50 ms: no hold is in a bucket that ends before.
				if n > 0 && i < len(tracer.HoldBounds) && tracer.HoldBounds[i] < 50*time.Millisecond {
					t.Errorf("%d holds in the bucket up to %v; every one lasted 50 ms or more", n, tracer.HoldBounds[i])
				}
			}
			sum = h.Sum
		}
	}
	if holds != 3 || sum < 150*time.Millisecond {
		t.Errorf("hold histogram: %d holds, %v in all; want 3, at least 150ms", holds, sum)
	}
	if got := c.Held[tracer.NSProto{NetNS: ns.Inode, Proto: tracer.TCP}]; got != 0 {
		t.Errorf("sockets counted holding ports after the close = %d, want 0", got)
	}

	s.tr.Forget(map[uint32]bool{ns.Inode: true})
	for _, e := range counters(t, s.tr).Events {
		if e.NetNS == ns.Inode {
			t.Errorf("a forgotten namespace still has a count: %+v", e)
		}
	}
}

func counters(t *testing.T, tr *tracer.Tracer) *tracer.Counters {
	t.Helper()
	c, err := tr.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Without Count the programs keep no counts (the trace does not read
// them), and allocations and releases are still sent.
func TestNoCountersUnlessAsked(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{FailuresOnly: true}).start()
	r := py(t, ns, "tcp-connect", "4", "127.0.0.1", fmt.Sprint(holdPort), "10", "close")
	port := uint16(r.Int("port"))
	s.find("alloc", in(ns, tracer.KindAlloc, port))
	s.find("release", in(ns, tracer.KindRelease, port))
	c := counters(t, s.tr)
	if len(c.Events) != 0 || len(c.Holds) != 0 {
		t.Errorf("counted without Count: %d event counts, %d histograms", len(c.Events), len(c.Holds))
	}
}
