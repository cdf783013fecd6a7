package storage_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// These tests drive the store directly, as package node does: events are
// built with the protocol's author helpers, judged with ThreadState.Validate,
// applied to an in-memory ThreadState and appended in a Txn. The in-memory
// side is the reference the store is compared with.

// stIdent returns a fixed test identity: seed = SHA-256("weft storage test " + name).
func stIdent(tb testing.TB, name string) *crypto.Identity {
	tb.Helper()
	seed := sha256.Sum256([]byte("weft storage test " + name))
	id, err := crypto.NewIdentityFromSeed(seed[:])
	if err != nil {
		tb.Fatalf("identity %s: %v", name, err)
	}
	return id
}

// stChain is one thread kept in memory and in a store in step.
type stChain struct {
	tb     testing.TB
	st     *storage.Store
	ts     *protocol.ThreadState
	idents map[string]*crypto.Identity
	rings  map[string]protocol.KeyRing
	metas  map[protocol.EventID]protocol.EventMeta
	events map[protocol.EventID]*protocol.Event
	all    []protocol.EventID // every accepted event, in acceptance order
	posts  []protocol.EventID // every MessagePost, in acceptance order
	clock  int64
}

func openStore(tb testing.TB, dir string) *storage.Store {
	tb.Helper()
	st, err := storage.Open(dir, storage.Options{GCInterval: -1})
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	return st
}

// newChain creates a thread by alice with bob and carol as members (alice
// the only manager) and stores its genesis. dave and erin are outsiders.
func newChain(tb testing.TB, st *storage.Store) *stChain {
	tb.Helper()
	c := &stChain{
		tb: tb, st: st,
		idents: map[string]*crypto.Identity{},
		rings:  map[string]protocol.KeyRing{},
		metas:  map[protocol.EventID]protocol.EventMeta{},
		events: map[protocol.EventID]*protocol.Event{},
		clock:  1_700_000_000_000,
	}
	for _, n := range []string{"alice", "bob", "carol", "dave", "erin"} {
		c.idents[n] = stIdent(tb, n)
		c.rings[n] = protocol.KeyRing{}
	}
	ev, _, err := protocol.NewThread(c.idents["alice"], []crypto.UserID{c.uid("bob"), c.uid("carol")}, nil,
		protocol.DefaultPolicy(), []byte("title"), []byte("secret title"), c.now())
	if err != nil {
		tb.Fatalf("NewThread: %v", err)
	}
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		tb.Fatalf("CheckEvent(genesis): %v", err)
	}
	ts, meta, err := protocol.NewThreadState(ev)
	if err != nil {
		tb.Fatalf("NewThreadState: %v", err)
	}
	c.ts = ts
	err = st.Update(true, func(tx *storage.Txn) error {
		_, err := tx.Append(ts, ev, &meta)
		return err
	})
	if err != nil {
		tb.Fatalf("appending the genesis: %v", err)
	}
	c.record(ev, meta)
	return c
}

func (c *stChain) uid(name string) crypto.UserID { return c.idents[name].UserID() }
func (c *stChain) now() int64                    { c.clock += 1000; return c.clock }

func (c *stChain) record(ev *protocol.Event, meta protocol.EventMeta) {
	c.metas[meta.ID] = meta
	c.events[meta.ID] = ev
	c.all = append(c.all, meta.ID)
	if meta.Kind == protocol.KindMessagePost {
		c.posts = append(c.posts, meta.ID)
	}
	for n, id := range c.idents {
		protocol.UnwrapKeys(c.rings[n], ev, id)
	}
}

