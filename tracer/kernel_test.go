package tracer_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// The tests' namespaces use this ephemeral range; servers listen outside it.
const (
	rangeLo     = 40000
	rangeHi     = 40999
	holdPort    = 8080 // reads, never closes first: the client's close ends in FIN_WAIT2
	closerPort  = 8081 // closes as soon as it accepts
	drainPort   = 8083 // reads until EOF, then closes
	unusedPort  = 8082 // nobody listens: connect is refused
	udpSinkPort = 9999 // nobody listens: datagrams vanish
)

// serve runs TCP servers on 127.0.0.1 and ::1 inside ns.
func serve(t *testing.T, ns *nstest.Netns) {
	t.Helper()
	var lns []net.Listener
	done := make(chan struct{})
	ns.Do(t, func(int) {
		for _, addr := range []string{"127.0.0.1", "[::1]"} {
			for _, p := range []int{holdPort, closerPort, drainPort} {
				ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", addr, p))
				if err != nil {
					t.Errorf("listen %s:%d: %v", addr, p, err)
					return
				}
				lns = append(lns, ln)
			}
		}
	})
	for _, ln := range lns {
		port := ln.Addr().(*net.TCPAddr).Port
		go func(ln net.Listener) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					switch port {
					case holdPort:
						io.Copy(io.Discard, c)
						<-done
					case drainPort:
						io.Copy(io.Discard, c)
					}
					c.Close()
				}()
			}
		}(ln)
	}
	t.Cleanup(func() {
		close(done)
		for _, ln := range lns {
			ln.Close()
		}
	})
}

func newNS(t *testing.T) *nstest.Netns {
	ns := nstest.New(t, rangeLo, rangeHi)
	serve(t, ns)
	return ns
}

func py(t *testing.T, ns *nstest.Netns, args ...string) nstest.Report {
	t.Helper()
	rs := ns.Python(t, nstest.Script(), args...)
	if len(rs) != 1 {
		t.Fatalf("sockets.py %v printed %d reports, want 1", args, len(rs))
	}
	return rs[0]
}

func TestTCPConnect(t *testing.T) {
	cases := []struct {
		name, fam, host string
		family          tracer.Family
		extra           string
	}{
		{"ipv4", "4", "127.0.0.1", tracer.IPv4, "bind-port"},
		{"ipv6", "6", "::1", tracer.IPv6, "bind-port"},
		{"v4-mapped", "mapped", "127.0.0.1", tracer.IPv6, "bind-port"},
		{"IP_BIND_ADDRESS_NO_PORT", "4", "127.0.0.1", tracer.IPv4, "noport"},
	}
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := py(t, ns, "tcp-connect", c.fam, c.host, fmt.Sprint(holdPort), "200", "close", c.extra)
			port := uint16(r.Int("port"))
			if port < rangeLo || port > rangeHi {
				t.Fatalf("the kernel gave port %d, outside the namespace's range", port)
			}
			w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.TCP, family: c.family,
				via: tracer.ViaConnect, ephemeral: true, comm: "python3"}
			a := s.find("alloc", in(ns, tracer.KindAlloc, port))
			s.check(a, ns, w)
			if got := a.RemotePort; got != holdPort {
				t.Errorf("rport = %d, want %d", got, holdPort)
			}
			wantIP := c.host
			if c.fam == "mapped" {
				wantIP = "::ffff:" + c.host
			}
			if a.RemoteAddr.String() != wantIP || a.LocalAddr.String() != wantIP {
				t.Errorf("addresses %s → %s, want %s → %s", a.LocalAddr, a.RemoteAddr, wantIP, wantIP)
			}
			if a.Range != (tracer.PortRange{Lo: rangeLo, Hi: rangeHi}) {
				t.Errorf("range = %v, want %d-%d", a.Range, rangeLo, rangeHi)
			}
			rel := s.find("release", in(ns, tracer.KindRelease, port))
			s.check(rel, ns, w)
			checkHeld(t, rel, r)
			if rel.State != tracer.TCPState(5) { // FIN_WAIT2: the server had not closed yet
				t.Errorf("state = %s, want FIN_WAIT2", rel.State)
			}
		})
	}
}

