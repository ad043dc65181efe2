package tracer_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// countKey is one series of the kernel's counts: allocations (errno 0) or
// failures by protocol, way and errno.
type countKey struct {
	proto tracer.Proto
	via   tracer.Via
	errno syscall.Errno
}

func (k countKey) String() string {
	if k.errno == 0 {
		return fmt.Sprintf("%s/%s", k.proto, k.via)
	}
	return fmt.Sprintf("%s/%s/%s", k.proto, k.via, k.errno)
}

// Counting alone (porttrace serve without a recording) reads less on each
// hook than the trace does: its counts must still be exactly what the
// trace's events say, for every way of taking a port, with a tracer of
// each kind attached at once to the same calls. Each way counting keeps
// the TCP connects and listens it follows: in table slots (where the
// kernel has BPF atomics), in slots so few that most go on to the hash,
// and in the hash alone (Linux 5.10 and 5.11). Only the portable tier
// counts that way: the precise and kprobe tiers run once.
func TestCountsMatchTrace(t *testing.T) {
	stores := []struct {
		name  string
		slots int
	}{{"slots", 1 << 16}, {"two slots", 2}, {"hash", 0}}
	if h := nstest.Hooks(); h == "precise" || h == "kprobe" {
		stores = stores[:1]
	}
	for _, c := range stores {
		t.Run(c.name, func(t *testing.T) {
			defer tracer.CountInto(c.slots)()
			countsMatchTrace(t)
		})
	}
}

