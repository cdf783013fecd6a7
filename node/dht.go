package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/weftnet/weft/crypto"
)

// The weft DHT: go-libp2p-kad-dht under weft's own protocol prefix
// (/weft/kad/1.0.0, so it never mixes with IPFS's), storing only user
// records (/weft-user/...), no provider records. Nodes that are publicly
// reachable serve it; the others are clients (ModeAuto follows AutoNAT).

// DHTProtocolPrefix is the weft DHT's protocol prefix.
const DHTProtocolPrefix = "/weft"

const (
	// recordRepublish is how often a node re-signs and republishes its
	// users' records when nothing changed (well within userRecordTTL).
	recordRepublish = 20 * time.Minute
	// defaultLookupInterval is how often members already reached are
	// looked up again (to find their other nodes and moves).
	defaultLookupInterval = 10 * time.Minute
)

// userDHT publishes local users' records and looks up thread members.
type userDHT struct {
	nn  *network
	dht *kaddht.IpfsDHT
	log *slog.Logger

	wake chan struct{} // addresses or identities changed

	mu      sync.Mutex
	lastPub map[crypto.UserID]pubState
	members map[crypto.UserID]*memberState

	published, publishFailed, lookups, found atomic.Uint64
}

type pubState struct {
	at    time.Time
	addrs []string
}

// memberState is what the node knows of a thread member's nodes.
type memberState struct {
	peers    []peer.AddrInfo
	next     time.Time // next lookup
	backoff  time.Duration
	failures int
	up       bool // a listed node was connected at the last check
}

// startDHT brings up the DHT on the host.
func (nn *network) startDHT(bootstrap []peer.AddrInfo) error {
	mode := kaddht.ModeAuto
	switch nn.cfg.Reachability {
	case ReachabilityPublic:
		mode = kaddht.ModeServer
	case ReachabilityPrivate:
		mode = kaddht.ModeClient
	}
	d, err := kaddht.New(nn.host,
		kaddht.ProtocolPrefix(DHTProtocolPrefix),
		kaddht.Mode(mode),
		kaddht.NamespacedValidator(UserRecordNamespace, recordValidator{}),
		kaddht.DisableProviders(),
		kaddht.MaxRecordAge(userRecordTTL),
		kaddht.BootstrapPeers(bootstrap...),
	)
	if err != nil {
		return fmt.Errorf("starting the DHT: %w", err)
	}
	ud := &userDHT{
		nn: nn, dht: d, log: nn.log.With("part", "dht"), wake: make(chan struct{}, 1),
		lastPub: map[crypto.UserID]pubState{}, members: map[crypto.UserID]*memberState{},
	}
	nn.dht = ud
	if err := d.Bootstrap(nn.ctx); err != nil {
		ud.log.Warn("DHT bootstrap", "err", err)
	}
	for _, f := range []func(){ud.publisher, ud.memberLookups} {
		nn.wg.Add(1)
		go func() { defer nn.wg.Done(); f() }()
	}
	return nil
}

func (ud *userDHT) close() {
	if err := ud.dht.Close(); err != nil {
		ud.log.Debug("closing the DHT", "err", err)
	}
}

func (ud *userDHT) mode() string {
	if ud.dht.Mode() == kaddht.ModeServer {
		return "server"
	}
	return "client"
}

func (ud *userDHT) addrsChanged() {
	select {
	case ud.wake <- struct{}{}:
	default:
	}
}

// publisher keeps every local user's record current: at start, when the
// node's addresses change, and every recordRepublish.
func (ud *userDHT) publisher() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	failures := 0
	var retryAt time.Time
	for {
		select {
		case <-ud.nn.ctx.Done():
			return
		case <-ud.wake:
			// Let a burst of address changes settle.
			select {
			case <-time.After(2 * time.Second):
			case <-ud.nn.ctx.Done():
				return
			}
		case <-t.C:
		}
		if time.Now().Before(retryAt) || ud.dht.RoutingTable().Size() == 0 {
			continue
		}
		if err := ud.publishAll(false); err != nil {
			failures++
			retryAt = time.Now().Add(min(time.Duration(failures)*5*time.Second, time.Minute))
			ud.log.Debug("publishing user records", "err", err)
			continue
		}
		failures = 0
	}
}

