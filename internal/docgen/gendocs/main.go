// Command gendocs writes porttrace's man page and its bash, zsh and fish
// completions into a directory, from the program's own flag definitions.
// The Makefile runs it for the packages: go run ./internal/docgen/gendocs.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/porttrace/porttrace/internal/cli"
	"github.com/porttrace/porttrace/internal/docgen"
)

func main() {
	out := flag.String("o", "dist/share", "directory to write porttrace.8, porttrace.bash, _porttrace and porttrace.fish into")
	readme := flag.String("readme", "README.md", "the README whose JSON fields table the page shows")
	version := flag.String("version", cli.Version(), "the version the page names")
	date := flag.String("date", "", "the date the page names (YYYY-MM-DD): the release's commit date, so a rebuild gives the same page")
	flag.Parse()
	if err := run(*out, *readme, docgen.Page{Version: *version, Date: *date}); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, readme string, p docgen.Page) error {
	md, err := os.ReadFile(readme)
	if err != nil {
		return fmt.Errorf("read the README: %w", err)
	}
	p.README = string(md)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	cmds := cli.Commands()
	for name, write := range map[string]func(io.Writer) error{
		"porttrace.8":    func(w io.Writer) error { return docgen.Man(w, cmds, p) },
		"porttrace.bash": func(w io.Writer) error { return docgen.Bash(w, cmds) },
		"_porttrace":     func(w io.Writer) error { return docgen.Zsh(w, cmds) },
		"porttrace.fish": func(w io.Writer) error { return docgen.Fish(w, cmds) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return err
		}
		// Build output, not a record: replacing it is the point, but never
		// through a link someone left in its place.
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		_, err = f.Write(b.Bytes())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
