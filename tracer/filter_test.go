package tracer

import (
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	good := []struct {
		in   string
		want string
		n    int
	}{
		{"60698", "60698", 1},
		{"60000-60100,8080", "8080,60000-60100", 102},
		{" 1 , 65535 ", "1,65535", 2},
		{"5-5", "5", 1},
		{"10-12,11", "10-12", 3},
	}
	for _, c := range good {
		s, err := ParsePorts(c.in)
		if err != nil {
			t.Errorf("ParsePorts(%q): %v", c.in, err)
			continue
		}
		if s.String() != c.want || s.Len() != c.n {
			t.Errorf("ParsePorts(%q) = %q (%d ports), want %q (%d)", c.in, s.String(), s.Len(), c.want, c.n)
		}
	}
	bad := map[string]string{
		"70000":  "out of range",
		"0":      "out of range",
		"abc":    "not a port number",
		"":       "no port given",
		"10-5":   "runs backwards",
		"1,,2":   "not a port number",
		"-5":     "not a port number",
		"80-":    "not a port number",
		"1.5":    "not a port number",
		"99999x": "not a port number",
	}
	for in, want := range bad {
		if _, err := ParsePorts(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePorts(%q) error = %v, want one saying %q", in, err, want)
		}
	}
}

func TestPortSetHas(t *testing.T) {
	var s PortSet
	for _, p := range []uint16{1, 63, 64, 65535} {
		s.Add(p)
	}
	for p := 0; p < 65536; p++ {
		want := p == 1 || p == 63 || p == 64 || p == 65535
		if s.Has(uint16(p)) != want {
			t.Fatalf("Has(%d) = %v", p, !want)
		}
	}
	if s.Len() != 4 {
		t.Errorf("Len = %d, want 4", s.Len())
	}
}

func TestFilterValidateAndString(t *testing.T) {
	f := Filter{PIDs: []uint32{7, 3}, Comms: []string{"curl"}, Proto: TCP, Family: IPv6}
	f.Ports.Add(80)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.String(), "port 80 pid 3,7 comm curl proto tcp family ipv6"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (&Filter{}).String(); got != "all" {
		t.Errorf("empty filter String() = %q", got)
	}
	for _, bad := range []Filter{
		{Comms: []string{"a-very-long-command-name"}},
		{Comms: []string{""}},
		{PIDs: make([]uint32, MaxPIDs+1)},
		{PIDs: []uint32{0}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted it", bad)
		}
	}
}
