#!/usr/bin/env bash
# CI: what an operator gets. Builds the release (static binary, man page,
# completions, .deb, .rpm, image), installs the .deb with dpkg and uses it from
# its installed paths, removes and purges it and checks nothing is left,
# checks the .rpm's files, and runs the image with podman the way the README
# says. As root, on this machine (it needs BPF); a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

step() { echo "== packages: $*"; }
fail() { echo "packages: FAILED: $*" >&2; exit 1; }
# Its logs and traces, in a directory of its own (mktemp: no one else's link).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "install the packaging tools"
apt-get install -y -qq --no-install-recommends podman runc rpm man-db groff-base bash-completion zsh fish python3 git make >/dev/null

step "build: make release docs packages image"
rm -rf dist
make release docs packages image >"$work/release.log" 2>&1 || { tail -30 "$work/release.log"; fail "make release docs packages image"; }
version=$(git describe --always --dirty)
bin=dist/porttrace-linux-amd64
linked=$(ldd "$bin" 2>&1 || true)
grep -q "not a dynamic executable" <<<"$linked" || fail "$bin is not static: $linked"
[ "$("$bin" --version)" = "porttrace $version" ] || fail "$bin --version says '$("$bin" --version)', git says $version"
built=$(podman image inspect --format '{{.Id}}' "localhost/porttrace:$version-amd64")
deb=$(ls dist/porttrace_*_amd64.deb)
rpm=$(ls dist/porttrace-*.x86_64.rpm)
echo "built: $bin ($version), $deb, $rpm, dist/porttrace-image-amd64.tar"

step "the man page renders without a warning"
warnings=$(groff -man -Tutf8 -ww -z dist/share/porttrace.8 2>&1)
[ -z "$warnings" ] || fail "groff warns about porttrace.8: $warnings"

