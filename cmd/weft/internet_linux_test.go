package main

// TestInternet and TestInternetHardNAT build a small internet out of
// network namespaces (netlab_linux_test.go draws it) and check that two
// users behind NAT, who know only each other's user ID and a bootstrap
// node's address, exchange messages: the DHT finds each user's node,
// AutoNAT finds them private, AutoRelay reserves a slot on the bootstrap
// node, and sync runs over the relayed connection; with port-preserving
// NATs hole punching then makes the connection direct and the relay
// carries none of their traffic; with NATs that randomise ports the relay
// carries everything, a 1,000-message backlog included; and when Bob's
// node moves to another home, Alice reaches it again.

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// firstContact: Alice creates a thread with Bob's user ID and sends; Bob
// reads it; Bob replies; Alice reads it. It returns the thread.
func (in *internet) firstContact() string {
	t := in.t
	cAlice := in.alice.cli()
	var created struct{ ThreadID string }
	cAlice.okJSON(&created, "thread", "create", "--member", in.bob.id.UserID, "--json", "--home", in.alice.home)
	var sent struct{ MessageID string }
	cAlice.okJSON(&sent, "send", created.ThreadID, "--data", "hello bob, across two NATs", "--json", "--home", in.alice.home)
	if !in.bob.cli().waitMessage(in.bob.home, created.ThreadID, sent.MessageID, "hello bob, across two NATs", 150*time.Second) {
		in.dumpLogs()
		t.Fatal("Bob's node did not receive Alice's message")
	}
	t.Logf("FIGURE first message: Bob read Alice's message %v after the daemons started", time.Since(in.daemonsAt).Round(100*time.Millisecond))

	var reply struct{ MessageID string }
	replyAt := time.Now()
	in.bob.cli().okJSON(&reply, "send", created.ThreadID, "--data", "hi alice, got it", "--json", "--home", in.bob.home)
	if !cAlice.waitMessage(in.alice.home, created.ThreadID, reply.MessageID, "hi alice, got it", 30*time.Second) {
		in.dumpLogs()
		t.Fatal("Alice's node did not receive Bob's reply")
	}
	t.Logf("Bob's reply reached Alice in %v", time.Since(replyAt).Round(100*time.Millisecond))

	// What the nodes report: both private with a reservation on the
	// bootstrap node, the bootstrap public and relaying.
	for _, c := range []struct {
		d    *daemon
		want string
	}{{in.alice, "private"}, {in.bob, "private"}, {in.boot, "public"}} {
		st := c.d.status().Network
		if st.Reachability != c.want {
			t.Errorf("%s: reachability %q, want %q", c.d.name, st.Reachability, c.want)
		}
		if c.want == "private" && (len(st.Relays) != 1 || st.Relays[0] != in.boot.id.PeerID || st.DHT != "client") {
			t.Errorf("%s: relays %v, DHT %s; want a reservation on the bootstrap node, client", c.d.name, st.Relays, st.DHT)
		}
		if c.want == "public" && (!st.RelayService || st.DHT != "server") {
			t.Errorf("boot: relay service %v, DHT %s; want true, server", st.RelayService, st.DHT)
		}
	}
	if _, ok := in.alice.peer(in.bob.id.PeerID); !ok {
		t.Errorf("Alice's peers do not list Bob's node: %+v", in.alice.peers())
	}
	in.recordSize()
	return created.ThreadID
}

