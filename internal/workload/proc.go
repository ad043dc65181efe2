package workload

import (
	"bufio"
	"os"
	"strings"
)

// procCgroup is a process's cgroup v2 path (the "0::" line), "" if none.
func procCgroup(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if p, ok := strings.CutPrefix(s.Text(), "0::"); ok {
			return p
		}
	}
	return ""
}
