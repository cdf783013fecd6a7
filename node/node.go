// Package node is the running weft node: the Go API that applications
// embed. A Node owns one home directory (its Badger store and its keystore),
// hosts zero or more local user identities, and offers PrivMX-style threads
// and messages to them: create, update, delete, get and list threads; send,
// get, list, update and delete messages; and a stream of events.
//
// With Config.Network set the node also runs a libp2p host and replicates
// (net.go, gossip.go, sync.go): one GossipSub topic per thread whose
// validator applies the protocol rules before anything is stored or
// forwarded, an inbox topic per user for new threads, anti-entropy sync
// (/weft/sync/1.0.0) on connect, periodically and on gaps, an optional
// bridge role, mDNS and remembered peers. Without it the node is a local
// store with the same API.
//
// An event whose parents have not arrived is held (at most
// MaxHeldPerWriter per writer and thread; from gossip only if its writer is
// known to the thread) and applied as soon as they land; anything else is
// left to sync, which brings events with their past. A deleted thread
// keeps a tombstone (its events without content) so that replicas that
// missed the deletion converge.
//
// One goroutine (the loop) owns all mutable state: the thread states, the
// unwrapped thread keys and the subscriptions. Public methods hand it work
// and wait. The loop commits the writes of all requests that are waiting at
// once in one transaction and one fsync (group commit), so a node's own
// events are durable before the call that made them returns, without paying
// one fsync per call.
package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// Config configures a node.
type Config struct {
	// Home is the node's directory: its store and keystore live there.
	Home string
	// Passphrase seals the keystore. Required unless Unencrypted is set.
	Passphrase []byte
	// Unencrypted keeps user keys unencrypted on disk (headless nodes that
	// must start without a person; the keystore relies on file mode 0600).
	Unencrypted bool
	// Limits bound message data and metadata (default protocol.DefaultLimits).
	Limits protocol.Limits
	// Logger receives the node's logs (default: discarded).
	Logger *slog.Logger
	// Now is the clock used for event times (default time.Now).
	Now func() time.Time
	// KDF overrides the keystore's Argon2id parameters (tests use cheap ones).
	KDF *crypto.KDFParams
	// Network starts a libp2p host that replicates the node's threads.
	// Nil keeps the node offline.
	Network *NetworkConfig
}

// Node is a running weft node. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *storage.Store
	net   *network // nil when offline
	reqs  chan *request
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

	// Owned by the loop goroutine.
	threads map[protocol.ThreadID]*protocol.ThreadState
	keys    map[crypto.UserID]map[protocol.ThreadID]protocol.KeyRing
	subs    map[*Subscription]struct{}
	// held are events waiting for their parents (or their thread).
	held map[protocol.ThreadID]map[protocol.EventID]*protocol.Event
	// heldWaiters lists, by missing parent, the held events waiting for it.
	heldWaiters map[protocol.ThreadID]map[protocol.EventID][]protocol.EventID
	heldCount   int
	heldBy      map[heldKey]int // held events by thread and writer
	heldFrom    map[peer.ID]int // held events by the peer they came from
	heldInfo    map[protocol.EventID]heldInfo
	// releaseWatch tells a gossip validator waiting on a held event that
	// it was released and committed (see network.judge).
	releaseWatch map[protocol.EventID]chan struct{}

	counters counters

	// Guarded by idMu: identities are read by callers, changed rarely.
	idMu       sync.RWMutex
	keystore   *crypto.Keystore
	identities map[crypto.UserID]*crypto.Identity
	devices    map[crypto.UserID]*protocol.Device // what each local user writes with here
}

const (
	storeDir     = "store"
	keystoreFile = "keystore.json"
	maxBatch     = 256
)

