package cli

import (
	"bytes"
	"regexp"
	"slices"
	"testing"
)

// The documentation is generated from Commands: it must hold every
// command --help names, each with the flags its parser defined.
func TestCommandsAreTheParsers(t *testing.T) {
	cmds := Commands()
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^\s+porttrace (\w+)`).FindAllStringSubmatch(cmds[0].Help, -1) {
		listed = append(listed, m[1])
	}
	if !slices.Equal(listed, Subcommands) {
		t.Errorf("porttrace --help lists the commands %q, Subcommands (what the man page and completions cover) is %q", listed, Subcommands)
	}
	if len(cmds) != 1+len(Subcommands) {
		t.Fatalf("%d commands", len(cmds))
	}
	for _, c := range cmds {
		if c.Flags == nil || c.Flags.Name() != c.Name {
			t.Errorf("%s: the flag set collected is %v", c.Name, c.Flags)
			continue
		}
		if c.Flags.Lookup("help") == nil || !regexp.MustCompile(`^Usage: (sudo )?`+c.Name).MatchString(c.Help) {
			t.Errorf("%s: help %q, flags %v", c.Name, c.Help, c.Flags)
		}
	}
	if f := cmds[0].Flags.Lookup("rotate-keep"); f == nil || f.Hidden {
		t.Errorf("porttrace: --rotate-keep not collected as a visible flag: %v", f)
	}
	if f := cmds[0].Flags.Lookup("skip-hook"); f == nil || !f.Hidden {
		t.Errorf("porttrace: --skip-hook not collected as a hidden flag: %v", f)
	}
	if cmds[1].Flags.Lookup("since") == nil || cmds[2].Flags.Lookup("interval") == nil || cmds[3].Flags.Lookup("color") == nil {
		t.Error("a subcommand's own flag is missing")
	}
}

// Every value the completions offer is one the parser takes, and the
// parser refuses a value they do not offer.
func TestChoicesAreAccepted(t *testing.T) {
	for _, c := range Commands() {
		for flag, values := range c.Choices {
			if c.Flags.Lookup(flag) == nil {
				t.Errorf("%s: choices for --%s, which it does not have", c.Name, flag)
			}
			for _, v := range append(values, "bogus") {
				args := []string{"--" + flag, v}
				if c.Sub != "" {
					args = append([]string{c.Sub}, args...)
				}
				if c.Sub == "report" {
					args = append(args, "x.jsonl")
				}
				var out, errb bytes.Buffer
				_, code, _ := Parse(args, &out, &errb)
				if (v == "bogus") != (code == 2) {
					t.Errorf("%s --%s %s: exit %d, %s", c.Name, flag, v, code, errb.String())
				}
			}
		}
	}
}