// publishAll publishes the record of every local user whose record is
// due (force: all).
func (ud *userDHT) publishAll(force bool) error {
	addrs := publishableAddrs(ud.nn.host.Addrs())
	if len(addrs) == 0 {
		return errors.New("no addresses to publish")
	}
	var errs []error
	for _, info := range ud.nn.n.Identities() {
		u := info.UserID
		ud.mu.Lock()
		last, ok := ud.lastPub[u]
		ud.mu.Unlock()
		if !force && ok && slices.Equal(last.addrs, addrs) && time.Since(last.at) < recordRepublish {
			continue
		}
		if err := ud.publish(u, addrs); err != nil {
			ud.publishFailed.Add(1)
			errs = append(errs, fmt.Errorf("user %v: %w", u, err))
			continue
		}
		ud.published.Add(1)
		ud.mu.Lock()
		ud.lastPub[u] = pubState{at: time.Now(), addrs: addrs}
		ud.mu.Unlock()
		ud.log.Debug("published user record", "user", u, "addrs", addrs)
	}
	return errors.Join(errs...)
}

// publish merges this node into u's record (keeping u's other nodes),
// signs it with u's key and puts it into the DHT.
func (ud *userDHT) publish(u crypto.UserID, addrs []string) error {
	id, err := ud.nn.n.identity(u)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ud.nn.ctx, 30*time.Second)
	defer cancel()
	old, _ := ud.get(ctx, u) // none yet is fine
	now := time.Now()
	rec := mergeRecord(old, u, RecordNode{Peer: ud.nn.host.ID().String(), Addrs: addrs, Seen: now.Unix()}, now)
	b, err := signUserRecord(id, rec)
	if err != nil {
		return err
	}
	if err := ud.dht.PutValue(ctx, userRecordKey(u), b); err != nil {
		return fmt.Errorf("putting the record: %w", err)
	}
	return nil
}

// get looks u's record up in the DHT. The DHT has already checked it
// with recordValidator; it is parsed again here for its body.
func (ud *userDHT) get(ctx context.Context, u crypto.UserID) (*UserRecord, error) {
	b, err := ud.dht.GetValue(ctx, userRecordKey(u), routing.Expired)
	if err != nil {
		return nil, err
	}
	return parseUserRecord(userRecordKey(u), b, time.Now())
}

// lookup finds u's nodes and records them.
func (ud *userDHT) lookup(ctx context.Context, u crypto.UserID) ([]peer.AddrInfo, error) {
	ud.lookups.Add(1)
	rec, err := ud.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("looking up %v: %w", u, err)
	}
	ud.found.Add(1)
	var out []peer.AddrInfo
	for _, ai := range rec.AddrInfos() {
		if ai.ID != ud.nn.host.ID() {
			out = append(out, ai)
		}
	}
	return out, nil
}

// dialUser looks u up and dials every node found; it succeeds if one
// connection (direct or relayed) is up.
func (ud *userDHT) dialUser(ctx context.Context, u crypto.UserID) ([]peer.AddrInfo, error) {
	ais, err := ud.lookup(ctx, u)
	if err != nil {
		return nil, err
	}
	if len(ais) == 0 {
		return nil, fmt.Errorf("user %v's record lists no other node", u)
	}
	ud.mu.Lock()
	ms := ud.members[u]
	if ms == nil {
		ms = &memberState{}
		ud.members[u] = ms
	}
	ms.peers = ais
	ud.mu.Unlock()
	var errs []error
	ok := false
	for _, ai := range ais {
		if ud.nn.gater.isBlocked(ai.ID) {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := ud.nn.host.Connect(p2pnet.WithAllowLimitedConn(dctx, "weft"), ai)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", ai.ID, err))
			continue
		}
		ok = true
		ud.nn.remember(ai)
	}
	if !ok {
		return ais, fmt.Errorf("could not reach user %v: %w", u, errors.Join(errs...))
	}
	return ais, nil
}

