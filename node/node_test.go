package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

var cheapKDF = &crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

func openNode(t testing.TB, home string, pass string) *node.Node {
	t.Helper()
	n, err := node.New(context.Background(), node.Config{Home: home, Passphrase: []byte(pass), KDF: cheapKDF})
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	return n
}

// trio opens a node with local identities A, B (members) and C (not).
func trio(t *testing.T) (n *node.Node, a, b, c *node.User) {
	t.Helper()
	n = openNode(t, t.TempDir(), "pw")
	t.Cleanup(func() { n.Close() })
	ctx := context.Background()
	var us []*node.User
	for _, name := range []string{"alice", "bob", "carol"} {
		id, err := n.CreateIdentity(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, n.As(id))
	}
	return n, us[0], us[1], us[2]
}

func mustSend(t *testing.T, u *node.User, th protocol.ThreadID, data string) protocol.EventID {
	t.Helper()
	id, err := u.SendMessage(context.Background(), th, []byte("pub:"+data), []byte("priv:"+data), []byte(data))
	if err != nil {
		t.Fatalf("SendMessage(%q): %v", data, err)
	}
	return id
}

func mustRead(t *testing.T, u *node.User, mid protocol.EventID, want string) {
	t.Helper()
	m, err := u.GetMessage(context.Background(), mid)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if m.StatusCode != node.StatusOK || string(m.Data) != want || string(m.PrivateMeta) != "priv:"+want || string(m.PublicMeta) != "pub:"+want {
		t.Fatalf("GetMessage = status %d (%s) data %q privateMeta %q, want %q", m.StatusCode, m.Status, m.Data, m.PrivateMeta, want)
	}
}

func TestMembersReadNonMemberCannot(t *testing.T) {
	ctx := context.Background()
	_, a, b, c := trio(t)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, []byte("title"), []byte("secret title"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ma := mustSend(t, a, th, "from alice")
	mb := mustSend(t, b, th, "from bob")
	for _, u := range []*node.User{a, b} {
		mustRead(t, u, ma, "from alice")
		mustRead(t, u, mb, "from bob")
		got, err := u.GetThread(ctx, th)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.PrivateMeta) != "secret title" || string(got.PublicMeta) != "title" || got.StatusCode != 0 {
			t.Fatalf("GetThread: %+v", got)
		}
		if len(got.Users) != 2 || len(got.Managers) != 1 || got.Managers[0] != a.ID() || got.Creator != a.ID() {
			t.Fatalf("members: users %v managers %v", got.Users, got.Managers)
		}
	}
	// C is not a member: it can read nothing and post nothing.
	if _, err := c.GetMessage(ctx, ma); !errors.Is(err, protocol.ErrNotMember) {
		t.Fatalf("C GetMessage: %v, want ErrNotMember", err)
	}
	if _, err := c.ListMessages(ctx, th, node.Page{}); !errors.Is(err, protocol.ErrNotMember) {
		t.Fatalf("C ListMessages: %v, want ErrNotMember", err)
	}
	if _, err := c.SendMessage(ctx, th, nil, nil, []byte("intruder")); !errors.Is(err, protocol.ErrNotMember) {
		t.Fatalf("C SendMessage: %v, want ErrNotMember", err)
	}
	if l, err := c.ListThreads(ctx, node.Page{}); err != nil || l.TotalAvailable != 0 {
		t.Fatalf("C ListThreads: %v %+v", err, l)
	}
	l, err := a.ListMessages(ctx, th, node.Page{})
	if err != nil || l.TotalAvailable != 2 {
		t.Fatalf("ListMessages: %v total %d", err, l.TotalAvailable)
	}
}