// commit validates, applies and appends events in one transaction, in the
// order given, as the node does.
func (c *stChain) commit(evs ...*protocol.Event) []storage.Effect {
	c.tb.Helper()
	var effs []storage.Effect
	err := c.st.Update(true, func(tx *storage.Txn) error {
		for _, ev := range evs {
			if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
				return fmt.Errorf("CheckEvent(%s): %w", ev.Kind, err)
			}
			parents := make([]protocol.EventMeta, 0, len(ev.Parents))
			for _, p := range ev.Parents {
				m, ok := c.metas[p]
				if !ok {
					return fmt.Errorf("parent %s unknown", p)
				}
				parents = append(parents, m)
			}
			meta, err := c.ts.Validate(ev, parents)
			if err != nil {
				return fmt.Errorf("Validate(%s): %w", ev.Kind, err)
			}
			c.ts.Apply(ev, meta)
			eff, err := tx.Append(c.ts, ev, &meta)
			if err != nil {
				return fmt.Errorf("Append(%s): %w", ev.Kind, err)
			}
			effs = append(effs, eff)
			c.record(ev, meta)
		}
		return nil
	})
	if err != nil {
		c.tb.Fatalf("commit: %v", err)
	}
	return effs
}

func (c *stChain) post(user string, data []byte) *protocol.Event {
	c.tb.Helper()
	ev, err := protocol.NewPost(c.ts, c.idents[user], c.rings[user], []byte("pub "+user), []byte("priv "+user), data, c.now())
	if err != nil {
		c.tb.Fatalf("NewPost by %s: %v", user, err)
	}
	return ev
}

func (c *stChain) deleteMsg(user string, target protocol.EventID) *protocol.Event {
	c.tb.Helper()
	ev, err := protocol.NewMessageDelete(c.ts, c.idents[user], c.metas[target], c.now())
	if err != nil {
		c.tb.Fatalf("NewMessageDelete by %s: %v", user, err)
	}
	return ev
}

func (c *stChain) update(user string, ch protocol.ThreadChange) *protocol.Event {
	c.tb.Helper()
	ev, _, err := protocol.NewUpdate(c.ts, c.idents[user], ch, c.rings[user], c.now())
	if err != nil {
		c.tb.Fatalf("NewUpdate by %s: %v", user, err)
	}
	return ev
}

// concurrentPosts builds one post by each user against the same state (so
// they share their Lamport time and only their IDs order them) and commits
// them in the order given.
func (c *stChain) concurrentPosts(users ...string) {
	c.tb.Helper()
	var evs []*protocol.Event
	for _, u := range users {
		evs = append(evs, c.post(u, []byte(fmt.Sprintf("%s at %d", u, len(c.posts)))))
	}
	c.commit(evs...)
}

// byOrder sorts event IDs by their linear order (Lamport, ID).
func (c *stChain) byOrder(ids []protocol.EventID) []protocol.EventID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b protocol.EventID) int {
		ma, mb := c.metas[a], c.metas[b]
		return ma.Order().Compare(mb.Order())
	})
	return ids
}

// bigThread is the fixture most tests use: 300 posts by alice, bob and
// carol in 100 rounds of three concurrent posts (so ties in Lamport time
// are broken by ID), a ThreadUpdate that adds dave and rotates the key
// after round 50 (dave posts from then on, sequentially), and 5 deleted
// messages. It returns the IDs of the visible messages in linear order.
func bigThread(tb testing.TB, st *storage.Store) (*stChain, []protocol.EventID) {
	tb.Helper()
	c := newChain(tb, st)
	for r := 0; r < 100; r++ {
		if r == 50 {
			c.commit(c.update("alice", protocol.ThreadChange{AddUsers: []crypto.UserID{c.uid("dave")}, RotateKey: true}))
		}
		users := []string{"alice", "bob", "carol"}
		// Rotate who is committed first, so commit order is not ID order.
		k := r % 3
		users = append(users[k:], users[:k]...)
		c.concurrentPosts(users...)
		if r >= 50 && r%10 == 0 {
			c.commit(c.post("dave", []byte(fmt.Sprintf("dave at %d", r))))
		}
	}
	deleted := map[protocol.EventID]bool{}
	for _, i := range []int{0, 7, 150, len(c.posts) - 2, len(c.posts) - 1} {
		target := c.posts[i]
		deleted[target] = true
		c.commit(c.deleteMsg("alice", target))
	}
	var visible []protocol.EventID
	for _, id := range c.posts {
		if !deleted[id] {
			visible = append(visible, id)
		}
	}
	return c, c.byOrder(visible)
}

