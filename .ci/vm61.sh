#!/usr/bin/env bash
# Run one shell command inside Debian's Linux 6.1 (the same cloud kernel as
# .ci/kernel61.sh) under qemu, with the HOST's whole filesystem as the VM's
# root, so the command can use the host's python3, iproute2, curl, nc, go...
#
# Usage:
#   .ci/vm61.sh 'command string'
#     Runs `/bin/sh -c 'command string'` in the VM as root, cwd = this repo
#     (same absolute path as on the host), stdin = /dev/null. Prints the
#     command's stdout+stderr (serial console, \r stripped, streamed) and exits
#     with the command's exit status. Exits non-zero if the command failed,
#     the VM panicked or did not report back (exit 1; if the command never
#     started, the console tail is printed to stderr), or VM_TIMEOUT hit
#     (exit 124). Bad usage / missing tools: exit 2.
#   Example (test binaries: build on the host, run in the VM):
#     CGO_ENABLED=0 go test -c -o /tmp/vmtest/output.test ./internal/output
#     .ci/vm61.sh '/tmp/vmtest/output.test -test.v 2>&1 | tail -5'
#   Compiling inside the VM works too (the host's GOCACHE and module cache are
#   visible) but is slow under emulation: `go test ./internal/output` ~55 s vs
#   ~10 s for the prebuilt binary.
#
# Environment:
#   VM_TIMEOUT=900    seconds for the whole run (boot included)
#   VM_MEM=4096       guest memory, MiB (the writable layer is RAM, see below)
#   VM_SMP=2          guest CPUs
#   VM_ACCEL=tcg,thread=single   qemu -accel (see "Single-threaded TCG" below)
#   VM_ENV="A B"      names of host variables to pass into the command's
#                     environment (PATH is always passed; HOME=/root)
#   VM_VERBOSE=1      print timings (boot-to-command, total) to stderr
#   VM61_CACHE=dir    kernel cache (default ${XDG_CACHE_HOME:-/var/cache}/porttrace-vm61,
#                     porttrace-vm510 for 5.10)
#   VM_KERNEL=6.1     the kernel: 6.1 (bookworm, the host's apt sources) or
#                     5.10 (Debian 11's, from the bullseye suite of the same
#                     mirror: a private apt list in the cache, used only to
#                     download that package; the host's apt is untouched)
#   VIRTIOFSD=path    virtiofsd to use;  KEEP=1  keep the temp dir (console.log)
#
# Filesystem inside the VM:
#   /      = overlay: lower = the host's / (shared read-only with virtiofs),
#            upper = tmpfs in guest RAM. Everything is visible AND writable,
#            but writes stay in the VM and vanish when it exits; the host is
#            never modified (virtiofsd only sees a read-only bind of /).
#            Host files are cached by the guest: do not change them while a
#            run is in progress.
#   fresh mounts: proc, sysfs, devtmpfs (+devpts, /dev/shm), tmpfs /run
#            (so `ip netns add` works), cgroup2 /sys/fs/cgroup, bpffs
#            /sys/fs/bpf, tracefs /sys/kernel/tracing, debugfs
#            /sys/kernel/debug. /tmp is NOT a fresh tmpfs: it is the host's
#            /tmp (via the overlay), so put test binaries anywhere on the host,
#            e.g. /tmp/vmtest/x.test, then run `.ci/vm61.sh /tmp/vmtest/x.test`.
#            Results the host must keep: print them (stdout), the VM's
#            writes are lost.
#   Only lo is up; there is no other network.
#
# Needs: root, qemu-system-x86 (qemu-system-x86_64), busybox-static, a
#   virtiofsd (/usr/lib/qemu/virtiofsd from qemu <= 7.2, or the `virtiofsd`
#   package: /usr/libexec/virtiofsd), unshare/mount/findmnt (util-linux),
#   apt-get + dpkg-deb to fetch the kernel (cached after the first run).
#   No KVM needed (software emulation, -accel tcg). Cost: ~3-5 s from power-on
#   to the command, ~7-11 s in all for a short command (+~8 s on the first
#   run, which downloads the kernel).
#
# Why virtiofs and not 9p: Debian's cloud kernel is built without 9p
#   (CONFIG_NET_9P is not set), but has virtiofs, fuse, overlay, virtio_pci as
#   modules; those are loaded from the initramfs.
set -euo pipefail

