package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/pressure"
	"github.com/porttrace/porttrace/internal/record"
	"github.com/porttrace/porttrace/internal/report"
	"github.com/porttrace/porttrace/tracer"
)

// Run does what cfg asks: a report, or a trace until ctx ends, the
// duration passes, or an error.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	switch cfg.Command {
	case "report":
		return RunReport(cfg.Report, stdout, stderr)
	case "top":
		return RunTop(ctx, cfg.Top, stdout, stderr)
	case "serve":
		return RunServe(ctx, cfg, stdout, stderr)
	case "doctor":
		return RunDoctor(cfg, stdout)
	}
	setColor(cfg.Color, stdout)

	rec, t, err := openRecorded(cfg, tracer.Options{Filter: cfg.Filter, BufferSize: cfg.BufferSize, SkipHooks: cfg.SkipHooks, Hooks: cfg.Hooks}, stderr)
	if err != nil {
		return err
	}
	defer t.Close()

	nss, err := tracer.Namespaces()
	if err != nil {
		return err
	}
	began := time.Now()
	start := tracer.Event{Kind: tracer.KindStart, Time: began.UTC(), Start: &tracer.StartInfo{
		Version: Version(), Tier: t.Tier(), TierReason: t.TierReason(), Hooks: t.Hooks(), Filter: cfg.Filter.String(), Namespaces: nss, Notes: t.Notes(),
	}}

	sink := newSink(cfg.Format, stdout, rec)
	defer sink.flush()
	sink.write(&start)
	if cfg.Format == "text" {
		fmt.Fprintf(stderr, "porttrace: tracing %s in %d network namespace%s (%s hooks, %d attached); Ctrl-C to stop\n",
			describeFilter(&cfg.Filter), len(nss), plural(len(nss)), t.Tier(), len(t.Hooks()))
		for _, n := range t.Notes() {
			fmt.Fprintf(stderr, "porttrace: %s\n", n)
		}
	}
	if cfg.Verbose {
		fmt.Fprintf(stderr, "porttrace: %s hooks: %s\n", t.Tier(), t.TierReason())
		fmt.Fprintf(stderr, "porttrace: attached: %s\n", strings.Join(t.Hooks(), ", "))
	}

	var stats tracer.StopInfo
	count := func(e *tracer.Event) { addStat(&stats, e) }

	if !cfg.NoExisting {
		existing, err := t.Existing()
		if err != nil {
			return err
		}
		for i := range existing {
			count(&existing[i])
			sink.write(&existing[i])
		}
	}

	stopCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	go func() {
		<-stopCtx.Done()
		t.Stop()
	}()

	// One goroutine reads the events and, between them, sends the frees
	// that came due: a hand-off per event would cost the traced programs
	// CPU on a small machine.
	track := pressure.New(t, cfg.Slow)
	defer track.Close()
	var sum *report.Builder
	if cfg.Summary {
		sum = report.NewBuilder(report.Filter{})
	}
	emit := func(e *tracer.Event) {
		count(e)
		sink.write(e)
		if sum != nil {
			sum.Add(*e)
		}
	}
	rerr := pump(t, track, 200*time.Millisecond, emit, sink.flush)

	stats.Duration = time.Since(began)
	stop := tracer.Event{Kind: tracer.KindStop, Time: time.Now().UTC(), Stop: &stats}
	sink.write(&stop)
	sink.flush()

	fmt.Fprintf(stderr, "porttrace: %d event%s (%d alloc, %d release, %d fail), %d lost, %s\n",
		stats.Events, plural(int(stats.Events)), stats.Allocs, stats.Releases, stats.Fails, stats.Lost, output.Duration(stats.Duration))
	if stats.Lost > 0 {
		fmt.Fprintf(stderr, "porttrace: %d events were dropped in the kernel because the ring buffer was full: raise --buffer (now %dM)\n",
			stats.Lost, cfg.BufferSize>>20)
	}
	var recErr error
	if rec != nil {
		recErr = rec.Close()
		if n := rec.Dropped(); n > 0 {
			recErr = fmt.Errorf("%w (%d events were not written to %s)", recErr, n, cfg.Output)
		}
	}
	if sum != nil {
		writeSummary(stderr, sum)
	}
	return errors.Join(rerr, recErr)
}

// addStat counts an event in the stop event's totals.
func addStat(stats *tracer.StopInfo, e *tracer.Event) {
	if e.Kind == tracer.KindFree || e.Kind == tracer.KindSlow || e.Kind == tracer.KindClock {
		return // derived in user space: not counted with what the kernel saw
	}
	stats.Events++
	switch e.Kind {
	case tracer.KindAlloc:
		stats.Allocs++
	case tracer.KindRelease:
		stats.Releases++
	case tracer.KindFail:
		stats.Fails++
	case tracer.KindLost:
		stats.Lost += e.Count
	}
}

