package node_test

// The six measured findings of issue 8 (replica integrity), each as an
// attack by a bare libp2p host (see attacker_test.go) on real nodes, and
// the restore case. Each test failed on main when it was written, for the
// reason the issue gives; the message seen is quoted at its top. The loads
// are scaled to run in seconds; -attack.long runs the full loads.

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// strangerThread is a thread of the stranger's own, none of the victim's
// users in it: a valid ThreadCreate and posts of size bytes.
func strangerThread(t *testing.T, w *crypto.Identity, posts, size int) (protocol.ThreadID, [][]byte) {
	t.Helper()
	g, key, err := protocol.NewThread(w, nil, nil, protocol.DefaultPolicy(), nil, nil, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ts, gm, err := protocol.NewThreadState(g)
	if err != nil {
		t.Fatal(err)
	}
	evs := append([]*protocol.Event{g}, writeChain(t, ts, w, protocol.KeyRing{gm.ID: key}, posts, size, "stranger's")...)
	return ts.ID, encodeAll(evs)
}

// TestStrangerSyncAnswerIsNotTrusted (issue 8, finding 1): a stranger that
// a node connects to answers each of the node's syncs with Vectors for
// threads none of the node's users are in, Batches for those and for a
// thread it never offered, and thousands of junk events with made-up
// parents. The node stores none of it, holds at most a bounded number of
// events, scores the stranger down and its honest peer not, and honest
// delivery stays fast.
//
// On main (6000 junk events), 15 s:
//
//	a replicates 3 threads, want 1: the stranger's were stored
//	a stores 17 events of the stranger's thread f4b5c4d9... (offered), want none
//	a stores 17 events of the stranger's thread f532cb48... (never offered), want none
//	a holds 6000 events, want <= 4096
//	a scores the attacker 0.09 (known: true); want < 0
//	honest delivery during the attack: 50 messages: p50 4ms p99 135ms max 135ms, 0 lost,
//	  0 sends failed; want none lost and p99 <= 63ms (baseline ... p99 13ms ...)
//	a holds 6000 events after a restart, want <= 4096
//
// (The latency line comes and goes at this load: other runs saw p99 8 ms.)
//
// With -attack.long (120,000 junk events: the hold queue of 100,000 fills,
// then an honest burst of 500), 52 s, also:
//
//	a holds 100000 events, want <= 4096
//	a scores honest peer 12D3KooWGgFL... -21498.49 (known: true); want >= 0
//	honest delivery during the attack: 200 messages: p50 515ms p99 997ms max 1.001s, ...
//	  want none lost and p99 <= 54ms (baseline ... p99 4ms ...)
//
// (b's events that overtook their parents were rejected, "hold queue
// full", so a graylisted b and got its messages only by the next sync.)
func TestStrangerSyncAnswerIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	homeA := t.TempDir()
	na, a := netNode(t, homeA, "a")
	nb, b := netNode(t, t.TempDir(), "b")
	connect(t, na, nb)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "b to have the thread", func() bool { return hasThread(b, th) })
	base := probe(t, b, a, th, "base")

	// What the stranger says: two threads of its own (one offered in its
	// Vectors, one never offered), and junk events with made-up parents,
	// half in the victim's thread (by writers not in it), half in threads
	// that do not exist.
	stranger := identity(t, 0x5a)
	offered, offeredEvs := strangerThread(t, stranger, load(16, 90), 256<<10)
	unoffered, unofferedEvs := strangerThread(t, stranger, load(16, 90), 256<<10)
	total := load(6000, 120_000)
	junk := junkEvents(t, total, func(i int) protocol.ThreadID {
		if i%2 == 0 {
			return th
		}
		return protocol.ThreadID{}
	}, strangers(t, 97)) // an odd number: both halves use every writer, under 1024 each
	perSync := load(1500, 12_000)
	var next atomic.Int64 // junk events handed out so far

	att := newAttackerHost(t)
	att.join(protocol.InboxTopic(a.ID())) // a GossipSub peer of a's, so a scores it
	att.attackerSyncHandler(syncAnswer{
		vectors: func(*protocol.Hello) *protocol.Vectors {
			return &protocol.Vectors{Threads: []protocol.ThreadVector{{Thread: offered, VV: protocol.VersionVector{stranger.UserID(): uint64(len(offeredEvs))}}}}
		},
		batches: func([]*protocol.Request) []*protocol.Batch {
			var out []*protocol.Batch
			if att.syncs.Load() == 1 { // the first answer
				out = append(batches(offered, offeredEvs), batches(unoffered, unofferedEvs)...)
			}
			end := min(next.Add(int64(perSync)), int64(total))
			if start := end - int64(perSync); start < end {
				out = append(out, batches(offered, junk[max(start, 0):end])...)
			}
			return out
		},
	})
	att.connect(na) // a syncs with it now and every second
	during := probe(t, b, a, th, "attack")
	quiet := func() bool { return time.Since(time.Unix(0, att.lastSync.Load())) > 3*time.Second } // a stopped asking
	if !within(30*time.Second, func() bool { return next.Load() >= int64(total) || quiet() }) || next.Load() < int64(total) {
		t.Logf("the stranger handed out only %d of %d junk events", next.Load(), total)
	}
	steady(func() int { return na.Metrics().HeldEvents }) // a has stored the last answer
	t.Logf("a served %d lying sync answers; a's metrics: %+v", att.syncs.Load(), na.Metrics())
	if *long {
		// The second half: with the hold queue full, honest events
		// that arrive before their parents (as in a burst, validated in
		// parallel) are rejected, and b is penalised for them.
		for i := range 500 {
			if _, err := b.SendMessage(ctx, th, nil, nil, []byte(fmt.Sprintf("burst %d", i))); err != nil {
				t.Fatal(err)
			}
		}
		after := probe(t, b, a, th, "after")
		t.Logf("a's metrics after an honest burst: %+v", na.Metrics())
		checkLatency(t, base, after)
	}

	m := na.Metrics()
	if m.Threads != 1 {
		t.Errorf("a replicates %d threads, want 1: the stranger's were stored", m.Threads)
	}
	for name, j := range map[string]protocol.ThreadID{"offered": offered, "never offered": unoffered} {
		if ids, _ := na.Store().OrderedIDs(j); len(ids) != 0 {
			t.Errorf("a stores %d events of the stranger's thread %s (%s), want none", len(ids), j, name)
		}
	}
	if m.HeldEvents > 4096 {
		t.Errorf("a holds %d events, want <= 4096", m.HeldEvents)
	}
	checkScores(t, na, "a", att.id(), nb)
	if !converged(t, 10*time.Second, th, na, nb) {
		t.Errorf("a and b disagree on the thread: %s", orderCounts(t, th, map[string]*node.Node{"a": na, "b": nb}))
	}
	checkLatency(t, base, during)

	// What a holds is not kept for ever: not past a restart either.
	na.Close()
	na2, _ := netNodeWith(t, homeA, "a", hourlySync)
	if h := na2.Metrics().HeldEvents; h > 4096 {
		t.Errorf("a holds %d events after a restart, want <= 4096", h)
	}
}