// recordSize works out the size of Alice's last published user record
// from the addresses her node logged: the JSON body (record.go's field
// names and number widths) and a 64-byte Ed25519 signature.
func (in *internet) recordSize() {
	lines := in.alice.logLines("published user record")
	if len(lines) == 0 {
		in.t.Errorf("Alice's node logged no published user record")
		return
	}
	var addrs []string
	for _, a := range lines[len(lines)-1]["addrs"].([]any) {
		addrs = append(addrs, a.(string))
	}
	now := time.Now()
	body, _ := json.Marshal(struct {
		V       int    `json:"v"`
		User    string `json:"user"`
		Seq     int64  `json:"seq"`
		Expires int64  `json:"expires"`
		Nodes   []any  `json:"nodes"`
	}{1, in.alice.id.UserID, now.UnixNano(), now.Add(2 * time.Hour).Unix(), []any{struct {
		Peer  string   `json:"peer"`
		Addrs []string `json:"addrs"`
		Seen  int64    `json:"seen"`
	}{in.alice.id.PeerID, addrs, now.Unix()}}})
	in.t.Logf("FIGURE record size: %d bytes (one node, %d addresses: %v)", len(body)+64, len(addrs), addrs)
}

// waitPath waits until Alice's connection to Bob's node is direct (or,
// with direct false, checks it stays relayed for the whole timeout).
func (in *internet) waitPath(direct bool, timeout time.Duration) (peerEntry, bool) {
	deadline := time.Now().Add(timeout)
	for {
		p, ok := in.alice.peer(in.bob.id.PeerID)
		if direct && ok && !p.Relayed {
			return p, true
		}
		if !direct && (!ok || !p.Relayed) {
			return p, false
		}
		if time.Now().After(deadline) {
			return p, !direct
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// burst sends n messages of size bytes from Alice, every gap, waits
// until Bob holds want messages of the thread, and returns the counters'
// growth.
func (in *internet) burst(thread string, n, size int, gap time.Duration, want int, timeout time.Duration) (relay, homes uint64, took time.Duration) {
	t := in.t
	c0 := in.counters()
	a0, b0 := len(in.alice.logLines("synced")), len(in.bob.logLines("synced"))
	start := time.Now()
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(gap)
		}
		in.alice.send(thread, testMessage(i, size))
	}
	if _, ok := in.bob.waitCount(thread, want, timeout); !ok {
		in.dumpLogs()
		t.Fatalf("Bob's node holds %d of %d messages %v after Alice sent %d", in.bob.count(thread), want, timeout, n)
	}
	took = time.Since(start)
	time.Sleep(time.Second) // let the last syncs end
	c1 := in.counters()
	syncs := append(in.alice.logLines("synced")[a0:], in.bob.logLines("synced")[b0:]...)
	var got, accepted float64
	for _, l := range syncs {
		e, _ := l["events"].(float64)
		a, _ := l["accepted"].(float64)
		got, accepted = got+e, accepted+a
	}
	t.Logf("%d messages sent %v apart: %d syncs, which carried %.0f events of which %.0f new", n, gap, len(syncs), got, accepted)
	return relayBytes(c1) - relayBytes(c0), c1["homes"] - c0["homes"], took
}

// testMessage is the i'th test message, size bytes long.
func testMessage(i, size int) string {
	s := fmt.Sprintf("message %d ", i)
	return s + strings.Repeat("x", max(size-len(s), 0))
}

func TestInternet(t *testing.T) {
	in := newInternet(t, false)
	start := time.Now()
	in.startBoot()
	in.startHomes()
	thread := in.firstContact()
	held := 2

	// Port-preserving NATs let hole punching make the connection direct.
	p, ok := in.waitPath(true, 30*time.Second)
	if !ok {
		in.dumpLogs()
		t.Fatalf("Alice's connection to Bob's node is still relayed (%+v) 30 s after first contact: hole punching failed behind port-preserving NATs", p)
	}
	t.Logf("FIGURE connection: direct (hole punched), alice -> bob via %s", p.Addr)
	time.Sleep(4 * time.Second) // the sync 3 s after the upgrade, then quiet

	// Once direct, the relay carries none of their traffic: n messages of
	// 1 KiB cross the public segment from router to router, and the relay's
	// links see only background traffic.
	const n, size = 100, 1024
	relay, homes, took := in.burst(thread, n, size, 0, held+n, 60*time.Second)
	t.Logf("FIGURE direct: %d messages of %d bytes in %v; home-to-home %d bytes (%d per message); relay %d bytes (%.1f per message)",
		n, size, took.Round(10*time.Millisecond), homes, homes/n, relay, float64(relay)/n)
	if homes < n*size {
		t.Errorf("only %d bytes went from home to home for %d messages of %d bytes: the messages did not travel on the direct connection", homes, n, size)
	}
	// (Background traffic on the relay's links, DHT and AutoNAT and
	// keep-alives, is about 250 bytes a second at idle.)
	if relay > n*size/10 {
		t.Errorf("the relay's links carried %d bytes while Alice sent %d messages of %d bytes on a direct connection: want under %d", relay, n, size, n*size/10)
	}

	in.idleCost()

	// Bob's node moves: stopped, its home is now behind router C
	// (192.168.3.2, public address 11.0.0.4), which does not let it reach
	// the first relay; it restarts with the second relay as bootstrap.
	// Alice's node knows only Bob's old places (the first relay, whose
	// reservation is gone, and 11.0.0.3), and Bob's node cannot reach
	// Alice's (she is reachable only through the first relay): the one
	// way they meet again is Alice's node finding Bob's refreshed record
	// in the DHT and dialling the second relay's address it lists.
	boot2Addr := in.startSecondRelay()
	before := in.alice.status().Network
	reached := len(in.alice.logLines("reached member by DHT"))
	bobReached := len(in.bob.logLines("reached member by DHT"))
	c0 := in.counters()
	in.bob.stop()
	in.bobNS.sh(t, "ip addr flush dev eth0 && ip link set eth0 down && ip addr add 192.168.3.2/24 dev eth1 && ip link set eth1 up && ip route replace default via 192.168.3.1")
	if tcpReach(in.bobNS, "11.0.0.1/4001") || !tcpReach(in.bobNS, "11.0.0.10/4001") {
		t.Fatal("Bob's new home should reach the second relay and not the first: the test's internet is wrong")
	}
	moved := in.alice.send(thread, "bob, you moved")
	for i, a := range in.bob.args {
		if a == in.bootAddr {
			in.bob.args[i] = boot2Addr
		}
	}
	movedAt := time.Now()
	in.bob.start()
	if !in.bob.cli().waitMessage(in.bob.home, thread, moved, "bob, you moved", 150*time.Second) {
		in.dumpLogs()
		t.Fatal("Bob's node, moved and restarted, did not receive Alice's message")
	}
	t.Logf("FIGURE move: Bob's node, restarted behind another NAT and relay, read Alice's message %v after the restart", time.Since(movedAt).Round(100*time.Millisecond))
	reply := in.bob.send(thread, "yes, new home")
	if !in.alice.cli().waitMessage(in.alice.home, thread, reply, "yes, new home", 30*time.Second) {
		in.dumpLogs()
		t.Fatal("Alice did not receive the moved node's message")
	}
	after := in.alice.status().Network
	if after.LookupsFound <= before.LookupsFound {
		t.Errorf("Alice's node found no record in the DHT after Bob's node moved: found %d -> %d", before.LookupsFound, after.LookupsFound)
	}
	// They met again through the DHT: one of them looked the other up and
	// dialled the second relay's address a refreshed record listed (Alice
	// reserves a slot there too once she has met it in a lookup, so
	// either may dial first).
	var viaDHT []string
	for _, l := range in.alice.logLines("reached member by DHT")[reached:] {
		if l["user"] == in.bob.id.UserID {
			viaDHT = append(viaDHT, "Alice's node reached Bob's by DHT")
		}
	}
	for _, l := range in.bob.logLines("reached member by DHT")[bobReached:] {
		if l["user"] == in.alice.id.UserID {
			viaDHT = append(viaDHT, "Bob's node reached Alice's by DHT")
		}
	}
	if len(viaDHT) == 0 {
		t.Errorf("neither node logged reaching the other by DHT after the move")
	}
	t.Logf("after the move: %v", viaDHT)
	// Bob's refreshed record lists the second relay.
	var refreshed []any
	eventually(20*time.Second, func() bool {
		for _, l := range in.bob.logLines("published user record") {
			if a, _ := l["addrs"].([]any); strings.Contains(fmt.Sprint(a), in.boot2.id.PeerID) {
				refreshed = a
			}
		}
		return refreshed != nil
	})
	if refreshed == nil {
		t.Errorf("Bob's node did not publish a record listing the second relay")
	}
	t.Logf("Bob's refreshed record lists %v", refreshed)
	// And Alice's lookup finds the node there.
	in.alice.cli().ok("connect", in.bob.id.UserID, "--home", in.alice.home)
	if c1 := in.counters(); c1["relay2"] == c0["relay2"] {
		t.Errorf("no traffic through the second relay: the move did not happen as drawn")
	}
	p, ok = in.waitPath(true, 20*time.Second)
	switch {
	case strings.Contains(p.Addr, "11.0.0.3") || strings.Contains(p.Addr, in.boot.id.PeerID):
		t.Errorf("Alice's connection to the moved node still goes to its old place: %+v", p)
	case ok:
		t.Logf("FIGURE connection: direct (hole punched) after the move, alice -> bob via %s", p.Addr)
	default:
		t.Logf("FIGURE connection: relayed after the move (%s)", p.Addr)
	}
	t.Logf("Alice's lookups: %d -> %d (found %d -> %d)", before.Lookups, after.Lookups, before.LookupsFound, after.LookupsFound)
	t.Logf("whole test %v", time.Since(start).Round(100*time.Millisecond))
}

// idleCost measures what the three nodes cost at idle: CPU, bytes on the
// public segment, connections. WEFT_NETNS_IDLE sets the window in
// seconds (default 30).
func (in *internet) idleCost() {
	t := in.t
	window := 30 * time.Second
	if s := os.Getenv("WEFT_NETNS_IDLE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("WEFT_NETNS_IDLE=%q: want seconds", s)
		}
		window = time.Duration(n) * time.Second
	}
	ds := []*daemon{in.alice, in.bob, in.boot}
	cpu0 := make([]float64, len(ds))
	for i, d := range ds {
		cpu0[i] = d.cpuSeconds()
	}
	c0 := in.counters()
	at := time.Now()
	time.Sleep(window)
	el := time.Since(at)
	c1 := in.counters()
	perHour := func(b uint64) float64 { return float64(b) / el.Hours() / (1 << 20) }
	for i, d := range ds {
		cpu := d.cpuSeconds() - cpu0[i]
		st := d.status().Network
		t.Logf("FIGURE idle %s: %.2f CPU s in %v (%.1f%% of a core), %d peers connected (%d direct, %d relayed), DHT %s with %d peers",
			d.name, cpu, el.Round(time.Second), 100*cpu/el.Seconds(), len(d.peers()), st.DirectPeers, st.RelayedPeers, st.DHT, st.DHTPeers)
		if cpu > 0.2*el.Seconds() {
			t.Errorf("%s used %.2f CPU s in %v at idle", d.name, cpu, el)
		}
	}
	ra, rb, h := c1["relay_a"]-c0["relay_a"], c1["relay_b"]-c0["relay_b"], c1["homes"]-c0["homes"]
	t.Logf("FIGURE idle bytes in %v: relay<->alice %d (%.2f MiB/h), relay<->bob %d (%.2f MiB/h), alice<->bob direct %d (%.2f MiB/h)",
		el.Round(time.Second), ra, perHour(ra), rb, perHour(rb), h, perHour(h))
	if perHour(ra+rb+h) > 50 {
		t.Errorf("idle traffic %.1f MiB/h on the public segment", perHour(ra+rb+h))
	}
}

