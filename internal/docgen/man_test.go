package docgen

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/porttrace/porttrace/internal/cli"
)

func manPage(t *testing.T, cmds []cli.Command) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Man(&b, cmds, Page{Version: "v0", Date: "2026-11-30", README: string(readme)}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// section is the part of the page that documents command c.
func section(page string, c cli.Command) string {
	start, end := ".SH OPTIONS\n", ".SH COMMANDS\n"
	if c.Sub != "" {
		start, end = ".SS \""+c.Name+"\"\n", "\n.S"
	}
	_, rest, ok := strings.Cut(page, start)
	if !ok {
		return ""
	}
	s, _, _ := strings.Cut(rest, end)
	return s
}

// missingFlags lists the flags of cmds that the page does not document
// under their command.
func missingFlags(page string, cmds []cli.Command) []string {
	var missing []string
	for _, c := range cmds {
		sec := section(page, c)
		// The flags --help prints, and any its flag set defines.
		names := regexp.MustCompile(`(?m)^  (?:-\w, )?--([\w-]+)`).FindAllStringSubmatch(c.Help, -1)
		var flags []string
		for _, n := range names {
			flags = append(flags, n[1])
		}
		for _, f := range flagDocs(c) {
			flags = append(flags, f.name)
			if f.short != "" && !strings.Contains(sec, `\fB\-`+f.short+`\fR, \fB\-\-`+f.name+`\fR`) {
				missing = append(missing, c.Name+" -"+f.short)
			}
		}
		for _, f := range flags {
			if !strings.Contains(sec, ".TP\n") || !regexp.MustCompile(`(?m)^(\\fB\\-\w\\fR, )?\\fB\\-\\-`+regexp.QuoteMeta(strings.ReplaceAll(f, "-", `\-`))+`\\fR`).MatchString(sec) {
				missing = append(missing, c.Name+" --"+f)
			}
		}
	}
	return missing
}

func TestManHasEveryFlag(t *testing.T) {
	cmds := cli.Commands()
	page := manPage(t, cmds)
	if m := missingFlags(page, cmds); len(m) > 0 {
		t.Errorf("flags the program has and the page lacks: %q", m)
	}
	// Each command's flags in its own section, and only there.
	if s := section(page, cmds[1]); !strings.Contains(s, `\fB\-\-since\fR \fITIME\fR`) || strings.Contains(s, `\-\-hooks`) {
		t.Errorf("report's section:\n%s", s)
	}
	if s := section(page, cmds[0]); !strings.Contains(s, `\fB\-\-hooks\fR \fITIER\fR`) || strings.Contains(s, `\-\-since`) {
		t.Errorf("the trace's options:\n%s", s)
	}
	if strings.Contains(page, "skip\\-hook") || strings.Contains(page, "cpuprofile") {
		t.Error("the page shows a hidden flag")
	}
	for _, c := range cmds {
		if !strings.Contains(page, `\fB`+esc(c.Name)+`\fR`) {
			t.Errorf("the synopsis lacks %s", c.Name)
		}
	}
}

// The check above is not vacuous: a flag added to the program after the
// page was made is reported, under its command.
func TestManMissingFlagIsCaught(t *testing.T) {
	cmds := cli.Commands()
	page := manPage(t, cmds)
	cmds[1].Flags.StringP("group-by", "g", "", "group by `KEY`")
	cmds[3].Flags.Bool("json", false, "checks as JSON")
	if m := missingFlags(page, cmds); !slices.Equal(m, []string{"porttrace report -g", "porttrace report --group-by", "porttrace doctor --json"}) {
		t.Errorf("missing: %q", m)
	}
}

func TestManSections(t *testing.T) {
	page := manPage(t, cli.Commands())
	for _, want := range []string{
		".TH PORTTRACE 8 \"2026-11-30\" \"porttrace v0\"",
		".SH EXIT STATUS\n.TP\n\\fB0\\fR\n", "\\fB1\\fR\n", "\\fB2\\fR\nA bad command line",
		".SH ENVIRONMENT\n", "\\fBNO_COLOR\\fR\n", "\\fBPORTTRACE_DEBUG\\fR\n",
		".SH FILES\n", "\\fB/etc/default/porttrace\\fR\n", "\\fB/var/log/porttrace/trace.jsonl\\fR\n",
		"\nsudo porttrace \\-\\-port 60698 ", // an example
		"porttrace report trace.jsonl \\-\\-format html \\-o incident.html",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Every JSON field the README documents.
	_, fields, _ := strings.Cut(page, ".SH JSON FIELDS\n")
	fields, _, _ = strings.Cut(fields, ".SH ")
	for _, f := range []string{"event", "time", "via", "ephemeral", "deferred", "held_ns", "search_ns", "dest_in_use", "top_holders", "estimated", "tier_reason", "duration_ns"} {
		if !strings.Contains(fields, `\fB`+f+`\fR`) {
			t.Errorf("JSON FIELDS lacks %s", f)
		}
	}
	readme, _ := os.ReadFile("../../README.md")
	if n, rows := strings.Count(fields, ".TP\n"), markdownTable(string(readme), "JSON fields"); n != len(rows) || n < 20 {
		t.Errorf("JSON FIELDS has %d entries, the README's table %d", n, len(rows))
	}
	// No line the page's text starts could be taken for a roff request.
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, "'") || regexp.MustCompile(`^\.[^A-Z\\]`).MatchString(l) && !strings.HasPrefix(l, ".nh") && !strings.HasPrefix(l, ".ad") && !strings.HasPrefix(l, ".nf") && !strings.HasPrefix(l, ".fi") {
			t.Errorf("line %q", l)
		}
	}
}
