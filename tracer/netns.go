package tracer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Namespaces lists the network namespaces of the host — every one a process
// lives in, and every one pinned under /run/netns — with their ephemeral
// port range.
func Namespaces() ([]Namespace, error) {
	found, err := namespacePaths()
	if err != nil {
		return nil, err
	}
	out := make([]Namespace, 0, len(found))
	for _, n := range found {
		r, err := rangeIn(n.Path)
		if err != nil {
			continue // the namespace went away while we looked
		}
		n.Range = r
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Inode < out[j].Inode })
	return out, nil
}

// namespacePaths finds each namespace once, with a path that names it: its
// name under /run/netns if it has one, or a process of it. No namespace is
// entered.
func namespacePaths() (map[uint32]Namespace, error) {
	found := map[uint32]Namespace{}
	add := func(path, name string) {
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil {
			return
		}
		ino := uint32(st.Ino)
		if c, ok := found[ino]; !ok || (c.Name == "" && name != "") {
			found[ino] = Namespace{Inode: ino, Name: name, Path: path}
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			add(filepath.Join("/run/netns", e.Name()), e.Name())
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err == nil {
			add(filepath.Join("/proc", p.Name(), "ns/net"), "")
		}
	}
	return found, nil
}

// rangeIn reads ip_local_port_range inside the namespace at nsPath.
func rangeIn(nsPath string) (PortRange, error) {
	b, err := Sysctl(nsPath, "net/ipv4/ip_local_port_range")
	if err != nil {
		return PortRange{}, err
	}
	return parseRange(b)
}

// Sysctl reads /proc/sys/NAME as the namespace at nsPath sees it.
func Sysctl(nsPath, name string) (string, error) {
	var v string
	err := inNetns(nsPath, func() error {
		b, err := os.ReadFile("/proc/sys/" + name)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// inNetns runs fn on an OS thread that entered the network namespace at
// nsPath. /proc/sys and the kernel's socket iterators answer for the
// namespace of the calling thread; the thread is never handed back to Go.
func inNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with the goroutine
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open network namespace: %w", err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ParsePortList reads a sysctl port list such as ip_local_reserved_ports:
// "8080,9000-9010" (empty: none).
func ParsePortList(s string) (PortSet, error) {
	if strings.TrimSpace(s) == "" {
		return PortSet{}, nil
	}
	return ParsePorts(s)
}

func parseRange(s string) (PortRange, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return PortRange{}, fmt.Errorf("parse port range %q: want two numbers", s)
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("parse port range %q: not port numbers", s)
	}
	return PortRange{Lo: uint16(lo), Hi: uint16(hi)}, nil
}
