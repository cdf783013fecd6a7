package node_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// TestForkHealsAcrossAPartition: a member signs two posts with one
// sequence number and each half of a partition gets one, and builds on it.
// After the heal, sync carries the other version both ways (vectors alone
// cannot tell the halves apart: both say "eve: 1"), both nodes hold both
// versions and everything built on them, show the same order and the same
// flag, and eve's posts are void on both. The fork survives a restart.
func TestForkHealsAcrossAPartition(t *testing.T) {
	ctx := context.Background()
	homeA := t.TempDir()
	na, a := netNode(t, homeA, "a")
	nb, b := netNode(t, t.TempDir(), "b")
	connect(t, na, nb)
	eve, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{0xe5}, 32))
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID(), eve.UserID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "B to have the thread", func() bool { return hasThread(b, th) })
	cut(t, na, nb)

	ts := threadState(t, na, th)
	ring := protocol.KeyRing{}
	if _, err := protocol.UnwrapKeys(ring, ts.Genesis, eve); err != nil {
		t.Fatal(err)
	}
	p1, err := protocol.NewPost(ts, eve, ring, nil, nil, []byte("to a"), time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	p2, err := protocol.NewPost(ts, eve, ring, nil, nil, []byte("to b"), time.Now().UnixMilli()+1)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Seq != p2.Seq || p1.ID() == p2.ID() {
		t.Fatal("not an equivocation")
	}
	for _, c := range []struct {
		n  *node.Node
		ev *protocol.Event
	}{{na, p1}, {nb, p2}} {
		if res, err := c.n.Ingest(ctx, [][]byte{c.ev.Encode(nil)}); err != nil || res.Accepted != 1 {
			t.Fatalf("ingest: %v %+v", err, res)
		}
	}
	// Each half replies, building on the version it has.
	ra := mustSend(t, a, th, "a after")
	rb := mustSend(t, b, th, "b after")
	if messageCount(a, th) != 2 || messageCount(b, th) != 2 {
		t.Fatalf("before the heal: a shows %d, b %d", messageCount(a, th), messageCount(b, th))
	}

	heal(t, na, nb)
	if _, err := na.SyncWith(ctx, mustPeer(t, nb)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "both nodes to hold both versions and both replies", func() bool {
		for _, n := range []*node.Node{na, nb} {
			for _, id := range []protocol.EventID{p1.ID(), p2.ID(), ra, rb} {
				if ok, _ := n.Store().Has(th, id); !ok {
					return false
				}
			}
		}
		return true
	})
	ha, ca := orderHash(t, na, th)
	hb, cb := orderHash(t, nb, th)
	if ha != hb || ca != cb {
		t.Fatalf("the halves differ after the heal: %d vs %d events", ca, cb)
	}
	for _, u := range []*node.User{a, b} {
		got, err := u.GetThread(ctx, th)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Equivocations) != 1 || got.Equivocations[0] != (node.Equivocation{Writer: eve.UserID(), Seq: p1.Seq}) {
			t.Fatalf("equivocations %+v", got.Equivocations)
		}
		l, err := u.ListMessages(ctx, th, node.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if l.TotalAvailable != 2 {
			t.Fatalf("%d visible messages; want the 2 replies and none of eve's", l.TotalAvailable)
		}
		for _, m := range l.Items {
			if m.Author == eve.UserID() {
				t.Fatal("an equivocating writer's post is visible")
			}
		}
	}
	// Honest messages keep flowing both ways.
	m1 := mustSend(t, a, th, "a later")
	m2 := mustSend(t, b, th, "b later")
	defer func() {
		if t.Failed() {
			t.Logf("a: %+v", na.Metrics())
			t.Logf("b: %+v", nb.Metrics())
			pa, pb := mustPeer(t, na), mustPeer(t, nb)
			sa, _ := na.PeerScore(pb)
			sb, _ := nb.PeerScore(pa)
			t.Logf("scores: a of b %.1f, b of a %.1f", sa, sb)
		}
	}()
	eventually(t, 15*time.Second, "messages after the fork to cross", func() bool {
		ok1, _ := nb.Store().Has(th, m1)
		ok2, _ := na.Store().Has(th, m2)
		return ok1 && ok2
	})
	// Both versions are stored without content: an equivocator's events
	// from its fork on cost a replica only what sync needs.
	for _, n := range []*node.Node{na, nb} {
		for _, id := range []protocol.EventID{p1.ID(), p2.ID()} {
			ev, err := n.Store().Event(th, id)
			if err != nil || ev.Content != nil {
				t.Fatalf("forked version %s: %v, content kept: %v", id, err, ev != nil && ev.Content != nil)
			}
		}
	}
	// The fork is part of the stored state: it survives a restart.
	na.Close()
	na2, err := node.New(ctx, node.Config{Home: homeA, Unencrypted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer na2.Close()
	got, err := na2.As(a.ID()).GetThread(ctx, th)
	if err != nil || len(got.Equivocations) != 1 {
		t.Fatalf("after a restart: %v %+v", err, got.Equivocations)
	}
}

func mustPeer(t *testing.T, n *node.Node) peer.ID {
	t.Helper()
	p, err := n.PeerID()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A sync after one new message brings that message, not the writer's
// history: an ID asked for that the ranges cover is left to them (before,
// the responder walked the writer's whole chain for each head asked by ID,
// 32–161 KB per message over a relay).
func TestSyncBringsOnlyWhatIsNew(t *testing.T) {
	ctx := context.Background()
	na, a := netNodeWith(t, t.TempDir(), "a", hourlySync)
	nb, b := netNodeWith(t, t.TempDir(), "b", hourlySync)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustSend(t, a, th, fmt.Sprint("history ", i))
	}
	connect(t, na, nb)
	eventually(t, 15*time.Second, "b to catch up", func() bool { return messageCount(b, th) == 100 })
	cut(t, na, nb) // so the next message can only come by the sync below
	m := mustSend(t, a, th, "new")
	heal(t, na, nb)
	res, err := nb.SyncWith(ctx, mustPeer(t, na))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := nb.Store().Has(th, m); !ok {
		t.Fatal("the new message did not come")
	}
	if res.Events > 2 {
		t.Fatalf("a sync after one new message brought %d events", res.Events)
	}
}
