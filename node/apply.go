package node

import (
	"errors"
	"fmt"
	"slices"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// parentsOf returns the metadata of ev's parents, from the thread's heads
// when it can and from the store otherwise. A parent that is not stored
// gives protocol.ErrMissingParents.
func (w *work) parentsOf(ts *protocol.ThreadState, ev *protocol.Event) ([]protocol.EventMeta, error) {
	out := make([]protocol.EventMeta, 0, len(ev.Parents))
	for _, p := range ev.Parents {
		if i := headIndex(ts, p); i >= 0 {
			out = append(out, ts.Heads[i])
			continue
		}
		var m *protocol.EventMeta
		var err error
		if w.tx != nil {
			m, err = w.tx.Meta(ts.ID, p)
		} else {
			m, err = w.n.store.Meta(ts.ID, p)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", protocol.ErrMissingParents, p)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errStorage, err)
		}
		out = append(out, *m)
	}
	return out, nil
}

func headIndex(ts *protocol.ThreadState, id protocol.EventID) int {
	for i := range ts.Heads {
		if ts.Heads[i].ID == id {
			return i
		}
	}
	return -1
}

// accept validates ev against ts and, if it passes, applies and stores it
// and queues the events it causes. It does not check the signature: the
// caller has (CheckEvent) or made it.
func (w *work) accept(ts *protocol.ThreadState, ev *protocol.Event) (*protocol.EventMeta, error) {
	parents, err := w.parentsOf(ts, ev)
	if err != nil {
		return nil, err
	}
	meta, err := ts.Validate(ev, parents)
	if err != nil {
		return nil, err
	}
	if err := w.noteFork(ts, ev); err != nil {
		return nil, err
	}
	return &meta, w.store(ts, ev, &meta)
}

// noteFork checks whether ev is a second version of its writer's sequence
// number and, if it is, records the equivocation in ts before ev is
// applied, so that ev and everything the writer wrote from that number on
// is void. The visible state is recomputed from the fork once ev is
// stored (see storeApplied).
func (w *work) noteFork(ts *protocol.ThreadState, ev *protocol.Event) error {
	if ev.Kind == protocol.KindThreadCreate {
		return nil
	}
	other, err := w.tx.SeqID(ts.ID, ev.Writer, ev.Seq)
	if err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	if other.IsZero() || other == ev.ID() {
		return nil
	}
	if !ts.RecordFork(ev.Writer, ev.Seq) {
		return nil // known already, from this number or an earlier one
	}
	w.n.log.Warn("equivocation: a writer signed two events with one sequence number; its events from there on are void on every replica",
		"thread", ts.ID, "writer", ev.Writer, "seq", ev.Seq, "first", other, "second", ev.ID())
	w.n.counters.reject(protocol.ErrEquivocation)
	om, err := w.tx.Meta(ts.ID, other)
	if err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	from := om.Order()
	if o := ev.Order(); o.Less(from) {
		from = o
	}
	w.rematFrom = append(w.rematFrom, rematAt{ts: ts, from: from})
	return nil
}

// rematAt is where the visible state of a thread must be recomputed: an
// equivocation was found (noteFork), or a removal voids posts it did not
// see (noteRemoval).
type rematAt struct {
	ts   *protocol.ThreadState
	from protocol.Order
}

// store applies an accepted event to the thread state and the store.
func (w *work) store(ts *protocol.ThreadState, ev *protocol.Event, meta *protocol.EventMeta) error {
	prevUsers := slices.Clone(ts.Current.Users)
	ts.Apply(ev, *meta)
	if err := w.noteRemoval(ts, meta); err != nil {
		return err
	}
	return w.storeApplied(ts, ev, meta, prevUsers)
}

// noteRemoval: an update that removed users and said what it had seen of
// them voids their posts it did not see, wherever they sort; recompute the
// visible state from the first of them.
func (w *work) noteRemoval(ts *protocol.ThreadState, meta *protocol.EventMeta) error {
	unseen, ok := ts.RemovalUnseen(meta.ID)
	if !ok {
		return nil
	}
	var from protocol.Order
	found := false
	for writer, seen := range unseen {
		if ts.Tips[writer].Seq <= seen {
			continue
		}
		id, err := w.tx.SeqID(ts.ID, writer, seen+1)
		if err != nil {
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		if id.IsZero() {
			continue
		}
		m, err := w.tx.Meta(ts.ID, id)
		if err != nil {
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		if o := m.Order(); !found || o.Less(from) {
			from, found = o, true
		}
	}
	if found {
		w.rematFrom = append(w.rematFrom, rematAt{ts: ts, from: from})
	}
	return nil
}

// storeApplied stores an event already applied to ts (a ThreadCreate comes
// applied from protocol.NewThreadState), gives local users the keys it
// carries, and queues its notifications and its publication.
func (w *work) storeApplied(ts *protocol.ThreadState, ev *protocol.Event, meta *protocol.EventMeta, prevUsers []crypto.UserID) error {
	eff, err := w.tx.Append(ts, ev, meta)
	if err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	w.void = ev.Kind.IsMessage() && !eff.Visible
	if w.local {
		w.published = append(w.published, ev)
		w.n.counters.stored.Add(1)
	}
	if ev.Kind.IsControl() {
		w.controls = true
		w.news = w.news || w.local
		w.n.idMu.RLock()
		for _, id := range w.n.identities {
			w.n.unwrapFrom(id, ts.ID, ev)
		}
		w.n.idMu.RUnlock()
	}
	if ev.Kind == protocol.KindThreadDelete && ts.Current.Deleted && len(w.n.held[ts.ID]) > 0 {
		// The store dropped the thread's held events with its content;
		// those written concurrently with the deletion come again by sync.
		w.n.dropThreadHeld(ts.ID)
	}
	w.noteEffect(ts, ev, meta, eff, prevUsers)
	return w.rematerializePending(prevUsers)
}

// rematerializePending recomputes the messages after each point noted by
// noteFork and noteRemoval, and tells members the thread changed.
func (w *work) rematerializePending(prevUsers []crypto.UserID) error {
	for _, f := range w.rematFrom {
		ids, err := w.tx.Rematerialize(f.ts, f.from)
		if err != nil {
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		w.controls = true
		w.noteThreadChanged(f.ts, ids, prevUsers)
	}
	w.rematFrom = nil
	return nil
}

// members returns everyone who was or is a member across a change.
func members(before, after []crypto.UserID) []crypto.UserID {
	return protocol.SortUsers(append(append([]crypto.UserID{}, before...), after...))
}
