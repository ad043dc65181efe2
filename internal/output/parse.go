package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/porttrace/porttrace/tracer"
)

// ParseJSON reads one JSON Lines record written by AppendJSON back into an
// Event. Unknown fields are skipped, so newer recordings stay readable. The
// flat events are scanned by hand — a recording is millions of them — and
// start events, which nest, go through encoding/json.
func ParseJSON(line []byte) (tracer.Event, error) {
	var e tracer.Event
	p := parser{b: line}
	p.ws()
	if !p.eat('{') {
		return e, p.errf("a record starts with {")
	}
	first := true
	for {
		p.ws()
		if p.eat('}') {
			break
		}
		if !first && !p.eat(',') {
			return e, p.errf("expected , or }")
		}
		first = false
		p.ws()
		key, err := p.str()
		if err != nil {
			return e, err
		}
		p.ws()
		if !p.eat(':') {
			return e, p.errf("expected :")
		}
		p.ws()
		if key == "event" && e.Kind == 0 {
			v, err := p.str()
			if err != nil {
				return e, err
			}
			k, ok := tracer.ParseKind(v)
			if !ok {
				return e, fmt.Errorf("unknown event %q", v)
			}
			e.Kind = k
			if k == tracer.KindStart {
				e, err := parseStart(line)
				if err == nil {
					err = validate(&e)
				}
				return e, err
			}
			continue
		}
		if err := p.field(&e, key); err != nil {
			return e, err
		}
	}
	p.ws()
	if p.i != len(p.b) {
		return e, p.errf("text after the record")
	}
	if e.Kind == 0 {
		return e, errors.New("record has no event field")
	}
	if e.Time.IsZero() {
		return e, errors.New("record has no time field")
	}
	return e, validate(&e)
}

func (p *parser) field(e *tracer.Event, key string) error {
	switch key {
	case "time":
		s, err := p.str()
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time %q is not RFC 3339", s)
		}
		e.Time = t.UTC()
	case "proto":
		return p.named(key, func(s string) bool { v, ok := tracer.ParseProto(s); e.Proto = v; return ok || s == "" })
	case "family":
		return p.named(key, func(s string) bool { v, ok := tracer.ParseFamily(s); e.Family = v; return ok || s == "" })
	case "via":
		return p.named(key, func(s string) bool { v, ok := tracer.ParseVia(s); e.Via = v; return ok || s == "" })
	case "state":
		return p.named(key, func(s string) bool { v, ok := tracer.ParseTCPState(s); e.State = v; return ok || s == "" })
	case "errno":
		return p.named(key, func(s string) bool { v, ok := ParseErrno(s); e.Errno = v; return ok })
	case "laddr", "raddr":
		s, err := p.str()
		if err != nil {
			return err
		}
		var a netip.Addr
		if s != "" {
			if a, err = netip.ParseAddr(s); err != nil {
				return fmt.Errorf("%s %q is not an address", key, s)
			}
		}
		if key == "laddr" {
			e.LocalAddr = a
		} else {
			e.RemoteAddr = a
		}
	case "comm":
		s, err := p.str()
		e.Comm = s
		return err
	case "thread":
		s, err := p.str()
		e.Thread = s
		return err
	case "step_ns", "context_read_ns":
		neg := p.eat('-')
		n, err := p.uint(1<<63 - 1)
		d := time.Duration(n)
		if neg {
			d = -d
		}
		if key == "step_ns" {
			e.Step = d
		} else {
			if e.Pressure == nil {
				e.Pressure = &tracer.Pressure{}
			}
			e.Pressure.ReadAfter = d
		}
		return err
	case "held_at_call":
		n, err := p.uint(1 << 31)
		e.HeldAtCall, e.Counted = int(n), true
		return err
	case "cgroup":
		s, err := p.str()
		e.Cgroup = s
		return err
	case "container_id", "container", "pod_uid", "pod", "pod_namespace":
		s, err := p.str()
		*workloadField(&e.Workload, key) = s
		return err
	case "ephemeral", "deferred", "estimated", "late":
		v, err := p.boolean()
		switch key {
		case "ephemeral":
			e.Ephemeral = v
		case "deferred":
			e.Deferred = v
		case "late":
			e.Late = v
		default:
			e.Estimated = v
		}
		return err
	case "in_use", "range_size", "timewait", "dest_in_use":
		n, err := p.uint(1 << 31)
		if err != nil {
			return err
		}
		if e.Pressure == nil {
			e.Pressure = &tracer.Pressure{}
		}
		switch key {
		case "in_use":
			e.Pressure.InUse = int(n)
		case "range_size":
			e.Pressure.RangeSize = int(n)
		case "timewait":
			e.Pressure.TimeWait = int(n)
		default:
			e.Pressure.DestInUse = int(n)
		}
	case "port", "rport":
		n, err := p.uint(65535)
		if key == "port" {
			e.Port = uint16(n)
		} else {
			e.RemotePort = uint16(n)
		}
		return err
	case "pid", "tid", "uid", "netns":
		n, err := p.uint(1<<32 - 1)
		switch key {
		case "pid":
			e.PID = uint32(n)
		case "tid":
			e.TID = uint32(n)
		case "uid":
			e.UID = uint32(n)
		default:
			e.NetNS = uint32(n)
		}
		return err
	case "search_ns":
		n, err := p.uint(1<<63 - 1)
		e.Search = time.Duration(n)
		return err
	case "cgroup_id", "held_ns", "count", "events", "allocs", "releases", "fails", "lost", "duration_ns":
		n, err := p.uint(1<<63 - 1)
		if err != nil {
			return err
		}
		stopField(e, key, n)
	default:
		return p.skip()
	}
	return nil
}