// visible is the set of messages u sees in th.
func visible(u *node.User, th protocol.ThreadID) map[protocol.EventID]node.Message {
	l, err := u.ListMessages(context.Background(), th, node.Page{})
	if err != nil {
		return nil
	}
	out := map[protocol.EventID]node.Message{}
	for _, m := range l.Items {
		out[m.MessageID] = m
	}
	return out
}

// TestEquivocationDoesNotSplit (issue 8, finding 2): member M (a key the
// test holds, no node) signs two different posts with one sequence
// number, one ingested only by a, the other only by b. Then every honest
// member posts 10 messages. Every node ends with all 30, the same events
// in the same order, both of M's versions as evidence, and M flagged in
// the thread, and no honest node scores another below zero (gossiped: for
// forwarding the version it took first).
//
// On main, ingested (30 s: the waits time out):
//
//	timed out: a sees a 10/10 b 0/10 c 10/10; b sees a 0/10 b 10/10 c 10/10; c sees a 0/10 b 10/10 c 10/10
//	a, b and c disagree: a: 22 events (hash a6391392); b: 22 events (hash 4205a948); c: 22 events (hash 4205a948)
//	a does not hold M's version for b
//	a shows equivocations [] (<nil>), want [{weft1v2nprdrjmz... 1}]
//	b does not hold M's version for a
//	... (and the same for c, which got b's version by sync)
//
// (c's posts reach a because c posted before it had either version.)
//
// gossiped, 28 s: the same split, and the honest nodes penalise each other
// for forwarding a version:
//
//	timed out: a sees a 10/10 b 0/10 c 0/10; b sees a 1/10 b 10/10 c 10/10; c sees a 1/10 b 10/10 c 10/10
//	a, b and c disagree: a: 12 events (hash 210e6fdc); b: 23 events (hash 071e0992); c: 23 events (hash 071e0992)
//	a scores honest b -93.80 (known: true); want >= 0
//	a scores honest c -93.80 (known: true); want >= 0
//	b scores honest a -92.98 (known: true); want >= 0
//	c scores honest a -93.80 (known: true); want >= 0
//	(and the missing versions and equivocations, as ingested)
//
// Which side c takes depends on the race between the two versions; once
// (4.5 s) b took a's version before M's other one reached it, so nothing
// split, but no replica kept the evidence or flagged M.
func TestEquivocationDoesNotSplit(t *testing.T) {
	t.Run("ingested", func(t *testing.T) { equivocate(t, false) })
	t.Run("gossiped", func(t *testing.T) { equivocate(t, true) })
}

