package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// Gossip queue sizes. Pubsub's defaults (32) lose messages under bursts
// (DESIGN §10); these did not.
const (
	outboundQueue   = 1024
	validateQueue   = 1024
	subscriberQueue = 4096
	maxGossipSize   = 2 << 20
)

// joined is a topic the node is in.
type joined struct {
	topic  *pubsub.Topic
	sub    *pubsub.Subscription // nil if joined only to publish
	cancel context.CancelFunc
}

func (nn *network) startPubSub() error {
	ps, err := pubsub.NewGossipSub(nn.ctx, nn.host,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithPeerOutboundQueueSize(outboundQueue),
		pubsub.WithValidateQueueSize(validateQueue),
		// Our validators are asynchronous (pubsub's default): signature
		// checks run in parallel and the stores of events validated
		// together share a commit. An event that overtakes its parent
		// this way is held, and forwarded once the parent lands (judge).
		pubsub.WithValidateWorkers(runtime.GOMAXPROCS(0)),
		pubsub.WithMaxMessageSize(maxGossipSize),
		pubsub.WithRawTracer(nn.tracer),
		pubsub.WithPeerScore(peerScoreParams(func(p peer.ID) float64 { return -nn.penalties.get(p) }), peerScoreThresholds()),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(nn.noteScores), time.Second),
		// pubsub warns at length about internals (a full tag queue); keep
		// only its errors.
		pubsub.WithLogger(slog.New(minLevel{nn.log.Handler(), slog.LevelError})),
	)
	if err != nil {
		return err
	}
	nn.ps = ps
	return nil
}

// messageID is protocol.GossipMessageID of the event: the event ID on a
// thread topic (the same event reached by two paths is one message), bound
// to the topic on an inbox. Undecodable data gets a hash (and is then
// rejected).
func messageID(m *pb.Message) string {
	if ev, err := protocol.Decode(m.Data); err == nil {
		return protocol.GossipMessageID(m.GetTopic(), ev.ID())
	}
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// peerScoreParams penalise invalid messages heavily and little else: weft
// topics are often quiet, so delivery-rate penalties would punish honest
// peers. appScore adds what the node charged a peer outside gossip
// validation (see trust.go). All test peers share 127.0.0.1, so colocation
// is not penalised on loopback.
func peerScoreParams(appScore func(peer.ID) float64) *pubsub.PeerScoreParams {
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	return &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:               100,
		AppSpecificScore:            appScore,
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: []*net.IPNet{loop4, loop6},
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 30 * time.Minute,
	}
}

func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshWeight:                0.01,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   300,
		FirstMessageDeliveriesWeight:    1,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:       50,
		MeshMessageDeliveriesWeight:     0,
		MeshMessageDeliveriesDecay:      pubsub.ScoreParameterDecay(time.Minute),
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Minute,
		MeshFailurePenaltyWeight:        0,
		MeshFailurePenaltyDecay:         pubsub.ScoreParameterDecay(time.Minute),
		InvalidMessageDeliveriesWeight:  -100,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(time.Hour),
	}
}

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -500,
		GraylistThreshold:           -1000,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
}

func (nn *network) noteScores(scores map[peer.ID]float64) {
	nn.mu.Lock()
	nn.scores = scores
	nn.mu.Unlock()
}

// PeerScore returns a peer's gossip score (negative: it misbehaved).
func (n *Node) PeerScore(p peer.ID) (float64, bool) {
	if n.net == nil {
		return 0, false
	}
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	s, ok := n.net.scores[p]
	return s, ok
}

// NetStats counts what the gossip layer dropped or refused.
type NetStats struct {
	DroppedRPCs   int64 // outbound RPCs dropped because a peer's queue was full
	Undeliverable int64 // messages a slow subscription missed
	Rejected      int64 // messages rejected by validation
	Ignored       int64 // messages ignored (duplicates, held, deleted threads)
	Throttled     int64
}

