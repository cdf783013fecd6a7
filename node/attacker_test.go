package node_test

// The attacker of issue 8, and what the attack tests measure with: a bare
// libp2p host (not a weft node) that speaks GossipSub the way weft
// configures it and, if asked, answers /weft/sync/1.0.0 with whatever the
// test wants it to say; events signed with the test's own keys; and a
// delivery-latency probe over an honest pair of real nodes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

var long = flag.Bool("attack.long", false, "run the attack tests of issue 8 at the issue's full loads (minutes, not seconds)")

// load is the size of an attack: short in the normal suite, full with
// -attack.long.
func load(short, full int) int {
	if *long {
		return full
	}
	return short
}

// attacker is a bare libp2p host on loopback with GossipSub configured as
// weft's (no signatures, no author, message ID from the data) and large
// queues, so that what it floods reaches the victim rather than its own
// drop counters.
type attacker struct {
	t      *testing.T
	ctx    context.Context
	host   host.Host
	ps     *pubsub.PubSub
	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	syncs  atomic.Int32 // sync streams answered
	// lastSync is when it last answered one (unix nanos).
	lastSync atomic.Int64
	// received counts the messages that reached it from others, on all
	// its topics.
	received atomic.Int64
}

func newAttackerHost(t *testing.T) *attacker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { h := sha256.Sum256(m.Data); return string(h[:]) }),
		pubsub.WithPeerOutboundQueueSize(8192), pubsub.WithMaxMessageSize(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	return &attacker{t: t, ctx: ctx, host: h, ps: ps, topics: map[string]*pubsub.Topic{}}
}

func (a *attacker) id() peer.ID { return a.host.ID() }