// New opens the node in cfg.Home, creating the home on first use.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Home == "" {
		return nil, fmt.Errorf("%w: Config.Home is required", ErrBadInput)
	}
	if cfg.Limits == (protocol.Limits{}) {
		cfg.Limits = protocol.DefaultLimits()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !cfg.Unencrypted && len(cfg.Passphrase) == 0 {
		return nil, fmt.Errorf("%w: a keystore passphrase is required (or set Unencrypted for a headless node)", ErrBadInput)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("creating home: %w", err)
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger,
		reqs:       make(chan *request),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		keys:       map[crypto.UserID]map[protocol.ThreadID]protocol.KeyRing{},
		subs:       map[*Subscription]struct{}{},
		identities: map[crypto.UserID]*crypto.Identity{},
	}
	if err := n.loadKeystore(); err != nil {
		return nil, err
	}
	if err := n.loadDevices(); err != nil {
		return nil, err
	}
	st, err := storage.Open(filepath.Join(cfg.Home, storeDir), storage.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	n.store = st
	// Spools of backups cut short by a crash (the store's lock, now held,
	// says no other process is using them).
	if spools, _ := filepath.Glob(filepath.Join(cfg.Home, ".backup-*")); len(spools) > 0 {
		for _, f := range spools {
			os.Remove(f)
		}
	}
	if err := n.loadThreads(); err != nil {
		st.Close()
		return nil, err
	}
	go n.loop()
	go n.expireHeldLoop()
	if cfg.Network != nil {
		if err := n.startNetwork(*cfg.Network); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// expireHeldLoop drops stale held events now and then.
func (n *Node) expireHeldLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-t.C:
			if err := n.expireHeld(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				n.log.Warn("expiring held events", "err", err)
			}
		}
	}
}

func (n *Node) loadThreads() error {
	threads, err := n.store.LoadThreads()
	if err != nil {
		return err
	}
	finished, err := n.store.FinishDeletions(threads)
	if err != nil {
		return err
	}
	for _, t := range finished {
		n.log.Info("finished pruning a deleted thread", "thread", t)
	}
	n.threads = threads
	held, err := n.store.AllHeld()
	if err != nil {
		return err
	}
	n.held = map[protocol.ThreadID]map[protocol.EventID]*protocol.Event{}
	n.heldWaiters = map[protocol.ThreadID]map[protocol.EventID][]protocol.EventID{}
	n.heldCount = 0
	n.heldBy = map[heldKey]int{}
	n.heldFrom = map[peer.ID]int{}
	n.heldInfo = map[protocol.EventID]heldInfo{}
	n.releaseWatch = map[protocol.EventID]chan struct{}{}
	for t, evs := range held {
		for _, ev := range evs {
			n.addHeld(t, ev, "") // held since this start, for HeldTTL
			n.noteWants(t, ev, func(p protocol.EventID) bool {
				known, _ := n.store.Has(t, p)
				return known
			})
		}
	}
	n.keys = map[crypto.UserID]map[protocol.ThreadID]protocol.KeyRing{}
	n.idMu.RLock()
	defer n.idMu.RUnlock()
	for _, id := range n.identities {
		for _, ts := range threads {
			n.unwrapAll(id, ts)
		}
	}
	n.log.Info("node opened", "home", n.cfg.Home, "threads", len(threads), "identities", len(n.identities))
	return nil
}

// unwrapAll gives id every key of ts wrapped to it.
func (n *Node) unwrapAll(id *crypto.Identity, ts *protocol.ThreadState) {
	for i := range ts.Controls {
		n.unwrapFrom(id, ts.ID, ts.Controls[i].Event)
	}
}

func (n *Node) unwrapFrom(id *crypto.Identity, t protocol.ThreadID, ev *protocol.Event) {
	if len(ev.Control.Keys) == 0 {
		return
	}
	u := id.UserID()
	byThread := n.keys[u]
	if byThread == nil {
		byThread = map[protocol.ThreadID]protocol.KeyRing{}
		n.keys[u] = byThread
	}
	ring := byThread[t]
	if ring == nil {
		ring = protocol.KeyRing{}
	}
	added, err := protocol.UnwrapKeys(ring, ev, id)
	if err != nil {
		n.log.Warn("a key wrapped to a local user does not open", "thread", t, "user", u, "err", err)
	}
	if added > 0 || len(ring) > 0 {
		byThread[t] = ring
	}
}

// Close stops the node and closes its store; pending calls fail with
// ErrClosed. It is safe to call more than once.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		if n.net != nil {
			n.net.close()
		}
		close(n.quit)
		<-n.done
		err = n.store.Close()
		n.log.Info("node closed", "home", n.cfg.Home)
	})
	return err
}

// Store gives tests and tools access to the node's store.
func (n *Node) Store() *storage.Store { return n.store }

// Limits returns the node's size limits.
func (n *Node) Limits() protocol.Limits { return n.cfg.Limits }

func (n *Node) now() int64 { return n.cfg.Now().UnixMilli() }