func TestTCPReleaseState(t *testing.T) {
	cases := []struct {
		name, style string
		port        int
		state       string
	}{
		{"holder closes first", "close", holdPort, "FIN_WAIT2"},
		{"shutdown then peer closes", "shutdown", drainPort, "TIME_WAIT"},
		{"peer closes first", "peer", closerPort, "CLOSE"},
	}
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := py(t, ns, "tcp-connect", "4", "127.0.0.1", fmt.Sprint(c.port), "100", c.style)
			port := uint16(r.Int("port"))
			rel := s.find("release", in(ns, tracer.KindRelease, port))
			s.check(rel, ns, want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.TCP,
				family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true})
			if rel.State.String() != c.state {
				t.Errorf("state = %s, want %s", rel.State, c.state)
			}
		})
	}

	t.Run("refused in softirq is still the caller's", func(t *testing.T) {
		r := py(t, ns, "tcp-connect", "4", "127.0.0.1", fmt.Sprint(unusedPort), "0")
		if r.Str("errno") != "ECONNREFUSED" {
			t.Fatalf("connect to a closed port: %v, want ECONNREFUSED", r)
		}
		a := s.find("alloc", func(e *tracer.Event) bool {
			return e.NetNS == ns.Inode && e.Kind == tracer.KindAlloc && e.RemotePort == unusedPort
		})
		rel := s.find("release", in(ns, tracer.KindRelease, a.Port))
		w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: a.Port, proto: tracer.TCP, family: tracer.IPv4,
			via: tracer.ViaConnect, ephemeral: true, comm: "python3"}
		s.check(a, ns, w)
		s.check(rel, ns, w)
		if rel.State.String() != "CLOSE" {
			t.Errorf("state = %s, want CLOSE", rel.State)
		}
	})
}

func TestGoDial(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	var tid int
	var port uint16
	var held time.Duration
	ns.Do(t, func(id int) {
		tid = id
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", holdPort))
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		t0 := time.Now()
		port = uint16(c.LocalAddr().(*net.TCPAddr).Port)
		time.Sleep(100 * time.Millisecond)
		held = time.Since(t0)
		c.Close()
	})
	w := want{pid: int64(os.Getpid()), tid: int64(tid), port: port, proto: tracer.TCP, family: tracer.IPv4,
		via: tracer.ViaConnect, ephemeral: true}
	s.check(s.find("alloc", in(ns, tracer.KindAlloc, port)), ns, w)
	rel := s.find("release", in(ns, tracer.KindRelease, port))
	s.check(rel, ns, w)
	if rel.Held < held || rel.Held > held+nstest.Scaled(50*time.Millisecond) {
		t.Errorf("held = %v, Go held the connection %v", rel.Held, held)
	}
}

func TestUDP(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	for _, mode := range []string{"sendto", "sendmsg", "connect"} {
		for _, fam := range []string{"4", "6", "mapped"} {
			t.Run(mode+"/"+fam, func(t *testing.T) {
				host := "127.0.0.1"
				family := tracer.IPv4
				switch fam {
				case "6":
					host, family = "::1", tracer.IPv6
				case "mapped":
					family = tracer.IPv6
				}
				r := py(t, ns, "udp", mode, fam, host, fmt.Sprint(udpSinkPort), "150")
				port := uint16(r.Int("port"))
				via := tracer.ViaSendmsg
				if mode == "connect" {
					via = tracer.ViaConnect
				}
				w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.UDP, family: family,
					via: via, ephemeral: true, comm: "python3"}
				a := s.find("alloc", in(ns, tracer.KindAlloc, port))
				s.check(a, ns, w)
				if want := mode == "connect" && s.tr.Tier() == tracer.HooksPortable; a.Deferred != want {
					t.Errorf("deferred = %v, want %v: only the portable hooks see a UDP connect() after the fact", a.Deferred, want)
				}
				if a.RemotePort != udpSinkPort {
					t.Errorf("rport = %d, want %d", a.RemotePort, udpSinkPort)
				}
				wantIP := host
				if fam == "mapped" {
					wantIP = "::ffff:" + host
				}
				if a.RemoteAddr.String() != wantIP {
					t.Errorf("raddr = %s, want %s", a.RemoteAddr, wantIP)
				}
				rel := s.find("release", in(ns, tracer.KindRelease, port))
				s.check(rel, ns, w)
				checkHeld(t, rel, r)
			})
		}
	}
}

