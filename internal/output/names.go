package output

import (
	"net/netip"
	"strconv"
	"syscall"
)

var errnoNames = map[syscall.Errno]string{
	syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	syscall.EADDRINUSE:    "EADDRINUSE",
	syscall.EAGAIN:        "EAGAIN",
}

// ErrnoName gives the C name of the errors porttrace reports.
func ErrnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// ParseErrno is the inverse of ErrnoName.
func ParseErrno(s string) (syscall.Errno, bool) {
	for e, n := range errnoNames {
		if n == s {
			return e, true
		}
	}
	return 0, false
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
