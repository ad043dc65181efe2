// Command porttrace traces which process gets which local port, how, and
// for how long. See porttrace --help.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/porttrace/porttrace/internal/cli"
)

func main() { os.Exit(run()) }

func run() (code int) {
	// A crash prints one line, no stack, unless PORTTRACE_DEBUG is set for a
	// bug report.
	debugging := os.Getenv("PORTTRACE_DEBUG") != ""
	if !debugging {
		debug.SetTraceback("none")
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "porttrace: internal error: %v. Please report it with the command line you ran (PORTTRACE_DEBUG=1 adds the details).\n", r)
			if debugging {
				os.Stderr.Write(debug.Stack())
			}
			code = 70
		}
	}()
	cfg, code, done := cli.Parse(os.Args[1:], os.Stdout, os.Stderr)
	if done {
		return code
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	return cli.ExitCode(cli.Run(ctx, cfg, os.Stdout, os.Stderr), os.Stderr)
}
