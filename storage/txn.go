package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// Txn is one atomic write: events appended with every index they touch.
// Reads through a Txn see its own writes.
//
// Badger bounds the size of one transaction, so a Txn that grows past
// txnBudget commits what it holds and continues in a new Badger transaction
// before the next event: each event, with all its indexes, is always
// committed atomically, but a very large batch may be committed in parts.
type Txn struct {
	s     *Store
	btx   *badger.Txn
	n     int // events appended
	bytes int // estimated size of the open Badger transaction
	ops   int
	// recs caches the thread records this Txn read or changed; the changed
	// ones (dirty) are written once, before each commit, rather than
	// encoded and rewritten for every event of a batch.
	recs  map[protocol.ThreadID]*threadRecord
	dirty map[protocol.ThreadID]bool
}

// MaxEventsPerTxn is a sensible number of events for a caller to append in
// one Txn.
const MaxEventsPerTxn = 512

// Limits for one Badger transaction: well inside Badger's own (15% of the
// 16 MiB memtable, and a proportional entry count).
const (
	txnBudget    = 1 << 20
	txnOpsBudget = 8000
)

// ErrSyncFailed reports that writes were committed but could not be made
// durable: they may or may not survive a crash.
var ErrSyncFailed = errors.New("committed, but syncing to disk failed")

// Update runs fn in one read-write transaction and commits it if fn returns
// nil. With sync, the commit is on disk before Update returns.
func (s *Store) Update(sync bool, fn func(tx *Txn) error) error {
	tx := &Txn{s: s, btx: s.db.NewTransaction(true)}
	defer func() { tx.btx.Discard() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.flushRecords(); err != nil {
		return err
	}
	if err := tx.btx.Commit(); err != nil {
		return fmt.Errorf("committing %d events: %w", tx.n, err)
	}
	if sync {
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("%w: %w", ErrSyncFailed, err)
		}
	}
	return nil
}

// split commits the open Badger transaction if it is getting big and
// starts a new one. Called between events, and inside operations whose
// size grows with the thread (pruning a deleted thread).
func (tx *Txn) split() error {
	if tx.bytes < txnBudget && tx.ops < txnOpsBudget {
		return nil
	}
	if err := tx.flushRecords(); err != nil {
		return err
	}
	if err := tx.btx.Commit(); err != nil {
		return fmt.Errorf("committing part of a batch (%d events so far): %w", tx.n, err)
	}
	tx.btx = tx.s.db.NewTransaction(true)
	tx.bytes, tx.ops = 0, 0
	return nil
}

func (tx *Txn) set(k, v []byte) error {
	tx.bytes += len(k) + len(v) + 32
	tx.ops++
	return tx.btx.Set(k, v)
}

func (tx *Txn) del(k []byte) error {
	tx.bytes += len(k) + 32
	tx.ops++
	return tx.btx.Delete(k)
}

// Effect tells what an appended event changed in the visible state.
type Effect struct {
	// Visible: the event took effect (it is not void).
	Visible bool
	// Message is the message a message event acts on.
	Message protocol.EventID
	// Rematerialized lists messages whose state was recomputed because a
	// control event arrived that sorts before some of their events.
	Rematerialized []protocol.EventID
	// Pruned counts events whose content was removed.
	Pruned int
	// Fork: another event of the same writer and sequence number was
	// stored before this one (an equivocation).
	Fork bool
}

