package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// Anti-entropy sync (/weft/sync/1.0.0). The initiator pulls:
//
//	I -> R  Hello{version, interests, digest of each thread I has}
//	R -> I  Vectors{R's version vector of each thread that differs or that
//	        I lacks but is interested in}
//	I -> R  Request{thread, ranges I lacks} ... Done
//	R -> I  Batch{thread, events in causal order} ... (at most syncWindow
//	        batches ahead of I's Credits) ... Done
//
// Both ends pull when they connect, so each gets what it lacks. An
// interrupted sync leaves what arrived stored; the next one asks only for
// the rest, since it starts from the version vectors.
const (
	syncWindow      = 4
	syncBatchEvents = 256
	syncBatchBytes  = 1 << 20
	syncIdle        = 30 * time.Second // a stalled peer is dropped after this
	syncDrain       = 5 * time.Second  // how long a responder waits for the peer to close
	maxSyncs        = 4                // concurrent syncs
)

// SyncResult counts what one sync brought.
type SyncResult struct {
	Threads  int // threads the peer had something for
	Events   int // events received
	Accepted int
	// FollowUp: events arrived and some still wait for parents the peer
	// may have (asked for by ID next time).
	FollowUp bool
}

// SyncWith reconciles with a connected peer now and waits for it.
func (n *Node) SyncWith(ctx context.Context, p peer.ID) (SyncResult, error) {
	if n.net == nil {
		return SyncResult{}, errOffline
	}
	return n.net.syncWith(ctx, p, false)
}

// syncState is the scheduler's record of a running sync with a peer.
type syncState struct {
	again bool // run once more when this one ends
	news  bool // ...asking the peer to pull back
}

// syncReq asks for a sync with a peer; news asks the peer to pull back.
type syncReq struct {
	p    peer.ID
	news bool
}

func (nn *network) requestSync(p peer.ID) { nn.queueSync(syncReq{p: p}) }

// announce syncs with every connected peer and asks each to pull back:
// the node has news (a thread created or joined) that gossip may not carry
// to a peer that has not yet seen the topic.
func (nn *network) announce() {
	for _, p := range nn.host.Network().Peers() {
		nn.queueSync(syncReq{p: p, news: true})
	}
}

func (nn *network) queueSync(r syncReq) {
	select {
	case nn.syncWake <- r:
	default: // the periodic round will get to it
	}
}

// syncScheduler runs syncs: on request (connect, gap) and periodically with
// every peer; at most one at a time per peer (a request during a sync runs
// it again after), at most maxSyncs at once.
func (nn *network) syncScheduler() {
	t := time.NewTicker(nn.cfg.SyncInterval)
	defer t.Stop()
	slots := make(chan struct{}, maxSyncs)
	start := func(r syncReq) {
		p := r.p
		nn.mu.Lock()
		if st, running := nn.syncing[p]; running {
			nn.syncing[p] = syncState{again: true, news: st.news || r.news}
			nn.mu.Unlock()
			return
		}
		nn.syncing[p] = syncState{}
		news := r.news
		nn.mu.Unlock()
		nn.wg.Add(1)
		go func() {
			defer nn.wg.Done()
			for {
				select {
				case slots <- struct{}{}:
				case <-nn.ctx.Done():
					return
				}
				ctx, cancel := context.WithTimeout(nn.ctx, 10*time.Minute)
				res, err := nn.syncWith(ctx, p, news)
				cancel()
				<-slots
				switch {
				case err != nil && nn.ctx.Err() == nil:
					nn.log.Debug("sync failed", "remote", p, "err", err)
					if !errors.Is(err, protocol.ErrSyncVersion) {
						nn.retrySyncLater(p)
					}
				case err == nil:
					nn.mu.Lock()
					delete(nn.syncFailures, p)
					nn.mu.Unlock()
					if res.Events > 0 {
						nn.log.Debug("synced", "remote", p, "threads", res.Threads, "events", res.Events, "accepted", res.Accepted)
					}
					if res.FollowUp {
						// Events asked for by ID came with part of their
						// past: ask for the rest, while it makes progress.
						nn.mu.Lock()
						st := nn.syncing[p]
						st.again = true
						nn.syncing[p] = st
						nn.mu.Unlock()
					}
				}
				nn.mu.Lock()
				st := nn.syncing[p]
				if !st.again {
					delete(nn.syncing, p)
					nn.mu.Unlock()
					return
				}
				news = st.news
				nn.syncing[p] = syncState{}
				nn.mu.Unlock()
			}
		}()
	}
	for {
		select {
		case <-nn.ctx.Done():
			return
		case r := <-nn.syncWake:
			start(r)
		case <-t.C:
			for _, p := range nn.host.Network().Peers() {
				start(syncReq{p: p})
			}
		}
	}
}

