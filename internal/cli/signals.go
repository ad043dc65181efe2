package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Stopped is why a run was asked to stop: the signal received.
type Stopped struct{ Signal syscall.Signal }

func (s Stopped) Error() string { return "stopped by " + signalName(s.Signal) }

// ErrInterrupted is returned by a command a signal cut short (a report):
// its exit status is 128 + the signal, as a shell's would be.
type ErrInterrupted struct{ Stopped }

func (e *ErrInterrupted) Error() string {
	return fmt.Sprintf("%s before the report was written; nothing was written", e.Stopped.Error())
}

// SignalContext ends when SIGINT, SIGTERM or SIGHUP arrives, with Stopped
// as its cause. A hang-up (a closed terminal, a dropped ssh session) stops
// a run cleanly, as SIGTERM does; a SIGHUP that was ignored when porttrace
// started (nohup) stays ignored, so a recording goes on. A write to a closed
// pipe fails with EPIPE rather than killing the process, so a trace can say
// so and keep recording.
func SignalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	go func() {
		s := <-ch
		cancel(Stopped{s.(syscall.Signal)})
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// hungUp reports whether ctx ended with a hang-up.
func hungUp(ctx context.Context) bool {
	var s Stopped
	return errors.As(context.Cause(ctx), &s) && s.Signal == syscall.SIGHUP
}

// interrupted turns the end of ctx into ErrInterrupted.
func interrupted(ctx context.Context) error {
	var s Stopped
	if errors.As(context.Cause(ctx), &s) {
		return &ErrInterrupted{s}
	}
	return ctx.Err()
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}