func countsMatchTrace(t *testing.T) {
	ns := newNS(t)
	// The ports bound by number: no connect may pick them first.
	if out, err := ns.Command("sysctl", "-q", "-w", "net.ipv4.ip_local_reserved_ports=40500,40510-40511").CombinedOutput(); err != nil {
		t.Fatalf("reserve ports: %v: %s", err, out)
	}
	fulls := map[string]*nstest.Netns{}
	kinds := []string{"tcp-connect", "tcp-reconnect", "tcp-bind", "tcp-listen", "udp-bind", "udp-sendto", "udp-connect"}
	for _, k := range kinds {
		fulls[k] = nstest.New(t, 40123, 40123)
		serve(t, fulls[k])
	}
	counted := openTracer(t, tracer.Options{Count: true, FailuresOnly: true})
	traced := openTracer(t, tracer.Options{}).start()

	hold := "20"
	for _, args := range [][]string{
		{"tcp-connect", "4", "127.0.0.1", fmt.Sprint(holdPort), hold, "close"},
		{"tcp-connect", "4", "127.0.0.1", fmt.Sprint(drainPort), hold, "shutdown"},
		{"tcp-connect", "6", "::1", fmt.Sprint(closerPort), hold, "peer"},
		{"tcp-connect", "mapped", "127.0.0.1", fmt.Sprint(holdPort), hold, "close"},
		{"tcp-connect", "4", "127.0.0.1", fmt.Sprint(holdPort), hold, "close", "noport"},
		{"tcp-connect", "4", "127.0.0.1", fmt.Sprint(unusedPort), hold}, // refused: the port goes back in SYN_SENT
		// eight held at once: in two slots, six or more go on to the hash
		{"connect-together", "127.0.0.1", fmt.Sprint(holdPort), "8", hold},
		{"bind-connect", "tcp", "127.0.0.1", fmt.Sprint(holdPort), "plain", hold},
		// a port bound explicitly outlives ->CLOSE: to the close() after
		// the connection, and after a refused connect
		{"bind-connect", "tcp", "127.0.0.1", fmt.Sprint(holdPort), "40510", hold},
		{"bind-connect", "tcp", "127.0.0.1", fmt.Sprint(unusedPort), "40511", hold},
		{"bind", "tcp", "4", "127.0.0.1", "0", hold},
		{"bind", "tcp", "4", "127.0.0.1", "40500", hold},
		{"listen", hold},
		{"fastopen", "127.0.0.1", fmt.Sprint(holdPort), hold},
		{"udp", "sendto", "4", "127.0.0.1", fmt.Sprint(udpSinkPort), hold},
		{"udp", "connect", "6", "::1", fmt.Sprint(udpSinkPort), hold},
		{"bind-connect", "udp", "127.0.0.1", fmt.Sprint(udpSinkPort), "noport", hold},
		{"udp-reconnect", "127.0.0.1", fmt.Sprint(udpSinkPort), fmt.Sprint(udpSinkPort + 1), hold},
	} {
		ns.Python(t, nstest.Script(), args...)
	}
	for _, k := range kinds {
		fulls[k].Python(t, nstest.Script(), "exhaust", k, "127.0.0.1", fmt.Sprint(drainPort))
	}

	// What the trace saw, per namespace: allocations and failures by way,
	// and releases (holds) by protocol.
	events := map[uint32]map[countKey]uint64{}
	holds := map[uint32]map[tracer.Proto]uint64{}
	nss := map[uint32]bool{ns.Inode: true}
	for _, f := range fulls {
		nss[f.Inode] = true
	}
	read := func(d time.Duration) {
		deadline := time.After(d)
		for {
			select {
			case e := <-traced.ch:
				if !nss[e.NetNS] {
					continue
				}
				if events[e.NetNS] == nil {
					events[e.NetNS], holds[e.NetNS] = map[countKey]uint64{}, map[tracer.Proto]uint64{}
				}
				switch e.Kind {
				case tracer.KindAlloc:
					events[e.NetNS][countKey{e.Proto, e.Via, 0}]++
				case tracer.KindFail:
					events[e.NetNS][countKey{e.Proto, e.Via, e.Errno}]++
				case tracer.KindRelease:
					holds[e.NetNS][e.Proto]++
				}
			case <-deadline:
				return
			}
		}
	}
	read(nstest.Scaled(2 * time.Second))

	if got := events[ns.Inode][countKey{tracer.TCP, tracer.ViaConnect, 0}]; got != 15 {
		t.Errorf("the trace saw %d TCP connects take a port, want 15 (6 scenarios, 8 at once, Fast Open)", got)
	}
	if got := events[fulls["tcp-connect"].Inode][countKey{tracer.TCP, tracer.ViaConnect, syscall.EADDRNOTAVAIL}]; got != 1 {
		t.Errorf("the trace saw %d failed TCP connects, want 1", got)
	}
	c := counters(t, counted.tr)
	kernel := map[uint32]map[countKey]uint64{}
	for _, e := range c.Events {
		if nss[e.NetNS] {
			if kernel[e.NetNS] == nil {
				kernel[e.NetNS] = map[countKey]uint64{}
			}
			kernel[e.NetNS][countKey{e.Proto, e.Via, e.Errno}] = e.Count
		}
	}
	for n := range nss {
		if fmt.Sprint(kernel[n]) != fmt.Sprint(events[n]) {
			t.Errorf("netns %d: counted %v, the trace saw %v", n, kernel[n], events[n])
		}
		for _, p := range []tracer.Proto{tracer.TCP, tracer.UDP} {
			if got := c.Held[tracer.NSProto{NetNS: n, Proto: p}]; got != 0 {
				t.Errorf("netns %d: %d %s sockets counted holding ports after every one closed, want 0", n, got, p)
			}
		}
	}
	for _, h := range c.Holds {
		if !nss[h.NetNS] {
			continue
		}
		var n uint64
		for _, b := range h.Buckets {
			n += b
		}
		if n != holds[h.NetNS][h.Proto] {
			t.Errorf("netns %d %s: %d holds in the histogram, the trace saw %d releases", h.NetNS, h.Proto, n, holds[h.NetNS][h.Proto])
		}
		delete(holds[h.NetNS], h.Proto)
	}
	for n, m := range holds {
		for p, v := range m {
			if v > 0 {
				t.Errorf("netns %d %s: the trace saw %d releases, the histogram has none", n, p, v)
			}
		}
	}
}
