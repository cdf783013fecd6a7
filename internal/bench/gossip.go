package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// GossipResult is one mode's figures for one N.
//
// Sent, Delivered and Lost cover both phases (throughput and paced
// latency, see the package doc); warm-up messages are not counted.
// MsgsPerSec is the throughput phase's delivered messages per second
// counted as DESIGN §10 counts them: message-equivalents that reached all
// N-1 other nodes, i.e. delivered (message, receiver) pairs / (N-1) /
// elapsed. P50 and P99 are receive time - send time in the paced phase.
type GossipResult struct {
	N    int
	Mode string // "raw" or "weft"

	Sent, Delivered, Lost int
	MsgsPerSec            float64
	P50, P99              time.Duration

	// Rate is the offered rate of the paced phase (messages/s, all senders).
	Rate float64
	// Window is the number of messages each node keeps in flight in the
	// throughput phase.
	Window int
	// Elapsed is the throughput phase's time, first send to last delivery.
	Elapsed time.Duration
	// LoadP50 and LoadP99 are the latencies in the throughput phase (they
	// include the queueing that a full window causes).
	LoadP50, LoadP99 time.Duration
	// SendP50 and SendP99 are how long the send call took in the paced
	// phase (raw: Publish; weft: SendMessage, which returns once the
	// message is durable), a part of P50 and P99.
	SendP50, SendP99 time.Duration
	// CPUPerDelivery is the process's CPU time (all nodes, user and
	// system) in the throughput phase per delivered (message, receiver)
	// pair: DESIGN §10's "cost per node per delivered message".
	CPUPerDelivery time.Duration
	// Duplicates counts (message, receiver) pairs seen more than once (each
	// counted once in Delivered); SendErrors counts failed sends (not in
	// Sent); BadStatus counts weft messages delivered with a non-zero
	// statusCode (not decrypted or not verified).
	Duplicates, SendErrors, BadStatus int
	// Notes carries mode-specific counters (weft's NetStats, subscription
	// errors).
	Notes string
}

// GossipOptions tunes GossipWith. Zero fields take the defaults.
type GossipOptions struct {
	N    int
	Msgs int // throughput-phase messages (default DefaultMsgs(N))
	// LatencyMsgs is the number of paced messages (default Msgs/2, at most
	// Rate*5s, at least 2N).
	LatencyMsgs int
	// Rate is the paced phase's offered rate, messages/s over all senders
	// (default 200, as DESIGN §10's latency figure).
	Rate float64
	// Window is messages in flight per node in the throughput phase
	// (default 32).
	Window int
	// Settle is the pause after warm-up so the gossip mesh forms (default
	// 1.5s, a heartbeat and a half; negative means none).
	Settle time.Duration
	// Drain bounds the wait for late deliveries after each phase (default 10s).
	Drain time.Duration
	// Raw and Weft select the modes; both false means both.
	Raw, Weft bool
	Logf      func(string, ...any)
}

// DefaultMsgs is the default number of throughput-phase messages for n
// nodes: enough for the throughput phase to last about a second or more
// in both modes on a 2-core machine.
func DefaultMsgs(n int) int {
	switch {
	case n <= 2:
		return 10000
	case n <= 5:
		return 3000
	case n <= 10:
		return 1500
	}
	return max(200, 15000/n)
}

// phaseLimit bounds the throughput phase, and the paced phase beyond its
// schedule.
const phaseLimit = 90 * time.Second

// Payload layout: the first headerLen bytes of a raw payload (and the whole
// publicMeta of a weft message) are a header; the rest is filler.
const (
	payloadSize = 1 << 10
	headerLen   = 16
	headerMagic = 'W'
	maxNodes    = 64 // receivers are tracked in a 64-bit mask

	phaseThroughput = 1
	phaseLatency    = 2
	phaseWarmup     = 10 // + round
)

type header struct {
	phase  byte
	sender int
	seq    int
	sent   int64 // unix nanos
}