// NetStats returns the gossip drop and rejection counters.
func (n *Node) NetStats() NetStats {
	if n.net == nil {
		return NetStats{}
	}
	t := n.net.tracer
	return NetStats{
		DroppedRPCs: t.dropped.Load(), Undeliverable: t.undeliverable.Load(),
		Rejected: t.rejected.Load(), Ignored: t.ignored.Load(), Throttled: t.throttled.Load(),
	}
}

// dropTracer counts what pubsub drops, so losses are never silent.
type dropTracer struct {
	dropped, undeliverable, rejected, ignored, throttled atomic.Int64
}

func (t *dropTracer) AddPeer(peer.ID, libp2pproto.ID)                      {}
func (t *dropTracer) RemovePeer(peer.ID)                                   {}
func (t *dropTracer) Join(string)                                          {}
func (t *dropTracer) Leave(string)                                         {}
func (t *dropTracer) Graft(peer.ID, string)                                {}
func (t *dropTracer) Prune(peer.ID, string)                                {}
func (t *dropTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *dropTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *dropTracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *dropTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *dropTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *dropTracer) OnNewOutboundStream(peer.ID, libp2pproto.ID)          {}
func (t *dropTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *dropTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *dropTracer) ThrottlePeer(peer.ID)                                 { t.throttled.Add(1) }
func (t *dropTracer) DropRPC(*pubsub.RPC, peer.ID)                         { t.dropped.Add(1) }
func (t *dropTracer) UndeliverableMessage(*pubsub.Message)                 { t.undeliverable.Add(1) }
func (t *dropTracer) RejectMessage(_ *pubsub.Message, reason string) {
	if reason == pubsub.RejectValidationIgnored {
		t.ignored.Add(1)
	} else {
		t.rejected.Add(1)
	}
}

// topicRefresher joins and leaves topics when the set of threads the node
// replicates changes.
func (nn *network) topicRefresher() {
	for {
		select {
		case <-nn.ctx.Done():
			return
		case <-nn.refresh:
			nn.refreshTopics()
		}
	}
}

func (nn *network) requestRefresh() {
	select {
	case nn.refresh <- struct{}{}:
	default:
	}
}

// wanted returns the topics the node should be subscribed to: the inboxes
// of its local and served users, and every thread one of them is in.
func (nn *network) wanted() (threads map[string]protocol.ThreadID, inboxes map[string]crypto.UserID, err error) {
	threads = map[string]protocol.ThreadID{}
	inboxes = map[string]crypto.UserID{}
	users := nn.interests()
	for _, u := range users {
		inboxes[protocol.InboxTopic(u)] = u
	}
	err = nn.n.do(nn.ctx, false, func(w *work) error {
		for id, ts := range nn.n.threads {
			if ts.Current.Deleted {
				continue
			}
			if slices.ContainsFunc(users, ts.Current.IsUser) {
				threads[protocol.ThreadTopic(id)] = id
			}
		}
		return nil
	})
	return threads, inboxes, err
}

// interests are the users whose threads this node replicates.
func (nn *network) interests() []crypto.UserID {
	users := slices.Clone(nn.cfg.Serve)
	for _, id := range nn.n.Identities() {
		users = append(users, id.UserID)
	}
	return protocol.SortUsers(users)
}

func (nn *network) refreshTopics() {
	threads, inboxes, err := nn.wanted()
	if err != nil {
		return
	}
	joinedNew := false
	for name, t := range threads {
		joinedNew = nn.subscribe(name, nn.threadValidator(t)) || joinedNew
	}
	for name, u := range inboxes {
		nn.subscribe(name, nn.inboxValidator(u))
	}
	if joinedNew {
		// Events published on a thread's topic before this node was in
		// its mesh (a first message sent right after the thread was
		// created) never reach it by gossip: pull once the mesh forms.
		time.AfterFunc(joinSyncDelay, func() {
			if nn.ctx.Err() == nil {
				for _, p := range nn.host.Network().Peers() {
					nn.requestSync(p)
				}
			}
		})
	}
	nn.mu.Lock()
	var leave []string
	for name, j := range nn.topics {
		_, isThread := threads[name]
		_, isInbox := inboxes[name]
		if j.sub != nil && !isThread && !isInbox {
			leave = append(leave, name)
		}
	}
	nn.mu.Unlock()
	for _, name := range leave {
		nn.leave(name)
	}
}

