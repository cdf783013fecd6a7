// Package storage keeps a node's replicas on disk in one Badger database:
// every thread's events, and the indexes and materialised state derived
// from them (per-writer sequence, linear order, version vector, heads,
// message state, message list), all written in the same transaction as the
// event so that a crash can never leave them disagreeing.
//
// Storage is passive: package node owns the thread states, judges events
// with package protocol and hands accepted ones to a Txn. Content of deleted
// messages and threads is removed from the database, not just hidden.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// ErrNotFound is returned when an event, thread or message is not stored.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("database is locked by another process")

// Options tune the database; the zero value picks defaults sized for a small
// (2-core) machine.
type Options struct {
	Logger *slog.Logger
	// GCInterval is how often value-log garbage collection runs (default
	// 5 minutes; negative disables it).
	GCInterval time.Duration
	// CacheSize is the block cache in bytes (default 32 MiB).
	CacheSize int64
}

// Store is one node's database. Its methods are safe for concurrent use,
// but writes are expected from one goroutine (the node's).
type Store struct {
	db   *badger.DB
	log  *slog.Logger
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.GCInterval == 0 {
		o.GCInterval = 5 * time.Minute
	}
	if o.CacheSize == 0 {
		o.CacheSize = 32 << 20
	}
	if err := removeEmptyLogs(dir, o.Logger); err != nil {
		return nil, err
	}
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{o.Logger}).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(o.CacheSize).
		WithIndexCacheSize(16 << 20).
		// Events (hundreds of bytes and up) go to the value log; the LSM
		// tree keeps the small index entries, so compactions stay cheap.
		WithValueThreshold(256).
		WithValueLogFileSize(256 << 20).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false).
		WithDetectConflicts(false)
	db, err := badger.Open(bo)
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
		}
		return nil, fmt.Errorf("opening database %s: %w", dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{db: db, log: o.Logger, stop: cancel}
	if o.GCInterval > 0 {
		s.wg.Add(1)
		go s.gcLoop(ctx, o.GCInterval)
	}
	return s, nil
}

// removeEmptyLogs deletes zero-length memtable and value-log files. Badger
// creates such a file and then sizes it; a crash in between leaves an empty
// file that Badger then refuses to open ("Create a new file") forever. An
// empty log holds no entries, so removing it restores exactly the state
// before it was created.
func removeEmptyLogs(dir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading database directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("reading database directory: %w", err)
		}
		if info.Size() == 0 {
			log.Warn("removing an empty log file left by a crash", "file", name)
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("removing empty log file: %w", err)
			}
		}
	}
	return nil
}

func isLockErr(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot acquire directory lock") || strings.Contains(msg, "resource temporarily unavailable")
}

// Close stops background work and closes the database, flushing it.
func (s *Store) Close() error {
	s.stop()
	s.wg.Wait()
	return s.db.Close()
}

// Sync makes every committed write durable.
func (s *Store) Sync() error { return s.db.Sync() }

// DB exposes the Badger database for tests and tools that inspect raw keys.
func (s *Store) DB() *badger.DB { return s.db }

func (s *Store) gcLoop(ctx context.Context, every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n := s.RunGC()
			if n > 0 {
				s.log.Debug("value log GC", "rewritten", n)
			}
		}
	}
}

// RunGC runs value-log garbage collection until there is nothing left to
// reclaim and returns how many log files it rewrote.
func (s *Store) RunGC() int {
	n := 0
	for n < 16 {
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("value log GC", "err", err)
			}
			break
		}
		n++
	}
	return n
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(trim(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(trim(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(trim(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(trim(fmt.Sprintf(f, a...)), "component", "badger")
}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