func (h header) encode() []byte {
	b := make([]byte, headerLen)
	b[0] = headerMagic
	b[1] = h.phase
	binary.BigEndian.PutUint16(b[2:], uint16(h.sender))
	binary.BigEndian.PutUint32(b[4:], uint32(h.seq))
	binary.BigEndian.PutUint64(b[8:], uint64(h.sent))
	return b
}

func decodeHeader(b []byte) (header, bool) {
	if len(b) < headerLen || b[0] != headerMagic {
		return header{}, false
	}
	return header{
		phase:  b[1],
		sender: int(binary.BigEndian.Uint16(b[2:])),
		seq:    int(binary.BigEndian.Uint32(b[4:])),
		sent:   int64(binary.BigEndian.Uint64(b[8:])),
	}, true
}

// tracker records the deliveries of one phase's messages.
type tracker struct {
	n, msgs   int
	seen      []atomic.Uint64 // receivers that have each message
	left      []atomic.Int32  // receivers still to get each message
	done      []chan struct{} // closed when every receiver has it
	allDone   chan struct{}
	remaining atomic.Int64
	delivered atomic.Int64
	dups      atomic.Int64
	bad       atomic.Int64
	lat       []int64
	latN      atomic.Int64
	last      atomic.Int64 // unix nanos of the latest delivery
}

func newTracker(n, msgs int) *tracker {
	t := &tracker{
		n: n, msgs: msgs,
		seen: make([]atomic.Uint64, msgs), left: make([]atomic.Int32, msgs),
		done: make([]chan struct{}, msgs), allDone: make(chan struct{}),
		lat: make([]int64, msgs*(n-1)),
	}
	for i := range msgs {
		t.left[i].Store(int32(n - 1))
		t.done[i] = make(chan struct{})
	}
	t.remaining.Store(int64(msgs))
	if msgs == 0 {
		close(t.allDone)
	}
	return t
}

func (t *tracker) got(recv int, h header, now int64, badStatus bool) {
	if h.seq >= t.msgs || h.sender == recv || recv >= t.n {
		return
	}
	bit := uint64(1) << recv
	if t.seen[h.seq].Or(bit)&bit != 0 {
		t.dups.Add(1)
		return
	}
	if badStatus {
		t.bad.Add(1)
	}
	t.delivered.Add(1)
	if i := t.latN.Add(1) - 1; int(i) < len(t.lat) {
		t.lat[i] = now - h.sent
	}
	for {
		l := t.last.Load()
		if now <= l || t.last.CompareAndSwap(l, now) {
			break
		}
	}
	if t.left[h.seq].Add(-1) == 0 {
		close(t.done[h.seq])
		if t.remaining.Add(-1) == 0 {
			close(t.allDone)
		}
	}
}

// percentiles returns the p50 and p99 of the recorded latencies.
func (t *tracker) percentiles() (p50, p99 time.Duration) {
	return percentiles(t.lat[:min(int(t.latN.Load()), len(t.lat))])
}

// percentiles returns the p50 and p99 of durations in nanoseconds.
func percentiles(d []int64) (p50, p99 time.Duration) {
	n := len(d)
	if n == 0 {
		return 0, 0
	}
	l := slices.Clone(d)
	slices.Sort(l)
	at := func(q float64) time.Duration {
		i := int(q*float64(n)+0.5) - 1
		return time.Duration(l[max(0, min(i, n-1))])
	}
	return at(0.50), at(0.99)
}

// router hands a received header to its phase's tracker.
type router struct {
	phases [256]atomic.Pointer[tracker]
}

func (r *router) recv(receiver int, hdr []byte, badStatus bool) {
	now := time.Now().UnixNano()
	h, ok := decodeHeader(hdr)
	if !ok {
		return
	}
	if t := r.phases[h.phase].Load(); t != nil {
		t.got(receiver, h, now, badStatus)
	}
}

// cluster is N nodes of one mode, connected in a full mesh, with every
// node receiving on one topic (raw) or one thread (weft).
type cluster interface {
	send(ctx context.Context, from int, hdr []byte) error
	notes() string
	close()
}

