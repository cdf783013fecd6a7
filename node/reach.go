package node

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability: everything here is go-libp2p's (AutoNAT v1 and v2,
// NATPortMap, circuit relay v2 client and service, AutoRelay, DCUtR hole
// punching); this file only chooses the options and reports their state.

// Reachability values (NetworkConfig.Reachability, NetInfo.Reachability).
const (
	ReachabilityUnknown = "unknown"
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
)

// RelayService values (NetworkConfig.RelayService).
const (
	RelayAuto = "auto" // serve as a relay while AutoNAT finds the node public
	RelayOn   = "on"   // always (and so the node claims to be public)
	RelayOff  = "off"
)

// hopProtocol is circuit relay v2's service protocol.
const hopProtocol = "/libp2p/circuit/relay/0.2.0/hop"

// relayResources are the relay service's limits: generous enough for a
// served user's chat and a sync of a long backlog over one relayed
// connection (the defaults, 2 minutes and 128 KiB, are for hole punching
// only), still bounded so a relay cannot be made an unmetered proxy.
func relayResources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	rc.Limit = &relayv2.RelayLimit{Duration: time.Hour, Data: 64 << 20}
	rc.MaxCircuits = 32
	rc.BufferSize = 16 << 10
	return rc
}

// checkReachConfig normalises the reachability settings.
func checkReachConfig(cfg *NetworkConfig) error {
	switch cfg.Reachability {
	case "", "auto":
		cfg.Reachability = ""
	case ReachabilityPublic, ReachabilityPrivate:
	default:
		return fmt.Errorf("%w: reachability %q: want auto, public or private", ErrBadInput, cfg.Reachability)
	}
	switch cfg.RelayService {
	case "":
		cfg.RelayService = RelayAuto
	case RelayAuto, RelayOn, RelayOff:
	default:
		return fmt.Errorf("%w: relay service %q: want auto, on or off", ErrBadInput, cfg.RelayService)
	}
	if cfg.RelayService == RelayOn && cfg.Reachability == "" {
		cfg.Reachability = ReachabilityPublic
	}
	return nil
}

// reachOptions are the libp2p options for reachability. hostRef is filled
// in once the host exists (AutoRelay's peer source reads it).
func reachOptions(cfg NetworkConfig, relays []peer.AddrInfo, hostRef *atomic.Pointer[host.Host]) []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.EnableRelay(), // circuit relay v2 client: dial and accept relayed connections
		libp2p.EnableHolePunching(),
		libp2p.EnableNATService(), // answer others' AutoNAT v1 probes (off while private)
		libp2p.EnableAutoNATv2(),
	}
	if !cfg.NoPortMap && !loopbackOnly(cfg.Listen) {
		opts = append(opts, libp2p.NATPortMap())
	}
	switch cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.RelayService != RelayOff {
		// libp2p runs the service only while the node's reachability is
		// public (found by AutoNAT, or forced).
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayResources())))
	}
	if cfg.Reachability != ReachabilityPublic {
		source := func(ctx context.Context, num int) <-chan peer.AddrInfo {
			return relayCandidates(hostRef.Load(), relays, num)
		}
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(source,
			autorelay.WithMinCandidates(1),
			autorelay.WithNumRelays(2),
			autorelay.WithBootDelay(10*time.Second),
			autorelay.WithBackoff(time.Minute),
			autorelay.WithMinInterval(15*time.Second),
		))
	}
	return opts
}

// loopbackOnly reports whether every listen address is a loopback one:
// such a node has no port to map (and tests stay off the LAN).
func loopbackOnly(listen []string) bool {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil || !manet.IsIPLoopback(a) {
			return false
		}
	}
	return len(listen) > 0
}

