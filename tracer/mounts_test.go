package tracer

import "testing"

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified",
		`/mnt/with\040space`:     "/mnt/with space",
		`/odd\134name`:           `/odd\name`,
		`/trailing\04`:           `/trailing\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRange(t *testing.T) {
	r, err := parseRange("32768\t60999\n")
	if err != nil || r != (PortRange{32768, 60999}) || r.Size() != 28232 || !r.Contains(32768) || r.Contains(61000) {
		t.Errorf("parseRange = %v, %v", r, err)
	}
	for _, bad := range []string{"", "1", "a b", "1 70000"} {
		if _, err := parseRange(bad); err == nil {
			t.Errorf("parseRange(%q) accepted", bad)
		}
	}
}
