package storage

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/weftnet/weft/protocol"
)

// EventsInRanges calls fn with the thread's events whose (writer, seq) falls
// in one of ranges, in linear order (Lamport time, then event ID) — a causal
// order: an event never comes before one it depends on. It merges one
// iterator per writer (each writer's events are in Lamport order by
// sequence), so it holds one event per range in memory, whatever the
// backlog. It stops when fn returns false or an error. Ranges of writers
// with no events are skipped.
//
// Ranges need not be sorted; ranges of one writer that overlap or touch
// are merged (no event is given twice), a From of 0 counts as 1, and a
// range with To < From is empty. All events come from one read-only
// transaction: a consistent snapshot, whatever is appended meanwhile.
func (s *Store) EventsInRanges(t protocol.ThreadID, ranges []protocol.SeqRange, fn func(*protocol.Event) (bool, error)) error {
	rs := normalizeRanges(ranges)
	if len(rs) == 0 {
		return nil
	}
	return s.view(func(b *badger.Txn) error {
		h := make(cursorHeap, 0, len(rs))
		defer func() {
			for _, c := range h {
				c.it.Close()
			}
		}()
		for _, r := range rs {
			c := &rangeCursor{t: t, r: r}
			c.it = b.NewIterator(badger.IteratorOptions{Prefix: key(pSeq, t, r.Writer[:])})
			c.it.Seek(seqKey(t, r.Writer, r.From))
			ok, err := c.load(b)
			if err != nil || !ok {
				c.it.Close()
				if err != nil {
					return err
				}
				continue
			}
			h = append(h, c)
		}
		heap.Init(&h)
		for len(h) > 0 {
			c := h[0]
			more, err := fn(c.ev)
			if err != nil || !more {
				return err
			}
			c.it.Next()
			ok, err := c.load(b)
			if err != nil {
				return err
			}
			if ok {
				heap.Fix(&h, 0)
			} else {
				heap.Pop(&h)
				c.it.Close()
			}
		}
		return nil
	})
}

// normalizeRanges returns ranges sorted by (writer, From), with empty ones
// dropped and overlapping or adjacent ones of a writer merged.
func normalizeRanges(ranges []protocol.SeqRange) []protocol.SeqRange {
	rs := make([]protocol.SeqRange, 0, len(ranges))
	for _, r := range ranges {
		r.From = max(r.From, 1)
		if r.To >= r.From {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b protocol.SeqRange) int {
		if c := bytes.Compare(a.Writer[:], b.Writer[:]); c != 0 {
			return c
		}
		switch {
		case a.From < b.From:
			return -1
		case a.From > b.From:
			return 1
		}
		return 0
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].Writer == r.Writer && (out[n-1].To == ^uint64(0) || r.From <= out[n-1].To+1) {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// rangeCursor walks one writer's events of a range in sequence order and
// holds the next one.
type rangeCursor struct {
	t  protocol.ThreadID
	r  protocol.SeqRange
	it *badger.Iterator
	ev *protocol.Event
	o  protocol.Order
}

// load reads the event at the iterator, if it is still in the range.
func (c *rangeCursor) load(b *badger.Txn) (bool, error) {
	c.ev = nil
	if !c.it.Valid() {
		return false, nil
	}
	item := c.it.Item()
	k := item.Key()
	if len(k) != 1+32+32+8 {
		return false, fmt.Errorf("sequence index of thread %s: key of %d bytes", c.t, len(k))
	}
	seq := binary.BigEndian.Uint64(k[len(k)-8:])
	if seq > c.r.To {
		return false, nil
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return false, err
	}
	var id protocol.EventID
	if len(v) != len(id) {
		return false, fmt.Errorf("sequence index of thread %s, %s's %d: value of %d bytes", c.t, c.r.Writer, seq, len(v))
	}
	copy(id[:], v)
	ev, err := getEvent(b, c.t, id)
	if err != nil {
		return false, err
	}
	if ev.Writer != c.r.Writer || ev.Seq != seq {
		return false, fmt.Errorf("sequence index of thread %s: %s's %d names event %s, %s's %d", c.t, c.r.Writer, seq, id, ev.Writer, ev.Seq)
	}
	c.ev, c.o = ev, ev.Order()
	return true, nil
}

// cursorHeap orders cursors by the linear order of their next event.
type cursorHeap []*rangeCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].o.Less(h[j].o) }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*rangeCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return c
}