# The files the .deb holds (directories of its own, and files).
pkgfiles=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}' | sort)
gone() {
	local p
	for p in $pkgfiles /var/log/porttrace /usr/share/porttrace /var/lib/dpkg/info/porttrace.list; do
		# Until purged, dpkg keeps the conffile and its record of the package.
		case "$p" in /etc/default/porttrace | /var/lib/dpkg/info/*) [ "$1" = keepconf ] && continue ;; esac
		[ ! -e "$p" ] || fail "$p is still there after $2"
	done
}
if dpkg -s porttrace >/dev/null 2>&1; then
	echo "a porttrace package is installed from before: purging it first"
	dpkg -P porttrace >/dev/null
fi

step "dpkg -i $deb"
dpkg -i "$deb"
dpkg -s porttrace | grep -q "^Status: install ok installed" || fail "dpkg -s: $(dpkg -s porttrace)"
for p in /usr/sbin/porttrace /usr/lib/systemd/system/porttrace.service /etc/default/porttrace \
	/usr/lib/systemd/system/porttrace-serve.service /usr/share/porttrace/prometheus/porttrace-rules.yml \
	/usr/share/man/man8/porttrace.8.gz /usr/share/bash-completion/completions/porttrace \
	/usr/share/zsh/vendor-completions/_porttrace /usr/share/fish/vendor_completions.d/porttrace.fish; do
	[ -f "$p" ] || fail "$p not installed"
done
[ "$(stat -c %a:%U /var/log/porttrace)" = 700:root ] || fail "/var/log/porttrace is $(stat -c %a:%U /var/log/porttrace), not 700:root"
grep -q '^ExecStart=/usr/sbin/porttrace $PORTTRACE_ARGS$' /usr/lib/systemd/system/porttrace.service || fail "the unit does not run /usr/sbin/porttrace with \$PORTTRACE_ARGS"
grep -q '^EnvironmentFile=/etc/default/porttrace$' /usr/lib/systemd/system/porttrace.service || fail "the unit reads no /etc/default/porttrace"

step "the unit's command, for 2 s: its recording is root's alone and readable"
# As systemd splits $PORTTRACE_ARGS: at white space. (No systemd runs here.)
(. /etc/default/porttrace && /usr/sbin/porttrace $PORTTRACE_ARGS -d 2s >/dev/null) || fail "porttrace with the flags of /etc/default/porttrace"
[ "$(stat -c %a /var/log/porttrace/trace.jsonl)" = 600 ] || fail "the recording's mode is $(stat -c %a /var/log/porttrace/trace.jsonl)"
/usr/sbin/porttrace report /var/log/porttrace/trace.jsonl* | head -3
rm /var/log/porttrace/trace.jsonl # so that dpkg -r can take the directory

step "the serve unit's command: metrics ready, then SIGTERM ends it with 0"
unit=/usr/lib/systemd/system/porttrace-serve.service
grep -q '^ExecStart=/usr/sbin/porttrace serve $PORTTRACE_SERVE_ARGS$' $unit || fail "$unit does not run /usr/sbin/porttrace serve with \$PORTTRACE_SERVE_ARGS"
args=$(sed -n 's/^Environment="PORTTRACE_SERVE_ARGS=\(.*\)"$/\1/p' $unit)
[ "$args" = "--listen :9477" ] || fail "$unit's default flags are '$args'"
/usr/sbin/porttrace serve $args 2>"$work/serve.err" &
serve=$!
for _ in $(seq 100); do curl -sf localhost:9477/readyz >/dev/null && break; sleep 0.1; done
curl -sf localhost:9477/metrics >"$work/metrics" || { cat "$work/serve.err"; fail "no metrics on :9477 from the unit's command"; }
grep -q '^porttrace_port_range_ports{.*netns="host"' "$work/metrics" || fail "the metrics lack the host's range: $(head -20 "$work/metrics")"
grep '^porttrace_build_info' "$work/metrics"
kill -TERM $serve
rc=0; wait $serve || rc=$?
[ $rc = 0 ] || { cat "$work/serve.err"; fail "porttrace serve exited $rc on SIGTERM"; }
promtool check rules /usr/share/porttrace/prometheus/porttrace-rules.yml || fail "the installed alert rules do not check"
python3 -m json.tool /usr/share/porttrace/grafana/porttrace-dashboard.json >/dev/null || fail "the installed dashboard is not JSON"

step "the installed porttrace doctor, as the README runs it"
[ "$(command -v porttrace)" = /usr/sbin/porttrace ] || fail "porttrace on PATH is '$(command -v porttrace)', not /usr/sbin/porttrace"
porttrace doctor --color never | tail -3

# take PORT: holds the port for 1.5 s, after the tracer has started.
take() { python3 -c 'import socket,sys,time; time.sleep(1.5); s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(1.5)' "$1"; }
seen() { # seen PORT FILE: the alloc of PORT by python3 is in the trace
	grep -q "\"event\":\"alloc\".*\"port\":$1,.*\"comm\":\"python3\"" "$2" || { cat "$2"; fail "the trace did not see port $1 taken"; }
	grep -q "\"event\":\"release\".*\"port\":$1," "$2" || { cat "$2"; fail "the trace did not see port $1 released"; }
}

step "a short trace from /usr/sbin/porttrace sees a port taken"
take 47891 &
/usr/sbin/porttrace --port 47891 -d 5s --format json >"$work/deb.jsonl"
wait
seen 47891 "$work/deb.jsonl"
grep '"port":47891' "$work/deb.jsonl" | head -1

step "man -w porttrace; the page names every command"
[ "$(man -w porttrace)" = /usr/share/man/man8/porttrace.8.gz ] || fail "man -w porttrace: $(man -w porttrace 2>&1)"
page=$(MANWIDTH=100 man porttrace 2>/dev/null)
for w in "porttrace report" "porttrace top" "porttrace doctor" "EXIT STATUS" PORTTRACE_DEBUG NO_COLOR "--rotate-keep N"; do
	grep -qF -- "$w" <<<"$page" || fail "man porttrace lacks '$w'"
done

step "bash: completion found and answering"
# bash-completion loads a command's completion on its first Tab
# (_completion_loader), so an interactive login shell asks it first.
out=$(bash -lic '_completion_loader porttrace; complete -p porttrace; COMP_WORDS=(porttrace --format ""); COMP_CWORD=2; _porttrace; echo "${COMPREPLY[*]}"' 2>/dev/null)
echo "$out"
grep -qx "complete -F _porttrace porttrace" <<<"$out" || fail "bash: complete -p porttrace: $out"
grep -qx "text json" <<<"$out" || fail "bash: porttrace --format <Tab> offered: $out"

step "zsh and fish: completions found"
out=$(zsh -c 'autoload -Uz compinit && compinit -u -D && print -r -- $_comps[porttrace]')
[ "$out" = _porttrace ] || fail "zsh does not find _porttrace: $out"
out=$(fish -c 'complete -C "porttrace report --format "' | cut -f1 | tr '\n' ' ')  # fish sorts them
[ "$out" = "html json text " ] || fail "fish: porttrace report --format <Tab> offered: $out"
out=$(fish -c 'complete -C "porttrace --ho"' | cut -f1)
[ "$out" = "--hooks" ] || fail "fish: porttrace --ho<Tab> offered: $out"

step "dpkg -r porttrace: everything goes but the conffile"
dpkg -r porttrace
gone keepconf "dpkg -r"
[ -f /etc/default/porttrace ] || fail "dpkg -r removed the conffile /etc/default/porttrace (Debian keeps it until purge)"
dpkg -s porttrace | grep -q "^Status: deinstall ok config-files" || fail "after dpkg -r: $(dpkg -s porttrace | grep Status)"
step "dpkg -P porttrace: nothing left"
dpkg -P porttrace
gone all "dpkg -P"
! dpkg -s porttrace >/dev/null 2>&1 || fail "dpkg still knows porttrace: $(dpkg -s porttrace)"
! ls /var/lib/dpkg/info/porttrace.* >/dev/null 2>&1 || fail "dpkg's records remain: $(ls /var/lib/dpkg/info/porttrace.*)"

step "rpm -qlp: the .rpm holds the .deb's files"
rpmfiles=$(rpm -qlp "$rpm" | grep -v '^/var/log/porttrace$' | sort)
want=$(sed 's#/usr/share/zsh/vendor-completions/#/usr/share/zsh/site-functions/#' <<<"$pkgfiles" | sort)
[ "$rpmfiles" = "$want" ] || fail "rpm -qlp $rpm:"$'\n'"$rpmfiles"$'\n'"the .deb:"$'\n'"$want"
rpm -qlvp "$rpm" | grep -q '^drwx------ .* root *root .* /var/log/porttrace$' || fail "the .rpm's /var/log/porttrace: $(rpm -qlvp "$rpm" | grep /var/log)"
rpm -qlvp "$rpm" | grep -q '^-rwxr-xr-x .* /usr/sbin/porttrace$' || fail "the .rpm's /usr/sbin/porttrace is not 0755"
rpm -qp --configfiles "$rpm" | grep -qx /etc/default/porttrace || fail "the .rpm does not keep /etc/default/porttrace as config"
rpm -qlp "$rpm"

step "the image: podman load, then the README's podman run lines"
export CONTAINERS_CONF=$PWD/.ci/containers.conf
podman rmi -f "$built" >/dev/null
podman load -i dist/porttrace-image-amd64.tar
loaded=$(podman image inspect --format '{{.Id}}' localhost/porttrace:latest)
# The image holds the static binary and nothing else.
img=dist/porttrace-image-amd64.tar
layers=$(tar -xOf "$img" manifest.json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)[0]["Layers"]))')
content=$(for l in $layers; do tar -xOf "$img" "$l" | tar -t; done | grep -v '/$' | sort)
[ "$content" = usr/sbin/porttrace ] || fail "the image holds: $content"
run="podman run --rm --pid=host --network=host --cgroupns=host --cap-drop=all --cap-add=BPF,PERFMON,NET_ADMIN,SYS_ADMIN,SYS_PTRACE localhost/porttrace"
grep -qF -- "sudo $run doctor" README.md || fail "README's podman line is not the one tested: $run"
$run doctor --color never | tail -2
take 47892 &
$run --port 47892 -d 5s --format json >"$work/image.jsonl"
wait
seen 47892 "$work/image.jsonl"
grep '"port":47892' "$work/image.jsonl" | head -1
podman rmi -f "$loaded" >/dev/null
echo "== packages: all passed"
