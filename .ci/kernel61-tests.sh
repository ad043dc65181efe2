#!/usr/bin/env bash
# Run porttrace's real-kernel tests on a second kernel, Debian's Linux 6.1,
# booted under qemu by .ci/vm61.sh with this host's root filesystem: the
# tracer tests and the end-to-end tests, once per hook tier (TIERS, default
# "precise kprobe portable"; all three load there), each tier in its own VM,
# side by side. The test binaries and porttrace are built here first: nothing
# is compiled under emulation.
# Usage: .ci/kernel61-tests.sh [go test -run regexp]
# Exit status: 0 when every test passed (or skipped, saying why) in every tier.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
run=${1:-.}
tiers=${TIERS:-precise kprobe portable}

bin=$(mktemp -d /tmp/porttrace-k61.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -trimpath -o "$bin/porttrace" ./cmd/porttrace
go test -c -o "$bin/tracer.test" ./tracer
go test -c -o "$bin/e2e.test" ./cmd/porttrace

# Each tier boots its own VM, all at once: tiers sharing one kernel would
# see each other's sockets. Each suite prints a verdict line the host checks,
# so one suite's failure cannot hide behind another's success. Under
# emulation programs start seconds late: PORTTRACE_TEST_TIMESCALE stretches
# the few durations the tests give porttrace.
env="PORTTRACE_TEST_TIMESCALE=4 PORTTRACE_BIN=$bin/porttrace"
start=$(date +%s)
for tier in $tiers; do
	script="echo \"=== $tier tier on \$(uname -r)\""
	for suite in tracer e2e; do
		dir=tracer
		[ $suite = e2e ] && dir=cmd/porttrace
		script+="
(cd $dir && $env PORTTRACE_HOOKS=$tier $bin/$suite.test -test.run '$run' -test.v > /tmp/out 2>&1); rc=\$?
echo \"=== $suite tests, $tier tier\"
grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS)|_test.go:' /tmp/out || true
echo \"=== verdict $suite $tier \$rc\""
	done
	bash .ci/vm61.sh "$script" > "$bin/vm-$tier.log" 2>&1 &
done
wait

failed=0
for tier in $tiers; do
	cat "$bin/vm-$tier.log"
	for suite in tracer e2e; do
		if grep -q "^=== verdict $suite $tier 0$" "$bin/vm-$tier.log"; then
			echo "kernel61: $suite tests in the $tier tier passed"
		else
			echo "kernel61: FAIL: $suite tests in the $tier tier"
			failed=1
		fi
	done
done
echo "kernel61: $(($(date +%s) - start)) s for the VMs"
exit $failed
