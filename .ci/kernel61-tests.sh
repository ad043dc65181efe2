#!/usr/bin/env bash
# Run porttrace's real-kernel tests on a second kernel, Debian's Linux 6.1
# (or, with VM_KERNEL=5.10, Debian 11's 5.10), booted under qemu by
# .ci/vm61.sh with this host's root filesystem: the tracer tests and the
# end-to-end tests, once per hook tier (TIERS, default "precise kprobe
# portable"; all three load on both). The test binaries and porttrace are
# built here first: nothing is compiled under emulation.
# Usage: [VM_KERNEL=5.10] .ci/kernel61-tests.sh [go test -run regexp]
# Exit status: 0 when every test passed (or skipped, saying why) in every tier.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
run=${1:-.}
tiers=${TIERS:-precise kprobe portable}
name=kernel${VM_KERNEL:-6.1}
name=${name//./}

bin=$(mktemp -d /tmp/porttrace-k61.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -trimpath -o "$bin/porttrace" ./cmd/porttrace
go test -c -o "$bin/tracer.test" ./tracer
go test -c -o "$bin/e2e.test" ./cmd/porttrace

# One boot runs the tiers one after another: tiers sharing a kernel at once
# would see each other's sockets, and VMs side by side on two cores starve
# the tests' timing. Each suite prints a verdict line the host checks, so one
# suite's failure cannot hide behind another's success. Under emulation
# programs start seconds late: PORTTRACE_TEST_TIMESCALE stretches the
# durations and slacks the tests allow.
env="PORTTRACE_TEST_TIMESCALE=4 PORTTRACE_BIN=$bin/porttrace"
script="echo \"=== Linux \$(uname -r)\"; $bin/porttrace doctor --color never | grep -E '^(hook |tracing|syscall|socket of|BPF atomics)'"
for tier in $tiers; do
	for suite in tracer e2e; do
		dir=tracer
		[ $suite = e2e ] && dir=cmd/porttrace
		script+="
t0=\$(date +%s)
(cd $dir && $env PORTTRACE_HOOKS=$tier $bin/$suite.test -test.run '$run' -test.v > /tmp/out 2>&1); rc=\$?
echo \"=== $suite tests, $tier tier: \$((\$(date +%s) - t0)) s\"
grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS)|_test.go:' /tmp/out || true
echo \"=== verdict $suite $tier \$rc\""
	done
done

start=$(date +%s)
out=$(VM_KERNEL=${VM_KERNEL:-6.1} VM_TIMEOUT=${VM_TIMEOUT:-2100} bash .ci/vm61.sh "$script" 2>&1) || true
echo "$out"

failed=0
for tier in $tiers; do
	for suite in tracer e2e; do
		if grep -q "^=== verdict $suite $tier 0$" <<<"$out"; then
			echo "$name: $suite tests in the $tier tier passed"
		else
			echo "$name: FAIL: $suite tests in the $tier tier"
			failed=1
		fi
	done
done
echo "$name: $(($(date +%s) - start)) s in the VM"
exit $failed
