package node

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/storage"
)

// A backup is a tar stream: a "weft-backup" entry holding the format
// version, the files at the top of the home (the keystore, sealed as it is
// on disk; the peer key; the known peers; the config file), and last
// "store.badger", a consistent snapshot of the store.
const (
	backupMarker  = "weft-backup"
	backupVersion = "1\n"
	backupStore   = "store.badger"
	// endpointFile is the daemon's api.json: a token for one run only, so
	// it is not backed up.
	endpointFile = "api.json"
)

// ErrNotBackup is returned by Restore for a stream that is not a weft
// backup (or of a format this version does not read).
var ErrNotBackup = errors.New("not a weft backup")

// Backup writes the node's home to w as a backup that Restore reads, while
// the node keeps running. It holds the keys: keep it as safe as the home.
func (n *Node) Backup(ctx context.Context, w io.Writer) error {
	select {
	case <-n.quit:
		return ErrClosed
	default:
	}
	// The store's snapshot size is not known in advance and tar needs it:
	// spool it next to the store first.
	spool, err := os.CreateTemp(n.cfg.Home, ".backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	if err := n.store.Backup(spool); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string, size int64, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := add(backupMarker, int64(len(backupVersion)), strings.NewReader(backupVersion)); err != nil {
		return err
	}
	entries, err := os.ReadDir(n.cfg.Home)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		// The home's devices stay home: a restored home writes as new
		// devices, so it never reuses the original's sequence numbers.
		if !e.Type().IsRegular() || name == endpointFile || name == devicesFile || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(n.cfg.Home, name))
		if err != nil {
			return err
		}
		if err := add(name, int64(len(b)), strings.NewReader(string(b))); err != nil {
			return err
		}
	}
	size, err := spool.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := add(backupStore, size, spool); err != nil {
		return err
	}
	return tw.Close()
}

// Restore creates home from a backup written by Backup. home must not
// exist or be empty. Nothing is left behind if the backup is incomplete
// or damaged. The restored home has the backup's users, keys, threads and
// messages, but it is a new node: it makes a new peer key and new devices
// of its users when it first opens, so it never reuses a sequence number
// the original wrote (or writes) and can run beside it.
func Restore(home string, r io.Reader) (err error) {
	if fi, err := os.Stat(home); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("restoring into %s: %w: it is a file", home, storage.ErrNotEmpty)
		}
		if entries, err := os.ReadDir(home); err != nil || len(entries) > 0 {
			return fmt.Errorf("restoring into %s: %w", home, storage.ErrNotEmpty)
		}
	}
	staging := filepath.Clean(home) + ".restoring"
	if err := os.Mkdir(staging, 0o700); err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
		}
	}()
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != backupMarker {
		return fmt.Errorf("%w (first entry: %v)", ErrNotBackup, err)
	}
	if v, err := io.ReadAll(io.LimitReader(tr, 16)); err != nil || string(v) != backupVersion {
		return fmt.Errorf("%w: format %q, this weft reads %q", ErrNotBackup, v, backupVersion)
	}
	gotStore, gotKeystore := false, false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotBackup, err)
		}
		name := hdr.Name
		if name != filepath.Base(name) || name == "." || name == ".." || strings.HasPrefix(name, ".") || hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("%w: unexpected entry %q", ErrNotBackup, name)
		}
		if name == backupStore {
			if err := storage.Restore(filepath.Join(staging, storeDir), tr, storage.Options{}); err != nil {
				return err
			}
			gotStore = true
			continue
		}
		gotKeystore = gotKeystore || name == keystoreFile
		if name == peerKeyFile || name == devicesFile {
			// A restored home is a new node, with new devices of its
			// users: it can run beside the original without sharing a
			// peer ID or a writer's sequence numbers with it.
			continue
		}
		f, err := os.OpenFile(filepath.Join(staging, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if !gotStore || !gotKeystore {
		return fmt.Errorf("%w: incomplete (store %v, keystore %v)", ErrNotBackup, gotStore, gotKeystore)
	}
	if err := os.Remove(home); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Rename(staging, home)
}