// Has reports whether the event is stored.
func (tx *Txn) Has(thread protocol.ThreadID, id protocol.EventID) (bool, error) {
	_, err := tx.btx.Get(metaKey(thread, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Meta returns a stored event's metadata.
func (tx *Txn) Meta(thread protocol.ThreadID, id protocol.EventID) (*protocol.EventMeta, error) {
	return getMeta(tx.btx, thread, id)
}

// Append stores an accepted event with all its indexes. ts must already
// include the event (ThreadState.Apply) and meta must be its validated
// metadata.
func (tx *Txn) Append(ts *protocol.ThreadState, ev *protocol.Event, meta *protocol.EventMeta) (Effect, error) {
	t := ts.ID
	id := meta.ID
	o := meta.Order()
	var eff Effect
	if err := tx.split(); err != nil {
		return eff, err
	}
	tx.n++
	// An event of a thread deleted before it (a concurrent post that
	// arrives after the deletion, say) is kept, pruned, for sync; it
	// changes nothing visible.
	tombstone := ts.Current.Deleted && meta.Kind != protocol.KindThreadDelete
	// An equivocating writer's events from its fork on are void: they are
	// kept (other events may name them) without content, so that they
	// cost every replica a few hundred bytes, not what they carried.
	forked := ts.IsForked(meta.Writer, meta.Seq) && meta.Kind != protocol.KindThreadCreate
	if tombstone || forked {
		ev = ev.Pruned()
	}
	if forked {
		// Only a writer already known to have forked (the node records
		// a fork before it appends the event, ThreadState.RecordFork) can
		// have another version of this number stored.
		other, err := tx.SeqID(t, meta.Writer, meta.Seq)
		if err != nil {
			return eff, err
		}
		eff.Fork = !other.IsZero() && other != id
	}
	seqIndex := tx.set(seqKey(t, meta.Writer, meta.Seq), id[:])
	if eff.Fork {
		// The sequence index keeps the first version (what range sync
		// serves); the others are listed here and sync finds them by ID.
		seqIndex = tx.addFork(t, meta.Writer, meta.Seq, id)
	}
	tip := ts.Tips[meta.Writer]
	enc := ev.Encode(nil)
	if err := firstErr(
		tx.set(eventKey(t, id), enc),
		tx.set(metaKey(t, id), meta.AppendBinary(nil)),
		tx.set(locatorKey(id), t[:]),
		seqIndex,
		tx.set(orderKey(t, o), []byte{byte(meta.Kind)}),
		tx.set(tipKey(t, meta.Writer), tipValue(tip.Seq, tip.ID)),
	); err != nil {
		return eff, err
	}
	rec, err := tx.threadRecord(t)
	if err != nil {
		return eff, err
	}
	rec.Heads = ts.Heads
	switch {
	case tombstone:
		if meta.Kind.IsControl() {
			if err := tx.set(controlKey(t, id), nil); err != nil {
				return eff, err
			}
		}
	case meta.Kind.IsControl():
		if err := tx.set(controlKey(t, id), nil); err != nil {
			return eff, err
		}
		eff.Visible = isEffective(ts, id)
		if meta.Kind == protocol.KindThreadDelete && ts.Current.Deleted {
			n, first, err := tx.pruneThread(ts, rec)
			if err != nil {
				return eff, err
			}
			eff.Pruned = n
			if !first {
				// A second deletion (concurrent with the first) deletes
				// nothing more, whichever of them sorts first; it is kept
				// pruned like the rest of the tombstone.
				eff.Visible = false
				if _, err := tx.prune(t, id); err != nil {
					return eff, err
				}
			}
		} else if later, err := tx.hasMessageEventsAfter(t, o); err != nil {
			return eff, err
		} else if later {
			eff.Rematerialized, err = tx.rematerialize(ts, rec, o)
			if err != nil {
				return eff, err
			}
		}
	case meta.Kind == protocol.KindMessagePost:
		eff.Message = id
		snap := ts.SnapshotAt(o)
		ms := protocol.NewMessageState(meta, &snap)
		ms.Void = ms.Void || ts.VoidByRemoval(meta)
		eff.Visible = !ms.Void
		if err := tx.putMessage(t, rec, nil, &ms); err != nil {
			return eff, err
		}
		if ms.Void && !forked && !tombstone {
			// Void where it stands (its author was removed before it):
			// it will never show, so it keeps no content.
			if _, err := tx.prune(t, id); err != nil {
				return eff, err
			}
		}
	default: // MessageUpdate, MessageDelete
		eff.Message = meta.Target
		if err := tx.set(actsKey(t, meta.Target, o), []byte{byte(meta.Kind)}); err != nil {
			return eff, err
		}
		ms, err := getMessage(tx.btx, t, meta.Target)
		if err != nil {
			return eff, fmt.Errorf("target of %s: %w", id, err)
		}
		before := *ms
		snap := ts.SnapshotAt(o)
		eff.Visible = !ts.VoidByRemoval(meta) && ms.Apply(meta, &snap)
		if err := tx.putMessage(t, rec, &before, ms); err != nil {
			return eff, err
		}
		if ms.Deleted {
			n, err := tx.pruneMessage(t, ms)
			if err != nil {
				return eff, err
			}
			eff.Pruned = n
		}
	}
	tx.putThreadRecord(t, rec)
	return eff, nil
}

func isEffective(ts *protocol.ThreadState, id protocol.EventID) bool {
	// A control event is effective when folding it changed the state; the
	// cheap, exact test is whether the fold up to and including it differs
	// from the fold without it. Control events are rare, so fold twice.
	ce, ok := ts.Control(id)
	if !ok {
		return false
	}
	o := ce.Meta.Order()
	before := ts.SnapshotAt(o)
	after := ts.SnapshotAt(protocol.Order{Lamport: o.Lamport, ID: nextID(o.ID)})
	return after.Version != before.Version || after.Deleted != before.Deleted || ce.Meta.Kind == protocol.KindThreadCreate
}

// nextID returns the smallest ID above id (id+1), for exclusive bounds.
func nextID(id protocol.EventID) protocol.EventID {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			break
		}
	}
	return id
}

// putMessage writes a message's state and keeps the visible-message list
// and the thread's counters in step with it.
func (tx *Txn) putMessage(t protocol.ThreadID, rec *threadRecord, before, after *protocol.MessageState) error {
	wasVisible := before != nil && before.Visible()
	if err := tx.set(messageKey(t, after.ID), after.AppendBinary(nil)); err != nil {
		return err
	}
	switch {
	case after.Visible() && !wasVisible:
		rec.Messages++
		if after.Created > rec.LastMessageTime {
			rec.LastMessageTime = after.Created
		}
		return tx.set(listKey(t, after.Order), nil)
	case !after.Visible() && wasVisible:
		rec.Messages--
		return tx.del(listKey(t, after.Order))
	}
	return nil
}

// pruneMessage removes the content of a deleted message: its post and every
// update keep only their pruned form (header, hash, signature).
func (tx *Txn) pruneMessage(t protocol.ThreadID, ms *protocol.MessageState) (int, error) {
	ids := []protocol.EventID{ms.ID}
	for _, u := range ms.Updates {
		ids = append(ids, u.Event)
	}
	n := 0
	for _, id := range ids {
		pruned, err := tx.prune(t, id)
		if err != nil {
			return n, err
		}
		if pruned {
			n++
		}
	}
	// Updates that were void (and so are not in ms.Updates) carry content
	// too: prune every event acting on the message.
	it := tx.btx.NewIterator(badger.IteratorOptions{Prefix: key(pActs, t, ms.ID[:])})
	defer it.Close()
	var acts []protocol.EventID
	for it.Rewind(); it.Valid(); it.Next() {
		o, err := protocol.ParseOrderKey(it.Item().Key()[1+32+32:])
		if err != nil {
			return n, err
		}
		acts = append(acts, o.ID)
	}
	it.Close()
	for _, id := range acts {
		pruned, err := tx.prune(t, id)
		if err != nil {
			return n, err
		}
		if pruned {
			n++
		}
	}
	return n, nil
}

// prune replaces a stored event by its pruned form.
func (tx *Txn) prune(t protocol.ThreadID, id protocol.EventID) (bool, error) {
	ev, err := getEvent(tx.btx, t, id)
	if err != nil {
		return false, err
	}
	if ev.Content == nil {
		return false, nil
	}
	return true, tx.set(eventKey(t, id), ev.Pruned().Encode(nil))
}

// pruneThread reduces a deleted thread to its tombstone: every event keeps
// only its pruned form (header, content hash, signature) with its
// metadata and its sequence and order indexes, so that replicas that
// missed the deletion can still fetch and verify the thread's history
// and the deletion through sync. Message states, the visible list, acts
// and held events go. It is done once; later events of the thread are
// stored pruned (see Append).
func (tx *Txn) pruneThread(ts *protocol.ThreadState, rec *threadRecord) (n int, first bool, err error) {
	t := ts.ID
	if _, err := tx.btx.Get(deletedKey(t)); err == nil {
		return 0, false, nil // pruned already (concurrent deletions)
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, err
	}
	var ids []protocol.EventID
	it := tx.btx.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pOrder, t), PrefetchValues: false})
	for it.Rewind(); it.Valid(); it.Next() {
		o, err := protocol.ParseOrderKey(it.Item().Key()[33:])
		if err != nil {
			it.Close()
			return 0, false, err
		}
		ids = append(ids, o.ID)
	}
	it.Close()
	for _, id := range ids {
		if err := tx.split(); err != nil {
			return n, true, err
		}
		pruned, err := tx.prune(t, id)
		if err != nil {
			return n, true, err
		}
		if pruned {
			n++
		}
	}
	for _, p := range []byte{pMessage, pList, pActs, pHeld} {
		if err := tx.deletePrefix(threadPrefix(p, t)); err != nil {
			return n, true, err
		}
	}
	rec.Messages = 0
	return n, true, tx.set(deletedKey(t), nil)
}

