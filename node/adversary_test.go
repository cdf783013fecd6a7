package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// An adversary on a thread's topic: a non-member publishes forged,
// replayed, oversized and malformed events, and a member equivocates.
// Nothing invalid is stored or forwarded, the honest members keep talking,
// and the adversary's score goes negative.
func TestAdversaryOnTopic(t *testing.T) {
	ctx := context.Background()
	na, a := netNode(t, t.TempDir(), "a")
	nb, b := netNode(t, t.TempDir(), "b")
	connect(t, na, nb)

	// The member who will equivocate: its key is the adversary's.
	eve, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{0xee}, 32))
	mallory, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{0x66}, 32)) // not a member
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID(), eve.UserID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "B to have the thread", func() bool { return hasThread(b, th) })
	honest := mustSend(t, a, th, "hello")
	eventually(t, 15*time.Second, "B to get A's first message", func() bool { return messageCount(b, th) == 1 })

	// The adversary: a plain libp2p host with pubsub on the thread topic,
	// connected to A only.
	topic, adversary := pubsubPeer(t, na, protocol.ThreadTopic(th))

	ts := threadState(t, na, th)
	genesis := ts.Genesis
	ring := protocol.KeyRing{}
	if n, err := protocol.UnwrapKeys(ring, genesis, eve); n != 1 || err != nil {
		t.Fatalf("eve unwraps %d keys: %v", n, err)
	}
	publish := func(data []byte) {
		t.Helper()
		if err := topic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := orderHash(t, na, th)
	_, countBefore := orderHash(t, na, th)

	// Equivocation by a member: two different posts with the same sequence
	// number. (First, while the adversary still has a good score: after
	// the invalid messages below A graylists it and ignores it entirely.)
	p1, err := protocol.NewPost(ts, eve, ring, nil, nil, []byte("first"), time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	p2, err := protocol.NewPost(ts, eve, ring, nil, nil, []byte("second"), time.Now().UnixMilli()+1)
	if err != nil {
		t.Fatal(err)
	}
	publish(p1.Encode(nil))
	eventually(t, 10*time.Second, "eve's first post at B", func() bool { return messageCount(b, th) == 2 })
	publish(p2.Encode(nil))

	// Forged: a non-member's post, validly signed by the non-member.
	forged, err := protocol.NewPost(ts, mallory, protocol.KeyRing{ts.Current.KeyRef: crypto.ThreadKey{}}, nil, nil, []byte("forged"), time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	publish(forged.Encode(nil))
	// Oversized: data beyond the 512 KiB limit.
	big, err := protocol.NewPost(ts, eve, ring, nil, nil, make([]byte, 600<<10), time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	publish(big.Encode(nil))
	// Malformed bytes, and an event with a flipped signature bit.
	publish([]byte("\x01\x04not an event at all"))
	honestEv, _ := na.Store().Event(th, honest)
	tampered := honestEv.Encode(nil)
	tampered[len(tampered)/2] ^= 0x40
	publish(tampered)
	// Replayed: A's own event again.
	publish(honestEv.Encode(nil))

	// The honest members keep exchanging messages. Eve's equivocation is
	// kept as evidence on both nodes and voids her posts from the forked
	// number on: her first post no longer shows.
	m2 := mustSend(t, b, th, "still here")
	eventually(t, 10*time.Second, "B's message at A, and eve's post void", func() bool {
		ok, _ := na.Store().Has(th, m2)
		return ok && messageCount(a, th) == 2
	})
	mustRead(t, a, m2, "still here")
	for _, u := range []*node.User{a, b} {
		eventually(t, 10*time.Second, "eve flagged as equivocating", func() bool {
			th, err := u.GetThread(ctx, th)
			return err == nil && len(th.Equivocations) == 1 && th.Equivocations[0].Writer == eve.UserID() && th.Equivocations[0].Seq == p1.Seq
		})
	}

	eventually(t, 10*time.Second, "the adversary's score at A to go negative", func() bool {
		s, ok := na.PeerScore(adversary)
		return ok && s < 0
	})
	s, _ := na.PeerScore(adversary)
	t.Logf("adversary score at A: %.1f; A's gossip stats: %+v", s, na.NetStats())

	// Exactly the valid events are stored, the same at A and B: nothing
	// invalid was forwarded.
	for _, n := range []*node.Node{na, nb} {
		_, count := orderHash(t, n, th)
		if count != countBefore+3 {
			t.Fatalf("stored %d events, want %d (+ both of eve's versions and B's message)", count, countBefore+3)
		}
		for _, bad := range []*protocol.Event{forged, big} {
			if _, err := n.Store().Event(th, bad.ID()); err == nil {
				t.Fatalf("invalid event %s stored", bad.ID())
			}
		}
	}
	ha, _ := orderHash(t, na, th)
	hb, _ := orderHash(t, nb, th)
	if ha != hb || ha == before {
		t.Fatal("A and B disagree")
	}
	if got := nb.NetStats().Rejected; got != 0 {
		t.Fatalf("B had to reject %d messages: A forwarded invalid ones", got)
	}
}

// TestEarlyChildIsForwarded: a node that gets an event just before its
// parent holds it, and forwards it once the parent lands, so a node that
// hears the thread only through it gets both by gossip (periodic sync is
// an hour away here). The publisher is a bare pubsub host connected to B
// only; C is connected to B only.
func TestEarlyChildIsForwarded(t *testing.T) {
	ctx := context.Background()
	nb, b := netNodeWith(t, t.TempDir(), "b", hourlySync)
	nc, c := netNodeWith(t, t.TempDir(), "c", hourlySync)
	connect(t, nb, nc)
	// Let the syncs on connect end first: the genesis must reach each node
	// by Ingest below, not by one of them.
	eventually(t, 10*time.Second, "the syncs on connect", func() bool {
		return !nb.Metrics().LastSync.IsZero() && !nc.Metrics().LastSync.IsZero()
	})
	writer, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{0x77}, 32))
	genesis, key, err := protocol.NewThread(writer, []crypto.UserID{b.ID(), c.ID()}, nil, protocol.DefaultPolicy(), nil, nil, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{nb, nc} {
		if res, err := n.Ingest(ctx, [][]byte{genesis.Encode(nil)}); err != nil || res.Accepted != 1 {
			t.Fatalf("genesis: %v %+v", err, res)
		}
	}
	ts, gm, _ := protocol.NewThreadState(genesis)
	ring := protocol.KeyRing{gm.ID: key}
	var posts []*protocol.Event
	for i := range 2 {
		ev, err := protocol.NewPost(ts, writer, ring, nil, nil, []byte(fmt.Sprintf("post %d", i)), time.Now().UnixMilli()+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := ts.Validate(ev, ts.Heads)
		if err != nil {
			t.Fatal(err)
		}
		ts.Apply(ev, meta)
		posts = append(posts, ev)
	}

	topic, _ := pubsubPeer(t, nb, protocol.ThreadTopic(ts.ID))

	// The child first, then its parent a moment later.
	if err := topic.Publish(ctx, posts[1].Encode(nil)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := topic.Publish(ctx, posts[0].Encode(nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "B to store both posts", func() bool { return messageCount(b, ts.ID) == 2 })
	eventually(t, 5*time.Second, "C to get both posts by gossip through B", func() bool { return messageCount(c, ts.ID) == 2 })
}

// pubsubPeer is a bare libp2p host, not a weft node, with GossipSub on one
// topic (as weft configures it: no signatures, message ID from the data),
// connected to n and in n's mesh for the topic when it returns.
func pubsubPeer(t *testing.T, n *node.Node, name string) (*pubsub.Topic, peer.ID) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { h := sha256.Sum256(m.Data); return string(h[:]) }))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	}()
	info, err := peer.AddrInfoFromString(n.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the bare peer to see the node on the topic", func() bool { return len(topic.ListPeers()) > 0 })
	time.Sleep(1500 * time.Millisecond) // a heartbeat, so the meshes include it
	return topic, h.ID()
}

// TestStrangerCannotFillHoldQueue: a peer that signs events with made-up
// parents, on a thread's topic and on a member's inbox (an update "adding"
// the member to a thread that does not exist), gets none of them held or
// stored. A real late addition still reaches the added member: the update
// that adds b comes to b's node on its inbox, and the thread's past comes
// by sync.
func TestStrangerCannotFillHoldQueue(t *testing.T) {
	ctx := context.Background()
	na, a := netNodeWith(t, t.TempDir(), "a", hourlySync)
	nb, b := netNodeWith(t, t.TempDir(), "b", hourlySync)
	connect(t, na, nb)
	th, err := a.CreateThread(ctx, nil, nil, nil, nil, nil) // b is not in it yet
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, a, th, "before b")
	ts := threadState(t, na, th)

	stranger, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{0x55}, 32))
	junk := func(n int) [][]byte {
		var out [][]byte
		for i := range n {
			var fake protocol.EventID
			fake[0], fake[1] = byte(i), 0xfa
			ev := &protocol.Event{Kind: protocol.KindMessagePost, Thread: ts.ID, Writer: stranger.UserID(),
				Seq: 1, Lamport: 5, Time: time.Now().UnixMilli(), Parents: []protocol.EventID{fake},
				Content: &protocol.Content{Data: []byte(fmt.Sprintf("junk %d", i))}}
			if err := ev.Sign(stranger); err != nil {
				t.Fatal(err)
			}
			if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
				t.Fatalf("junk event does not pass the stateless checks, so it tests nothing: %v", err)
			}
			out = append(out, ev.Encode(nil))
		}
		return out
	}
	topic, _ := pubsubPeer(t, na, protocol.ThreadTopic(th))
	ignored := na.NetStats().Ignored
	for _, data := range junk(20) {
		if err := topic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	// The junk did reach A's validator (and was ignored, not held).
	eventually(t, 10*time.Second, "A to judge the junk", func() bool { return na.NetStats().Ignored >= ignored+20 })
	// A made-up thread that "adds" b, on b's inbox.
	other, okey, err := protocol.NewThread(stranger, nil, nil, protocol.DefaultPolicy(), nil, nil, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ots, ogm, _ := protocol.NewThreadState(other)
	fakeAdd, _, err := protocol.NewUpdate(ots, stranger, protocol.ThreadChange{AddUsers: []crypto.UserID{b.ID()}}, protocol.KeyRing{ogm.ID: okey}, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := pubsubPeer(t, nb, protocol.InboxTopic(b.ID()))
	ignoredB := nb.NetStats().Ignored
	if err := inbox.Publish(ctx, fakeAdd.Encode(nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "B to judge the fake addition", func() bool { return nb.NetStats().Ignored > ignoredB })

	// The real addition, after the junk: b's node learns the thread and
	// its past.
	if err := a.UpdateThread(ctx, th, node.ThreadUpdate{AddUsers: []crypto.UserID{b.ID()}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "b to have the thread and its message", func() bool { return messageCount(b, th) == 1 })
	for name, n := range map[string]*node.Node{"a": na, "b": nb} {
		if held, err := n.Store().AllHeld(); err != nil || len(held) != 0 {
			t.Errorf("%s holds events of %d threads (%v); want none", name, len(held), err)
		}
		if _, count := orderHash(t, n, th); count != 3 {
			t.Errorf("%s stores %d events of the thread, want 3 (create, post, update)", name, count)
		}
	}
}
