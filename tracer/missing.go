package tracer

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/cilium/ebpf"
)

// The helpers porttrace calls that some kernels lack, with the Linux
// version that offers them to the programs that call them.
var helperSince = map[int]struct{ name, since string }{
	107: {"bpf_sk_storage_get in tracing programs", "5.11"},
	125: {"bpf_skc_to_tcp_sock", "5.9"},
	128: {"bpf_skc_to_tcp_timewait_sock", "5.9"},
	126: {"bpf_seq_write", "5.9"},
	130: {"bpf_ringbuf_output", "5.8"},
	131: {"bpf_ringbuf_reserve", "5.8"},
	132: {"bpf_ringbuf_submit", "5.8"},
	134: {"bpf_ringbuf_query", "5.8"},
	158: {"bpf_get_current_task_btf", "5.11"},
	162: {"bpf_sock_from_file", "5.11"},
	175: {"bpf_task_pt_regs", "5.15"},
}

// The verifier names a helper it refuses "unknown func NAME#ID" or, where
// the kernel has no name for it, "invalid func unknown#ID".
var refusedFunc = regexp.MustCompile(`(?:unknown|invalid) func (\S+)#(\d+)`)

// missingHelper says which helper a refused load lacked, and which kernel
// adds it; "" when the refusal is not about a helper.
func missingHelper(err error) string {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return ""
	}
	for i := len(ve.Log) - 1; i >= 0; i-- {
		m := refusedFunc.FindStringSubmatch(ve.Log[i])
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(m[2])
		if h, ok := helperSince[id]; ok {
			return fmt.Sprintf("the helper %s (Linux %s+)", h.name, h.since)
		}
		return fmt.Sprintf("the helper %s (#%d), which this kernel does not offer to this program type", m[1], id)
	}
	return ""
}
