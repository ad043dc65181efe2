#!/bin/sh
# Before the package goes (dpkg prerm "remove", rpm %preun 0; not on an
# upgrade): stop the recorder and the metrics server, and leave no
# enablement link behind.
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now porttrace.service porttrace-serve.service
	elif command -v systemctl; then
		systemctl disable porttrace.service porttrace-serve.service
	fi >/dev/null 2>&1
	;;
esac
exit 0
