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
	"syscall"
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
		f, err := record.CreateNew(cfg.CPUProfile, false)
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
		return RunReport(ctx, cfg.Report, stdout, stderr)
	case "top":
		return RunTop(ctx, cfg.Top, stdout, stderr)
	case "serve":
		return RunServe(ctx, cfg, stdout, stderr)
	case "doctor":
		return RunDoctor(cfg, stdout)
	}
	setColor(cfg.Color, stdout)

	ses, err := openSession(ctx, cfg, tracer.Options{Filter: cfg.Filter, BufferSize: cfg.BufferSize, SkipHooks: cfg.SkipHooks, Hooks: cfg.Hooks}, stderr)
	if err != nil {
		return err
	}
	defer ses.close()
	rec, t, guard, pods, nss := ses.guard.rec, ses.t, ses.guard, ses.pods, ses.nss
	began := time.Now()
	start := tracer.Event{Kind: tracer.KindStart, Time: began.UTC(), Start: &tracer.StartInfo{
		Version: Version(), Tier: t.Tier(), TierReason: t.TierReason(), Hooks: t.Hooks(), Filter: describeTrace(&cfg), Namespaces: nss, Notes: t.Notes(),
	}}
	start.Start.Notes = append(start.Start.Notes, podNotes(pods)...)

	sink := newSink(cfg.Format, stdout, rec)
	defer sink.flush()
	// A closed or failing stdout ends the printing, not the recording;
	// with nothing recorded, it ends the run.
	sink.onOutErr = func(err error) {
		then := "tracing stopped"
		if rec != nil {
			then = "recording to " + cfg.Output + " goes on"
		}
		if errors.Is(err, syscall.EPIPE) {
			fmt.Fprintf(stderr, "porttrace: standard output was closed: printing stopped; %s\n", output.Printable(then))
		} else {
			fmt.Fprintf(stderr, "porttrace: write standard output: %s: printing stopped; %s\n", output.Printable(err.Error()), output.Printable(then))
		}
		if rec == nil {
			t.Stop()
		}
	}
	sink.write(&start)
	if err := guard.commit(); err != nil {
		return err
	}
	if cfg.Format == "text" {
		fmt.Fprintf(stderr, "porttrace: tracing %s in %d network namespace%s (%s hooks, %d attached); Ctrl-C to stop\n",
			output.Printable(describeFilter(&cfg)), len(nss), plural(len(nss)), t.Tier(), len(t.Hooks()))
		for _, n := range start.Start.Notes {
			fmt.Fprintf(stderr, "porttrace: %s\n", output.Printable(n))
		}
	} else if err := pods.Warning(); err != nil {
		fmt.Fprintf(stderr, "porttrace: %s\n", output.Printable(podNotes(pods)[0]))
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
			if !keep(pods, &cfg.Workload, &existing[i]) {
				continue
			}
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
		if !keep(pods, &cfg.Workload, e) {
			return
		}
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
		fmt.Fprintln(stderr, lostAdvice(stats.Lost, cfg.BufferSize))
	}
	var recErr error
	if rec != nil {
		recErr = guard.close()
		if n := rec.Dropped(); n > 0 {
			recErr = fmt.Errorf("%w (%d events were not written to %s)", recErr, n, cfg.Output)
		}
	}
	if sum != nil {
		writeSummary(stderr, sum, stats.Lost)
	}
	outErr := sink.err()
	if hungUp(ctx) {
		outErr = nil // the terminal is gone with the session: nothing to print to, no error
	}
	return errors.Join(rerr, recErr, outErr)
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

func describeFilter(cfg *Config) string {
	if cfg.Filter.String() == "all" && cfg.Workload.IsZero() {
		return "every ephemeral port"
	}
	return describeTrace(cfg)
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
	format     string
	w          *bufio.Writer
	tty        bool
	text       *output.Text
	rec        *record.Writer
	buf        []byte
	outErr     error // stdout failed: nothing more is printed
	notPrinted uint64
	onOutErr   func(error)
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
	if s.outErr != nil {
		s.notPrinted++
		return
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
	s.check()
}

func (s *sink) flush() {
	if s.outErr == nil {
		s.w.Flush()
		s.check()
	}
}

// check notices, once, that stdout failed (bufio keeps the first error).
func (s *sink) check() {
	if _, err := s.w.Write(nil); err != nil && s.outErr == nil {
		s.outErr = err
		if s.onOutErr != nil {
			s.onOutErr(err)
		}
	}
}

// err is what the exit status reports: a stdout that failed, but not one
// that was closed (| head), which only ended the printing.
func (s *sink) err() error {
	if s.outErr == nil || errors.Is(s.outErr, syscall.EPIPE) {
		return nil
	}
	return fmt.Errorf("write standard output: %w (%d events were not printed)", s.outErr, s.notPrinted)
}
