package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/porttrace/porttrace/internal/output"
)

// ExitCode prints err as one line and turns it into the exit status. The
// message is printed as it is, not capitalised: it often starts with a file
// name, and link1 is not Link1. It is made printable, as file names and
// process names in it may come from anyone.
func ExitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, syscall.EPIPE) {
		// EPIPE: whoever read standard output (| head) has had enough;
		// porttrace stops printing, and that is no error.
		return 0
	}
	msg := output.Printable(err.Error())
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	fmt.Fprintf(stderr, "porttrace: %s\n", msg)
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	var ie *ErrInterrupted
	if errors.As(err, &ie) {
		return 128 + int(ie.Signal)
	}
	return 1
}
