package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Compact rewrites the data file at path, which no process may have open, with its live records
// alone, through a new file renamed into its place. bbolt leaves what a write replaced or
// deleted in the file's free pages until it reuses them, and copies those pages into every
// backup: after replacing values that must not survive, such as keys stored in the clear,
// compacting is what makes sure they are gone.
func Compact(path string) error {
	src, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("data file %s is in use by another mcert process; stop it before compacting: %w", path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("open data file %s: %w", path, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mcert-*.db.compact")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Close(); err != nil {
		return err
	}
	dst, err := bbolt.Open(tmp.Name(), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	// Commits every 64 MiB, so that a large file does not have to fit in memory at once.
	err = bbolt.Compact(dst, src, 64<<20)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("compact data file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Until the directory is flushed, a crash could bring back the old file.
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