[ $# -eq 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
command_string=$1
repo=$(cd "$(dirname "$0")/.." && pwd -P)
timeout_s=${VM_TIMEOUT:-900}
mem=${VM_MEM:-4096}
smp=${VM_SMP:-2}
# Single-threaded TCG: with a host thread per vCPU, a guest patching its own
# code (a kprobe or tracepoint attached) hung, one vCPU looping on a stale
# int3 (docs/kernels.md). Two VMs side by side use two host cores.
accel=${VM_ACCEL:-tcg,thread=single}
kver=${VM_KERNEL:-6.1}
case $kver in
6.1) cache=${VM61_CACHE:-${XDG_CACHE_HOME:-/var/cache}/porttrace-vm61} ;;
5.10) cache=${VM61_CACHE:-${XDG_CACHE_HOME:-/var/cache}/porttrace-vm510} ;;
*) echo "vm61: VM_KERNEL must be 6.1 or 5.10" >&2; exit 2 ;;
esac
say() { echo "vm61: $*" >&2; }
start=$SECONDS

for t in qemu-system-x86_64 busybox unshare findmnt apt-get dpkg-deb; do
	command -v "$t" >/dev/null || { say "needs $t"; exit 2; }
done
[ "$(id -u)" = 0 ] || { say "must run as root (virtiofsd, mount namespace)"; exit 2; }
if [ -x "${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}" ]; then
	virtiofsd=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
elif [ -x /usr/libexec/virtiofsd ]; then
	virtiofsd=/usr/libexec/virtiofsd
else
	say "needs virtiofsd (qemu-system-common <= 7.2, or: apt-get install virtiofsd)"; exit 2
fi

work=$(mktemp -d /tmp/vm61.XXXXXX)
vfs_pid=
cleanup() {
	if [ -n "$vfs_pid" ]; then kill "$vfs_pid" 2>/dev/null || true; wait "$vfs_pid" 2>/dev/null || true; fi
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- kernel + the modules we need, cached per package version ---------------
apt_opts=()
if [ "$kver" = 5.10 ]; then
	# bullseye next to the host's suite, in a private list: the mirror the
	# host's apt uses, read from its sources, so no other host is asked.
	mirror=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 -E '/debian/?$' || true)
	mirror=${mirror:-http://deb.debian.org/debian/}
	mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} bullseye main" >"$cache/apt/sources.list"
	apt_opts=(-o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache" -o APT::Get::List-Cleanup=0)
fi
kpat="^linux-image-${kver//./\\.}\.0-[0-9]+-cloud-amd64-unsigned\$"
find_pkg() { apt-cache "${apt_opts[@]}" search "$kpat" 2>/dev/null | awk '{print $1}' | sort -V | tail -1; }
pkg=$(find_pkg)
if [ -z "$pkg" ]; then apt-get "${apt_opts[@]}" update >/dev/null 2>&1 || true; pkg=$(find_pkg); fi
[ -n "$pkg" ] || { say "no linux-image-$kver.0-*-cloud-amd64-unsigned package found (apt-get update?)"; exit 2; }
kdir=$cache/$pkg
modules="virtio_pci fuse virtiofs overlay" # wanted; dependencies are added
if [ ! -f "$kdir/ok" ]; then
	mkdir -p "$cache"
	dl=$(mktemp -d "$cache/.dl.XXXXXX")
	(cd "$dl" && apt-get "${apt_opts[@]}" download "$pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb x) ||
		{ rm -rf "$dl"; say "could not download $pkg"; exit 2; }
	mkdir -p "$dl/out/modules"
	cp "$dl"/x/boot/vmlinuz-* "$dl/out/vmlinuz"
	modfile() { find "$dl/x/lib/modules" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -1; }
	order=
	add() { # post-order: dependencies first
		local m=${1//-/_} f deps d
		case " $order " in *" $m "*) return;; esac
		f=$(modfile "$m"); [ -n "$f" ] || f=$(modfile "${m//_/-}")
		[ -n "$f" ] || { say "module $m not in $pkg (built in?)"; return; }
		case $f in
		*.xz) xz -dc "$f" ;; *.zst) zstd -dc "$f" ;; *.gz) gzip -dc "$f" ;; *) cat "$f" ;;
		esac >"$dl/out/modules/$m.ko"
		deps=$(tr '\0' '\n' <"$dl/out/modules/$m.ko" | sed -n 's/^depends=//p' | head -1 | tr ',' ' ')
		for d in $deps; do add "$d"; done
		order="$order $m"
	}
	for m in $modules; do add "$m"; done
	echo "$order" >"$dl/out/order"
	touch "$dl/out/ok"
	rm -rf "$kdir"; mv "$dl/out" "$kdir"; rm -rf "$dl"
	# keep only this version
	for old in "$cache"/linux-image-*; do [ "$old" = "$kdir" ] || rm -rf "$old"; done