// relayCandidates feeds AutoRelay: the configured bootstrap nodes first,
// then connected peers that offer the relay service.
func relayCandidates(hp *host.Host, configured []peer.AddrInfo, num int) <-chan peer.AddrInfo {
	var list []peer.AddrInfo
	seen := map[peer.ID]bool{}
	for _, ai := range configured {
		if !seen[ai.ID] {
			seen[ai.ID] = true
			list = append(list, ai)
		}
	}
	if hp != nil {
		h := *hp
		for _, p := range h.Network().Peers() {
			if seen[p] || p == h.ID() {
				continue
			}
			if ok, _ := h.Peerstore().SupportsProtocols(p, hopProtocol); len(ok) == 0 {
				continue
			}
			seen[p] = true
			list = append(list, peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)})
		}
	}
	if len(list) > num {
		list = list[:num]
	}
	ch := make(chan peer.AddrInfo, len(list))
	for _, ai := range list {
		ch <- ai
	}
	close(ch)
	return ch
}

// reach tracks what libp2p reports about the node's reachability.
type reach struct {
	mu           sync.Mutex
	reachability p2pnet.Reachability
	reachable    []ma.Multiaddr // AutoNAT v2, per address
	unreachable  []ma.Multiaddr
	observed     map[string]map[peer.ID]bool // our address as peers see it, by observer
	warned       bool                        // logged "private with no relay"
}

// watchReach follows reachability, address and identify events, and logs
// once when the node is private with no relay reservation.
func (nn *network) watchReach() {
	sub, err := nn.host.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtLocalAddressesUpdated),
		new(event.EvtPeerConnectednessChanged),
	})
	if err != nil {
		nn.log.Warn("cannot follow reachability events", "err", err)
		return
	}
	defer sub.Close()
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	var privateSince time.Time
	was := map[peer.ID]p2pnet.Connectedness{}
	for {
		select {
		case <-nn.ctx.Done():
			return
		case ev := <-sub.Out():
			switch ev := ev.(type) {
			case event.EvtLocalReachabilityChanged:
				nn.reach.mu.Lock()
				nn.reach.reachability = ev.Reachability
				nn.reach.mu.Unlock()
				nn.log.Info("reachability", "status", reachabilityName(ev.Reachability))
				if ev.Reachability == p2pnet.ReachabilityPrivate {
					privateSince = time.Now()
				} else {
					privateSince = time.Time{}
				}
			case event.EvtHostReachableAddrsChanged:
				nn.reach.mu.Lock()
				nn.reach.reachable, nn.reach.unreachable = ev.Reachable, ev.Unreachable
				nn.reach.mu.Unlock()
				nn.log.Debug("AutoNAT v2 address reachability", "reachable", ev.Reachable, "unreachable", ev.Unreachable)
			case event.EvtPeerIdentificationCompleted:
				if ev.ObservedAddr != nil && ev.Conn != nil && !ev.Conn.Stat().Limited {
					nn.reach.mu.Lock()
					if nn.reach.observed == nil {
						nn.reach.observed = map[string]map[peer.ID]bool{}
					}
					a := ev.ObservedAddr.String()
					if nn.reach.observed[a] == nil {
						if len(nn.reach.observed) >= 32 {
							nn.reach.mu.Unlock()
							continue
						}
						nn.reach.observed[a] = map[peer.ID]bool{}
					}
					nn.reach.observed[a][ev.Peer] = true
					nn.reach.mu.Unlock()
				}
			case event.EvtPeerConnectednessChanged:
				nn.log.Debug("peer connectedness", "remote", ev.Peer, "now", ev.Connectedness.String())
				if was[ev.Peer] == p2pnet.Limited && ev.Connectedness == p2pnet.Connected {
					// Hole punching made the relayed connection direct.
					// GossipSub attaches to the peer in a moment; a sync
					// then picks up what was sent in between.
					nn.log.Info("relayed peer now direct", "remote", ev.Peer)
					p := ev.Peer
					time.AfterFunc(3*time.Second, func() {
						if nn.ctx.Err() == nil {
							nn.requestSync(p)
						}
					})
				}
				if ev.Connectedness == p2pnet.NotConnected {
					delete(was, ev.Peer)
				} else {
					was[ev.Peer] = ev.Connectedness
				}
			case event.EvtLocalAddressesUpdated:
				nn.log.Debug("addresses updated", "addrs", nn.host.Addrs())
				if nn.dht != nil {
					nn.dht.addrsChanged()
				}
			}
		case <-t.C:
		}
		// The warning waits a little: AutoRelay needs a few seconds to
		// reserve a slot on a relay once the node finds it is private.
		if !privateSince.IsZero() && time.Since(privateSince) > 30*time.Second {
			nn.reach.mu.Lock()
			warn := !nn.reach.warned && len(relayAddrs(nn.host.Addrs())) == 0
			if warn {
				nn.reach.warned = true
			} else if len(relayAddrs(nn.host.Addrs())) > 0 {
				nn.reach.warned = false
			}
			nn.reach.mu.Unlock()
			if warn {
				nn.log.Warn("this node is private (behind NAT or a firewall) and has no relay reservation: nodes outside its network cannot reach it; configure a bootstrap node that relays (bootstrap = ... in weft.conf, or --bootstrap)")
			}
		}
	}
}

