// Command porttrace traces which process gets which local port, how, and
// for how long. See porttrace --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/porttrace/porttrace/internal/cli"
)

func main() { os.Exit(run()) }

func run() (code int) {
	debug.SetTraceback("none") // a crash in any goroutine prints one line, no stack
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "porttrace: internal error: %v. Please report it with the command line you ran.\n", r)
			code = 70
		}
	}()
	cfg, code, done := cli.Parse(os.Args[1:], os.Stdout, os.Stderr)
	if done {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.ExitCode(cli.Run(ctx, cfg, os.Stdout, os.Stderr), os.Stderr)
}