func TestRemovalStartsEpoch(t *testing.T) {
	ctx := context.Background()
	n, a, b, _ := trio(t)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := mustSend(t, a, th, "before")
	bobBefore := mustSend(t, b, th, "bob before")
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{RemoveUsers: []crypto.UserID{b.ID()}}); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetThread(ctx, th)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 1 || len(got.Users) != 1 {
		t.Fatalf("after removal: epoch %d users %v", got.Epoch, got.Users)
	}
	after := mustSend(t, a, th, "after")

	// B still reads what was sent before, not what was sent after.
	mustRead(t, b, before, "before")
	mustRead(t, b, bobBefore, "bob before")
	m, err := b.GetMessage(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	if m.StatusCode != node.StatusNoKey || m.Data != nil || m.PrivateMeta != nil {
		t.Fatalf("B reads post-removal message: status %d data %q", m.StatusCode, m.Data)
	}
	mustRead(t, a, after, "after")

	// B's posts after the removal are rejected: through the API...
	if _, err := b.SendMessage(ctx, th, nil, nil, []byte("still here?")); !errors.Is(err, protocol.ErrNotMember) {
		t.Fatalf("B SendMessage after removal: %v", err)
	}
	// ...and as a forged event that has seen the removal, fed in as if
	// from another replica.
	bid := bobIdentity(t, n, b.ID())
	ts := threadState(t, n, th)
	ring := protocol.KeyRing{ts.Current.KeyRef: crypto.ThreadKey{}} // B has no key: any key will do for a forgery
	ev, err := protocol.NewPost(ts, bid, ring, nil, nil, []byte("forged"), time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Ingest(ctx, [][]byte{ev.Encode(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Rejected != 1 || !errors.Is(res.Errors[0], protocol.ErrNotMember) {
		t.Fatalf("forged post by removed member: %+v", res)
	}
	l, _ := a.ListMessages(ctx, th, node.Page{})
	if l.TotalAvailable != 3 {
		t.Fatalf("messages after forgery: %d, want 3", l.TotalAvailable)
	}
}

// bobIdentity returns a local identity's secret key through the keystore
// file (as an attacker holding the key would have it).
func bobIdentity(t *testing.T, n *node.Node, u crypto.UserID) *crypto.Identity {
	t.Helper()
	ks, err := crypto.ReadKeystore(n.Home()+"/keystore.json", []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	id, ok := ks.Find(u)
	if !ok {
		t.Fatal("identity not in keystore")
	}
	return id
}

// threadState rebuilds the thread's protocol state from the store.
func threadState(t *testing.T, n *node.Node, th protocol.ThreadID) *protocol.ThreadState {
	t.Helper()
	all, err := n.Store().LoadThreads()
	if err != nil {
		t.Fatal(err)
	}
	ts, ok := all[th]
	if !ok {
		t.Fatal("thread not stored")
	}
	return ts
}

func TestPermissions(t *testing.T) {
	ctx := context.Background()
	_, a, b, _ := trio(t)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A non-manager cannot update or delete the thread.
	if err := b.UpdateThread(ctx, th, node.ThreadUpdate{PublicMeta: []byte("mine now")}); !errors.Is(err, protocol.ErrNotManager) {
		t.Fatalf("B UpdateThread: %v", err)
	}
	if err := b.DeleteThread(ctx, th); !errors.Is(err, protocol.ErrNotManager) {
		t.Fatalf("B DeleteThread: %v", err)
	}
	ma := mustSend(t, a, th, "alice's")
	mb := mustSend(t, b, th, "bob's")
	// A member cannot edit or delete someone else's message.
	if err := b.UpdateMessage(ctx, ma, nil, nil, []byte("edited by bob")); !errors.Is(err, protocol.ErrNotAuthor) {
		t.Fatalf("B edits A's message: %v", err)
	}
	if err := b.DeleteMessage(ctx, ma); !errors.Is(err, protocol.ErrNotAuthor) {
		t.Fatalf("B deletes A's message: %v", err)
	}
	mustRead(t, a, ma, "alice's")
	// The author edits its own: the updates list grows.
	for i := 1; i <= 2; i++ {
		v := fmt.Sprintf("bob's v%d", i)
		if err := b.UpdateMessage(ctx, mb, []byte("pub:"+v), []byte("priv:"+v), []byte(v)); err != nil {
			t.Fatalf("B edits own message: %v", err)
		}
		mustRead(t, a, mb, v)
		m, _ := a.GetMessage(ctx, mb)
		if len(m.Updates) != i || m.Updates[i-1].Author != b.ID() || m.Updates[i-1].Date == 0 {
			t.Fatalf("updates after %d edits: %+v", i, m.Updates)
		}
	}
	// A manager can delete any message.
	if err := a.DeleteMessage(ctx, mb); err != nil {
		t.Fatalf("manager deletes B's message: %v", err)
	}
	if _, err := a.GetMessage(ctx, mb); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("deleted message: %v", err)
	}
	// The version check: a stale version fails unless forced.
	got, _ := a.GetThread(ctx, th)
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{PublicMeta: []byte("v2"), Version: got.Version}); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{PublicMeta: []byte("v3"), Version: got.Version}); !errors.Is(err, node.ErrVersionMismatch) {
		t.Fatalf("stale version: %v", err)
	}
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{PublicMeta: []byte("v3"), Version: got.Version, Force: true}); err != nil {
		t.Fatalf("forced: %v", err)
	}
	got2, _ := a.GetThread(ctx, th)
	if string(got2.PublicMeta) != "v3" || got2.Version != got.Version+2 {
		t.Fatalf("after updates: meta %q version %d (was %d)", got2.PublicMeta, got2.Version, got.Version)
	}
}

func TestSizeLimits(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{Home: t.TempDir(), Unencrypted: true, Limits: protocol.Limits{MaxData: 1000, MaxMeta: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	uid, _ := n.CreateIdentity(ctx, "")
	a := n.As(uid)
	if _, err := a.CreateThread(ctx, nil, nil, make([]byte, 101), nil, nil); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("oversized publicMeta: %v", err)
	}
	th, err := a.CreateThread(ctx, nil, nil, make([]byte, 100), make([]byte, 100), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendMessage(ctx, th, nil, nil, make([]byte, 1001)); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("oversized data: %v", err)
	}
	if _, err := a.SendMessage(ctx, th, nil, make([]byte, 101), nil); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("oversized privateMeta: %v", err)
	}
	if _, err := a.SendMessage(ctx, th, nil, nil, make([]byte, 1000)); err != nil {
		t.Fatalf("data at the limit: %v", err)
	}
	l, _ := a.ListMessages(ctx, th, node.Page{})
	if l.TotalAvailable != 1 {
		t.Fatalf("rejected sends changed the thread: %d messages", l.TotalAvailable)
	}
	// Default limits: 512 KiB of data.
	n2, err := node.New(ctx, node.Config{Home: t.TempDir(), Unencrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	uid2, _ := n2.CreateIdentity(ctx, "")
	th2, _ := n2.As(uid2).CreateThread(ctx, nil, nil, nil, nil, nil)
	if _, err := n2.As(uid2).SendMessage(ctx, th2, nil, nil, make([]byte, 512<<10+1)); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("default data limit: %v", err)
	}
	if _, err := n2.As(uid2).SendMessage(ctx, th2, nil, nil, make([]byte, 512<<10)); err != nil {
		t.Fatalf("512 KiB: %v", err)
	}
}

// rawValues returns every live key/value pair in the database.
func rawValues(t *testing.T, n *node.Node) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := n.Store().DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func containsAnywhere(kv map[string][]byte, needle []byte) bool {
	for k, v := range kv {
		if bytes.Contains([]byte(k), needle) || bytes.Contains(v, needle) {
			return true
		}
	}
	return false
}

func TestDeleteRemovesContent(t *testing.T) {
	ctx := context.Background()
	n, a, b, _ := trio(t)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, []byte("PUBLIC-THREAD-META"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keep := mustSend(t, a, th, "keep me")
	gone, err := a.SendMessage(ctx, th, []byte("PUBLIC-MARKER-GONE"), nil, []byte("delete me"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateMessage(ctx, gone, []byte("PUBLIC-MARKER-EDIT"), nil, []byte("delete me too")); err != nil {
		t.Fatal(err)
	}
	post, err := n.Store().Event(th, gone)
	if err != nil {
		t.Fatal(err)
	}
	sealed := post.Content.Data
	kv := rawValues(t, n)
	for _, needle := range [][]byte{sealed, []byte("PUBLIC-MARKER-GONE"), []byte("PUBLIC-MARKER-EDIT")} {
		if !containsAnywhere(kv, needle) {
			t.Fatalf("content %q not in the store before deletion: the check below would prove nothing", needle[:8])
		}
	}
	if err := b.DeleteMessage(ctx, keep); !errors.Is(err, protocol.ErrNotAuthor) {
		t.Fatal(err)
	}
	if err := a.DeleteMessage(ctx, gone); err != nil {
		t.Fatal(err)
	}
	kv = rawValues(t, n)
	for _, needle := range [][]byte{sealed, []byte("PUBLIC-MARKER-GONE"), []byte("PUBLIC-MARKER-EDIT")} {
		if containsAnywhere(kv, needle) {
			t.Fatalf("deleted message content %q still in the store", needle[:8])
		}
	}
	// The pruned event is still there, still authentic (for sync).
	pruned, err := n.Store().Event(th, gone)
	if err != nil || pruned.Content != nil || pruned.VerifySignature() != nil || pruned.ID() != gone {
		t.Fatalf("pruned event: %v content=%v", err, pruned.Content)
	}
	mustRead(t, a, keep, "keep me")
	l, _ := a.ListMessages(ctx, th, node.Page{})
	if l.TotalAvailable != 1 || len(l.Items) != 1 || l.Items[0].MessageID != keep {
		t.Fatalf("after delete: %+v", l)
	}

	// Deleting the thread removes every message and the thread's metadata.
	keepSealed := func() []byte { e, _ := n.Store().Event(th, keep); return e.Content.Data }()
	history, err := n.Store().OrderedIDs(th)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteThread(ctx, th); !errors.Is(err, protocol.ErrNotManager) {
		t.Fatal(err)
	}
	if err := a.DeleteThread(ctx, th); err != nil {
		t.Fatal(err)
	}
	kv = rawValues(t, n)
	for _, needle := range [][]byte{keepSealed, []byte("PUBLIC-THREAD-META"), []byte("pub:keep me")} {
		if containsAnywhere(kv, needle) {
			t.Fatalf("deleted thread content %q still in the store", needle)
		}
	}
	for k := range kv {
		if p := k[0]; (p == 'M' || p == 'g' || p == 'r') && bytes.Equal([]byte(k[1:33]), th[:]) {
			t.Fatalf("message index key %q left after thread deletion", k[:1])
		}
	}
	// What stays is the tombstone: every event, pruned, still verifying,
	// so replicas that missed the deletion can fetch it through sync.
	tomb, err := n.Store().OrderedIDs(th)
	if err != nil || len(tomb) != len(history)+1 {
		t.Fatalf("tombstone holds %d events (%v), want the %d before the deletion and the deletion", len(tomb), err, len(history))
	}
	for _, id := range tomb {
		ev, err := n.Store().Event(th, id)
		if err != nil {
			t.Fatalf("tombstone event %s: %v", id, err)
		}
		if ev.Content != nil {
			t.Fatalf("tombstone event %s (%s) keeps its content", id, ev.Kind)
		}
		if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
			t.Fatalf("tombstone event %s does not verify: %v", id, err)
		}
	}
	if _, err := a.GetThread(ctx, th); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("GetThread after delete: %v", err)
	}
	if _, err := a.SendMessage(ctx, th, nil, nil, []byte("x")); !errors.Is(err, protocol.ErrThreadDeleted) {
		t.Fatalf("send to deleted thread: %v", err)
	}
	if l, _ := a.ListThreads(ctx, node.Page{}); l.TotalAvailable != 0 {
		t.Fatalf("deleted thread still listed")
	}
}

func TestEventsInOrder(t *testing.T) {
	ctx := context.Background()
	_, a, b, c := trio(t)
	subA, err := a.Subscribe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close()
	subB, err := b.Subscribe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()
	subC, err := c.Subscribe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer subC.Close()

	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, []byte("t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := mustSend(t, b, th, "hello")
	if err := b.UpdateMessage(ctx, m, nil, nil, []byte("hello again")); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{AddUsers: []crypto.UserID{c.ID()}}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteThread(ctx, th); err != nil {
		t.Fatal(err)
	}
	want := []string{
		node.EventThreadCreated,
		node.EventThreadNewMessage, node.EventThreadStats,
		node.EventThreadUpdatedMessage,
		node.EventThreadMessageDeleted, node.EventThreadStats,
		node.EventThreadUpdated,
		node.EventThreadDeleted,
	}
	for _, s := range []struct {
		name string
		sub  *node.Subscription
		want []string
	}{{"A", subA, want}, {"B", subB, want}, {"C", subC, want[6:]}} {
		var got []string
		for len(got) < len(s.want) {
			select {
			case e := <-s.sub.C:
				if e.ThreadID != th {
					t.Fatalf("%s: event for thread %s", s.name, e.ThreadID)
				}
				got = append(got, e.Type)
				if e.Type == node.EventThreadNewMessage && (e.Message == nil || string(e.Message.Data) != "hello") {
					t.Fatalf("%s: threadNewMessage carries %+v", s.name, e.Message)
				}
				if e.Type == node.EventThreadUpdatedMessage && (e.Message == nil || string(e.Message.Data) != "hello again") {
					t.Fatalf("%s: threadUpdatedMessage carries %+v", s.name, e.Message)
				}
				if e.Type == node.EventThreadCreated && (e.Thread == nil || string(e.Thread.PrivateMeta) != "t") {
					t.Fatalf("%s: threadCreated carries %+v", s.name, e.Thread)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Fatalf("%s: events %v, want %v", s.name, got, s.want)
		}
		select {
		case e := <-s.sub.C:
			t.Fatalf("%s: extra event %s", s.name, e.Type)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestPaging(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir(), "pw")
	defer n.Close()
	uid, _ := n.CreateIdentity(ctx, "")
	a := n.As(uid)
	th, err := a.CreateThread(ctx, nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const total = 1000
	ids := make([]protocol.EventID, total)
	for i := range ids {
		ids[i] = mustSend(t, a, th, fmt.Sprint(i))
	}
	for _, desc := range []bool{false, true} {
		want := make([]protocol.EventID, total)
		for i := range ids {
			if desc {
				want[i] = ids[total-1-i]
			} else {
				want[i] = ids[i]
			}
		}
		// Pages of 100 by skip.
		for page := 0; page < 10; page++ {
			l, err := a.ListMessages(ctx, th, node.Page{Skip: page * 100, Limit: 100, Desc: desc})
			if err != nil {
				t.Fatal(err)
			}
			if l.TotalAvailable != total || len(l.Items) != 100 {
				t.Fatalf("desc=%v page %d: total %d items %d", desc, page, l.TotalAvailable, len(l.Items))
			}
			for i, m := range l.Items {
				if m.MessageID != want[page*100+i] {
					t.Fatalf("desc=%v page %d item %d out of order", desc, page, i)
				}
			}
		}
		// Pages of 100 by lastId.
		var last protocol.EventID
		var got []protocol.EventID
		for page := 0; page < 11; page++ {
			l, err := a.ListMessages(ctx, th, node.Page{Limit: 100, Desc: desc, LastID: last})
			if err != nil {
				t.Fatal(err)
			}
			if l.TotalAvailable != total {
				t.Fatalf("total %d", l.TotalAvailable)
			}
			if len(l.Items) == 0 {
				break
			}
			for _, m := range l.Items {
				got = append(got, m.MessageID)
			}
			last = l.Items[len(l.Items)-1].MessageID
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("desc=%v: lastId paging gave %d items, not the full list in order", desc, len(got))
		}
		// lastId and skip together.
		l, err := a.ListMessages(ctx, th, node.Page{Limit: 10, Skip: 5, Desc: desc, LastID: want[99]})
		if err != nil || len(l.Items) != 10 || l.Items[0].MessageID != want[105] {
			t.Fatalf("desc=%v lastId+skip: %v %d", desc, err, len(l.Items))
		}
	}
	if _, err := a.ListMessages(ctx, th, node.Page{Skip: -1}); !errors.Is(err, node.ErrBadInput) {
		t.Fatalf("negative skip: %v", err)
	}
	if _, err := a.ListMessages(ctx, th, node.Page{LastID: protocol.EventID{1}}); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("unknown lastId: %v", err)
	}
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	n := openNode(t, home, "correct horse")
	aid, _ := n.CreateIdentity(ctx, "alice")
	bid, _ := n.CreateIdentity(ctx, "bob")
	a, b := n.As(aid), n.As(bid)
	th, err := a.CreateThread(ctx, []crypto.UserID{bid}, nil, []byte("pub"), []byte("priv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m1 := mustSend(t, a, th, "one")
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{RotateKey: true}); err != nil {
		t.Fatal(err)
	}
	m2 := mustSend(t, b, th, "two")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendMessage(ctx, th, nil, nil, nil); !errors.Is(err, node.ErrClosed) {
		t.Fatalf("send on closed node: %v", err)
	}

	if _, err := node.New(ctx, node.Config{Home: home, Passphrase: []byte("wrong"), KDF: cheapKDF}); !errors.Is(err, crypto.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	n = openNode(t, home, "correct horse")
	defer n.Close()
	ids := n.Identities()
	if len(ids) != 2 || ids[0].UserID != aid || ids[0].Name != "alice" || ids[1].UserID != bid {
		t.Fatalf("identities after restart: %+v", ids)
	}
	a, b = n.As(aid), n.As(bid)
	mustRead(t, b, m1, "one")
	mustRead(t, a, m2, "two")
	got, err := b.GetThread(ctx, th)
	if err != nil || string(got.PrivateMeta) != "priv" || got.Epoch != 1 {
		t.Fatalf("thread after restart: %v %+v", err, got)
	}
	// Writing continues where it stopped: no reused sequence numbers.
	m3 := mustSend(t, a, th, "three")
	mustRead(t, b, m3, "three")
	l, _ := b.ListMessages(ctx, th, node.Page{})
	if l.TotalAvailable != 3 {
		t.Fatalf("messages after restart: %d", l.TotalAvailable)
	}
}

func TestIngestIdempotentAndRejects(t *testing.T) {
	ctx := context.Background()
	// A thread written elsewhere: its creation and five posts.
	th, all := foreignPosts(t, 5, 16)
	genesis, raw := all[0], all[1:]
	n, err := node.New(ctx, node.Config{Home: t.TempDir(), Unencrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Out of order: posts before their thread are held, then released.
	res, err := n.Ingest(ctx, [][]byte{raw[3], raw[1]})
	if err != nil || res.Held != 2 || res.Accepted != 0 {
		t.Fatalf("early posts: %v %+v", err, res)
	}
	res, err = n.Ingest(ctx, append([][]byte{genesis}, raw...))
	if err != nil || res.Accepted != 6 || res.Duplicates != 2 || res.Released != 2 {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	before := len(rawValues(t, n))
	res, err = n.Ingest(ctx, raw)
	if err != nil || res.Duplicates != 5 || res.Accepted != 0 {
		t.Fatalf("again: %v %+v", err, res)
	}
	tampered := bytes.Clone(raw[0])
	tampered[3] ^= 1 // inside the signed header: the signature no longer matches
	res, err = n.Ingest(ctx, [][]byte{tampered, {1, 4, 0}, {9, 1, 2}})
	if err != nil || res.Rejected != 3 || !errors.Is(res.Errors[0], protocol.ErrBadSignature) || !errors.Is(res.Errors[1], protocol.ErrMalformed) || !errors.Is(res.Errors[2], protocol.ErrUnknownVersion) {
		t.Fatalf("bad input: %v %+v", err, res)
	}
	if after := len(rawValues(t, n)); after != before {
		t.Fatalf("duplicates and bad input changed the store: %d keys, was %d", after, before)
	}
	ids, _ := n.Store().OrderedIDs(th)
	if len(ids) != 6 {
		t.Fatalf("stored %d events, want 6", len(ids))
	}
}

func TestImportIdentity(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir(), "pw")
	defer n.Close()
	id, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{3}, 32))
	got, err := n.ImportIdentity(ctx, "imported", id.String())
	if err != nil || got != id.UserID() {
		t.Fatalf("ImportIdentity: %v %s", err, got)
	}
	bad := id.String()
	bad = bad[:len(bad)-1] + string("QPZRY9X8"[(bytes.IndexByte([]byte("QPZRY9X8"), bad[len(bad)-1])+1)%8])
	if _, err := n.ImportIdentity(ctx, "typo", bad); !errors.Is(err, node.ErrBadInput) || !errors.Is(err, crypto.ErrMalformedIdentity) {
		t.Fatalf("ImportIdentity with a typo: %v", err)
	}
	if ids := n.Identities(); len(ids) != 1 || ids[0].Name != "imported" {
		t.Fatalf("identities: %+v", ids)
	}
	if _, err := n.As(crypto.UserID{1}).SendMessage(ctx, protocol.ThreadID{}, nil, nil, nil); !errors.Is(err, node.ErrUnknownIdentity) {
		t.Fatalf("unknown identity: %v", err)
	}
}

func TestCorruptStoredContent(t *testing.T) {
	ctx := context.Background()
	n, a, _, _ := trio(t)
	th, _ := a.CreateThread(ctx, nil, nil, nil, nil, nil)
	mid := mustSend(t, a, th, "original")
	ev, err := n.Store().Event(th, mid)
	if err != nil {
		t.Fatal(err)
	}
	// Someone with access to the disk swaps the public metadata.
	ev.Content.PublicMeta = []byte("pub:forged")
	key := append(append([]byte{'e'}, th[:]...), mid[:]...)
	if err := n.Store().DB().Update(func(txn *badger.Txn) error { return txn.Set(key, ev.Encode(nil)) }); err != nil {
		t.Fatal(err)
	}
	m, err := a.GetMessage(ctx, mid)
	if err != nil {
		t.Fatal(err)
	}
	if m.StatusCode != node.StatusUnverified || m.PublicMeta != nil || m.Data != nil {
		t.Fatalf("tampered message: status %d publicMeta %q", m.StatusCode, m.PublicMeta)
	}
	// Garbage in place of the event is an error, not a panic.
	if err := n.Store().DB().Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{1, 2, 3}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetMessage(ctx, mid); err == nil {
		t.Fatal("garbage event read without error")
	}
}

// foreignPosts builds a thread written elsewhere and count posts of size
// bytes of data, encoded as they would arrive from another replica.
func foreignPosts(t *testing.T, count, size int) (protocol.ThreadID, [][]byte) {
	t.Helper()
	writer, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{8}, 32))
	genesis, key, err := protocol.NewThread(writer, nil, nil, protocol.DefaultPolicy(), nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	ts, gm, err := protocol.NewThreadState(genesis)
	if err != nil {
		t.Fatal(err)
	}
	ring := protocol.KeyRing{gm.ID: key}
	raw := [][]byte{genesis.Encode(nil)}
	data := bytes.Repeat([]byte{'x'}, size)
	for i := 0; i < count; i++ {
		ev, err := protocol.NewPost(ts, writer, ring, nil, nil, data, int64(i+2))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := ts.Validate(ev, ts.Heads)
		if err != nil {
			t.Fatal(err)
		}
		ts.Apply(ev, meta)
		raw = append(raw, ev.Encode(nil))
	}
	return ts.ID, raw
}

// A batch bigger than one Badger transaction is committed in parts, each
// event whole, instead of failing.
func TestIngestLargeBatch(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{Home: t.TempDir(), Unencrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	th, raw := foreignPosts(t, 1200, 3500)
	res, err := n.Ingest(ctx, raw)
	if err != nil || res.Accepted != len(raw) {
		t.Fatalf("Ingest: %v %+v", err, res)
	}
	ids, err := n.Store().OrderedIDs(th)
	if err != nil || len(ids) != len(raw) {
		t.Fatalf("stored %d events (%v), want %d", len(ids), err, len(raw))
	}
	st, _ := n.Store().Stats(th)
	if st.Messages != 1200 {
		t.Fatalf("visible messages %d", st.Messages)
	}
}

// TestHeldReleasedInAnyOrder: events that arrive one at a time before
// their parents (in reverse, and shuffled with a restart in the middle)
// are held, and each is released as soon as the parent it waits for
// lands; the node ends with every event and holds none.
func TestHeldReleasedInAnyOrder(t *testing.T) {
	ctx := context.Background()
	th, all := foreignPosts(t, 40, 16)
	orders := map[string][]int{"reverse": {}, "shuffled": {}}
	for i := len(all) - 1; i >= 0; i-- {
		orders["reverse"] = append(orders["reverse"], i)
	}
	orders["shuffled"] = rand.New(rand.NewPCG(7, 7)).Perm(len(all))
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			n, err := node.New(ctx, node.Config{Home: home, Unencrypted: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { n.Close() }()
			accepted := 0
			for k, i := range order {
				if k == len(order)/2 {
					// Held events survive a restart and still wait.
					n.Close()
					if n, err = node.New(ctx, node.Config{Home: home, Unencrypted: true}); err != nil {
						t.Fatal(err)
					}
				}
				res, err := n.Ingest(ctx, [][]byte{all[i]})
				if err != nil || res.Rejected != 0 {
					t.Fatalf("event %d: %v %+v", i, err, res)
				}
				accepted += res.Accepted
			}
			if accepted != len(all) {
				t.Fatalf("accepted %d of %d", accepted, len(all))
			}
			if held, err := n.Store().AllHeld(); err != nil || len(held) != 0 {
				t.Fatalf("still held: %v %d threads", err, len(held))
			}
			ids, _ := n.Store().OrderedIDs(th)
			if len(ids) != len(all) {
				t.Fatalf("stored %d events, want %d", len(ids), len(all))
			}
		})
	}
}

// TestHeldEventOfDeletedThreadKeepsNoContent: posts written concurrently
// with a thread's deletion that arrive after it, the second before its
// parent, are held without their content and stored pruned once the
// parent lands.
func TestHeldEventOfDeletedThreadKeepsNoContent(t *testing.T) {
	ctx := context.Background()
	manager, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{8}, 32))
	member, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{9}, 32))
	genesis, _, err := protocol.NewThread(manager, []crypto.UserID{member.UserID()}, nil, protocol.DefaultPolicy(), nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Two states from the genesis: on one the member posts twice, on the
	// other the manager deletes the thread, concurrently.
	posting, _, _ := protocol.NewThreadState(genesis)
	deleting, _, _ := protocol.NewThreadState(genesis)
	ring := protocol.KeyRing{}
	if _, err := protocol.UnwrapKeys(ring, genesis, member); err != nil {
		t.Fatal(err)
	}
	var posts [][]byte
	for i := range 2 {
		ev, err := protocol.NewPost(posting, member, ring, []byte(fmt.Sprintf("PUB-concurrent-%d", i)), nil, []byte("x"), int64(i+2))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := posting.Validate(ev, posting.Heads)
		if err != nil {
			t.Fatal(err)
		}
		posting.Apply(ev, meta)
		posts = append(posts, ev.Encode(nil))
	}
	del, err := protocol.NewDelete(deleting, manager, 10)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(ctx, node.Config{Home: t.TempDir(), Unencrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	noContent := func(when string) {
		t.Helper()
		for k, v := range rawValues(t, n) {
			if bytes.Contains(v, []byte("PUB-concurrent")) {
				t.Fatalf("%s: a post's public metadata is stored under %q", when, k[:1])
			}
		}
	}
	if res, err := n.Ingest(ctx, [][]byte{genesis.Encode(nil), del.Encode(nil)}); err != nil || res.Accepted != 2 {
		t.Fatalf("genesis and deletion: %v %+v", err, res)
	}
	if res, err := n.Ingest(ctx, [][]byte{posts[1]}); err != nil || res.Held != 1 {
		t.Fatalf("second post before its parent: %v %+v", err, res)
	}
	noContent("held")
	if res, err := n.Ingest(ctx, [][]byte{posts[0]}); err != nil || res.Accepted != 2 || res.Released != 1 {
		t.Fatalf("first post: %v %+v", err, res)
	}
	noContent("released")
	if ids, _ := n.Store().OrderedIDs(genesis.ThreadID()); len(ids) != 4 {
		t.Fatalf("the tombstone holds %d events, want 4", len(ids))
	}
}

// TestHeldPerWriterBound: a member's events with made-up parents are held
// up to MaxHeldPerWriter per thread; the rest are left to sync (Deferred)
// and nothing of them is stored.
func TestHeldPerWriterBound(t *testing.T) {
	ctx := context.Background()
	manager, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{8}, 32))
	member, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{9}, 32))
	genesis, _, err := protocol.NewThread(manager, []crypto.UserID{member.UserID()}, nil, protocol.DefaultPolicy(), nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(ctx, node.Config{Home: t.TempDir(), Unencrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if res, err := n.Ingest(ctx, [][]byte{genesis.Encode(nil)}); err != nil || res.Accepted != 1 {
		t.Fatalf("genesis: %v %+v", err, res)
	}
	const extra = 50
	var raw [][]byte
	for i := range node.MaxHeldPerWriter + extra {
		var fake protocol.EventID
		binary.BigEndian.PutUint32(fake[:], uint32(i))
		ev := &protocol.Event{Kind: protocol.KindMessagePost, Thread: genesis.ThreadID(), Writer: member.UserID(),
			Seq: uint64(i + 1), Lamport: 9, Time: 2, Parents: []protocol.EventID{fake}, Content: &protocol.Content{Data: []byte("x")}}
		if err := ev.Sign(member); err != nil {
			t.Fatal(err)
		}
		raw = append(raw, ev.Encode(nil))
	}
	res, err := n.Ingest(ctx, raw)
	if err != nil || res.Held != node.MaxHeldPerWriter || res.Deferred != extra || res.Accepted != 0 {
		t.Fatalf("ingest: %v; held %d deferred %d accepted %d, want %d %d 0", err, res.Held, res.Deferred, res.Accepted, node.MaxHeldPerWriter, extra)
	}
	held, err := n.Store().AllHeld()
	if err != nil || len(held[genesis.ThreadID()]) != node.MaxHeldPerWriter {
		t.Fatalf("stored holds: %d (%v), want %d", len(held[genesis.ThreadID()]), err, node.MaxHeldPerWriter)
	}
}