// equivocate is TestEquivocationDoesNotSplit with M's versions ingested
// by a and b, or (gossip) published by two bare hosts of M's, one in a's
// mesh only and one in b's: then a and b also forward what they took to
// the others, which hold the other version.
func equivocate(t *testing.T, gossip bool) {
	ctx := context.Background()
	ns := map[string]*node.Node{}
	us := map[string]*node.User{}
	for _, name := range []string{"a", "b", "c"} {
		ns[name], us[name] = netNode(t, t.TempDir(), name)
	}
	connect(t, ns["a"], ns["b"])
	connect(t, ns["b"], ns["c"])
	connect(t, ns["a"], ns["c"])
	m := identity(t, 0x4d)
	th, err := us["a"].CreateThread(ctx, []crypto.UserID{us["b"].ID(), us["c"].ID(), m.UserID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		eventually(t, 15*time.Second, "everyone to have the thread", func() bool { return hasThread(u, th) })
	}
	ts := threadState(t, ns["a"], th)
	ring := protocol.KeyRing{}
	if k, err := protocol.UnwrapKeys(ring, ts.Genesis, m); k != 1 {
		t.Fatalf("M unwraps %d keys: %v", k, err)
	}
	var versions []*protocol.Event
	var hosts []*attacker
	topic := protocol.ThreadTopic(th)
	for i, to := range []string{"a", "b"} {
		ev, err := protocol.NewPost(ts, m, ring, nil, nil, []byte("M's version for "+to), time.Now().UnixMilli()+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, ev)
		if gossip {
			h := newAttackerHost(t)
			h.connect(ns[to])
			h.inMesh(topic, ns[to])
			hosts = append(hosts, h)
		}
	}
	for i, to := range []string{"a", "b"} {
		if gossip {
			hosts[i].publish(topic, versions[i].Encode(nil))
		} else {
			ingest(t, ns[to], versions[i])
		}
	}
	seq := versions[0].Seq

	sent := map[string][]protocol.EventID{}
	for i := range 10 {
		for _, name := range []string{"a", "b", "c"} {
			sent[name] = append(sent[name], mustSend(t, us[name], th, fmt.Sprintf("%s %d", name, i)))
		}
	}
	report := func() (string, bool) {
		var parts []string
		all := true
		for _, to := range []string{"a", "b", "c"} {
			vis := visible(us[to], th)
			part := to + " sees"
			for _, from := range []string{"a", "b", "c"} {
				k := 0
				for _, id := range sent[from] {
					if _, ok := vis[id]; ok {
						k++
					}
				}
				all = all && k == 10
				part += fmt.Sprintf(" %s %d/10", from, k)
			}
			parts = append(parts, part)
		}
		return strings.Join(parts, "; "), all
	}
	if !within(15*time.Second, func() bool { _, ok := report(); return ok }) {
		r, _ := report()
		t.Errorf("timed out: %s", r)
	}
	if !converged(t, 10*time.Second, th, ns["a"], ns["b"], ns["c"]) {
		t.Errorf("a, b and c disagree: %s", orderCounts(t, th, ns))
	}
	want := []node.Equivocation{{Writer: m.UserID(), Seq: seq}}
	for _, name := range []string{"a", "b", "c"} {
		for i, v := range versions {
			if ok, _ := ns[name].Store().Has(th, v.ID()); !ok {
				t.Errorf("%s does not hold M's version for %s", name, []string{"a", "b"}[i])
			}
		}
		got, err := us[name].GetThread(ctx, th)
		if err != nil || !slices.Equal(got.Equivocations, want) {
			t.Errorf("%s shows equivocations %v (%v), want %v", name, got.Equivocations, err, want)
		}
	}
	checkHonestScores(t, ns)
}

// TestStrangerFloodIsPenalised (issue 8, finding 3): a stranger (a key
// that is not a member) in the mesh of a thread's topic floods it with
// signed junk events whose parents do not exist. Nothing is stored, the
// flooder's score goes below zero, the honest peer's does not, and honest
// delivery stays within its bound.
//
// On main (5000 events at 2000/s, spread over the probe; 60,000 at 5000/s
// with -attack.long), 14 s:
//
//	flooded 5000 junk events; a's metrics: {... HeldEvents:0 ... Gossip:{... Rejected:0 Ignored:5000 ...}}
//	a scores the attacker 0.12 (known: true); want < 0
//
// Nothing was stored, and honest delivery held: p99 9 ms before, 8 ms
// during. With -attack.long (59,600 sent at ~5000/s, 37 s) the same: score
// 0.34, 59,600 Ignored, p99 12 ms before and 9 ms during; the issue's
// latency cost (p99 0.6-1.3 s) did not reproduce on this machine.
func TestStrangerFloodIsPenalised(t *testing.T) {
	ctx := context.Background()
	na, a := netNode(t, t.TempDir(), "a")
	nb, b := netNode(t, t.TempDir(), "b")
	connect(t, na, nb)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "b to have the thread", func() bool { return hasThread(b, th) })
	att := newAttackerHost(t)
	topic := protocol.ThreadTopic(th)
	att.connect(na)
	att.inMesh(topic, na)
	base := probe(t, b, a, th, "base")

	total, rate := load(5000, 60_000), load(2000, 5000)
	junk := junkEvents(t, total, func(int) protocol.ThreadID { return th }, []*crypto.Identity{identity(t, 0x66)})
	stop := make(chan struct{})
	flooded := make(chan int)
	go func() { // the flood: rate events a second, until all are out or the probe ends
		sent := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		defer func() { flooded <- sent }()
		for sent < total {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range max(rate/100, 1) {
				if sent == total {
					break
				}
				att.publish(topic, junk[sent])
				sent++
			}
		}
	}()
	start := time.Now()
	during := probe(t, b, a, th, "attack")
	if *long { // the whole flood, not only the probe's share of it
		within(time.Duration(total/rate+5)*time.Second, func() bool { return time.Since(start) > time.Duration(total/rate)*time.Second })
	}
	close(stop)
	sent := <-flooded
	time.Sleep(time.Second)
	t.Logf("flooded %d junk events; a's metrics: %+v", sent, na.Metrics())

	for name, n := range map[string]*node.Node{"a": na, "b": nb} {
		stored := 0
		for _, data := range junk[:sent] {
			ev, _ := protocol.Decode(data)
			if ok, _ := n.Store().Has(th, ev.ID()); ok {
				stored++
			}
		}
		if stored > 0 {
			t.Errorf("%s stored %d junk events", name, stored)
		}
		if h := n.Metrics().HeldEvents; h > 4096 {
			t.Errorf("%s holds %d events, want <= 4096", name, h)
		}
	}
	checkScores(t, na, "a", att.id(), nb)
	if !converged(t, 10*time.Second, th, na, nb) {
		t.Errorf("a and b disagree on the thread: %s", orderCounts(t, th, map[string]*node.Node{"a": na, "b": nb}))
	}
	checkLatency(t, base, during)
}