func TestInternetHardNAT(t *testing.T) {
	in := newInternet(t, true)
	start := time.Now()
	in.startBoot()
	in.startHomes()
	thread := in.firstContact()
	held := 2

	// Randomised source ports defeat hole punching: the connection stays
	// relayed.
	if p, ok := in.waitPath(false, 20*time.Second); !ok {
		t.Fatalf("Alice's connection to Bob's node is %+v: hole punching succeeded (or the connection dropped) behind NATs that randomise ports; the test's internet is wrong", p)
	} else {
		t.Logf("FIGURE connection: relayed (hole punching defeated), alice -> bob via %s", p.Addr)
	}
	if l := in.alice.logLines("relayed peer now direct"); len(l) > 0 {
		t.Errorf("Alice's node logged a direct connection behind NATs that randomise ports: %v", l)
	}

	// Messages cross over the relay, and only over it.
	const n, size = 50, 1024
	relay, homes, took := in.burst(thread, n, size, 0, held+n, 60*time.Second)
	held += n
	t.Logf("FIGURE relayed burst: %d messages of %d bytes in %v; relay %d bytes (%.0f per message); home-to-home %d bytes",
		n, size, took.Round(10*time.Millisecond), relay, float64(relay)/n, homes)
	// The same, as a chat: one message every 500 ms.
	const paced = 10
	prelay, phomes, _ := in.burst(thread, paced, size, 500*time.Millisecond, held+paced, 30*time.Second)
	held += paced
	t.Logf("FIGURE relayed paced: %d messages of %d bytes, 500 ms apart; relay %d bytes (%.0f per message); home-to-home %d bytes",
		paced, size, prelay, float64(prelay)/paced, phomes)
	relay, homes = relay+prelay, homes+phomes
	if relay < (n+paced)*size {
		t.Errorf("the relay's links carried %d bytes for %d messages of %d bytes over a relayed connection", relay, n+paced, size)
	}
	if homes > (n+paced)*size/10 {
		t.Errorf("%d bytes went from home to home though the connection is relayed", homes)
	}

	// A backlog over the relay: Alice sends 1,000 messages while Bob's
	// node is down; Bob's node starts and syncs them all over the relayed
	// connection, within the relay's limits (1 h, 64 MiB).
	const backlog, bsize = 1000, 200
	in.bob.stop()
	sendAt := time.Now()
	for i := 0; i < backlog; i++ {
		in.alice.send(thread, testMessage(n+i, bsize))
	}
	t.Logf("Alice sent %d messages of %d bytes in %v while Bob's node was down", backlog, bsize, time.Since(sendAt).Round(10*time.Millisecond))
	c0 := in.counters()
	in.bob.start()
	took, ok := in.bob.waitCount(thread, held+backlog, 180*time.Second)
	if !ok {
		in.dumpLogs()
		t.Fatalf("Bob's node holds %d of %d messages %v after it started", in.bob.count(thread), held+backlog, took)
	}
	c1 := in.counters()
	relay, homes = relayBytes(c1)-relayBytes(c0), c1["homes"]-c0["homes"]
	t.Logf("FIGURE backlog: %d messages synced over the relay %v after Bob's node started; relay %d bytes (%.0f per message), home-to-home %d bytes",
		backlog, took.Round(100*time.Millisecond), relay, float64(relay)/backlog, homes)
	if homes > backlog*bsize/10 {
		t.Errorf("%d bytes of the backlog went from home to home though the connection is relayed", homes)
	}
	if p, ok := in.alice.peer(in.bob.id.PeerID); !ok || !p.Relayed {
		t.Errorf("after the backlog, Alice's connection to Bob's node is %+v (found %v); want relayed", p, ok)
	}
	l, err := in.bob.messages(thread)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]bool{}
	for _, m := range l.Items {
		last[m.text(t)] = m.StatusCode == 0
	}
	for _, i := range []int{n, n + backlog/2, n + backlog - 1} {
		if !last[testMessage(i, bsize)] {
			t.Errorf("Bob's node lacks backlog message %d (decrypted)", i)
		}
	}
	t.Logf("whole test %v", time.Since(start).Round(100*time.Millisecond))
}