func TestBind(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	for _, proto := range []string{"tcp", "udp"} {
		for _, fam := range []string{"4", "6"} {
			host, family := "127.0.0.1", tracer.IPv4
			if fam == "6" {
				host, family = "::1", tracer.IPv6
			}
			p := tracer.TCP
			if proto == "udp" {
				p = tracer.UDP
			}
			t.Run(proto+fam+"/port 0", func(t *testing.T) {
				r := py(t, ns, "bind", proto, fam, host, "0", "120")
				port := uint16(r.Int("port"))
				w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: p, family: family, via: tracer.ViaBind, ephemeral: true}
				s.check(s.find("alloc", in(ns, tracer.KindAlloc, port)), ns, w)
				rel := s.find("release", in(ns, tracer.KindRelease, port))
				s.check(rel, ns, w)
				checkHeld(t, rel, r)
			})
			t.Run(proto+fam+"/explicit port in the range", func(t *testing.T) {
				r := py(t, ns, "bind", proto, fam, host, "40500", "120")
				w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: 40500, proto: p, family: family, via: tracer.ViaBind, ephemeral: false}
				s.check(s.find("alloc", in(ns, tracer.KindAlloc, 40500)), ns, w)
				rel := s.find("release", in(ns, tracer.KindRelease, 40500))
				s.check(rel, ns, w)
				checkHeld(t, rel, r)
			})
		}
	}
	t.Run("explicit port outside the range is not an ephemeral allocation", func(t *testing.T) {
		py(t, ns, "bind", "udp", "4", "127.0.0.1", "7777", "10")
		s.none("event for port 7777", 300*time.Millisecond, in(ns, 0, 7777))
	})
}

func TestPortFilter(t *testing.T) {
	ns := newNS(t)
	var ports tracer.PortSet
	ports.Add(7777)
	s := openTracer(t, tracer.Options{Filter: tracer.Filter{Ports: ports}}).start()

	other := py(t, ns, "udp", "sendto", "4", "127.0.0.1", fmt.Sprint(udpSinkPort), "10")
	r := py(t, ns, "bind", "udp", "4", "127.0.0.1", "7777", "50")
	w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: 7777, proto: tracer.UDP, family: tracer.IPv4, via: tracer.ViaBind}
	a := s.find("alloc of the filtered port", func(e *tracer.Event) bool { return e.NetNS == ns.Inode && e.Kind == tracer.KindAlloc })
	s.check(a, ns, w)
	rel := s.find("release of the filtered port", func(e *tracer.Event) bool { return e.NetNS == ns.Inode && e.Kind == tracer.KindRelease })
	s.check(rel, ns, w)
	s.none(fmt.Sprintf("event for port %d", other.Int("port")), 200*time.Millisecond, in(ns, 0, uint16(other.Int("port"))))
}