// FinishDeletions completes the pruning of deleted threads that a crash
// interrupted: pruning a big thread spans several Badger transactions, so
// a thread can be deleted (its ThreadDelete stored) with part of its
// content still on disk. It also upgrades tombstones written before the
// deletion marker existed. It returns the threads it pruned.
func (s *Store) FinishDeletions(threads map[protocol.ThreadID]*protocol.ThreadState) ([]protocol.ThreadID, error) {
	var done []protocol.ThreadID
	for t, ts := range threads {
		if !ts.Current.Deleted {
			continue
		}
		marked := false
		err := s.view(func(b *badger.Txn) error {
			_, err := b.Get(deletedKey(t))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return nil
			}
			marked = err == nil
			return err
		})
		if err != nil {
			return done, err
		}
		if marked {
			continue
		}
		err = s.Update(true, func(tx *Txn) error {
			rec, err := tx.threadRecord(t)
			if err != nil {
				return err
			}
			rec.Heads = ts.Heads
			if _, _, err := tx.pruneThread(ts, rec); err != nil {
				return err
			}
			tx.putThreadRecord(t, rec)
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("finishing the deletion of thread %s: %w", t, err)
		}
		done = append(done, t)
	}
	return done, nil
}

func (tx *Txn) deletePrefix(prefix []byte) error {
	var keys [][]byte
	it := tx.btx.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := tx.split(); err != nil {
			return err
		}
		if err := tx.del(k); err != nil {
			return err
		}
	}
	return nil
}

