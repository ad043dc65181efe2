package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/record"
	"github.com/porttrace/porttrace/internal/workload"
	"github.com/porttrace/porttrace/tracer"
)

// session is what the trace and serve open alike, in this order: the
// recording, if asked for (a bad path fails before any hook is attached),
// the tracer, the pod resolver, and the namespaces there are at the start.
type session struct {
	guard *recordingGuard // guard.rec is the recording; nil: nothing is recorded
	t     *tracer.Tracer
	pods  *workload.Resolver
	nss   []tracer.Namespace
}

func openSession(ctx context.Context, cfg Config, opts tracer.Options, stderr io.Writer) (*session, error) {
	rec, t, err := openRecorded(cfg, opts, stderr)
	if err != nil {
		return nil, err
	}
	s := &session{guard: &recordingGuard{rec: rec}, t: t}
	if s.pods, err = workload.Open(ctx, cfg.CRISocket); err != nil {
		s.close()
		return nil, err
	}
	if s.nss, err = tracer.Namespaces(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close ends what open began, in reverse order.
func (s *session) close() {
	if s.pods != nil {
		s.pods.Close()
	}
	s.t.Close()
	s.guard.end()
}

// recordingGuard ends a recording on every exit path. Until tracing has
// started nothing is recorded: an error leaves no empty file behind, and
// the file --force was to replace stays as it was. After, an error still
// closes the recording, keeping what it holds.
type recordingGuard struct {
	rec             *record.Writer // nil: nothing is recorded
	started, closed bool
}

func (g *recordingGuard) end() {
	switch {
	case g.rec == nil || g.closed:
	case !g.started:
		g.rec.Abort()
	default:
		g.rec.Close()
	}
}

// commit keeps the recording: tracing has started.
func (g *recordingGuard) commit() error {
	if g.rec != nil {
		if err := g.rec.Commit(); err != nil {
			return err
		}
	}
	g.started = true
	return nil
}

// close ends the recording at the end of the run.
func (g *recordingGuard) close() error {
	g.closed = true
	return g.rec.Close()
}

// openRecorded creates the recording cfg asks for, if any, then opens the
// tracer: a bad path fails before any hook is attached. If the tracer does
// not open, the recording is abandoned: nothing is left behind, and a file
// --force was to replace stays as it was. Once tracing has started, the
// caller commits the recording.
func openRecorded(cfg Config, opts tracer.Options, stderr io.Writer) (*record.Writer, *tracer.Tracer, error) {
	var rec *record.Writer
	if cfg.Output != "" {
		var err error
		ropts := record.Options{Force: cfg.Force, RotateSize: cfg.RotateSize, RotateKeep: cfg.RotateKeep, Compress: cfg.Compress,
			OnError: func(err error) { fmt.Fprintf(stderr, "porttrace: %s\n", output.Printable(err.Error())) }}
		if rec, err = record.Create(cfg.Output, ropts); err != nil {
			return nil, nil, err
		}
	}
	t, err := tracer.Open(opts)
	if err != nil {
		if rec != nil {
			rec.Abort()
		}
		return nil, nil, err
	}
	return rec, t, nil
}
