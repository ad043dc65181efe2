package record

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// maxLine bounds one record; a longer line is damage, not data.
const maxLine = 1 << 20

// maxSeen bounds the events remembered to find the same event in two files
// (about 20 MiB).
const maxSeen = 1 << 19

// Reader streams the events of one or more recordings, plain or gzip, file
// after file in the order of their first event. Damaged lines are skipped
// with a warning; a file cut short is read up to its last whole line; an
// event read before from another file (the same file given twice, rotated
// files that overlap) is passed over, once, with a warning.
type Reader struct {
	ctx       context.Context
	files     []*source
	cur       int
	Warn      func(msg string) // called for each problem found; may be nil
	truncated bool
	records   uint64
	skipped   uint64
	blank     uint64
	dups      uint64
	damaged   []Damage

	mu      sync.Mutex // guards opened, for an interrupt from another goroutine
	opened  []*os.File
	unwatch func() bool

	seed     maphash.Seed
	seen     map[uint64]struct{} // events that a later file may repeat
	seenFull bool
	readTo   time.Time // the latest event of the files already read
}

// Damage is a file that could not be read to its end.
type Damage struct {
	File  string `json:"file"`
	Lines int    `json:"lines_read"` // whole lines read before the damage
	Bytes int64  `json:"bytes_read"` // of the file as stored (compressed)
	Size  int64  `json:"size"`
	Err   string `json:"error"`
}

type source struct {
	path     string
	f        *os.File
	in       *countingReader
	gz       *gzip.Reader
	br       *bufio.Reader
	size     int64
	line     int
	first    time.Time
	last     time.Time
	peek     *tracer.Event
	peekHash uint64
	dups     uint64
	regular  bool // a regular file: its buffers can be let go and read again
	consumed int  // lines read to peek its first event
	done     bool
}

// countingReader counts what was read of a file, and ends a read once the
// context is done, so a report of an endless input (/dev/zero) stops when
// asked.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Open opens every path and orders them by the time of their first event.
func Open(paths []string, warn func(string)) (*Reader, error) {
	return OpenContext(context.Background(), paths, warn)
}

// OpenContext is Open, stopped (with ctx's error) as soon as ctx ends,
// even while a read waits on a FIFO.
func OpenContext(ctx context.Context, paths []string, warn func(string)) (*Reader, error) {
	r := &Reader{ctx: ctx, Warn: warn, seed: maphash.MakeSeed(), seen: map[uint64]struct{}{}}
	r.unwatch = context.AfterFunc(ctx, r.interrupt)
	type fileID struct{ dev, ino uint64 }
	ids := map[fileID]string{}
	for _, p := range paths {
		s, err := r.openSource(p)
		if err != nil {
			r.Close()
			return nil, err
		}
		if st, ok := statOf(s.f); ok && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			id := fileID{st.Dev, st.Ino}
			if other, dup := ids[id]; dup {
				r.warn("%s is %s given again: read once", p, other)
				r.dups++ // counted as one, whatever it holds
				s.close()
				continue
			}
			ids[id] = p
		}
		r.files = append(r.files, s)
		// Peek the first record to order the files; then let go of the
		// buffers (2 MiB for a gzip file) until the file's turn comes, so
		// a thousand rotated files do not take 2 GiB.
		e, line, err := r.next(s)
		if err == nil {
			s.peek, s.peekHash = &e, maphash.Bytes(r.seed, line)
			s.first = e.Time
		} else {
			s.done = true
		}
		if s.regular || s.done {
			s.consumed = s.line
			s.release()
		}
		if cerr := ctx.Err(); cerr != nil {
			r.Close()
			return nil, cerr
		}
	}
	sort.SliceStable(r.files, func(i, j int) bool { return r.files[i].first.Before(r.files[j].first) })
	return r, nil
}

func statOf(f *os.File) (*syscall.Stat_t, bool) {
	fi, err := f.Stat()
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

func (r *Reader) openSource(path string) (*source, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; reads then go
	// through the poller, where an interrupt can end them.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	r.mu.Lock()
	r.opened = append(r.opened, f)
	r.mu.Unlock()
	s := &source{path: path, f: f}
	if st, ok := statOf(f); ok {
		s.size = st.Size
		s.regular = st.Mode&syscall.S_IFMT == syscall.S_IFREG
	}
	if err := r.attach(s); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// attach puts the buffers (and the gzip reader) on the file, from where it
// stands.
func (r *Reader) attach(s *source) error {
	s.in = &countingReader{ctx: r.ctx, r: s.f}
	br := bufio.NewReaderSize(s.in, maxLine)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: not a readable gzip file: %w", s.path, err)
		}
		gz.Multistream(true)
		s.gz = gz
		br = bufio.NewReaderSize(gz, maxLine)
	}
	s.br = br
	return nil
}

// resume reads a released file again from its start, passing over the
// lines read when it was peeked.
func (r *Reader) resume(s *source) error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := r.attach(s); err != nil {
		return err
	}
	for i := 0; i < s.consumed; i++ {
		if err := discardLine(s.br); err != nil {
			return err
		}
	}
	return nil
}

