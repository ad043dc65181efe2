package tracer

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// cgroupPaths resolves cgroup v2 ids to paths below the root. The id of a
// cgroup is the inode number of its directory, so a walk of the hierarchy
// finds it; walks are rate-limited for ids that no longer exist.
type cgroupPaths struct {
	root     string
	mu       sync.Mutex
	paths    map[uint64]string
	lastWalk time.Time
}

func newCgroupPaths(root string) *cgroupPaths {
	return &cgroupPaths{root: root, paths: map[uint64]string{}}
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
	if time.Since(c.lastWalk) < time.Second {
		return ""
	}
	c.walk()
	return c.paths[id]
}

func (c *cgroupPaths) walk() {
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
			c.paths[st.Ino] = "/" + rel
		}
		return nil
	})
}