// join returns a topic, joining it (to publish) if needed.
func (nn *network) join(name string, v pubsub.ValidatorEx) (*joined, error) {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	if j, ok := nn.topics[name]; ok {
		return j, nil
	}
	if err := nn.ps.RegisterTopicValidator(name, v); err != nil {
		return nil, err
	}
	t, err := nn.ps.Join(name)
	if err != nil {
		_ = nn.ps.UnregisterTopicValidator(name)
		return nil, err
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		nn.log.Warn("topic score parameters", "err", err)
	}
	j := &joined{topic: t}
	nn.topics[name] = j
	return j, nil
}

// joinSyncDelay is how long after joining a thread's topic the node syncs
// with its peers, for what was published before it was in the mesh.
const joinSyncDelay = time.Second

// subscribe joins and subscribes to a topic and reports whether the
// subscription is new.
func (nn *network) subscribe(name string, v pubsub.ValidatorEx) bool {
	j, err := nn.join(name, v)
	if err != nil {
		nn.log.Warn("joining topic", "topic", name, "err", err)
		return false
	}
	nn.mu.Lock()
	defer nn.mu.Unlock()
	if j.sub != nil {
		return false
	}
	sub, err := j.topic.Subscribe(pubsub.WithBufferSize(subscriberQueue))
	if err != nil {
		nn.log.Warn("subscribing", "topic", name, "err", err)
		return false
	}
	ctx, cancel := context.WithCancel(nn.ctx)
	j.sub, j.cancel = sub, cancel
	nn.wg.Add(1)
	go func() {
		defer nn.wg.Done()
		// Events are stored by the validator; reading keeps the
		// subscription from overflowing.
		for {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	}()
	return true
}

func (nn *network) leave(name string) {
	nn.mu.Lock()
	j, ok := nn.topics[name]
	if ok {
		delete(nn.topics, name)
	}
	nn.mu.Unlock()
	if !ok {
		return
	}
	if j.sub != nil {
		j.cancel()
		j.sub.Cancel()
	}
	_ = j.topic.Close()
	_ = nn.ps.UnregisterTopicValidator(name)
}

// threadValidator judges an event arriving on a thread's topic with the
// protocol rules before anything is stored or forwarded.
func (nn *network) threadValidator(t protocol.ThreadID) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == nn.host.ID() {
			return pubsub.ValidationAccept // our own event, stored before publishing
		}
		ev, err := protocol.Decode(m.Data)
		if err != nil {
			return pubsub.ValidationReject
		}
		if ev.ThreadID() != t {
			return pubsub.ValidationReject
		}
		return nn.judge(ctx, from, ev)
	}
}

// inboxValidator accepts thread creations and updates that add the inbox's
// user; anything else on an inbox is spam.
func (nn *network) inboxValidator(u crypto.UserID) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == nn.host.ID() {
			return pubsub.ValidationAccept
		}
		ev, err := protocol.Decode(m.Data)
		if err != nil {
			return pubsub.ValidationReject
		}
		if (ev.Kind != protocol.KindThreadCreate && ev.Kind != protocol.KindThreadUpdate) || !slices.Contains(ev.Control.AddUsers, u) {
			return pubsub.ValidationReject
		}
		return nn.judge(ctx, from, ev)
	}
}