// memberLookups finds and dials the nodes of every member of the
// threads this node replicates: new members at once, unreachable ones
// with backoff, reachable ones every LookupInterval.
func (ud *userDHT) memberLookups() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ud.nn.ctx.Done():
			return
		case <-t.C:
		}
		if ud.dht.RoutingTable().Size() == 0 {
			continue
		}
		members, err := ud.nn.members()
		if err != nil {
			continue
		}
		now := time.Now()
		var due []crypto.UserID
		ud.mu.Lock()
		for _, u := range members {
			ms := ud.members[u]
			if ms == nil {
				ms = &memberState{}
				ud.members[u] = ms
			}
			if ud.nn.anyConnected(ms.peers) {
				ms.up = true
				if !now.Before(ms.next) {
					ms.next = now.Add(ud.nn.cfg.LookupInterval)
				}
				continue
			}
			if ms.up {
				// The member's nodes were connected and dropped: look it
				// up again now (it may have moved to a new address or
				// relay), not a lookup interval after the last success.
				ms.up = false
				ms.next, ms.backoff, ms.failures = time.Time{}, 0, 0
			}
			if now.Before(ms.next) {
				continue
			}
			due = append(due, u)
			// Provisional, so a slow lookup is not started twice.
			ms.next = now.Add(time.Minute)
		}
		ud.mu.Unlock()
		for _, u := range due {
			ctx, cancel := context.WithTimeout(ud.nn.ctx, 30*time.Second)
			_, err := ud.dialUser(ctx, u)
			cancel()
			ud.mu.Lock()
			ms := ud.members[u]
			if err != nil {
				// Every 5 s for the first half minute (a member's node
				// may be finding out it is behind NAT and reserving a
				// relay slot), then doubling up to 5 minutes.
				ms.failures++
				ms.backoff = 5 * time.Second
				if ms.failures > 6 {
					ms.backoff = min(5*time.Second<<(ms.failures-6), 5*time.Minute)
				}
				ms.next = time.Now().Add(ms.backoff)
				ud.log.Debug("member not reached", "user", u, "err", err, "retry", ms.backoff)
			} else {
				ms.backoff, ms.failures = 0, 0
				ms.next = time.Now().Add(ud.nn.cfg.LookupInterval)
				ud.log.Debug("reached member by DHT", "user", u, "nodes", len(ms.peers))
			}
			ud.mu.Unlock()
		}
	}
}

// members are the users, other than the local ones, in the threads the
// node replicates.
func (nn *network) members() ([]crypto.UserID, error) {
	local := map[crypto.UserID]bool{}
	for _, id := range nn.n.Identities() {
		local[id.UserID] = true
	}
	interests := nn.interests()
	var out []crypto.UserID
	err := nn.n.do(nn.ctx, false, func(w *work) error {
		seen := map[crypto.UserID]bool{}
		for _, ts := range nn.n.threads {
			if ts.Current.Deleted || !slices.ContainsFunc(interests, ts.Current.IsUser) {
				continue
			}
			for _, u := range ts.Current.Users {
				if !local[u] && !seen[u] {
					seen[u] = true
					out = append(out, u)
				}
			}
		}
		return nil
	})
	return out, err
}

// anyConnected reports whether one of the peers is connected, directly
// or through a relay.
func (nn *network) anyConnected(ais []peer.AddrInfo) bool {
	for _, ai := range ais {
		if c := nn.host.Network().Connectedness(ai.ID); c == p2pnet.Connected || c == p2pnet.Limited {
			return true
		}
	}
	return false
}

// remember keeps a peer found by lookup among the known peers, so it is
// redialled if it drops (until a new lookup says otherwise).
func (nn *network) remember(ai peer.AddrInfo) {
	if len(ai.Addrs) == 0 {
		return
	}
	nn.mu.Lock()
	defer nn.mu.Unlock()
	if len(nn.known) < maxKnownPeers || nn.known[ai.ID] != nil {
		nn.known[ai.ID] = ai.Addrs
	}
}

// LookupUser finds a user's nodes through the DHT (without dialling).
func (n *Node) LookupUser(ctx context.Context, u crypto.UserID) ([]peer.AddrInfo, error) {
	if n.net == nil {
		return nil, errOffline
	}
	if n.net.dht == nil {
		return nil, ErrNoDHT
	}
	return n.net.dht.lookup(ctx, u)
}

// PublishRecords publishes every local user's record now.
func (n *Node) PublishRecords(ctx context.Context) error {
	if n.net == nil {
		return errOffline
	}
	if n.net.dht == nil {
		return ErrNoDHT
	}
	return n.net.dht.publishAll(true)
}

// DHTPeers lists the peers in the node's DHT routing table.
func (n *Node) DHTPeers() []peer.ID {
	if n.net == nil || n.net.dht == nil {
		return nil
	}
	return n.net.dht.dht.RoutingTable().ListPeers()
}

// ErrNoDHT is returned by user lookups on a node with the DHT turned off.
var ErrNoDHT = errors.New("the DHT is turned off on this node (dht = false)")
