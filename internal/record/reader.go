package record

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// maxLine bounds one record; a longer line is damage, not data.
const maxLine = 1 << 20

// Reader streams the events of one or more recordings, plain or gzip, file
// after file in the order of their first event. Damaged lines are skipped
// with a warning; a file cut short is read up to its last whole line.
type Reader struct {
	files     []*source
	cur       int
	Warn      func(msg string) // called for each problem found; may be nil
	truncated bool
	records   uint64
	skipped   uint64
}

type source struct {
	path  string
	f     *os.File
	gz    *gzip.Reader
	br    *bufio.Reader
	line  int
	first time.Time
	peek  *tracer.Event
}

// Open opens every path and orders them by the time of their first event.
func Open(paths []string, warn func(string)) (*Reader, error) {
	r := &Reader{Warn: warn}
	for _, p := range paths {
		s, err := openSource(p)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.files = append(r.files, s)
		// Peek the first record to order the files.
		e, err := r.next(s)
		if err == nil {
			s.peek = &e
			s.first = e.Time
		}
	}
	sort.SliceStable(r.files, func(i, j int) bool { return r.files[i].first.Before(r.files[j].first) })
	return r, nil
}

func openSource(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	s := &source{path: path, f: f}
	br := bufio.NewReaderSize(f, maxLine)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a readable gzip file: %w", path, err)
		}
		gz.Multistream(true)
		s.gz = gz
		br = bufio.NewReaderSize(gz, maxLine)
	}
	s.br = br
	return s, nil
}

// Next returns the next event, or io.EOF after the last.
func (r *Reader) Next() (tracer.Event, error) {
	for r.cur < len(r.files) {
		s := r.files[r.cur]
		if s.peek != nil {
			e := *s.peek
			s.peek = nil
			return e, nil
		}
		e, err := r.next(s)
		if err == io.EOF {
			r.cur++
			continue
		}
		return e, err
	}
	return tracer.Event{}, io.EOF
}

func (r *Reader) next(s *source) (tracer.Event, error) {
	for {
		line, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.line++
			r.warn("%s: line %d is longer than %d bytes: skipped", s.path, s.line, maxLine)
			r.skipped++
			if derr := discardLine(s.br); derr != nil {
				return tracer.Event{}, io.EOF
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
				return tracer.Event{}, io.EOF
			}
			e, perr := output.ParseJSON(bytes.TrimRight(line, "\r\n"))
			if perr != nil {
				r.skipped++
				r.warn("%s: line %d is not a porttrace record (%v): skipped", s.path, s.line, perr)
				continue
			}
			r.records++
			return e, nil
		}
		if err == io.EOF {
			return tracer.Event{}, io.EOF
		}
		if err != nil {
			// gzip cut short, or a read error: keep what was read.
			r.truncated = true
			r.warn("%s: stopped after line %d: %v", s.path, s.line, err)
			return tracer.Event{}, io.EOF
		}
	}
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

// Truncated reports whether a file ended in the middle of a record.
func (r *Reader) Truncated() bool { return r.truncated }

// Records is the number of records read; Skipped, of damaged lines passed over.
func (r *Reader) Records() uint64 { return r.records }

// Skipped is the number of damaged lines passed over.
func (r *Reader) Skipped() uint64 { return r.skipped }

// Close closes every file.
func (r *Reader) Close() error {
	for _, s := range r.files {
		if s.gz != nil {
			s.gz.Close()
		}
		s.f.Close()
	}
	return nil
}
