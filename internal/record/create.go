package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// NewFile is a file porttrace creates as root, in a directory others may
// write to: created exclusively with mode 0600, never through a symlink.
// Replacing an existing file (--force) writes a new file beside it and
// renames it over the old one only at Commit, so the old one survives a
// start that fails, and its owner's mode and links are not reused.
type NewFile struct {
	*os.File
	Path string // the name asked for
	tmp  string // with --force over an existing file: where it is written until Commit
}

// CreateNew creates path for writing. An existing path is an error unless
// force is set, and even then only a regular file is replaced: a symlink,
// FIFO, device or directory is refused, and nothing is ever opened through
// it (a FIFO would block the open).
func CreateNew(path string, force bool) (*NewFile, error) {
	f, err := createExcl(path)
	if err == nil {
		return &NewFile{File: f, Path: path}, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if !force {
		return nil, fmt.Errorf("%s already exists: porttrace does not overwrite files; choose another name, or add --force to replace it", path)
	}
	if err := replaceable(path); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create a file beside %s to replace it: %w", path, err)
	}
	return &NewFile{File: tmp, Path: path, tmp: tmp.Name()}, nil
}

// createExcl is the one way porttrace creates a file.
func createExcl(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
}

// replaceable says why path may not be replaced by --force, if it may not.
func replaceable(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, not a regular file: --force replaces only a regular file; remove it or choose another name", path, kindOf(st.Mode()))
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// Commit puts the file at its name: with --force, the new file replaces
// the old one now. It does nothing for a file created under its name.
func (f *NewFile) Commit() error {
	if f.tmp == "" {
		return nil
	}
	if err := replaceable(f.Path); err != nil {
		return err
	}
	if err := os.Rename(f.tmp, f.Path); err != nil {
		return fmt.Errorf("replace %s: %w", f.Path, err)
	}
	f.tmp = ""
	return nil
}

// Committed reports whether the file is at its name.
func (f *NewFile) Committed() bool { return f.tmp == "" }

// Abort closes and removes what was created; an old file --force was to
// replace stays as it was.
func (f *NewFile) Abort() {
	f.File.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
		return
	}
	os.Remove(f.Path)
}

// renameNoReplace renames within a directory, refusing to replace what is
// at to: a name someone planted there is an error, not overwritten.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A filesystem without RENAME_NOREPLACE: a hard link also refuses
		// an existing name.
		if err = unix.Link(from, to); err == nil {
			err = unix.Unlink(from)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s already exists (porttrace did not make it): remove it", to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