// Gossip runs the end-to-end comparison for n nodes with msgs messages in
// the throughput phase (0: DefaultMsgs(n)): raw GossipSub first, then weft.
func Gossip(ctx context.Context, n int, msgs int, logf func(string, ...any)) (raw, weft GossipResult, err error) {
	return GossipWith(ctx, GossipOptions{N: n, Msgs: msgs, Logf: logf})
}

// GossipWith is Gossip with every knob.
func GossipWith(ctx context.Context, o GossipOptions) (raw, weft GossipResult, err error) {
	if o.N < 2 || o.N > maxNodes {
		return raw, weft, fmt.Errorf("bench: N must be in 2..%d, not %d", maxNodes, o.N)
	}
	if o.Msgs <= 0 {
		o.Msgs = DefaultMsgs(o.N)
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.LatencyMsgs <= 0 {
		o.LatencyMsgs = max(min(o.Msgs/2, int(o.Rate*5)), 2*o.N)
	}
	if o.Window <= 0 {
		o.Window = 32
	}
	if o.Settle == 0 {
		o.Settle = 1500 * time.Millisecond
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if !o.Raw && !o.Weft {
		o.Raw, o.Weft = true, true
	}
	filler := make([]byte, payloadSize)
	rand.Read(filler)
	if o.Raw {
		r := &router{}
		c, err := newRawCluster(ctx, o.N, r, filler, o.Logf)
		if err != nil {
			return raw, weft, fmt.Errorf("raw cluster: %w", err)
		}
		raw, err = runMode(ctx, "raw", c, r, o)
		c.close()
		if err != nil {
			return raw, weft, fmt.Errorf("raw: %w", err)
		}
		runtime.GC()
	}
	if o.Weft {
		r := &router{}
		c, err := newWeftCluster(ctx, o.N, r, filler, o.Logf)
		if err != nil {
			return raw, weft, fmt.Errorf("weft cluster: %w", err)
		}
		weft, err = runMode(ctx, "weft", c, r, o)
		c.close()
		if err != nil {
			return raw, weft, fmt.Errorf("weft: %w", err)
		}
		runtime.GC()
	}
	return raw, weft, nil
}

// runMode warms a cluster up, then runs the throughput phase and the paced
// phase on it.
func runMode(ctx context.Context, mode string, c cluster, r *router, o GossipOptions) (GossipResult, error) {
	res := GossipResult{N: o.N, Mode: mode, Rate: o.Rate, Window: o.Window}
	if err := warmup(ctx, c, r, o); err != nil {
		return res, err
	}
	if o.Settle > 0 {
		select {
		case <-time.After(o.Settle):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	var sendErrs atomic.Int64
	var sent atomic.Int64
	sendDur := make([]int64, o.LatencyMsgs) // paced phase only
	send := func(ctx context.Context, phase byte, from, seq int) {
		h := header{phase: phase, sender: from, seq: seq, sent: time.Now().UnixNano()}
		if err := c.send(ctx, from, h.encode()); err != nil {
			if sendErrs.Add(1) <= 3 {
				o.Logf("%s: send %d from node %d: %v", mode, seq, from, err)
			}
			return
		}
		if phase == phaseLatency && seq < len(sendDur) {
			sendDur[seq] = time.Now().UnixNano() - h.sent
		}
		sent.Add(1)
	}

	// Throughput: every node keeps Window messages in flight (sent and not
	// yet delivered to all others).
	tp := newTracker(o.N, o.Msgs)
	r.phases[phaseThroughput].Store(tp)
	o.Logf("%s N=%d: throughput phase, %d messages, window %d per node", mode, o.N, o.Msgs, o.Window)
	start, cpu0 := time.Now(), cpuTime()
	// The phase is bounded: what is not delivered by then is lost.
	pctx, pcancel := context.WithTimeout(ctx, phaseLimit)
	var wg sync.WaitGroup
	for i := range o.N {
		var next atomic.Int64
		for range o.Window {
			wg.Add(1)
			go func() {
				defer wg.Done()
				timer := time.NewTimer(time.Hour)
				defer timer.Stop()
				for {
					seq := int(next.Add(1)-1)*o.N + i
					if seq >= o.Msgs || pctx.Err() != nil {
						return
					}
					send(pctx, phaseThroughput, i, seq)
					timer.Reset(5 * time.Second)
					select {
					case <-tp.done[seq]:
					case <-timer.C: // lost or late: go on, it is counted
					case <-pctx.Done():
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	pcancel()
	drain(ctx, tp, o.Drain)
	if d := tp.delivered.Load(); d > 0 {
		res.CPUPerDelivery = (cpuTime() - cpu0) / time.Duration(d)
	}
	last := tp.last.Load()
	res.Elapsed = time.Since(start)
	if last > 0 {
		res.Elapsed = time.Unix(0, last).Sub(start)
	}
	res.MsgsPerSec = float64(tp.delivered.Load()) / float64(o.N-1) / res.Elapsed.Seconds()
	res.LoadP50, res.LoadP99 = tp.percentiles()
	o.Logf("%s N=%d: %.0f msgs/s in %v (delivered %d of %d), CPU %v per delivery", mode, o.N, res.MsgsPerSec, res.Elapsed.Round(time.Millisecond), tp.delivered.Load(), o.Msgs*(o.N-1), res.CPUPerDelivery.Round(time.Microsecond))

	// Paced: Rate messages/s in all, the senders taking turns.
	lt := newTracker(o.N, o.LatencyMsgs)
	r.phases[phaseLatency].Store(lt)
	o.Logf("%s N=%d: paced phase, %d messages at %.0f/s", mode, o.N, o.LatencyMsgs, o.Rate)
	gap := time.Duration(float64(time.Second) / o.Rate)
	t0 := time.Now().Add(10 * time.Millisecond)
	pctx, pcancel = context.WithTimeout(ctx, time.Duration(o.LatencyMsgs)*gap+phaseLimit)
	defer pcancel()
	inflight := make(chan struct{}, 256)
	for i := range o.N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				seq := k*o.N + i
				if seq >= o.LatencyMsgs {
					return
				}
				select {
				case <-time.After(time.Until(t0.Add(time.Duration(seq) * gap))):
				case <-pctx.Done():
					return
				}
				inflight <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					send(pctx, phaseLatency, i, seq)
					<-inflight
				}()
			}
		}()
	}
	wg.Wait()
	drain(ctx, lt, o.Drain)
	res.P50, res.P99 = lt.percentiles()
	res.SendP50, res.SendP99 = percentiles(slices.DeleteFunc(sendDur, func(d int64) bool { return d == 0 }))

	res.Sent = int(sent.Load())
	res.Delivered = int(tp.delivered.Load() + lt.delivered.Load())
	res.Lost = res.Sent*(o.N-1) - res.Delivered
	res.Duplicates = int(tp.dups.Load() + lt.dups.Load())
	res.BadStatus = int(tp.bad.Load() + lt.bad.Load())
	res.SendErrors = int(sendErrs.Load())
	res.Notes = c.notes()
	o.Logf("%s N=%d: p50 %v p99 %v (send call p50 %v p99 %v); sent %d delivered %d lost %d %s", mode, o.N, res.P50, res.P99, res.SendP50, res.SendP99, res.Sent, res.Delivered, res.Lost, res.Notes)
	return res, ctx.Err()
}

func drain(ctx context.Context, t *tracker, d time.Duration) {
	select {
	case <-t.allDone:
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// warmup sends rounds of one message per node until a round reaches every
// node within 3s, so every node has joined the topic before measuring.
func warmup(ctx context.Context, c cluster, r *router, o GossipOptions) error {
	for round := range 20 {
		t := newTracker(o.N, o.N)
		phase := byte(phaseWarmup + round)
		r.phases[phase].Store(t)
		for i := range o.N {
			h := header{phase: phase, sender: i, seq: i, sent: time.Now().UnixNano()}
			if err := c.send(ctx, i, h.encode()); err != nil {
				return fmt.Errorf("warm-up send: %w", err)
			}
		}
		select {
		case <-t.allDone:
			o.Logf("warm-up: round %d reached every node", round)
			return nil
		case <-time.After(time.Second):
			o.Logf("warm-up: round %d: %d of %d deliveries", round, t.delivered.Load(), o.N*(o.N-1))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("the nodes did not all receive gossip after 20 warm-up rounds")
}

// Raw GossipSub: N hosts with libp2p's defaults (as weft's host has them),
// one topic, weft's queue sizes, no signing, content-hash message IDs, no
// validator.

type rawCluster struct {
	hosts  []host.Host
	topics []*pubsub.Topic
	cancel context.CancelFunc
	wg     sync.WaitGroup
	filler []byte
}

func rawMessageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

func newRawCluster(ctx context.Context, n int, r *router, filler []byte, logf func(string, ...any)) (*rawCluster, error) {
	cctx, cancel := context.WithCancel(context.Background())
	c := &rawCluster{cancel: cancel, filler: filler}
	var subs []*pubsub.Subscription
	for range n {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			c.close()
			return nil, err
		}
		c.hosts = append(c.hosts, h)
		ps, err := pubsub.NewGossipSub(cctx, h,
			pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
			pubsub.WithNoAuthor(),
			pubsub.WithMessageIdFn(rawMessageID),
			pubsub.WithPeerOutboundQueueSize(1024),
			pubsub.WithValidateQueueSize(1024),
			pubsub.WithMaxMessageSize(2<<20),
		)
		if err != nil {
			c.close()
			return nil, err
		}
		t, err := ps.Join("bench")
		if err != nil {
			c.close()
			return nil, err
		}
		sub, err := t.Subscribe(pubsub.WithBufferSize(4096))
		if err != nil {
			c.close()
			return nil, err
		}
		c.topics = append(c.topics, t)
		subs = append(subs, sub)
	}
	if err := meshConnect(ctx, n, func(i, j int) error {
		return c.hosts[i].Connect(ctx, peer.AddrInfo{ID: c.hosts[j].ID(), Addrs: c.hosts[j].Addrs()})
	}); err != nil {
		c.close()
		return nil, err
	}
	for i, sub := range subs {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				m, err := sub.Next(cctx)
				if err != nil {
					return
				}
				r.recv(i, m.Data, false)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n; {
		if len(c.topics[i].ListPeers()) == n-1 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("node %d sees %d topic peers, want %d", i, len(c.topics[i].ListPeers()), n-1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	logf("raw: %d hosts up, full mesh", n)
	return c, nil
}

func (c *rawCluster) send(ctx context.Context, from int, hdr []byte) error {
	b := make([]byte, payloadSize)
	copy(b, c.filler)
	copy(b, hdr)
	return c.topics[from].Publish(ctx, b)
}

func (c *rawCluster) notes() string { return "" }

func (c *rawCluster) close() {
	c.cancel()
	for _, t := range c.topics {
		_ = t.Close()
	}
	for _, h := range c.hosts {
		h.Close()
	}
	c.wg.Wait()
}

// meshConnect connects every pair of nodes, in parallel.
func meshConnect(ctx context.Context, n int, connect func(i, j int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n*n)
	for i := range n {
		for j := i + 1; j < n; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := connect(i, j); err != nil {
					errs <- fmt.Errorf("connecting %d to %d: %w", i, j, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// weft: N nodes, one identity each, one thread with all N users, every
// node sending and every node's user subscribed to the thread.

type weftCluster struct {
	logs   *logCounter
	root   string
	nodes  []*node.Node
	users  []*node.User
	subs   []*node.Subscription
	thread protocol.ThreadID
	cancel context.CancelFunc
	wg     sync.WaitGroup
	filler []byte
}

func newWeftCluster(ctx context.Context, n int, r *router, filler []byte, logf func(string, ...any)) (*weftCluster, error) {
	root, err := os.MkdirTemp("", "weft-bench-gossip-")
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &weftCluster{root: root, cancel: cancel, filler: filler[:payloadSize], logs: &logCounter{}}
	for i := range n {
		nd, err := node.New(ctx, node.Config{
			Home: filepath.Join(root, fmt.Sprint(i)), Unencrypted: true, Logger: slog.New(c.logs),
			Network: &node.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true},
		})
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
		uid, err := nd.CreateIdentity(ctx, fmt.Sprintf("bench%d", i))
		if err != nil {
			c.close()
			return nil, err
		}
		c.users = append(c.users, nd.As(uid))
	}
	if err := meshConnect(ctx, n, func(i, j int) error {
		return c.nodes[i].Connect(ctx, c.nodes[j].Addrs()[0])
	}); err != nil {
		c.close()
		return nil, err
	}
	var others []crypto.UserID
	for _, u := range c.users[1:] {
		others = append(others, u.ID())
	}
	c.thread, err = c.users[0].CreateThread(ctx, others, nil, []byte("bench"), nil, nil)
	if err != nil {
		c.close()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < n; {
		if _, err := c.users[i].GetThread(ctx, c.thread); err == nil {
			i++
			continue
		}
		if time.Now().After(deadline) {
			c.close()
			return nil, fmt.Errorf("node %d did not learn of the thread in 30s", i)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, u := range c.users {
		s, err := u.Subscribe(cctx, &c.thread)
		if err != nil {
			c.close()
			return nil, err
		}
		c.subs = append(c.subs, s)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for e := range s.C {
				if e.Type != node.EventThreadNewMessage || e.Message == nil {
					continue
				}
				r.recv(i, e.Message.PublicMeta, e.Message.StatusCode != node.StatusOK)
			}
		}()
	}
	logf("weft: %d nodes up, full mesh, thread %s", n, c.thread)
	return c, nil
}

func (c *weftCluster) send(ctx context.Context, from int, hdr []byte) error {
	_, err := c.users[from].SendMessage(ctx, c.thread, hdr, nil, c.filler)
	return err
}

func (c *weftCluster) notes() string {
	var s node.NetStats
	for _, n := range c.nodes {
		ns := n.NetStats()
		s.DroppedRPCs += ns.DroppedRPCs
		s.Undeliverable += ns.Undeliverable
		s.Rejected += ns.Rejected
		s.Ignored += ns.Ignored
		s.Throttled += ns.Throttled
	}
	out := fmt.Sprintf("netstats: dropped RPCs %d, undeliverable %d, rejected %d, ignored %d, throttled %d",
		s.DroppedRPCs, s.Undeliverable, s.Rejected, s.Ignored, s.Throttled)
	out += fmt.Sprintf("; syncs that brought events %d (events %d, accepted %d); warnings %d",
		c.logs.syncs.Load(), c.logs.syncEvents.Load(), c.logs.syncAccepted.Load(), c.logs.warnings.Load())
	c.logs.mu.Lock()
	for _, w := range c.logs.firstWarnings {
		out += fmt.Sprintf("; e.g. warning %q", w)
	}
	c.logs.mu.Unlock()
	for i, sub := range c.subs {
		if err := sub.Err(); err != nil {
			out += fmt.Sprintf("; subscription %d ended: %v", i, err)
		}
	}
	return out
}

func (c *weftCluster) close() {
	for _, s := range c.subs {
		s.Close()
	}
	for _, n := range c.nodes {
		n.Close()
	}
	c.cancel()
	c.wg.Wait()
	os.RemoveAll(c.root)
}

// logCounter is a slog handler that counts what the nodes log about sync
// (weft logs a sync that brought events at Info) and warnings.
type logCounter struct {
	syncs, syncEvents, syncAccepted, warnings atomic.Int64
	mu                                        sync.Mutex
	firstWarnings                             []string
}

func (l *logCounter) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.warnings.Add(1)
		l.mu.Lock()
		if len(l.firstWarnings) < 3 && !slices.ContainsFunc(l.firstWarnings, func(w string) bool { return strings.HasPrefix(w, r.Message) }) {
			msg := r.Message
			r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
			l.firstWarnings = append(l.firstWarnings, msg)
		}
		l.mu.Unlock()
	}
	if r.Message == "synced" {
		l.syncs.Add(1)
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "events":
				l.syncEvents.Add(a.Value.Int64())
			case "accepted":
				l.syncAccepted.Add(a.Value.Int64())
			}
			return true
		})
	}
	return nil
}

func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