func reachabilityName(r p2pnet.Reachability) string {
	switch r {
	case p2pnet.ReachabilityPublic:
		return ReachabilityPublic
	case p2pnet.ReachabilityPrivate:
		return ReachabilityPrivate
	}
	return ReachabilityUnknown
}

// relayAddrs returns the relayed (/p2p-circuit) addresses among addrs.
func relayAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if isRelayed(a) {
			out = append(out, a)
		}
	}
	return out
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// NetInfo is the node's view of its place on the network.
type NetInfo struct {
	// Reachability is what AutoNAT found (or the configuration forced):
	// public, private or unknown.
	Reachability string
	// ListenAddrs are the addresses the host listens on.
	ListenAddrs []string
	// Addrs are the addresses the node advertises (listen addresses
	// resolved, NAT mappings, confirmed observed addresses, relay
	// addresses).
	Addrs []string
	// ObservedAddrs are this node's addresses as its peers see them, with
	// how many peers saw each.
	ObservedAddrs []ObservedAddr
	// ReachableAddrs and UnreachableAddrs are AutoNAT v2's verdicts.
	ReachableAddrs, UnreachableAddrs []string
	// Relays are the relays this node holds a reservation on (peer IDs),
	// with RelayAddrs the addresses they give it.
	Relays     []string
	RelayAddrs []string
	// RelayService reports whether this node relays for others now.
	RelayService bool
	// DHT is off, client or server; DHTPeers is its routing table size.
	DHT      string
	DHTPeers int
	// Records counts user records published and lookups made.
	RecordsPublished, RecordPublishFailures uint64
	Lookups, LookupsFound                   uint64
	// DirectPeers and RelayedPeers count connected peers by whether any
	// connection to them is direct.
	DirectPeers, RelayedPeers int
}

// ObservedAddr is one address peers see this node at.
type ObservedAddr struct {
	Addr      string
	Observers int
}

