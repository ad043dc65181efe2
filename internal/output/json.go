// Package output renders tracer Events for people (aligned, coloured text)
// and for programs (JSON Lines). Both read the same Event; the JSON field
// names are the interface other tools parse, documented in the README.
package output

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/porttrace/porttrace/tracer"
)

// TimeLayout is RFC 3339 with nanoseconds, fixed width, always UTC.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// AppendJSON appends e as one JSON object and a newline. Fields that do not
// apply to e.Kind are left out; fields that do apply are always present.
func AppendJSON(b []byte, e *tracer.Event) []byte {
	b = append(b, `{"event":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","time":"`...)
	b = e.Time.UTC().AppendFormat(b, TimeLayout)
	b = append(b, '"')
	switch e.Kind {
	case tracer.KindAlloc, tracer.KindRelease, tracer.KindFail, tracer.KindFree, tracer.KindSlow:
		b = appendSocket(b, e)
	case tracer.KindLost:
		b = appendUint(b, "count", e.Count)
	case tracer.KindClock:
		b = append(b, `,"step_ns":`...)
		b = strconv.AppendInt(b, int64(e.Step), 10)
	case tracer.KindStart:
		b = appendStart(b, e.Start)
	case tracer.KindStop:
		b = appendStop(b, e.Stop)
	}
	return append(b, "}\n"...)
}

func appendSocket(b []byte, e *tracer.Event) []byte {
	b = appendStr(b, "proto", e.Proto.String())
	b = appendStr(b, "family", e.Family.String())
	b = appendUint(b, "port", uint64(e.Port))
	b = appendStr(b, "laddr", addrString(e.LocalAddr))
	b = appendStr(b, "raddr", addrString(e.RemoteAddr))
	b = appendUint(b, "rport", uint64(e.RemotePort))
	b = appendStr(b, "via", e.Via.String())
	if e.Kind != tracer.KindFail {
		b = append(b, `,"ephemeral":`...)
		b = strconv.AppendBool(b, e.Ephemeral)
	}
	if e.Deferred {
		b = append(b, `,"deferred":true`...)
	}
	if e.Late {
		b = append(b, `,"late":true`...)
	}
	b = appendUint(b, "pid", uint64(e.PID))
	b = appendUint(b, "tid", uint64(e.TID))
	b = appendStr(b, "comm", e.Comm)
	if e.Thread != "" {
		b = appendStr(b, "thread", e.Thread)
	}
	b = appendUint(b, "uid", uint64(e.UID))
	b = appendStr(b, "cgroup", e.Cgroup)
	b = appendUint(b, "cgroup_id", e.CgroupID)
	b = appendUint(b, "netns", uint64(e.NetNS))
	b = appendWorkload(b, &e.Workload)
	switch e.Kind {
	case tracer.KindAlloc, tracer.KindSlow:
		if e.Search > 0 || e.Kind == tracer.KindSlow {
			b = appendUint(b, "search_ns", uint64(e.Search))
		}
	case tracer.KindRelease, tracer.KindFree:
		b = appendUint(b, "held_ns", uint64(e.Held))
		if e.Proto == tracer.TCP {
			b = appendStr(b, "state", e.State.String())
		}
		if e.Kind == tracer.KindFree {
			b = append(b, `,"estimated":`...)
			b = strconv.AppendBool(b, e.Estimated)
		}
	case tracer.KindFail:
		b = appendStr(b, "errno", ErrnoName(e.Errno))
		if e.Counted {
			b = appendUint(b, "held_at_call", uint64(e.HeldAtCall))
		}
		if p := e.Pressure; p != nil {
			b = append(b, `,"context_read_ns":`...)
			b = strconv.AppendInt(b, int64(p.ReadAfter), 10)
			b = appendUint(b, "in_use", uint64(p.InUse))
			b = appendUint(b, "range_size", uint64(p.RangeSize))
			b = appendUint(b, "timewait", uint64(p.TimeWait))
			if e.Via == tracer.ViaConnect {
				b = appendUint(b, "dest_in_use", uint64(p.DestInUse))
			}
			b = append(b, `,"top_holders":[`...)
			for i, h := range p.TopHolders {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"pid":`...)
				b = strconv.AppendUint(b, uint64(h.PID), 10)
				b = appendStr(b, "comm", h.Comm)
				b = appendUint(b, "count", uint64(h.Count))
				b = append(b, '}')
			}
			b = append(b, ']')
		}
	}
	return b
}

func appendStart(b []byte, s *tracer.StartInfo) []byte {
	if s == nil {
		return b
	}
	b = appendStr(b, "version", s.Version)
	b = appendStr(b, "tier", s.Tier)
	b = appendStr(b, "tier_reason", s.TierReason)
	b = appendStrs(b, "hooks", s.Hooks)
	b = appendStr(b, "filter", s.Filter)
	b = append(b, `,"namespaces":[`...)
	for i, n := range s.Namespaces {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"netns":`...)
		b = strconv.AppendUint(b, uint64(n.Inode), 10)
		if n.Name != "" {
			b = appendStr(b, "name", n.Name)
		}
		b = append(b, `,"range":[`...)
		b = strconv.AppendUint(b, uint64(n.Range.Lo), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(n.Range.Hi), 10)
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	if len(s.Notes) > 0 {
		b = appendStrs(b, "notes", s.Notes)
	}
	return b
}

func appendStrs(b []byte, key string, vs []string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

func appendStop(b []byte, s *tracer.StopInfo) []byte {
	if s == nil {
		return b
	}
	b = appendUint(b, "events", s.Events)
	b = appendUint(b, "allocs", s.Allocs)
	b = appendUint(b, "releases", s.Releases)
	b = appendUint(b, "fails", s.Fails)
	b = appendUint(b, "lost", s.Lost)
	b = appendUint(b, "duration_ns", uint64(s.Duration/time.Nanosecond))
	return b
}

func appendUint(b []byte, key string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendStr(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. Command names are arbitrary
// bytes: control characters are escaped and invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\t':
					b = append(b, '\\', 't')
				case '\r':
					b = append(b, '\\', 'r')
				default:
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
