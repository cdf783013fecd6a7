package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

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
						nn.log.Info("synced", "remote", p, "threads", res.Threads, "events", res.Events, "accepted", res.Accepted)
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
			out = append(out, protocol.LocalThread{ID: id, VV: ts.VersionVector(), Members: append(ts.Current.Users[:0:0], ts.Current.Users...)})
		}
		return nil
	})
	return out, err
}

func (nn *network) syncWith(ctx context.Context, p peer.ID, news bool) (SyncResult, error) {
	var res SyncResult
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
	mine := make(map[protocol.ThreadID]protocol.VersionVector, len(local))
	for _, lt := range local {
		mine[lt.ID] = lt.VV
	}
	s.SetDeadline(time.Now().Add(syncIdle))
	hello := protocol.NewHello(nn.interests(), mine)
	hello.Reciprocate = news
	if err := protocol.WriteSyncMsg(s, hello); err != nil {
		return res, err
	}
	msg, err := protocol.ReadSyncMsg(br, 0)
	if err != nil {
		return res, err
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
		return res, fmt.Errorf("%w: %T instead of Vectors", protocol.ErrSyncUnexpected, msg)
	}
	for _, tv := range vecs.Threads {
		missing := mine[tv.Thread].Missing(tv.VV)
		if len(missing) == 0 {
			continue
		}
		res.Threads++
		if err := protocol.WriteSyncMsg(s, &protocol.Request{Thread: tv.Thread, Ranges: missing}); err != nil {
			return res, err
		}
	}
	if err := protocol.WriteSyncMsg(s, &protocol.Done{}); err != nil {
		return res, err
	}
	for {
		s.SetDeadline(time.Now().Add(syncIdle))
		msg, err := protocol.ReadSyncMsg(br, 0)
		if err != nil {
			return res, err
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
			ir, err := nn.n.Ingest(ctx, m.Events)
			if err != nil {
				return res, err
			}
			res.Accepted += ir.Accepted
			if werr != nil {
				return res, werr
			}
		case *protocol.Done:
			nn.n.counters.lastSync.Store(time.Now().UnixNano())
			return res, nil
		case *protocol.SyncError:
			return res, m
		default:
			return res, fmt.Errorf("%w: %T during transfer", protocol.ErrSyncUnexpected, msg)
		}
	}
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

func (nn *network) serveSync(ctx context.Context, s p2pnet.Stream) error {
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
