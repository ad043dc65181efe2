package docgen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/porttrace/porttrace/internal/cli"
)

// complete runs the generated bash completion as bash does on Tab, on the
// command line words (the last one being completed), and returns what it
// offers.
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, strconv.Quote(w))
	}
	prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
		"\n_porttrace\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", words, err, out)
	}
	return strings.Fields(string(out))
}

func TestBashCompletion(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "porttrace.bash")
	f, err := os.Create(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := Bash(f, cli.Commands()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rec := filepath.Join(dir, "trace.jsonl")
	if err := os.WriteFile(rec, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"porttrace", "--format", ""}, "text json"},
		{[]string{"porttrace", "--format", "=", ""}, "text json"}, // --format=
		{[]string{"porttrace", "--format", "=", "j"}, "json"},
		{[]string{"porttrace", "report", "--format", ""}, "text json html"},
		{[]string{"porttrace", "--hooks", ""}, "auto precise kprobe portable"},
		{[]string{"porttrace", "--proto", "t"}, "tcp"},
		{[]string{"porttrace", "--color", ""}, "auto always never"},
		{[]string{"porttrace", "doctor", "--color", "n"}, "never"},
		{[]string{"porttrace", "--rot"}, "--rotate-size --rotate-keep --rotate-compress"},
		{[]string{"porttrace", "re"}, "report"},
		{[]string{"porttrace", ""}, "report top doctor serve"},
		{[]string{"porttrace", "-p", "80", ""}, ""}, // the trace takes no arguments
		{[]string{"porttrace", "--port", ""}, ""},   // no list of ports to offer
		{[]string{"porttrace", "top", "--"}, "--interval --duration --cri-socket --help"},
		{[]string{"porttrace", "-o", dir + "/tr"}, rec},
		{[]string{"porttrace", "report", "--output", dir + "/tr"}, rec},
		{[]string{"porttrace", "report", "--port", "80", dir + "/tr"}, rec},
		{[]string{"porttrace", "--pid", "1"}, ""}, // checked below
	} {
		got := complete(t, script, c.words...)
		if c.words[1] == "--pid" {
			if len(got) == 0 || got[0] != "1" {
				t.Errorf("--pid 1<Tab> offers %q, not pid 1 first", got)
			}
			continue
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%q<Tab> offers %q, want %q", c.words, got, c.want)
		}
	}
}
