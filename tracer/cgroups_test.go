package tracer

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A cgroup created a moment after the last lookup is named at once, and
// the table stays within its bound however many cgroups are seen.
func TestCgroupPathsOnDemandAndBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups")
	}
	root, held, _, err := cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	if held != nil {
		defer held.Close()
	}
	c := newCgroupPaths(root)
	defer c.close()
	c.lookup(1) // the root: whatever the method, the last resolution is now
	defer func(n int) { cgroupTableMax = n }(cgroupTableMax)
	cgroupTableMax = 8
	base := filepath.Join(root, fmt.Sprintf("porttrace-test-%d", os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(base)
	for i := 0; i < 20; i++ {
		dir := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(dir)
		var st syscall.Stat_t
		syscall.Stat(dir, &st)
		want := fmt.Sprintf("/porttrace-test-%d/%d", os.Getpid(), i)
		if got := c.lookup(st.Ino); got != want {
			t.Errorf("cgroup %d created just now: lookup = %q, want %q", i, got, want)
		}
		if len(c.paths) > cgroupTableMax {
			t.Fatalf("the table holds %d paths; bound %d", len(c.paths), cgroupTableMax)
		}
	}
}