func stopField(e *tracer.Event, key string, n uint64) {
	switch key {
	case "cgroup_id":
		e.CgroupID = n
		return
	case "held_ns":
		e.Held = time.Duration(n)
		return
	case "count":
		e.Count = n
		return
	}
	if e.Stop == nil {
		e.Stop = &tracer.StopInfo{}
	}
	switch key {
	case "events":
		e.Stop.Events = n
	case "allocs":
		e.Stop.Allocs = n
	case "releases":
		e.Stop.Releases = n
	case "fails":
		e.Stop.Fails = n
	case "lost":
		e.Stop.Lost = n
	case "duration_ns":
		e.Stop.Duration = time.Duration(n)
	}
}

func parseStart(line []byte) (tracer.Event, error) {
	var s struct {
		Time       string   `json:"time"`
		Version    string   `json:"version"`
		Tier       string   `json:"tier"`
		TierReason string   `json:"tier_reason"`
		Hooks      []string `json:"hooks"`
		Filter     string   `json:"filter"`
		Notes      []string `json:"notes"`
		Namespaces []struct {
			NetNS uint32    `json:"netns"`
			Name  string    `json:"name"`
			Range [2]uint16 `json:"range"`
		} `json:"namespaces"`
	}
	if err := json.Unmarshal(line, &s); err != nil {
		return tracer.Event{}, fmt.Errorf("start record: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, s.Time)
	if err != nil {
		return tracer.Event{}, fmt.Errorf("time %q is not RFC 3339", s.Time)
	}
	info := &tracer.StartInfo{Version: s.Version, Tier: s.Tier, TierReason: s.TierReason, Hooks: s.Hooks, Filter: s.Filter, Notes: s.Notes}
	for _, n := range s.Namespaces {
		info.Namespaces = append(info.Namespaces, tracer.Namespace{Inode: n.NetNS, Name: n.Name, Range: tracer.PortRange{Lo: n.Range[0], Hi: n.Range[1]}})
	}
	return tracer.Event{Kind: tracer.KindStart, Time: t.UTC(), Start: info}, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) errf(msg string) error { return fmt.Errorf("%s at byte %d", msg, p.i+1) }

func (p *parser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r' || p.b[p.i] == '\n') {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) named(key string, set func(string) bool) error {
	s, err := p.str()
	if err != nil {
		return err
	}
	if !set(s) {
		return fmt.Errorf("%s %q is not one porttrace writes", key, s)
	}
	return nil
}

func (p *parser) str() (string, error) {
	if !p.eat('"') {
		return "", p.errf("expected a string")
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := string(p.b[start:p.i])
			p.i++
			return s, nil
		}
		if c == '\\' {
			return p.strSlow(start)
		}
		if c < 0x20 {
			return "", p.errf("control character in a string")
		}
		p.i++
	}
	return "", p.errf("unterminated string")
}

// strSlow decodes a string with escapes, from its first byte at start.
func (p *parser) strSlow(start int) (string, error) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", p.errf("control character in a string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", p.errf("unterminated escape")
		}
		esc := p.b[p.i+1]
		p.i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					p.i += 2
					r2, ok := p.hex4()
					if !ok {
						return "", p.errf("bad \\u escape")
					}
					r = utf16.DecodeRune(r, r2)
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", p.errf("bad escape")
		}
	}
	return "", p.errf("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

func (p *parser) uint(max uint64) (uint64, error) {
	start := p.i
	var n uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if n > (max-d)/10 {
			return 0, p.errf("number too large")
		}
		n = n*10 + d
		p.i++
	}
	if p.i == start {
		return 0, p.errf("expected a number")
	}
	return n, nil
}

func (p *parser) boolean() (bool, error) {
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		p.i += 4
		return true, nil
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		p.i += 5
		return false, nil
	}
	return false, p.errf("expected true or false")
}

// skip passes over one value of any kind.
func (p *parser) skip() error {
	if p.i >= len(p.b) {
		return p.errf("expected a value")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, err := p.str()
		return err
	case c == '[' || c == '{':
		depth := 0
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '"':
				if _, err := p.str(); err != nil {
					return err
				}
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
			}
			p.i++
			if depth == 0 {
				return nil
			}
		}
		return p.errf("unterminated value")
	default:
		start := p.i
		for p.i < len(p.b) && p.b[p.i] != ',' && p.b[p.i] != '}' && p.b[p.i] != ' ' {
			p.i++
		}
		if p.i == start {
			return p.errf("expected a value")
		}
		return nil
	}
}