// judge checks and stores one gossiped event and maps the outcome to
// pubsub's: stored -> Accept (forward it), duplicate or held -> Ignore,
// invalid -> Reject (the sender is penalised).
func (nn *network) judge(ctx context.Context, from peer.ID, ev *protocol.Event) pubsub.ValidationResult {
	if err := protocol.CheckEvent(ev, nn.n.cfg.Limits); err != nil {
		return pubsub.ValidationReject
	}
	res, released, err := nn.n.ingestGossip(ctx, ev)
	switch {
	case err != nil:
		return pubsub.ValidationIgnore
	case res.Accepted > 0 && res.Void > 0:
		// Stored, but void: valid by its causal past, yet it will never
		// show (its writer was removed before it). Sync carries it;
		// gossip neither forwards nor credits it.
		return pubsub.ValidationIgnore
	case res.Accepted > 0:
		return pubsub.ValidationAccept
	case res.Held > 0:
		// A gap. Usually the missing parent is already on its way (gossip
		// validates concurrently, so events arrive out of order): wait a
		// little for it, and forward the event if it is released. If the
		// parent is still missing after a grace, fetch it from this peer.
		if released != nil {
			t := time.NewTimer(heldWait)
			defer t.Stop()
			select {
			case <-released:
				if nn.n.voidPost(ev) {
					return pubsub.ValidationIgnore // stored, but it will never show
				}
				return pubsub.ValidationAccept
			case <-t.C:
			case <-ctx.Done():
			}
			nn.n.forgetRelease(nn.ctx, ev.ID())
		}
		nn.syncAfterGap(from, ev, false)
		return pubsub.ValidationIgnore
	case res.Deferred > 0:
		// Too early to judge, from a writer (or for a thread) this node
		// does not know: fetch its past, from the sender and from others
		// that have the thread, once per peer at a time; if nobody has
		// it, the sender pays (gapCheck).
		nn.syncAfterGap(from, ev, true)
		return pubsub.ValidationIgnore
	case res.Duplicates > 0:
		return pubsub.ValidationIgnore
	case len(res.Errors) > 0 && errors.Is(res.Errors[0], protocol.ErrThreadDeleted):
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationReject
}

// publish queues a local event for gossip, after it is stored.
func (nn *network) publish(ev *protocol.Event) {
	nn.mu.Lock()
	nn.pubQueue = append(nn.pubQueue, ev)
	nn.mu.Unlock()
	select {
	case nn.pubWake <- struct{}{}:
	default:
	}
	nn.pushToLimited() // peers reached only through a relay get it by sync
}

// publisher gossips local events in the order they were stored: on their
// thread's topic, and creations and additions also on the new members'
// inboxes.
func (nn *network) publisher() {
	for {
		nn.mu.Lock()
		q := nn.pubQueue
		nn.pubQueue = nil
		nn.mu.Unlock()
		for _, ev := range q {
			t := ev.ThreadID()
			data := ev.Encode(nil)
			nn.publishOn(protocol.ThreadTopic(t), nn.threadValidator(t), data)
			if ev.Kind == protocol.KindThreadCreate || ev.Kind == protocol.KindThreadUpdate {
				for _, u := range ev.Control.AddUsers {
					nn.publishOn(protocol.InboxTopic(u), nn.inboxValidator(u), data)
				}
			}
		}
		select {
		case <-nn.ctx.Done():
			return
		case <-nn.pubWake:
		}
	}
}

func (nn *network) publishOn(name string, v pubsub.ValidatorEx, data []byte) {
	j, err := nn.join(name, v)
	if err != nil {
		nn.log.Warn("joining topic to publish", "topic", name, "err", err)
		return
	}
	if err := j.topic.Publish(nn.ctx, data); err != nil && nn.ctx.Err() == nil {
		nn.log.Warn("publishing", "topic", name, "err", err)
	}
}

// heldWait is how long a validator waits for a held event's parent before
// it gives up forwarding the event (it is still stored when released).
const heldWait = 100 * time.Millisecond

// gapGrace is how long a held event may wait for its parents to arrive by
// gossip before the node syncs with the peer that sent it.
const gapGrace = time.Second

// heldRef names an event a gap check is for.
type heldRef struct {
	thread   protocol.ThreadID
	id       protocol.EventID
	deferred bool // not held: from a writer or thread the node did not know
}

// maxGapRefs bounds the events a gap check remembers per peer; past it,
// one of them still missing is as good a reason to sync as any.
const maxGapRefs = 64

// gapSyncPeers bounds the peers, besides the sender, that a gap check
// syncs with.
const gapSyncPeers = 2

// syncAfterGap schedules, once per peer at a time, a check after gapGrace
// of the events that peer sent early (held, or deferred: see gapCheck).
// Under load events often arrive just before their parents; those are
// released within microseconds and cost no sync. However fast a peer
// sends such events, it causes at most one check per gapGrace.
func (nn *network) syncAfterGap(from peer.ID, ev *protocol.Event, deferred bool) {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	refs, pending := nn.gapTimers[from]
	if len(refs) < maxGapRefs {
		nn.gapTimers[from] = append(refs, heldRef{ev.ThreadID(), ev.ID(), deferred})
	}
	if pending {
		return
	}
	time.AfterFunc(gapGrace, func() {
		nn.mu.Lock()
		refs := nn.gapTimers[from]
		delete(nn.gapTimers, from)
		nn.mu.Unlock()
		if nn.ctx.Err() != nil {
			return
		}
		nn.gapCheck(from, refs)
	})
}

// gapCheck fetches what is still missing of refs: from the sender if it
// speaks sync, and from up to gapSyncPeers other peers of each thread's
// topic that do (a plain GossipSub relay forwards events but cannot
// answer a sync). Deferred events that none of them could supply have no
// past anywhere: they can never become valid, and the sender is charged
// for each (an honest peer forwards only events it has accepted, with
// their past).
func (nn *network) gapCheck(from peer.ID, refs []heldRef) {
	missing := nn.stillMissing(refs)
	if len(missing) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(nn.ctx, time.Minute)
	defer cancel()
	peers := []peer.ID{}
	if nn.speaksSync(from) {
		peers = append(peers, from)
	}
	threads := map[protocol.ThreadID]bool{}
	for _, r := range missing {
		threads[r.thread] = true
	}
	for t := range threads {
		n := 0
		for _, p := range nn.ps.ListPeers(protocol.ThreadTopic(t)) {
			if n >= gapSyncPeers {
				break
			}
			if p != from && !slices.Contains(peers, p) && nn.speaksSync(p) && !nn.distrusted(p) {
				peers = append(peers, p)
				n++
			}
		}
	}
	synced := 0
	for _, p := range peers {
		if _, err := nn.syncWith(ctx, p, false); err == nil {
			synced++
		} else if ctx.Err() == nil {
			nn.log.Debug("gap sync failed", "remote", p, "err", err)
		}
	}
	if synced == 0 {
		return // nobody answered: no proof either way
	}
	unknown := 0
	for _, r := range nn.stillMissing(missing) {
		if r.deferred {
			unknown++
		}
	}
	if unknown > 0 {
		nn.penalize(from, float64(unknown)*penaltyUnknownPast, fmt.Sprintf("gossip: %d events whose past no peer has", unknown))
	}
}

// stillMissing returns the refs that are neither stored nor released.
func (nn *network) stillMissing(refs []heldRef) []heldRef {
	var out []heldRef
	_ = nn.n.do(nn.ctx, false, func(w *work) error {
		for _, r := range refs {
			if known, _ := nn.n.store.Has(r.thread, r.id); !known {
				out = append(out, r)
			}
		}
		return nil
	})
	return out
}

// speaksSync reports whether a peer announced /weft/sync.
func (nn *network) speaksSync(p peer.ID) bool {
	ps, err := nn.host.Peerstore().SupportsProtocols(p, protocol.SyncProtocolID)
	return err == nil && len(ps) > 0
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }
