package node

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/control"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// NetworkConfig configures a node's libp2p host. A nil Config.Network keeps
// the node offline: a local store and API with no replication.
type NetworkConfig struct {
	// Listen addresses (multiaddrs). Default: TCP and QUIC on every
	// interface, ports picked by the system.
	Listen []string
	// Peers are dialled at start and redialled whenever they drop.
	Peers []string
	// Serve makes the node a bridge for these users: it follows their
	// inbox topics and replicates every thread they are in, holding no keys.
	Serve []crypto.UserID
	// NoMDNS turns off LAN discovery.
	NoMDNS bool
	// SyncInterval is how often the node reconciles with every connected
	// peer (default 30s); it also does on connect and on a gap.
	SyncInterval time.Duration

	// Bootstrap are weft nodes (full multiaddrs) that seed the DHT and
	// relay for this node when it is private; they are dialled and kept
	// like Peers.
	Bootstrap []string
	// NoDHT turns the DHT off: no user records are published or looked
	// up (LAN discovery, Peers and Bootstrap still work).
	NoDHT bool
	// Reachability forces "public" or "private"; empty (or "auto") lets
	// AutoNAT find out.
	Reachability string
	// RelayService is "auto" (default: relay for others while AutoNAT
	// finds the node public), "on" (always; implies Reachability public
	// unless set) or "off".
	RelayService string
	// NoPortMap turns off UPnP / NAT-PMP port mapping.
	NoPortMap bool
	// LookupInterval is how often members already reached are looked up
	// again in the DHT (default 10m); unreachable ones are retried sooner.
	LookupInterval time.Duration
}

// DefaultListen is where a node listens when NetworkConfig.Listen is empty.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}

const (
	peerKeyFile   = "peer.key"
	knownPeerFile = "peers.json"
	maxKnownPeers = 64
)

// network is the node's libp2p side: host, gossip and sync.
type network struct {
	n      *Node
	cfg    NetworkConfig
	log    *slog.Logger
	host   host.Host
	ps     *pubsub.PubSub
	gater  *gater
	tracer *dropTracer
	dht    *userDHT // nil with NoDHT
	reach  reach
	// bootstrap are the configured bootstrap nodes.
	bootstrap []peer.AddrInfo
	mdns      mdns.Service
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu      sync.Mutex
	topics  map[string]*joined
	scores  map[peer.ID]float64
	known   map[peer.ID][]ma.Multiaddr
	syncing map[peer.ID]syncState // peers with a sync running
	// syncFailures counts a peer's consecutive failed syncs (the backoff).
	syncFailures map[peer.ID]int
	gapTimers    map[peer.ID][]heldRef // held events a scheduled gap check is for, by sender
	pubQueue     []*protocol.Event
	pubWake      chan struct{}
	syncWake     chan syncReq
	refresh      chan struct{}
	penalties    *penalties
}

// startNetwork brings up the host and everything on it.
func (n *Node) startNetwork(cfg NetworkConfig) error {
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 30 * time.Second
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = DefaultListen
	}
	if cfg.LookupInterval == 0 {
		cfg.LookupInterval = defaultLookupInterval
	}
	if err := checkReachConfig(&cfg); err != nil {
		return err
	}
	bootstrap, err := parseAddrInfos(cfg.Bootstrap)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := checkPortsFree(cfg.Listen); err != nil {
		return err
	}
	key, err := loadPeerKey(filepath.Join(n.cfg.Home, peerKeyFile))
	if err != nil {
		return err
	}
	g := &gater{blocked: map[peer.ID]bool{}}
	var hostRef atomic.Pointer[host.Host]
	opts := append([]libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.ConnectionGater(g),
		libp2p.UserAgent("weft"),
	}, reachOptions(cfg, bootstrap, &hostRef)...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("starting the libp2p host: %w", err)
	}
	hostRef.Store(&h)
	// Sync streams and dials may use limited (relayed) connections: where
	// a relay is the only path, sync carries the events (GossipSub itself
	// keeps to direct connections).
	ctx, cancel := context.WithCancel(p2pnet.WithAllowLimitedConn(context.Background(), "weft"))
	nn := &network{
		n: n, cfg: cfg, log: n.log.With("peer", h.ID().String()), host: h, gater: g,
		tracer: &dropTracer{}, ctx: ctx, cancel: cancel,
		topics: map[string]*joined{}, scores: map[peer.ID]float64{}, known: map[peer.ID][]ma.Multiaddr{},
		syncing: map[peer.ID]syncState{}, syncFailures: map[peer.ID]int{}, gapTimers: map[peer.ID][]heldRef{}, pubWake: make(chan struct{}, 1), syncWake: make(chan syncReq, 256),
		refresh: make(chan struct{}, 1), penalties: newPenalties(time.Now),
	}
	nn.bootstrap = bootstrap
	if err := nn.startPubSub(); err != nil {
		h.Close()
		cancel()
		return err
	}
	h.SetStreamHandler(protocol.SyncProtocolID, nn.handleSync)
	h.Network().Notify(&p2pnet.NotifyBundle{
		ConnectedF: func(_ p2pnet.Network, c p2pnet.Conn) { nn.requestSync(c.RemotePeer()) },
	})
	n.net = nn
	nn.loadKnownPeers()
	if !cfg.NoDHT {
		if err := nn.startDHT(bootstrap); err != nil {
			h.Close()
			cancel()
			n.net = nil
			return err
		}
	}
	for _, f := range []func(){nn.publisher, nn.syncScheduler, nn.topicRefresher, nn.keepConnected, nn.watchReach} {
		nn.wg.Add(1)
		go func() { defer nn.wg.Done(); f() }()
	}
	if !cfg.NoMDNS {
		nn.mdns = mdns.NewMdnsService(h, "weft", nn)
		if err := nn.mdns.Start(); err != nil {
			nn.log.Warn("mDNS discovery unavailable", "err", err)
			nn.mdns = nil
		}
	}
	nn.refreshTopics()
	nn.log.Info("network up", "addrs", h.Addrs(), "serve", len(cfg.Serve), "dht", !cfg.NoDHT, "bootstrap", len(bootstrap),
		"reachability", cmp.Or(cfg.Reachability, "auto"), "relay_service", cfg.RelayService)
	return nil
}

