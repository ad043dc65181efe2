package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/record"
	"github.com/porttrace/porttrace/internal/report"
	"github.com/porttrace/porttrace/tracer"
)

// ReportConfig is what `porttrace report` was asked for.
type ReportConfig struct {
	Files  []string
	Format string // text, json, html
	Output string
	Force  bool
	Filter report.Filter
}

const reportUsageHead = `Usage: porttrace report [flags] FILE...

Tells the story of recorded traces (porttrace -o FILE): per process, how many
ports it took, how long it held them, how many at once; with --port, every
hold of those ports; every failure with how full the range was; and how many
ports each namespace had in use over time. Several files — rotated and gzip
ones too — are read in the order of their first event.

Examples:
  porttrace report trace.jsonl
  porttrace report trace.jsonl* --port 60698
  porttrace report trace.jsonl --since 2026-11-25T03:00:00Z --until 2026-11-25T03:30:00Z
  porttrace report trace.jsonl --format html -o incident.html

Flags:
`

func parseReport(args []string, stdout, stderr io.Writer) (cfg Config, code int, done bool) {
	fs, fail := newCommand("porttrace report", stderr)
	format := fs.String("format", "text", "output `FORMAT`: text, json (one document) or html (a self-contained page with a timeline)")
	out := fs.StringP("output", "o", "", "write the report to `FILE` instead of standard output (never overwritten without --force)")
	force := fs.Bool("force", false, "let --output replace an existing file")
	ports := fs.StringP("port", "p", "", "only these local ports (`LIST`, e.g. 60698 or 60000-60100,8080), with every hold listed")
	pids := fs.UintSlice("pid", nil, "only these process `IDs`")
	comms := fs.StringSlice("comm", nil, "only processes with this command `NAME`")
	proto := fs.String("proto", "", "only this `PROTOCOL`: tcp or udp")
	wl := workloadFlags(fs)
	since := fs.String("since", "", "only events at or after `TIME` (RFC 3339, e.g. 2026-11-25T03:00:00Z; without a zone, UTC)")
	until := fs.String("until", "", "only events at or before `TIME`")
	help := fs.BoolP("help", "h", false, "show this help")
	prof := fs.String("cpuprofile", "", "write a Go CPU profile to `FILE`")
	fs.MarkHidden("cpuprofile")
	if err := fs.Parse(args); err != nil {
		return fail(flagError(err))
	}
	if *help {
		fmt.Fprint(stdout, reportUsageHead+flagUsages(fs))
		return Config{}, 0, true
	}
	rc := ReportConfig{Files: fs.Args(), Output: *out, Force: *force}
	if len(rc.Files) == 0 {
		return fail(usageErrorf("no recording given: name one or more files written by porttrace -o"))
	}
	switch *format {
	case "text", "json", "html":
		rc.Format = *format
	default:
		return fail(usageErrorf("--format: %q is not a report format: use text, json or html", *format))
	}
	if *force && *out == "" {
		return fail(usageErrorf("--force only applies to --output: add -o FILE, or drop --force"))
	}
	set, pr, err := parsePortsProto(fs, *ports, *proto)
	if err != nil {
		return fail(err)
	}
	rc.Filter.Ports, rc.Filter.Proto = set, pr
	for _, p := range *pids {
		rc.Filter.PIDs = append(rc.Filter.PIDs, uint32(p))
	}
	rc.Filter.Comms = *comms
	rc.Filter.Workload = wl()
	if rc.Filter.Since, err = parseTime("--since", *since); err != nil {
		return fail(err)
	}
	if rc.Filter.Until, err = parseTime("--until", *until); err != nil {
		return fail(err)
	}
	if !rc.Filter.Since.IsZero() && !rc.Filter.Until.IsZero() && rc.Filter.Until.Before(rc.Filter.Since) {
		return fail(usageErrorf("--until %s is before --since %s", *until, *since))
	}
	return Config{Command: "report", Report: rc, CPUProfile: *prof}, 0, false
}

func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErrorf("%s: %q is not a time: write it as 2026-11-25T03:12:00Z (RFC 3339)", flag, s)
}

// RunReport reads the recordings and writes the report.
// SIGINT, SIGTERM or SIGHUP (ctx) stops it at once, writing nothing.
func RunReport(ctx context.Context, rc ReportConfig, stdout, stderr io.Writer) error {
	warned := 0
	rd, err := record.OpenContext(ctx, rc.Files, func(msg string) {
		if warned < 20 {
			fmt.Fprintf(stderr, "porttrace report: warning: %s\n", output.Printable(msg))
		} else if warned == 20 {
			fmt.Fprintln(stderr, "porttrace report: warning: more problems; not listing them all")
		}
		warned++
	})
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if err != nil {
		return err
	}
	defer rd.Close()
	b := report.NewBuilder(rc.Filter)
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		if err != nil {
			return err
		}
		b.Add(e)
	}
	// Damage is said whatever the warnings before it: it is what tells a
	// report on part of a file from a report on all of it.
	for _, d := range rd.Damaged() {
		fmt.Fprintf(stderr, "porttrace report: %s is damaged (%s): the report covers its first %d lines, %d of its %d bytes\n",
			output.Printable(d.File), output.Printable(d.Err), d.Lines, d.Bytes, d.Size)
	}
	if rd.Records() == 0 {
		return fmt.Errorf("no porttrace records could be read from %s: give files written by porttrace -o", strings.Join(rc.Files, ", "))
	}
	r := b.Finish()
	r.Files = rc.Files
	r.Truncated = rd.Truncated()
	r.Damaged = rd.Damaged()
	r.Duplicates = rd.Duplicates()
	r.Filter = describeReportFilter(&rc.Filter)

	if rc.Output == "" {
		return writeReport(stdout, rc.Format, r)
	}
	// The page or document is written beside an old one --force replaces,
	// and takes its name only once whole.
	f, err := record.CreateNew(rc.Output, rc.Force)
	if err != nil {
		return fmt.Errorf("create report: %w", err)
	}
	if err := writeReport(f, rc.Format, r); err != nil {
		f.Abort()
		return err
	}
	if err := f.Commit(); err != nil {
		f.Abort()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func writeReport(w io.Writer, format string, r *report.Report) (err error) {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	case "html":
		err = report.WriteHTML(w, r)
	default:
		err = report.WriteText(w, r)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func describeReportFilter(f *report.Filter) string {
	tf := tracer.Filter{Ports: f.Ports, PIDs: f.PIDs, Comms: f.Comms, Proto: f.Proto}
	s := tf.String()
	if !f.Workload.IsZero() {
		s += ", " + f.Workload.String()
	}
	if !f.Since.IsZero() {
		s += " since " + f.Since.Format(time.RFC3339Nano)
	}
	if !f.Until.IsZero() {
		s += " until " + f.Until.Format(time.RFC3339Nano)
	}
	return s
}
