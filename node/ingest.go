package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// MaxHeld bounds the events a node holds for missing parents; beyond it new
// ones are refused (they will come again through sync).
const MaxHeld = 100_000

// IngestResult counts what happened to ingested events.
type IngestResult struct {
	Accepted   int
	Duplicates int
	Held       int // held for missing parents
	Released   int // accepted after being held (also counted in Accepted)
	Rejected   int
	// Deferred counts events that would have been held but are left for
	// sync to bring again with their past, so that no peer can fill the
	// hold queue: from gossip, those of a writer the thread does not know
	// (or of an unknown thread); from anywhere, those past
	// MaxHeldPerWriter for their writer and thread.
	Deferred int
	// Void counts accepted message events that change nothing visible (a
	// post by a writer removed before it, an edit of a deleted message):
	// they are stored for other replicas, without content for posts, and
	// not forwarded by gossip, so writing them earns no gossip credit.
	Void int
	// Unasked counts events refused because they were not what a sync
	// asked for (see ingestOptions.filter); they are not judged.
	Unasked int
	// Errors holds the rule broken by each rejected event (up to 16).
	Errors []error
	all    []error
}

func (r *IngestResult) reject(err error) {
	r.Rejected++
	r.all = append(r.all, err)
	if len(r.Errors) < 16 {
		r.Errors = append(r.Errors, err)
	}
}

// Ingest validates and stores events written elsewhere (by other replicas),
// as a replica does: malformed, badly signed or invalid events are
// rejected and change nothing; duplicates are ignored; events whose parents
// are missing are held until they arrive. Events are decoded and their
// signatures checked on all cores, one chunk ahead of the node's loop,
// which stores each chunk in one batch.
func (n *Node) Ingest(ctx context.Context, raw [][]byte) (IngestResult, error) {
	return n.ingest(ctx, raw, ingestOptions{})
}

// ingestOptions say where ingested events come from.
type ingestOptions struct {
	// from is the peer that sent them (empty: the Go API).
	from peer.ID
	// filter, if set, refuses decoded events (with errUnasked) before
	// their signatures are checked.
	filter func(*protocol.Event) error
}

// errUnasked marks an event a sync did not ask for.
var errUnasked = errors.New("not asked for")

func (n *Node) ingest(ctx context.Context, raw [][]byte, opt ingestOptions) (IngestResult, error) {
	const chunkSize = 128
	type checked struct {
		good    []*protocol.Event
		errs    []error
		known   int
		unasked int
	}
	chunks := make(chan checked, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for start := 0; start < len(raw); start += chunkSize {
			part := raw[start:min(start+chunkSize, len(raw))]
			evs, errs := n.checkAll(part, opt.filter)
			c := checked{}
			for i, err := range errs {
				if errors.Is(err, errKnown) {
					c.known++
				} else if errors.Is(err, errUnasked) {
					c.unasked++
				} else if err != nil {
					c.errs = append(c.errs, err)
				} else {
					c.good = append(c.good, evs[i])
				}
			}
			select {
			case chunks <- c:
			case <-stop:
				return
			}
		}
	}()
	var res IngestResult
	for c := range chunks {
		for _, err := range c.errs {
			res.reject(err)
			n.counters.reject(err)
		}
		res.all = nil
		res.Duplicates += c.known
		res.Unasked += c.unasked
		if len(c.good) == 0 {
			continue
		}
		part, err := n.ingestChecked(ctx, c.good, opt.from)
		if err != nil {
			return res, err
		}
		res.Accepted += part.Accepted
		res.Duplicates += part.Duplicates
		res.Held += part.Held
		res.Deferred += part.Deferred
		res.Released += part.Released
		res.Rejected += part.Rejected
		res.Void += part.Void
		for _, e := range part.Errors {
			if len(res.Errors) < 16 {
				res.Errors = append(res.Errors, e)
			}
		}
	}
	return res, nil
}

// ingestChecked stores events that passed CheckEvent, in one batch. It is
// not synced: a foreign event lost in a crash is fetched again from the
// replicas that have it.
func (n *Node) ingestChecked(ctx context.Context, evs []*protocol.Event, from peer.ID) (IngestResult, error) {
	var part IngestResult
	var lamport uint64
	for _, ev := range evs {
		lamport = max(lamport, ev.Lamport)
	}
	err := n.submit(&request{ctx: ctx, write: true, lamport: lamport, done: make(chan struct{}), fn: func(w *work) error {
		part = IngestResult{}
		w.from = from
		for _, ev := range evs {
			if err := w.ingest(ev, &part); err != nil {
				return err
			}
		}
		return nil
	}})
	if err == nil {
		n.count(&part)
	}
	return part, err
}