func (nn *network) close() {
	if nn.mdns != nil {
		nn.mdns.Close()
	}
	if nn.dht != nil {
		nn.dht.close()
	}
	nn.cancel()
	nn.host.Close()
	nn.wg.Wait()
}

// loadPeerKey reads the node's libp2p key, creating it on first use.
func loadPeerKey(path string) (p2pcrypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := p2pcrypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("reading peer key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading peer key: %w", err)
	}
	k, _, err := p2pcrypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	b, err = p2pcrypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return nil, fmt.Errorf("saving peer key: %w", err)
	}
	return k, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// HandlePeerFound is the mDNS callback.
func (nn *network) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == nn.host.ID() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(nn.ctx, 10*time.Second)
		defer cancel()
		if err := nn.host.Connect(ctx, ai); err != nil {
			nn.log.Debug("mDNS peer unreachable", "remote", ai.ID, "err", err)
		}
	}()
}

// keepConnected redials configured and known peers that are not connected,
// and records the addresses of connected peers so a restarted node finds
// them again.
func (nn *network) keepConnected() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		nn.dialPeers()
		nn.saveKnownPeers()
		select {
		case <-nn.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (nn *network) dialPeers() {
	targets := slices.Clone(nn.bootstrap)
	for _, s := range nn.cfg.Peers {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			nn.log.Warn("bad peer address", "addr", s, "err", err)
			continue
		}
		targets = append(targets, *ai)
	}
	nn.mu.Lock()
	for id, addrs := range nn.known {
		targets = append(targets, peer.AddrInfo{ID: id, Addrs: addrs})
	}
	nn.mu.Unlock()
	for _, ai := range targets {
		c := nn.host.Network().Connectedness(ai.ID)
		if ai.ID == nn.host.ID() || c == p2pnet.Connected || c == p2pnet.Limited || nn.gater.isBlocked(ai.ID) {
			continue
		}
		go func(ai peer.AddrInfo) {
			ctx, cancel := context.WithTimeout(nn.ctx, 5*time.Second)
			defer cancel()
			if err := nn.host.Connect(ctx, ai); err != nil {
				nn.log.Debug("dial failed", "remote", ai.ID, "err", err)
			}
		}(ai)
	}
}

type knownPeer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

func (nn *network) loadKnownPeers() {
	b, err := os.ReadFile(filepath.Join(nn.n.cfg.Home, knownPeerFile))
	if err != nil {
		return
	}
	var list []knownPeer
	if err := json.Unmarshal(b, &list); err != nil {
		nn.log.Warn("ignoring unreadable known-peers file", "err", err)
		return
	}
	nn.mu.Lock()
	defer nn.mu.Unlock()
	for _, kp := range list {
		id, err := peer.Decode(kp.ID)
		if err != nil {
			continue
		}
		var addrs []ma.Multiaddr
		for _, a := range kp.Addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				addrs = append(addrs, m)
			}
		}
		if len(addrs) > 0 {
			nn.known[id] = addrs
		}
	}
}

// saveKnownPeers records connected peers' listen addresses (learnt by
// identify) when they changed.
func (nn *network) saveKnownPeers() {
	changed := false
	nn.mu.Lock()
	for _, id := range nn.host.Network().Peers() {
		addrs := nn.host.Peerstore().Addrs(id)
		if len(addrs) == 0 || (len(nn.known) >= maxKnownPeers && nn.known[id] == nil) {
			continue
		}
		if fmt.Sprint(nn.known[id]) != fmt.Sprint(addrs) {
			nn.known[id] = addrs
			changed = true
		}
	}
	var list []knownPeer
	if changed {
		for id, addrs := range nn.known {
			kp := knownPeer{ID: id.String()}
			for _, a := range addrs {
				kp.Addrs = append(kp.Addrs, a.String())
			}
			list = append(list, kp)
		}
	}
	nn.mu.Unlock()
	if !changed {
		return
	}
	b, _ := json.MarshalIndent(list, "", "  ")
	if err := writeFileAtomic(filepath.Join(nn.n.cfg.Home, knownPeerFile), b); err != nil {
		nn.log.Warn("saving known peers", "err", err)
	}
}

