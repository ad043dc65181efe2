package tracer_test

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// session is a tracer attached for one test, its events on a channel.
type session struct {
	t  *testing.T
	tr *tracer.Tracer
	ch chan tracer.Event
}

func openTracer(t *testing.T, opts tracer.Options) *session {
	t.Helper()
	nstest.RequireRoot(t)
	if opts.Hooks == "" {
		opts.Hooks = nstest.Hooks()
	}
	tr, err := tracer.Open(opts)
	if err != nil {
		t.Fatalf("open tracer: %v", err)
	}
	if opts.Hooks != tracer.HooksAuto && tr.Tier() != opts.Hooks {
		t.Fatalf("asked for the %s hooks, got %s", opts.Hooks, tr.Tier())
	}
	s := &session{t: t, tr: tr, ch: make(chan tracer.Event, 1<<16)}
	t.Cleanup(func() { tr.Close() })
	return s
}

// start begins reading events; call it once. Every hold seen whole is
// checked as it goes by: its release's time less its held time is, to the
// nanosecond, its alloc's time.
func (s *session) start() *session {
	go func() {
		defer close(s.ch)
		var h holds
		for {
			e, err := s.tr.Read()
			if errors.Is(err, io.EOF) || errors.Is(err, tracer.ErrClosed) {
				return
			}
			if err != nil {
				s.t.Errorf("read: %v", err)
				return
			}
			if msg := h.check(&e); msg != "" {
				s.t.Error(msg)
			}
			s.ch <- e
		}
	}()
	return s
}

type holdKey struct {
	netns, pid uint32
	proto      tracer.Proto
	port       uint16
}

// holds remembers the allocs not yet released.
type holds map[holdKey][]time.Time

func (h *holds) check(e *tracer.Event) string {
	if *h == nil {
		*h = holds{}
	}
	k := holdKey{e.NetNS, e.PID, e.Proto, e.Port}
	switch e.Kind {
	case tracer.KindAlloc:
		(*h)[k] = append((*h)[k], e.Time)
	case tracer.KindRelease:
		open := (*h)[k]
		if len(open) == 0 {
			return "" // allocated before the tracer started
		}
		start := e.Time.Add(-e.Held)
		for i, t := range open {
			if t.Equal(start) {
				(*h)[k] = append(open[:i], open[i+1:]...)
				return ""
			}
		}
		return fmt.Sprintf("release of %s port %d by %d at %s held %v: no alloc at %s (allocs at %v)",
			e.Proto, e.Port, e.PID, e.Time.Format(time.RFC3339Nano), e.Held, start.Format(time.RFC3339Nano), open)
	}
	return ""
}

// findTimeout bounds the wait for an expected event: generous, because
// under software emulation (the second kernel in CI) python3 alone takes
// seconds to start.
const findTimeout = 15 * time.Second

// find waits for the first event that matches, skipping others.
func (s *session) find(what string, match func(*tracer.Event) bool) tracer.Event {
	s.t.Helper()
	deadline := time.After(findTimeout)
	var lost uint64
	for {
		select {
		case e, ok := <-s.ch:
			if !ok {
				s.t.Fatalf("tracer stopped before %s", what)
			}
			if match(&e) {
				return e
			}
			if e.Kind == tracer.KindLost {
				lost += e.Count
			}
		case <-deadline:
			// Say whether the ring buffer dropped events meanwhile: then the
			// one awaited may be among them.
			s.t.Fatalf("no %s within %v (%d events lost meanwhile)", what, findTimeout, lost)
		}
	}
}

// none checks that nothing matching arrives within d.
func (s *session) none(what string, d time.Duration, match func(*tracer.Event) bool) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-s.ch:
			if !ok {
				return
			}
			if match(&e) {
				s.t.Fatalf("unexpected %s: %+v", what, e)
			}
		case <-deadline:
			return
		}
	}
}

