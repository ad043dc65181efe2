package tracer_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// Proxies that bind their source address before connecting (nginx's
// proxy_bind, haproxy's source) set IP_BIND_ADDRESS_NO_PORT: the port is
// picked by connect(), and bind() did not fail. Without the option bind()
// picks the port, and the release names the remote it was connected to.
func TestBindThenConnect(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	for _, c := range []struct {
		proto, option string
		via           tracer.Via
	}{
		{"tcp", "noport", tracer.ViaConnect},
		{"tcp", "plain", tracer.ViaBind},
		{"udp", "noport", tracer.ViaConnect},
		{"udp", "plain", tracer.ViaBind},
	} {
		t.Run(c.proto+"/"+c.option, func(t *testing.T) {
			dest := holdPort
			p := tracer.TCP
			if c.proto == "udp" {
				dest, p = udpSinkPort, tracer.UDP
			}
			r := py(t, ns, "bind-connect", c.proto, "127.0.0.1", fmt.Sprint(dest), c.option, "100")
			port := uint16(r.Int("port"))
			if got := r.Int("after_bind"); (c.option == "noport") != (got == 0) {
				t.Fatalf("after bind() the socket had port %d (option %s)", got, c.option)
			}
			w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: p, family: tracer.IPv4, via: c.via, ephemeral: true, comm: "python3"}
			a := s.find("alloc", in(ns, tracer.KindAlloc, port))
			s.check(a, ns, w)
			if a.LocalAddr.String() != "127.0.0.1" {
				t.Errorf("alloc laddr = %s, want the bound 127.0.0.1", a.LocalAddr)
			}
			wantRemote := c.via == tracer.ViaConnect
			if got := a.RemoteAddr.IsValid() && a.RemotePort == uint16(dest); got != wantRemote {
				t.Errorf("alloc remote = %s:%d; a remote is known at the alloc only when connect() took the port", a.RemoteAddr, a.RemotePort)
			}
			if c.via == tracer.ViaBind && (a.RemoteAddr.IsValid() || a.RemotePort != 0) {
				t.Errorf("alloc by bind() has remote %v:%d, want none", a.RemoteAddr, a.RemotePort)
			}
			rel := s.find("release", in(ns, tracer.KindRelease, port))
			s.check(rel, ns, w)
			if rel.RemoteAddr.String() != "127.0.0.1" || rel.RemotePort != uint16(dest) {
				t.Errorf("release remote = %s:%d, want 127.0.0.1:%d, where the socket was connected", rel.RemoteAddr, rel.RemotePort, dest)
			}
			checkHeld(t, rel, r)
			s.none("failure", nstest.Scaled(300*time.Millisecond), in(ns, tracer.KindFail, 0))
		})
	}
}

