#!/usr/bin/env bash
# On Debian's Linux 6.1 (under qemu), porttrace cannot load its hooks yet:
# it must say so in a sentence and exit 1 — never crash — and doctor must
# name what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(bash .ci/kernel61.sh doctor --color never)
echo "$out"
grep -q "=== exit status 1" <<<"$out" || { echo "FAIL: doctor on 6.1 did not exit 1"; exit 1; }
grep -q "MISSING" <<<"$out" || { echo "FAIL: doctor on 6.1 names nothing missing"; exit 1; }
out=$(bash .ci/kernel61.sh -d 1s --format json)
echo "$out"
grep -q "=== exit status 1" <<<"$out" || { echo "FAIL: porttrace on 6.1 did not exit 1"; exit 1; }
grep -q "Linux 6.5 or later" <<<"$out" || { echo "FAIL: porttrace on 6.1 does not say which kernel it needs"; exit 1; }
if grep -q "internal error" <<<"$out"; then echo "FAIL: porttrace crashed on 6.1"; exit 1; fi
echo "kernel61: 2 passed, 0 failed"
