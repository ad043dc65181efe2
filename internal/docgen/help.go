// Package docgen writes porttrace's man page and shell completions from the
// commands' own help text and flag sets (cli.Commands), so that neither is a
// second copy that can drift from the program.
package docgen

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/porttrace/porttrace/internal/cli"
)

// help is a command's --help split where the man page needs it.
type help struct {
	synopsis string   // the first usage line, without "Usage:" or "sudo"
	args     string   // what follows the flags in it: "FILE..." or ""
	desc     []string // paragraphs before the flags
	examples []string // the lines of the Examples block
	notes    []string // paragraphs after the flags
}

func splitHelp(c cli.Command) help {
	var h help
	blocks := strings.Split(strings.TrimSpace(c.Help), "\n\n")
	first, _, _ := strings.Cut(blocks[0], "\n")
	h.synopsis = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(first, "Usage:")), "sudo ")
	h.args = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(h.synopsis, c.Name)), "[flags]"))
	flagsSeen := false
	for _, b := range blocks[1:] {
		switch {
		case strings.HasPrefix(b, "Examples:"):
			h.examples = strings.Split(strings.TrimPrefix(b, "Examples:\n"), "\n")
		case strings.HasPrefix(b, "Flags:"):
			flagsSeen = true
		case flagsSeen:
			h.notes = append(h.notes, b)
		default:
			h.desc = append(h.desc, b)
		}
	}
	return h
}

// takesFiles says the command's arguments are files (report's recordings).
func (h help) takesFiles() bool { return strings.HasPrefix(h.args, "FILE") }

// summary is a description's first clause, for completion menus.
func summary(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for _, sep := range []string{": ", "; ", " (", ". "} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	return s
}

// flagDoc is what the page and the completions say about one flag.
type flagDoc struct {
	name, short string
	value       string   // the placeholder, "" for a switch
	usage       string   // the help sentence, placeholder unquoted
	def         string   // a default worth saying, or ""
	choices     []string // the only values it takes, if fixed
	repeat      bool     // may be given more than once
}

// file and pids say which flags take a file name or process IDs: those
// whose placeholder says so.
func (f flagDoc) file() bool { return f.value == "FILE" }
func (f flagDoc) pids() bool { return f.value == "IDs" }

// flagDocs lists a command's visible flags in the order --help does.
func flagDocs(c cli.Command) []flagDoc {
	var out []flagDoc
	c.Flags.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		value, usage := pflag.UnquoteUsage(f)
		d := flagDoc{name: f.Name, short: f.Shorthand, usage: usage, choices: c.Choices[f.Name]}
		switch t := f.Value.Type(); t {
		case "bool":
		case "stringSlice", "uintSlice":
			d.value, d.repeat = value, true
		default:
			d.value = value
			if f.DefValue != "" && f.DefValue != "0s" && f.DefValue != "0" {
				d.def = f.DefValue
			}
		}
		out = append(out, d)
	})
	return out
}

// spellings are the ways to write the flag on a command line.
func (f flagDoc) spellings() []string {
	s := []string{"--" + f.name}
	if f.short != "" {
		s = append([]string{"-" + f.short}, s...)
	}
	return s
}