// TestRemovedMemberCannotFillDisks (issue 8, finding 4): manager A removes
// member M at node a; M, with its key and a bare host in the mesh of b
// and c, then publishes posts of 128 KiB whose parents are the heads from
// before the removal (concurrent with it, as if M had not seen it). On
// every replica M's void posts keep at most 1 MiB of content, none of
// them is shown, M's sender gains no score for them, and the replicas
// agree.
//
// On main (100 posts; 400 with -attack.long: 52 MB on each replica),
// 3.5 s each:
//
//	at the removal:
//	a keeps 13115200 bytes of content of M's 100 void posts, want <= 1 MiB
//	a shows 1 of M's void posts, want none
//	(the same for b and c)
//	b scores M's sender 49.64, up from 0.00 before the posts
//	c scores M's sender 49.64, up from 0.00 before the posts
//	backdated: the same, but each shows 21 of M's void posts
//
// The replicas agree (all keep all). At the removal, the one post shown
// is M's first: it ties with the removal on Lamport time and M ground its
// ID to sort first. Backdated, every post whose Lamport time is below the
// removal's is shown. DESIGN §4 says a removal wins over a concurrent
// post of the removed member; the linear order alone lets M choose.
func TestRemovedMemberCannotFillDisks(t *testing.T) {
	t.Run("at the removal", func(t *testing.T) { removedMemberPosts(t, false) })
	t.Run("backdated", func(t *testing.T) { removedMemberPosts(t, true) })
}

