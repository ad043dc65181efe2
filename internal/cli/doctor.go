package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/fatih/color"

	"github.com/porttrace/porttrace/tracer"
)

const doctorUsage = `Usage: sudo porttrace doctor

Checks what this host offers and what porttrace uses: privileges, BTF, the
ring buffer, socket storage, cgroup v2, lockdown, tracefs and bpffs, and each
hook — loaded and attached for real, then detached — with a one-line fix for
anything missing. Exit status 0 when porttrace can trace here, 1 when not.
`

func parseDoctor(args []string, stdout, stderr io.Writer) (Config, int, bool) {
	fs, fail := newCommand("porttrace doctor", stderr)
	help := fs.BoolP("help", "h", false, "show this help")
	col := fs.String("color", "auto", "colour the checks: `WHEN` is auto (on a terminal, unless NO_COLOR is set), always or never")
	if err := fs.Parse(args); err != nil {
		return fail(flagError(err))
	}
	if *help {
		fmt.Fprint(stdout, doctorUsage)
		return Config{}, 0, true
	}
	if fs.NArg() > 0 {
		return fail(usageErrorf("unexpected argument %q: doctor takes no arguments", fs.Arg(0)))
	}
	switch *col {
	case "auto", "always", "never":
	default:
		return fail(usageErrorf("--color: %q is not a choice: use auto, always or never", *col))
	}
	return Config{Command: "doctor", Color: *col}, 0, false
}

// ErrNotUsable is returned by RunDoctor when porttrace cannot trace here.
var ErrNotUsable = errors.New("cannot trace on this host: see the checks marked MISSING above")

// RunDoctor prints the checks as a table.
func RunDoctor(cfg Config, stdout io.Writer) error {
	setColor(cfg.Color, stdout)
	ok, missing, info := color.New(color.FgGreen), color.New(color.FgRed, color.Bold), color.New(color.FgYellow)
	if !color.NoColor { // --color always outranks NO_COLOR, which color.New obeys
		ok.EnableColor()
		missing.EnableColor()
		info.EnableColor()
	}
	checks, tier := tracer.Doctor()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tFOUND")
	for _, c := range checks {
		status := ok.Sprint("ok")
		switch {
		case !c.OK && c.Needed:
			status = missing.Sprint("MISSING")
		case !c.OK:
			status = info.Sprint("absent")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, status, c.Detail)
		if !c.OK {
			fmt.Fprintf(tw, "\t\t→ %s\n", c.Fix)
		}
	}
	tw.Flush()
	if !tracer.Usable(checks) {
		return ErrNotUsable
	}
	fmt.Fprintf(stdout, "\nporttrace can trace on this host, with its %s hooks.\n", tier)
	return nil
}