// join subscribes the attacker to a topic (and reads what arrives, so its
// subscription never overflows).
func (a *attacker) join(name string) *pubsub.Topic {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if tp, ok := a.topics[name]; ok {
		return tp
	}
	tp, err := a.ps.Join(name)
	if err != nil {
		a.t.Fatal(err)
	}
	sub, err := tp.Subscribe()
	if err != nil {
		a.t.Fatal(err)
	}
	go func() {
		for {
			m, err := sub.Next(a.ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom != a.host.ID() {
				a.received.Add(1)
			}
		}
	}()
	a.topics[name] = tp
	return tp
}

// connect dials n.
func (a *attacker) connect(n *node.Node) {
	a.t.Helper()
	info, err := peer.AddrInfoFromString(n.Addrs()[0])
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.host.Connect(a.ctx, *info); err != nil {
		a.t.Fatal(err)
	}
}

// inMesh waits until every node in ns is the attacker's peer on the topic,
// and a heartbeat more, so that the nodes' meshes include the attacker.
func (a *attacker) inMesh(name string, ns ...*node.Node) {
	a.t.Helper()
	tp := a.join(name)
	for _, n := range ns {
		p, _ := n.PeerID()
		eventually(a.t, 10*time.Second, "the attacker to see the node on the topic", func() bool { return slices.Contains(tp.ListPeers(), p) })
	}
	time.Sleep(1500 * time.Millisecond)
}

func (a *attacker) publish(name string, data []byte) {
	a.t.Helper()
	if err := a.join(name).Publish(a.ctx, data); err != nil && a.ctx.Err() == nil {
		a.t.Error(err)
	}
}

// syncAnswer is what a lying sync responder says to one sync a node opens
// with it: the Vectors for the node's Hello, then, once the node has sent
// its Requests, the Batches (which need not match the requests).
type syncAnswer struct {
	vectors func(*protocol.Hello) *protocol.Vectors
	batches func([]*protocol.Request) []*protocol.Batch
}

// attackerSyncHandler makes the attacker answer every /weft/sync stream a
// node opens with it as ans says. It ignores the node's credits (it sends
// everything at once) and reads them only so the stream never stalls.
func (a *attacker) attackerSyncHandler(ans syncAnswer) {
	a.host.SetStreamHandler(protocol.SyncProtocolID, func(s p2pnet.Stream) {
		defer s.Close()
		br := bufio.NewReader(s)
		msg, err := protocol.ReadSyncMsg(br, 0)
		if err != nil {
			return
		}
		hello, ok := msg.(*protocol.Hello)
		if !ok || protocol.WriteSyncMsg(s, ans.vectors(hello)) != nil {
			return
		}
		var reqs []*protocol.Request
		for {
			msg, err := protocol.ReadSyncMsg(br, 0)
			if err != nil {
				return
			}
			if r, ok := msg.(*protocol.Request); ok {
				reqs = append(reqs, r)
				continue
			}
			break // Done
		}
		closed := make(chan struct{})
		go func() { // credits, then the node's end of the stream
			defer close(closed)
			for {
				if _, err := protocol.ReadSyncMsg(br, 0); err != nil {
					return
				}
			}
		}()
		a.syncs.Add(1)
		a.lastSync.Store(time.Now().UnixNano())
		for _, b := range ans.batches(reqs) {
			if protocol.WriteSyncMsg(s, b) != nil {
				return
			}
		}
		_ = protocol.WriteSyncMsg(s, &protocol.Done{})
		_ = s.CloseWrite()
		select { // the node has stored the last batches when it closes
		case <-closed:
		case <-time.After(30 * time.Second):
		case <-a.ctx.Done():
		}
	})
}

// batches cuts encoded events into sync batches that say they are of
// thread t: at most 256 events or 8 MiB each.
func batches(t protocol.ThreadID, evs [][]byte) []*protocol.Batch {
	var out []*protocol.Batch
	for len(evs) > 0 {
		n, size := 0, 0
		for n < len(evs) && n < 256 && (n == 0 || size+len(evs[n]) <= 8<<20) {
			size += len(evs[n])
			n++
		}
		out = append(out, &protocol.Batch{Thread: t, Events: evs[:n]})
		evs = evs[n:]
	}
	if len(out) > 0 {
		out[len(out)-1].Last = true
	}
	return out
}

func identity(t *testing.T, seed byte) *crypto.Identity {
	t.Helper()
	id, err := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func strangers(t *testing.T, n int) []*crypto.Identity {
	t.Helper()
	var out []*crypto.Identity
	for range n {
		id, err := crypto.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// junkEvents signs n posts that pass every stateless check and can never
// become valid: each names a made-up parent. thread gives the thread of
// the i-th (a zero ID: a made-up thread of its own); the writers take
// turns.
func junkEvents(t *testing.T, n int, thread func(i int) protocol.ThreadID, writers []*crypto.Identity) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		var parent protocol.EventID
		rand.Read(parent[:])
		th := thread(i)
		if th == (protocol.ThreadID{}) {
			rand.Read(th[:])
		}
		w := writers[i%len(writers)]
		ev := &protocol.Event{Kind: protocol.KindMessagePost, Thread: th, Writer: w.UserID(),
			Seq: uint64(i/len(writers)) + 2, Lamport: 9, Time: time.Now().UnixMilli(), Parents: []protocol.EventID{parent},
			Content: &protocol.Content{Data: []byte(fmt.Sprintf("junk %d", i))}}
		if err := ev.Sign(w); err != nil {
			t.Fatal(err)
		}
		if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
			t.Fatalf("junk event does not pass the stateless checks, so it tests nothing: %v", err)
		}
		out[i] = ev.Encode(nil)
	}
	return out
}

// writeChain signs n posts by id in ts's thread, each following the last
// (ts advances), with size bytes of data each.
func writeChain(t *testing.T, ts *protocol.ThreadState, id *crypto.Identity, ring protocol.KeyRing, n, size int, label string) []*protocol.Event {
	t.Helper()
	var out []*protocol.Event
	for i := range n {
		data := make([]byte, size)
		copy(data, fmt.Sprintf("%s %d", label, i))
		ev, err := protocol.NewPost(ts, id, ring, nil, nil, data, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		applyTo(t, ts, ev)
		out = append(out, ev)
	}
	return out
}

// applyTo advances a test-held thread state by one event.
func applyTo(t *testing.T, ts *protocol.ThreadState, ev *protocol.Event) {
	t.Helper()
	var parents []protocol.EventMeta
	for _, p := range ev.Parents {
		i := slices.IndexFunc(ts.Heads, func(h protocol.EventMeta) bool { return h.ID == p })
		if i < 0 {
			if tip, ok := writerTip(ts, ev.Writer); ok && tip.ID == p {
				parents = append(parents, tip)
				continue
			}
			t.Fatalf("parent %s of a test event is not a head", p)
		}
		parents = append(parents, ts.Heads[i])
	}
	meta, err := ts.Validate(ev, parents)
	if err != nil {
		t.Fatal(err)
	}
	ts.Apply(ev, meta)
}

// writerTip is the metadata of a writer's last event if it is still a
// head (writeChain's events always are).
func writerTip(ts *protocol.ThreadState, w crypto.UserID) (protocol.EventMeta, bool) {
	tip, ok := ts.Tips[w]
	if !ok {
		return protocol.EventMeta{}, false
	}
	i := slices.IndexFunc(ts.Heads, func(h protocol.EventMeta) bool { return h.ID == tip.ID })
	if i < 0 {
		return protocol.EventMeta{}, false
	}
	return ts.Heads[i], true
}

func encodeAll(evs []*protocol.Event) [][]byte {
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		out[i] = ev.Encode(nil)
	}
	return out
}

func ingest(t *testing.T, n *node.Node, evs ...*protocol.Event) {
	t.Helper()
	res, err := n.Ingest(context.Background(), encodeAll(evs))
	if err != nil || res.Accepted != len(evs) {
		t.Fatalf("ingest: %v %+v", err, res)
	}
}

func peerOf(n *node.Node) peer.ID { p, _ := n.PeerID(); return p }

// within polls cond until it holds or d passes, and says whether it held.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// steady waits (up to 20 s) until f returns the same for a second.
func steady(f func() int) {
	deadline := time.Now().Add(20 * time.Second)
	last := f()
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		v := f()
		if v == last {
			return
		}
		last = v
	}
}