// removedMemberPosts is TestRemovedMemberCannotFillDisks with M's posts
// following the heads M saw just before its removal, or (backdated) the
// thread's first event only: each post's Lamport time is one more than
// its parents', so a chain from the genesis sorts before a removal that
// came after 20 messages, for its first 20 or so posts.
func removedMemberPosts(t *testing.T, backdate bool) {
	ctx := context.Background()
	ns := map[string]*node.Node{}
	us := map[string]*node.User{}
	for _, name := range []string{"a", "b", "c"} {
		ns[name], us[name] = netNode(t, t.TempDir(), name)
	}
	connect(t, ns["a"], ns["b"])
	connect(t, ns["b"], ns["c"])
	connect(t, ns["a"], ns["c"])
	m := identity(t, 0x4e)
	th, err := us["a"].CreateThread(ctx, []crypto.UserID{us["b"].ID(), us["c"].ID(), m.UserID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		eventually(t, 15*time.Second, "everyone to have the thread", func() bool { return hasThread(u, th) })
	}
	start := threadState(t, ns["a"], th) // the thread's first event only
	const history = 20
	for i := range history {
		mustSend(t, us["a"], th, fmt.Sprintf("before %d", i))
	}
	for _, u := range us {
		eventually(t, 15*time.Second, "everyone to have the messages", func() bool { return messageCount(u, th) == history })
	}
	ts := threadState(t, ns["a"], th) // the heads before the removal, as M saw them
	if backdate {
		ts = start
	}
	ring := protocol.KeyRing{}
	if k, err := protocol.UnwrapKeys(ring, ts.Genesis, m); k != 1 {
		t.Fatalf("M unwraps %d keys: %v", k, err)
	}
	topic := protocol.ThreadTopic(th)
	att := newAttackerHost(t)
	att.connect(ns["b"])
	att.connect(ns["c"])
	att.inMesh(topic, ns["b"], ns["c"])

	if err := us["a"].UpdateThread(ctx, th, node.ThreadUpdate{RemoveUsers: []crypto.UserID{m.UserID()}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		eventually(t, 15*time.Second, "everyone to see M removed", func() bool {
			got, err := u.GetThread(ctx, th)
			return err == nil && !slices.Contains(got.Users, m.UserID())
		})
	}
	scoreBefore := map[string]float64{}
	for _, name := range []string{"b", "c"} {
		scoreBefore[name], _ = ns[name].PeerScore(att.id())
	}
	// M's first post has the removal's Lamport time (both follow the same
	// heads), so the linear order between them is their IDs'. M grinds
	// its first post until it sorts before the removal: the best M can do
	// to be shown.
	after := threadState(t, ns["a"], th)
	removal := after.Controls[len(after.Controls)-1].Meta.Order()
	var first *protocol.Event
	for i := 0; first == nil || !first.Order().Less(removal); i++ {
		if first, err = protocol.NewPost(ts, m, ring, nil, nil, make([]byte, 128<<10), time.Now().UnixMilli()+int64(i)); err != nil {
			t.Fatal(err)
		}
		if i > 1000 || first.Lamport > removal.Lamport {
			t.Fatalf("M's first post: Lamport %d, the removal's %d", first.Lamport, removal.Lamport)
		}
	}
	applyTo(t, ts, first)
	posts := append([]*protocol.Event{first}, writeChain(t, ts, m, ring, load(100, 400)-1, 128<<10, "void")...)
	for _, ev := range posts {
		att.publish(topic, ev.Encode(nil))
		time.Sleep(5 * time.Millisecond)
	}
	if !converged(t, 20*time.Second, th, ns["a"], ns["b"], ns["c"]) {
		t.Errorf("the replicas disagree: %s", orderCounts(t, th, ns))
	}
	for _, name := range []string{"a", "b", "c"} {
		kept := 0
		for _, ev := range posts {
			got, err := ns[name].Store().Event(th, ev.ID())
			if err != nil || got.Content == nil {
				continue
			}
			kept += len(got.Content.PublicMeta) + len(got.Content.PrivateMeta) + len(got.Content.Data)
		}
		if kept > 1<<20 {
			t.Errorf("%s keeps %d bytes of content of M's %d void posts, want <= 1 MiB", name, kept, len(posts))
		}
		shown := 0
		for _, msg := range visible(us[name], th) {
			if msg.Author == m.UserID() {
				shown++
			}
		}
		if shown > 0 {
			t.Errorf("%s shows %d of M's void posts, want none", name, shown)
		}
	}
	checkHonestScores(t, ns)
	// Time in the mesh alone adds 0.01 a second; a first delivery adds 1.
	for _, name := range []string{"b", "c"} {
		if s, _ := ns[name].PeerScore(att.id()); s > scoreBefore[name]+1 {
			t.Errorf("%s scores M's sender %.2f, up from %.2f before the posts", name, s, scoreBefore[name])
		}
	}
}

// TestInboxTopicDelivers (issue 8, finding 5): a creates a thread with
// user B of node b. a and b are not connected (each blocks the other); the
// only path between them is R, a plain GossipSub host (no /weft/sync)
// subscribed to B's inbox topic. b learns of the thread through the inbox
// within seconds.
//
// On main, 7 s:
//
//	b did not get the thread within 5s (the relay got 0 messages on B's inbox)
//
// a publishes the ThreadCreate on the thread topic first, and then on the
// inbox with the same message ID, which pubsub drops as already seen.
func TestInboxTopicDelivers(t *testing.T) {
	ctx := context.Background()
	na, a := netNode(t, t.TempDir(), "a")
	nb, b := netNode(t, t.TempDir(), "b")
	na.Block(peerOf(nb))
	nb.Block(peerOf(na))
	relay := newAttackerHost(t)
	inbox := protocol.InboxTopic(b.ID())
	relay.join(inbox)
	relay.connect(na)
	relay.connect(nb)
	relay.inMesh(inbox, nb) // and a has heard that the relay is on b's inbox
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !within(5*time.Second, func() bool { return hasThread(b, th) }) {
		t.Errorf("b did not get the thread within 5s (the relay got %d messages on B's inbox)", relay.received.Load())
	}
	if slices.Contains(na.Peers(), peerOf(nb)) {
		t.Error("a and b were connected: the test proves nothing")
	}
}

// TestGapRepairedFromAnyPeer (issue 8, finding 6): b gets, from R, a plain
// GossipSub host that does not speak /weft/sync, an event whose parent b
// lacks; c, connected to b, has the parent. Periodic sync is an hour away
// and the connect-time syncs are over before the gap opens, so only gap
// repair can bring the parent: b ends with both within seconds.
//
// On main, 7 s:
//
//	b stores 0 of the 2 events within 5s (parent: false, child: false; 1 held)
//	b shows 0 messages, want 2
//
// b asks only R, the forwarder, which cannot answer.
func TestGapRepairedFromAnyPeer(t *testing.T) {
	nb, b := netNodeWith(t, t.TempDir(), "b", hourlySync)
	nc, c := netNodeWith(t, t.TempDir(), "c", hourlySync)
	w := identity(t, 0x77) // the writer: a member with no node here
	genesis, key, err := protocol.NewThread(w, []crypto.UserID{b.ID(), c.ID()}, nil, protocol.DefaultPolicy(), nil, nil, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, nb, genesis)
	ingest(t, nc, genesis)
	connect(t, nb, nc)
	eventually(t, 10*time.Second, "the connect-time syncs", func() bool {
		return !nb.Metrics().LastSync.IsZero() && !nc.Metrics().LastSync.IsZero()
	})
	ts, gm, _ := protocol.NewThreadState(genesis)
	evs := writeChain(t, ts, w, protocol.KeyRing{gm.ID: key}, 2, 64, "gap")
	parent, child := evs[0], evs[1]
	ingest(t, nc, parent) // c has it; b does not, and no one gossips it
	relay := newAttackerHost(t)
	topic := protocol.ThreadTopic(ts.ID)
	relay.connect(nb)
	relay.inMesh(topic, nb)
	relay.publish(topic, child.Encode(nil))
	has := func(ev *protocol.Event) bool { ok, _ := nb.Store().Has(ts.ID, ev.ID()); return ok }
	if !within(5*time.Second, func() bool { return has(parent) && has(child) }) {
		k := 0
		for _, ev := range evs {
			if has(ev) {
				k++
			}
		}
		t.Errorf("b stores %d of the 2 events within 5s (parent: %v, child: %v; %d held)", k, has(parent), has(child), nb.Metrics().HeldEvents)
	}
	if messageCount(b, ts.ID) != 2 {
		t.Errorf("b shows %d messages, want 2", messageCount(b, ts.ID))
	}
}

// TestRestoredBackupNeverForks (issue 8, the restore case): a backup of
// a's home, taken a few messages ago, is restored into a second home while
// a keeps running; the restored copy writes first on its own (before it
// reaches anyone), then both write at once. Every honest replica ends the
// same and no message either acknowledged is lost.
//
// A restored home is a new node with new devices of its users (node/
// devices.go), so the copy and the original are two writers of one user.
// Before that (the restored copy reusing a's sequence numbers, an
// accidental equivocation), 20 s:
//
//	the replicas disagree: a: 15 events (hash 2628bbb7); b: 15 events (hash 2628bbb7); restored: 15 events (hash 3ce6012a)
//	a lacks 13 of the 27 acknowledged messages
//	restored lacks 13 of the 27 acknowledged messages
//	b lacks 13 of the 27 acknowledged messages
//
// No warning, no log line: the thread split silently.
func TestRestoredBackupNeverForks(t *testing.T) {
	ctx := context.Background()
	na, a := netNode(t, t.TempDir(), "a")
	nb, b := netNode(t, t.TempDir(), "b")
	connect(t, na, nb)
	th, err := a.CreateThread(ctx, []crypto.UserID{b.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "b to have the thread", func() bool { return hasThread(b, th) })
	var mu sync.Mutex
	var acked []protocol.EventID
	send := func(u *node.User, text string) {
		id, err := u.SendMessage(ctx, th, nil, nil, []byte(text))
		if err != nil {
			t.Errorf("send %q: %v", text, err)
			return
		}
		mu.Lock()
		acked = append(acked, id)
		mu.Unlock()
	}
	send(a, "before the backup")
	var backup bytes.Buffer
	if err := na.Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		send(a, fmt.Sprintf("a after the backup %d", i))
	}
	home := filepath.Join(t.TempDir(), "restored")
	if err := node.Restore(home, &backup); err != nil {
		t.Fatal(err)
	}
	nr, r := netNode(t, home, "a")
	if pr, pa := mustPeer(t, nr), mustPeer(t, na); pr == pa {
		t.Fatal("the restored home has the original's peer ID")
	}
	if r.ID() != a.ID() {
		t.Fatal("the restored home has another identity")
	}
	for i := range 3 {
		send(r, fmt.Sprintf("restored, offline %d", i))
	}
	connect(t, nr, nb)
	connect(t, nr, na)
	var wg sync.WaitGroup
	for name, u := range map[string]*node.User{"a": a, "restored": r} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				send(u, fmt.Sprintf("%s concurrently %d", name, i))
			}
		}()
	}
	wg.Wait()
	ns := map[string]*node.Node{"a": na, "restored": nr, "b": nb}
	if !converged(t, 20*time.Second, th, na, nr, nb) {
		t.Errorf("the replicas disagree: %s", orderCounts(t, th, ns))
	}
	for name, u := range map[string]*node.User{"a": a, "restored": r, "b": b} {
		vis := visible(u, th)
		lost := 0
		for _, id := range acked {
			if m, ok := vis[id]; !ok || m.StatusCode != node.StatusOK {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("%s lacks %d of the %d acknowledged messages", name, lost, len(acked))
		}
	}
}
