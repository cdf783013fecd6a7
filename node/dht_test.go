package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	p2pnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
)

// acceptAll is the validator an attacker runs: it stores anything.
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }

// TestDHTFindsUserAndRefusesForgery: on loopback, a bootstrap node (DHT
// server) and two users' nodes that know only its address. Bob finds
// Alice's node from her user ID alone and a thread he creates with her
// reaches her. An attacker (a bare libp2p host running the weft DHT as a
// server with a validator that accepts anything) puts a record for
// Alice's user ID that points at itself, signed by its own key and newer
// than hers: the bootstrap node refuses to store it, the attacker serves
// it to Bob's lookups anyway, and Bob's node discards it: lookups still
// give Alice's real node and nobody dials the attacker as Alice.
func TestDHTFindsUserAndRefusesForgery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	loop := []string{"/ip4/127.0.0.1/tcp/0"}
	boot, _ := netNodeWith(t, t.TempDir(), "", node.NetworkConfig{Listen: loop, NoMDNS: true, Reachability: "public", SyncInterval: time.Hour})
	bootAddr := boot.Addrs()[0]
	user := node.NetworkConfig{Listen: loop, NoMDNS: true, Bootstrap: []string{bootAddr}, SyncInterval: time.Hour}
	alice, a := netNodeWith(t, t.TempDir(), "alice", user)
	bob, b := netNodeWith(t, t.TempDir(), "bob", user)
	alicePeer, _ := alice.PeerID()
	bobPeer, _ := bob.PeerID()

	// The attacker.
	mallory, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings(loop...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	// The node the forged record sends Alice's contacts to.
	decoy, err := libp2p.New(libp2p.ListenAddrStrings(loop...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { decoy.Close() })
	var served, dialled atomic.Int64
	decoy.Network().Notify(&p2pnet.NotifyBundle{ConnectedF: func(_ p2pnet.Network, c p2pnet.Conn) {
		if c.RemotePeer() == bobPeer {
			dialled.Add(1)
		}
	}})
	aliceID := a.ID()
	aliceKey := "/" + node.UserRecordNamespace + "/" + string(aliceID[:])
	bootInfo, _ := peer.AddrInfoFromString(bootAddr)
	evil, err := kaddht.New(h, kaddht.ProtocolPrefix(node.DHTProtocolPrefix), kaddht.Mode(kaddht.ModeServer),
		kaddht.NamespacedValidator(node.UserRecordNamespace, acceptAll{}), kaddht.DisableProviders(),
		kaddht.BootstrapPeers(*bootInfo),
		kaddht.OnRequestHook(func(_ context.Context, s p2pnet.Stream, req *pb.Message) {
			if req.GetType() == pb.Message_GET_VALUE && string(req.GetKey()) == aliceKey {
				served.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { evil.Close() })
	if err := h.Connect(ctx, *bootInfo); err != nil {
		t.Fatal(err)
	}
	if err := evil.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}

	// Alice's node publishes her record; Bob's finds it.
	eventually(t, 30*time.Second, "Alice's record in the DHT", func() bool {
		ais, err := bob.LookupUser(ctx, a.ID())
		return err == nil && len(ais) == 1 && ais[0].ID == alicePeer
	})

	// The forgery: Alice's user ID, Mallory's key, the decoy's address.
	forged := node.UserRecord{Version: 1, User: a.ID(), Seq: time.Now().Add(time.Hour).UnixNano(), Expires: time.Now().Add(time.Hour).Unix(),
		Nodes: []node.RecordNode{{Peer: decoy.ID().String(), Addrs: []string{decoy.Addrs()[0].String()}, Seen: time.Now().Unix()}}}
	body, _ := json.Marshal(forged)
	value := append(body, mallory.Sign("dht-user-record", body)...)
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_ = evil.PutValue(pctx, aliceKey, value) // stored on the attacker; the bootstrap node refuses it
	cancel()
	if got, err := evil.GetValue(ctx, aliceKey, routing.Offline); err != nil || string(got) != string(value) {
		t.Fatalf("the attacker does not hold its forgery (%v): the test would prove nothing", err)
	}
	eventually(t, 30*time.Second, "the attacker in Bob's DHT routing table", func() bool {
		return slices.Contains(bob.DHTPeers(), h.ID())
	})

	// Bob only knows Alice's user ID: he creates a thread with her.
	th, err := b.CreateThread(ctx, []crypto.UserID{a.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mid := mustSend(t, b, th, "found you by your user ID")
	eventually(t, 30*time.Second, "Bob's message on Alice's node", func() bool { return messageCount(a, th) == 1 })
	mustRead(t, a, mid, "found you by your user ID")

	for i := 0; i < 3; i++ {
		ais, err := bob.LookupUser(ctx, a.ID())
		if err != nil || len(ais) != 1 || ais[0].ID != alicePeer {
			t.Fatalf("lookup %d of Alice with a forgery in the DHT: %v, %v; want only her node %s", i, ais, err, alicePeer)
		}
	}
	if served.Load() == 0 {
		t.Error("the attacker was never asked for Alice's record: the forgery was not put to the test")
	}
	if n := dialled.Load(); n != 0 {
		t.Errorf("Bob's node dialled the forged record's node %d times: it took it for Alice's", n)
	}
	info := bob.NetInfo()
	if info.DHT != "client" || info.LookupsFound == 0 {
		t.Errorf("Bob's NetInfo: DHT %q, lookups found %d; want client and some", info.DHT, info.LookupsFound)
	}
	if bi := boot.NetInfo(); bi.DHT != "server" || bi.Reachability != "public" || !bi.RelayService {
		t.Errorf("bootstrap NetInfo: DHT %q, reachability %q, relay service %v; want server, public, true", bi.DHT, bi.Reachability, bi.RelayService)
	}
}
