package tracer

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
)

// NSProto is one protocol of one network namespace.
type NSProto struct {
	NetNS uint32
	Proto Proto
}

// EventCount is how many allocations (Errno 0) or failures (Errno set) the
// programs counted for one namespace, protocol and way of asking.
type EventCount struct {
	NSProto
	Via   Via
	Errno syscall.Errno
	Count uint64
}

// HoldHist is how long the ports released in one namespace were held:
// Buckets[i] counts holds of at most HoldBounds[i], the last bucket longer
// ones. Holds that began before the tracer are left out.
type HoldHist struct {
	NSProto
	Buckets [HoldBuckets]uint64
	Sum     time.Duration
}

// HoldBuckets is the number of hold time buckets the programs keep.
const HoldBuckets = len(porttraceHoldHist{}.Count)

// HoldBounds are the upper bounds of the hold time buckets but the last:
// 4^(i+5) ns, from 1.02 µs to 1100 s.
var HoldBounds = func() []time.Duration {
	b := make([]time.Duration, HoldBuckets-1)
	for i := range b {
		b[i] = time.Duration(1) << (2*i + 10)
	}
	return b
}()

// Counters is what the programs have counted (with Options.Count) since the
// tracer opened, read from their maps at once: a few system calls per
// namespace.
type Counters struct {
	// Held is the sockets holding a port of their namespace's range, the
	// ports held at start included once Existing has run. Empty under a
	// port filter, which turns counting off.
	Held   map[NSProto]int64
	Events []EventCount
	Holds  []HoldHist
}

// Counters reads the kernel's counts.
func (t *Tracer) Counters() (*Counters, error) {
	c := &Counters{Held: map[NSProto]int64{}}
	var nk porttraceNsKey
	var held int64
	it := t.coll.Maps["ns_held"].Iterate()
	for it.Next(&nk, &held) {
		c.Held[NSProto{nk.Netns, Proto(nk.Proto)}] = held
	}
	var ck porttraceCtrKey
	var n uint64
	it2 := t.coll.Maps["ctr_events"].Iterate()
	for it2.Next(&ck, &n) {
		c.Events = append(c.Events, EventCount{NSProto{ck.Netns, Proto(ck.Proto)}, Via(ck.Via), syscall.Errno(ck.Err), n})
	}
	var h porttraceHoldHist
	it3 := t.coll.Maps["ctr_holds"].Iterate()
	for it3.Next(&nk, &h) {
		c.Holds = append(c.Holds, HoldHist{NSProto{nk.Netns, Proto(nk.Proto)}, h.Count, time.Duration(h.SumNs)})
	}
	if err := errors.Join(it.Err(), it2.Err(), it3.Err()); err != nil {
		return nil, fmt.Errorf("read the kernel's counters: %w", err)
	}
	return c, nil
}

// Forget drops the counts of namespaces that are gone, so the maps do not
// fill with the dead. A count of held sockets is left: it is the kernel's
// own bookkeeping, and drops to zero with the namespace's sockets.
func (t *Tracer) Forget(gone map[uint32]bool) {
	deleteWhere[porttraceCtrKey, uint64](t.coll.Maps["ctr_events"], func(k *porttraceCtrKey) bool { return gone[k.Netns] })
	deleteWhere[porttraceNsKey, porttraceHoldHist](t.coll.Maps["ctr_holds"], func(k *porttraceNsKey) bool { return gone[k.Netns] })
}

// deleteWhere deletes the entries of m whose key matches, once the
// iteration is over (deleting under it could make it start again).
func deleteWhere[K, V any](m *ebpf.Map, match func(*K) bool) {
	var k K
	var v V
	var keys []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if match(&k) {
			keys = append(keys, k)
		}
	}
	for i := range keys {
		m.Delete(&keys[i])
	}
}
