package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Backup writes a consistent snapshot of the store to w, in Badger's backup
// format, while the store stays in use.
func (s *Store) Backup(w io.Writer) error {
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("backing up the store: %w", err)
	}
	return nil
}

// ErrNotEmpty is returned by Restore when the target directory already
// holds something.
var ErrNotEmpty = errors.New("directory is not empty")

// Restore creates a store in dir, which must be absent or empty, from a
// stream written by Backup.
func Restore(dir string, r io.Reader, o Options) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
	}
	o.GCInterval = -1
	st, err := Open(dir, o)
	if err != nil {
		return err
	}
	if err := st.db.Load(r, 256); err != nil {
		st.Close()
		return fmt.Errorf("loading the backup: %w", err)
	}
	return st.Close()
}
