package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

func TestParseFlagsGood(t *testing.T) {
	var out, errb bytes.Buffer
	cfg, code, done := Parse([]string{"-p", "60000-60001,8080", "--pid", "10,20", "--pid", "30", "--comm", "curl", "--proto", "udp", "-6",
		"--format", "json", "-o", "x.jsonl", "--force", "-d", "90s", "--color", "never", "--buffer", "4M"}, &out, &errb)
	if done {
		t.Fatalf("Parse stopped with %d: %s", code, errb.String())
	}
	f := cfg.Filter
	if f.Ports.String() != "8080,60000-60001" || len(f.PIDs) != 3 || f.PIDs[2] != 30 || f.Comms[0] != "curl" ||
		f.Proto != tracer.UDP || f.Family != tracer.IPv6 || cfg.Format != "json" || cfg.Output != "x.jsonl" || !cfg.Force ||
		cfg.Duration != 90*time.Second || cfg.Color != "never" || cfg.BufferSize != 4<<20 {
		t.Errorf("Parse gave %+v", cfg)
	}
	if cfg, _, done = Parse(nil, &out, &errb); done || cfg.Format != "text" || cfg.BufferSize != 32<<20 || cfg.Filter.String() != "all" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseFlagsBad(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000"}, "--port: port 70000 is out of range"},
		{[]string{"--format", "xml"}, `--format: "xml" is not an output format`},
		{[]string{"--proto", "sctp"}, "--proto"},
		{[]string{"-4", "-6"}, "-4 and -6 together"},
		{[]string{"--color", "sometimes"}, "--color"},
		{[]string{"--pid", "abc"}, "--pid"},
		{[]string{"--pid", "0"}, "--pid: 0 is not a process ID"},
		{[]string{"-d", "3"}, "duration"},
		{[]string{"-d", "-5s"}, "negative"},
		{[]string{"--buffer", "3M"}, "power of two"},
		{[]string{"--force"}, "--force only applies to --output"},
		{[]string{"--comm", "a-very-long-command"}, "15 bytes"},
		{[]string{"--frobnicate"}, "unknown flag: --frobnicate"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		var out, errb bytes.Buffer
		_, code, done := Parse(c.args, &out, &errb)
		if !done || code != 2 {
			t.Errorf("%v: done=%v code=%d, want exit 2", c.args, done, code)
		}
		if msg := errb.String(); !strings.Contains(msg, c.want) || !strings.Contains(msg, "porttrace --help") {
			t.Errorf("%v: message %q should contain %q and point to --help", c.args, msg, c.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if _, code, done := Parse([]string{"--help"}, &out, &errb); !done || code != 0 {
		t.Fatalf("--help: %d", code)
	}
	help := out.String()
	for _, want := range []string{"Usage: porttrace", "--port LIST", "sudo porttrace --port 60698", "Exit status"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if strings.Contains(help, "skip-hook") || strings.Contains(help, "[=true|false]") {
		t.Errorf("help shows hidden flags or pflag noise:\n%s", help)
	}
	out.Reset()
	if _, code, done := Parse([]string{"--version"}, &out, &errb); !done || code != 0 || !strings.HasPrefix(out.String(), "porttrace ") {
		t.Errorf("--version: %d %q", code, out.String())
	}
}

func TestExitCode(t *testing.T) {
	var b bytes.Buffer
	if ExitCode(nil, &b) != 0 || b.Len() != 0 {
		t.Error("nil error")
	}
	if code := ExitCode(usageErrorf("bad thing"), &b); code != 2 || b.String() != "porttrace: bad thing.\n" {
		t.Errorf("usage error: %d %q", code, b.String())
	}
}