func (tx *Txn) hasMessageEventsAfter(t protocol.ThreadID, o protocol.Order) (bool, error) {
	it := tx.btx.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pOrder, t), PrefetchValues: false})
	defer it.Close()
	start := orderKey(t, protocol.Order{Lamport: o.Lamport, ID: nextID(o.ID)})
	for it.Seek(start); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if len(v) == 1 && protocol.Kind(v[0]).IsMessage() {
			return true, nil
		}
	}
	return false, nil
}

// rematerialize recomputes every message that has an event after position
// from: a control event arrived late and may change whether they count.
func (tx *Txn) rematerialize(ts *protocol.ThreadState, rec *threadRecord, from protocol.Order) ([]protocol.EventID, error) {
	t := ts.ID
	affected := map[protocol.EventID]bool{}
	var order []protocol.EventID
	it := tx.btx.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pOrder, t)})
	for it.Seek(orderKey(t, from)); it.Valid(); it.Next() {
		o, err := protocol.ParseOrderKey(it.Item().Key()[33:])
		if err != nil {
			it.Close()
			return nil, err
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return nil, err
		}
		if len(v) != 1 || !protocol.Kind(v[0]).IsMessage() {
			continue
		}
		meta, err := getMeta(tx.btx, t, o.ID)
		if err != nil {
			it.Close()
			return nil, err
		}
		if !affected[meta.Target] {
			affected[meta.Target] = true
			order = append(order, meta.Target)
		}
	}
	it.Close()
	for _, mid := range order {
		old, err := getMessage(tx.btx, t, mid)
		if err != nil {
			return nil, err
		}
		post, err := getMeta(tx.btx, t, mid)
		if err != nil {
			return nil, err
		}
		snap := ts.SnapshotAt(post.Order())
		ms := protocol.NewMessageState(post, &snap)
		ms.Void = ms.Void || ts.VoidByRemoval(post)
		ait := tx.btx.NewIterator(badger.IteratorOptions{Prefix: key(pActs, t, mid[:])})
		var acts []protocol.EventID
		for ait.Rewind(); ait.Valid(); ait.Next() {
			o, err := protocol.ParseOrderKey(ait.Item().Key()[1+32+32:])
			if err != nil {
				ait.Close()
				return nil, err
			}
			acts = append(acts, o.ID)
		}
		ait.Close()
		for _, aid := range acts {
			am, err := getMeta(tx.btx, t, aid)
			if err != nil {
				return nil, err
			}
			s := ts.SnapshotAt(am.Order())
			if !ts.VoidByRemoval(am) {
				ms.Apply(am, &s)
			}
		}
		if old.Deleted && !ms.Deleted {
			// Content removed for a delete that is now void cannot come
			// back; the message stays deleted rather than show nothing.
			ms.Deleted = true
		}
		if err := tx.putMessage(t, rec, old, &ms); err != nil {
			return nil, err
		}
		if (ms.Deleted && !old.Deleted) || (ms.Void && !old.Void) {
			// A message that became void (its author removed before it,
			// or caught equivocating) keeps no content either.
			if _, err := tx.pruneMessage(t, &ms); err != nil {
				return nil, err
			}
		}
	}
	return order, nil
}

