#!/usr/bin/env bash
# The real-kernel tests on Debian's 6.1 and Debian 11's 5.10 side by side,
# each booted under qemu by .ci/kernel61-tests.sh with every hook tier. Each
# VM runs single-threaded TCG (see .ci/vm61.sh), so two of them fill this
# machine's two cores without starving each other. Their outputs are printed
# one after the other once both are done.
# Usage: .ci/kernels.sh [go test -run regexp]
# Exit status: 0 when both kernels passed in every tier.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d /tmp/porttrace-kernels.XXXXXX)
trap 'rm -rf "$logs"' EXIT
start=$SECONDS
VM_KERNEL=6.1 bash .ci/kernel61-tests.sh "$@" >"$logs/6.1" 2>&1 &
p61=$!
VM_KERNEL=5.10 bash .ci/kernel61-tests.sh "$@" >"$logs/5.10" 2>&1 &
p510=$!
wait $p61; rc61=$?
wait $p510; rc510=$?
for k in 6.1 5.10; do
	echo "---- Linux $k"
	cat "$logs/$k"
done
echo "kernels: $((SECONDS - start)) s for both, side by side"
[ $rc61 = 0 ] && [ $rc510 = 0 ]
