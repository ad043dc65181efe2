// Package record writes traces to files that survive crashes: JSON Lines,
// whole lines only, flushed to the disk every second and on close.
package record

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// FlushInterval bounds how long a written event may sit in memory.
const FlushInterval = time.Second

// Writer appends events as JSON Lines to a file.
type Writer struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	bw      *bufio.Writer
	buf     []byte
	err     error // first write error; recording stops there
	dropped uint64
	done    chan struct{}
	wg      sync.WaitGroup
}

// Create opens path for a new recording with mode 0600. An existing file is
// refused unless force is set, so nothing recorded is lost by accident.
func Create(path string, force bool) (*Writer, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s already exists: porttrace does not overwrite recordings; choose another file, or add --force to replace it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	w := &Writer{path: path, f: f, bw: bufio.NewWriterSize(f, 256<<10), done: make(chan struct{})}
	w.wg.Add(1)
	go w.flusher()
	return w, nil
}

// Write appends one event. After a write error it only counts what it could
// not write; Err says why.
func (w *Writer) Write(e *tracer.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.dropped++
		return
	}
	w.buf = output.AppendJSON(w.buf[:0], e)
	if _, err := w.bw.Write(w.buf); err != nil {
		w.fail(err)
	}
}

func (w *Writer) fail(err error) {
	w.err = fmt.Errorf("write %s: %w; recording stopped, what was written before is intact", w.path, err)
	w.dropped++
}

func (w *Writer) flusher() {
	defer w.wg.Done()
	tk := time.NewTicker(FlushInterval)
	defer tk.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tk.C:
			w.mu.Lock()
			w.sync()
			w.mu.Unlock()
		}
	}
}

// sync pushes buffered lines to the disk. Caller holds mu.
func (w *Writer) sync() {
	if w.err != nil {
		return
	}
	if w.bw.Buffered() == 0 {
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.fail(err)
		return
	}
	if err := w.f.Sync(); err != nil {
		w.fail(err)
	}
}

// Err is the error that stopped the recording, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Dropped counts events not written because recording had stopped.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close flushes, syncs and closes the file.
func (w *Writer) Close() error {
	close(w.done)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sync()
	cerr := w.f.Close()
	if w.err != nil {
		return w.err
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", w.path, cerr)
	}
	return nil
}