func TestFailures(t *testing.T) {
	cases := []struct {
		kind     string
		proto    tracer.Proto
		via      tracer.Via
		errno    syscall.Errno
		rport    uint16
		deferred bool // no portable hook sees the call return: reported at close, stamped with the call's time
	}{
		{"tcp-connect", tracer.TCP, tracer.ViaConnect, syscall.EADDRNOTAVAIL, drainPort, false},
		{"tcp-reconnect", tracer.TCP, tracer.ViaConnect, syscall.EADDRNOTAVAIL, drainPort, false},
		{"tcp-bind", tracer.TCP, tracer.ViaBind, syscall.EADDRINUSE, 0, true},
		{"tcp-listen", tracer.TCP, tracer.ViaListen, syscall.EADDRINUSE, 0, false},
		{"udp-bind", tracer.UDP, tracer.ViaBind, syscall.EADDRINUSE, 0, true},
		{"udp-sendto", tracer.UDP, tracer.ViaSendmsg, syscall.EAGAIN, udpSinkPort, false},
		{"udp-connect", tracer.UDP, tracer.ViaConnect, syscall.EAGAIN, udpSinkPort, true},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			// One port in the range: the second attempt cannot get one.
			ns := nstest.New(t, 40123, 40123)
			serve(t, ns)
			// Failures pass any port filter; the holder's alloc does not.
			var ports tracer.PortSet
			ports.Add(1)
			s := openTracer(t, tracer.Options{Filter: tracer.Filter{Ports: ports}}).start()
			if c.kind == "udp-sendto" && s.tr.Tier() == tracer.HooksPortable && !slices.Contains(s.tr.Hooks(), "tp_btf/sock_send_length") {
				t.Skip("not seen on this kernel: without tp_btf/sock_send_length (Linux 6.5+) no portable hook runs when a send's autobind fails")
			}
			rport := c.rport
			if rport == 0 {
				rport = udpSinkPort
			}
			rs := ns.Python(t, nstest.Script(), "exhaust", c.kind, "127.0.0.1", fmt.Sprint(rport))
			if len(rs) != 2 || rs[0].Int("port") != 40123 {
				t.Fatalf("sockets.py exhaust %s: %v", c.kind, rs)
			}
			wantErr := map[syscall.Errno]string{syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL", syscall.EADDRINUSE: "EADDRINUSE", syscall.EAGAIN: "EAGAIN"}[c.errno]
			if rs[1].Str("errno") != wantErr {
				t.Fatalf("second attempt: %v, want errno %s", rs[1], wantErr)
			}
			f := s.find("fail", in(ns, tracer.KindFail, 0))
			if f.Errno != c.errno {
				t.Errorf("errno = %v, want %v", f.Errno, c.errno)
			}
			if int64(f.PID) != rs[1].Int("pid") || int64(f.TID) != rs[1].Int("tid") || f.Comm != "python3" {
				t.Errorf("fail names pid %d tid %d %q, want %d %d python3", f.PID, f.TID, f.Comm, rs[1].Int("pid"), rs[1].Int("tid"))
			}
			if f.Proto != c.proto || f.Via != c.via || f.Family != tracer.IPv4 {
				t.Errorf("fail is %s %s %s, want %s %s ipv4", f.Proto, f.Via, f.Family, c.proto, c.via)
			}
			if f.RemotePort != c.rport {
				t.Errorf("fail rport = %d, want %d", f.RemotePort, c.rport)
			}
			if c.rport != 0 && f.RemoteAddr.String() != "127.0.0.1" {
				t.Errorf("fail raddr = %s, want 127.0.0.1", f.RemoteAddr)
			}
			if f.Port != 0 {
				t.Errorf("fail port = %d, want 0 (none was had)", f.Port)
			}
			if want := c.deferred && s.tr.Tier() == tracer.HooksPortable; f.Deferred != want {
				t.Errorf("fail deferred = %v, want %v with the %s hooks", f.Deferred, want, s.tr.Tier())
			}
			// The event carries the time of the failed call, not of its
			// report: just after the program's clock read before the call.
			var mono unix.Timespec
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
			call := time.Unix(0, time.Now().UnixNano()-mono.Nano()+rs[1].Int("t_call"))
			if d := f.Time.Sub(call); d < -time.Millisecond || d > 500*time.Millisecond {
				t.Errorf("fail time %v is %v after the failed call began", f.Time, d)
			}
			s.none("second fail", 200*time.Millisecond, in(ns, tracer.KindFail, 0))
		})
	}
}

func TestExistingPorts(t *testing.T) {
	ns := newNS(t)
	proc := ns.Start(t, "python3", nstest.Script(), "hold", "127.0.0.1", fmt.Sprint(drainPort))
	r := nstest.Next(t, proc.Reports)
	tcpPort, udpPort := uint16(r.Int("tcp")), uint16(r.Int("udp"))

	s := openTracer(t, tracer.Options{})
	ex, err := s.tr.Existing()
	if err != nil {
		t.Fatal(err)
	}
	// TCP and UDP ports are numbered apart: the two may have one number.
	type held struct {
		proto tracer.Proto
		port  uint16
	}
	got := map[held]tracer.Event{}
	for _, e := range ex {
		if e.NetNS == ns.Inode {
			got[held{e.Proto, e.Port}] = e
		}
	}
	s.start()
	for _, c := range []struct {
		port  uint16
		proto tracer.Proto
	}{{tcpPort, tracer.TCP}, {udpPort, tracer.UDP}} {
		e, ok := got[held{c.proto, c.port}]
		if !ok {
			t.Fatalf("%s port %d held before the start is not among the existing ones: %v", c.proto, c.port, got)
		}
		w := want{pid: r.Int("pid"), tid: r.Int("pid"), port: c.port, proto: c.proto, family: tracer.IPv4,
			via: tracer.ViaExisting, ephemeral: true, comm: "python3"}
		s.check(e, ns, w)
	}
	if len(got) != 2 {
		t.Errorf("existing ports in the namespace: %d, want 2 (%v)", len(got), got)
	}
	io.WriteString(proc.Stdin, "close\n")
	nstest.Next(t, proc.Reports)
	// The two closes race with the TCP teardown: take the releases in any order.
	rels := map[held]tracer.Event{}
	for len(rels) < 2 {
		rel := s.find("releases of both ports", func(e *tracer.Event) bool {
			return e.NetNS == ns.Inode && e.Kind == tracer.KindRelease &&
				((e.Proto == tracer.TCP && e.Port == tcpPort) || (e.Proto == tracer.UDP && e.Port == udpPort))
		})
		rels[held{rel.Proto, rel.Port}] = rel
	}
	for h, rel := range rels {
		if int64(rel.PID) != r.Int("pid") || rel.Via != tracer.ViaExisting {
			t.Errorf("release of %s port %d: pid %d via %s, want %d existing", h.proto, h.port, rel.PID, rel.Via, r.Int("pid"))
		}
	}
	proc.Stdin.Close()
}

func TestReleaseByLastHolder(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	t.Run("fork: the last fd closes at the child's exit", func(t *testing.T) {
		r := py(t, ns, "fork-share", "127.0.0.1", fmt.Sprint(udpSinkPort), "200")
		port := uint16(r.Int("port"))
		w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.UDP, family: tracer.IPv4, via: tracer.ViaSendmsg, ephemeral: true}
		s.check(s.find("alloc", in(ns, tracer.KindAlloc, port)), ns, w)
		rel := s.find("release", in(ns, tracer.KindRelease, port))
		s.check(rel, ns, w) // the holder is the allocating parent, not the child
		checkHeld(t, rel, r)
	})
	t.Run("exit without close", func(t *testing.T) {
		r := py(t, ns, "exit-holding", "127.0.0.1", fmt.Sprint(drainPort), "150")
		port := uint16(r.Int("port"))
		rel := s.find("release", in(ns, tracer.KindRelease, port))
		s.check(rel, ns, want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.TCP, family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true})
		if rel.Held < 150*time.Millisecond || rel.Held > 400*time.Millisecond {
			t.Errorf("held = %v, the program slept 150ms then exited", rel.Held)
		}
	})
}

func TestLostEventsAreCounted(t *testing.T) {
	ns := newNS(t)
	// One page of ring buffer, only this process's events, and nobody reading
	// while the burst runs: most events must be dropped, and counted.
	s := openTracer(t, tracer.Options{BufferSize: os.Getpagesize(), Filter: tracer.Filter{PIDs: []uint32{uint32(os.Getpid())}}})
	const n = 500
	ns.Do(t, func(int) {
		for i := 0; i < n; i++ {
			c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpSinkPort))
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			c.Close()
		}
	})
	s.tr.Stop()
	s.start()
	var delivered, lost uint64
	for e := range s.ch {
		switch e.Kind {
		case tracer.KindLost:
			lost += e.Count
		case tracer.KindAlloc, tracer.KindRelease:
			if e.NetNS == ns.Inode {
				delivered++
			}
		}
	}
	if lost == 0 {
		t.Fatalf("no lost events reported after %d events into one page", 2*n)
	}
	if delivered+lost != 2*n {
		t.Errorf("delivered %d + lost %d = %d, want %d: drops must all be counted", delivered, lost, delivered+lost, 2*n)
	}
	if got := s.tr.Lost(); got != lost {
		t.Errorf("Lost() = %d, lost events summed to %d", got, lost)
	}
}

func TestExternalPrograms(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl is not installed")
		}
		var srv *httpServer
		ns.Do(t, func(int) { srv = startHTTP(t, "127.0.0.1:8090") })
		defer srv.Close()
		cmd := ns.Command("curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8090/")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
		a := s.find("alloc by curl", func(e *tracer.Event) bool {
			return e.NetNS == ns.Inode && e.Kind == tracer.KindAlloc && e.RemotePort == 8090
		})
		w := want{pid: int64(cmd.Process.Pid), port: a.Port, proto: tracer.TCP, family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true, comm: "curl"}
		s.check(a, ns, w)
		if srv.peerPort() != a.Port {
			t.Errorf("the server saw curl come from port %d, porttrace says %d", srv.peerPort(), a.Port)
		}
		s.check(s.find("release by curl", in(ns, tracer.KindRelease, a.Port)), ns, w)
	})
	t.Run("nc", func(t *testing.T) {
		if _, err := exec.LookPath("nc"); err != nil {
			t.Skip("nc is not installed")
		}
		cmd := ns.Command("nc", "-u", "-w0", "127.0.0.1", fmt.Sprint(udpSinkPort))
		cmd.Stdin = stringsReader("x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nc: %v %s", err, out)
		}
		a := s.find("alloc by nc", func(e *tracer.Event) bool {
			return e.NetNS == ns.Inode && e.Kind == tracer.KindAlloc && e.Comm == "nc"
		})
		w := want{pid: int64(cmd.Process.Pid), port: a.Port, proto: tracer.UDP, family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true, comm: "nc"}
		s.check(a, ns, w)
		s.check(s.find("release by nc", in(ns, tracer.KindRelease, a.Port)), ns, w)
	})
}

// A socket's own IP_LOCAL_PORT_RANGE narrows the range its port came from.
func TestSocketPortRange(t *testing.T) {
	skipWithoutSocketPortRange(t)
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	r := py(t, ns, "narrow-connect", "127.0.0.1", fmt.Sprint(holdPort), "40100", "40103")
	port := uint16(r.Int("port"))
	if port < 40100 || port > 40103 {
		t.Fatalf("the kernel ignored IP_LOCAL_PORT_RANGE: port %d", port)
	}
	a := s.find("alloc", in(ns, tracer.KindAlloc, port))
	if a.Range != (tracer.PortRange{Lo: 40100, Hi: 40103}) {
		t.Errorf("range = %v, want the socket's 40100-40103", a.Range)
	}
	if a.Search <= 0 || a.Search > time.Second {
		t.Errorf("search = %v: a TCP connect's port search is timed", a.Search)
	}
}

