package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/weftnet/weft/node"
)

// cmdBackup asks the running daemon for a backup of its home and writes it
// to FILE (mode 0600: it holds the keys), all or nothing.
func cmdBackup(e *env, args []string) error {
	fs, c := newFlags(e, "backup", "FILE")
	pos, err := parseN(fs, args, 1, "the file to write the backup to")
	if err != nil {
		return err
	}
	path := pos[0]
	cl, err := connectDaemon(e, c)
	if err != nil {
		return err
	}
	cx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := cl.Backup(cx, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"file": path, "bytes": fi.Size()})
	}
	fmt.Fprintf(e.stdout, "backed up to %s (%d bytes); it holds the node's keys: keep it safe\n", path, fi.Size())
	return nil
}

// cmdRestore creates a home from a backup file. The home must be new; no
// daemon is involved.
func cmdRestore(e *env, args []string) error {
	fs, c := newFlags(e, "restore", "FILE")
	pos, err := parseN(fs, args, 1, "the backup file to restore")
	if err != nil {
		return err
	}
	home, err := c.resolveHome(e)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := node.Restore(home, f); err != nil {
		if errors.Is(err, node.ErrNotBackup) {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"home": home})
	}
	fmt.Fprintf(e.stdout, "restored into %s; start it with weft daemon --home %s\n", home, home)
	return nil
}
