package main_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/porttrace/porttrace/internal/nstest"
)

// On a host with no cgroup2 mounted, porttrace mounts one for itself and
// leaves nothing mounted behind, whether it stops cleanly or is killed.
func TestPrivateCgroup2MountLeftBehindNowhere(t *testing.T) {
	nstest.RequireRoot(t)
	// A mount namespace of the test's own, where every cgroup2 mount is
	// taken away first.
	script := `set -e
grep ' - cgroup2 ' /proc/self/mountinfo | while read -r _ _ _ _ mp _; do umount -l "$mp"; done
"$BIN" "$@" -d 1s --no-existing --format json > /dev/null 2>&1 || echo "clean run: exit $?"
"$BIN" "$@" --no-existing --format json > /dev/null 2>&1 & pid=$!
sleep 1; kill -9 $pid; { wait $pid; } 2>/dev/null || true
echo "cgroup2 mounts: $(grep -c ' - cgroup2 ' /proc/self/mountinfo || true)"
echo "left in /run/porttrace: $(ls -A /run/porttrace 2>/dev/null | wc -l)"
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", "--hooks", nstest.Hooks())
	cmd.Env = append(cmd.Environ(), "BIN="+binary)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unshare: %v\n%s", err, out)
	}
	if got := string(out); got != "cgroup2 mounts: 0\nleft in /run/porttrace: 0\n" {
		t.Errorf("after porttrace ran (and was killed) with no cgroup2 mounted:\n%s", strings.TrimSpace(got))
	}
}
