package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrPrivileges is wrapped by errors that come from missing privileges.
var ErrPrivileges = errors.New("tracing needs root: run porttrace with sudo, or give it CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN")

type capability struct {
	bit  uint
	name string
	why  string
}

var neededCaps = []capability{
	{39, "CAP_BPF", "load BPF programs"},
	{38, "CAP_PERFMON", "read kernel memory from tracing programs"},
	{12, "CAP_NET_ADMIN", "attach to cgroup socket hooks"},
	{21, "CAP_SYS_ADMIN", "list sockets of every process and enter network namespaces"},
}

// checkPrivileges names the capabilities this process lacks.
func checkPrivileges() error {
	eff, err := effectiveCaps()
	if err != nil {
		return nil // cannot tell: let the kernel decide
	}
	var missing []string
	for _, c := range neededCaps {
		if eff&(1<<c.bit) == 0 {
			missing = append(missing, fmt.Sprintf("%s (to %s)", c.name, c.why))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w; missing: %s", ErrPrivileges, strings.Join(missing, ", "))
}

func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}