// count adds an ingest's outcome to the node's counters.
func (n *Node) count(res *IngestResult) {
	n.counters.stored.Add(uint64(res.Accepted))
	for _, e := range res.all {
		n.counters.reject(e)
	}
	res.all = nil
}

// ingestGossip ingests one event checked by a gossip validator. If the
// event is held, released is closed once it is accepted and committed
// (forget must be called if the caller stops waiting first).
func (n *Node) ingestGossip(ctx context.Context, ev *protocol.Event) (res IngestResult, released <-chan struct{}, err error) {
	id := ev.ID()
	err = n.submit(&request{ctx: ctx, write: true, lamport: ev.Lamport, done: make(chan struct{}), fn: func(w *work) error {
		res = IngestResult{}
		w.gossip = true
		defer func() { w.gossip = false }()
		if err := w.ingest(ev, &res); err != nil {
			return err
		}
		if _, held := n.held[ev.ThreadID()][id]; held {
			ch := make(chan struct{})
			n.releaseWatch[id] = ch
			released = ch
		}
		return nil
	}})
	if err == nil {
		n.count(&res)
	}
	return res, released, err
}

// forgetRelease drops the watch on a held event.
func (n *Node) forgetRelease(ctx context.Context, id protocol.EventID) {
	_ = n.do(ctx, false, func(*work) error {
		delete(n.releaseWatch, id)
		return nil
	})
}

// errKnown marks an event that is already stored.
var errKnown = errors.New("already stored")

// checkAll decodes raw events and applies the stateless rules (shape,
// limits, signature) on all cores.
func (n *Node) checkAll(raw [][]byte, filter func(*protocol.Event) error) ([]*protocol.Event, []error) {
	evs := make([]*protocol.Event, len(raw))
	errs := make([]error, len(raw))
	workers := min(runtime.GOMAXPROCS(0), (len(raw)+31)/32)
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := k; i < len(raw); i += workers {
				ev, err := protocol.Decode(raw[i])
				if err == nil && filter != nil {
					if ferr := filter(ev); ferr != nil {
						evs[i], errs[i] = ev, ferr
						continue
					}
				}
				if err == nil {
					// An event already stored needs no signature check
					// (syncs often bring what gossip already did).
					if known, _ := n.store.Has(ev.ThreadID(), ev.ID()); known {
						evs[i], errs[i] = ev, errKnown
						continue
					}
					err = protocol.CheckEvent(ev, n.cfg.Limits)
				}
				evs[i], errs[i] = ev, err
			}
		}(k)
	}
	wg.Wait()
	return evs, errs
}

// ingest judges one checked foreign event and stores, holds or rejects it.
// It returns an error only for storage failures.
func (w *work) ingest(ev *protocol.Event, res *IngestResult) error {
	n := w.n
	t := ev.ThreadID()
	ts := n.threads[t]
	if ev.Kind == protocol.KindThreadCreate {
		if ts != nil {
			res.Duplicates++
			return nil
		}
		ts, meta, err := protocol.NewThreadState(ev)
		if err != nil {
			res.reject(err)
			return nil
		}
		if err := w.storeApplied(ts, ev, &meta, nil); err != nil {
			return err
		}
		n.threads[t] = ts
		res.Accepted++
		return w.release(ts, res, ev.ID(), true)
	}
	if ts == nil {
		return w.hold(t, ev, res, protocol.ErrUnknownThread)
	}
	// A deleted thread still takes events whose causal past does not hold
	// the deletion (they were written concurrently with it); they are
	// stored pruned, so every replica ends with the same tombstone. The
	// rules refuse the others (ErrThreadDeleted).
	known, err := w.tx.Has(t, ev.ID())
	if err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	if known {
		res.Duplicates++
		return nil
	}
	_, err = w.accept(ts, ev)
	switch {
	case err == nil:
		res.Accepted++
		if w.void {
			res.Void++
		}
		if n.dropHeld(t, ev.ID()) {
			w.released = append(w.released, ev.ID())
			if err := w.tx.Unhold(t, ev.ID()); err != nil {
				return fmt.Errorf("%w: %w", errStorage, err)
			}
		}
		return w.release(ts, res, ev.ID(), false)
	case errors.Is(err, errStorage):
		return err
	case protocol.IsHold(err):
		return w.hold(t, ev, res, err)
	}
	res.reject(err)
	return nil
}