// retrySyncLater schedules another sync with p after a failed one: after
// 1 s, then 2, 4, ... up to SyncInterval, while p stays connected. A
// transient failure then heals in seconds rather than at the next periodic
// round.
func (nn *network) retrySyncLater(p peer.ID) {
	nn.mu.Lock()
	n := nn.syncFailures[p] + 1
	nn.syncFailures[p] = n
	nn.mu.Unlock()
	delay := min(time.Second<<min(n-1, 16), nn.cfg.SyncInterval)
	time.AfterFunc(delay, func() {
		if nn.ctx.Err() != nil {
			return
		}
		if nn.host.Network().Connectedness(p) != p2pnet.Connected {
			nn.mu.Lock()
			delete(nn.syncFailures, p)
			nn.mu.Unlock()
			return
		}
		nn.requestSync(p)
	})
}

// localThreads snapshots what sync needs of every thread the node holds.
func (nn *network) localThreads(ctx context.Context) ([]protocol.LocalThread, error) {
	var out []protocol.LocalThread
	err := nn.n.do(ctx, false, func(w *work) error {
		for id, ts := range nn.n.threads {
			heads := make([]protocol.EventID, len(ts.Heads))
			for i, h := range ts.Heads {
				heads[i] = h.ID
			}
			out = append(out, protocol.LocalThread{ID: id, VV: ts.VersionVector(), Heads: heads, Members: append(ts.Current.Users[:0:0], ts.Current.Users...)})
		}
		return nil
	})
	return out, err
}

// Bounds on what one sync may make the initiator take on trust: threads
// it did not have are stored only if one of its users (or the users it
// serves) turns out to be a member, and it takes at most this many of
// them, and this many bytes of their events, before that is shown.
const (
	maxProbationThreads = 64
	maxProbationBytes   = 64 << 20
)

// errDistrusted is returned for a sync with a peer charged past
// refuseSyncPenalty.
var errDistrusted = errors.New("peer is distrusted for misbehaving; not syncing with it")

// asked is what the initiator requested of one thread: only events it
// covers are taken from the peer's batches.
type asked struct {
	ranges []protocol.SeqRange
	byID   bool // IDs were asked for: their ancestors may come too
	// probation: the thread was not held before this sync; it is kept only
	// if one of the node's interests is a member (see relevant).
	probation bool
}

// covers reports whether ev is something the request asked for.
func (a *asked) covers(ev *protocol.Event) bool {
	if a.byID {
		return true
	}
	for _, r := range a.ranges {
		if r.Writer == ev.Writer && ev.Seq >= r.From && ev.Seq <= r.To {
			return true
		}
	}
	return false
}