// pump reads events until the tracer stops, handing each to emit with the
// frees and slow warnings it leads to; between events, every tick, it sends
// the frees that came due and runs flush.
func pump(t *tracer.Tracer, track *pressure.Tracker, tick time.Duration, emit func(*tracer.Event), flush func()) error {
	nextTick := time.Now().Add(tick)
	for {
		e, err := t.ReadUntil(nextTick)
		if errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(nextTick) {
			for _, f := range track.Due(time.Now()) {
				emit(&f)
			}
			flush()
			nextTick = time.Now().Add(tick)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, tracer.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		extra := track.Observe(&e)
		emit(&e)
		for i := range extra {
			emit(&extra[i])
		}
	}
}

// openRecorded creates the recording cfg asks for, if any, then opens the
// tracer: a bad path fails before any hook is attached.
func openRecorded(cfg Config, opts tracer.Options, stderr io.Writer) (*record.Writer, *tracer.Tracer, error) {
	var rec *record.Writer
	if cfg.Output != "" {
		var err error
		ropts := record.Options{Force: cfg.Force, RotateSize: cfg.RotateSize, RotateKeep: cfg.RotateKeep, Compress: cfg.Compress,
			OnError: func(err error) { fmt.Fprintf(stderr, "porttrace: %s; tracing goes on without recording\n", err) }}
		if rec, err = record.Create(cfg.Output, ropts); err != nil {
			return nil, nil, err
		}
	}
	t, err := tracer.Open(opts)
	if err != nil {
		if rec != nil {
			rec.Close()
			if st, serr := os.Stat(cfg.Output); serr == nil && st.Size() == 0 {
				os.Remove(cfg.Output) // nothing was recorded: leave no empty file behind
			}
		}
		return nil, nil, err
	}
	return rec, t, nil
}

func setColor(mode string, stdout io.Writer) {
	switch mode {
	case "always":
		color.NoColor = false
	case "never":
		color.NoColor = true
	default:
		f, ok := stdout.(*os.File)
		noColor := os.Getenv("NO_COLOR") != "" // the convention: set and not empty
		color.NoColor = noColor || !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) || os.Getenv("TERM") == "dumb"
	}
}

func describeFilter(f *tracer.Filter) string {
	s := f.String()
	if s == "all" {
		return "every ephemeral port"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// sink writes every event to stdout in the chosen format ("text", "json",
// or "" for none) and, if recording, to the file. stdout is flushed at once on a terminal; otherwise the trace
// loop flushes it at every tick (200 ms).
type sink struct {
	format string
	w      *bufio.Writer
	tty    bool
	text   *output.Text
	rec    *record.Writer
	buf    []byte
}

func newSink(format string, stdout io.Writer, rec *record.Writer) *sink {
	s := &sink{format: format, w: bufio.NewWriterSize(stdout, 64<<10), rec: rec, text: output.NewText()}
	if f, ok := stdout.(*os.File); ok {
		s.tty = isatty.IsTerminal(f.Fd())
	}
	if format == "text" {
		s.w.WriteString(output.Header() + "\n")
	}
	return s
}

func (s *sink) write(e *tracer.Event) {
	if s.rec != nil {
		s.rec.Write(e)
	}
	if s.format == "json" {
		s.buf = output.AppendJSON(s.buf[:0], e)
		s.w.Write(s.buf)
	} else if s.format == "text" && e.Kind != tracer.KindStart && e.Kind != tracer.KindStop {
		s.w.WriteString(s.text.Line(e))
		s.w.WriteByte('\n')
	}
	if s.tty {
		s.w.Flush()
	}
}

func (s *sink) flush() { s.w.Flush() }

// writeSummary prints, at exit, what each process did.
func writeSummary(w io.Writer, b *report.Builder) {
	r := b.Finish()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPID\tCOMM\tALLOCS\tHELD p50\tp99\tmax\tPEAK AT ONCE\tFAILED")
	for _, p := range r.Processes {
		d := func(v time.Duration) string {
			if p.Releases == 0 {
				return "-"
			}
			return output.Duration(v)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n", p.PID, p.Comm, p.Allocs+p.Existing, d(p.HeldP50), d(p.HeldP99), d(p.HeldMax), p.Peak, p.Fails)
	}
	tw.Flush()
}
