package docgen

import (
	"regexp"
	"strings"
)

// roffChars are the characters the help text uses that roff spells by name,
// so the page renders the same in every locale.
var roffChars = strings.NewReplacer(`\`, `\e`, "-", `\-`, "—", `\(em`, "–", `\(en`, "→", `\(->`, "µ", `\(mc`, "’", "'")

// esc makes plain text safe to put in a roff page: no escapes or requests
// of its own, and hyphens that copy as the ASCII ones the options need.
func esc(s string) string {
	lines := strings.Split(roffChars.Replace(s), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

var (
	mdLink   = regexp.MustCompile(`\[([^]]*)\]\([^)]*\)`)
	mdCode   = regexp.MustCompile("`([^`]*)`")
	mdStrong = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdEm     = regexp.MustCompile(`\*([^*]+)\*`)
)

// markdown turns the inline Markdown of a README table cell into roff.
func markdown(s string) string {
	s = mdLink.ReplaceAllString(strings.ReplaceAll(s, `\|`, "|"), "$1")
	s = esc(s)
	s = mdCode.ReplaceAllString(s, `\fB$1\fR`)
	s = mdStrong.ReplaceAllString(s, `\fB$1\fR`)
	return mdEm.ReplaceAllString(s, `\fI$1\fR`)
}

// markdownTable returns the rows of the first table under the README heading
// title, each split into its cells.
func markdownTable(readme, title string) [][]string {
	_, rest, ok := strings.Cut(readme, "\n## "+title+"\n")
	if !ok {
		return nil
	}
	var rows [][]string
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 || strings.HasPrefix(line, "## ") {
				break
			}
			continue
		}
		cells := splitCells(strings.Trim(line, "|"))
		if strings.Trim(cells[0], "-: ") == "" {
			continue // the separator under the header
		}
		rows = append(rows, cells)
	}
	if len(rows) > 0 {
		rows = rows[1:] // the header
	}
	return rows
}

// splitCells splits a table row at the bars that are not escaped.
func splitCells(row string) []string {
	var cells []string
	start := 0
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\':
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(row[start:i]))
			start = i + 1
		}
	}
	return append(cells, strings.TrimSpace(row[start:]))
}
