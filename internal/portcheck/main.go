// Command portcheck runs porttrace against a workload of its own and checks
// that every port the workload's getsockname() reports was traced, with the
// call that took it and the workload's pid. It is built static for another
// architecture (GOARCH=arm64) and run where the test binaries cannot be:
// in a VM whose root is an initramfs (.ci/vm-arm64.sh).
//
// Usage: portcheck PORTTRACE TIER
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type taken struct {
	proto, via string
	port       int
}

type event struct {
	Event string `json:"event"`
	Proto string `json:"proto"`
	Port  int    `json:"port"`
	Via   string `json:"via"`
	PID   int    `json:"pid"`
	Tier  string `json:"tier"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: portcheck PORTTRACE TIER")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Println("portcheck: FAIL:", err)
		os.Exit(1)
	}
}

func run(bin, tier string) error {
	cmd := exec.Command(bin, "--hooks", tier, "--format", "json", "--no-existing")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start porttrace: %w", err)
	}
	lines := make(chan event, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				lines <- e
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case e, ok := <-lines:
		if !ok || e.Event != "start" {
			cmd.Wait()
			return fmt.Errorf("porttrace --hooks %s did not start (first event %+v)", tier, e)
		}
		if e.Tier != tier {
			return fmt.Errorf("porttrace started the %s tier, not %s", e.Tier, tier)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return fmt.Errorf("porttrace --hooks %s did not start in 2 minutes", tier)
	}

	want, err := workload()
	if err != nil {
		cmd.Process.Kill()
		return err
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGINT)
	seen := map[taken]bool{}
	for e := range lines {
		if e.Event == "alloc" && e.PID == os.Getpid() {
			seen[taken{e.Proto, e.Via, e.Port}] = true
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("porttrace: %w", err)
	}
	missing := 0
	for _, w := range want {
		ok := seen[w]
		fmt.Printf("portcheck: %s tier: %s %s port %d (getsockname): %s\n", tier, w.proto, w.via, w.port, map[bool]string{true: "traced", false: "MISSING"}[ok])
		if !ok {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d ports not traced in the %s tier", missing, len(want), tier)
	}
	fmt.Printf("portcheck: %s tier: PASS\n", tier)
	return nil
}

var loopback = [4]byte{127, 0, 0, 1}

// workload takes ports each way porttrace tells apart, and says which,
// as getsockname() reports them. Its sockets stay open until it returns.
func workload() (_ []taken, err error) {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	sock := func(typ int) (int, error) {
		fd, err := unix.Socket(unix.AF_INET, typ, 0)
		if err == nil {
			fds = append(fds, fd)
		}
		return fd, err
	}
	port := func(fd int) (int, error) {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return 0, fmt.Errorf("getsockname: %w", err)
		}
		return sa.(*unix.SockaddrInet4).Port, nil
	}
	var got []taken
	step := func(proto, via string, fd int, call func() error) error {
		if err := call(); err != nil {
			return fmt.Errorf("%s %s: %w", proto, via, err)
		}
		p, err := port(fd)
		if err != nil {
			return err
		}
		got = append(got, taken{proto, via, p})
		return nil
	}

	ln, err := sock(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	if err := step("tcp", "listen", ln, func() error { return unix.Listen(ln, 8) }); err != nil {
		return nil, err
	}
	lport := got[0].port
	c, err := sock(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	if err := step("tcp", "connect", c, func() error { return unix.Connect(c, &unix.SockaddrInet4{Port: lport, Addr: loopback}) }); err != nil {
		return nil, err
	}
	b, err := sock(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	if err := step("tcp", "bind", b, func() error { return unix.Bind(b, &unix.SockaddrInet4{Addr: loopback}) }); err != nil {
		return nil, err
	}
	ub, err := sock(unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	if err := step("udp", "bind", ub, func() error { return unix.Bind(ub, &unix.SockaddrInet4{Addr: loopback}) }); err != nil {
		return nil, err
	}
	dst := &unix.SockaddrInet4{Port: got[len(got)-1].port, Addr: loopback}
	uc, err := sock(unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	if err := step("udp", "connect", uc, func() error { return unix.Connect(uc, dst) }); err != nil {
		return nil, err
	}
	us, err := sock(unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	if err := step("udp", "sendmsg", us, func() error { return unix.Sendto(us, []byte("x"), 0, dst) }); err != nil {
		return nil, err
	}
	return got, nil
}