fi

# --- initramfs ----------------------------------------------------------------
nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
root=$work/initramfs
mkdir -p "$root"/{bin,proc,sys,dev,lower,upper,newroot,vm61,modules}
cp "$(command -v busybox)" "$root/bin/busybox"
for app in sh mount mkdir cat cp echo insmod switch_root ip sleep; do ln -s busybox "$root/bin/$app"; done
cp "$kdir"/modules/*.ko "$root/modules/"
printf '%s' "$command_string" >"$root/vm61/cmd"
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
	path=
	for d in /usr/local/go/bin ${PATH//:/ } /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
		case ":$path:" in *":$d:"*) ;; *) path=${path:+$path:}$d ;; esac
	done
	echo "export PATH=$(sq "$path")"
	echo "export HOME=/root USER=root LOGNAME=root TERM=dumb"
	for v in ${VM_ENV:-}; do [ -z "${!v+x}" ] || echo "export $v=$(sq "${!v}")"; done
	echo "cd $(sq "$repo") || exit 1"
} >"$root/vm61/env"
cat >"$root/vm61/stage2" <<EOF
#!/bin/sh
# PID 1 on the overlay root: run the command, report its status, power off.
read up _ </proc/uptime
echo "=== vm61 begin $nonce \$up"
( . /run/vm61/env && exec /bin/sh -c "\$(cat /run/vm61/cmd)" ) </dev/null
rc=\$?
echo "=== vm61 exit $nonce \$rc"
# wait until the console has sent everything (tcsetattr TCSADRAIN): the
# kernel's "sysrq: Power Off" must not overtake the command's output
stty "\$(stty -g)" 2>/dev/null || sleep 1
echo o >/proc/sysrq-trigger
while :; do sleep 60; done
EOF
cat >"$root/init" <<EOF
#!/bin/sh
fail() { echo "=== vm61 setup failed: \$*"; echo o >/proc/sysrq-trigger; while :; do sleep 60; done; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 >/proc/sys/kernel/printk
for m in \$(cat /vm61/order); do insmod /modules/\$m.ko || fail "insmod \$m"; done
mount -t virtiofs -o ro hostroot /lower || fail "mount virtiofs"
mount -t tmpfs -o mode=755 upper /upper && mkdir /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "mount overlay"
n=/newroot
mount -t proc proc \$n/proc
mount -t sysfs sys \$n/sys
mount -t devtmpfs dev \$n/dev
mkdir -p \$n/dev/pts \$n/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts \$n/dev/pts
mount -t tmpfs -o mode=1777 shm \$n/dev/shm
mount -t tmpfs -o mode=755 run \$n/run
mount -t cgroup2 cgroup2 \$n/sys/fs/cgroup || fail "mount cgroup2"
mount -t bpf bpf \$n/sys/fs/bpf || fail "mount bpffs"
mount -t tracefs tracefs \$n/sys/kernel/tracing || fail "mount tracefs"
mount -t debugfs debugfs \$n/sys/kernel/debug || fail "mount debugfs"
mkdir -p \$n/run/vm61 && cp /vm61/* \$n/run/vm61/ || fail "copy to /run/vm61"
ip link set lo up
exec switch_root \$n /bin/sh /run/vm61/stage2
EOF
cp "$kdir/order" "$root/vm61/order"
chmod +x "$root/init" "$root/vm61/stage2"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.gz"

# --- virtiofsd on a read-only copy of the host's mount tree --------------------
# It runs in a private mount namespace where / is bind-mounted (recursively)
# at $work/root and every mount under it is made read-only; the host's own
# mounts are untouched. /proc, /sys, /dev are dropped (the VM mounts its own).
sock=$work/vfs.sock
mkdir "$work/root"
if "$virtiofsd" --help 2>&1 | grep -q -- --shared-dir; then # the Rust virtiofsd
	vfs_args="--socket-path=$sock --shared-dir=$work/root --cache=always --sandbox=namespace"
else
	vfs_args="--socket-path=$sock -o source=$work/root -o cache=always -o sandbox=namespace"
fi
# shellcheck disable=SC2016
unshare -m --propagation private sh -c '
	set -e; r=$1; shift
	mount --rbind / "$r"
	for d in proc sys dev; do umount -R -l "$r/$d" 2>/dev/null || true; done
	findmnt -R -n -l -o TARGET "$r" | while IFS= read -r m; do
		mount -o remount,bind,ro "$(printf "%b" "$m")"
	done
	exec "$@"' vm61-vfs "$work/root" "$virtiofsd" $vfs_args >"$work/virtiofsd.log" 2>&1 &
vfs_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; kill -0 "$vfs_pid" 2>/dev/null || break; sleep 0.1; done
[ -S "$sock" ] || { say "virtiofsd did not start:"; cat "$work/virtiofsd.log" >&2; exit 2; }

# --- boot ---------------------------------------------------------------------
log=$work/console.log
set +e
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 -accel "$accel" -m "$mem" -smp "$smp" \
	-nographic -no-reboot -nic none \
	-object memory-backend-memfd,id=mem,size="${mem}M",share=on -numa node,memdev=mem \
	-chardev socket,id=vfs,path="$sock" -device vhost-user-fs-pci,chardev=vfs,tag=hostroot \
	-kernel "$kdir/vmlinuz" -initrd "$work/initramfs.gz" \
	-append "console=ttyS0 quiet panic=-1 lockdown=none" </dev/null 2>&1 |
	tee "$log" | {
		on=0
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line//$'\r'/}
			case $line in
			*"=== vm61 begin $nonce "*) on=1 ;;
			*"=== vm61 exit $nonce "*) # the command's output may lack a final newline
				line=${line%%"=== vm61 exit $nonce "*}
				[ $on = 0 ] || [ -z "$line" ] || printf '%s\n' "$line"
				on=0 ;;
			*"] sysrq: Power Off") ;; # printk may overtake the tty; see stage2
			*) [ $on = 0 ] || printf '%s\n' "$line" ;;
			esac
		done
	}
qrc=${PIPESTATUS[0]}
set -e
total=$((SECONDS - start))

# console log without \r and terminal escapes (SeaBIOS clears the screen)
tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' >"$log.txt"
begin=$(sed -n "s/.*=== vm61 begin $nonce \([0-9.]*\).*/\1/p" "$log.txt" | head -1)
rc=$(sed -n "s/.*=== vm61 exit $nonce \([0-9]*\).*/\1/p" "$log.txt" | head -1)
[ -z "${VM_VERBOSE:-}" ] || say "kernel $pkg; command started ${begin:-?}s after boot (guest uptime); total ${total}s"
if [ -n "$rc" ]; then exit "$rc"; fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	say "timed out after ${timeout_s}s (VM_TIMEOUT)"; rc=124
elif grep -q "Kernel panic" "$log.txt"; then
	say "kernel panic"; rc=1
else
	say "the VM stopped without reporting an exit status (qemu status $qrc)"; rc=1
fi
if [ -z "$begin" ]; then # the command never started: show why
	say "console tail:"; tail -n 40 "$log.txt" >&2
	say "virtiofsd log tail:"; tail -n 10 "$work/virtiofsd.log" >&2
fi
exit "$rc"
