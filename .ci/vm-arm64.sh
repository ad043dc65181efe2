#!/usr/bin/env bash
# porttrace on arm64: Debian's arm64 Linux 6.1 cloud kernel booted under
# qemu-system-aarch64 (software emulation), its root an initramfs holding
# arm64 static binaries only (the host's x86-64 root cannot serve it):
# busybox (Debian's busybox-static:arm64), porttrace (GOARCH=arm64) and
# internal/portcheck, a workload that compares the ports porttrace reports
# with its own getsockname(). Runs `porttrace doctor`, then portcheck in
# each tier of TIERS: by default the two that arm64's 6.1 loads, kprobe and
# portable (fexit on kernel functions needs ftrace direct calls, which arm64
# has from 6.4: doctor shows the precise hooks refused).
# Usage: .ci/vm-arm64.sh   (root; qemu-system-arm, apt-get, dpkg-deb)
# Exit status: 0 when doctor found a tier and every tier's check passed.
# Environment: VM_TIMEOUT=900 seconds; VM_ACCEL=tcg,thread=single (qemu
#   -accel); VMARM64_CACHE=dir (default
#   /var/cache/porttrace-vmarm64): the kernel and busybox packages, fetched
#   once through a private apt list for arm64 (the host's apt is untouched).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
tiers=${TIERS:-kprobe portable}
cache=${VMARM64_CACHE:-${XDG_CACHE_HOME:-/var/cache}/porttrace-vmarm64}
say() { echo "vm-arm64: $*" >&2; }
for t in qemu-system-aarch64 apt-get dpkg-deb busybox go; do
	command -v "$t" >/dev/null || { say "needs $t (apt-get install qemu-system-arm busybox-static)"; exit 2; }
done
start=$SECONDS

# --- the arm64 kernel and busybox, from the mirror the host's apt uses -------
mirror=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 -E '/debian/?$' || true)
mirror=${mirror:-http://deb.debian.org/debian/}
mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache"
echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bookworm main" >"$cache/apt/sources.list"
apt_opts=(-o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache"
	-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Get::List-Cleanup=0)
find_pkg() { apt-cache "${apt_opts[@]}" search '^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$' 2>/dev/null | awk '{print $1}' | sort -V | tail -1; }
pkg=$(find_pkg)
if [ -z "$pkg" ]; then apt-get "${apt_opts[@]}" update >/dev/null 2>&1 || true; pkg=$(find_pkg); fi
[ -n "$pkg" ] || { say "no linux-image-6.1.0-*-cloud-arm64-unsigned package found"; exit 2; }
kdir=$cache/$pkg
if [ ! -f "$kdir/ok" ]; then
	dl=$(mktemp -d "$cache/.dl.XXXXXX")
	(cd "$dl" && apt-get "${apt_opts[@]}" download "$pkg" busybox-static >/dev/null 2>&1 &&
		for d in ./*.deb; do dpkg-deb -x "$d" x; done) || { rm -rf "$dl"; say "could not download $pkg and busybox-static:arm64"; exit 2; }
	mkdir -p "$dl/out"
	cp "$dl"/x/boot/vmlinuz-* "$dl/out/vmlinuz"
	cp "$dl"/x/bin/busybox "$dl/out/busybox"
	touch "$dl/out/ok"
	rm -rf "$kdir"; mv "$dl/out" "$kdir"; rm -rf "$dl"
	for old in "$cache"/linux-image-*; do [ "$old" = "$kdir" ] || rm -rf "$old"; done
fi

# --- initramfs: arm64 binaries only -------------------------------------------
work=$(mktemp -d /tmp/vm-arm64.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,run}
cp "$kdir/busybox" "$root/bin/busybox"
for app in sh mount mkdir cat echo ip sleep date grep; do ln -s busybox "$root/bin/$app"; done
CGO_ENABLED=0 GOARCH=arm64 go build -trimpath -o "$root/bin/porttrace" ./cmd/porttrace
CGO_ENABLED=0 GOARCH=arm64 go build -trimpath -o "$root/bin/portcheck" ./internal/portcheck
nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
cat >"$root/init" <<EOS
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
echo 1 >/proc/sys/kernel/printk
ip link set lo up
echo "=== arm64 begin $nonce"
t0=\$(date +%s)
porttrace doctor --color never; echo "=== verdict doctor \$?"
echo "=== doctor: \$((\$(date +%s) - t0)) s"
for tier in $tiers; do
	t0=\$(date +%s)
	portcheck /bin/porttrace \$tier; echo "=== verdict \$tier \$?"
	echo "=== \$tier tier: \$((\$(date +%s) - t0)) s"
done
echo "=== arm64 end $nonce"
echo o >/proc/sysrq-trigger
while :; do sleep 60; done
EOS
chmod +x "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.gz"

# --- boot ---------------------------------------------------------------------
# Single-threaded TCG: with one host thread per vCPU a guest patching its own
# code (a kprobe attached) hung in qemu on x86-64 (docs/kernels.md).
log=$work/console.log
set +e
timeout --foreground -k 10 "${VM_TIMEOUT:-900}" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on \
	-accel "${VM_ACCEL:-tcg,thread=single}" -m 2048 -smp 2 -nographic -no-reboot -nic none \
	-kernel "$kdir/vmlinuz" -initrd "$work/initramfs.gz" \
	-append "console=ttyAMA0 quiet panic=-1 lockdown=none" </dev/null >"$log" 2>&1
qrc=$?
set -e
tr -d '\r' <"$log" | sed -n "/=== arm64 begin $nonce/,/=== arm64 end $nonce/p" | grep -v "=== arm64 "
echo "vm-arm64: kernel $pkg (arm64, emulated): $((SECONDS - start)) s in all"
failed=0
grep -q "^=== verdict doctor 0" <(tr -d '\r' <"$log") || { echo "vm-arm64: FAIL: doctor"; failed=1; }
for tier in $tiers; do
	if grep -q "^=== verdict $tier 0" <(tr -d '\r' <"$log"); then
		echo "vm-arm64: $tier tier passed"
	else
		echo "vm-arm64: FAIL: $tier tier"; failed=1
	fi
done
if ! grep -q "=== arm64 end $nonce" "$log"; then
	say "the VM did not finish (qemu status $qrc); console tail:"; tr -d '\r' <"$log" | tail -n 30 >&2
	failed=1
fi
exit $failed
