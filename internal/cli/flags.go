// Package cli is porttrace's command line: flags, the trace loop, exit codes.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/porttrace/porttrace/internal/workload"
	"github.com/porttrace/porttrace/tracer"
)

// Config is what the flags asked for.
type Config struct {
	Command    string // "" (trace), "report" or "top"
	Report     ReportConfig
	Top        TopConfig
	Serve      ServeConfig
	Filter     tracer.Filter
	Format     string // text or json
	Output     string // JSON Lines file, "" for none
	Force      bool
	Duration   time.Duration
	Color      string // auto, always, never
	BufferSize int
	NoExisting bool
	SkipHooks  []string
	Hooks      string // auto, precise or portable
	Verbose    bool
	CPUProfile string
	RotateSize int64
	RotateKeep int
	Compress   bool
	Slow       time.Duration
	Summary    bool
	CRISocket  string          // "" finds one, "none" asks no runtime
	Workload   workload.Filter // --pod, --namespace, --container
}

// UsageError is a bad command line: exit status 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &UsageError{fmt.Sprintf(format, a...)}
}

const usageHead = `Usage: porttrace [flags]
       porttrace report [flags] FILE...   (see porttrace report --help)
       porttrace top [flags]              (see porttrace top --help)
       porttrace doctor                   (what this host offers porttrace)
       porttrace serve [flags]            (Prometheus metrics; see porttrace serve --help)

Shows, as it happens, which process gets which local (ephemeral) port, how
(connect, sendto/sendmsg, bind), and how long it holds it, in every network
namespace of the host; and every connect()/bind()/send that failed because no
port was free (EADDRNOTAVAIL, EADDRINUSE, EAGAIN).

Examples:
  sudo porttrace                              every allocation and release
  sudo porttrace --port 60698                 everyone who takes port 60698
  sudo porttrace -p 60000-60100,8080 --proto tcp
  sudo porttrace --comm curl -4               IPv4 ports taken by curl
  sudo porttrace --format json -o trace.jsonl -d 10m

Flags:
`

const usageTail = `
Without --port, porttrace reports ports the kernel picks from the ephemeral
range (ip_local_port_range of each namespace) and explicit binds into it.
With --port, it reports any allocation of those ports, explicit binds
included. Failures are shown under any --port filter.

Exit status: 0 when the trace ended normally, 1 on an error, 2 for bad flags.
`