// request is work for the loop. fn runs on the loop goroutine; writes go to
// w.tx, which is committed (and synced) before done is signalled.
type request struct {
	ctx   context.Context
	write bool
	// durable: the caller needs the write on disk when done is signalled
	// (a node's own events); foreign events can be fetched again.
	durable bool
	// lamport orders the foreign events of one batch (0 for other
	// requests): gossip validates concurrently, so a child is often
	// submitted just before its parent, and applying the batch in Lamport
	// order spares holding it.
	lamport uint64
	fn      func(w *work) error
	err     error
	done    chan struct{}
}

// work is what a request's fn sees.
type work struct {
	n     *Node
	tx    *storage.Txn
	emits []emission
	// local: the request writes the node's own events, which are gossiped
	// once committed.
	local     bool
	published []*protocol.Event
	controls  bool               // a control event was stored: topics may change
	news      bool               // a local control event: peers should pull from us
	released  []protocol.EventID // held events accepted (see releaseWatch)
	gossip    bool               // ingesting from gossip: hold only known writers' events
	rematFrom []rematAt          // the visible state changed there (a fork, a removal): recompute it
	from      peer.ID            // the peer foreign events came from (empty: the Go API)
	void      bool               // the message event just stored changed nothing visible
}

// do runs fn on the loop and waits for it (and, for writes, the commit,
// synced to disk).
func (n *Node) do(ctx context.Context, write bool, fn func(w *work) error) error {
	return n.submit(&request{ctx: ctx, write: write, durable: write, fn: fn, done: make(chan struct{})})
}

func (n *Node) submit(r *request) error {
	select {
	case n.reqs <- r:
	case <-n.quit:
		return ErrClosed
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	// Once handed over, the request runs to completion: a write the loop
	// has accepted is either committed or reported failed, never dropped.
	<-r.done
	return r.err
}

func (n *Node) loop() {
	defer close(n.done)
	defer n.closeSubscriptions()
	for {
		var first *request
		select {
		case first = <-n.reqs:
		case <-n.quit:
			return
		}
		batch := []*request{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-n.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		n.runBatch(batch)
	}
}

func (n *Node) runBatch(batch []*request) {
	var reads, writes []*request
	for _, r := range batch {
		if r.write {
			writes = append(writes, r)
		} else {
			reads = append(reads, r)
		}
	}
	for _, r := range reads {
		w := &work{n: n}
		r.err = n.guard(r, w)
		close(r.done)
	}
	if len(writes) == 0 {
		return
	}
	var emits []emission
	var published []*protocol.Event
	var released []protocol.EventID
	controls, news := false, false
	slices.SortStableFunc(writes, func(a, b *request) int { return cmp.Compare(a.lamport, b.lamport) })
	durable := false
	for _, r := range writes {
		durable = durable || r.durable
	}
	commitErr := n.store.Update(durable, func(tx *storage.Txn) error {
		for _, r := range writes {
			w := &work{n: n, tx: tx, local: r.durable}
			r.err = n.guard(r, w)
			if r.err == nil {
				emits = append(emits, w.emits...)
				published = append(published, w.published...)
				released = append(released, w.released...)
				controls = controls || w.controls
				news = news || w.news
			} else if errors.Is(r.err, errStorage) {
				return r.err
			}
		}
		return nil
	})
	if commitErr != nil {
		n.log.Error("commit failed; reloading state from the store", "err", commitErr)
		for _, r := range writes {
			if r.err == nil {
				r.err = fmt.Errorf("commit failed: %w", commitErr)
			}
		}
		if err := n.loadThreads(); err != nil {
			n.log.Error("reloading state failed", "err", err)
		}
		emits, published, released = nil, nil, nil
	}
	for _, id := range released {
		if ch, ok := n.releaseWatch[id]; ok {
			close(ch)
			delete(n.releaseWatch, id)
		}
	}
	if n.net != nil {
		for _, ev := range published {
			n.net.publish(ev)
		}
		if controls {
			n.net.requestRefresh()
		}
		if news {
			n.net.announce()
		}
	}
	for _, r := range writes {
		close(r.done)
	}
	for _, e := range emits {
		n.deliver(e)
	}
}

// errStorage marks an error that left the current transaction unusable.
var errStorage = errors.New("storage error")

func (n *Node) guard(r *request, w *work) (err error) {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("panic in node request", "panic", p)
			err = fmt.Errorf("%w: internal error: %v", errStorage, p)
		}
	}()
	return r.fn(w)
}

func (n *Node) ctxBackground() context.Context { return context.Background() }

// Home returns the node's home directory.
func (n *Node) Home() string { return n.cfg.Home }
