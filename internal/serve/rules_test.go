package serve

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// deployDir is deploy/prometheus of this repository.
func deployDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "prometheus")
}

// The alerting rules' own unit tests, run by Prometheus's promtool.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: install Debian's prometheus package (apt-get install prometheus), as .ci/run does")
	}
	cmd := exec.Command(promtool, "test", "rules", "porttrace-rules.test.yml")
	cmd.Dir = deployDir()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
