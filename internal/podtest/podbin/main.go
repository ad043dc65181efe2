// Command podbin is the one program of the test images: "pause" is a pod
// sandbox's process (it sleeps until told to stop); "connect N HOLD" takes
// N ports by connecting to a listener on the pod's loopback, holds them for
// HOLD, lets them go, and then sleeps like pause, or with a last argument
// "exit", exits. Built static
// (CGO_ENABLED=0): the image has nothing else.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	stop := make(chan os.Signal, 1)
	// As a container's pid 1, a signal with no handler is ignored.
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if len(os.Args) >= 4 && os.Args[1] == "connect" {
		n, _ := strconv.Atoi(os.Args[2])
		hold, _ := time.ParseDuration(os.Args[3])
		if err := connect(n, hold); err != nil {
			fmt.Fprintln(os.Stderr, "podbin:", err)
			os.Exit(1)
		}
		if len(os.Args) == 5 && os.Args[4] == "exit" {
			return
		}
	}
	<-stop
}

func connect(n int, hold time.Duration) error {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	time.Sleep(hold)
	for _, c := range conns {
		c.Close()
	}
	return nil
}
