package output

import (
	"fmt"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

// Times porttrace can have written: from the Unix epoch to the end of what
// a time in nanoseconds holds (2262).
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, 1<<63-1)
)

// maxPorts is the most ports a range, or a count of its ports, can hold.
const maxPorts = 65535

// Longest strings the kernel gives: a command name is 15 bytes, each of
// which may have become a 3-byte U+FFFD in JSON; a cgroup path is at most
// PATH_MAX; a namespace name, a file name under /run/netns. Longer ones
// would let a recording make the report hold gigabytes.
const (
	maxComm   = 3 * 15
	maxCgroup = 4096
	maxNSName = 3 * 255
)

// validate refuses values the kernel cannot have produced: they would
// overflow the report's arithmetic (a p50 of -9223372036854775808ns) or
// print nonsense (2 of -28230 ports), and mean the line is damaged.
func validate(e *tracer.Event) error {
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return fmt.Errorf("time %s is out of range (before 1970 or after 2262)", e.Time.Format(time.RFC3339))
	}
	since := time.Duration(e.Time.UnixNano())
	if e.Held > since {
		return fmt.Errorf("held_ns %d is out of range: the hold would have begun before 1970", int64(e.Held))
	}
	if e.Search > since {
		return fmt.Errorf("search_ns %d is out of range: the search would have begun before 1970", int64(e.Search))
	}
	if len(e.Comm) > maxComm {
		return fmt.Errorf("comm is %d bytes long: out of range (a command name has at most 15)", len(e.Comm))
	}
	if len(e.Thread) > maxComm {
		return fmt.Errorf("thread is %d bytes long: out of range (a thread name has at most 15)", len(e.Thread))
	}
	if len(e.Cgroup) > maxCgroup {
		return fmt.Errorf("cgroup is %d bytes long: out of range (a path has at most %d)", len(e.Cgroup), maxCgroup)
	}
	if err := validateWorkload(&e.Workload); err != nil {
		return err
	}
	if p := e.Pressure; p != nil {
		for _, v := range []struct {
			name string
			n    int
		}{{"in_use", p.InUse}, {"range_size", p.RangeSize}, {"timewait", p.TimeWait}, {"dest_in_use", p.DestInUse}} {
			if v.n > maxPorts {
				return fmt.Errorf("%s %d is out of range: a range has at most %d ports", v.name, v.n, maxPorts)
			}
		}
	}
	if e.Start != nil {
		for _, n := range e.Start.Namespaces {
			if len(n.Name) > maxNSName {
				return fmt.Errorf("the name of netns %d is %d bytes long: out of range", n.Inode, len(n.Name))
			}
			if r := n.Range; r.Lo > r.Hi || r.Lo == 0 && r.Hi != 0 {
				return fmt.Errorf("range [%d,%d] of netns %d is out of range: not a port range", r.Lo, r.Hi, n.Inode)
			}
		}
	}
	return nil
}
