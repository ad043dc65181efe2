package cli

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/porttrace/porttrace/tracer"
)

// newCommand returns the flag set of a command ("porttrace", "porttrace
// report", ...) and how it refuses a bad command line: one sentence, a
// pointer to its help, exit status 2.
func newCommand(name string, stderr io.Writer) (*pflag.FlagSet, func(error) (Config, int, bool)) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	if c, ok := stderr.(*flagCollector); ok {
		c.fs = fs
	}
	fail := func(err error) (Config, int, bool) {
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", name, err, name)
		return Config{}, 2, true
	}
	return fs, fail
}

// parsePortsProto reads the --port and --proto flags the trace and the
// report share.
func parsePortsProto(fs *pflag.FlagSet, ports, proto string) (tracer.PortSet, tracer.Proto, error) {
	var set tracer.PortSet
	var p tracer.Proto
	if fs.Changed("port") {
		s, err := tracer.ParsePorts(ports)
		if err != nil {
			return set, 0, usageErrorf("--port: %v", err)
		}
		set = s
	}
	if proto != "" {
		v, ok := tracer.ParseProto(proto)
		if !ok {
			return set, 0, usageErrorf("--proto: %q is not a protocol porttrace traces: use tcp or udp", proto)
		}
		p = v
	}
	return set, p, nil
}
