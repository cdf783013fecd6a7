package storage_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// collectRanges returns the IDs EventsInRanges gives, checking each event
// is of the thread and in one of ranges.
func collectRanges(t *testing.T, st *storage.Store, c *stChain, tid protocol.ThreadID, ranges []protocol.SeqRange) []protocol.EventID {
	t.Helper()
	var got []protocol.EventID
	err := st.EventsInRanges(tid, ranges, func(ev *protocol.Event) (bool, error) {
		if !inRanges(ev.Writer, ev.Seq, ranges) {
			t.Errorf("EventsInRanges gave %s's %d, outside %v", ev.Writer, ev.Seq, ranges)
		}
		if ev.Kind != protocol.KindThreadCreate && ev.Thread != tid {
			t.Errorf("EventsInRanges gave an event of thread %s", ev.Thread)
		}
		got = append(got, ev.ID())
		return true, nil
	})
	if err != nil {
		t.Fatalf("EventsInRanges(%v): %v", ranges, err)
	}
	return got
}

func inRanges(w crypto.UserID, seq uint64, ranges []protocol.SeqRange) bool {
	return slices.ContainsFunc(ranges, func(r protocol.SeqRange) bool {
		return r.Writer == w && seq >= r.From && seq <= r.To
	})
}

// wantInRanges is OrderedIDs filtered to the events in ranges.
func wantInRanges(t *testing.T, st *storage.Store, c *stChain, ranges []protocol.SeqRange) []protocol.EventID {
	t.Helper()
	all, err := st.OrderedIDs(c.ts.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.EventID
	for _, id := range all {
		if m := c.metas[id]; inRanges(m.Writer, m.Seq, ranges) {
			out = append(out, id)
		}
	}
	return out
}

// checkCausal checks that every event comes after those of its parents
// that are in the list too.
func checkCausal(t *testing.T, c *stChain, ids []protocol.EventID) {
	t.Helper()
	pos := map[protocol.EventID]int{}
	for i, id := range ids {
		pos[id] = i
	}
	for i, id := range ids {
		for _, p := range c.events[id].Parents {
			if j, ok := pos[p]; ok && j >= i {
				t.Fatalf("event %s (at %d) comes before its parent %s (at %d)", id, i, p, j)
			}
		}
	}
}

func TestEventsInRanges(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	c, _ := bigThread(t, st)
	tid := c.ts.ID
	// Another thread in the same store, by the same writers, must not leak in.
	other := newChain(t, st)
	other.concurrentPosts("alice", "bob", "carol")
	other.concurrentPosts("bob", "carol")
	if other.ts.ID == tid {
		t.Fatal("fixture: two threads with the same ID")
	}

	vv := c.ts.VersionVector()
	alice, bob, carol, dave, erin := c.uid("alice"), c.uid("bob"), c.uid("carol"), c.uid("dave"), c.uid("erin")
	if len(vv) != 4 || vv[dave] == 0 || vv[alice] < 100 {
		t.Fatalf("fixture: version vector %v", vv)
	}

	// Everything: exactly OrderedIDs, parents first.
	everything := protocol.VersionVector{}.Missing(vv)
	got := collectRanges(t, st, c, tid, everything)
	all, err := st.OrderedIDs(tid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, all) {
		t.Fatalf("EventsInRanges(everything) = %d events, OrderedIDs %d (first %v vs %v)", len(got), len(all), shortIDs(window(got, 0, 4)), shortIDs(window(all, 0, 4)))
	}
	if len(got) != len(c.all) {
		t.Fatalf("EventsInRanges(everything) = %d events, %d were committed", len(got), len(c.all))
	}
	checkCausal(t, c, got)

	// What a replica at a partial version vector lacks, as sync asks for it.
	for _, have := range []protocol.VersionVector{
		{alice: 1},
		{alice: 50, bob: 10, carol: 99},
		{alice: vv[alice], bob: vv[bob], carol: vv[carol]},
		{alice: vv[alice] - 1, bob: vv[bob], carol: vv[carol], dave: vv[dave] - 1},
		vv,
	} {
		missing := have.Missing(vv)
		got := collectRanges(t, st, c, tid, missing)
		want := wantInRanges(t, st, c, missing)
		if !slices.Equal(got, want) {
			t.Errorf("EventsInRanges(missing from %v) = %d events, want %d", have, len(got), len(want))
		}
		checkCausal(t, c, got)
	}

	// Ranges with gaps, a writer with no events, ranges beyond what is
	// stored, out of order.
	partial := []protocol.SeqRange{
		{Writer: carol, From: 90, To: 1000},
		{Writer: alice, From: 10, To: 20},
		{Writer: erin, From: 1, To: 5},
		{Writer: bob, From: 1, To: 1},
		{Writer: dave, From: 2, To: 3},
		{Writer: bob, From: 50, To: 60},
	}
	got = collectRanges(t, st, c, tid, partial)
	want := wantInRanges(t, st, c, partial)
	if uint64(len(want)) != (vv[carol]-89)+11+1+2+11 {
		t.Fatalf("fixture: %d events in the partial ranges", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("EventsInRanges(partial) = %d events %v..., want %d %v...", len(got), shortIDs(window(got, 0, 4)), len(want), shortIDs(window(want, 0, 4)))
	}
	checkCausal(t, c, got)

	// Overlapping ranges and From 0: each event once.
	overlap := []protocol.SeqRange{
		{Writer: alice, From: 0, To: 10},
		{Writer: alice, From: 5, To: 15},
		{Writer: alice, From: 16, To: 16},
		{Writer: alice, From: 12, To: 13},
		{Writer: bob, From: 7, To: 3}, // empty
	}
	got = collectRanges(t, st, c, tid, overlap)
	want = wantInRanges(t, st, c, []protocol.SeqRange{{Writer: alice, From: 1, To: 16}})
	if !slices.Equal(got, want) {
		t.Errorf("EventsInRanges(overlapping) = %d events, want %d", len(got), len(want))
	}

	// Nothing to give.
	for name, rs := range map[string][]protocol.SeqRange{
		"no ranges":          nil,
		"beyond the stored":  {{Writer: alice, From: vv[alice] + 1, To: vv[alice] + 100}},
		"writer with none":   {{Writer: erin, From: 1, To: ^uint64(0)}},
		"everything, max To": {{Writer: alice, From: ^uint64(0), To: ^uint64(0)}},
	} {
		if got := collectRanges(t, st, c, tid, rs); len(got) != 0 {
			t.Errorf("%s: %d events", name, len(got))
		}
	}
	if got := collectRanges(t, st, c, protocol.ThreadID{7}, everything); len(got) != 0 {
		t.Errorf("unknown thread: %d events", len(got))
	}

	// The other thread gives its own events, in its order.
	otherAll, err := st.OrderedIDs(other.ts.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := collectRanges(t, st, other, other.ts.ID, protocol.VersionVector{}.Missing(other.ts.VersionVector())); !slices.Equal(got, otherAll) || len(got) != 6 {
		t.Errorf("other thread: %d events, want its %d", len(got), len(otherAll))
	}
}

func TestEventsInRangesStop(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	c, _ := bigThread(t, st)
	tid := c.ts.ID
	everything := protocol.VersionVector{}.Missing(c.ts.VersionVector())
	all, err := st.OrderedIDs(tid)
	if err != nil {
		t.Fatal(err)
	}

	// Stopping early gives a prefix of the order.
	for _, k := range []int{1, 2, 7, 100} {
		var got []protocol.EventID
		err := st.EventsInRanges(tid, everything, func(ev *protocol.Event) (bool, error) {
			got = append(got, ev.ID())
			return len(got) < k, nil
		})
		if err != nil || !slices.Equal(got, all[:k]) {
			t.Errorf("stopping after %d: %d events (err %v), want the first %d", k, len(got), err, k)
		}
	}
	// An error from fn stops it and is returned.
	boom := errors.New("boom")
	n := 0
	err = st.EventsInRanges(tid, everything, func(ev *protocol.Event) (bool, error) {
		n++
		return true, boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("failing fn: %d calls, err %v; want 1 call and the error", n, err)
	}

	// Deleted messages come pruned, still verifiable.
	deleted := c.posts[7]
	m := c.metas[deleted]
	seen := false
	err = st.EventsInRanges(tid, []protocol.SeqRange{{Writer: m.Writer, From: m.Seq, To: m.Seq}}, func(ev *protocol.Event) (bool, error) {
		seen = true
		if ev.ID() != deleted || ev.Content != nil {
			t.Errorf("deleted message: got %s (content %v), want %s pruned", ev.ID(), ev.Content != nil, deleted)
		}
		return true, ev.VerifySignature()
	})
	if err != nil || !seen {
		t.Errorf("deleted message: seen %v, err %v", seen, err)
	}
}
