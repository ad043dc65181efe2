#!/usr/bin/env bash
# Boot Debian's Linux 6.1 under qemu (software emulation) with a small
# initramfs holding a static porttrace, and print what `porttrace doctor`
# finds there. Usage: .ci/kernel61.sh [porttrace args...] (default: doctor)
# Needs: qemu-system-x86, busybox-static; fetches the kernel with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

pkg=$(apt-cache search '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | awk '{print $1}' | sort -V | tail -1)
[ -n "$pkg" ] || { echo "no linux-image-6.1 cloud package found: run apt-get update"; exit 1; }
(cd "$work" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb kernel)
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-*)

root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run}
cp /bin/busybox "$root/bin/busybox"
for app in sh mount mkdir cat echo poweroff sleep ip sysctl uname; do ln -s busybox "$root/bin/$app"; done
# BIN=path runs another static program in porttrace's place (for probes).
if [ -n "${BIN:-}" ]; then cp "$BIN" "$root/bin/porttrace"; else
	CGO_ENABLED=0 go build -trimpath -o "$root/bin/porttrace" ./cmd/porttrace
fi
args="${*:-doctor --color never}"
cat > "$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
ip link set lo up
echo "=== porttrace $args on \$(uname -r)"
PORTTRACE_DEBUG=\${PORTTRACE_DEBUG:-} /bin/porttrace $args
echo "=== exit status \$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.gz"

timeout 300 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot \
	-kernel "$vmlinuz" -initrd "$work/initramfs.gz" \
	-append "console=ttyS0 quiet panic=-1 lockdown=none PORTTRACE_DEBUG=${PORTTRACE_DEBUG:-}" </dev/null 2>&1 | tee "$work/console.log" | tr -d '\r' | sed -n "/=== porttrace/,/=== exit status/p"