func msgIDs(ms []*protocol.MessageState) []protocol.EventID {
	out := make([]protocol.EventID, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func window(ids []protocol.EventID, skip, limit int) []protocol.EventID {
	start := min(skip, len(ids))
	end := len(ids)
	if limit > 0 {
		end = min(start+limit, end)
	}
	return ids[start:end]
}

func reversed(ids []protocol.EventID) []protocol.EventID {
	r := slices.Clone(ids)
	slices.Reverse(r)
	return r
}

func shortIDs(ids []protocol.EventID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String()[:8])
	}
	return out
}

func TestMessagesPaging(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	c, asc := bigThread(t, st)
	if len(asc) != 305-5 { // 300 concurrent posts + 5 by dave - 5 deleted
		t.Fatalf("fixture has %d visible messages, want 300", len(asc))
	}
	desc := reversed(asc)
	tid := c.ts.ID

	list := func(p storage.Page) []protocol.EventID {
		t.Helper()
		ms, total, err := st.Messages(tid, p)
		if err != nil {
			t.Fatalf("Messages(%+v): %v", p, err)
		}
		if total != uint64(len(asc)) {
			t.Fatalf("Messages(%+v): total %d, want %d", p, total, len(asc))
		}
		for _, m := range ms {
			if !m.Visible() {
				t.Fatalf("Messages(%+v) listed invisible message %s", p, m.ID)
			}
		}
		return msgIDs(ms)
	}
	check := func(name string, p storage.Page, want []protocol.EventID) {
		t.Helper()
		got := list(p)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Messages(skip %d, limit %d, desc %v) = %d items %v..., want %d items %v...",
				name, p.Skip, p.Limit, p.Desc, len(got), shortIDs(window(got, 0, 4)), len(want), shortIDs(window(want, 0, 4)))
		}
	}

	check("all asc", storage.Page{}, asc)
	check("all desc", storage.Page{Desc: true}, desc)
	for _, sl := range [][2]int{{0, 1}, {0, 10}, {1, 10}, {10, 0}, {37, 50}, {290, 50}, {299, 5}, {300, 5}, {1000, 0}, {0, 300}, {0, 301}} {
		skip, limit := sl[0], sl[1]
		check("window asc", storage.Page{Skip: skip, Limit: limit}, window(asc, skip, limit))
		check("window desc", storage.Page{Skip: skip, Limit: limit, Desc: true}, window(desc, skip, limit))
	}

	// LastID starts after the given message, in the page's direction.
	for _, i := range []int{0, 1, 41, 150, 298, 299} {
		last := asc[i]
		check("lastId asc", storage.Page{LastID: last}, asc[i+1:])
		check("lastId asc skip limit", storage.Page{LastID: last, Skip: 2, Limit: 3}, window(asc[i+1:], 2, 3))
		j := len(asc) - 1 - i // position of last in desc
		check("lastId desc", storage.Page{LastID: last, Desc: true}, desc[j+1:])
		check("lastId desc skip limit", storage.Page{LastID: last, Desc: true, Skip: 2, Limit: 3}, window(desc[j+1:], 2, 3))
	}

	// A cursor walk with LastID visits every message once, in order.
	for _, d := range []bool{false, true} {
		var got []protocol.EventID
		p := storage.Page{Limit: 7, Desc: d}
		for pages := 0; pages < 100; pages++ {
			ids := list(p)
			if len(ids) == 0 {
				break
			}
			if len(ids) > 7 {
				t.Fatalf("page of %d items with limit 7", len(ids))
			}
			got = append(got, ids...)
			p.LastID = ids[len(ids)-1]
		}
		want := asc
		if d {
			want = desc
		}
		if !slices.Equal(got, want) {
			t.Errorf("cursor walk (desc %v) visited %d messages, want %d in order", d, len(got), len(want))
		}
	}

	// LastID naming a deleted message starts after its place in the order.
	for _, i := range []int{7, 150} {
		del := c.posts[i]
		dm := c.metas[del]
		o := dm.Order()
		var after, before []protocol.EventID
		for _, id := range asc {
			if m := c.metas[id]; o.Less(m.Order()) {
				after = append(after, id)
			} else {
				before = append(before, id)
			}
		}
		check("lastId deleted asc", storage.Page{LastID: del}, after)
		check("lastId deleted desc", storage.Page{LastID: del, Desc: true}, reversed(before))
	}

	// A LastID that names no message is an error.
	if _, _, err := st.Messages(tid, storage.Page{LastID: protocol.EventID{1, 2, 3}}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Messages with an unknown LastID: err = %v, want ErrNotFound", err)
	}
	// An unknown thread lists nothing.
	ms, total, err := st.Messages(protocol.ThreadID{9}, storage.Page{})
	if err != nil || total != 0 || len(ms) != 0 {
		t.Errorf("Messages(unknown thread) = %d items, total %d, err %v; want nothing", len(ms), total, err)
	}
	// The stats agree with the list.
	stats, err := st.Stats(tid)
	if err != nil || stats.Messages != uint64(len(asc)) {
		t.Errorf("Stats = %+v, %v; want %d messages", stats, err, len(asc))
	}
}

