package tracer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
)

// The verifier's words on Linux 5.10, as the issue quotes them, name the
// helper and the kernel that adds it.
func TestMissingHelper(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"unknown func bpf_sk_storage_get#107", "the helper bpf_sk_storage_get in tracing programs (Linux 5.11+)"},
		{"invalid func unknown#158", "the helper bpf_get_current_task_btf (Linux 5.11+)"},
		{"invalid func unknown#162", "the helper bpf_sock_from_file (Linux 5.11+)"},
		{"invalid func unknown#175", "the helper bpf_task_pt_regs (Linux 5.15+)"},
		{"invalid func unknown#999", "the helper unknown (#999), which this kernel does not offer to this program type"},
		{"R1 invalid mem access 'scalar'", ""},
	} {
		err := fmt.Errorf("load: %w", &ebpf.VerifierError{Cause: errors.New("invalid argument"), Log: []string{"0: (85) call", c.line}})
		if got := missingHelper(err); got != c.want {
			t.Errorf("%q: got %q, want %q", c.line, got, c.want)
		}
	}
	if got := missingHelper(errors.New("operation not permitted")); got != "" {
		t.Errorf("not a verifier error: got %q", got)
	}
}
