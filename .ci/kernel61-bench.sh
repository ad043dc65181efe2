#!/usr/bin/env bash
# Compare porttrace's hook tiers on Debian's Linux 6.1 (the one kernel here
# that loads all three), under qemu: the same socket loops as `make bench`,
# bare and traced in each tier, interleaved in the same rounds. Emulation
# inflates every figure; compare ratios within the run, not across runs.
# Usage: .ci/kernel61-bench.sh   (BENCHTIME=2000x ROUNDS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
bin=$(mktemp -d /tmp/porttrace-k61b.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -trimpath -o "$bin/porttrace" ./cmd/porttrace
go test -c -o "$bin/bench.test" ./internal/bench
VM_TIMEOUT=${VM_TIMEOUT:-2400} bash .ci/vm61.sh "cd internal/bench && echo \"=== Linux \$(uname -r), \$(nproc) CPUs (emulated)\" &&
	$bin/bench.test -test.run '^\$' -test.bench 'TCP|UDP|Bind|Sendto' -test.benchtime ${BENCHTIME:-2000x} -test.timeout 40m \
	-porttrace $bin/porttrace -rounds ${ROUNDS:-5} -tiers 'precise kprobe portable'"
