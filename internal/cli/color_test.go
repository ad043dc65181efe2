package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fatih/color"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

func TestColorOnlyWhereAsked(t *testing.T) {
	defer func(v bool) { color.NoColor = v }(color.NoColor)
	e := tracer.Event{Kind: tracer.KindFail, Time: time.Unix(0, 0), Proto: tracer.TCP, Family: tracer.IPv4, Errno: 99}
	line := func() string { return output.NewText().Line(&e) }

	setColor("always", &bytes.Buffer{})
	if !strings.Contains(line(), "\x1b[") {
		t.Error("--color always: no colour")
	}
	setColor("never", &bytes.Buffer{})
	if strings.Contains(line(), "\x1b[") {
		t.Error("--color never: colour")
	}
	setColor("auto", &bytes.Buffer{}) // not a terminal
	if strings.Contains(line(), "\x1b[") {
		t.Error("auto, not a terminal: colour")
	}
	t.Setenv("NO_COLOR", "1")
	setColor("auto", os.Stdout)
	if strings.Contains(line(), "\x1b[") {
		t.Error("auto with NO_COLOR: colour")
	}
	setColor("always", os.Stdout) // the flag outranks the environment
	if !strings.Contains(line(), "\x1b[") {
		t.Error("--color always with NO_COLOR: no colour")
	}
}
