package storage_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/weftnet/weft/storage"
)

// A crash between Badger creating a log file and sizing it leaves an empty
// file; Open must still work and keep the data.
func TestOpenAfterCrashLeftEmptyLogs(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.Open(dir, storage.Options{GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00099.mem", "000099.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err = storage.Open(dir, storage.Options{GCInterval: -1})
	if err != nil {
		t.Fatalf("Open after a crash left empty logs: %v", err)
	}
	defer s.Close()
	err = s.DB().View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte("k"))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if string(v) != "v" {
				return fmt.Errorf("value %q", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
