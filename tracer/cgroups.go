package tracer

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupTableMax bounds the id→path table: cgroups come and go for as long
// as porttrace runs.
var cgroupTableMax = 4096

// fileidKernfs is the file handle type of a cgroup2 directory (the kernel's
// FILEID_KERNFS): the handle is the cgroup id.
const fileidKernfs = 0xfe

// cgroupPaths resolves cgroup v2 ids to paths below the root. An id unknown
// so far is resolved at once, by opening the cgroup by its handle (its id),
// so a cgroup created a moment before an event is named; a kernel that
// cannot do that gets a walk of the hierarchy, rate-limited for ids that no
// longer exist.
type cgroupPaths struct {
	root     string
	mu       sync.Mutex
	paths    map[uint64]string
	lastWalk time.Time
	byHandle bool // open_by_handle_at works here
	rootFD   *os.File
	prefix   string // what readlink shows for the root
}

func newCgroupPaths(root string) *cgroupPaths {
	c := &cgroupPaths{root: root, paths: map[uint64]string{}}
	if f, err := os.Open(root); err == nil {
		c.rootFD = f
		c.prefix, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
		c.byHandle = c.prefix != ""
	}
	return c
}

func (c *cgroupPaths) lookup(id uint64) string {
	if c == nil || id == 0 {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.paths[id]; ok {
		return p
	}
	if c.byHandle {
		p, err := c.open(id)
		if err == nil {
			c.remember(id, p)
			return p
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			return "" // gone (ESTALE, ENOENT)
		}
		c.byHandle = false
	}
	if time.Since(c.lastWalk) < time.Second {
		return ""
	}
	c.walk(id)
	return c.paths[id]
}

// open finds the path of cgroup id by opening it by its handle.
func (c *cgroupPaths) open(id uint64) (string, error) {
	h := make([]byte, 8)
	binary.NativeEndian.PutUint64(h, id)
	fd, err := unix.OpenByHandleAt(int(c.rootFD.Fd()), unix.NewFileHandle(fileidKernfs, h), unix.O_RDONLY|unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	rel, ok := strings.CutPrefix(p, strings.TrimSuffix(c.prefix, "/"))
	if !ok {
		return "", unix.EINVAL
	}
	if rel == "" {
		rel = "/"
	}
	return rel, nil
}

// remember adds to the table, making room if it is full: an id evicted is
// resolved again if it comes back.
func (c *cgroupPaths) remember(id uint64, p string) {
	if len(c.paths) >= cgroupTableMax {
		for k := range c.paths {
			delete(c.paths, k)
			if len(c.paths) < cgroupTableMax*3/4 {
				break
			}
		}
	}
	c.paths[id] = p
}

// walk looks for id in the hierarchy, filling the table on the way.
func (c *cgroupPaths) walk(id uint64) {
	c.lastWalk = time.Now()
	_ = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			rel, _ := filepath.Rel(c.root, p)
			if rel == "." {
				rel = ""
			}
			c.remember(st.Ino, "/"+rel)
			if st.Ino == id {
				return filepath.SkipAll
			}
		}
		return nil
	})
}

func (c *cgroupPaths) close() {
	if c != nil && c.rootFD != nil {
		c.rootFD.Close()
	}
}
