package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/porttrace/porttrace/internal/pressure"
	"github.com/porttrace/porttrace/internal/top"
	"github.com/porttrace/porttrace/internal/workload"
	"github.com/porttrace/porttrace/tracer"
)

// TopConfig is what `porttrace top` was asked for.
type TopConfig struct {
	Interval  time.Duration
	Duration  time.Duration
	CRISocket string
}

const topUsageHead = `Usage: sudo porttrace top [flags]

A live view of every network namespace's ephemeral range, refreshed like top:
ports in use (# held by sockets, ~ only by TIME_WAIT) and free, allocations
and failures per second, who holds the ports (process and cgroup), toward
which destinations, and the last failures. Press q to quit. When standard
output is not a terminal, it prints a plain text frame every interval.

Flags:
`

func parseTop(args []string, stdout, stderr io.Writer) (Config, int, bool) {
	fs, fail := newCommand("porttrace top", stderr)
	interval := fs.DurationP("interval", "i", time.Second, "refresh every `DURATION`")
	dur := fs.DurationP("duration", "d", 0, "stop after `DURATION`; default: until q, Ctrl-C or SIGTERM")
	cri := criSocketFlag(fs)
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return fail(flagError(err))
	}
	if *help {
		fmt.Fprint(stdout, topUsageHead+flagUsages(fs))
		return Config{}, 0, true
	}
	if fs.NArg() > 0 {
		return fail(usageErrorf("unexpected argument %q: porttrace top takes only flags", fs.Arg(0)))
	}
	if *interval < 100*time.Millisecond {
		return fail(usageErrorf("--interval: %s is too short: give 100ms or more", *interval))
	}
	if *dur < 0 {
		return fail(usageErrorf("--duration: %s is negative", *dur))
	}
	return Config{Command: "top", Top: TopConfig{Interval: *interval, Duration: *dur, CRISocket: *cri}}, 0, false
}

// RunTop shows the live view until q, the duration, or ctx ends.
func RunTop(ctx context.Context, tc TopConfig, stdout, stderr io.Writer) error {
	t, err := tracer.Open(tracer.Options{})
	if err != nil {
		return err
	}
	defer t.Close()
	pods, err := workload.Open(ctx, tc.CRISocket)
	if err != nil {
		return err
	}
	defer pods.Close()
	if tc.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tc.Duration)
		defer cancel()
	}
	ctx, quit := context.WithCancel(ctx)
	defer quit()

	out, _ := stdout.(*os.File)
	tty := out != nil && term.IsTerminal(int(out.Fd()))
	if tty {
		if term.IsTerminal(int(os.Stdin.Fd())) {
			if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
				defer term.Restore(int(os.Stdin.Fd()), old)
			}
			go readKeys(os.Stdin, quit)
		}
		io.WriteString(stdout, "\x1b[?1049h\x1b[?25l") // alternate screen, no cursor
		defer io.WriteString(stdout, "\x1b[?25h\x1b[?1049l")
	}

	var mu sync.Mutex
	model := top.NewModel(t)
	model.Pods = pods
	track := pressure.New(t, 0)
	defer track.Close()
	go func() {
		<-ctx.Done()
		t.Stop()
	}()
	done := make(chan error, 1)
	go func() {
		for {
			e, err := t.Read()
			if errors.Is(err, io.EOF) || errors.Is(err, tracer.ErrClosed) {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			track.Observe(&e)
			pods.Fill(&e)
			mu.Lock()
			model.Add(&e)
			mu.Unlock()
		}
	}()

	draw := func() error {
		mu.Lock()
		snap, err := model.Snapshot(time.Now())
		mu.Unlock()
		if err != nil {
			return err
		}
		w, h := 80, 24
		if tty {
			if cw, ch, err := term.GetSize(int(out.Fd())); err == nil {
				w, h = cw, ch
			}
			lines := top.Render(snap, w, h)
			_, err = io.WriteString(stdout, "\x1b[H\x1b[2J"+strings.Join(lines, "\r\n"))
			return err
		}
		lines := top.Render(snap, 0, 1<<20)
		_, err = io.WriteString(stdout, strings.Join(lines, "\n")+"\n\n")
		return err
	}
	if err := draw(); err != nil {
		return err
	}
	tick := time.NewTicker(tc.Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := draw(); err != nil {
				return err
			}
		case err := <-done:
			return err
		}
	}
}

// readKeys ends the view on q, Q or Ctrl-C (raw mode delivers it as a byte).
func readKeys(in io.Reader, quit func()) {
	b := make([]byte, 1)
	for {
		if _, err := in.Read(b); err != nil {
			return
		}
		switch b[0] {
		case 'q', 'Q', 3:
			quit()
			return
		}
	}
}
