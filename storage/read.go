package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// threadRecord is the per-thread row that changes with every event.
type threadRecord struct {
	Heads           []protocol.EventMeta
	Messages        uint64 // visible messages
	LastMessageTime int64
}

const threadRecordVersion = 1

func (r *threadRecord) encode() []byte {
	b := []byte{threadRecordVersion}
	b = binary.AppendUvarint(b, r.Messages)
	b = binary.AppendUvarint(b, uint64(r.LastMessageTime))
	b = binary.AppendUvarint(b, uint64(len(r.Heads)))
	for i := range r.Heads {
		m := r.Heads[i].AppendBinary(nil)
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

func decodeThreadRecord(b []byte) (*threadRecord, error) {
	bad := func(why string) error { return fmt.Errorf("thread record: %s", why) }
	if len(b) == 0 || b[0] != threadRecordVersion {
		return nil, bad("unknown version")
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	r := &threadRecord{}
	var ok bool
	var lm uint64
	if r.Messages, ok = next(); !ok {
		return nil, bad("truncated")
	}
	if lm, ok = next(); !ok {
		return nil, bad("truncated")
	}
	r.LastMessageTime = int64(lm)
	nh, ok := next()
	if !ok || nh > uint64(len(b)) {
		return nil, bad("truncated")
	}
	for i := uint64(0); i < nh; i++ {
		l, ok := next()
		if !ok || l > uint64(len(b)) {
			return nil, bad("truncated")
		}
		m, err := protocol.DecodeEventMeta(b[:l])
		if err != nil {
			return nil, fmt.Errorf("thread record: %w", err)
		}
		r.Heads = append(r.Heads, *m)
		b = b[l:]
	}
	return r, nil
}

// threadRecord returns the thread's record as this Txn sees it (a new one
// if the thread has none yet). Changes to it are kept with putThreadRecord.
func (tx *Txn) threadRecord(t protocol.ThreadID) (*threadRecord, error) {
	if r, ok := tx.recs[t]; ok {
		return r, nil
	}
	r, err := getThreadRecord(tx.btx, t)
	if err != nil {
		return nil, err
	}
	if tx.recs == nil {
		tx.recs = map[protocol.ThreadID]*threadRecord{}
	}
	tx.recs[t] = r
	return r, nil
}

// putThreadRecord marks the thread's record changed; it is written before
// the Txn commits (or splits).
func (tx *Txn) putThreadRecord(t protocol.ThreadID, r *threadRecord) {
	if tx.recs == nil {
		tx.recs = map[protocol.ThreadID]*threadRecord{}
	}
	if tx.dirty == nil {
		tx.dirty = map[protocol.ThreadID]bool{}
	}
	tx.recs[t] = r
	tx.dirty[t] = true
}

// flushRecords writes the changed thread records into the open Badger
// transaction.
func (tx *Txn) flushRecords() error {
	for t := range tx.dirty {
		if err := tx.set(threadKey(t), tx.recs[t].encode()); err != nil {
			return err
		}
	}
	clear(tx.dirty)
	return nil
}

func getThreadRecord(b *badger.Txn, t protocol.ThreadID) (*threadRecord, error) {
	item, err := b.Get(threadKey(t))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return &threadRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return decodeThreadRecord(v)
}

func getValue(b *badger.Txn, k []byte, what string) ([]byte, error) {
	item, err := b.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func getMeta(b *badger.Txn, t protocol.ThreadID, id protocol.EventID) (*protocol.EventMeta, error) {
	v, err := getValue(b, metaKey(t, id), "event "+id.String())
	if err != nil {
		return nil, err
	}
	return protocol.DecodeEventMeta(v)
}

func getEvent(b *badger.Txn, t protocol.ThreadID, id protocol.EventID) (*protocol.Event, error) {
	v, err := getValue(b, eventKey(t, id), "event "+id.String())
	if err != nil {
		return nil, err
	}
	return protocol.Decode(v)
}

func getMessage(b *badger.Txn, t protocol.ThreadID, id protocol.EventID) (*protocol.MessageState, error) {
	v, err := getValue(b, messageKey(t, id), "message "+id.String())
	if err != nil {
		return nil, err
	}
	return protocol.DecodeMessageState(v)
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(b *badger.Txn) error) error { return s.db.View(fn) }

// Event returns a stored event (pruned if its content was deleted).
func (s *Store) Event(t protocol.ThreadID, id protocol.EventID) (ev *protocol.Event, err error) {
	err = s.view(func(b *badger.Txn) error { ev, err = getEvent(b, t, id); return err })
	return ev, err
}

// Meta returns a stored event's metadata.
func (s *Store) Meta(t protocol.ThreadID, id protocol.EventID) (m *protocol.EventMeta, err error) {
	err = s.view(func(b *badger.Txn) error { m, err = getMeta(b, t, id); return err })
	return m, err
}

// Locate returns the thread an event belongs to.
func (s *Store) Locate(id protocol.EventID) (protocol.ThreadID, error) {
	var t protocol.ThreadID
	err := s.view(func(b *badger.Txn) error {
		v, err := getValue(b, locatorKey(id), "event "+id.String())
		if err != nil {
			return err
		}
		if len(v) != len(t) {
			return fmt.Errorf("locator of %s: %d bytes", id, len(v))
		}
		copy(t[:], v)
		return nil
	})
	return t, err
}

// Message returns a message's state.
func (s *Store) Message(t protocol.ThreadID, id protocol.EventID) (m *protocol.MessageState, err error) {
	err = s.view(func(b *badger.Txn) error { m, err = getMessage(b, t, id); return err })
	return m, err
}

// ThreadStats are a thread's message counters.
type ThreadStats struct {
	Messages        uint64
	LastMessageTime int64
}

// Stats returns a thread's message counters.
func (s *Store) Stats(t protocol.ThreadID) (st ThreadStats, err error) {
	err = s.view(func(b *badger.Txn) error {
		r, err := getThreadRecord(b, t)
		if err == nil {
			st = ThreadStats{Messages: r.Messages, LastMessageTime: r.LastMessageTime}
		}
		return err
	})
	return st, err
}

// LoadThreads rebuilds the state of every stored thread.
func (s *Store) LoadThreads() (map[protocol.ThreadID]*protocol.ThreadState, error) {
	out := map[protocol.ThreadID]*protocol.ThreadState{}
	err := s.view(func(b *badger.Txn) error {
		var threads []protocol.ThreadID
		it := b.NewIterator(badger.IteratorOptions{Prefix: []byte{pThread}})
		for it.Rewind(); it.Valid(); it.Next() {
			var t protocol.ThreadID
			copy(t[:], it.Item().Key()[1:])
			threads = append(threads, t)
		}
		it.Close()
		for _, t := range threads {
			ts, err := loadThread(b, t)
			if err != nil {
				return fmt.Errorf("loading thread %s: %w", t, err)
			}
			out[t] = ts
		}
		return nil
	})
	return out, err
}

func loadThread(b *badger.Txn, t protocol.ThreadID) (*protocol.ThreadState, error) {
	rec, err := getThreadRecord(b, t)
	if err != nil {
		return nil, err
	}
	tips := map[crypto.UserID]protocol.Tip{}
	it := b.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pTip, t)})
	for it.Rewind(); it.Valid(); it.Next() {
		var w crypto.UserID
		copy(w[:], it.Item().Key()[33:])
		v, err := it.Item().ValueCopy(nil)
		if err != nil || len(v) != 8+32 {
			it.Close()
			return nil, fmt.Errorf("tip of %s: bad value (%v)", w, err)
		}
		var tip protocol.Tip
		tip.Seq = binary.BigEndian.Uint64(v)
		copy(tip.ID[:], v[8:])
		tips[w] = tip
	}
	it.Close()
	var ids []protocol.EventID
	it = b.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pControl, t)})
	for it.Rewind(); it.Valid(); it.Next() {
		var id protocol.EventID
		copy(id[:], it.Item().Key()[33:])
		ids = append(ids, id)
	}
	it.Close()
	controls := make([]protocol.ControlEntry, 0, len(ids))
	for _, id := range ids {
		ev, err := getEvent(b, t, id)
		if err != nil {
			return nil, err
		}
		m, err := getMeta(b, t, id)
		if err != nil {
			return nil, err
		}
		controls = append(controls, protocol.ControlEntry{Event: ev, Meta: *m})
	}
	forks := map[crypto.UserID]uint64{}
	it = b.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pFork, t), PrefetchValues: false})
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		var w crypto.UserID
		copy(w[:], k[33:65])
		seq := binary.BigEndian.Uint64(k[65:])
		if f, ok := forks[w]; !ok || seq < f {
			forks[w] = seq
		}
	}
	it.Close()
	if len(forks) == 0 {
		forks = nil
	}
	// Device writers' users: the tip's metadata says (every event of a
	// writer has the same).
	var authors map[crypto.UserID]crypto.UserID
	for w, tip := range tips {
		m, err := getMeta(b, t, tip.ID)
		if err != nil {
			return nil, fmt.Errorf("tip of %s: %w", w, err)
		}
		if !m.Author.IsZero() {
			if authors == nil {
				authors = map[crypto.UserID]crypto.UserID{}
			}
			authors[w] = m.Author
		}
	}
	return protocol.RestoreThreadState(controls, tips, rec.Heads, forks, authors)
}

