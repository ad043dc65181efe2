package record

import (
	"hash/maphash"

	"github.com/porttrace/porttrace/tracer"
)

// repeated reports whether e was read before from another file; if not, it
// remembers e while a later file may still repeat it. The line is hashed
// only where files overlap: a single recording costs nothing.
// The hash is h when line is nil (a peeked event, hashed when read).
func (r *Reader) repeated(s *source, e *tracer.Event, line []byte, h uint64) bool {
	hashed := line == nil
	hash := func() {
		if !hashed {
			h, hashed = maphash.Bytes(r.seed, line), true
		}
	}
	if !r.readTo.IsZero() && !e.Time.After(r.readTo) {
		hash()
		if _, ok := r.seen[h]; ok {
			s.dups++
			r.dups++
			return true
		}
	}
	if e.Time.After(s.last) {
		s.last = e.Time
	}
	if next := r.cur + 1; next < len(r.files) && !e.Time.Before(r.files[next].first) {
		if len(r.seen) < maxSeen {
			hash()
			r.seen[h] = struct{}{}
		} else if !r.seenFull {
			r.seenFull = true
			r.warn("%s: more than %d events overlap the files after it: events repeated beyond them are not found, and may be counted twice", s.path, maxSeen)
		}
	}
	return false
}

func (r *Reader) endOf(s *source) {
	if s.dups > 0 {
		r.warn("%s: %d events were already read from another file (the same recording twice, or rotated files that overlap): counted once", s.path, s.dups)
	}
	if s.last.After(r.readTo) {
		r.readTo = s.last
	}
	r.cur++
}
