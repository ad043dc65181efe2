package cli

import (
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/porttrace/porttrace/tracer"
)

// Command is one of porttrace's commands as its parser defines it, for the
// man page and the shell completions: they are generated from this, so they
// cannot say something the program does not do.
type Command struct {
	Name    string         // "porttrace", "porttrace report", ...
	Sub     string         // "", "report", ...
	Help    string         // what --help prints
	Flags   *pflag.FlagSet // exactly the parser's flags, hidden ones marked
	Choices map[string][]string
}

// Subcommands are the words Parse dispatches on, in the order --help lists
// them.
var Subcommands = []string{"report", "top", "doctor", "serve"}

// choices are the only values these flags take (the parsers refuse others;
// a test holds the two together): the completions offer them.
var choices = map[string]map[string][]string{
	"": {
		"format": {"text", "json"},
		"proto":  {"tcp", "udp"},
		"color":  {"auto", "always", "never"},
		"hooks":  {tracer.HooksAuto, tracer.HooksPrecise, tracer.HooksKprobe, tracer.HooksPortable},
	},
	"report": {"format": {"text", "json", "html"}, "proto": {"tcp", "udp"}},
	"serve":  {"log-format": {"none", "text", "json"}, "hooks": {tracer.HooksAuto, tracer.HooksPrecise, tracer.HooksKprobe, tracer.HooksPortable}},
	"doctor": {"color": {"auto", "always", "never"}},
}

// flagCollector is the stderr Commands hands a parser: newCommand gives it
// the flag set, so the flags are read from the parser itself, not copied.
type flagCollector struct {
	io.Writer
	fs *pflag.FlagSet
}

// Commands runs each parser on --help and returns what it defined.
func Commands() []Command {
	var cmds []Command
	for _, sub := range append([]string{""}, Subcommands...) {
		args := []string{"--help"}
		if sub != "" {
			args = []string{sub, "--help"}
		}
		var help strings.Builder
		c := &flagCollector{Writer: io.Discard}
		Parse(args, &help, c)
		name := strings.TrimSpace("porttrace " + sub)
		cmds = append(cmds, Command{Name: name, Sub: sub, Help: help.String(), Flags: c.fs, Choices: choices[sub]})
	}
	return cmds
}