// Page selects part of a list, as PrivMX's paging does.
type Page struct {
	Skip  int
	Limit int  // 0 = no limit
	Desc  bool // newest first
	// LastID, if set, starts the page after this item (in the page's
	// direction); Skip applies after it.
	LastID protocol.EventID
}

// Messages lists a thread's visible messages in linear order and returns
// the page and the number of visible messages in all.
func (s *Store) Messages(t protocol.ThreadID, p Page) ([]*protocol.MessageState, uint64, error) {
	var out []*protocol.MessageState
	var total uint64
	err := s.view(func(b *badger.Txn) error {
		rec, err := getThreadRecord(b, t)
		if err != nil {
			return err
		}
		total = rec.Messages
		prefix := threadPrefix(pList, t)
		it := b.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: p.Desc})
		defer it.Close()
		switch {
		case !p.LastID.IsZero():
			last, err := getMessage(b, t, p.LastID)
			if err != nil {
				return fmt.Errorf("lastId: %w", err)
			}
			it.Seek(listKey(t, last.Order))
			if it.Valid() && string(it.Item().Key()) == string(listKey(t, last.Order)) {
				it.Next()
			}
		case p.Desc:
			it.Seek(append(prefix, bytes.Repeat([]byte{0xff}, protocol.OrderKeySize+1)...))
		default:
			it.Rewind()
		}
		skip := p.Skip
		for ; it.Valid(); it.Next() {
			if skip > 0 {
				skip--
				continue
			}
			if p.Limit > 0 && len(out) >= p.Limit {
				break
			}
			o, err := protocol.ParseOrderKey(it.Item().Key()[33:])
			if err != nil {
				return err
			}
			m, err := getMessage(b, t, o.ID)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, total, err
}

// WriterEvents calls fn with a writer's events of a thread from sequence
// number from on, in sequence order, until fn returns false or an error.
// This is what anti-entropy sync serves.
func (s *Store) WriterEvents(t protocol.ThreadID, w crypto.UserID, from uint64, fn func(*protocol.Event) (bool, error)) error {
	return s.view(func(b *badger.Txn) error {
		prefix := key(pSeq, t, w[:])
		it := b.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(seqKey(t, w, from)); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var id protocol.EventID
			copy(id[:], v)
			ev, err := getEvent(b, t, id)
			if err != nil {
				return err
			}
			more, err := fn(ev)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// Held returns the events of a thread held for missing parents.
func (s *Store) Held(t protocol.ThreadID) ([]*protocol.Event, error) {
	var out []*protocol.Event
	err := s.view(func(b *badger.Txn) error {
		it := b.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pHeld, t)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			ev, err := protocol.Decode(v)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// OrderedIDs returns every stored event ID of a thread in linear order.
func (s *Store) OrderedIDs(t protocol.ThreadID) ([]protocol.EventID, error) {
	var out []protocol.EventID
	err := s.view(func(b *badger.Txn) error {
		it := b.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pOrder, t), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			o, err := protocol.ParseOrderKey(it.Item().Key()[33:])
			if err != nil {
				return err
			}
			out = append(out, o.ID)
		}
		return nil
	})
	return out, err
}

// AllHeld returns every held event, by thread.
func (s *Store) AllHeld() (map[protocol.ThreadID][]*protocol.Event, error) {
	out := map[protocol.ThreadID][]*protocol.Event{}
	err := s.view(func(b *badger.Txn) error {
		it := b.NewIterator(badger.IteratorOptions{Prefix: []byte{pHeld}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var t protocol.ThreadID
			copy(t[:], it.Item().Key()[1:])
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			ev, err := protocol.Decode(v)
			if err != nil {
				return err
			}
			out[t] = append(out[t], ev)
		}
		return nil
	})
	return out, err
}

// Has reports whether an event is stored.
func (s *Store) Has(t protocol.ThreadID, id protocol.EventID) (bool, error) {
	found := false
	err := s.view(func(b *badger.Txn) error {
		_, err := b.Get(metaKey(t, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		found = err == nil
		return err
	})
	return found, err
}

// SeqID returns the ID of the first stored event of writer w with
// sequence number seq in thread t (zero if there is none).
func (s *Store) SeqID(t protocol.ThreadID, w crypto.UserID, seq uint64) (id protocol.EventID, err error) {
	err = s.view(func(b *badger.Txn) error {
		id, err = getSeqID(b, t, w, seq)
		return err
	})
	return id, err
}