// Hold keeps an event whose parents are missing until they arrive.
func (tx *Txn) Hold(thread protocol.ThreadID, ev *protocol.Event) error {
	return tx.set(heldKey(thread, ev.ID()), ev.Encode(nil))
}

// Unhold forgets a held event (it was accepted or finally rejected).
func (tx *Txn) Unhold(thread protocol.ThreadID, id protocol.EventID) error {
	return tx.del(heldKey(thread, id))
}

// SeqID returns the ID of the first stored event of writer w with
// sequence number seq in thread t (zero if there is none).
func (tx *Txn) SeqID(t protocol.ThreadID, w crypto.UserID, seq uint64) (protocol.EventID, error) {
	return getSeqID(tx.btx, t, w, seq)
}

func getSeqID(b *badger.Txn, t protocol.ThreadID, w crypto.UserID, seq uint64) (protocol.EventID, error) {
	var id protocol.EventID
	item, err := b.Get(seqKey(t, w, seq))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return id, nil
	}
	if err != nil {
		return id, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return id, err
	}
	if len(v) != len(id) {
		return id, fmt.Errorf("sequence index of %s/%d: bad value", w, seq)
	}
	copy(id[:], v)
	return id, nil
}

// addFork lists id as another version of (w, seq).
func (tx *Txn) addFork(t protocol.ThreadID, w crypto.UserID, seq uint64, id protocol.EventID) error {
	k := forkKey(t, w, seq)
	var v []byte
	item, err := tx.btx.Get(k)
	switch {
	case err == nil:
		if v, err = item.ValueCopy(nil); err != nil {
			return err
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	for i := 0; i+32 <= len(v); i += 32 {
		if protocol.EventID(v[i:i+32]) == id {
			return nil
		}
	}
	return tx.set(k, append(v, id[:]...))
}

// Rematerialize recomputes every message that has an event at or after
// position from (see rematerialize): the visible state changed there, by a
// fork say.
func (tx *Txn) Rematerialize(ts *protocol.ThreadState, from protocol.Order) ([]protocol.EventID, error) {
	rec, err := tx.threadRecord(ts.ID)
	if err != nil {
		return nil, err
	}
	ids, err := tx.rematerialize(ts, rec, from)
	if err != nil {
		return nil, err
	}
	tx.putThreadRecord(ts.ID, rec)
	return ids, nil
}

func tipValue(seq uint64, id protocol.EventID) []byte {
	v := binary.BigEndian.AppendUint64(nil, seq)
	return append(v, id[:]...)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Message returns a message's state as this transaction sees it.
func (tx *Txn) Message(t protocol.ThreadID, id protocol.EventID) (*protocol.MessageState, error) {
	return getMessage(tx.btx, t, id)
}

// Event returns a stored event as this transaction sees it.
func (tx *Txn) Event(t protocol.ThreadID, id protocol.EventID) (*protocol.Event, error) {
	return getEvent(tx.btx, t, id)
}

// Stats returns a thread's message counters as this transaction sees them.
func (tx *Txn) Stats(t protocol.ThreadID) (ThreadStats, error) {
	r, err := tx.threadRecord(t)
	if err != nil {
		return ThreadStats{}, err
	}
	return ThreadStats{Messages: r.Messages, LastMessageTime: r.LastMessageTime}, nil
}

// PurgeThread removes a thread and everything kept of it, as if it had
// never been stored: for threads that turned out to concern no local user.
// The thread record goes first, so a crash midway leaves unreachable keys,
// never half a thread.
func (tx *Txn) PurgeThread(t protocol.ThreadID) error {
	var ids []protocol.EventID
	it := tx.btx.NewIterator(badger.IteratorOptions{Prefix: threadPrefix(pOrder, t), PrefetchValues: false})
	for it.Rewind(); it.Valid(); it.Next() {
		o, err := protocol.ParseOrderKey(it.Item().Key()[33:])
		if err != nil {
			it.Close()
			return err
		}
		ids = append(ids, o.ID)
	}
	it.Close()
	if err := tx.del(threadKey(t)); err != nil {
		return err
	}
	delete(tx.recs, t)
	delete(tx.dirty, t)
	for _, id := range ids {
		if err := tx.split(); err != nil {
			return err
		}
		if err := tx.del(locatorKey(id)); err != nil {
			return err
		}
	}
	for _, p := range []byte{pEvent, pMeta, pSeq, pOrder, pControl, pTip, pMessage, pList, pActs, pHeld, pEquivoc, pDeleted, pFork} {
		if err := tx.deletePrefix(threadPrefix(p, t)); err != nil {
			return err
		}
	}
	return nil
}
