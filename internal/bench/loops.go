package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A loop is one socket operation repeated; it works with raw syscalls so the
// Go runtime's poller adds nothing to what is measured.
type loop struct {
	name  string
	scale int // runs scale*b.N operations: cheap loops need more to rise above noise
	setup func() (op func() error, teardown func(), err error)
}

var loopback = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}

func tcpListener() (int, int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	// Accepted connections are closed by the server first and linger in
	// TIME_WAIT on this port: allow rebinding it in the next round.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return 0, 0, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback.Addr, Port: 5001}); err != nil {
		return 0, 0, fmt.Errorf("bind listener: %w", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		return 0, 0, err
	}
	return fd, 5001, nil
}

var loops = []loop{
	{name: "tcp connect+close", setup: func() (func() error, func(), error) {
		ln, port, err := tcpListener()
		if err != nil {
			return nil, nil, err
		}
		stop := make(chan struct{})
		go func() { // accept and close, so the backlog never fills
			for {
				c, _, err := unix.Accept(ln)
				if err != nil {
					select {
					case <-stop:
						return
					default:
						continue
					}
				}
				unix.Close(c)
			}
		}()
		dst := &unix.SockaddrInet4{Addr: loopback.Addr, Port: port}
		op := func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(fd, dst); err != nil {
				unix.Close(fd)
				return fmt.Errorf("connect: %w", err)
			}
			return unix.Close(fd)
		}
		return op, func() { close(stop); unix.Shutdown(ln, unix.SHUT_RDWR); unix.Close(ln) }, nil
	}},
	{name: "udp socket+sendto+close", setup: func() (func() error, func(), error) {
		sink, dst, err := udpSink()
		if err != nil {
			return nil, nil, err
		}
		op := func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Sendto(fd, []byte("x"), 0, dst); err != nil {
				unix.Close(fd)
				return fmt.Errorf("sendto: %w", err)
			}
			return unix.Close(fd)
		}
		return op, func() { unix.Close(sink) }, nil
	}},
	{name: "bind(0)+close", setup: func() (func() error, func(), error) {
		any := &unix.SockaddrInet4{Addr: loopback.Addr}
		op := func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Bind(fd, any); err != nil {
				unix.Close(fd)
				return fmt.Errorf("bind: %w", err)
			}
			return unix.Close(fd)
		}
		return op, func() {}, nil
	}},
	{name: "sendto on a bound udp socket", scale: 5, setup: func() (func() error, func(), error) {
		sink, dst, err := udpSink()
		if err != nil {
			return nil, nil, err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, nil, err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback.Addr, Port: 5353}); err != nil {
			return nil, nil, err
		}
		msg := []byte("a DNS answer would be about this long........")
		op := func() error { return unix.Sendto(fd, msg, 0, dst) }
		return op, func() { unix.Close(fd); unix.Close(sink) }, nil
	}},
}

// udpSink is a bound UDP socket nobody reads: datagrams to it are dropped
// once its buffer is full, with no ICMP sent back.
func udpSink() (int, *unix.SockaddrInet4, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback.Addr, Port: 5002}); err != nil {
		return 0, nil, err
	}
	return fd, &unix.SockaddrInet4{Addr: loopback.Addr, Port: 5002}, nil
}