func TestWriterEvents(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	c, _ := bigThread(t, st)
	tid := c.ts.ID

	bySeq := map[crypto.UserID][]protocol.EventID{} // writer -> IDs by seq-1
	for _, id := range c.all {
		m := c.metas[id]
		if uint64(len(bySeq[m.Writer])) != m.Seq-1 {
			t.Fatalf("fixture: %s's seq %d out of order", m.Writer, m.Seq)
		}
		bySeq[m.Writer] = append(bySeq[m.Writer], id)
	}
	for name := range c.idents {
		w := c.uid(name)
		want := bySeq[w]
		for _, from := range []uint64{0, 1, 2, 17, uint64(len(want)), uint64(len(want)) + 1, uint64(len(want)) + 100} {
			var got []protocol.EventID
			var seqs []uint64
			err := st.WriterEvents(tid, w, from, func(ev *protocol.Event) (bool, error) {
				got = append(got, ev.ID())
				seqs = append(seqs, ev.Seq)
				if ev.Writer != w {
					t.Errorf("WriterEvents(%s) gave an event by %s", name, ev.Writer)
				}
				return true, nil
			})
			if err != nil {
				t.Fatalf("WriterEvents(%s, %d): %v", name, from, err)
			}
			start := min(max(from, 1)-1, uint64(len(want)))
			if !slices.Equal(got, want[start:]) {
				t.Errorf("WriterEvents(%s, from %d) = %d events (seqs %v), want %d", name, from, len(got), window64(seqs, 5), len(want[start:]))
			}
			for i, s := range seqs {
				if s != start+1+uint64(i) {
					t.Errorf("WriterEvents(%s, from %d): event %d has seq %d, want %d", name, from, i, s, start+1+uint64(i))
					break
				}
			}
		}
	}

	// Stopping early and failing.
	alice := c.uid("alice")
	n := 0
	err := st.WriterEvents(tid, alice, 5, func(ev *protocol.Event) (bool, error) {
		n++
		return n < 3, nil
	})
	if err != nil || n != 3 {
		t.Errorf("WriterEvents stopped after %d calls (err %v), want 3", n, err)
	}
	boom := errors.New("boom")
	n = 0
	err = st.WriterEvents(tid, alice, 1, func(ev *protocol.Event) (bool, error) {
		n++
		return true, boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("WriterEvents with a failing fn: %d calls, err %v; want 1 call and the error", n, err)
	}

	// Deleted messages are served pruned, with the same ID and signature.
	deletedPost := c.posts[7]
	m := c.metas[deletedPost]
	err = st.WriterEvents(tid, m.Writer, m.Seq, func(ev *protocol.Event) (bool, error) {
		if ev.ID() != deletedPost {
			t.Errorf("event at %s's seq %d is %s, want %s", m.Writer, m.Seq, ev.ID(), deletedPost)
		}
		if ev.Content != nil {
			t.Errorf("deleted message %s served with its content", deletedPost)
		}
		if err := ev.VerifySignature(); err != nil {
			t.Errorf("pruned event does not verify: %v", err)
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func window64(s []uint64, n int) []uint64 { return s[:min(n, len(s))] }

func TestOrderedIDs(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	c, _ := bigThread(t, st)
	got, err := st.OrderedIDs(c.ts.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := c.byOrder(c.all)
	if !slices.Equal(got, want) {
		t.Fatalf("OrderedIDs: %d IDs, want %d sorted by (Lamport, ID)", len(got), len(want))
	}
	// The order is a linear extension of the DAG: parents come first.
	pos := map[protocol.EventID]int{}
	for i, id := range got {
		pos[id] = i
	}
	for _, id := range got {
		for _, p := range c.events[id].Parents {
			if pos[p] >= pos[id] {
				t.Fatalf("event %s is ordered before its parent %s", id, p)
			}
		}
	}
	// Sanity: the fixture has Lamport ties, so the ID tiebreak was tested.
	ties := 0
	for i := 1; i < len(got); i++ {
		if c.metas[got[i]].Lamport == c.metas[got[i-1]].Lamport {
			ties++
		}
	}
	if ties < 100 {
		t.Fatalf("fixture has only %d Lamport ties", ties)
	}
	if ids, err := st.OrderedIDs(protocol.ThreadID{7}); err != nil || len(ids) != 0 {
		t.Errorf("OrderedIDs(unknown thread) = %v, %v", ids, err)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	st2, err := storage.Open(dir, storage.Options{GCInterval: -1})
	if err == nil {
		st2.Close()
		st.Close()
		t.Fatal("a second Open of an open database succeeded")
	}
	if !errors.Is(err, storage.ErrLocked) {
		t.Errorf("second Open: %v, want an error wrapping ErrLocked", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the first is closed, the directory opens again.
	st3, err := storage.Open(dir, storage.Options{GCInterval: -1})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	st3.Close()
}

func TestRunGC(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(dir, storage.Options{GCInterval: -1, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := newChain(t, st)
	// Events over the value threshold (4 KiB) live in the value log; delete
	// most of them so that the log holds garbage.
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10/16)
	for i := 0; i < 60; i++ {
		c.commit(c.post([]string{"alice", "bob", "carol"}[i%3], big))
	}
	for i := 0; i < 50; i++ {
		c.commit(c.deleteMsg("alice", c.posts[i]))
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	n := st.RunGC()
	if n < 0 {
		t.Fatalf("RunGC = %d", n)
	}
	// Everything still reads back.
	for _, id := range c.all {
		ev, err := st.Event(c.ts.ID, id)
		if err != nil {
			t.Fatalf("Event(%s) after GC: %v", id, err)
		}
		if ev.ID() != id {
			t.Fatalf("Event(%s) after GC has ID %s", id, ev.ID())
		}
	}
	for _, id := range c.posts[50:] {
		ev, _ := st.Event(c.ts.ID, id)
		if ev.Content == nil || !bytes.Equal(ev.Encode(nil), c.events[id].Encode(nil)) {
			t.Fatalf("message %s changed after GC", id)
		}
	}
	ms, total, err := st.Messages(c.ts.ID, storage.Page{})
	if err != nil || total != 10 || len(ms) != 10 {
		t.Fatalf("after GC: %d messages, total %d, err %v; want 10", len(ms), total, err)
	}
	// Running it again (nothing left to do) does not fail either.
	st.RunGC()
}

func TestCloseReopen(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	c, asc := bigThread(t, st)
	tid := c.ts.ID
	order, err := st.OrderedIDs(tid)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st = openStore(t, dir)
	defer st.Close()
	got, err := st.OrderedIDs(tid)
	if err != nil || !slices.Equal(got, order) {
		t.Fatalf("after reopen: OrderedIDs gives %d IDs (err %v), want %d", len(got), err, len(order))
	}
	ms, total, err := st.Messages(tid, storage.Page{})
	if err != nil || total != uint64(len(asc)) || !slices.Equal(msgIDs(ms), asc) {
		t.Fatalf("after reopen: Messages gives %d items, total %d, err %v; want %d", len(ms), total, err, len(asc))
	}
	deleted := map[protocol.EventID]bool{}
	for _, id := range c.posts {
		if !slices.Contains(asc, id) {
			deleted[id] = true
		}
	}
	if len(deleted) != 5 {
		t.Fatalf("fixture: %d deleted messages, want 5", len(deleted))
	}
	for _, id := range c.all {
		ev, err := st.Event(tid, id)
		if err != nil {
			t.Fatalf("Event(%s) after reopen: %v", id, err)
		}
		want := c.events[id]
		if deleted[c.metas[id].Target] { // the post and every event acting on it are pruned
			want = want.Pruned()
		}
		if !bytes.Equal(ev.Encode(nil), want.Encode(nil)) {
			t.Fatalf("Event(%s) (%s) after reopen differs from what was appended", id, want.Kind)
		}
		m, err := st.Meta(tid, id)
		if err != nil || !reflect.DeepEqual(*m, c.metas[id]) {
			t.Fatalf("Meta(%s) after reopen = %+v, %v; want %+v", id, m, err, c.metas[id])
		}
		loc, err := st.Locate(id)
		if err != nil || loc != tid {
			t.Fatalf("Locate(%s) after reopen = %s, %v", id, loc, err)
		}
	}
	if _, err := st.Locate(protocol.EventID{1}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Locate(unknown) = %v, want ErrNotFound", err)
	}
	// A reopened store keeps taking appends where it left off.
	ts, err := st.LoadThreads()
	if err != nil {
		t.Fatal(err)
	}
	c.st, c.ts = st, ts[tid]
	c.commit(c.post("bob", []byte("after reopen")))
	if ms, total, err := st.Messages(tid, storage.Page{Desc: true, Limit: 1}); err != nil || total != uint64(len(asc)+1) || len(ms) != 1 || ms[0].ID != c.posts[len(c.posts)-1] {
		t.Fatalf("after an append on the reopened store: total %d, err %v", total, err)
	}
}

func TestLoadThreads(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	c, _ := bigThread(t, st)
	// A second thread, so that LoadThreads has to keep them apart.
	c2 := newChain(t, st)
	c2.concurrentPosts("bob", "carol")
	c2.commit(c2.update("alice", protocol.ThreadChange{RemoveUsers: []crypto.UserID{c2.uid("carol")}, PublicMeta: []byte("renamed")}))
	c2.commit(c2.post("bob", []byte("after carol left")))

	compare := func(when string, got map[protocol.ThreadID]*protocol.ThreadState) {
		t.Helper()
		if len(got) != 2 {
			t.Fatalf("%s: LoadThreads gave %d threads, want 2", when, len(got))
		}
		for _, want := range []*protocol.ThreadState{c.ts, c2.ts} {
			ts := got[want.ID]
			if ts == nil {
				t.Fatalf("%s: thread %s not loaded", when, want.ID)
			}
			if ts.Genesis.ID() != protocol.EventID(want.ID) {
				t.Errorf("%s: genesis %s, want %s", when, ts.Genesis.ID(), want.ID)
			}
			if !reflect.DeepEqual(ts.Current, want.Current) {
				t.Errorf("%s: Current = %+v\nwant %+v", when, ts.Current, want.Current)
			}
			if !reflect.DeepEqual(ts.Tips, want.Tips) {
				t.Errorf("%s: Tips = %v, want %v", when, ts.Tips, want.Tips)
			}
			if !reflect.DeepEqual(ts.Heads, want.Heads) {
				t.Errorf("%s: Heads = %+v\nwant %+v", when, ts.Heads, want.Heads)
			}
			if !reflect.DeepEqual(ts.VersionVector(), want.VersionVector()) {
				t.Errorf("%s: version vector %v, want %v", when, ts.VersionVector(), want.VersionVector())
			}
			if len(ts.Controls) != len(want.Controls) {
				t.Fatalf("%s: %d control events, want %d", when, len(ts.Controls), len(want.Controls))
			}
			for i := range ts.Controls {
				g, w := ts.Controls[i], want.Controls[i]
				if g.Meta.ID != w.Meta.ID || !reflect.DeepEqual(g.Meta, w.Meta) {
					t.Errorf("%s: control %d is %s, want %s", when, i, g.Meta.ID, w.Meta.ID)
				}
				if !bytes.Equal(g.Event.Encode(nil), w.Event.Encode(nil)) {
					t.Errorf("%s: control event %s differs", when, g.Meta.ID)
				}
			}
			// The restored state judges the next event as the live one does.
			var next protocol.Event
			ts.NextHeader(&next, c.idents["bob"])
			var wantNext protocol.Event
			want.NextHeader(&wantNext, c.idents["bob"])
			if next.Seq != wantNext.Seq || next.Lamport != wantNext.Lamport || next.Epoch != wantNext.Epoch || !slices.Equal(next.Parents, wantNext.Parents) {
				t.Errorf("%s: next header by bob differs: %+v vs %+v", when, next, wantNext)
			}
		}
	}
	got, err := st.LoadThreads()
	if err != nil {
		t.Fatal(err)
	}
	compare("open store", got)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir)
	defer st.Close()
	got, err = st.LoadThreads()
	if err != nil {
		t.Fatal(err)
	}
	compare("reopened store", got)
}

// TestFinishDeletions: a thread whose pruning a crash interrupted (the
// deletion marker missing, a message still whole with its state) is
// pruned when the store is next loaded, and only then marked done.
func TestFinishDeletions(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	c := newChain(t, st)
	c.commit(c.post("bob", []byte("secret words")), c.post("carol", []byte("more secret words")))
	victim := c.posts[0]
	whole, err := st.Event(c.ts.ID, victim)
	if err != nil {
		t.Fatal(err)
	}
	del, err := protocol.NewDelete(c.ts, c.idents["alice"], c.now())
	if err != nil {
		t.Fatal(err)
	}
	c.commit(del)
	// What a crash in the middle of the prune leaves: no marker, and a
	// message still whole with its message state.
	err = st.DB().Update(func(b *badger.Txn) error {
		var markers, events [][]byte
		it := b.NewIterator(badger.IteratorOptions{})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			switch {
			case k[0] == 'd':
				markers = append(markers, k)
			case k[0] == 'e' && bytes.HasSuffix(k, victim[:]):
				events = append(events, k)
			}
		}
		it.Close()
		if len(markers) != 1 || len(events) != 1 {
			return fmt.Errorf("found %d markers and %d victim events", len(markers), len(events))
		}
		if err := b.Delete(markers[0]); err != nil {
			return err
		}
		if err := b.Set(events[0], whole.Encode(nil)); err != nil {
			return err
		}
		return b.Set(append(append([]byte{'M'}, c.ts.ID[:]...), victim[:]...), []byte{1})
	})
	if err != nil {
		t.Fatal(err)
	}
	threads, err := st.LoadThreads()
	if err != nil {
		t.Fatal(err)
	}
	done, err := st.FinishDeletions(threads)
	if err != nil || len(done) != 1 || done[0] != c.ts.ID {
		t.Fatalf("FinishDeletions = %v, %v; want the thread", done, err)
	}
	if ev, err := st.Event(c.ts.ID, victim); err != nil || ev.Content != nil {
		t.Fatalf("the interrupted victim after finishing: %v, content %v", err, ev.Content != nil)
	}
	err = st.DB().View(func(b *badger.Txn) error {
		it := b.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if it.Item().Key()[0] == 'M' {
				return fmt.Errorf("message state %x left", it.Item().Key())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Done once: the next load has nothing to finish.
	if done, err := st.FinishDeletions(threads); err != nil || len(done) != 0 {
		t.Fatalf("second FinishDeletions = %v, %v", done, err)
	}
}