// release lets go of a file's buffers; the file stays open.
func (s *source) release() {
	if s.gz != nil {
		s.gz.Close()
		s.gz = nil
	}
	s.br, s.in = nil, nil
}

// interrupt wakes a read blocked on a FIFO or a pipe.
func (r *Reader) interrupt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.opened {
		f.SetReadDeadline(time.Now())
	}
}

// Next returns the next event, or io.EOF after the last; once the context
// ends, its error.
func (r *Reader) Next() (tracer.Event, error) {
	for r.cur < len(r.files) {
		s := r.files[r.cur]
		if s.done {
			r.endOf(s)
			continue
		}
		if s.peek != nil {
			e := *s.peek
			s.peek = nil
			if r.repeated(s, &e, nil, s.peekHash) {
				continue
			}
			return e, nil
		}
		if s.br == nil {
			if err := r.resume(s); err != nil {
				if cerr := r.ctx.Err(); cerr != nil {
					return tracer.Event{}, cerr
				}
				r.readError(s, err)
				s.done = true
				continue
			}
		}
		e, line, err := r.next(s)
		if err == io.EOF {
			s.done = true
			s.release()
			r.endOf(s)
			continue
		}
		if err != nil {
			return e, err
		}
		if r.repeated(s, &e, line, 0) {
			continue
		}
		return e, nil
	}
	return tracer.Event{}, io.EOF
}

// next reads the next event of s, and its line (valid until the next read).
func (r *Reader) next(s *source) (tracer.Event, []byte, error) {
	for {
		if err := r.ctx.Err(); err != nil {
			return tracer.Event{}, nil, err
		}
		line, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if s.line == 0 {
				// No line ends in the first MiB: not a recording (/dev/zero, an image).
				r.skipped++
				r.warn("%s is not a porttrace recording (no line ends in its first %d bytes): skipped", s.path, maxLine)
				return tracer.Event{}, nil, io.EOF
			}
			s.line++
			r.warn("%s: line %d is longer than %d bytes: skipped", s.path, s.line, maxLine)
			r.skipped++
			if derr := discardLine(s.br); derr != nil {
				return r.readError(s, derr)
			}
			continue
		}
		if len(line) > 0 && (err == nil || err == io.EOF) {
			s.line++
			whole := line[len(line)-1] == '\n'
			if !whole {
				// A last line without its newline: the writer was stopped mid-line.
				r.truncated = true
				r.warn("%s: cut short: line %d is incomplete; read up to line %d", s.path, s.line, s.line-1)
				return tracer.Event{}, nil, io.EOF
			}
			text := bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(text)) == 0 {
				r.skipBlank(s)
				continue
			}
			e, perr := output.ParseJSON(text)
			if perr != nil {
				r.skipped++
				r.warn("%s: line %d is not a porttrace record (%v): skipped", s.path, s.line, perr)
				continue
			}
			r.records++
			return e, text, nil
		}
		if err == io.EOF {
			return tracer.Event{}, nil, io.EOF
		}
		if err != nil {
			return r.readError(s, err)
		}
	}
}

// skipBlank passes over a blank line, and every newline buffered after it
// in one go: a file of blank lines costs a scan, not a parse a line.
func (r *Reader) skipBlank(s *source) {
	r.blank++
	b, _ := s.br.Peek(s.br.Buffered())
	n := 0
	for n < len(b) && b[n] == '\n' {
		n++
	}
	s.br.Discard(n)
	s.line += n
	r.blank += uint64(n)
}

// readError ends a file that could not be read on: an interrupt is
// returned; anything else (gzip damage, an I/O error) keeps what was read,
// and the file is listed as damaged with how much of it was read.
func (r *Reader) readError(s *source, err error) (tracer.Event, []byte, error) {
	if cerr := r.ctx.Err(); cerr != nil {
		return tracer.Event{}, nil, cerr
	}
	r.truncated = true
	d := Damage{File: s.path, Lines: s.line, Size: s.size, Err: err.Error()}
	if s.in != nil {
		d.Bytes = s.in.n
	}
	r.damaged = append(r.damaged, d)
	r.warn("%s is damaged: %v; read %d lines (%d of its %d bytes) before it", s.path, err, d.Lines, d.Bytes, d.Size)
	return tracer.Event{}, nil, io.EOF
}

func discardLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if err == nil {
			return nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

func (r *Reader) warn(format string, a ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, a...))
	}
}

// Truncated reports whether a file ended in the middle of a record, or
// could not be read to its end.
func (r *Reader) Truncated() bool { return r.truncated }

// Damaged lists the files that could not be read to their end.
func (r *Reader) Damaged() []Damage { return r.damaged }

// Records is the number of records read; Skipped, of damaged lines passed over.
func (r *Reader) Records() uint64 { return r.records }

// Skipped is the number of damaged lines passed over.
func (r *Reader) Skipped() uint64 { return r.skipped }

// Duplicates is the number of events passed over as read before.
func (r *Reader) Duplicates() uint64 { return r.dups }

func (s *source) close() {
	if s.gz != nil {
		s.gz.Close()
	}
	s.f.Close()
}

// Close closes every file.
func (r *Reader) Close() error {
	if r.unwatch != nil {
		r.unwatch()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.opened {
		f.Close()
	}
	return nil
}