func (w *work) hold(t protocol.ThreadID, ev *protocol.Event, res *IngestResult, why error) error {
	n := w.n
	// Holding is a favour to events that are early, never a place anyone
	// can fill: events from the network of a thread the node does not
	// have (sync brings a thread from its creation), gossip from writers the thread does not
	// know, and anything past the bounds per writer, thread, peer and in
	// all are left to sync, which brings them again with their past if
	// they are valid. They are not rejected: an honest peer may forward
	// an event just before its parent, and must not be penalised for it.
	if (n.threads[t] == nil && (w.gossip || w.from != "")) ||
		(w.gossip && !knownWriter(n.threads[t], ev.Writer)) ||
		n.heldBy[heldKey{t, ev.Writer}] >= MaxHeldPerWriter ||
		len(n.held[t]) >= MaxHeldPerThread ||
		(w.from != "" && n.heldFrom[w.from] >= MaxHeldPerPeer) ||
		n.heldCount >= MaxHeld {
		res.Deferred++
		return nil
	}
	if n.held[t] == nil {
		n.held[t] = map[protocol.EventID]*protocol.Event{}
	}
	if _, dup := n.held[t][ev.ID()]; dup {
		res.Duplicates++
		return nil
	}
	if ts := n.threads[t]; ts != nil && ts.Current.Deleted {
		ev = ev.Pruned() // a deleted thread's events are kept without content
	}
	if err := w.tx.Hold(t, ev); err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	n.addHeld(t, ev, w.from)
	n.noteWants(t, ev, func(p protocol.EventID) bool {
		known, _ := w.tx.Has(t, p)
		return known
	})
	res.Held++
	return nil
}

// Bounds on held events: of one writer in one thread, of one thread, and
// from one peer. Past them, early events are left to sync. A held event
// whose parents have not come after HeldTTL is dropped (sync brings it
// again if it is valid).
const (
	MaxHeldPerWriter = 1024
	MaxHeldPerThread = 4096
	MaxHeldPerPeer   = 4096
	HeldTTL          = 10 * time.Minute
)

type heldKey struct {
	thread protocol.ThreadID
	writer crypto.UserID
}

// addHeld and dropHeld keep the held events and their counts in step.
func (n *Node) addHeld(t protocol.ThreadID, ev *protocol.Event, from peer.ID) {
	if n.held[t] == nil {
		n.held[t] = map[protocol.EventID]*protocol.Event{}
	}
	id := ev.ID()
	n.held[t][id] = ev
	n.heldCount++
	n.heldBy[heldKey{t, ev.Writer}]++
	n.heldInfo[id] = heldInfo{from: from, at: n.cfg.Now()}
	if from != "" {
		n.heldFrom[from]++
	}
}

// heldInfo is where a held event came from, and when.
type heldInfo struct {
	from peer.ID
	at   time.Time
}

func (n *Node) dropHeld(t protocol.ThreadID, id protocol.EventID) bool {
	ev, ok := n.held[t][id]
	if !ok {
		return false
	}
	delete(n.held[t], id)
	n.heldCount--
	k := heldKey{t, ev.Writer}
	if n.heldBy[k]--; n.heldBy[k] <= 0 {
		delete(n.heldBy, k)
	}
	if info, ok := n.heldInfo[id]; ok {
		delete(n.heldInfo, id)
		if info.from != "" {
			if n.heldFrom[info.from]--; n.heldFrom[info.from] <= 0 {
				delete(n.heldFrom, info.from)
			}
		}
	}
	return true
}

// expireHeld drops held events older than HeldTTL.
func (n *Node) expireHeld(ctx context.Context) error {
	return n.do(ctx, true, func(w *work) error {
		cutoff := n.cfg.Now().Add(-HeldTTL)
		for t, evs := range n.held {
			for id := range evs {
				if info, ok := n.heldInfo[id]; ok && info.at.After(cutoff) {
					continue
				}
				n.dropHeld(t, id)
				if err := w.tx.Unhold(t, id); err != nil {
					return fmt.Errorf("%w: %w", errStorage, err)
				}
			}
			if len(n.held[t]) == 0 {
				delete(n.held, t)
				delete(n.heldWaiters, t)
			}
		}
		return nil
	})
}

