package main_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/porttrace/porttrace/internal/nstest"
)

// doctor attaches every hook for real: on the machine the tests run on,
// porttrace works (the other tests prove it), so doctor must say so, name
// the tier porttrace picks, and every hook of it as attached.
func TestDoctorOnThisHost(t *testing.T) {
	nstest.RequireRoot(t)
	out, errs, code := runBin(t, "doctor", "--color", "never")
	if code != 0 {
		t.Fatalf("doctor: exit %d\n%s%s", code, out, errs)
	}
	jsonOut, errs, code := runBin(t, "--hooks", "auto", "--format", "json", "--no-existing", "-d", "300ms")
	if code != 0 {
		t.Fatalf("porttrace: exit %d: %s", code, errs)
	}
	var start struct {
		Tier  string   `json:"tier"`
		Hooks []string `json:"hooks"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(jsonOut, "\n", 2)[0]), &start); err != nil || start.Tier == "" {
		t.Fatalf("start event %q: %v", jsonOut, err)
	}
	if f := strings.Fields(lineWith(out, "hook tier")); len(f) < 4 || f[2] != "ok" || f[3] != start.Tier {
		t.Errorf("doctor names tier %q; porttrace picked %s", f, start.Tier)
	}
	for _, hook := range append(start.Hooks, "iter/task_file", "iter/tcp", "iter/udp") {
		line := lineWith(out, "hook "+hook)
		if f := strings.Fields(line); len(f) < 3 || f[2] != "ok" {
			t.Errorf("doctor line for %s: %q", hook, line)
		}
	}
	for _, c := range []string{"privileges", "BTF", "ring buffer", "socket storage", "lockdown", "hook fexit/inet_csk_get_port",
		"hook tp_btf/sock_send_length", "hook kprobe/inet_csk_get_port"} {
		if lineWith(out, c) == "" {
			t.Errorf("doctor does not check %s:\n%s", c, out)
		}
	}
	if !strings.Contains(out, "porttrace can trace on this host, with its "+start.Tier+" hooks.") {
		t.Errorf("no verdict:\n%s", out)
	}
}

func TestDoctorWithoutPrivileges(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", binary, "doctor", "--color", "never")
	b, err := cmd.CombinedOutput()
	out := string(b)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("as nobody: %v, want exit 1\n%s", err, out)
	}
	if l := lineWith(out, "privileges"); !strings.Contains(l, "MISSING") || !strings.Contains(l, "sudo") {
		t.Errorf("privileges line: %q", l)
	}
	noStackTrace(t, out)
}

func lineWith(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// A forced tier either runs and says so in its start event, or is refused
// in a sentence naming what the kernel lacks: never a silent fallback.
func TestForcedTier(t *testing.T) {
	nstest.RequireRoot(t)
	for _, tier := range []string{"precise", "kprobe", "portable"} {
		cmd := exec.Command(binary, "--hooks", tier, "--format", "json", "--no-existing", "-d", "300ms")
		var out, errs strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errs
		err := cmd.Run()
		noStackTrace(t, errs.String())
		if err != nil {
			if !strings.Contains(errs.String(), tier+" hooks refused: ") && !strings.Contains(errs.String(), strings.ToUpper(tier[:1])+tier[1:]+" hooks refused: ") ||
				!strings.Contains(errs.String(), "without --hooks "+tier) {
				t.Errorf("--hooks %s refused without saying why: %v: %s", tier, err, errs.String())
			}
			continue
		}
		var start struct {
			Tier       string `json:"tier"`
			TierReason string `json:"tier_reason"`
		}
		json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &start)
		// precise may fall back to kprobe, and says which refused it.
		if start.Tier != tier && !(tier == "precise" && start.Tier == "kprobe" && strings.Contains(start.TierReason, "precise hooks refused")) {
			t.Errorf("--hooks %s ran the %q hooks (%s)", tier, start.Tier, start.TierReason)
		}
	}
}