// gater refuses connections to and from blocked peers (operators' block
// lists, and tests that cut a network in two).
type gater struct {
	mu      sync.RWMutex
	blocked map[peer.ID]bool
}

func (g *gater) isBlocked(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.blocked[p]
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return !g.isBlocked(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.isBlocked(p) }
func (g *gater) InterceptAccept(p2pnet.ConnMultiaddrs) bool       { return true }
func (g *gater) InterceptSecured(_ p2pnet.Direction, p peer.ID, _ p2pnet.ConnMultiaddrs) bool {
	return !g.isBlocked(p)
}
func (g *gater) InterceptUpgraded(p2pnet.Conn) (bool, control.DisconnectReason) { return true, 0 }

// errOffline is returned by network calls on a node without a network.
var errOffline = errors.New("node is offline (Config.Network is nil)")

// PeerID returns the node's libp2p peer ID.
func (n *Node) PeerID() (peer.ID, error) {
	if n.net == nil {
		return "", errOffline
	}
	return n.net.host.ID(), nil
}

// Addrs returns the node's listen addresses as full multiaddrs ending in
// /p2p/PEERID.
func (n *Node) Addrs() []string {
	if n.net == nil {
		return nil
	}
	h := n.net.host
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String()+"/p2p/"+h.ID().String())
	}
	return out
}

// Connect dials a peer by its full multiaddr (.../p2p/PEERID), or a
// user's nodes by user ID (weft1...), found through the DHT.
func (n *Node) Connect(ctx context.Context, addr string) error {
	if n.net == nil {
		return errOffline
	}
	if strings.HasPrefix(addr, "weft1") {
		u, err := crypto.ParseUserID(addr)
		if err != nil {
			return fmt.Errorf("%w: user ID %q: %w", ErrBadInput, addr, err)
		}
		if n.net.dht == nil {
			return ErrNoDHT
		}
		_, err = n.net.dht.dialUser(p2pnet.WithAllowLimitedConn(ctx, "weft"), u)
		return err
	}
	if !strings.Contains(addr, "/p2p/") {
		return fmt.Errorf("%w: peer address %q must end in /p2p/PEERID", ErrBadInput, addr)
	}
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("%w: peer address %q: %w", ErrBadInput, addr, err)
	}
	return n.net.host.Connect(p2pnet.WithAllowLimitedConn(ctx, "weft"), *ai)
}

// parseAddrInfos parses full multiaddrs (.../p2p/PEERID), merging the
// addresses of one peer.
func parseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: peer address %q: %w", ErrBadInput, s, err)
		}
		if i := slices.IndexFunc(out, func(o peer.AddrInfo) bool { return o.ID == ai.ID }); i >= 0 {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		out = append(out, *ai)
	}
	return out, nil
}

// Peers lists the connected peers.
func (n *Node) Peers() []peer.ID {
	if n.net == nil {
		return nil
	}
	return n.net.host.Network().Peers()
}

// Block cuts the node off from a peer and refuses it until Unblock.
func (n *Node) Block(p peer.ID) {
	if n.net == nil {
		return
	}
	n.net.gater.mu.Lock()
	n.net.gater.blocked[p] = true
	n.net.gater.mu.Unlock()
	n.net.host.Network().ClosePeer(p)
}

// Unblock lets a blocked peer connect again.
func (n *Node) Unblock(p peer.ID) {
	if n.net == nil {
		return
	}
	n.net.gater.mu.Lock()
	delete(n.net.gater.blocked, p)
	n.net.gater.mu.Unlock()
}

// ErrPortInUse is returned by New when a fixed TCP listen port is taken.
var ErrPortInUse = errors.New("listen port in use")

// checkPortsFree refuses fixed TCP ports that another socket holds.
// go-libp2p binds TCP with SO_REUSEPORT (hole punching needs it), so a
// second node on a port another node holds would start, share the port
// with it, and dials to that address would reach either ("peer id
// mismatch"). A plain bind, without SO_REUSEPORT, fails on a held port.
func checkPortsFree(listen []string) error {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: listen address %q: %v", ErrBadInput, s, err)
		}
		port, err := a.ValueForProtocol(ma.P_TCP)
		if err != nil || port == "0" {
			continue
		}
		ip, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if ip, err = a.ValueForProtocol(ma.P_IP6); err != nil {
				continue
			}
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			return fmt.Errorf("%w: %s: %v (is another node running on it?)", ErrPortInUse, s, err)
		}
		l.Close()
	}
	return nil
}
