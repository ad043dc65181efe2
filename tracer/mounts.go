package tracer

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// mountPoint returns where a filesystem of type fstype is mounted, from the
// mount table of this process, or "" if it is not.
func mountPoint(fstype string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && qf[0] == fstype {
			return unescapeMount(pf[4]), nil
		}
	}
	return "", sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroup2Root finds the cgroup v2 hierarchy the cgroup hooks attach to. A
// host without one gets a mount of its own that nobody else sees and that
// cannot outlive porttrace, even killed: it is mounted, opened, and at once
// detached from the mount table, so only the open directory (kept, returned
// as held) reaches it; the path returned names it through /proc/self/fd.
func cgroup2Root() (path string, held *os.File, note string, err error) {
	p, err := mountPoint("cgroup2")
	if err != nil {
		return "", nil, "", err
	}
	if p != "" {
		return p, nil, "", nil
	}
	dir := "/run/porttrace/cgroup2"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, "", fmt.Errorf("create %s: %w", dir, err)
	}
	defer os.Remove(dir)
	if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		return "", nil, "", fmt.Errorf("mount cgroup2 at %s (no cgroup v2 hierarchy is mounted): %w", dir, err)
	}
	f, err := os.Open(dir)
	if derr := unix.Unmount(dir, unix.MNT_DETACH); err == nil && derr != nil {
		f.Close()
		err = fmt.Errorf("detach the cgroup2 mount at %s: %w", dir, derr)
	}
	if err != nil {
		return "", nil, "", fmt.Errorf("open cgroup2 at %s: %w", dir, err)
	}
	// The trailing slash makes a walk follow the link into the hierarchy.
	return fmt.Sprintf("/proc/self/fd/%d/", f.Fd()), f, "mounted cgroup2 for porttrace alone (no cgroup v2 hierarchy is mounted)", nil
}
