package output

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Printable makes a string from the kernel or a recording (a process name,
// a cgroup path, a file name) safe to print on root's terminal: anyone can
// name a process, so a name must not be able to move the cursor, set the
// window title, or forge a column. Control bytes, invalid UTF-8 and
// characters that do not print are shown as escapes, as `ls -b` does:
// \t, \n, \r, \xNN, \uNNNN; a backslash is doubled so an escape cannot be
// faked.
func Printable(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		case r < 0x80:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case r <= 0xffff:
			b.WriteString(`\u`)
			b.WriteString(pad(strconv.FormatInt(int64(r), 16), 4))
		default:
			b.WriteString(`\U`)
			b.WriteString(pad(strconv.FormatInt(int64(r), 16), 8))
		}
		i += n
	}
	return b.String()
}

// isPlain is the common case, printable ASCII without a backslash, checked
// without allocating.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

func pad(s string, n int) string {
	return strings.Repeat("0", n-len(s)) + s
}

// PadColumns pads s with spaces to w terminal columns. fmt pads by runes,
// but an East Asian wide or fullwidth character (a process named 日本語)
// takes two columns: padded by runes, its line would be pushed right.
func PadColumns(s string, w int) string {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	if n >= w {
		return s
	}
	return s + strings.Repeat(" ", w-n)
}