func (nn *network) syncWith(ctx context.Context, p peer.ID, news bool) (SyncResult, error) {
	var res SyncResult
	if nn.distrusted(p) {
		return res, errDistrusted
	}
	s, err := nn.host.NewStream(ctx, p, protocol.SyncProtocolID)
	if err != nil {
		return res, fmt.Errorf("opening sync stream: %w", err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	br := bufio.NewReader(s)
	local, err := nn.localThreads(ctx)
	if err != nil {
		return res, err
	}
	mine := make(map[protocol.ThreadID]*protocol.LocalThread, len(local))
	digests := make(map[protocol.ThreadID][32]byte, len(local))
	for i := range local {
		mine[local[i].ID] = &local[i]
		digests[local[i].ID] = local[i].Digest()
	}
	s.SetDeadline(time.Now().Add(syncIdle))
	hello := protocol.NewHello(nn.interests(), digests)
	hello.Reciprocate = news
	if err := protocol.WriteSyncMsg(s, hello); err != nil {
		return res, err
	}
	msg, err := protocol.ReadSyncMsg(br, 0)
	if err != nil {
		return res, nn.syncReadErr(p, err)
	}
	var vecs *protocol.Vectors
	switch m := msg.(type) {
	case *protocol.Vectors:
		vecs = m
	case *protocol.SyncError:
		if m.Code == protocol.SyncErrVersion {
			return res, fmt.Errorf("%w: %s", protocol.ErrSyncVersion, m.Message)
		}
		return res, m
	default:
		nn.penalize(p, penaltyBadSync, fmt.Sprintf("sync: %T instead of Vectors", msg))
		return res, fmt.Errorf("%w: %T instead of Vectors", protocol.ErrSyncUnexpected, msg)
	}
	requests, err := nn.plan(ctx, vecs, mine)
	if err != nil {
		return res, err
	}
	for t, r := range requests {
		res.Threads++
		if err := protocol.WriteSyncMsg(s, r.req); err != nil {
			return res, err
		}
		_ = t
	}
	if err := protocol.WriteSyncMsg(s, &protocol.Done{}); err != nil {
		return res, err
	}
	tr := transfer{nn: nn, p: p, asked: map[protocol.ThreadID]*asked{}}
	for t, r := range requests {
		tr.asked[t] = r.asked
	}
	defer tr.settle(ctx)
	progress := false // something new arrived (accepted or newly held)
	for {
		s.SetDeadline(time.Now().Add(syncIdle))
		msg, err := protocol.ReadSyncMsg(br, 0)
		if err != nil {
			return res, nn.syncReadErr(p, err)
		}
		switch m := msg.(type) {
		case *protocol.Batch:
			res.Events += len(m.Events)
			// Credit first, so the peer reads and sends the next batch
			// while this one is checked and stored; the window still
			// bounds what is in flight.
			// A failed credit write still lets this batch be stored: the
			// events are here and valid whatever the stream does next.
			werr := protocol.WriteSyncMsg(s, &protocol.Credit{N: 1})
			accepted, held, err := tr.take(ctx, m)
			res.Accepted += accepted
			progress = progress || accepted > 0 || held > 0
			if err != nil {
				return res, err
			}
			if werr != nil {
				return res, werr
			}
		case *protocol.Done:
			nn.n.counters.lastSync.Store(time.Now().UnixNano())
			res.FollowUp = progress && tr.stillWanting(ctx)
			return res, nil
		case *protocol.SyncError:
			return res, m
		default:
			nn.penalize(p, penaltyBadSync, fmt.Sprintf("sync: %T during transfer", msg))
			return res, fmt.Errorf("%w: %T during transfer", protocol.ErrSyncUnexpected, msg)
		}
	}
}

// syncReadErr charges a peer for a message that does not decode (not for
// a stream that merely ends or stalls).
func (nn *network) syncReadErr(p peer.ID, err error) error {
	if errors.Is(err, protocol.ErrSyncMalformed) || errors.Is(err, protocol.ErrSyncTooLarge) {
		nn.penalize(p, penaltyBadSync, "sync: "+err.Error())
	}
	return err
}

type plannedRequest struct {
	req   *protocol.Request
	asked *asked
}

// plan decides what to ask of each thread the peer offered: for a thread
// the node holds, the ranges its vector lacks, the peer's heads it lacks
// and the missing parents of its held events; for a thread it does not
// hold, everything, on probation, and only up to maxProbationThreads.
func (nn *network) plan(ctx context.Context, vecs *protocol.Vectors, mine map[protocol.ThreadID]*protocol.LocalThread) (map[protocol.ThreadID]plannedRequest, error) {
	out := map[protocol.ThreadID]plannedRequest{}
	probation := 0
	err := nn.n.do(ctx, false, func(w *work) error {
		for _, tv := range vecs.Threads {
			lt, known := mine[tv.Thread]
			var have protocol.VersionVector
			if known {
				have = lt.VV
			} else {
				if probation >= maxProbationThreads {
					continue
				}
			}
			r := &protocol.Request{Thread: tv.Thread, Ranges: have.Missing(tv.VV)}
			if known {
				ids := map[protocol.EventID]bool{}
				for _, h := range tv.Heads {
					if ok, _ := nn.n.store.Has(tv.Thread, h); !ok {
						ids[h] = true
					}
				}
				for parent := range nn.n.heldWaiters[tv.Thread] {
					if len(ids) >= protocol.MaxSyncIDs {
						break
					}
					ids[parent] = true
				}
				for id := range ids {
					r.IDs = append(r.IDs, id)
				}
				slices.SortFunc(r.IDs, func(a, b protocol.EventID) int { return a.Compare(b) })
				if len(r.IDs) > protocol.MaxSyncIDs {
					r.IDs = r.IDs[:protocol.MaxSyncIDs]
				}
			}
			if len(r.Ranges) == 0 && len(r.IDs) == 0 {
				continue
			}
			if !known {
				probation++
			}
			out[tv.Thread] = plannedRequest{req: r, asked: &asked{ranges: r.Ranges, byID: len(r.IDs) > 0, probation: !known}}
		}
		return nil
	})
	return out, err
}

// transfer is the initiator's side of the batches of one sync.
type transfer struct {
	nn             *network
	p              peer.ID
	asked          map[protocol.ThreadID]*asked
	probationBytes int
}

// take checks a batch against what was asked and ingests it. A batch for
// a thread not asked for, or with events outside what was asked, is
// refused whole and the peer charged: an honest peer sends exactly what
// it is asked.
func (tr *transfer) take(ctx context.Context, b *protocol.Batch) (accepted, held int, err error) {
	nn := tr.nn
	a := tr.asked[b.Thread]
	if a == nil {
		nn.penalize(tr.p, penaltyUnasked, "sync: a batch for a thread not asked for")
		return 0, 0, fmt.Errorf("%w: a batch for thread %s, not asked for", protocol.ErrSyncUnexpected, b.Thread)
	}
	if a.probation {
		for _, ev := range b.Events {
			tr.probationBytes += len(ev)
		}
		if tr.probationBytes > maxProbationBytes {
			nn.penalize(tr.p, penaltyIrrelevant, "sync: too much of threads none of our users is in")
			return 0, 0, fmt.Errorf("%w: more than %d bytes of threads not shown to concern this node", protocol.ErrSyncUnexpected, maxProbationBytes)
		}
	}
	ir, err := nn.n.ingest(ctx, b.Events, ingestOptions{from: tr.p, filter: func(ev *protocol.Event) error {
		if ev.ThreadID() != b.Thread || !a.covers(ev) {
			return errUnasked
		}
		return nil
	}})
	if err != nil {
		return ir.Accepted, ir.Held, err
	}
	if ir.Unasked > 0 {
		nn.penalize(tr.p, penaltyUnasked, fmt.Sprintf("sync: %d events not asked for", ir.Unasked))
		return ir.Accepted, ir.Held, fmt.Errorf("%w: %d events not asked for", protocol.ErrSyncUnexpected, ir.Unasked)
	}
	if a.probation {
		rel, err := nn.relevant(ctx, b.Thread)
		if err != nil {
			return ir.Accepted, ir.Held, err
		}
		if rel {
			a.probation = false
		}
	}
	return ir.Accepted, ir.Held, nil
}

// settle drops what remains on probation when the sync ends: threads that
// came by this sync and that none of the node's interests is in.
func (tr *transfer) settle(ctx context.Context) {
	for t, a := range tr.asked {
		if !a.probation {
			continue
		}
		rel, err := tr.nn.relevant(ctx, t)
		if err != nil || rel {
			continue
		}
		dropped, err := tr.nn.n.purgeThread(ctx, t)
		if err != nil {
			tr.nn.log.Warn("dropping a thread that concerns no local user", "thread", t, "err", err)
			continue
		}
		if dropped {
			tr.nn.penalize(tr.p, penaltyIrrelevant, "sync: a thread none of our users is in")
		}
	}
}

// stillWanting reports whether a thread of this sync still has held
// events waiting for parents: another round may bring them, since an
// event asked for by ID comes with only part of its past.
func (tr *transfer) stillWanting(ctx context.Context) bool {
	want := false
	_ = tr.nn.n.do(ctx, false, func(w *work) error {
		for t := range tr.asked {
			if len(tr.nn.n.heldWaiters[t]) > 0 {
				want = true
			}
		}
		return nil
	})
	return want
}

// relevant reports whether the node replicates thread t: one of its local
// users, or of the users it serves, is a member.
func (nn *network) relevant(ctx context.Context, t protocol.ThreadID) (bool, error) {
	users := nn.interests()
	rel := false
	err := nn.n.do(ctx, false, func(w *work) error {
		if ts := nn.n.threads[t]; ts != nil {
			rel = slices.ContainsFunc(users, ts.Current.IsUser)
		}
		return nil
	})
	return rel, err
}

// handleSync answers a peer's sync.
func (nn *network) handleSync(s p2pnet.Stream) {
	defer s.Close()
	ctx, cancel := context.WithTimeout(nn.ctx, 10*time.Minute)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := nn.serveSync(ctx, s); err != nil && ctx.Err() == nil {
		nn.log.Debug("serving sync", "remote", s.Conn().RemotePeer(), "err", err)
	}
}

// maxByIDWalk bounds the events one Request's IDs bring.
const maxByIDWalk = 1024

// eventsByID answers the IDs of a request: each event asked for and those
// of its ancestors that the requester's ranges show it lacks, walking the
// writer's own chain of an event asked for whatever the ranges say (a
// version of a sequence number the requester already has is what IDs are
// for), in linear order (a causal order). Unknown IDs are skipped.
func (nn *network) eventsByID(ctx context.Context, r *protocol.Request) ([][]byte, error) {
	lacksFrom := map[crypto.UserID]uint64{} // writer -> first sequence number the requester lacks
	for _, rg := range r.Ranges {
		lacksFrom[rg.Writer] = rg.From
	}
	var ts *protocol.ThreadState
	_ = nn.n.do(ctx, false, func(w *work) error { ts = nn.n.threads[r.Thread]; return nil })
	if ts == nil {
		return nil, nil
	}
	asked := map[protocol.EventID]bool{}
	near := map[protocol.EventID]bool{} // parents of what was asked: sent whatever the ranges say
	chains := map[crypto.UserID]bool{}
	type found struct {
		o   protocol.Order
		enc []byte
	}
	var out []found
	seen := map[protocol.EventID]bool{}
	queue := slices.Clone(r.IDs)
	for _, id := range r.IDs {
		asked[id] = true
	}
	for len(queue) > 0 && len(out) < maxByIDWalk {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		m, err := nn.n.store.Meta(r.Thread, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if asked[id] {
			if from, ok := lacksFrom[m.Writer]; ok && m.Seq >= from {
				continue // the ranges bring it, with its past
			}
			// The requester's vector says it has this writer's number:
			// it holds another version. Walk this version's chain.
			chains[m.Writer] = true
		} else if !near[id] && !chains[m.Writer] && !ts.IsForked(m.Writer, m.Seq) {
			if from, ok := lacksFrom[m.Writer]; !ok || m.Seq < from {
				continue // the requester has it (and its past)
			}
		}
		ev, err := nn.n.store.Event(r.Thread, id)
		if err != nil {
			return nil, err
		}
		out = append(out, found{o: m.Order(), enc: ev.Encode(nil)})
		queue = append(queue, ev.Parents...)
		if asked[id] {
			// A parent may be a version of a number the requester holds in
			// another version: the ranges cannot show it.
			for _, p := range ev.Parents {
				near[p] = true
			}
		}
	}
	slices.SortFunc(out, func(a, b found) int { return a.o.Compare(b.o) })
	encs := make([][]byte, len(out))
	for i := range out {
		encs[i] = out[i].enc
	}
	return encs, nil
}

func (nn *network) serveSync(ctx context.Context, s p2pnet.Stream) error {
	if p := s.Conn().RemotePeer(); nn.distrusted(p) {
		_ = protocol.WriteSyncMsg(s, &protocol.SyncError{Code: protocol.SyncErrBusy, Message: "not syncing with a misbehaving peer"})
		return errDistrusted
	}
	br := bufio.NewReader(s)
	s.SetDeadline(time.Now().Add(syncIdle))
	msg, err := protocol.ReadSyncMsg(br, 0)
	if err != nil {
		return err
	}
	hello, ok := msg.(*protocol.Hello)
	if !ok {
		return fmt.Errorf("%w: %T instead of Hello", protocol.ErrSyncUnexpected, msg)
	}
	if err := hello.CheckVersion(); err != nil {
		_ = protocol.WriteSyncMsg(s, &protocol.SyncError{Code: protocol.SyncErrVersion, Message: err.Error()})
		return err
	}
	local, err := nn.localThreads(ctx)
	if err != nil {
		_ = protocol.WriteSyncMsg(s, &protocol.SyncError{Code: protocol.SyncErrInternal, Message: "node closing"})
		return err
	}
	offer := protocol.Offer(hello, local)
	if err := protocol.WriteSyncMsg(s, &protocol.Vectors{Threads: offer}); err != nil {
		return err
	}
	offered := make(map[protocol.ThreadID]bool, len(offer))
	for _, tv := range offer {
		offered[tv.Thread] = true
	}
	var reqs []*protocol.Request
	for {
		msg, err := protocol.ReadSyncMsg(br, 0)
		if err != nil {
			return err
		}
		if _, done := msg.(*protocol.Done); done {
			break
		}
		r, ok := msg.(*protocol.Request)
		if !ok {
			return fmt.Errorf("%w: %T instead of Request", protocol.ErrSyncUnexpected, msg)
		}
		if !offered[r.Thread] || len(reqs) >= len(offer) {
			return fmt.Errorf("%w: request for a thread not offered", protocol.ErrSyncUnexpected)
		}
		reqs = append(reqs, r)
	}
	credit := syncWindow
	send := func(b *protocol.Batch) error {
		for credit == 0 {
			s.SetDeadline(time.Now().Add(syncIdle))
			msg, err := protocol.ReadSyncMsg(br, 0)
			if err != nil {
				return err
			}
			c, ok := msg.(*protocol.Credit)
			if !ok {
				return fmt.Errorf("%w: %T instead of Credit", protocol.ErrSyncUnexpected, msg)
			}
			credit += int(c.N)
		}
		credit--
		s.SetDeadline(time.Now().Add(syncIdle))
		return protocol.WriteSyncMsg(s, b)
	}
	for _, r := range reqs {
		b := &protocol.Batch{Thread: r.Thread}
		size := 0
		err := nn.n.store.EventsInRanges(r.Thread, r.Ranges, func(ev *protocol.Event) (bool, error) {
			enc := ev.Encode(nil)
			if len(b.Events) >= syncBatchEvents || (size+len(enc) > syncBatchBytes && len(b.Events) > 0) {
				if err := send(b); err != nil {
					return false, err
				}
				b = &protocol.Batch{Thread: r.Thread}
				size = 0
			}
			b.Events = append(b.Events, enc)
			size += len(enc)
			return true, ctx.Err()
		})
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if len(r.IDs) > 0 {
			evs, err := nn.eventsByID(ctx, r)
			if err != nil {
				return err
			}
			for _, enc := range evs {
				if len(b.Events) >= syncBatchEvents || (size+len(enc) > syncBatchBytes && len(b.Events) > 0) {
					if err := send(b); err != nil {
						return err
					}
					b = &protocol.Batch{Thread: r.Thread}
					size = 0
				}
				b.Events = append(b.Events, enc)
				size += len(enc)
			}
		}
		b.Last = true
		if err := send(b); err != nil {
			return err
		}
	}
	if err := protocol.WriteSyncMsg(s, &protocol.Done{}); err != nil {
		return err
	}
	// Let the peer finish before closing: it still sends credits for the
	// last batches, and closing the read side now would reset its writes
	// (QUIC's STOP_SENDING) while it stores them.
	_ = s.CloseWrite()
	s.SetReadDeadline(time.Now().Add(syncDrain))
	_, _ = io.Copy(io.Discard, br)
	if hello.Reciprocate {
		nn.requestSync(s.Conn().RemotePeer())
	}
	return nil
}
