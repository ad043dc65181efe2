package tracer_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// The real programs people run, each checked against what the program (or
// its peer, or strace) says about the ports it took.

func need(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: .ci/run installs it (apt-get)", p)
		}
	}
}

// peers is an HTTP server that remembers the port of every client.
type peers struct {
	mu    sync.Mutex
	ports []uint16
	srv   *http.Server
}

func servePeers(t *testing.T, ns *nstest.Netns, addr string) *peers {
	p := &peers{}
	var ln net.Listener
	ns.Do(t, func(int) {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Errorf("listen %s: %v", addr, err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
			p.mu.Lock()
			p.ports = append(p.ports, uint16(ap.Port))
			p.mu.Unlock()
		}
		w.Header().Set("Connection", "close")
		w.Write([]byte("ok\n"))
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *peers) seen() []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ports)
}

// startIn runs a server program in the namespace until the test ends, and
// waits until addr accepts connections.
func startIn(t *testing.T, ns *nstest.Netns, addr string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := ns.Command(name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so its workers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s said:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(nstest.Scaled(10 * time.Second))
	for {
		var err error
		ns.Do(t, func(int) {
			var c net.Conn
			if c, err = net.Dial("tcp", addr); err == nil {
				c.Close()
			}
		})
		if err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept on %s: %v", name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func curl(t *testing.T, ns *nstest.Netns, args ...string) {
	t.Helper()
	out, err := ns.Command("curl", append([]string{"-sS", "-o", "/dev/null", "--max-time", "20"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v %s", args, err, out)
	}
}

// proxied checks what a proxy in front of upstream did for n requests:
// each upstream connection's port, as the upstream saw it, was taken by
// connect() from the bound 127.0.0.1 and given back, and nothing failed.
func proxied(t *testing.T, s *session, ns *nstest.Netns, up *peers, comm string, n int) {
	t.Helper()
	events := s.collect(ns, 500*time.Millisecond)
	ports := holdsOf(t, events, comm, tracer.TCP)
	want := up.seen()
	if len(want) != n {
		t.Fatalf("the upstream saw %d connections for %d requests", len(want), n)
	}
	slices.Sort(ports)
	slices.Sort(want)
	if !slices.Equal(ports, want) {
		t.Errorf("%s's upstream ports: porttrace %v, the upstream saw %v", comm, ports, want)
	}
	for _, e := range events {
		if e.Comm != comm || e.Kind != tracer.KindAlloc {
			continue
		}
		if e.Via != tracer.ViaConnect || !e.Ephemeral || e.LocalAddr.String() != "127.0.0.1" || e.RemotePort != 8090 {
			t.Errorf("%s alloc: via %s ephemeral %v %s → %s:%d; want connect, ephemeral, 127.0.0.1 → 127.0.0.1:8090",
				comm, e.Via, e.Ephemeral, e.LocalAddr, e.RemoteAddr, e.RemotePort)
		}
	}
}

// nginx as a reverse proxy with proxy_bind: IP_BIND_ADDRESS_NO_PORT, bind,
// connect.
func TestNginxProxyBind(t *testing.T) {
	need(t, "nginx", "curl")
	ns := newNS(t)
	up := servePeers(t, ns, "127.0.0.1:8090")
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:8091;
    location / { proxy_pass http://127.0.0.1:8090; proxy_bind 127.0.0.1; }
  }
}
`, dir)), 0o644)
	startIn(t, ns, "127.0.0.1:8091", "nginx", "-c", conf, "-g", "daemon off;")
	s := openTracer(t, tracer.Options{}).start()
	for i := 0; i < 3; i++ {
		curl(t, ns, "http://127.0.0.1:8091/")
	}
	proxied(t, s, ns, up, "nginx", 3)
}

// haproxy with "source 127.0.0.1" on its server line.
func TestHAProxySource(t *testing.T) {
	need(t, "haproxy", "curl")
	ns := newNS(t)
	up := servePeers(t, ns, "127.0.0.1:8090")
	conf := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(conf, []byte(`global
  maxconn 100
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
  http-reuse never
  option httpclose
frontend in
  bind 127.0.0.1:8092
  default_backend up
backend up
  server s1 127.0.0.1:8090 source 127.0.0.1
`), 0o644)
	startIn(t, ns, "127.0.0.1:8092", "haproxy", "-db", "-f", conf)
	s := openTracer(t, tracer.Options{}).start()
	for i := 0; i < 3; i++ {
		curl(t, ns, "http://127.0.0.1:8092/")
	}
	proxied(t, s, ns, up, "haproxy", 3)
}

var getsockname = regexp.MustCompile(`getsockname\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\)`)

// straced runs name args... in ns under strace and returns the local ports
// its getsockname() calls returned, in order.
func straced(t *testing.T, ns *nstest.Netns, name string, args ...string) (ports []uint16, out string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "strace")
	cmd := ns.Command("strace", append([]string{"-f", "-qq", "-e", "trace=getsockname", "-o", log, name}, args...)...)
	b, _ := cmd.CombinedOutput()
	f, err := os.Open(log)
	if err != nil {
		t.Fatalf("strace %s: %v %s", name, err, b)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := getsockname.FindStringSubmatch(sc.Text()); m != nil {
			if p, _ := strconv.Atoi(m[1]); p != 0 {
				ports = append(ports, uint16(p))
			}
		}
	}
	return ports, string(b)
}

// glibc's getaddrinfo, through getent: with ::1 and 127.0.0.1 both
// candidates, it probes each with a UDP connect on one socket, giving the
// first port back by connect(AF_UNSPEC).
func TestGetaddrinfoProbes(t *testing.T) {
	need(t, "getent", "strace")
	ns := newNS(t)
	ns.Hosts(t, "::1 localhost ip6-localhost\n127.0.0.1 localhost\n")
	s := openTracer(t, tracer.Options{}).start()
	want, out := straced(t, ns, "getent", "ahosts", "localhost")
	if len(want) != 2 || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("getent's getsockname saw ports %v (want 2 probes): %s", want, out)
	}
	events := s.collect(ns, 500*time.Millisecond)
	got := holdsOf(t, events, "getent", tracer.UDP)
	if !slices.Equal(got, want) {
		t.Errorf("getent's UDP ports: porttrace %v, strace %v", got, want)
	}
	for _, e := range events {
		if e.Comm == "getent" && e.Via != tracer.ViaConnect {
			t.Errorf("getent %s of port %d via %s, want connect", e.Kind, e.Port, e.Via)
		}
	}
}

// An ssh client to a local sshd: its resolver's probes and its TCP
// connection, against strace's getsockname and sshd's own log.
func TestSSHClient(t *testing.T) {
	need(t, "ssh", "/usr/sbin/sshd", "ssh-keygen", "strace")
	ns := newNS(t)
	ns.Hosts(t, "::1 localhost ip6-localhost\n127.0.0.1 localhost\n")
	dir := t.TempDir()
	key := filepath.Join(dir, "hostkey")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf("Port 2222\nListenAddress 127.0.0.1\nListenAddress ::1\nHostKey %s\nPidFile %s/sshd.pid\nUsePAM no\nLogLevel VERBOSE\n", key, dir)), 0o600)
	logf := filepath.Join(dir, "sshd.log")
	startIn(t, ns, "127.0.0.1:2222", "/usr/sbin/sshd", "-D", "-f", conf, "-E", logf)
	s := openTracer(t, tracer.Options{}).start()
	want, out := straced(t, ns, "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20", "-p", "2222", "nobody@localhost", "true")
	events := s.collect(ns, time.Second)
	udp := holdsOf(t, events, "ssh", tracer.UDP)
	tcp := holdsOf(t, events, "ssh", tracer.TCP)
	log, _ := os.ReadFile(logf)
	// The last connection sshd logged is ssh's: the first was startIn's check.
	all := regexp.MustCompile(`Connection from \S+ port (\d+)`).FindAllStringSubmatch(string(log), -1)
	var m []string
	if len(all) > 0 {
		m = all[len(all)-1]
	}
	if m == nil || len(tcp) != 1 || fmt.Sprint(tcp[0]) != m[1] {
		t.Errorf("ssh's TCP port: porttrace %v, sshd logged %q\n%s", tcp, m, out)
	}
	got := append(udp, tcp...)
	slices.Sort(got)
	slices.Sort(want)
	want = slices.Compact(want)
	if len(udp) < 2 || !slices.Equal(got, want) {
		t.Errorf("ssh's ports: porttrace UDP %v and TCP %v, strace's getsockname %v", udp, tcp, want)
	}
}

// dig sends its queries from a thread named isc-net-0000: comm is dig's
// name all the same, and the port is the one the server saw.
func TestDigThreadName(t *testing.T) {
	need(t, "dig")
	ns := newNS(t)
	var pc net.PacketConn
	ns.Do(t, func(int) {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:5353"); err != nil {
			t.Errorf("listen: %v", err)
		}
	})
	if pc == nil {
		t.FailNow()
	}
	t.Cleanup(func() { pc.Close() })
	from := make(chan uint16, 4)
	go func() {
		buf := make([]byte, 2048)
		for {
			_, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			from <- uint16(a.(*net.UDPAddr).Port)
		}
	}()
	s := openTracer(t, tracer.Options{Filter: tracer.Filter{Comms: []string{"dig"}}}).start()
	ns.Command("dig", "@127.0.0.1", "-p", "5353", "+tries=1", "+time=1", "example.org").Run() // no answer comes: it times out
	var port uint16
	select {
	case port = <-from:
	case <-time.After(nstest.Scaled(5 * time.Second)):
		t.Fatal("the server saw no query from dig")
	}
	a := s.find("alloc by dig", in(ns, tracer.KindAlloc, port))
	if a.Comm != "dig" || !strings.HasPrefix(a.Thread, "isc-") || a.Proto != tracer.UDP {
		t.Errorf("dig's alloc of %d: comm %q thread %q proto %s; want dig, an isc- thread, udp", port, a.Comm, a.Thread, a.Proto)
	}
	s.find("release by dig", in(ns, tracer.KindRelease, port))
}

// A JVM names its threads: the process is java, the thread that connects
// is the Java thread's name.
func TestJavaThreadName(t *testing.T) {
	need(t, "java")
	ns := newNS(t)
	src := filepath.Join(t.TempDir(), "Conn.java")
	os.WriteFile(src, []byte(`import java.net.*;
public class Conn {
    public static void main(String[] a) throws Exception {
        Thread t = new Thread(() -> {
            try (Socket s = new Socket(a[0], Integer.parseInt(a[1]))) {
                System.out.println("{\"port\":" + s.getLocalPort() + "}");
                Thread.sleep(Integer.parseInt(a[2]));
            } catch (Exception e) { throw new RuntimeException(e); }
        }, "pt-worker");
        t.start();
        t.join();
    }
}
`), 0o644)
	s := openTracer(t, tracer.Options{Filter: tracer.Filter{Comms: []string{"pt-worker"}}}).start()
	out, err := ns.Command("java", src, "127.0.0.1", fmt.Sprint(holdPort), "100").Output()
	if err != nil {
		t.Fatalf("java: %v %s", err, out)
	}
	var port uint16
	if _, err := fmt.Sscanf(string(out), `{"port":%d}`, &port); err != nil {
		t.Fatalf("java printed %q", out)
	}
	for _, k := range []tracer.Kind{tracer.KindAlloc, tracer.KindRelease} {
		e := s.find(k.String()+" by java", in(ns, k, port))
		if e.Comm != "java" || e.Thread != "pt-worker" || e.Via != tracer.ViaConnect {
			t.Errorf("java's %s of %d: comm %q thread %q via %s; want java, pt-worker, connect", k, port, e.Comm, e.Thread, e.Via)
		}
	}
}

// curl --local-port binds the port, then connects: the alloc says bind,
// and the release names the server the port was connected to.
func TestCurlLocalPort(t *testing.T) {
	need(t, "curl")
	ns := newNS(t)
	up := servePeers(t, ns, "127.0.0.1:8090")
	s := openTracer(t, tracer.Options{}).start()
	curl(t, ns, "--local-port", "40500-40600", "http://127.0.0.1:8090/")
	seen := up.seen()
	if len(seen) != 1 || seen[0] < 40500 || seen[0] > 40600 {
		t.Fatalf("the server saw curl from %v", seen)
	}
	a := s.find("alloc by curl", in(ns, tracer.KindAlloc, seen[0]))
	if a.Via != tracer.ViaBind || a.Comm != "curl" || a.RemoteAddr.IsValid() || a.RemotePort != 0 {
		t.Errorf("alloc: via %s comm %q remote %v:%d; want bind by curl with no remote yet", a.Via, a.Comm, a.RemoteAddr, a.RemotePort)
	}
	r := s.find("release by curl", in(ns, tracer.KindRelease, seen[0]))
	if r.RemoteAddr.String() != "127.0.0.1" || r.RemotePort != 8090 {
		t.Errorf("release remote %v:%d, want 127.0.0.1:8090", r.RemoteAddr, r.RemotePort)
	}
}