// skipWithoutSocketPortRange skips on kernels that refuse the option.
func skipWithoutSocketPortRange(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const ipLocalPortRange = 51
	if err := unix.SetsockoptInt(fd, unix.SOL_IP, ipLocalPortRange, 40103<<16|40100); errors.Is(err, unix.ENOPROTOOPT) {
		t.Skip("not on this kernel: IP_LOCAL_PORT_RANGE, a socket's own port range, needs Linux 6.3+ (or a stable kernel it was backported to, as Debian's 6.1)")
	}
}

// A failure half way through Open leaves nothing behind and says which hook.
func TestOpenFailureCleansUp(t *testing.T) {
	nstest.RequireRoot(t)
	before, _ := os.ReadDir("/proc/self/fd")
	_, err := tracer.Open(tracer.Options{BufferSize: 3 << 20}) // not a power of two
	if err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Fatalf("Open with a bad buffer: %v", err)
	}
	after, _ := os.ReadDir("/proc/self/fd")
	if len(after) != len(before) {
		t.Errorf("Open left %d file descriptors open", len(after)-len(before))
	}
}

// listen() on an unbound socket takes a port too.
func TestListenAutobind(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	r := py(t, ns, "listen", "120")
	port := uint16(r.Int("port"))
	w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.TCP, family: tracer.IPv4, via: tracer.ViaListen, ephemeral: true, comm: "python3"}
	s.check(s.find("alloc", in(ns, tracer.KindAlloc, port)), ns, w)
	rel := s.find("release", in(ns, tracer.KindRelease, port))
	s.check(rel, ns, w)
	checkHeld(t, rel, r)
	if rel.State.String() != "CLOSE" {
		t.Errorf("state = %s, want CLOSE", rel.State)
	}
}

// TCP Fast Open takes its port in sendto(), with no connect() call: every
// tier must still see it, as a connect.
func TestTCPFastOpen(t *testing.T) {
	ns := newNS(t)
	s := openTracer(t, tracer.Options{}).start()
	r := py(t, ns, "fastopen", "127.0.0.1", fmt.Sprint(holdPort), "120")
	port := uint16(r.Int("port"))
	w := want{pid: r.Int("pid"), tid: r.Int("tid"), port: port, proto: tracer.TCP, family: tracer.IPv4, via: tracer.ViaConnect, ephemeral: true, comm: "python3"}
	a := s.find("alloc", in(ns, tracer.KindAlloc, port))
	s.check(a, ns, w)
	if a.RemotePort != holdPort || a.RemoteAddr.String() != "127.0.0.1" {
		t.Errorf("remote = %s:%d, want 127.0.0.1:%d", a.RemoteAddr, a.RemotePort, holdPort)
	}
	rel := s.find("release", in(ns, tracer.KindRelease, port))
	s.check(rel, ns, w)
	checkHeld(t, rel, r)
}

// Thousands of ports held before the start are all listed: the iterator's
// output spans many reads.
func TestExistingManyPorts(t *testing.T) {
	ns := newNS(t)
	const n = 900 // of the namespace's 1000
	proc := ns.Start(t, "python3", nstest.Script(), "hold-udp", "127.0.0.1", fmt.Sprint(n))
	if got := nstest.Next(t, proc.Reports).Int("count"); got != n {
		t.Fatalf("holder took %d ports", got)
	}
	s := openTracer(t, tracer.Options{})
	ex, err := s.tr.Existing()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint16]bool{}
	for _, e := range ex {
		if e.NetNS == ns.Inode && e.PID == uint32(proc.Cmd.Process.Pid) {
			seen[e.Port] = true
		}
	}
	if len(seen) != n {
		t.Errorf("Existing listed %d of the %d ports held", len(seen), n)
	}
}