// NetInfo returns the node's reachability and addresses (zero when
// offline).
func (n *Node) NetInfo() NetInfo {
	nn := n.net
	if nn == nil {
		return NetInfo{Reachability: ReachabilityUnknown, DHT: "off"}
	}
	h := nn.host
	info := NetInfo{DHT: "off"}
	nn.reach.mu.Lock()
	info.Reachability = reachabilityName(nn.reach.reachability)
	info.ReachableAddrs = addrStrings(nn.reach.reachable)
	info.UnreachableAddrs = addrStrings(nn.reach.unreachable)
	for a, obs := range nn.reach.observed {
		info.ObservedAddrs = append(info.ObservedAddrs, ObservedAddr{Addr: a, Observers: len(obs)})
	}
	nn.reach.mu.Unlock()
	sort.Slice(info.ObservedAddrs, func(i, j int) bool {
		a, b := info.ObservedAddrs[i], info.ObservedAddrs[j]
		if a.Observers != b.Observers {
			return a.Observers > b.Observers
		}
		return a.Addr < b.Addr
	})
	info.ListenAddrs = addrStrings(h.Network().ListenAddresses())
	addrs := h.Addrs()
	info.Addrs = addrStrings(addrs)
	relays := map[string]bool{}
	for _, a := range relayAddrs(addrs) {
		info.RelayAddrs = append(info.RelayAddrs, a.String())
		if id, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			relays[id] = true
		}
	}
	for id := range relays {
		info.Relays = append(info.Relays, id)
	}
	slices.Sort(info.Relays)
	info.RelayService = info.Reachability == ReachabilityPublic && nn.cfg.RelayService != RelayOff
	if d := nn.dht; d != nil {
		info.DHT = d.mode()
		info.DHTPeers = d.dht.RoutingTable().Size()
		info.RecordsPublished = d.published.Load()
		info.RecordPublishFailures = d.publishFailed.Load()
		info.Lookups = d.lookups.Load()
		info.LookupsFound = d.found.Load()
	}
	for _, pc := range n.PeerConns() {
		if pc.Relayed {
			info.RelayedPeers++
		} else {
			info.DirectPeers++
		}
	}
	return info
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// PeerConn describes the connection to one connected peer.
type PeerConn struct {
	Peer peer.ID
	// Relayed is true when every connection to the peer goes through a
	// relay (a limited connection, until hole punching makes a direct
	// one).
	Relayed bool
	// Addr is the remote address of the best connection.
	Addr string
	// Inbound is true when the peer dialled this node.
	Inbound bool
}

// PeerConns lists connected peers with how each is reached.
func (n *Node) PeerConns() []PeerConn {
	if n.net == nil {
		return nil
	}
	var out []PeerConn
	nw := n.net.host.Network()
	for _, p := range nw.Peers() {
		conns := nw.ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		best := conns[0]
		for _, c := range conns {
			if !isRelayedConn(c) {
				best = c
				break
			}
		}
		out = append(out, PeerConn{
			Peer: p, Relayed: isRelayedConn(best), Addr: best.RemoteMultiaddr().String(),
			Inbound: best.Stat().Direction == p2pnet.DirInbound,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

func isRelayedConn(c p2pnet.Conn) bool {
	return c.Stat().Limited || isRelayed(c.RemoteMultiaddr())
}

// pushToLimited asks peers reached only over a limited (relayed)
// connection to sync now: GossipSub does not use limited connections, so
// sync carries a new local event to them.
func (nn *network) pushToLimited() {
	nw := nn.host.Network()
	for _, p := range nw.Peers() {
		if nw.Connectedness(p) == p2pnet.Limited {
			nn.log.Debug("pushing to a relayed peer by sync", "remote", p)
			nn.queueSync(syncReq{p: p, news: true})
		}
	}
}

// publishableAddrs are the addresses a user record lists for this node:
// public and relayed addresses; if there are none, every non-loopback
// address (a LAN); if there are none of those either, all (loopback tests).
func publishableAddrs(addrs []ma.Multiaddr) []string {
	var public, lan, all []string
	for _, a := range addrs {
		s := a.String()
		all = append(all, s)
		switch {
		case isRelayed(a) || manet.IsPublicAddr(a):
			public = append(public, s)
		case !manet.IsIPLoopback(a):
			lan = append(lan, s)
		}
	}
	out := all
	switch {
	case len(public) > 0:
		out = public
	case len(lan) > 0:
		out = lan
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxRecordAddrs {
		// Relayed addresses last in sort order ("/p2p-circuit" is long);
		// keep the shortest, which are the direct ones, first.
		sort.SliceStable(out, func(i, j int) bool {
			return strings.Contains(out[j], "/p2p-circuit") && !strings.Contains(out[i], "/p2p-circuit")
		})
		out = out[:maxRecordAddrs]
	}
	return out
}