// latency is the delivery of one measured run.
type latency struct {
	k          int
	p50, p99   time.Duration
	max        time.Duration
	lost       int // not delivered within the run's timeout
	sendFailed int
}

func (l latency) String() string {
	return fmt.Sprintf("%d messages: p50 %v p99 %v max %v, %d lost", l.k, l.p50.Round(time.Millisecond), l.p99.Round(time.Millisecond), l.max.Round(time.Millisecond), l.lost)
}

// measureDelivery sends k messages from `from` on th, one every gap, and
// measures how long after sending each shows on to's Subscribe stream.
// The send time travels in the message (both nodes share this process's
// clock).
func measureDelivery(t *testing.T, from, to *node.User, th protocol.ThreadID, label string, k int, gap time.Duration) latency {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := to.Subscribe(ctx, &th)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "lat-" + label + "-"
	var mu sync.Mutex
	got := map[int]time.Duration{}
	all := make(chan struct{})
	go func() {
		for e := range sub.C {
			if e.Type != node.EventThreadNewMessage || e.Message == nil || !strings.HasPrefix(string(e.Message.Data), prefix) {
				continue
			}
			var i int
			var sent int64
			parts := strings.Split(strings.TrimPrefix(string(e.Message.Data), prefix), "-")
			if len(parts) != 2 {
				continue
			}
			i, _ = strconv.Atoi(parts[0])
			sent, _ = strconv.ParseInt(parts[1], 10, 64)
			mu.Lock()
			if _, dup := got[i]; !dup {
				got[i] = time.Since(time.Unix(0, sent))
				if len(got) == k {
					close(all)
				}
			}
			mu.Unlock()
		}
	}()
	res := latency{k: k}
	for i := range k {
		data := fmt.Sprintf("%s%d-%d", prefix, i, time.Now().UnixNano())
		if _, err := from.SendMessage(ctx, th, nil, nil, []byte(data)); err != nil {
			res.sendFailed++
		}
		time.Sleep(gap)
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	var ls []time.Duration
	for _, d := range got {
		ls = append(ls, d)
	}
	slices.Sort(ls)
	res.lost = k - len(ls)
	if len(ls) > 0 {
		res.p50 = ls[len(ls)/2]
		res.p99 = ls[min(len(ls)-1, len(ls)*99/100)]
		res.max = ls[len(ls)-1]
	}
	return res
}

// probe is the honest delivery measurement of one attack test: K messages
// at 20/s (4× as many with -attack.long), first with no attack, then while
// it runs.
func probe(t *testing.T, from, to *node.User, th protocol.ThreadID, label string) latency {
	return measureDelivery(t, from, to, th, label, load(50, 200), 50*time.Millisecond)
}

// checkLatency: honest delivery during the attack is within 3× the
// baseline of the same run. On loopback the baseline p99 is a few
// milliseconds, and a loaded 2-core machine adds tens of milliseconds of
// noise on its own, so the bound is max(3×baseline, baseline+50ms).
func checkLatency(t *testing.T, base, during latency) {
	t.Helper()
	bound := max(3*base.p99, base.p99+50*time.Millisecond)
	t.Logf("honest delivery: baseline %v; during the attack %v (bound p99 <= %v)", base, during, bound.Round(time.Millisecond))
	if during.lost > 0 || during.sendFailed > 0 || during.p99 > bound {
		t.Errorf("honest delivery during the attack: %v, %d sends failed; want none lost and p99 <= %v (baseline %v)", during, during.sendFailed, bound.Round(time.Millisecond), base)
	}
}

// checkScores: the victim scores the attacker below zero and every honest
// peer at zero or above.
func checkScores(t *testing.T, victim *node.Node, name string, bad peer.ID, honest ...*node.Node) {
	t.Helper()
	if !within(5*time.Second, func() bool { s, ok := victim.PeerScore(bad); return ok && s < 0 }) {
		s, ok := victim.PeerScore(bad)
		t.Errorf("%s scores the attacker %.2f (known: %v); want < 0", name, s, ok)
	}
	for _, h := range honest {
		if s, ok := victim.PeerScore(peerOf(h)); !ok || s < 0 {
			t.Errorf("%s scores honest peer %s %.2f (known: %v); want >= 0", name, peerOf(h), s, ok)
		}
	}
}

// checkHonestScores: no honest node scores another below zero.
func checkHonestScores(t *testing.T, ns map[string]*node.Node) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(ns)) {
		for _, other := range slices.Sorted(maps.Keys(ns)) {
			if other == name {
				continue
			}
			if s, ok := ns[name].PeerScore(peerOf(ns[other])); !ok || s < 0 {
				t.Errorf("%s scores honest %s %.2f (known: %v); want >= 0", name, other, s, ok)
			}
		}
	}
}

// converged waits until the nodes hold the same ordered events of th, the
// same for a second, and reports whether they did within d.
func converged(t *testing.T, d time.Duration, th protocol.ThreadID, ns ...*node.Node) bool {
	t.Helper()
	same := func() ([32]byte, bool) {
		h0, _ := orderHash(t, ns[0], th)
		for _, n := range ns[1:] {
			if h, _ := orderHash(t, n, th); h != h0 {
				return h0, false
			}
		}
		return h0, true
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if h, ok := same(); ok {
			time.Sleep(time.Second)
			if h2, ok := same(); ok && h2 == h {
				return true
			}
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// orderCounts describes each node's ordered events of th, for messages.
func orderCounts(t *testing.T, th protocol.ThreadID, ns map[string]*node.Node) string {
	t.Helper()
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(ns)) {
		h, k := orderHash(t, ns[name], th)
		parts = append(parts, fmt.Sprintf("%s: %d events (hash %x)", name, k, h[:4]))
	}
	return strings.Join(parts, "; ")
}
