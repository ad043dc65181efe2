package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// An error message keeps a file name as it is (link1, not Link1) and shows
// a hostile one escaped.
func TestExitCodeMessage(t *testing.T) {
	var b strings.Builder
	if code := ExitCode(errors.New("link1 already exists: choose another file"), &b); code != 1 {
		t.Errorf("exit %d", code)
	}
	if got := b.String(); got != "porttrace: link1 already exists: choose another file.\n" {
		t.Errorf("got %q", got)
	}
	b.Reset()
	ExitCode(fmt.Errorf("open recording: open %s: no such file or directory", "/tmp/\x1b[2J\nx"), &b)
	if got := b.String(); got != "porttrace: open recording: open /tmp/\\x1b[2J\\nx: no such file or directory.\n" {
		t.Errorf("got %q", got)
	}
}