// in matches events of kind k in namespace ns on port (0: any port).
func in(ns *nstest.Netns, k tracer.Kind, port uint16) func(*tracer.Event) bool {
	return func(e *tracer.Event) bool {
		return e.NetNS == ns.Inode && e.Kind == k && (port == 0 || e.Port == port)
	}
}

type want struct {
	pid, tid  int64
	port      uint16
	proto     tracer.Proto
	family    tracer.Family
	via       tracer.Via
	ephemeral bool
	comm      string
}

func (s *session) check(e tracer.Event, ns *nstest.Netns, w want) {
	s.t.Helper()
	if int64(e.PID) != w.pid {
		s.t.Errorf("%s pid = %d, want %d (%+v)", e.Kind, e.PID, w.pid, e)
	}
	if w.tid != 0 && int64(e.TID) != w.tid {
		s.t.Errorf("%s tid = %d, want %d", e.Kind, e.TID, w.tid)
	}
	if e.Port != w.port {
		s.t.Errorf("%s port = %d, want %d", e.Kind, e.Port, w.port)
	}
	if e.Proto != w.proto {
		s.t.Errorf("%s proto = %s, want %s", e.Kind, e.Proto, w.proto)
	}
	if e.Family != w.family {
		s.t.Errorf("%s family = %s, want %s", e.Kind, e.Family, w.family)
	}
	if e.Via != w.via {
		s.t.Errorf("%s via = %s, want %s", e.Kind, e.Via, w.via)
	}
	if e.Ephemeral != w.ephemeral {
		s.t.Errorf("%s ephemeral = %v, want %v", e.Kind, e.Ephemeral, w.ephemeral)
	}
	if w.comm != "" && e.Comm != w.comm {
		s.t.Errorf("%s comm = %q, want %q", e.Kind, e.Comm, w.comm)
	}
	if e.NetNS != ns.Inode {
		s.t.Errorf("%s netns = %d, want %d", e.Kind, e.NetNS, ns.Inode)
	}
}

// checkHeld holds the release's held time to what the program measured
// between the end of its allocating call and the start of its close: the
// kernel's span encloses it, and exceeds it only by the two calls' own cost.
func checkHeld(t *testing.T, e tracer.Event, r nstest.Report) {
	t.Helper()
	prog := time.Duration(r.Int("t_release") - r.Int("t_alloc"))
	slack := nstest.Scaled(50 * time.Millisecond)
	if e.Held < prog || e.Held > prog+slack {
		t.Errorf("held = %v, the program held the port %v (allowed: up to %v more)", e.Held, prog, slack)
	}
}

// collect gathers ns's events until none has come for quiet (scaled).
func (s *session) collect(ns *nstest.Netns, quiet time.Duration) []tracer.Event {
	var out []tracer.Event
	quiet = nstest.Scaled(quiet)
	for {
		select {
		case e, ok := <-s.ch:
			if !ok {
				return out
			}
			if e.NetNS == ns.Inode {
				out = append(out, e)
			}
		case <-time.After(quiet):
			return out
		}
	}
}

// holdsOf checks that in events every port proto took from comm has
// exactly one alloc and one release and no failure came, and returns those
// ports.
func holdsOf(t *testing.T, events []tracer.Event, comm string, proto tracer.Proto) []uint16 {
	t.Helper()
	n := map[uint16][2]int{}
	var ports []uint16
	for _, e := range events {
		if e.Comm != comm {
			continue
		}
		if e.Kind == tracer.KindFail {
			t.Errorf("failure by %s: %+v", comm, e)
		}
		if e.Proto != proto || (e.Kind != tracer.KindAlloc && e.Kind != tracer.KindRelease) {
			continue
		}
		c := n[e.Port]
		if e.Kind == tracer.KindAlloc {
			if c == [2]int{} {
				ports = append(ports, e.Port)
			}
			c[0]++
		} else {
			c[1]++
		}
		n[e.Port] = c
	}
	for p, c := range n {
		if c != [2]int{1, 1} {
			t.Errorf("%s %s port %d: %d allocs, %d releases; want one of each", comm, proto, p, c[0], c[1])
		}
	}
	return ports
}