// dropThreadHeld forgets every held event of a thread (the store dropped
// them).
func (n *Node) dropThreadHeld(t protocol.ThreadID) {
	for id := range n.held[t] {
		n.dropHeld(t, id)
	}
	delete(n.held, t)
	delete(n.heldWaiters, t)
}

// knownWriter reports whether w has written in ts or is one of its users
// or managers now: only such writers' early events are held from gossip.
// Anyone can sign an event with made-up parents; an unknown writer's
// event that is valid after all comes again by sync, with its past.
func knownWriter(ts *protocol.ThreadState, w crypto.UserID) bool {
	if ts == nil {
		return false
	}
	if _, ok := ts.Tips[w]; ok {
		return true
	}
	return ts.Current.IsUser(w) || ts.Current.IsManager(w)
}

// noteWants records the parents a held event waits for, so that release
// retries it only when one of them arrives. Parents already stored are
// left out (stored reports them); a held event always waits for at least
// one parent, since a writer's previous event is always a parent.
func (n *Node) noteWants(t protocol.ThreadID, ev *protocol.Event, stored func(protocol.EventID) bool) {
	if n.heldWaiters[t] == nil {
		n.heldWaiters[t] = map[protocol.EventID][]protocol.EventID{}
	}
	id := ev.ID()
	for _, p := range ev.Parents {
		if !stored(p) {
			n.heldWaiters[t][p] = append(n.heldWaiters[t][p], id)
		}
	}
}

// release retries the held events of thread ts that wait for trigger (an
// event just accepted), then those that wait for what they release, and
// so on. With all set (a thread just arrived) it retries every held event
// of the thread.
func (w *work) release(ts *protocol.ThreadState, res *IngestResult, trigger protocol.EventID, all bool) error {
	n := w.n
	t := ts.ID
	if len(n.held[t]) == 0 {
		return nil
	}
	var todo []protocol.EventID
	if all {
		todo = slices.Collect(maps.Keys(n.held[t]))
	} else {
		todo = n.heldWaiters[t][trigger]
		delete(n.heldWaiters[t], trigger)
	}
	for len(todo) > 0 {
		id := todo[0]
		todo = todo[1:]
		ev, ok := n.held[t][id]
		if !ok {
			continue // released already
		}
		known, err := w.tx.Has(t, id)
		if err != nil {
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		var aerr error
		if !known {
			_, aerr = w.accept(ts, ev)
		}
		if errors.Is(aerr, errStorage) {
			return aerr
		}
		if protocol.IsHold(aerr) {
			continue // still waits, under its other missing parents
		}
		n.dropHeld(t, id) // (false if a deletion dropped them all)
		if err := w.tx.Unhold(t, id); err != nil {
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		switch {
		case known:
		case aerr == nil:
			res.Accepted++
			res.Released++
			w.released = append(w.released, id)
			todo = append(todo, n.heldWaiters[t][id]...)
			delete(n.heldWaiters[t], id)
		default:
			res.reject(aerr)
		}
	}
	if len(n.held[t]) == 0 {
		delete(n.heldWaiters, t)
	}
	return nil
}

// purgeThread forgets a thread entirely (store, state, held events, keys):
// one that came by sync and turned out to concern no local user. It
// reports whether there was anything to drop.
func (n *Node) purgeThread(ctx context.Context, t protocol.ThreadID) (bool, error) {
	dropped := false
	err := n.do(ctx, true, func(w *work) error {
		if _, ok := n.threads[t]; !ok && len(n.held[t]) == 0 {
			return nil
		}
		if err := w.tx.PurgeThread(t); err != nil {
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		delete(n.threads, t)
		n.dropThreadHeld(t)
		for _, byThread := range n.keys {
			delete(byThread, t)
		}
		w.controls = true
		dropped = true
		return nil
	})
	return dropped, err
}

// voidPost reports whether ev is a stored post that is void (see
// IngestResult.Void).
func (n *Node) voidPost(ev *protocol.Event) bool {
	if ev.Kind != protocol.KindMessagePost {
		return false
	}
	ms, err := n.store.Message(ev.ThreadID(), ev.ID())
	return err == nil && ms.Void
}