// Parse reads the command line. done reports that nothing is left to do
// (help or version was printed, or the flags were bad), with code the exit
// status.
func Parse(args []string, stdout, stderr io.Writer) (cfg Config, code int, done bool) {
	if len(args) > 0 && args[0] == "report" {
		return parseReport(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "top" {
		return parseTop(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" {
		return parseServe(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "doctor" {
		return parseDoctor(args[1:], stdout, stderr)
	}
	fs, fail := newCommand("porttrace", stderr)
	ports := fs.StringP("port", "p", "", "only these local ports: `LIST` of ports and ranges, e.g. 60698 or 60000-60100,8080")
	pids := fs.UintSlice("pid", nil, "only calls made by these process `IDs` (comma-separated or repeated)")
	comms := fs.StringSlice("comm", nil, "only calls made by processes with this command `NAME` (as ps shows it; repeatable)")
	proto := fs.String("proto", "", "only this `PROTOCOL`: tcp or udp")
	v4 := fs.BoolP("ipv4", "4", false, "only IPv4 sockets")
	v6 := fs.BoolP("ipv6", "6", false, "only IPv6 sockets (v4-mapped addresses included)")
	format := fs.String("format", "text", "output `FORMAT`: text (aligned columns) or json (JSON Lines)")
	rf := addRecordFlags(fs, "also record the JSON Lines stream to `FILE` (mode 0600; never overwritten without --force)")
	dur := fs.DurationP("duration", "d", 0, "stop after `DURATION` (e.g. 30s, 10m); default: until Ctrl-C or SIGTERM")
	col := fs.String("color", "auto", "colour the text output: `WHEN` is auto (on a terminal, unless NO_COLOR is set), always or never")
	buf := fs.String("buffer", "32M", "kernel ring buffer `SIZE`: a power of two, e.g. 4M, 64M; raise it if events are lost")
	noEx := fs.Bool("no-existing", false, "do not report the ports already held when tracing starts")
	slow := fs.Duration("slow", 0, "report a slow event when a TCP connect() spends longer than `DURATION` finding a port (e.g. 1ms)")
	summary := fs.Bool("summary", false, "at exit, sum up per process on stderr: allocations, hold time p50/p99/max, peak held at once, failures")
	wl := workloadFlags(fs)
	cri := criSocketFlag(fs)
	hooks := fs.String("hooks", "auto", "hook `TIER`: precise (fexit on the functions that pick ports, else kprobe), kprobe, portable (no fexit or kprobes; some failures seen late), or auto: the first the kernel allows")
	verbose := fs.BoolP("verbose", "v", false, "say on stderr which hooks are attached and why that tier was chosen")
	skip := fs.StringSlice("skip-hook", nil, "leave out hooks whose name starts with `PREFIX` (for measuring their cost)")
	fs.MarkHidden("skip-hook")
	prof := fs.String("cpuprofile", "", "write a Go CPU profile of porttrace itself to `FILE`")
	fs.MarkHidden("cpuprofile")
	help := fs.BoolP("help", "h", false, "show this help")
	version := fs.Bool("version", false, "print the version")

	if err := fs.Parse(args); err != nil {
		return fail(flagError(err))
	}
	if *help {
		fmt.Fprint(stdout, usageHead+flagUsages(fs)+usageTail)
		return Config{}, 0, true
	}
	if *version {
		fmt.Fprintf(stdout, "porttrace %s\n", Version())
		return Config{}, 0, true
	}
	if fs.NArg() > 0 {
		return fail(usageErrorf("unexpected argument %q: porttrace takes only flags", fs.Arg(0)))
	}

	set, pr, err := parsePortsProto(fs, *ports, *proto)
	if err != nil {
		return fail(err)
	}
	cfg.Filter.Ports, cfg.Filter.Proto = set, pr
	for _, p := range *pids {
		if p == 0 || p > 1<<22 {
			return fail(usageErrorf("--pid: %d is not a process ID", p))
		}
		cfg.Filter.PIDs = append(cfg.Filter.PIDs, uint32(p))
	}
	cfg.Filter.Comms = *comms
	cfg.Workload, cfg.CRISocket = wl(), *cri
	switch {
	case *v4 && *v6:
		return fail(usageErrorf("-4 and -6 together select nothing: give one of them, or neither for both"))
	case *v4:
		cfg.Filter.Family = tracer.IPv4
	case *v6:
		cfg.Filter.Family = tracer.IPv6
	}
	if err := cfg.Filter.Validate(); err != nil {
		return fail(usageErrorf("%v", err))
	}
	switch *format {
	case "text", "json":
		cfg.Format = *format
	default:
		return fail(usageErrorf("--format: %q is not an output format: use text or json", *format))
	}
	switch *col {
	case "auto", "always", "never":
		cfg.Color = *col
	default:
		return fail(usageErrorf("--color: %q is not a choice: use auto, always or never", *col))
	}
	if *dur < 0 {
		return fail(usageErrorf("--duration: %s is negative: give how long to trace, e.g. 30s", *dur))
	}
	size, err := parseSize(*buf)
	if err != nil {
		return fail(usageErrorf("--buffer: %v", err))
	}
	if err := rf.apply(&cfg); err != nil {
		return fail(err)
	}
	cfg.BufferSize = size
	cfg.Duration = *dur
	cfg.NoExisting = *noEx
	if *slow < 0 {
		return fail(usageErrorf("--slow: %s is negative: give a time such as 1ms", *slow))
	}
	cfg.Slow = *slow
	cfg.Summary = *summary
	cfg.SkipHooks = *skip
	if cfg.Hooks, err = parseHooks(*hooks); err != nil {
		return fail(err)
	}
	cfg.Verbose = *verbose
	cfg.CPUProfile = *prof
	return cfg, 0, false
}

func parseHooks(s string) (string, error) {
	switch s {
	case tracer.HooksAuto, tracer.HooksPrecise, tracer.HooksKprobe, tracer.HooksPortable:
		return s, nil
	}
	return "", usageErrorf("--hooks: %q is not a hook tier: use auto, precise, kprobe or portable", s)
}

// recordFlags are the flags of a recording, which the trace and serve share.
type recordFlags struct {
	out, rotSize  *string
	force, rotZip *bool
	rotKeep       *int
}

func addRecordFlags(fs *pflag.FlagSet, outUsage string) *recordFlags {
	return &recordFlags{
		out:     fs.StringP("output", "o", "", outUsage),
		force:   fs.Bool("force", false, "let --output replace an existing file"),
		rotSize: fs.String("rotate-size", "", "start a new --output file when it reaches `SIZE` (e.g. 100M); the full one is kept as FILE.<UTC time>"),
		rotKeep: fs.Int("rotate-keep", 0, "keep at most `N` rotated files, deleting the oldest (default: keep all)"),
		rotZip:  fs.Bool("rotate-compress", false, "gzip rotated files (FILE.<UTC time>.gz, readable by zcat and porttrace report)"),
	}
}

// apply checks the recording flags and sets them in cfg.
func (r *recordFlags) apply(cfg *Config) error {
	if *r.force && *r.out == "" {
		return usageErrorf("--force only applies to --output: add -o FILE, or drop --force")
	}
	if (*r.rotSize != "" || *r.rotKeep != 0 || *r.rotZip) && *r.out == "" {
		return usageErrorf("--rotate-size, --rotate-keep and --rotate-compress apply to --output: add -o FILE")
	}
	if *r.rotSize != "" {
		n, err := parseBytes(*r.rotSize)
		if err != nil || n < 4096 {
			return usageErrorf("--rotate-size: %q is not a size of at least 4K: write it as 100M or 1G", *r.rotSize)
		}
		cfg.RotateSize = n
	} else if *r.rotKeep != 0 || *r.rotZip {
		return usageErrorf("--rotate-keep and --rotate-compress need --rotate-size")
	}
	if *r.rotKeep < 0 {
		return usageErrorf("--rotate-keep: %d is negative: give how many rotated files to keep", *r.rotKeep)
	}
	cfg.RotateKeep = *r.rotKeep
	cfg.Compress = *r.rotZip
	cfg.Output = *r.out
	cfg.Force = *r.force
	return nil
}

// flagError rewrites pflag's messages into sentences that name the flag.
func flagError(err error) error {
	msg := err.Error()
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		// pflag: invalid argument "x" for "--pid" flag: strconv.ParseUint: ...
		if i := strings.Index(msg, ": strconv."); i > 0 {
			msg = msg[:i] + ": not a whole number"
		}
	}
	if strings.HasPrefix(msg, "invalid argument") && strings.Contains(msg, "time: ") {
		if i := strings.Index(msg, ": time: "); i > 0 {
			msg = msg[:i] + ": write a duration such as 30s, 10m or 1h"
		}
	}
	return usageErrorf("%s", msg)
}

func parseSize(s string) (int, error) {
	mult := 1
	t := strings.ToUpper(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, strings.TrimSuffix(t, "G")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size: write a power of two such as 4M or 64M", s)
	}
	size := n * mult
	if size < os.Getpagesize() || size > 1<<30 || size&(size-1) != 0 {
		return 0, fmt.Errorf("%s is not a power of two between %d bytes and 1G", s, os.Getpagesize())
	}
	return size, nil
}

// flagUsages lists the flags in declaration order, aligned, with defaults
// only where a default says something.
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, right string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		name, usage := pflag.UnquoteUsage(f)
		left := "    "
		if f.Shorthand != "" {
			left = "-" + f.Shorthand + ", "
		}
		left += "--" + f.Name
		if f.Value.Type() != "bool" && name != "" {
			left += " " + name
		}
		switch f.Value.Type() {
		case "bool", "stringSlice", "uintSlice":
		default:
			if f.DefValue != "" && f.DefValue != "0s" && f.DefValue != "0" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		rows = append(rows, row{left, usage})
		width = max(width, len(left))
	})
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, r.left, r.right)
	}
	return b.String()
}

// parseBytes reads a size such as 4096, 64K, 100M or 1G.
func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30} {
		if strings.HasSuffix(t, suf) {
			mult, t = m, strings.TrimSuffix(t, suf)
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}