// glibc's getaddrinfo connects a UDP socket, disconnects it with
// connect(AF_UNSPEC), which gives the port back, and connects again: two
// ports, each with one alloc and one release, and no failure.
func TestUDPDisconnect(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	r := py(t, ns, "udp-reconnect", "127.0.0.1", fmt.Sprint(udpSinkPort), fmt.Sprint(udpSinkPort+1), "100")
	first, second := uint16(r.Int("first")), uint16(r.Int("second"))
	if r.Int("after_unspec") != 0 || first == 0 || second == 0 || first == second {
		t.Fatalf("the program saw ports %d, then %d after connect(AF_UNSPEC), then %d", first, r.Int("after_unspec"), second)
	}
	portable := s.tr.Tier() == tracer.HooksPortable
	w := want{pid: r.Int("pid"), tid: r.Int("tid"), proto: tracer.UDP, family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true, comm: "python3"}
	var seen []tracer.Event
	deadline := time.Now().Add(nstest.Scaled(2 * time.Second))
	for time.Now().Before(deadline) {
		select {
		case e := <-s.ch:
			if e.NetNS == ns.Inode {
				seen = append(seen, e)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	count := map[string]int{}
	for _, e := range seen {
		count[fmt.Sprintf("%s %d", e.Kind, e.Port)]++
		if e.Kind == tracer.KindFail {
			t.Errorf("false failure: %+v", e)
		}
	}
	for i, port := range []uint16{first, second} {
		if count[fmt.Sprintf("alloc %d", port)] != 1 || count[fmt.Sprintf("release %d", port)] != 1 {
			t.Errorf("port %d: %d allocs and %d releases, want one of each (events: %v)", port,
				count[fmt.Sprintf("alloc %d", port)], count[fmt.Sprintf("release %d", port)], count)
			continue
		}
		w.port = port
		for _, e := range seen {
			if e.Port != port {
				continue
			}
			s.check(e, ns, w)
			if e.RemotePort != uint16(udpSinkPort+i) {
				t.Errorf("%s of port %d: rport %d, want %d", e.Kind, port, e.RemotePort, udpSinkPort+i)
			}
			if e.Kind != tracer.KindRelease {
				continue
			}
			// The first port went back inside connect(AF_UNSPEC): live where
			// a hook sees that call, noticed at the next connect otherwise.
			late := i == 0 && portable
			if e.Late != late {
				t.Errorf("release of port %d: late = %v, want %v", port, e.Late, late)
			}
			if i == 0 {
				upper := time.Duration(r.Int("t_unspec_done") - r.Int("t_connect"))
				if !portable && (e.Held < 100*time.Millisecond || e.Held > upper) {
					t.Errorf("first port held %v; the program held it from before %v to connect(AF_UNSPEC) at most %v", e.Held, 100*time.Millisecond, upper)
				}
				// Noticed at the next connect(): after connect(AF_UNSPEC)
				// returned, from an alloc before the first connect() did.
				if lower := time.Duration(r.Int("t_unspec_done") - r.Int("t_connected")); portable && e.Held < lower {
					t.Errorf("first port held %v: noticed after connect(AF_UNSPEC) returned, it cannot be less than %v", e.Held, lower)
				}
			}
		}
	}
}

// comm is the process's name, as ps shows it; a thread that named itself
// is in thread. --comm matches either.
func TestThreadNames(t *testing.T) {
	ns := newNS(t)
	for _, filter := range [][]string{nil, {"python3"}, {"worker-x"}} {
		t.Run(fmt.Sprint("comm filter ", filter), func(t *testing.T) {
			s := openTracer(t, tracer.Options{Filter: tracer.Filter{Comms: filter}}).start()
			r := py(t, ns, "thread-connect", "worker-x", "127.0.0.1", fmt.Sprint(holdPort), "50")
			port := uint16(r.Int("port"))
			if r.Int("tid") == r.Int("pid") {
				t.Fatalf("the connect ran on the main thread")
			}
			w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.TCP, family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true, comm: "python3"}
			for _, k := range []tracer.Kind{tracer.KindAlloc, tracer.KindRelease} {
				e := s.find(k.String(), in(ns, k, port))
				s.check(e, ns, w)
				if e.Thread != "worker-x" {
					t.Errorf("%s thread = %q, want worker-x", k, e.Thread)
				}
			}
		})
	}
	t.Run("a thread with the process's name has no thread name", func(t *testing.T) {
		s := openTracer(t, tracer.Options{}).start()
		r := py(t, ns, "tcp-connect", "4", "127.0.0.1", fmt.Sprint(holdPort), "10", "close")
		a := s.find("alloc", in(ns, tracer.KindAlloc, uint16(r.Int("port"))))
		if a.Comm != "python3" || a.Thread != "" {
			t.Errorf("comm %q thread %q, want python3 and none", a.Comm, a.Thread)
		}
	})
}

// A failure says how many sockets held the range at the failing call
// itself, as the kernel programs counted them.
func TestHeldAtCall(t *testing.T) {
	ns := nstest.New(t, 40200, 40203)
	serve(t, ns)
	before := ns.Start(t, "python3", nstest.Script(), "hold-n", "127.0.0.1", fmt.Sprint(holdPort), "1")
	nstest.Next(t, before.Reports)
	s := openTracer(t, tracer.Options{})
	if _, err := s.tr.Existing(); err != nil {
		t.Fatal(err)
	}
	s.start()
	after := ns.Start(t, "python3", nstest.Script(), "hold-n", "127.0.0.1", fmt.Sprint(holdPort), "3")
	nstest.Next(t, after.Reports)
	r := py(t, ns, "tcp-connect", "4", "127.0.0.1", fmt.Sprint(holdPort), "0")
	if r.Str("errno") != "EADDRNOTAVAIL" {
		t.Fatalf("the fifth connect to a 4-port range: %v", r)
	}
	f := s.find("fail", in(ns, tracer.KindFail, 0))
	if f.HeldAtCall != 4 {
		t.Errorf("held at call = %d, want 4 (1 held before the start, 3 after)", f.HeldAtCall)
	}
	before.Stdin.Write([]byte("\n"))
	after.Stdin.Write([]byte("\n"))
}

// Close may come from another goroutine while Read runs (it wakes it): what
// the tracer is asked after that says it is closed, and nothing crashes.
func TestCloseWhileReading(t *testing.T) {
	s := openTracer(t, tracer.Options{})
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := s.tr.Read(); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(250 * time.Millisecond) // Read's periodic checks are running
	if err := s.tr.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := <-done; !errors.Is(err, tracer.ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
	if n := s.tr.Lost(); n != 0 {
		t.Errorf("Lost after Close = %d", n)
	}
	if _, err := s.tr.Sockets("/proc/self/ns/net"); !errors.Is(err, tracer.ErrClosed) {
		t.Errorf("Sockets after Close: %v, want ErrClosed", err)
	}
}
