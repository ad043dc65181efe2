#!/usr/bin/env bash
# Run porttrace's real-kernel tests on a second kernel, Debian's Linux 6.1,
# booted under qemu by .ci/vm61.sh with this host's root filesystem: once per
# hook tier (TIERS, default "precise portable"). The test binaries and
# porttrace are built here first; nothing is compiled inside the emulator.
# Usage: .ci/kernel61-tests.sh [go test -run regexp]
# Exit status: 0 when every test passed (or skipped, saying why) in every tier.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
run=${1:-.}
tiers=${TIERS:-precise portable}

bin=$(mktemp -d /tmp/porttrace-k61.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -trimpath -o "$bin/porttrace" ./cmd/porttrace
go test -c -o "$bin/tracer.test" ./tracer
go test -c -o "$bin/e2e.test" ./cmd/porttrace

# One boot runs every tier; each prints a verdict line the host checks, so a
# test binary's failure cannot hide behind a later success.
script=""
for tier in $tiers; do
	script+="
echo \"=== tier $tier: tracer tests on \$(uname -r)\"
(cd tracer && PORTTRACE_TEST_TIMESCALE=4 PORTTRACE_HOOKS=$tier $bin/tracer.test -test.run '$run' -test.v 2>&1) > $bin/out-tracer-$tier 2>&1; echo \"=== verdict tracer $tier \$?\"
grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS)|_test.go:' $bin/out-tracer-$tier || true
echo \"=== tier $tier: end-to-end tests\"
(cd cmd/porttrace && PORTTRACE_TEST_TIMESCALE=4 PORTTRACE_HOOKS=$tier PORTTRACE_BIN=$bin/porttrace $bin/e2e.test -test.run '$run' -test.v 2>&1) > $bin/out-e2e-$tier 2>&1; echo \"=== verdict e2e $tier \$?\"
grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS)|_test.go:' $bin/out-e2e-$tier || true
"
done
out=$(bash .ci/vm61.sh "$script" 2>&1) || true
echo "$out"

failed=0
for tier in $tiers; do
	for suite in tracer e2e; do
		if grep -q "^=== verdict $suite $tier 0$" <<<"$out"; then
			echo "kernel61: $suite tests in the $tier tier passed"
		else
			echo "kernel61: FAIL: $suite tests in the $tier tier"
			failed=1
		fi
	done
done
exit $failed
