package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ExitCode prints err as one line and turns it into the exit status.
func ExitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	msg := err.Error()
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	fmt.Fprintf(stderr, "porttrace: %s\n", msg)
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
